"""Data layer: fastMRI-format slices, geometry, measurement transform, typed item records, LightningDataModules.

See ``docs/data.md`` for the options, formulas and file layouts.

The names below are imported on first use (PEP 562), so that importing a light submodule such as
:mod:`lit_sampler.data.geometry` does not pull in h5py and Lightning through this package.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "DataError": "..errors",
    "ItemKey": ".items",
    "MeasurementBatch": ".items",
    "group_into_batches": ".items",
    "FastMRIDataModule": ".posterior",
    "ItemRef": ".posterior",
    "PriorDataModule": ".prior",
    "FastMRISource": ".source",
    "TrainingDataModule": ".training_data",
    "VolumeInfo": ".fastmri",
    "inspect_volume": ".fastmri",
    "read_slice": ".fastmri",
    "write_volume": ".fastmri_write",
    "Geometry": ".geometry",
    "find_h5_files": ".selection",
    "select_slices": ".selection",
    "SliceLoader": ".slice_loader",
    "SliceMeasurement": ".slice_measurement",
    "measure_slice": ".slice_measurement",
    "MaskFunc": ".transforms",
    "MeasurementTransform": ".transforms",
    "default_mask": ".transforms",
    "parse_snr_range": ".transforms",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
