"""Outputs: what a run writes, and how a run directory is kept.

* :mod:`.prediction`: :class:`Prediction`, what ``predict_step`` returns for a batch and the writer
  stores, one shard per item;
* :mod:`.writer`: :class:`ReconstructionWriter` (the prediction callback configs name as
  ``lit_sampler.outputs.ReconstructionWriter``): shards while running, everything else at the end;
* :mod:`.run_dir`: the run's settings (recorded, compared on resume), the settings a calibration
  holds for, shards, temporaries of interrupted writes;
* :mod:`.report`: :func:`assemble_run`, the tables and the summary from the shards;
  :mod:`.slice_report` (per-slice and uncertainty tables), :mod:`.volumes` (h5 volumes,
  ``targets/``), :mod:`.figures` (``figure.png``, TensorBoard), :mod:`.export` (NIfTI, PNG).

Every file is written atomically (:mod:`lit_sampler.atomic`). Names are imported on first use.
"""

from __future__ import annotations

from .._imports import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Prediction": ".prediction",
    "ReconstructionWriter": ".writer",
    "run_settings": ".run_dir",
    "check_run_settings": ".run_dir",
    "calibration_settings": ".run_dir",
    "load_shard": ".run_dir",
    "remove_stale_temporaries": ".run_dir",
    "assemble_run": ".report",
    "export_volume": ".export",
})
