"""Data layer: fastMRI-format slices, geometry, measurement transform, LightningDataModules.

See ``docs/data.md`` for the options, formulas and file layouts.
"""

from .datamodules import (
    FastMRIDataModule,
    ItemRef,
    PriorDataModule,
    TrainingDataModule,
    collate_items,
    group_into_batches,
    item_key,
)
from ..errors import DataError
from .fastmri import VolumeInfo, find_h5_files, inspect_volume, read_slice, select_slices, write_volume
from .geometry import Geometry, mvue, rss
from .transforms import MaskFunc, MeasurementTransform, SliceLoader, default_mask, parse_snr_range

__all__ = [
    "DataError",
    "FastMRIDataModule",
    "Geometry",
    "ItemRef",
    "MaskFunc",
    "MeasurementTransform",
    "PriorDataModule",
    "SliceLoader",
    "TrainingDataModule",
    "VolumeInfo",
    "collate_items",
    "default_mask",
    "find_h5_files",
    "group_into_batches",
    "inspect_volume",
    "item_key",
    "mvue",
    "parse_snr_range",
    "read_slice",
    "rss",
    "select_slices",
    "write_volume",
]
