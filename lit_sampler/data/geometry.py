"""Slice geometry: padding-line removal and crops to the model's image size.

Axes: k-space ``[coils, H, W]`` with ``H`` the readout and ``W`` the phase-encode axis (lines are
columns). Centre convention: the centre of an axis of length ``n`` is index ``n // 2`` in both
domains (as :func:`lit_sampler.physics.fft.fft2c` places it), and a centre crop from ``n`` to ``m`` keeps
indices ``[n//2 − m//2, n//2 − m//2 + m)``, so the centre element stays the centre (this is also
sigpy's ``resize``, used by the reference code).

Two named crop conventions (``crop=``):

* ``"csgm"`` (Jalal et al. 2021, ``utcsilab/csgm-mri-langevin`` ``dataloaders.py``; REFERENCE.md
  §6.1): (1) drop the all-zero (padding) phase-encode columns at the k-space edges, keeping the DC
  column at the centre; (2) centre-crop the phase-encode axis **in k-space** to the target width
  (a lower phase-encode resolution over the same field of view); (3) inverse FFT along the readout,
  centre-crop the readout **in the image domain** to the target height (removes the 2× readout
  oversampling of fastMRI data), FFT back. The maps get the same treatment through their k-space:
  ``S' = F⁻¹₂ ∘ csgm(F₂ S)``.
* ``"image"``: ``F₂⁻¹``, centre-crop both axes in the image domain (a smaller field of view at the
  original resolution), ``F₂`` back; the maps are centre-cropped in the image domain.

Coil combination (MVUE, RSS) is :mod:`lit_sampler.physics.coils`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Union

import torch

from ..errors import DataError
from ..physics.fft import fft1c, fft2c, ifft1c, ifft2c

CropMode = Literal["csgm", "image"]
ImageSize = Optional[Union[int, tuple[int, int]]]

READOUT_DIM = -2


def as_size(image_size: ImageSize) -> Optional[tuple[int, int]]:
    """``None`` / ``n`` / ``(h, w)`` → ``None`` / ``(n, n)`` / ``(h, w)``, checked positive."""
    if image_size is None:
        return None
    if isinstance(image_size, int):
        size = (image_size, image_size)
    else:
        size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise DataError(f"image_size must be a positive int or [H, W], got {image_size!r}")
    return size  # type: ignore[return-value]


def center_slice(n: int, m: int) -> slice:
    """Indices of the centre crop from length ``n`` to ``m ≤ n`` (centre ``n // 2`` kept at ``m // 2``)."""
    start = n // 2 - m // 2
    return slice(start, start + m)


def center_crop(x: torch.Tensor, size: tuple[Optional[int], Optional[int]]) -> torch.Tensor:
    """Centre-crop the last two dims of ``x`` ``[..., H, W]`` to ``size`` (``None`` keeps an axis)."""
    h, w = x.shape[-2:]
    th = h if size[0] is None else size[0]
    tw = w if size[1] is None else size[1]
    if th > h or tw > w:
        raise ValueError(f"cannot centre-crop [{h}, {w}] to [{th}, {tw}]")
    return x[..., center_slice(h, th), center_slice(w, tw)]


def edge_zero_columns(kspace: torch.Tensor) -> tuple[int, int]:
    """Numbers of all-zero phase-encode columns at the left and right edges of ``[..., H, W]``.

    A column is zero when it is zero in every coil and readout sample: zero-padded lines of
    fastMRI data are exact zeros, and measured lines always carry noise.
    """
    nonzero = (kspace != 0).reshape(-1, kspace.shape[-1]).any(dim=0)
    idx = torch.nonzero(nonzero).flatten()
    if idx.numel() == 0:
        return kspace.shape[-1], 0
    return int(idx[0]), kspace.shape[-1] - 1 - int(idx[-1])


def padding_free_width(width: int, left: int, right: int) -> int:
    """Widest centred window (centre ``width // 2`` kept at ``m // 2``) that avoids the edge padding.

    A window of width ``m`` reaches ``m // 2`` columns left of the centre and ``m − m // 2 − 1`` right
    of it; the data reach ``width // 2 − left`` and ``width − 1 − right − width // 2``.
    """
    reach_left = width // 2 - left
    reach_right = width - 1 - right - width // 2
    if reach_left < 0 or reach_right < 0:
        return 0
    even = 2 * min(reach_left, reach_right + 1)
    odd = 2 * min(reach_left, reach_right) + 1
    return max(even, odd)


def drop_padding_columns(kspace: torch.Tensor) -> torch.Tensor:
    """Remove the zero-padded phase-encode columns at the edges of ``[..., H, W]`` k-space.

    Keeps the widest centred window without padding (:func:`padding_free_width`), so the DC column
    stays at the centre and no phase ramp is introduced. (Jalal et al. delete every dead line and
    keep even counts per side, which can shift the centre by one line; a centred window instead
    drops at most one measured edge line when the padding is asymmetric.)
    """
    width = kspace.shape[-1]
    left, right = edge_zero_columns(kspace)
    m = padding_free_width(width, left, right)
    return kspace[..., center_slice(width, m)]


def csgm_resize_kspace(kspace: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[..., H, W]`` k-space → ``[..., h, w]``: crop PE in k-space, crop readout in image space."""
    h, w = size
    kspace = center_crop(kspace, (None, w))
    hybrid = ifft1c(kspace, dim=READOUT_DIM)
    hybrid = center_crop(hybrid, (h, None))
    return fft1c(hybrid, dim=READOUT_DIM)


def csgm_resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Maps ``[..., H, W]`` (image domain) → ``[..., h, w]`` through the k-space route of
    :func:`csgm_resize_kspace`: ``F₂⁻¹(csgm(F₂ S))`` (Jalal's FFT → crop PE → IFFT RO → crop)."""
    return ifft2c(csgm_resize_kspace(fft2c(maps), size))


def image_resize_kspace(kspace: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[..., H, W]`` k-space → ``[..., h, w]``: centre-crop the image ``F₂⁻¹ k``, then ``F₂``."""
    return fft2c(center_crop(ifft2c(kspace), size))


@dataclass(frozen=True)
class Geometry:
    """How a slice is brought to the model's image size (see the module docstring).

    Args:
        image_size: target ``(h, w)``; ``None`` keeps the data size (nothing is dropped or cropped,
            so the output shape is known from file metadata alone).
        crop: ``"csgm"`` or ``"image"``.
    """

    image_size: Optional[tuple[int, int]] = None
    crop: CropMode = "csgm"

    def __post_init__(self):
        if self.crop not in ("csgm", "image"):
            raise DataError(f"crop must be 'csgm' or 'image', got {self.crop!r}")

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        """The ``(h, w)`` of a slice of stored size ``(height, width)``."""
        return (height, width) if self.image_size is None else self.image_size

    def check_fits(self, height: int, width: int, where: str) -> None:
        """Eager check from metadata: the target size must not exceed the stored size."""
        if self.image_size is None:
            return
        h, w = self.image_size
        if h > height or w > width:
            raise DataError(
                f"{where}: image_size [{h}, {w}] is larger than the data: dataset 'kspace' has "
                f"H×W = [{height}, {width}]"
            )

    def apply(
        self,
        kspace: torch.Tensor,
        maps: Optional[torch.Tensor],
        file_mask: Optional[torch.Tensor],
        where: str,
        drop_padding: bool = True,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Apply the geometry to one slice.

        Args:
            kspace: ``[coils, H, W]`` complex.
            maps: ``[coils, H, W]`` complex (image domain) or ``None``.
            file_mask: a mask stored with the data, ``[1, W]`` or ``[H, W]``, or ``None``.
            where: "file: slice n" prefix for error messages.
            drop_padding: remove edge zero columns first (``csgm``). Off for data that is already
                undersampled, whose unsampled edge lines would look like padding.

        Returns:
            ``(kspace [coils, h, w], maps [coils, h, w] | None, file_mask [1, w] | [h, w] | None)``.
        """
        if self.image_size is None:
            return kspace, maps, file_mask
        height, width = kspace.shape[-2:]
        h, w = self.image_size
        if (h, w) == (height, width):
            return kspace, maps, file_mask
        self.check_fits(height, width, where)
        if file_mask is not None:
            self.check_mask_croppable(file_mask.shape[-2] != 1, (height, width), where)
        if self.crop == "image":
            kspace = image_resize_kspace(kspace, (h, w))
            if maps is not None:
                maps = center_crop(maps, (h, w))
            if file_mask is not None:
                file_mask = center_crop(file_mask, (None if file_mask.shape[-2] == 1 else h, w))
            return kspace, maps, file_mask
        # csgm step (1), padding removal: the padding-free window is centred, and centre crops
        # compose (n → a → w equals n → w), so removing it and then cropping equals cropping
        # directly. Only the check remains: the crop must keep no padding line.
        if drop_padding and file_mask is None:
            left, right = edge_zero_columns(kspace)
            available = padding_free_width(width, left, right)
            if available < w:
                raise DataError(
                    f"{where}: image_size [{h}, {w}] is larger than the data: dataset 'kspace' has "
                    f"{available} phase-encode columns after dropping {left} + {right} all-zero "
                    f"padding columns (of W = {width})"
                )
        kspace = csgm_resize_kspace(kspace, (h, w))
        if maps is not None:
            maps = csgm_resize_maps(maps, (h, w))
        if file_mask is not None:
            file_mask = center_crop(file_mask, (None if file_mask.shape[-2] == 1 else h, w))
        return kspace, maps, file_mask

    def check_mask_croppable(self, two_d: bool, shape: tuple[int, int], where: str) -> None:
        """A mask stored with the data must survive the crop (checked from metadata at setup).

        A stored mask says which k-space points exist. It survives a crop only where the crop
        happens in k-space or along a fully sampled axis: csgm crops PE in k-space; the readout
        crop (image domain) mixes rows, harmless for line masks (constant along H) only.
        """
        if self.image_size is None:
            return
        height, width = shape
        h, w = self.image_size
        if (h, w) == (height, width):
            return
        if self.crop == "image" and w != width:
            raise DataError(
                f"{where}: dataset 'mask' is stored with the data, so the phase-encode axis must be "
                f"cropped in k-space: use crop='csgm' (or image_size width {width}), got crop='image', width {w}"
            )
        if two_d and h != height:
            raise DataError(
                f"{where}: dataset 'mask' is a 2-D [H, W] pattern, which a readout crop would destroy; "
                f"expected image_size height {height}, got {h}"
            )
