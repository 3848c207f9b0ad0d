"""Realistic multi-coil brain slices from a real anatomical volume (the anatomy demo, its tests).

The demo's images come from a real brain: the MNI152 2009 template (T1 and the grey/white-matter
probability maps that nilearn's wheel ships) and, for a second subject, dipy's single T1 slice.
This module turns such arrays into acquisitions without committing an inverse crime:

* :func:`tissue_contrast`: the T1 template, or a T2-like image remapped from tissue probabilities,
  ``w_csf·CSF + w_gm·GM + w_wm·WM`` with ``CSF = clip(brain − GM − WM, 0, 1)``.
* :func:`oriented_slice`: axial / coronal / sagittal cuts in radiological display orientation
  (superior or anterior up).
* :func:`slab_split`: train / validation / test by **position** in the volume: slabs of consecutive
  slices in a fixed cycle, with ``gap`` slices dropped on each side of every validation or test
  slab, so no held-out slice has a training neighbour closer than ``gap + 1`` mm.
* :func:`view`: a square field of view (whole head, or a zoomed partial FOV) cut from the 1 mm
  slice, zero-padded where it leaves the slice.
* :func:`simulate`: everything happens on the fine 1 mm grid (complex image with a smooth random
  phase, smooth coil sensitivities ``Σ|S|² = 1``); its centred orthonormal FFT is then cropped to
  the target matrix (``size × size``). The k-space is therefore band-limited data of a finer
  object, not the FFT of the image the reconstruction is scored against, and the coil maps the
  reconstruction uses are estimated from it (ESPIRiT), never the simulation's own.

Amplitudes: the crop is rescaled by ``size / side`` so that the image ``F⁻¹(kspace)`` keeps the
fine image's intensity (orthonormal FFTs change the per-pixel scale by ``sqrt(N_fine/N_coarse)``).
Pure numpy/torch: reading the NIfTI files (nibabel) lives in ``scripts/make_demo_data.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import numpy as np
import torch

from .phantoms import coil_maps
from ..physics.fft import fft2c, ifft2c

Orientation = Literal["axial", "coronal", "sagittal"]
ORIENTATIONS: tuple[str, ...] = ("axial", "coronal", "sagittal")
# T2-like weights (CSF bright, grey over white): what a T2-weighted spin echo roughly shows
T2_WEIGHTS = (1.0, 0.55, 0.3)
SPLITS = ("train", "val", "test")
# one cycle of slabs along each axis; val and test are one slab in six each
SLAB_CYCLE = ("train", "train", "val", "train", "train", "test")


def tissue_contrast(
    t1: np.ndarray, gm: np.ndarray, wm: np.ndarray, contrast: str = "t1", weights: Optional[Sequence[float]] = None
) -> np.ndarray:
    """A contrast of the template ``[X, Y, Z]`` with values in ``[0, 1]``.

    Args:
        t1: T1 template (uint8 range 0–255; 0 outside the skull-stripped brain).
        gm, wm: tissue probability maps (0–255).
        contrast: ``"t1"`` (the template / 255) or ``"t2"`` (tissue remap with ``weights``, default
            :data:`T2_WEIGHTS` for CSF, GM, WM).
    """
    if contrast == "t1":
        return np.asarray(t1, dtype=np.float64) / 255.0
    if contrast != "t2":
        raise ValueError(f"unknown contrast {contrast!r}; expected 't1' or 't2'")
    w_csf, w_gm, w_wm = weights if weights is not None else T2_WEIGHTS
    gm = np.asarray(gm, dtype=np.float64) / 255.0
    wm = np.asarray(wm, dtype=np.float64) / 255.0
    brain = (np.asarray(t1) > 0).astype(np.float64)
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    return np.clip(w_csf * csf + w_gm * gm + w_wm * wm, 0.0, None)


def oriented_slice(volume: np.ndarray, orientation: str, index: int) -> np.ndarray:
    """2-D cut of a RAS volume ``[X, Y, Z]`` (MNI voxel order) for display.

    axial (fixed z): rows anterior → posterior, columns right → left (radiological);
    coronal (fixed y): rows superior → inferior; sagittal (fixed x): rows superior → inferior,
    columns anterior → posterior.
    """
    if orientation == "axial":
        cut = volume[:, :, index]  # [X, Y]
        return np.ascontiguousarray(np.flip(cut.T, axis=0))
    if orientation == "coronal":
        cut = volume[:, index, :]  # [X, Z]
        return np.ascontiguousarray(np.flip(cut.T, axis=0))
    if orientation == "sagittal":
        cut = volume[index, :, :]  # [Y, Z]
        return np.ascontiguousarray(np.flip(np.flip(cut.T, axis=0), axis=1))
    raise ValueError(f"unknown orientation {orientation!r}; expected one of {ORIENTATIONS}")


def axis_of(orientation: str) -> int:
    return {"sagittal": 0, "coronal": 1, "axial": 2}[orientation]


def brain_positions(brain: np.ndarray, orientation: str, min_area_fraction: float = 0.25) -> list[int]:
    """Slice indices whose brain area exceeds ``min_area_fraction`` of the largest cross-section."""
    axis = axis_of(orientation)
    other = tuple(a for a in range(3) if a != axis)
    area = (np.asarray(brain) > 0).sum(axis=other)
    keep = np.nonzero(area > min_area_fraction * area.max())[0]
    return [int(i) for i in keep]


def slab_split(
    positions: Sequence[int], slab: int = 10, gap: int = 4, cycle: Sequence[str] = SLAB_CYCLE
) -> dict[str, list[int]]:
    """Split consecutive slice ``positions`` into slabs of ``slab`` slices labelled by ``cycle``.

    Training slices closer than ``gap + 1`` to a slice of another split are dropped (validation and
    test slabs lose their edge slices instead when two held-out slabs touch), so the sets are
    disjoint and separated by at least ``gap`` slices.
    """
    if slab < 1 or gap < 0:
        raise ValueError(f"slab must be >= 1 and gap >= 0, got slab={slab}, gap={gap}")
    positions = sorted(int(p) for p in positions)
    labels = {p: cycle[(k // slab) % len(cycle)] for k, p in enumerate(positions)}
    out: dict[str, list[int]] = {name: [] for name in SPLITS}
    for p in positions:
        label = labels[p]
        near = [labels[q] for q in range(p - gap, p + gap + 1) if q in labels and labels[q] != label]
        if near and (label == "train" or any(n != "train" for n in near)):
            continue
        out[label].append(p)
    return out


def slab_centres(positions: Sequence[int]) -> list[int]:
    """The middle slice of each run of consecutive ``positions`` (one representative per slab)."""
    positions = sorted(positions)
    runs: list[list[int]] = []
    for p in positions:
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return [run[len(run) // 2] for run in runs]


def view(image: np.ndarray, side: int, centre: Optional[tuple[float, float]] = None) -> np.ndarray:
    """Square ``side × side`` field of view of a 2-D slice around ``centre`` (row, col; default the
    slice centre), zero outside the slice."""
    height, width = image.shape
    cy, cx = centre if centre is not None else (height / 2, width / 2)
    top, left = int(round(cy - side / 2)), int(round(cx - side / 2))
    out = np.zeros((side, side), dtype=image.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side, height), min(left + side, width)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return out


def bounding_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` of the non-zero part of a 2-D image (inclusive-exclusive)."""
    rows = np.nonzero(image.any(axis=1))[0]
    cols = np.nonzero(image.any(axis=0))[0]
    if rows.size == 0:
        return 0, image.shape[0], 0, image.shape[1]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def smooth_phase(side: int, generator: torch.Generator, strength: float = math.pi) -> torch.Tensor:
    """Smooth random phase ``[side, side]`` (float64): a quadratic polynomial in FOV coordinates
    ``[−1, 1)²`` with coefficients ``U(−strength, strength)`` (``/2`` for the quadratic terms)."""
    coords = (torch.arange(side, dtype=torch.float64) - side // 2) / (side / 2)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    monomials = torch.stack([torch.ones_like(x), x, y, x * x / 2, x * y / 2, y * y / 2])
    coeffs = (torch.rand(6, generator=generator, dtype=torch.float64) * 2 - 1) * strength
    return (coeffs[:, None, None] * monomials).sum(dim=0)


def crop_kspace(kspace: torch.Tensor, size: int) -> torch.Tensor:
    """Centre ``size × size`` block of centred k-space ``[..., side, side]``, rescaled by ``size/side``
    so that the image amplitude is kept."""
    side_y, side_x = kspace.shape[-2:]
    if min(side_y, side_x) < size:
        raise ValueError(f"fine grid {side_y}x{side_x} is smaller than the target matrix {size}")
    y0, x0 = side_y // 2 - size // 2, side_x // 2 - size // 2
    block = kspace[..., y0 : y0 + size, x0 : x0 + size]
    return block * (size / math.sqrt(side_y * side_x))


@dataclass
class Acquisition:
    """One simulated slice: ``kspace`` ``[coils, size, size]`` complex64 (``[size, size]`` single-coil),
    ``truth`` the band-limited complex object ``[size, size]`` (what an ideal scanner would image)
    and ``maps`` the simulation's coil maps on the target grid (for tests; never used to reconstruct)."""

    kspace: torch.Tensor
    truth: torch.Tensor
    maps: Optional[torch.Tensor]


def simulate(
    magnitude: np.ndarray, size: int, coils: int, generator: torch.Generator, phase_strength: float = math.pi
) -> Acquisition:
    """Simulate a fully sampled acquisition of a square fine-grid magnitude image ``[side, side]``.

    ``coils = 0`` gives single-coil k-space of the complex object (training images).
    """
    side = magnitude.shape[-1]
    if magnitude.shape != (side, side):
        raise ValueError(f"simulate expects a square image, got {magnitude.shape}")
    image = torch.polar(torch.as_tensor(magnitude, dtype=torch.float64), smooth_phase(side, generator, phase_strength))
    truth = crop_kspace(fft2c(image), size)
    truth_image = ifft2c(truth).to(torch.complex64)
    if coils == 0:
        return Acquisition(truth.to(torch.complex64), truth_image, None)
    maps_fine = coil_maps(side, side, coils, generator).to(torch.complex128)
    kspace = crop_kspace(fft2c(maps_fine * image), size).to(torch.complex64)
    maps = ifft2c(crop_kspace(fft2c(maps_fine), size)).to(torch.complex64)
    return Acquisition(kspace, truth_image, maps)
