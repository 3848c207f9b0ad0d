"""The Lightning shell: the modules and callbacks configs name as ``lit_sampler.lightning.<Class>``.

* :class:`LangevinSampler` (:mod:`.module`): ``predict``; one ``predict_step`` runs the engine
  (:func:`lit_sampler.api.run_chains`) for a batch, with the baselines and each item's quality;
* :class:`ScoreMatching` (:mod:`.training`): ``fit``, denoising score matching with EMA;
* :class:`VarNetTraining` (:mod:`.supervised`): ``fit`` of fastMRI's E2E-VarNet, the supervised baseline;
* callbacks: :class:`LangevinProgressBar` (:mod:`.progress`), :class:`StopOnSignal` (:mod:`.interrupts`).

The data modules are :mod:`lit_sampler.datamodules`, the prediction writer
:class:`lit_sampler.outputs.ReconstructionWriter`. Names are imported on first use.
"""

from __future__ import annotations

from .._imports import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "LangevinSampler": ".module",
    "ScoreMatching": ".training",
    "VarNetTraining": ".supervised",
    "LangevinProgressBar": ".progress",
    "StopOnSignal": ".interrupts",
})
