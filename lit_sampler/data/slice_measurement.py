"""One slice of a fastMRI-format file as the pipeline measures it, in the file's units, for Python use:
:func:`measure_slice`.

It runs exactly the data module's steps (:class:`~lit_sampler.data.source.FastMRISource`: geometry,
mask, SNR noise seeded per file, slice and SNR; :meth:`MeasurementTransform.measure
<lit_sampler.data.transforms.MeasurementTransform.measure>`) and stops before the per-slice scale,
which :meth:`lit_sampler.api.Sampler.reconstruct` applies itself. With the same ``seed`` and the
returned ``key``, ``reconstruct`` then gives the bits ``python -m lit_sampler predict`` gives for
that item (docs/python_api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Union

import torch

from ..errors import DataError
from .geometry import CropMode, ImageSize
from ..physics.noise import snr_label
from .transforms import MaskFunc, parse_snr


@dataclass
class SliceMeasurement:
    """A measured slice in the file's units (no per-slice scale applied).

    Attributes:
        kspace: ``[coils, H, W]`` complex64, ``M ⊙ (k + n)``: the masked k-space with the added noise.
        mask: ``[H, W]`` float32 0/1.
        sens_maps: ``[coils, H, W]`` complex64 from the file (or maps folder), or ``None``: then
            ``reconstruct`` estimates them by ESPIRiT (single-coil files: ``S = 1``).
        noise_var: ν, the complex noise variance per sampled point and coil (added noise plus a
            converted scanner file's measured noise; 0 for a noiseless simulation).
        snr_db: the SNR of the added noise in dB, or ``None`` (none added).
        target: ``[H, W]`` complex64 ground truth (MVUE with maps, RSS without), or ``None`` when the
            file's k-space is already undersampled.
        key: the slice's seed key ``"file.h5|slice|snr_label"``: the pipeline's item key without the
            sample index (:class:`~lit_sampler.data.items.ItemKey`).
        seed: the run seed the mask and noise were drawn with.
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    sens_maps: Optional[torch.Tensor]
    noise_var: float
    snr_db: Optional[float]
    target: Optional[torch.Tensor]
    key: str
    seed: int


def measure_slice(
    path: Union[str, Path],
    slice_num: int,
    *,
    snr_db: Optional[float] = None,
    mask: Optional[MaskFunc] = None,
    seed: int = 0,
    image_size: ImageSize = None,
    crop: CropMode = "csgm",
    target: Literal["auto", "mvue", "rss", "none"] = "auto",
    maps_dir: Optional[str] = None,
    maps_key: Optional[str] = None,
    use_file_mask: bool = True,
    mask_seed: Literal["run", "fastmri"] = "run",
) -> SliceMeasurement:
    """Slice ``slice_num`` of the file ``path`` measured as ``python -m lit_sampler predict`` with
    ``FastMRIDataModule`` of the same arguments measures it (their meaning is the data module's;
    ``mask=None`` is its default, fastMRI random lines, 8 % centre, 4×).

    Raises:
        DataError: the file's problems (as the data module names them), a slice out of range, or a
            pre-whitened scanner file (its images are combined through ``W⁻¹``, which
            ``reconstruct`` does not take: run it through the CLI).
    """
    from .source import FastMRISource

    snr = parse_snr(snr_db)
    source = FastMRISource(str(path), maps_dir, maps_key, None, image_size, crop, target, mask, seed,
                           use_file_mask=use_file_mask, mask_seed=mask_seed)
    (volume,), _ = source.volumes_and_slices(require_maps=False, snr_levels=[snr])
    if not 0 <= int(slice_num) < volume.num_slices:
        raise DataError(f"{volume.path}: slice {slice_num} does not exist; expected 0 … {volume.num_slices - 1}")
    if volume.unwhitening is not None:
        raise DataError(
            f"{volume.path}: pre-whitened scanner data (attribute 'whitened'): its images are combined through the "
            "unwhitening matrix, which Sampler.reconstruct does not take; run it with python -m lit_sampler predict"
        )
    raw = source.transform.measure(source.loader(volume, int(slice_num)), snr)
    return SliceMeasurement(
        kspace=raw.kspace.to(torch.complex64), mask=raw.mask[0], sens_maps=raw.maps, noise_var=float(raw.noise_var),
        snr_db=snr, target=None if raw.target is None else raw.target.to(torch.complex64),
        key=f"{volume.fname}|{int(slice_num)}|{snr_label(snr)}", seed=int(seed),
    )
