"""Prior sampling: no data, only shapes (:class:`PriorDataModule`)."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import pytorch_lightning as pl
import torch

from ..data.geometry import as_size
from ..data.items import ItemKey, MeasurementBatch, PredictItems
from ..errors import DataError

PRIOR_FNAME = "prior"


class PriorCollate:
    """The batch of prior items ``keys``: identities and state shapes, no measurement."""

    def __init__(self, image_shape: tuple[int, int, int], seed: int):
        self.image_shape = image_shape
        self.seed = seed

    def __call__(self, keys: Sequence[str]) -> MeasurementBatch:
        count = len(keys)
        return MeasurementBatch(
            item_key=list(keys),
            fname=[PRIOR_FNAME] * count,
            slice_num=torch.zeros(count, dtype=torch.int64),
            sample_idx=torch.tensor([ItemKey.parse(k).sample_idx for k in keys], dtype=torch.int64),
            seed=torch.full((count,), self.seed, dtype=torch.int64),
            snr_db=torch.full((count,), math.inf, dtype=torch.float32),
            image_shape=torch.tensor([list(self.image_shape)] * count, dtype=torch.int64),
        )


class PriorDataModule(PredictItems, pl.LightningDataModule):
    """Items for unconditional (prior) sampling: ``num_samples`` states of shape ``[C, H, W]``.

    Batches are :class:`~lit_sampler.data.items.MeasurementBatch` es without a measurement: ``fname``
    ``"prior"``, ``slice_num`` 0, ``snr_db`` inf, keys ``"prior|0|snr_inf|k"``.

    Args:
        image_size: ``H`` × ``W`` (int or ``[H, W]``); channels: ``C`` (2 per complex image).
        num_samples, batch_size: as for :class:`~lit_sampler.datamodules.FastMRIDataModule`.
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
        self.sample_shape = (int(channels), *size)
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.num_workers = 0
        self._init_items()

    def setup(self, stage: Optional[str] = None) -> None:
        if self._is_setup:
            return
        self._finish_items([str(ItemKey.of(PRIOR_FNAME, 0, None, k)) for k in range(self.num_samples)])

    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every sample."""
        return self.sample_shape

    def _shape_of(self, key: str):
        return self.sample_shape

    def _collator(self) -> PriorCollate:
        return PriorCollate(self.sample_shape, self.seed)

    def measurement_settings(self) -> dict[str, Any]:
        """What decides an item's content (recorded in ``run_settings.json``): the seed and the shape."""
        return {"seed": self.seed, "mask": None, "scale_percentile": None, "target": None, "geometry": None,
                "use_file_mask": None, "maps_dir": None, "maps_key": None, "image_shape": list(self.sample_shape)}

    def volume_attributes(self) -> dict[str, dict[str, Any]]:
        return {}

    def describe(self) -> dict:
        if not self._is_setup:
            self.setup("predict")
        return {"image_shape": self.sample_shape, "items": len(self.all_items), "remaining": len(self.items)}
