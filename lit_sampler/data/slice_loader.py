"""Reading one slice for a measurement: the stored slice, checked, with the geometry applied
(step 1 of :mod:`lit_sampler.data.transforms`), and the mask-shape conversion it shares with it.

Pre-whitened files (ISMRMRD conversions, :attr:`VolumeInfo.unwhitening` = ``W⁻¹``): the maps are
scaled per pixel so that ``‖W⁻¹ S‖ = 1`` (:func:`lit_sampler.physics.coils.unwhitened_unit_maps`) before
the geometry, whatever their source — the conversion's own maps already are (a no-op), maps made
elsewhere from the whitened k-space (BART's ``ecalib``, unit norm over the whitened coils) become
so — so the image of the forward model is the unwhitened image (:mod:`lit_sampler.data.whitening`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import DataError
from .fastmri import VolumeInfo, read_slice
from .geometry import Geometry
from ..physics.coils import unwhitened_unit_maps


@dataclass
class PreparedSlice:
    """One slice after the geometry.

    Attributes:
        kspace: ``[coils, H, W]`` complex64, fully sampled (or as stored when ``undersampled``).
        maps: ``[coils, H, W]`` complex64 or ``None`` (single-coil, or RSS without maps).
        file_mask: stored mask ``[1, H, W]`` float32 or ``None``.
        undersampled: the stored k-space is zero wherever the stored mask is (no ground truth).
    """

    volume: VolumeInfo
    slice_num: int
    kspace: torch.Tensor
    maps: Optional[torch.Tensor]
    file_mask: Optional[torch.Tensor]
    undersampled: bool

    @property
    def where(self) -> str:
        return f"{self.volume.path}: slice {self.slice_num}"

    @property
    def unwhitening(self) -> Optional[torch.Tensor]:
        """``W⁻¹`` ``[coils, coils]`` complex64 of pre-whitened k-space (images are combined through
        it, :func:`lit_sampler.physics.coils.combine`), or ``None``."""
        matrix = self.volume.unwhitening
        return None if matrix is None else torch.from_numpy(matrix).to(torch.complex64)


def expand_mask(mask: torch.Tensor, shape: tuple[int, int], where: str) -> torch.Tensor:
    """A mask ``[W]``, ``[1, W]`` or ``[H, W]`` → float32 ``[1, H, W]`` 0/1."""
    mask = torch.as_tensor(mask)
    if mask.dim() == 1:
        mask = mask[None]
    if mask.dim() == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.dim() != 2 or mask.shape[-1] != shape[1] or mask.shape[0] not in (1, shape[0]):
        raise DataError(
            f"{where}: mask has shape {list(mask.shape)} but k-space [H, W] = {list(shape)} needs "
            f"[1, {shape[1]}] or [{shape[0]}, {shape[1]}]"
        )
    return torch.broadcast_to((mask != 0).to(torch.float32), shape)[None].clone()


class SliceLoader:
    """Reads one slice of a volume, checks it, and applies the geometry.

    Args:
        geometry: the :class:`Geometry`.
        use_file_mask: honour a ``mask`` dataset stored in the file.
        read_maps: whether maps are needed at all.
    """

    def __init__(self, geometry: Geometry, use_file_mask: bool = True, read_maps: bool = True):
        self.geometry = geometry
        self.use_file_mask = use_file_mask
        self.read_maps = read_maps

    def __call__(self, volume: VolumeInfo, slice_num: int) -> PreparedSlice:
        raw = read_slice(volume, slice_num, read_maps=self.read_maps)
        where = f"{volume.path}: slice {slice_num}"
        file_mask = raw.file_mask if self.use_file_mask else None
        undersampled = False
        if file_mask is not None:
            full = torch.broadcast_to(file_mask, raw.kspace.shape[-2:])
            undersampled = not bool((raw.kspace * (1 - full)).abs().amax() > 0)
        maps = raw.maps
        if maps is not None and volume.unwhitening is not None:
            maps = unwhitened_unit_maps(maps, torch.from_numpy(volume.unwhitening))
        kspace, maps, file_mask = self.geometry.apply(
            raw.kspace, maps, file_mask, where, drop_padding=not undersampled
        )
        if file_mask is not None:
            file_mask = expand_mask(file_mask, tuple(kspace.shape[-2:]), where)
        return PreparedSlice(
            volume=volume,
            slice_num=slice_num,
            kspace=kspace.to(torch.complex64).contiguous(),
            maps=None if maps is None else maps.to(torch.complex64).contiguous(),
            file_mask=file_mask,
            undersampled=undersampled,
        )
