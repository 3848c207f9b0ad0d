"""Coil combination of multi-coil k-space ``[..., coils, H, W]`` into one image ``[..., H, W]``.

With ``x_c = F₂⁻¹ k_c`` the coil images (:func:`lit_sampler.physics.fft.ifft2c`):

* MVUE: ``x = Σ_c conj(S_c) x_c / sqrt(Σ_c |S_c|²)`` (complex; 0 where ``Σ_c |S_c|² = 0``, i.e.
  outside the support of ESPIRiT-cropped maps). With ``Σ_c |S_c|² = 1`` this is ``Aᴴ`` of a fully
  sampled model (:class:`lit_sampler.physics.operators.MultiCoilMRI`). Single-coil data uses ``S = 1``,
  i.e. ``x = F₂⁻¹ k`` (the complex image).
* RSS: ``x = sqrt(Σ_c |x_c|²)`` (real, non-negative).

The data transform's ``target=`` option picks one (:mod:`lit_sampler.data.transforms`).

Pre-whitened data (``y_w = W y``, :mod:`lit_sampler.data.whitening`) are combined from the scanner's
coils ``W⁻¹ y_w`` with the maps ``W⁻¹ S_w`` (``unwhitening = W⁻¹``): whitening changes the noise,
not the image (Pruessmann et al., MRM 46:638, 2001), so the combined image is the one the
unwhitened data give — RSS ``|x| · ‖Ŝ‖`` and MVUE ``x`` with ``Ŝ`` the unwhitened coils' maps —
rather than one shaded by the per-pixel gain ``‖W Ŝ‖`` the whitened coils have.
"""

from __future__ import annotations

from typing import Optional

import torch

from .fft import ifft2c


def mix_coils(data: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``Σ_d matrix[c, d] · data[..., d, :, :]``: a coil transform of ``[..., coils, H, W]``.

    Raises:
        ValueError: ``matrix`` is not ``[coils, coils]`` for the data's coil count.
    """
    coils = data.shape[-3] if data.dim() >= 3 else None
    if matrix.dim() != 2 or coils is None or tuple(matrix.shape) != (coils, coils):
        raise ValueError(
            f"coil transform has shape {list(matrix.shape)} but data {list(data.shape)} need "
            f"[{coils}, {coils}] (a matrix over the coil axis, dimension -3)"
        )
    return torch.einsum("cd,...dhw->...chw", matrix.to(data.dtype), data)


def unwhitened_unit_maps(maps: torch.Tensor, unwhitening: torch.Tensor) -> torch.Tensor:
    """Whitened maps ``[..., coils, H, W]`` scaled per pixel so that ``Σ_c |(W⁻¹ S)_c|² = 1``
    (``unwhitening = W⁻¹``): the unwhitened coils' maps then have unit norm, so the image ``x`` of
    ``y_w = F(S x)`` is the unwhitened image (module docstring). 0 where ``W⁻¹ S`` is (cropped
    maps). Idempotent, and independent of the maps' per-pixel scale (ESPIRiT's or BART's unit norm
    of the whitened coils, or this one).
    """
    energy = mix_coils(maps, unwhitening).abs().square().sum(dim=-3, keepdim=True)
    tiny = 1e-12 * float(energy.max()) if energy.numel() else 0.0
    valid = energy > tiny
    gain = torch.where(valid, energy, torch.ones_like(energy)).rsqrt()
    return torch.where(valid, maps * gain, torch.zeros_like(maps))


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


def combine(kspace: torch.Tensor, maps: Optional[torch.Tensor], kind: str,
            unwhitening: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Coil-combined complex image ``[..., H, W]`` by ``kind`` ∈ {"mvue", "rss"} (RSS as complex).

    ``unwhitening``: ``W⁻¹`` ``[coils, coils]`` of pre-whitened data; k-space and maps are taken
    back to the scanner's coils first (module docstring). ``None``: combined as they are.
    """
    if unwhitening is not None:
        kspace = mix_coils(kspace, unwhitening)
        maps = None if maps is None else mix_coils(maps, unwhitening)
    if kind == "mvue":
        return mvue(kspace, maps)
    if kind == "rss":
        return rss(kspace).to(kspace.dtype)
    raise ValueError(f"unknown coil combination {kind!r}; expected 'mvue' or 'rss'")
