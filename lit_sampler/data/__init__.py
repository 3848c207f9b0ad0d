"""The data: files → slices → measurements, and the records that carry items. No Lightning here
(the LightningDataModules are :mod:`lit_sampler.datamodules`); h5py for the files.

* file formats: fastMRI-style h5 (:func:`inspect_volume`, :func:`read_slice`, :func:`write_volume`),
  files and slices (:func:`find_h5_files`, :func:`select_slices`), BART ``.cfl``, ISMRMRD raw data
  (converted once to the prepared h5, cached), pre-whitening and the scanner's measured noise;
* a slice → its measurement: :class:`Geometry`, :class:`SliceLoader`, :class:`MeasurementTransform`
  (mask, noise at an SNR, normalisation; :func:`default_mask`, :func:`parse_snr_range`), ESPIRiT maps;
* records: :class:`ItemKey` (an item's one identity), :class:`MeasurementBatch` (what the engine
  runs), :func:`group_into_batches`; :class:`FastMRISource` (what the data modules share);
* :func:`measure_slice`: a file's slice measured as the pipeline measures it (the Python API);
* demo data: phantoms and the anatomy demo.

See ``docs/data.md`` for the options, formulas and file layouts. The names are imported on first
use (PEP 562), so that importing a light module such as :mod:`lit_sampler.data.geometry` does not
pull in h5py through this package.
"""

from __future__ import annotations

from .._imports import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DataError": "..errors",
    "ItemKey": ".items",
    "MeasurementBatch": ".items",
    "PredictItems": ".items",
    "group_into_batches": ".items",
    "FastMRISource": ".source",
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
})
