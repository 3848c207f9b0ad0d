"""Coil combination of multi-coil k-space ``[..., coils, H, W]`` into one image ``[..., H, W]``.

With ``x_c = F₂⁻¹ k_c`` the coil images (:func:`lit_sampler.fft.ifft2c`):

* MVUE: ``x = Σ_c conj(S_c) x_c / sqrt(Σ_c |S_c|²)`` (complex; 0 where ``Σ_c |S_c|² = 0``, i.e.
  outside the support of ESPIRiT-cropped maps). With ``Σ_c |S_c|² = 1`` this is ``Aᴴ`` of a fully
  sampled model (:class:`lit_sampler.operators.MultiCoilMRI`). Single-coil data uses ``S = 1``,
  i.e. ``x = F₂⁻¹ k`` (the complex image).
* RSS: ``x = sqrt(Σ_c |x_c|²)`` (real, non-negative).

The data transform's ``target=`` option picks one (:mod:`lit_sampler.data.transforms`).
"""

from __future__ import annotations

from typing import Optional

import torch

from .fft import ifft2c


def mvue(kspace: torch.Tensor, maps: Optional[torch.Tensor]) -> torch.Tensor:
    """``Σ_c conj(S_c) F⁻¹k_c / sqrt(Σ_c |S_c|²)`` for ``kspace``, ``maps`` ``[..., coils, H, W]``.

    Returns the complex image ``[..., H, W]``; 0 where ``Σ|S|²`` is zero (below 1e-12 of its max).
    ``maps=None`` means ``S = 1`` (single-coil): the complex image ``F⁻¹k`` (one coil required).
    """
    coil_images = ifft2c(kspace)
    if maps is None:
        if kspace.shape[-3] != 1:
            raise ValueError(f"MVUE without maps needs single-coil k-space, got {kspace.shape[-3]} coils")
        return coil_images[..., 0, :, :]
    numerator = (maps.conj() * coil_images).sum(dim=-3)
    energy = maps.abs().square().sum(dim=-3)
    tiny = 1e-12 * float(energy.max()) if energy.numel() else 0.0
    valid = energy > tiny
    denominator = torch.sqrt(torch.where(valid, energy, torch.ones_like(energy)))
    return torch.where(valid, numerator / denominator, torch.zeros_like(numerator))


def rss(kspace: torch.Tensor) -> torch.Tensor:
    """Root-sum-of-squares ``sqrt(Σ_c |F⁻¹k_c|²)`` of ``[..., coils, H, W]`` → real ``[..., H, W]``."""
    return ifft2c(kspace).abs().square().sum(dim=-3).sqrt()


def combine(kspace: torch.Tensor, maps: Optional[torch.Tensor], kind: str) -> torch.Tensor:
    """Coil-combined complex image ``[..., H, W]`` by ``kind`` ∈ {"mvue", "rss"} (RSS as complex)."""
    if kind == "mvue":
        return mvue(kspace, maps)
    if kind == "rss":
        return rss(kspace).to(kspace.dtype)
    raise ValueError(f"unknown coil combination {kind!r}; expected 'mvue' or 'rss'")
