"""Centered orthonormal 2-D FFTs and the complex <-> real-channel layout.

The MRI convention (fastMRI ``fft2c``): the image centre sits at index ``n // 2`` in both
domains, so ``fft2c = fftshift ∘ fft2(norm="ortho") ∘ ifftshift``. Using ``ifftshift`` before and
``fftshift`` after keeps the transform exact for odd sizes too.

Score networks see real tensors: a complex image is two channels (real, imaginary), ``K`` complex
images are ``C = 2K`` channels ordered ``(re_0, im_0, re_1, im_1, …)``. This is the layout of
``torch.view_as_real(x).permute(0, 3, 1, 2)`` used by the reference pipeline for ``K = 1``.
"""

from __future__ import annotations

import torch

DIMS = (-2, -1)


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D FFT over the last two dimensions of a complex tensor."""
    shifted = torch.fft.ifftshift(image, dim=DIMS)
    return torch.fft.fftshift(torch.fft.fft2(shifted, dim=DIMS, norm="ortho"), dim=DIMS)


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D inverse FFT over the last two dimensions; inverse of :func:`fft2c`."""
    shifted = torch.fft.ifftshift(kspace, dim=DIMS)
    return torch.fft.fftshift(torch.fft.ifft2(shifted, dim=DIMS, norm="ortho"), dim=DIMS)


def ifft1c(kspace: torch.Tensor, dim: int) -> torch.Tensor:
    """Centered orthonormal 1-D inverse FFT along ``dim`` (used to leave k-space along the readout)."""
    shifted = torch.fft.ifftshift(kspace, dim=dim)
    return torch.fft.fftshift(torch.fft.ifft(shifted, dim=dim, norm="ortho"), dim=dim)


def fft1c(image: torch.Tensor, dim: int) -> torch.Tensor:
    """Centered orthonormal 1-D FFT along ``dim``; inverse of :func:`ifft1c`."""
    shifted = torch.fft.ifftshift(image, dim=dim)
    return torch.fft.fftshift(torch.fft.fft(shifted, dim=dim, norm="ortho"), dim=dim)


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """``[B, K, H, W]`` complex → ``[B, 2K, H, W]`` real, channels ``(re_0, im_0, re_1, im_1, …)``."""
    if not x.is_complex():
        raise TypeError(f"complex_to_channels expects a complex tensor, got {x.dtype}")
    b, k, h, w = x.shape
    return torch.view_as_real(x).permute(0, 1, 4, 2, 3).reshape(b, 2 * k, h, w)


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """``[B, 2K, H, W]`` real → ``[B, K, H, W]`` complex; inverse of :func:`complex_to_channels`."""
    b, c, h, w = x.shape
    if c % 2:
        raise ValueError(f"channels_to_complex needs an even channel count (re, im pairs), got C={c}")
    pairs = x.reshape(b, c // 2, 2, h, w).permute(0, 1, 3, 4, 2)
    return torch.view_as_complex(pairs.contiguous())
