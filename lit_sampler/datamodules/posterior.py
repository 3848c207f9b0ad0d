"""Posterior sampling over fastMRI files: :class:`FastMRIDataModule` and the loading of its batches."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Optional, Sequence, Union

import pytorch_lightning as pl
import torch

from ..data.fastmri import VolumeInfo
from ..data.geometry import CropMode, ImageSize
from ..data.ismrmrd_raw import RawOptions
from ..data.items import ItemKey, MeasurementBatch, PredictItems
from ..data.selection import SliceSpec
from ..data.slice_loader import PreparedSlice, SliceLoader
from ..data.source import DataPath, FastMRISource, TargetKind, check_count
from ..data.transforms import MaskFunc, Measurement, MeasurementTransform, parse_snr_range
from ..outputs.export import file_voxel_size, output_voxel_size
from ..physics.noise import noise_key, snr_label


@dataclass(frozen=True)
class ItemRef:
    """Where an item's data comes from: volume index, slice, SNR (``None`` = noiseless), sample, key."""

    file_idx: int
    fname: str
    slice_num: int
    snr_db: Optional[float]
    sample_idx: int
    key: str


def collate_measurements(measurements: Sequence[Measurement], refs: Sequence[ItemRef], seed: int) -> MeasurementBatch:
    """Stack the measurements of items of one shape into a :class:`MeasurementBatch`."""
    height, width = measurements[0].target.shape[-2:]
    count = len(refs)
    return MeasurementBatch(
        item_key=[ref.key for ref in refs],
        fname=[ref.fname for ref in refs],
        slice_num=torch.tensor([ref.slice_num for ref in refs], dtype=torch.int64),
        sample_idx=torch.tensor([ref.sample_idx for ref in refs], dtype=torch.int64),
        seed=torch.full((count,), int(seed), dtype=torch.int64),
        snr_db=torch.tensor([m.snr_db for m in measurements], dtype=torch.float32),
        image_shape=torch.tensor([[2, height, width]] * count, dtype=torch.int64),
        kspace=torch.stack([m.kspace for m in measurements]),
        mask=torch.stack([m.mask for m in measurements]),
        sens_maps=torch.stack([m.sens_maps for m in measurements]),
        target=torch.stack([m.target for m in measurements]),
        has_target=torch.tensor([m.has_target for m in measurements], dtype=torch.bool),
        zero_filled=torch.stack([m.zero_filled for m in measurements]),
        scale=torch.tensor([m.scale for m in measurements], dtype=torch.float32),
        noise_var=torch.tensor([m.noise_var for m in measurements], dtype=torch.float32),
        real_noise=torch.tensor([m.real_noise for m in measurements], dtype=torch.bool),
    )


class PosteriorCollate:
    """Loads and collates one batch of posterior items; a slice is read once per batch and a
    measurement computed once per ``(file, slice, SNR)`` (samples share it)."""

    def __init__(self, refs: dict[str, ItemRef], volumes: list[VolumeInfo], loader: SliceLoader, transform: MeasurementTransform):
        self.refs = refs
        self.volumes = volumes
        self.loader = loader
        self.transform = transform

    def measurements(self, keys: Sequence[str]) -> list[Measurement]:
        slices: dict[tuple[int, int], PreparedSlice] = {}
        measurements: dict[tuple[int, int, str], Measurement] = {}
        out = []
        for key in keys:
            ref = self.refs[key]
            slice_id = (ref.file_idx, ref.slice_num)
            if slice_id not in slices:
                slices[slice_id] = self.loader(self.volumes[ref.file_idx], ref.slice_num)
            meas_id = (*slice_id, snr_label(ref.snr_db))
            if meas_id not in measurements:
                measurements[meas_id] = self.transform(slices[slice_id], ref.snr_db)
            out.append(measurements[meas_id])
        return out

    def __call__(self, keys: Sequence[str]) -> MeasurementBatch:
        return collate_measurements(self.measurements(keys), [self.refs[key] for key in keys], self.transform.seed)


def nominal_acceleration(mask_fn: Any) -> Optional[float]:
    """The acceleration a mask function was configured with, when it has a single one."""
    values = getattr(mask_fn, "accelerations", None)
    if values is None and getattr(mask_fn, "acceleration", None) is not None:
        values = [mask_fn.acceleration]
    return float(values[0]) if values and len(set(values)) == 1 else None


class FastMRIDataModule(PredictItems, pl.LightningDataModule):
    """Undersampled, noisy, normalised measurements from fastMRI-format files, for posterior sampling.

    Items are ``(file, slice, SNR, sample)``; each batch is a :class:`~lit_sampler.data.items.MeasurementBatch`
    of ``B`` items of one shape. Empty padding batches appear only when there are fewer batches than DDP ranks.

    Args:
        data_path: a folder (its ``*.h5``, sorted), a glob, a file, or a list of those; ISMRMRD raw
            data files among them are recognised by content and converted (see ``raw``).
        maps_dir: folder with maps files of the same names (key ``maps_key`` or ``s_maps``), or
            BART ``<stem>.cfl``/``.hdr`` pairs (:mod:`lit_sampler.data.bart`).
        maps_key: maps dataset name; ``None`` looks for ``sens_maps``, ``s_maps``, ``maps`` in the
            k-space file.
        slices: ``None``/"all", "middle", "a:b" (quoted in YAML), a list of indices, or a dict
            file name → indices.
        image_size: target ``H`` × ``W`` (int or ``[H, W]``); ``None`` keeps the data size.
        crop: "csgm" (PE cropped in k-space, readout in image space; Jalal et al.) or "image".
        target: "auto" (MVUE with maps, RSS without), "mvue", "rss" or "none".
        mask: a mask function (e.g. ``class_path: lit_sampler.physics.masks.RandomLineMask``);
            ``None`` → ``RandomLineMask([0.08], [4])``. One draw per volume.
        use_file_mask: use a ``mask`` dataset stored in a file instead, when present.
        snr_range: measurement SNRs in dB; ``null`` / ``inf`` = no added noise.
        seed: seeds masks (per volume) and noise (per file, slice, SNR).
        mask_seed: ``run`` (default): masks drawn from ``(seed, file name)``; ``fastmri``: drawn
            exactly as fastMRI's validation does, ``RandomState(tuple(map(ord, file name)))`` into
            its ``RandomMaskFunc`` / ``EquispacedMaskFractionFunc`` algorithm (line masks only), so
            results compare with fastMRI baselines on the same masks.
        num_samples: posterior samples per (file, slice, SNR).
        scale_percentile: percentile of the zero-filled magnitude used as the scale.
        batch_size: items per batch; num_workers: DataLoader workers.
        raw: how ISMRMRD raw files in ``data_path`` are converted (averages, contrast, whitening,
            ESPIRiT settings, cache folder; :class:`~lit_sampler.data.ismrmrd_raw.RawOptions`);
            ``None`` = the defaults. Converted once into the cache (``prepare_data``), then read
            like a fastMRI file.
    """

    def __init__(
        self,
        data_path: DataPath,
        maps_dir: Optional[str] = None,
        maps_key: Optional[str] = None,
        slices: SliceSpec = None,
        image_size: ImageSize = None,
        crop: CropMode = "csgm",
        target: TargetKind = "auto",
        mask: Optional[MaskFunc] = None,
        use_file_mask: bool = True,
        snr_range: list[Union[float, str, None]] = [None],  # noqa: B006 - jsonargparse shows defaults
        seed: int = 0,
        mask_seed: Literal["run", "fastmri"] = "run",
        num_samples: int = 1,
        scale_percentile: float = 99.0,
        batch_size: int = 1,
        num_workers: int = 0,
        raw: Optional[RawOptions] = None,
    ):
        super().__init__()
        self.source = FastMRISource(data_path, maps_dir, maps_key, slices, image_size, crop, target, mask, seed,
                                    scale_percentile, use_file_mask, mask_seed, raw)
        self.snr_levels = parse_snr_range(snr_range)
        self.num_samples = check_count("num_samples", num_samples)
        self.batch_size = check_count("batch_size", batch_size)
        self.num_workers = int(num_workers)
        self.volumes: list[VolumeInfo] = []
        self.selected_slices: list[list[int]] = []
        self._refs: dict[str, ItemRef] = {}
        self._init_items()

    # the settings that decide an item's measurement (recorded in run_settings.json)
    @property
    def seed(self) -> int:
        return self.source.seed

    @property
    def transform(self) -> MeasurementTransform:
        return self.source.transform

    def prepare_data(self) -> None:
        """Convert ISMRMRD raw files into the cache (Lightning calls this once per node, before
        ``setup`` on every rank, so DDP ranks do not all convert the same file)."""
        self.source.files()

    def setup(self, stage: Optional[str] = None) -> None:
        """Find and validate the files (metadata only) and list the items. Idempotent."""
        if self._is_setup:
            return
        volumes, selected = self.source.volumes_and_slices(require_maps=True, snr_levels=self.snr_levels)
        refs = {}
        for file_idx, (volume, slice_nums) in enumerate(zip(volumes, selected)):
            for slice_num in slice_nums:
                for snr in self.snr_levels:
                    for sample_idx in range(self.num_samples):
                        key = str(ItemKey.of(volume.fname, slice_num, snr, sample_idx))
                        refs[key] = ItemRef(file_idx, volume.fname, slice_num, snr, sample_idx, key)
        self.volumes, self.selected_slices, self._refs = volumes, selected, refs
        self._finish_items(list(refs))

    def _shape_of(self, key: str) -> tuple[int, int, int]:
        volume = self.volumes[self._refs[key].file_idx]
        return (volume.coils, *self.source.output_shape(volume))

    def _collator(self) -> PosteriorCollate:
        return PosteriorCollate(self._refs, self.volumes, self.source.loader, self.source.transform)

    def measurements(self, keys: Sequence[str]) -> list[Measurement]:
        """The measurements of ``keys`` (uncollated; for inspection and tests)."""
        if not self._is_setup:
            self.setup("predict")
        return self._collator().measurements(keys)

    def measurement_settings(self) -> dict[str, Any]:
        """What decides an item's measurement (recorded in ``run_settings.json``, checked on resume)."""
        source = self.source
        settings = {
            "seed": source.seed, "mask": source.transform.mask_fn, "scale_percentile": source.scale_percentile,
            "target": source.target, "geometry": source.geometry, "use_file_mask": source.use_file_mask,
            "maps_dir": source.maps_dir, "maps_key": source.maps_key, "image_shape": None,
        }
        if source.mask_seed != "run":  # (absent by default: older run directories still resume)
            settings["mask_seed"] = source.mask_seed
        if any(volume.attrs.get("real_noise") for volume in self.volumes):
            # ISMRMRD input: how it was converted decides the data (the cache folder does not)
            settings["raw"] = (source.raw or RawOptions()).settings()
        return settings

    def volume_attributes(self) -> dict[str, dict[str, Any]]:
        """Per file: ``multicoil``, ``acquisition`` and the configured ``acceleration`` (what
        fastMRI's ``evaluate.py`` filters on), and the output voxel size ``voxel_size_mm`` when the
        file tells it (for the exports)."""
        acceleration = nominal_acceleration(self.source.transform.mask_fn)
        out = {}
        for volume in self.volumes:
            attrs: dict[str, Any] = {"multicoil": bool(volume.multicoil)}
            voxel = output_voxel_size(file_voxel_size(volume), (volume.height, volume.width), self.source.geometry)
            if voxel is not None:
                attrs["voxel_size_mm"] = voxel
            if "acquisition" in volume.attrs:
                attrs["acquisition"] = str(volume.attrs["acquisition"])
            if volume.mask_shape is None and acceleration is not None:
                attrs["acceleration"] = int(acceleration) if acceleration == int(acceleration) else acceleration
            out[volume.fname] = attrs
        return out

    def noise_keys(self) -> list[str]:
        """The noise levels of this run's measurements as ``cs_lambdas`` names them
        (:func:`lit_sampler.physics.noise.noise_key`; ``measured`` for scanner data at ``snr: null``), in
        ``snr_range`` order: what the sampler checks its λ against before the first chain."""
        if not self._is_setup:
            self.setup("predict")
        real = sorted({bool(v.attrs.get("real_noise", False)) for v, s in zip(self.volumes, self.selected_slices) if s})
        return list(dict.fromkeys(noise_key(snr, r) for snr in self.snr_levels for r in real))

    def volume_slices(self) -> dict[str, list[int]]:
        """File name → the slices selected for this run (what a complete output volume holds)."""
        return {v.fname: list(s) for v, s in zip(self.volumes, self.selected_slices) if s}

    def describe(self) -> dict:
        """Counts for logs: files, slices, SNR levels, samples, items (all / remaining), batches."""
        if not self._is_setup:
            self.setup("predict")
        return {
            "files": sum(1 for s in self.selected_slices if s),
            "slices": sum(len(s) for s in self.selected_slices),
            "snr_db": [math.inf if s is None else s for s in self.snr_levels],
            "num_samples": self.num_samples,
            "items": len(self.all_items),
            "remaining": len(self.items),
            "batches": len(self.predict_batches()),
            "shapes": sorted({self._shape_of(k) for k in self.all_items}),
        }
