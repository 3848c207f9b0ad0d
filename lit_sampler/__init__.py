"""lit_sampler: posterior sampling with pre-trained score-based generative models (NCSNv2,
annealed Langevin dynamics) as a PyTorch Lightning prediction module, and from Python.

What users name in Python (imported on first use, PEP 562, so ``import lit_sampler`` stays light
and the math core's imports stay free of Lightning and h5py):

* :class:`Sampler`, :class:`ReconstructionResult` (:mod:`lit_sampler.api`): reconstruct k-space arrays;
* :func:`estimate_maps` (:mod:`lit_sampler.inputs`): ESPIRiT maps from a slice's fully sampled centre;
* :func:`measure_slice`, :class:`SliceMeasurement` (:mod:`lit_sampler.data.slice_measurement`): a
  fastMRI-format file's slice measured as the pipeline measures it;
* :class:`ScoreDenoiser` (:mod:`lit_sampler.models.denoiser`): a score network as a denoiser D(x, σ);
* :func:`load_score_model` (:mod:`lit_sampler.models`); :class:`Calibration` (:mod:`lit_sampler.calibration`);
* the array baselines ``zero_filled_recon``, ``cg_sense_recon``, ``l1_wavelet_recon``,
  ``total_variation_recon`` live in :mod:`lit_sampler.baselines`.
"""

from __future__ import annotations

import importlib

__version__ = "0.3.0"

_HOMES = {
    "Sampler": ".api",
    "ReconstructionResult": ".api",
    "estimate_maps": ".inputs",
    "measure_slice": ".data.slice_measurement",
    "SliceMeasurement": ".data.slice_measurement",
    "ScoreDenoiser": ".models.denoiser",
    "load_score_model": ".models",
    "Calibration": ".calibration",
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
