"""Measurements for training a supervised peer (E2E-VarNet): :class:`SupervisedDataModule`.

A supervised network learns the measurement distribution it is trained on, so it gets exactly the
one our prior is tested with: every training step draws, per slice, a fresh mask from the
configured mask function, an SNR from ``snr_range`` and CN(0, ν) noise on the sampled points,
and normalises by the 99th percentile of the noisy zero-filled image (the steps of
:mod:`lit_sampler.data.transforms`). Single-coil training files (the complex images the prior is
trained on) are seen by ``coils`` smooth coil maps drawn per step
(:func:`lit_sampler.data.phantoms.coil_maps`, ``Σ_c |S_c|² = 1``, so the RSS of the coil images is
the image magnitude); multi-coil files keep their own coils and maps.

Validation is the posterior pipeline itself (:class:`~lit_sampler.datamodules.FastMRIDataModule`
on ``val_path``: one mask per volume, noise per (file, slice, SNR)), so validation numbers compare
with the sampler's.
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Sequence, Union

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.geometry import CropMode, ImageSize
from ..data.items import ItemKey, MeasurementBatch
from ..data.phantoms import coil_maps
from ..data.selection import SliceSpec
from ..data.slice_loader import PreparedSlice
from ..data.source import DataPath, FastMRISource, check_count
from ..data.transforms import MaskFunc, Measurement, default_mask, parse_snr_range, percentile_scale
from ..errors import DataError
from ..physics.coils import combine
from ..physics.fft import fft2c, ifft2c
from ..physics.noise import add_measurement_noise
from .posterior import FastMRIDataModule, ItemRef, collate_measurements
from ..seeding import seeded_generator


def simulate_measurement(data: PreparedSlice, mask_fn: MaskFunc, snr_db: Optional[float], coils: int,
                         generator: torch.Generator, scale_percentile: float = 99.0, flips: Sequence[int] = ()) -> Measurement:
    """One random measurement of a fully sampled slice (mask, coils for single-coil data, noise),
    normalised as the posterior pipeline normalises: target MVUE, scale from the noisy zero-filled.

    ``flips``: image axes (−2, −1) to flip first (augmentation).
    """
    if data.undersampled:
        raise DataError(f"{data.where}: undersampled k-space has no ground truth to train on")
    coil_images = ifft2c(data.kspace)
    maps = data.maps
    if maps is None:
        if coil_images.shape[0] != 1:
            raise DataError(f"{data.where}: {coil_images.shape[0]} coils without maps; training needs maps or single-coil images")
        maps = coil_maps(*coil_images.shape[-2:], coils, generator)
        coil_images = maps * coil_images
    if flips:
        coil_images, maps = coil_images.flip(list(flips)), maps.flip(list(flips))
    kspace = fft2c(coil_images)
    mask = torch.broadcast_to(torch.as_tensor(mask_fn(tuple(kspace.shape[-2:]), generator), dtype=torch.float32),
                              kspace.shape[-2:])[None].clone()
    noisy, nu = add_measurement_noise(kspace, mask, snr_db, generator)
    unwhitening = data.unwhitening if data.maps is not None else None  # drawn coils are not whitened
    zero_filled = combine(noisy, maps, "mvue", unwhitening)
    scale = percentile_scale(zero_filled, scale_percentile)
    if not (math.isfinite(scale) and scale > 0):
        raise DataError(f"{data.where}: the zero-filled image is zero at the {scale_percentile:g}th percentile")
    return Measurement(
        kspace=(noisy / scale).to(torch.complex64), mask=mask, sens_maps=maps.to(torch.complex64),
        target=(combine(kspace, maps, "mvue", unwhitening) / scale).to(torch.complex64), has_target=True,
        zero_filled=(zero_filled / scale).to(torch.complex64), scale=scale, noise_var=nu / scale**2,
        snr_db=math.inf if snr_db is None else float(snr_db),
    )


class SimulatedMeasurements(Dataset):
    """Element ``i`` is a fresh ``(measurement, ref)`` of training slice ``i`` at every access: the
    ``n``-th access draws from ``seeded_generator(seed, "supervised", file, slice, n)`` (the SNR,
    the flips, the coils, the mask, the noise), so a run is reproducible without a global RNG."""

    def __init__(self, slices: list[PreparedSlice], mask_fn: MaskFunc, snr_levels: list[Optional[float]], coils: int,
                 seed: int, scale_percentile: float, augment_flips: bool):
        self.slices = slices
        self.mask_fn = mask_fn
        self.snr_levels = snr_levels
        self.coils = coils
        self.seed = seed
        self.scale_percentile = scale_percentile
        self.augment_flips = augment_flips
        self.draws = [0] * len(slices)

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, index: int) -> tuple[Measurement, ItemRef]:
        data = self.slices[index]
        draw = self.draws[index]
        self.draws[index] += 1
        generator = seeded_generator(self.seed, "supervised", data.volume.fname, data.slice_num, draw)
        snr = self.snr_levels[int(torch.randint(len(self.snr_levels), (1,), generator=generator))]
        flips = [axis for axis, flip in zip((-2, -1), (torch.rand(2, generator=generator) < 0.5).tolist())
                 if flip and self.augment_flips]
        measurement = simulate_measurement(data, self.mask_fn, snr, self.coils, generator, self.scale_percentile, flips)
        key = str(ItemKey.of(data.volume.fname, data.slice_num, snr, draw))
        return measurement, ItemRef(0, data.volume.fname, data.slice_num, snr, draw, key)


def _collate(items: list[tuple[Measurement, ItemRef]], seed: int) -> MeasurementBatch:
    return collate_measurements([m for m, _ in items], [r for _, r in items], seed)


class SupervisedDataModule(pl.LightningDataModule):
    """Training batches of simulated measurements (:class:`~lit_sampler.data.items.MeasurementBatch`,
    a fresh mask, SNR and noise per slice and step) and validation batches from the posterior
    pipeline, for ``python -m lit_sampler fit`` of :class:`~lit_sampler.lightning.VarNetTraining`.

    Args:
        data_path: training files (single-coil complex images, e.g. the prior's ``demo/data/train``,
            or multi-coil files with maps).
        val_path: validation files (multi-coil with maps, as the sampler reads them).
        mask: the mask function, drawn anew per slice and step (default: 4× random lines, 8 % centre).
        snr_range: the SNRs in dB drawn uniformly per slice and step (``null`` = no added noise).
        coils: coils simulated for single-coil training files.
        slices, image_size, crop, maps_dir, maps_key, scale_percentile: as for
            :class:`~lit_sampler.datamodules.FastMRIDataModule`.
        seed: seeds every draw (training) and the validation masks and noise.
        batch_size, num_workers: DataLoader settings (training shuffles).
        augment_flips: random up-down / left-right flips of the training slices.
    """

    def __init__(
        self,
        data_path: DataPath,
        val_path: Optional[DataPath] = None,
        mask: Optional[MaskFunc] = None,
        snr_range: list[Union[float, str, None]] = [20.0, 5.0],  # noqa: B006 - jsonargparse shows defaults
        coils: int = 8,
        slices: SliceSpec = None,
        image_size: ImageSize = None,
        crop: CropMode = "csgm",
        maps_dir: Optional[str] = None,
        maps_key: Optional[str] = None,
        scale_percentile: float = 99.0,
        seed: int = 0,
        batch_size: int = 4,
        num_workers: int = 0,
        augment_flips: bool = True,
    ):
        super().__init__()
        self.mask_fn = default_mask() if mask is None else mask
        self.source = FastMRISource(data_path, maps_dir, maps_key, slices, image_size, crop, "auto", self.mask_fn,
                                    seed, scale_percentile)
        self.snr_levels = parse_snr_range(snr_range)
        self.coils = check_count("coils", coils)
        self.batch_size = check_count("batch_size", batch_size)
        self.num_workers = int(num_workers)
        self.augment_flips = augment_flips
        self.val = None if val_path is None else FastMRIDataModule(
            val_path, maps_dir=maps_dir, maps_key=maps_key, image_size=image_size, crop=crop, mask=self.mask_fn,
            snr_range=snr_range, seed=seed, scale_percentile=scale_percentile, batch_size=batch_size,
            num_workers=num_workers)
        self.train_dataset: Optional[SimulatedMeasurements] = None

    def setup(self, stage: Optional[str] = None) -> None:
        """Read every training slice once (kept in memory) and list the validation items."""
        if self.train_dataset is not None:
            return
        volumes, selected = self.source.volumes_and_slices(require_maps=False)
        slices = [self.source.loader(volume, s) for volume, chosen in zip(volumes, selected) for s in chosen]
        if not slices:
            raise DataError(f"data_path {self.source.data_path!r}: no training slices found")
        shapes = sorted({tuple(s.kspace.shape[-2:]) for s in slices})
        if len(shapes) > 1:
            raise DataError(f"training slices must share one shape, found {shapes}; set image_size to crop them")
        self.train_dataset = SimulatedMeasurements(slices, self.mask_fn, self.snr_levels, self.coils, self.source.seed,
                                                   self.source.scale_percentile, self.augment_flips)
        if self.val is not None:
            self.val.setup(stage)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_dataset, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0,
                          collate_fn=functools.partial(_collate, seed=self.source.seed))

    def val_dataloader(self) -> Union[DataLoader, list]:
        return [] if self.val is None else self.val.predict_dataloader()
