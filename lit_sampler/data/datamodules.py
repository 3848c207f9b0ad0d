"""LightningDataModules: posterior measurements over fastMRI files, prior shapes, training images.

Prediction (``FastMRIDataModule``, ``PriorDataModule``) works on **items**: one item is
``(file, slice, SNR, sample)``, identified by the string ``item_key``
``f"{fname}|{slice_num}|{snr_label(snr)}|{sample_idx}"``. ``setup()`` lists them in a canonical
order (file, slice, SNR as configured, sample); ``exclude_items`` removes finished ones (resume).

Batching happens here, not in the ``DataLoader``: ``predict_dataloader()`` groups the
remaining items by data shape ``(coils, H, W)`` (so every batch stacks), cuts each group into
batches of ``batch_size`` and serves a dataset whose element ``b`` is the whole collated batch ``b``
(``DataLoader(batch_size=1)`` with a collate that unwraps it). Under DDP, Lightning's predict loop
wraps the loader's sampler in ``UnrepeatedDistributedSamplerWrapper``
(``pytorch_lightning/trainer/connectors/data_connector.py::_get_distributed_sampler``), which hands
batch indices ``rank, rank + world, …`` to each rank (``overrides/distributed.py``): every item goes
to exactly one rank, none twice, none dropped, and the composition of a batch — hence every
result — does not depend on the number of processes. With fewer batches than ranks that sampler
would fail on the idle ranks (it asserts ``num_samples >= 1``), so the list is then padded with
``{"padding": True}`` batches (no items) up to the world size; the module skips them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Optional, Sequence, Union

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from ..fft import complex_to_channels
from ..noise import snr_label
from ..seeding import seeded_generator
from .fastmri import DataError, SliceSpec, VolumeInfo, find_h5_files, inspect_volume, select_all_slices
from .geometry import CropMode, Geometry, ImageSize, as_size
from .ismrmrd_raw import RawOptions
from .measured_noise import check_measured_data
from .raw_prepare import resolve_raw_files
from .transforms import (
    MaskFunc,
    Measurement,
    MeasurementTransform,
    PreparedSlice,
    SliceLoader,
    parse_snr_range,
    resolve_target,
)

TargetKind = Literal["auto", "mvue", "rss", "none"]


def item_key(fname: str, slice_num: int, snr_db: Optional[float], sample_idx: int) -> str:
    """The stable identity of an item: ``"file.h5|12|snr_20dB|0"``."""
    return f"{fname}|{int(slice_num)}|{snr_label(snr_db)}|{int(sample_idx)}"


@dataclass(frozen=True)
class ItemRef:
    """One prediction item: volume index, slice, SNR (``None`` = noiseless), sample index, key."""

    file_idx: int
    fname: str
    slice_num: int
    snr_db: Optional[float]
    sample_idx: int
    key: str


def _unwrap_batch(batch: list) -> Any:
    # The dataset already returns collated batches; DataLoader(batch_size=1) wraps them in a list.
    return batch[0]


def group_into_batches(keys: Sequence[str], shape_of, batch_size: int) -> list[list[str]]:
    """Chunk ``keys`` (in order) into batches of at most ``batch_size`` keys of one shape each.

    Shapes are grouped in order of first appearance, keys keep their order within a group.
    """
    if int(batch_size) < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    groups: dict[Any, list[str]] = {}
    for key in keys:
        groups.setdefault(shape_of(key), []).append(key)
    batches = []
    for group in groups.values():
        batches.extend(group[i : i + batch_size] for i in range(0, len(group), batch_size))
    return batches


def padding_batch() -> dict:
    """A batch without items, for ranks that would otherwise get none (``padding`` is True)."""
    return {"padding": True, "item_key": [], "fname": []}


class _BatchDataset(Dataset):
    """Element ``b`` is the collated batch ``b`` (a list of item keys per batch; an empty list is a
    :func:`padding_batch`)."""

    def __init__(self, batches: list[list[str]]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict:
        keys = self.batches[index]
        return self.collate(keys) if keys else padding_batch()

    def collate(self, keys: list[str]) -> dict:
        raise NotImplementedError


class _PredictItems:
    """Shared item bookkeeping of the prediction DataModules (mixed into LightningDataModule)."""

    batch_size: int
    num_workers: int = 0

    def _init_items(self) -> None:
        self.items: list[str] = []
        self._excluded: set[str] = set()
        self._is_setup = False

    def exclude_items(self, keys) -> int:
        """Drop items whose ``item_key`` is in ``keys`` (finished in an earlier run).

        May be called before or after :meth:`setup`, but before :meth:`predict_dataloader`. Under
        DDP every rank must exclude the same set, or the ranks' batch lists (which Lightning strides
        over ranks) disagree. Returns how many listed items were removed.
        """
        keys = set(keys)
        self._excluded |= keys
        before = len(self.items)
        self.items = [k for k in self.items if k not in self._excluded]
        return before - len(self.items)

    def _finish_items(self, keys: list[str]) -> None:
        self.all_items = list(keys)
        self.items = [k for k in keys if k not in self._excluded]
        self._is_setup = True

    def _shape_of(self, key: str):
        raise NotImplementedError

    def _batch_dataset(self, batches: list[list[str]]) -> Dataset:
        raise NotImplementedError

    def item_keys(self) -> list[str]:
        """Every item of this configuration, finished or not (``items`` holds the remaining ones)."""
        if not self._is_setup:
            self.setup("predict")
        return list(self.all_items)

    def predict_batches(self) -> list[list[str]]:
        """The item keys of every batch ``predict_dataloader`` will serve, in order."""
        if not self._is_setup:
            self.setup("predict")
        return group_into_batches(self.items, self._shape_of, self.batch_size)

    def _world_size(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1

    def predict_dataloader(self) -> DataLoader:
        """A loader over whole batches (see the module docstring for the DDP split and padding)."""
        batches = self.predict_batches()
        if 0 < len(batches) < self._world_size():
            batches = batches + [[] for _ in range(self._world_size() - len(batches))]
        return DataLoader(
            self._batch_dataset(batches),
            batch_size=1,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=_unwrap_batch,
        )


# --------------------------------------------------------------------------------------------------
# Posterior sampling over fastMRI files
# --------------------------------------------------------------------------------------------------


_STACKED = ("kspace", "mask", "sens_maps", "target", "zero_filled")


def collate_items(items: list[dict]) -> dict:
    """Stack item dicts of one shape into a batch.

    Tensors gain a leading ``B``; ``has_target`` → bool ``[B]``; ``scale``, ``noise_var``, ``snr_db``
    → float32 ``[B]``; ``slice_num``, ``sample_idx``, ``seed`` → int64 ``[B]``; ``fname``,
    ``item_key`` → lists of str; ``image_shape`` → int64 ``[B, 3]``, the state shape ``(2, H, W)``
    of each item.
    """
    batch: dict[str, Any] = {key: torch.stack([it[key] for it in items]) for key in _STACKED}
    batch["has_target"] = torch.tensor([it["has_target"] for it in items], dtype=torch.bool)
    for key in ("scale", "noise_var", "snr_db"):
        batch[key] = torch.tensor([it[key] for it in items], dtype=torch.float32)
    for key in ("slice_num", "sample_idx", "seed"):
        batch[key] = torch.tensor([it[key] for it in items], dtype=torch.int64)
    batch["fname"] = [it["fname"] for it in items]
    batch["item_key"] = [it["item_key"] for it in items]
    height, width = items[0]["target"].shape[-2:]
    batch["image_shape"] = torch.tensor([[2, height, width]] * len(items), dtype=torch.int64)
    return batch


def measurement_item(m: Measurement, ref: ItemRef, seed: int) -> dict:
    """The item dict of one :class:`ItemRef` (see ``FastMRIDataModule``)."""
    return {
        "seed": seed,
        "kspace": m.kspace,
        "mask": m.mask,
        "sens_maps": m.sens_maps,
        "target": m.target,
        "has_target": m.has_target,
        "zero_filled": m.zero_filled,
        "scale": m.scale,
        "noise_var": m.noise_var,
        "snr_db": m.snr_db,
        "fname": ref.fname,
        "slice_num": ref.slice_num,
        "sample_idx": ref.sample_idx,
        "item_key": ref.key,
    }


class PosteriorBatchDataset(_BatchDataset):
    """Loads and collates one batch of posterior items; a slice is read once per batch and a
    measurement computed once per ``(file, slice, SNR)`` (samples share it)."""

    def __init__(
        self,
        batches: list[list[str]],
        refs: dict[str, ItemRef],
        volumes: list[VolumeInfo],
        loader: SliceLoader,
        transform: MeasurementTransform,
    ):
        super().__init__(batches)
        self.refs = refs
        self.volumes = volumes
        self.loader = loader
        self.transform = transform

    def load_items(self, keys: Sequence[str]) -> list[dict]:
        slices: dict[tuple[int, int], PreparedSlice] = {}
        measurements: dict[tuple[int, int, str], Measurement] = {}
        items = []
        for key in keys:
            ref = self.refs[key]
            slice_id = (ref.file_idx, ref.slice_num)
            if slice_id not in slices:
                slices[slice_id] = self.loader(self.volumes[ref.file_idx], ref.slice_num)
            meas_id = (*slice_id, snr_label(ref.snr_db))
            if meas_id not in measurements:
                measurements[meas_id] = self.transform(slices[slice_id], ref.snr_db)
            items.append(measurement_item(measurements[meas_id], ref, self.transform.seed))
        return items

    def collate(self, keys: list[str]) -> dict:
        return collate_items(self.load_items(keys))


def _volumes_and_slices(data_path, maps_dir, maps_key, slices, geometry: Geometry, use_file_mask: bool,
                        raw: Optional[RawOptions] = None, snr_levels: Sequence[Optional[float]] = (None,)):
    # ISMRMRD raw files (recognised by content) are read through their cached, prepared version;
    # with a maps_dir their maps come from there, so the conversion skips ESPIRiT
    files = resolve_raw_files(find_h5_files(data_path), raw, with_maps=maps_dir is None)
    volumes = [inspect_volume(path, maps_dir=maps_dir, maps_key=maps_key) for path in files]
    for volume in volumes:
        geometry.check_fits(volume.height, volume.width, volume.path)
        check_measured_data(volume, snr_levels, use_file_mask)
        if use_file_mask and volume.mask_shape is not None:
            geometry.check_mask_croppable(len(volume.mask_shape) == 2, (volume.height, volume.width), volume.path)
    return volumes, select_all_slices(volumes, slices)


class FastMRIDataModule(_PredictItems, pl.LightningDataModule):
    """Undersampled, noisy, normalised measurements from fastMRI-format files, for posterior sampling.

    Items are ``(file, slice, SNR, sample)``; each batch is a dict (``B`` items of one shape):

    * ``kspace`` ``[B, coils, H, W]`` complex64: ``M ⊙ (k + n) / scale`` (single-coil: coils = 1);
    * ``mask`` ``[B, 1, H, W]`` float32; ``sens_maps`` ``[B, coils, H, W]`` complex64 (ones without maps);
    * ``target`` ``[B, H, W]`` complex64 ground truth / scale (MVUE, or RSS as complex) and
      ``has_target`` bool ``[B]`` (zeros / False without ground truth);
    * ``zero_filled`` ``[B, H, W]`` complex64: same formula as the target on the measured k-space;
    * ``scale`` (per-slice normalisation, ``scale_percentile`` of ``|zero_filled|`` before
      normalising), ``noise_var`` (ν / scale², normalised units, 0 if noiseless), ``snr_db`` (inf if
      noiseless): float32 ``[B]``;
    * ``fname``, ``item_key``: lists of str; ``slice_num``, ``sample_idx``, ``seed`` (the run seed,
      for the sampler's per-item streams): int64 ``[B]``;
    * ``image_shape``: int64 ``[B, 3]``, the sampler's state shape ``(2, H, W)`` per item.

    Padding batches ``{"padding": True, "item_key": [], "fname": []}`` appear only when there are
    fewer batches than DDP ranks.

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
        mask: a mask function (e.g. ``class_path: lit_sampler.masks.RandomLineMask``);
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
        data_path: Union[str, list[str]],
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
        self.data_path = data_path
        self.maps_dir = maps_dir
        self.maps_key = maps_key
        self.slices = slices
        self.geometry = Geometry(as_size(image_size), crop)
        self.target = target
        self.use_file_mask = use_file_mask
        self.raw = raw
        self.snr_levels = parse_snr_range(snr_range)
        if int(num_samples) < 1:
            raise DataError(f"num_samples must be >= 1, got {num_samples}")
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.transform = MeasurementTransform(mask, seed, scale_percentile, target, mask_seed)
        self.loader = SliceLoader(self.geometry, use_file_mask=use_file_mask)
        self.volumes: list[VolumeInfo] = []
        self.selected_slices: list[list[int]] = []
        self._refs: dict[str, ItemRef] = {}
        self._init_items()

    def prepare_data(self) -> None:
        """Convert ISMRMRD raw files into the cache (Lightning calls this once per node, before
        ``setup`` on every rank, so DDP ranks do not all convert the same file)."""
        resolve_raw_files(find_h5_files(self.data_path), self.raw, with_maps=self.maps_dir is None)

    def setup(self, stage: Optional[str] = None) -> None:
        """Find and validate the files (metadata only) and list the items. Idempotent."""
        if self._is_setup:
            return
        volumes, selected = _volumes_and_slices(
            self.data_path, self.maps_dir, self.maps_key, self.slices, self.geometry, self.use_file_mask,
            self.raw, self.snr_levels,
        )
        for volume in volumes:
            resolve_target(volume, self.target, require_maps=True)
        refs = {}
        for file_idx, (volume, slice_nums) in enumerate(zip(volumes, selected)):
            for slice_num in slice_nums:
                for snr in self.snr_levels:
                    for sample_idx in range(self.num_samples):
                        key = item_key(volume.fname, slice_num, snr, sample_idx)
                        refs[key] = ItemRef(file_idx, volume.fname, slice_num, snr, sample_idx, key)
        self.volumes, self.selected_slices, self._refs = volumes, selected, refs
        self._finish_items(list(refs))

    def _shape_of(self, key: str) -> tuple[int, int, int]:
        volume = self.volumes[self._refs[key].file_idx]
        return (volume.coils, *self.geometry.output_shape(volume.height, volume.width))

    def _batch_dataset(self, batches: list[list[str]]) -> PosteriorBatchDataset:
        return PosteriorBatchDataset(batches, self._refs, self.volumes, self.loader, self.transform)

    def load_items(self, keys: Sequence[str]) -> list[dict]:
        """The item dicts of ``keys`` (uncollated; for inspection and tests)."""
        if not self._is_setup:
            self.setup("predict")
        return self._batch_dataset([]).load_items(keys)

    def volume_slices(self) -> dict[str, list[int]]:
        """File name → the slices selected for this run (what a complete output volume holds)."""
        return {v.fname: list(s) for v, s in zip(self.volumes, self.selected_slices) if s}

    def volume_info(self, fname: str) -> VolumeInfo:
        """Metadata (path, shape, maps location, attrs such as ``max``) of a volume."""
        for volume in self.volumes:
            if volume.fname == fname:
                return volume
        raise KeyError(fname)

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

    def __len__(self) -> int:
        """Number of remaining items."""
        return len(self.items)


# --------------------------------------------------------------------------------------------------
# Prior sampling: no data, only shapes
# --------------------------------------------------------------------------------------------------


class PriorBatchDataset(_BatchDataset):
    def __init__(self, batches: list[list[str]], image_shape: tuple[int, int, int], seed: int):
        super().__init__(batches)
        self.image_shape = image_shape
        self.seed = seed

    def collate(self, keys: list[str]) -> dict:
        samples = [int(k.rsplit("|", 1)[1]) for k in keys]
        n = len(keys)
        return {
            "fname": ["prior"] * n,
            "slice_num": torch.zeros(n, dtype=torch.int64),
            "sample_idx": torch.tensor(samples, dtype=torch.int64),
            "snr_db": torch.full((n,), math.inf, dtype=torch.float32),
            "seed": torch.full((n,), self.seed, dtype=torch.int64),
            "item_key": list(keys),
            "image_shape": torch.tensor([list(self.image_shape)] * n, dtype=torch.int64),
        }


class PriorDataModule(_PredictItems, pl.LightningDataModule):
    """Items for unconditional (prior) sampling: ``num_samples`` states of shape ``[C, H, W]``.

    Batch: ``fname`` (``"prior"``), ``slice_num`` (0), ``sample_idx``, ``snr_db`` (inf), ``seed``,
    ``item_key`` (``"prior|0|snr_inf|k"``) and ``image_shape`` int64 ``[B, 3]`` (``(C, H, W)`` per
    item). No k-space.

    Args:
        image_size: ``H`` × ``W`` (int or ``[H, W]``); channels: ``C`` (2 per complex image).
        num_samples, batch_size: as for :class:`FastMRIDataModule`.
        seed: passed on per item (``seed``) for the sampler's per-item random streams.
    """

    def __init__(
        self,
        image_size: Union[int, tuple[int, int]],
        channels: int = 2,
        num_samples: int = 1,
        batch_size: int = 1,
        seed: int = 0,
    ):
        super().__init__()
        size = as_size(image_size)
        if size is None:
            raise DataError("PriorDataModule needs an image_size")
        if int(channels) < 1 or int(num_samples) < 1 or int(batch_size) < 1:
            raise DataError(
                f"channels, num_samples and batch_size must be >= 1, got {channels}, {num_samples}, {batch_size}"
            )
        self._image_shape = (int(channels), *size)
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.num_workers = 0
        self._init_items()

    def setup(self, stage: Optional[str] = None) -> None:
        if self._is_setup:
            return
        self._finish_items([item_key("prior", 0, None, k) for k in range(self.num_samples)])

    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every sample."""
        return self._image_shape

    def _shape_of(self, key: str):
        return self._image_shape

    def _batch_dataset(self, batches: list[list[str]]) -> PriorBatchDataset:
        return PriorBatchDataset(batches, self._image_shape, self.seed)

    def describe(self) -> dict:
        if not self._is_setup:
            self.setup("predict")
        return {"image_shape": self._image_shape, "items": len(self.all_items), "remaining": len(self.items)}

    def __len__(self) -> int:
        return len(self.items)


# --------------------------------------------------------------------------------------------------
# Training images for the score model
# --------------------------------------------------------------------------------------------------


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
        data_path: Union[str, list[str]],
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
        val_path: Optional[Union[str, list[str]]] = None,
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
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        self.data_path = data_path
        self.maps_dir = maps_dir
        self.maps_key = maps_key
        self.slices = slices
        self.geometry = Geometry(as_size(image_size), crop)
        self.target = target
        self.seed = int(seed)
        self.val_fraction = float(val_fraction)
        self.val_path = val_path
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.augment_flips = augment_flips
        self.cache = cache
        self.transform = MeasurementTransform(mask, seed, scale_percentile, target)
        # Same loader as FastMRIDataModule's default (use_file_mask=True), so scales agree.
        self.loader = SliceLoader(self.geometry, use_file_mask=True)
        self.train_dataset: Optional[TrainingImages] = None
        self.val_dataset: Optional[TrainingImages] = None

    def _dataset(self, volumes, selected, augment: bool) -> TrainingImages:
        refs = [(i, s) for i, slice_nums in enumerate(selected) for s in slice_nums]
        return TrainingImages(refs, volumes, self.loader, self.transform, self.cache, augment)

    def _load_split(self, data_path):
        volumes, selected = _volumes_and_slices(
            data_path, self.maps_dir, self.maps_key, self.slices, self.geometry, True
        )
        for volume in volumes:
            resolve_target(volume, self.target, require_maps=False)
        return volumes, selected

    def setup(self, stage: Optional[str] = None) -> None:
        """Validate the files, split train/val, check one image shape, fill the caches."""
        if self.train_dataset is not None:
            return
        volumes, selected = self._load_split(self.data_path)
        if self.val_path is not None:
            val_volumes, val_selected = self._load_split(self.val_path)
        elif self.val_fraction > 0:
            order = torch.randperm(len(volumes), generator=seeded_generator(self.seed, "val_split")).tolist()
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
            self.geometry.output_shape(v.height, v.width)
            for v, s in list(zip(volumes, selected)) + list(zip(val_volumes, val_selected))
            if s
        }
        if len(shapes) > 1:
            raise DataError(
                f"training images must share one shape, found {sorted(shapes)}; set image_size to crop them"
            )
        self._image_shape = (2, *shapes.pop())
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
        return self._image_shape

    def all_images(self, max_items: Optional[int] = None, split: str = "train") -> torch.Tensor:
        """Images ``[N, 2, H, W]`` of a split (unflipped), e.g. for σ_begin = max pairwise distance
        (Song & Ermon 2020, technique 1). ``max_items`` takes an evenly spaced subset."""
        if self.train_dataset is None:
            self.setup("fit")
        dataset = self.train_dataset if split == "train" else self.val_dataset
        if dataset is None or len(dataset) == 0:
            return torch.zeros(0, *self._image_shape)
        n = len(dataset)
        if max_items is None or max_items >= n:
            indices = list(range(n))
        else:
            indices = torch.linspace(0, n - 1, max(int(max_items), 1)).round().long().unique().tolist()
        return torch.stack([dataset.image(i) for i in indices])
