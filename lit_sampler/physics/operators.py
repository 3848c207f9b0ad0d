"""Cartesian MRI forward operators: the model y = M ⊙ F(S ⊙ x).

``F`` is the centered orthonormal 2-D FFT (:func:`lit_sampler.physics.fft.fft2c`), ``S`` the coil
sensitivity maps ``[B, coils, H, W]`` and ``M`` the sampling mask, which broadcasts against
``[B, coils, H, W]`` k-space: ``[B, 1, 1, W]`` for phase-encode lines, ``[B, 1, H, W]`` for a 2-D
pattern (``[1, 1, 1, W]`` or ``[W]``-style shapes broadcast as usual). The adjoint is
``Aᴴ y = Σ_c conj(S_c) ⊙ F⁻¹(M ⊙ y_c)``.

:class:`LinearOperator` states the model every operator follows: ``forward`` (A), ``adjoint`` (Aᴴ)
and ``normal`` (AᴴA, by default ``adjoint(forward(x))``). Any object with ``forward(x)`` /
``adjoint(y)`` of the same shapes can stand in for these classes (the reference pipeline's
"forward class", configured by import path); the math core reaches AᴴA through :func:`normal_of`,
which uses the object's ``normal`` where it has one.
"""

from __future__ import annotations

import torch

from .fft import fft2c, ifft2c


def _as_real_mask(mask: torch.Tensor) -> torch.Tensor:
    # bool masks cannot multiply complex tensors; 0/1 floats promote to any complex dtype.
    return mask if mask.is_floating_point() else mask.to(torch.float32)


class LinearOperator:
    """A linear map A from images to measurements; subclasses give ``forward`` and ``adjoint``.

    ``adjoint`` must be the adjoint of ``forward`` for the inner product Re Σ conj(a)·b (the tests
    check ⟨A x, y⟩ = ⟨x, Aᴴ y⟩); ``normal`` is AᴴA, to be overridden where a faster form exists.
    """

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``A x``."""
        raise NotImplementedError

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        """``Aᴴ y``."""
        raise NotImplementedError

    def normal(self, image: torch.Tensor) -> torch.Tensor:
        """``AᴴA x`` = ``adjoint(forward(x))``."""
        return self.adjoint(self.forward(image))


def normal_of(operator: LinearOperator, image: torch.Tensor) -> torch.Tensor:
    """``AᴴA x`` for a :class:`LinearOperator` or any duck-typed object with ``forward`` /
    ``adjoint``: its own ``normal`` where it has one, else ``adjoint(forward(x))``."""
    normal = getattr(operator, "normal", None)
    return normal(image) if normal is not None else LinearOperator.normal(operator, image)


class MultiCoilMRI(LinearOperator):
    """Multi-coil Cartesian MRI: ``A x = M ⊙ F(S ⊙ x)``.

    Args:
        sens_maps: complex coil sensitivities ``[B, coils, H, W]``.
        mask: sampling mask broadcastable to ``[B, coils, H, W]`` (bool or 0/1 real).
    """

    def __init__(self, sens_maps: torch.Tensor, mask: torch.Tensor):
        if not sens_maps.is_complex() or sens_maps.dim() != 4:
            raise ValueError(
                f"sens_maps must be complex [B, coils, H, W], got {tuple(sens_maps.shape)} {sens_maps.dtype}"
            )
        self.sens_maps = sens_maps
        self.mask = _as_real_mask(mask)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Complex image ``[B, H, W]`` → masked multi-coil k-space ``[B, coils, H, W]``."""
        return self.mask * fft2c(self.sens_maps * image.unsqueeze(-3))

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        """Multi-coil k-space ``[B, coils, H, W]`` → coil-combined image ``[B, H, W]``."""
        return (self.sens_maps.conj() * ifft2c(self.mask * kspace)).sum(dim=-3)

    def normal(self, image: torch.Tensor) -> torch.Tensor:
        """``AᴴA x`` (the mask is idempotent, so it is applied once)."""
        return self.adjoint(fft2c(self.sens_maps * image.unsqueeze(-3)))


class SingleCoilMRI(LinearOperator):
    """Single-coil Cartesian MRI, ``S = 1``: ``A x = M ⊙ F x`` with k-space ``[B, 1, H, W]``.

    Args:
        mask: sampling mask broadcastable to ``[B, 1, H, W]`` (bool or 0/1 real).
    """

    def __init__(self, mask: torch.Tensor):
        self.mask = _as_real_mask(mask)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Complex image ``[B, H, W]`` → masked k-space ``[B, 1, H, W]``."""
        return self.mask * fft2c(image.unsqueeze(-3))

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        """k-space ``[B, 1, H, W]`` → image ``[B, H, W]``."""
        return ifft2c(self.mask * kspace).squeeze(-3)

    def normal(self, image: torch.Tensor) -> torch.Tensor:
        """``AᴴA x``."""
        return self.adjoint(fft2c(image.unsqueeze(-3)))
