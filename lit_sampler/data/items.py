"""Prediction items and the typed records that carry them: :class:`ItemKey`, :class:`MeasurementBatch`.

An item is ``(file, slice, SNR, sample)``. Its :class:`ItemKey` is its one identity: the string
``"file.h5|12|snr_20dB|0"`` seeds its random streams, and the key names its result shard
``items/snr_20dB/file.h5/s0012_n000.pt`` (and parses back from it, for resuming).

Batching happens in the data modules, not in the ``DataLoader``: :class:`PredictItems` groups the
remaining items by data shape ``(coils, H, W)`` (so every batch stacks), cuts each group into
batches of ``batch_size`` and serves a dataset whose element ``b`` is the whole collated batch ``b``
(``DataLoader(batch_size=1)`` with a collate that unwraps it). Under DDP, Lightning's predict loop
wraps the loader's sampler in ``UnrepeatedDistributedSamplerWrapper``
(``pytorch_lightning/trainer/connectors/data_connector.py::_get_distributed_sampler``), which hands
batch indices ``rank, rank + world, …`` to each rank (``overrides/distributed.py``): every item goes
to exactly one rank, none twice, none dropped, and the composition of a batch — hence every
result — does not depend on the number of processes. With fewer batches than ranks that sampler
would fail on the idle ranks (it asserts ``num_samples >= 1``), so the list is then padded with
empty batches (:meth:`MeasurementBatch.padding`) up to the world size; the module skips them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError
from ..physics.noise import noise_key, snr_label


@dataclass(frozen=True)
class ItemKey:
    """The identity of one item: file name, slice, SNR label (``snr_20dB``, ``snr_inf``), sample."""

    fname: str
    slice_num: int
    snr: str
    sample_idx: int

    @classmethod
    def of(cls, fname: str, slice_num: int, snr_db: Optional[float], sample_idx: int) -> "ItemKey":
        return cls(fname, int(slice_num), snr_label(snr_db), int(sample_idx))

    def __str__(self) -> str:
        return f"{self.fname}|{self.slice_num}|{self.snr}|{self.sample_idx}"

    @classmethod
    def parse(cls, text: str) -> "ItemKey":
        """The inverse of ``str()`` (file names may hold ``|``: the last three fields are split off)."""
        fname, slice_num, snr, sample_idx = str(text).rsplit("|", 3)
        return cls(fname, int(slice_num), snr, int(sample_idx))

    def shard_path(self, root: Path) -> Path:
        """Where the item's result shard lives in the run directory ``root``."""
        return Path(root) / "items" / self.snr / self.fname / f"s{self.slice_num:04d}_n{self.sample_idx:03d}.pt"

    @classmethod
    def from_shard_path(cls, path: Path) -> "ItemKey":
        """The key of a shard written at :meth:`shard_path`."""
        path = Path(path)
        slice_part, sample_part = path.stem.split("_")
        return cls(path.parent.name, int(slice_part[1:]), path.parent.parent.name, int(sample_part[1:]))


@dataclass
class MeasurementBatch:
    """One batch of ``B`` items of one shape, as the data modules yield it and ``predict_step`` reads it.

    Always: ``item_key`` (list of ``str(ItemKey)``), ``fname`` (list of str), ``slice_num``,
    ``sample_idx``, ``seed`` (the run seed, for the per-item random streams) int64 ``[B]``,
    ``snr_db`` float32 ``[B]`` (inf if noiseless), ``image_shape`` int64 ``[B, 3]`` (the sampler's
    state shape ``(C, H, W)`` per item).

    Posterior batches also carry the measurement (prior batches leave it ``None``):

    * ``kspace`` ``[B, coils, H, W]`` complex64: ``M ⊙ (k + n) / scale`` (single-coil: coils = 1);
    * ``mask`` ``[B, 1, H, W]`` float32; ``sens_maps`` ``[B, coils, H, W]`` complex64 (ones without maps);
    * ``target`` ``[B, H, W]`` complex64 ground truth / scale (MVUE, or RSS as complex) and
      ``has_target`` bool ``[B]`` (zeros / False without ground truth);
    * ``zero_filled`` ``[B, H, W]`` complex64: the target's formula on the measured k-space;
    * ``scale`` (the slice's normalisation) and ``noise_var`` (ν / scale², 0 if noiseless) float32 ``[B]``;
    * ``real_noise`` bool ``[B]``: the data carry the scanner's own noise (converted raw data).

    ``is_padding``: an empty batch for a DDP rank that would otherwise get none.
    """

    item_key: list[str]
    fname: list[str]
    slice_num: torch.Tensor
    sample_idx: torch.Tensor
    seed: torch.Tensor
    snr_db: torch.Tensor
    image_shape: torch.Tensor
    kspace: Optional[torch.Tensor] = None
    mask: Optional[torch.Tensor] = None
    sens_maps: Optional[torch.Tensor] = None
    target: Optional[torch.Tensor] = None
    has_target: Optional[torch.Tensor] = None
    zero_filled: Optional[torch.Tensor] = None
    scale: Optional[torch.Tensor] = None
    noise_var: Optional[torch.Tensor] = None
    is_padding: bool = False
    real_noise: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return len(self.item_key)

    @property
    def has_measurement(self) -> bool:
        return self.kspace is not None

    def noise_keys(self) -> list[str]:
        """Each item's noise level as ``cs_lambdas`` names it (:func:`lit_sampler.physics.noise.noise_key`)."""
        real = self.real_noise.tolist() if self.real_noise is not None else [False] * len(self)
        return [noise_key(float(snr), bool(r)) for snr, r in zip(self.snr_db.tolist(), real)]

    @classmethod
    def padding(cls) -> "MeasurementBatch":
        empty = torch.zeros(0, dtype=torch.int64)
        return cls([], [], empty, empty, empty, torch.zeros(0), torch.zeros(0, 3, dtype=torch.int64), is_padding=True)


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


def _unwrap_batch(batch: list) -> Any:
    # The dataset already returns collated batches; DataLoader(batch_size=1) wraps them in a list.
    return batch[0]


class BatchDataset(Dataset):
    """Element ``b`` is the collated batch ``b`` (``collate(keys)``; an empty key list is a padding batch)."""

    def __init__(self, batches: list[list[str]], collate):
        self.batches = batches
        self.collate = collate

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> MeasurementBatch:
        keys = self.batches[index]
        return self.collate(keys) if keys else MeasurementBatch.padding()


class PredictItems:
    """Item bookkeeping shared by the prediction data modules (mixed into ``LightningDataModule``).

    Subclasses list their items in :meth:`setup` (through :meth:`_finish_items`), and provide
    ``_shape_of(key)`` and ``_collator()``: a picklable ``keys -> MeasurementBatch`` holding only
    what loading needs (DataLoader workers get a copy, not the data module and its trainer).
    """

    batch_size: int
    num_workers: int = 0

    def _init_items(self) -> None:
        self.items: list[str] = []
        self.all_items: list[str] = []
        self._excluded: set[str] = set()
        self._is_setup = False

    def exclude_items(self, keys: Iterable[str]) -> int:
        """Drop items whose key is in ``keys`` (finished in an earlier run).

        May be called before or after :meth:`setup`, but before :meth:`predict_dataloader`. Under
        DDP every rank must exclude the same set, or the ranks' batch lists (which Lightning strides
        over ranks) disagree. Returns how many listed items were removed.
        """
        self._excluded |= {str(key) for key in keys}
        before = len(self.items)
        self.items = [k for k in self.items if k not in self._excluded]
        return before - len(self.items)

    def _finish_items(self, keys: list[str]) -> None:
        self.all_items = list(keys)
        self.items = [k for k in keys if k not in self._excluded]
        self._is_setup = True

    def _shape_of(self, key: str):
        raise NotImplementedError

    def _collator(self):
        raise NotImplementedError

    def collate(self, keys: Sequence[str]) -> MeasurementBatch:
        """The batch of ``keys`` as ``predict_dataloader`` would serve it (for inspection and tests)."""
        if not self._is_setup:
            self.setup("predict")
        return self._collator()(list(keys))

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
            BatchDataset(batches, self._collator()),
            batch_size=1,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=_unwrap_batch,
        )

    def __len__(self) -> int:
        """Number of remaining items."""
        return len(self.items)
