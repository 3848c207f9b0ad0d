"""Reconstruction without Lightning: the engine both front doors run, and the Python API over it.

* :mod:`.engine`: :func:`run_chains`, a :class:`~lit_sampler.data.MeasurementBatch` → the chains'
  final states (operator, CG-SENSE, warm start, the sampler), with :class:`ChainOptions`,
  :func:`item_generators` and :func:`network_score`. The Lightning module
  (:class:`lit_sampler.lightning.LangevinSampler`) runs it too, so an item gives the same bits
  through either door;
* :mod:`.sampler`: :class:`Sampler` (``from_checkpoint``, ``reconstruct`` k-space arrays) and
  :class:`ReconstructionResult`;
* :mod:`.inputs`: arrays → a checked, normalised batch; :func:`estimate_maps` (ESPIRiT);
* :mod:`.baseline_recon`: the classical baselines on arrays (:func:`zero_filled_recon`,
  :func:`cg_sense_recon`, :func:`l1_wavelet_recon`, :func:`total_variation_recon`).

No Lightning and no h5py on import (names are imported on first use). See docs/python_api.md.
"""

from __future__ import annotations

from .._imports import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Sampler": ".sampler",
    "ReconstructionResult": ".sampler",
    "estimate_maps": ".inputs",
    "zero_filled_recon": ".baseline_recon",
    "cg_sense_recon": ".baseline_recon",
    "l1_wavelet_recon": ".baseline_recon",
    "total_variation_recon": ".baseline_recon",
    "run_chains": ".engine",
    "ChainOptions": ".engine",
    "item_generators": ".engine",
    "network_score": ".engine",
})
