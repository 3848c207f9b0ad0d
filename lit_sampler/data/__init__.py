"""Data layer: fastMRI-format slices, geometry, measurement transform, typed item records, LightningDataModules.

See ``docs/data.md`` for the options, formulas and file layouts.
"""

from ..errors import DataError
from .items import ItemKey, MeasurementBatch, group_into_batches
from .posterior import FastMRIDataModule, ItemRef
from .prior import PriorDataModule
from .source import FastMRISource
from .training_data import TrainingDataModule
from .fastmri import VolumeInfo, inspect_volume, read_slice
from .fastmri_write import write_volume
from .geometry import Geometry, mvue, rss
from .selection import find_h5_files, select_slices
from .slice_loader import SliceLoader
from .transforms import MaskFunc, MeasurementTransform, default_mask, parse_snr_range

__all__ = [
    "DataError",
    "FastMRIDataModule",
    "FastMRISource",
    "Geometry",
    "ItemKey",
    "ItemRef",
    "MaskFunc",
    "MeasurementBatch",
    "MeasurementTransform",
    "PriorDataModule",
    "SliceLoader",
    "TrainingDataModule",
    "VolumeInfo",
    "default_mask",
    "find_h5_files",
    "group_into_batches",
    "inspect_volume",
    "mvue",
    "parse_snr_range",
    "read_slice",
    "rss",
    "select_slices",
    "write_volume",
]
