"""Training images for the score model: :class:`TrainingDataModule` (denoising score matching)."""

from __future__ import annotations

from typing import Optional, Union

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.fastmri import VolumeInfo
from ..data.geometry import CropMode, ImageSize
from ..data.selection import SliceSpec
from ..data.slice_loader import SliceLoader
from ..data.source import DataPath, FastMRISource, TargetKind, check_count
from ..data.transforms import MaskFunc, MeasurementTransform
from ..errors import DataError
from ..physics.fft import complex_to_channels
from ..seeding import seeded_generator


class TrainingImages(Dataset):
    """Normalised complex ground-truth images as real ``[2, H, W]`` float32 tensors.

    Element ``i`` is ``complex_to_channels(x★ / s)`` for the slice ``refs[i]``, with ``x★`` and
    ``s`` computed exactly as :class:`FastMRIDataModule` computes ``target`` and ``scale`` for that
    slice with ``snr=None`` (same loader, geometry, mask, seed and percentile).

    Args:
        refs: ``(volume index, slice)`` pairs.
        cache: keep the images in memory once loaded (filled eagerly by :meth:`fill_cache`).
        augment_flips: flip each returned image up-down / left-right with probability 1/2
            (torch's global RNG, seeded per worker by the DataLoader / ``seed_everything``).
    """

    def __init__(
        self,
        refs: list[tuple[int, int]],
        volumes: list[VolumeInfo],
        loader: SliceLoader,
        transform: MeasurementTransform,
        cache: bool = True,
        augment_flips: bool = False,
    ):
        self.refs = refs
        self.volumes = volumes
        self.loader = loader
        self.transform = transform
        self.cache = cache
        self.augment_flips = augment_flips
        self._images: Optional[torch.Tensor] = None
        self._scales: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return len(self.refs)

    def load(self, index: int) -> dict:
        """``{"image": [2, H, W], "scale": float, "fname": str, "slice_num": int}`` (uncached, unflipped)."""
        file_idx, slice_num = self.refs[index]
        volume = self.volumes[file_idx]
        data = self.loader(volume, slice_num)
        measurement = self.transform(data, None)
        if not measurement.has_target:
            raise DataError(f"{data.where}: no ground truth (target='none' or undersampled data) to train on")
        image = complex_to_channels(measurement.target[None, None])[0].to(torch.float32)
        return {"image": image, "scale": measurement.scale, "fname": volume.fname, "slice_num": slice_num}

    def fill_cache(self) -> None:
        """Load every image once (main process) so workers share them (fork) and epochs re-read nothing."""
        if self._images is not None or not self.refs:
            return
        loaded = [self.load(i) for i in range(len(self.refs))]
        self._images = torch.stack([x["image"] for x in loaded])
        self._scales = torch.tensor([x["scale"] for x in loaded], dtype=torch.float64)

    def image(self, index: int) -> torch.Tensor:
        if self.cache:
            self.fill_cache()
            return self._images[index]
        return self.load(index)["image"]

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.image(index)
        if self.augment_flips:
            flips = torch.rand(2) < 0.5
            dims = [d for d, f in zip((-2, -1), flips.tolist()) if f]
            if dims:
                image = torch.flip(image, dims)
        return image


class TrainingDataModule(pl.LightningDataModule):
    """Normalised ground-truth images ``[B, 2, H, W]`` float32 for denoising score matching.

    Each image is ``complex_to_channels(x★ / s)``: the MVUE (with maps; the complex image for
    single-coil data with ``target="mvue"``) or RSS (``target="auto"`` without maps), cropped as
    configured, divided by the **same** per-slice scale ``s`` the :class:`FastMRIDataModule` computes
    for that slice with ``snr=None`` and the same ``mask``/``seed``/``scale_percentile`` — the prior
    must see the normalisation the sampler will use. The code path is shared with the posterior
    DataModule (``SliceLoader`` + ``MeasurementTransform``).

    Args:
        data_path, maps_dir, maps_key, slices, image_size, crop, target, mask, seed,
            scale_percentile: as for :class:`FastMRIDataModule`. All images must have one shape
            (set ``image_size`` for mixed data).
        val_fraction: fraction of the **files** (volumes, so no slice leaks between splits) held
            out for validation, chosen by a seeded shuffle; ignored when ``val_path`` is given.
        val_path: separate validation files (same options).
        batch_size, num_workers: DataLoader settings (training shuffles; workers persist).
        augment_flips: random up-down / left-right flips of training images.
        cache: load all images at ``setup`` and keep them in memory (fast for small data: each
            image is read once instead of once per epoch). ``False`` keeps reading lazily per item
            (for data that does not fit in memory).
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
        seed: int = 0,
        scale_percentile: float = 99.0,
        val_fraction: float = 0.0,
        val_path: Optional[DataPath] = None,
        batch_size: int = 16,
        num_workers: int = 0,
        augment_flips: bool = False,
        cache: bool = True,
    ):
        super().__init__()
        if target == "none":
            raise DataError("TrainingDataModule needs ground truth: target must be 'auto', 'mvue' or 'rss', got 'none'")
        if not 0.0 <= float(val_fraction) < 1.0:
            raise DataError(f"val_fraction must lie in [0, 1), got {val_fraction}")
        # the posterior module's defaults (use_file_mask on), so that scales agree with the sampler's
        self.source = FastMRISource(data_path, maps_dir, maps_key, slices, image_size, crop, target, mask, seed,
                                    scale_percentile)
        self.val_fraction = float(val_fraction)
        self.val_path = val_path
        self.batch_size = check_count("batch_size", batch_size)
        self.num_workers = int(num_workers)
        self.augment_flips = augment_flips
        self.cache = cache
        self.train_dataset: Optional[TrainingImages] = None
        self.val_dataset: Optional[TrainingImages] = None

    def _dataset(self, volumes, selected, augment: bool) -> TrainingImages:
        refs = [(i, s) for i, slice_nums in enumerate(selected) for s in slice_nums]
        return TrainingImages(refs, volumes, self.source.loader, self.source.transform, self.cache, augment)

    def setup(self, stage: Optional[str] = None) -> None:
        """Validate the files, split train/val, check one image shape, fill the caches."""
        if self.train_dataset is not None:
            return
        volumes, selected = self.source.volumes_and_slices(require_maps=False)
        if self.val_path is not None:
            val_volumes, val_selected = self.source.volumes_and_slices(self.val_path, require_maps=False)
        elif self.val_fraction > 0:
            order = torch.randperm(len(volumes), generator=seeded_generator(self.source.seed, "val_split")).tolist()
            n_val = max(1, round(self.val_fraction * len(volumes)))
            if n_val >= len(volumes):
                raise DataError(
                    f"val_fraction={self.val_fraction} of {len(volumes)} file(s) leaves no training file; "
                    "expected at least one file per split (the split is by volume)"
                )
            held = set(order[:n_val])
            val_volumes = volumes
            val_selected = [s if i in held else [] for i, s in enumerate(selected)]
            selected = [[] if i in held else s for i, s in enumerate(selected)]
        else:
            val_volumes, val_selected = [], []
        shapes = {
            self.source.output_shape(v)
            for v, s in list(zip(volumes, selected)) + list(zip(val_volumes, val_selected))
            if s
        }
        if len(shapes) > 1:
            raise DataError(
                f"training images must share one shape, found {sorted(shapes)}; set image_size to crop them"
            )
        self.sample_shape = (2, *shapes.pop())
        self.train_dataset = self._dataset(volumes, selected, self.augment_flips)
        self.val_dataset = self._dataset(val_volumes, val_selected, False) if val_volumes else None
        if self.cache:
            self.train_dataset.fill_cache()
            if self.val_dataset is not None:
                self.val_dataset.fill_cache()

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_dataset,
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> Union[DataLoader, list]:
        if self.val_dataset is None or len(self.val_dataset) == 0:
            return []
        return DataLoader(
            self.val_dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def image_shape(self) -> tuple[int, int, int]:
        """``(2, H, W)`` of every training image."""
        if self.train_dataset is None:
            self.setup("fit")
        return self.sample_shape

    def all_images(self, max_items: Optional[int] = None, split: str = "train") -> torch.Tensor:
        """Images ``[N, 2, H, W]`` of a split (unflipped), e.g. for σ_begin = max pairwise distance
        (Song & Ermon 2020, technique 1). ``max_items`` takes an evenly spaced subset."""
        if self.train_dataset is None:
            self.setup("fit")
        dataset = self.train_dataset if split == "train" else self.val_dataset
        if dataset is None or len(dataset) == 0:
            return torch.zeros(0, *self.sample_shape)
        n = len(dataset)
        if max_items is None or max_items >= n:
            indices = list(range(n))
        else:
            indices = torch.linspace(0, n - 1, max(int(max_items), 1)).round().long().unique().tolist()
        return torch.stack([dataset.image(i) for i in indices])
