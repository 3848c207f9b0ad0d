"""The LightningDataModules configs name as ``class_path: lit_sampler.datamodules.<Class>``.

* :class:`FastMRIDataModule` (:mod:`.posterior`): measurements of fastMRI-format (or converted raw)
  files for posterior sampling, one item per (file, slice, SNR, sample); :class:`ItemRef`;
* :class:`PriorDataModule` (:mod:`.prior`): prior sampling, no data;
* :class:`TrainingDataModule` (:mod:`.training_data`): images for score matching (``fit``);
* :class:`SupervisedDataModule` (:mod:`.supervised`): simulated measurements and targets for
  training the VarNet baseline.

They read files through :mod:`lit_sampler.data` and batch items by shape
(:class:`lit_sampler.data.items.PredictItems`). Names are imported on first use.
"""

from __future__ import annotations

from .._imports import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "FastMRIDataModule": ".posterior",
    "ItemRef": ".posterior",
    "PriorDataModule": ".prior",
    "TrainingDataModule": ".training_data",
    "SupervisedDataModule": ".supervised",
})
