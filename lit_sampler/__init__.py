"""lit_sampler: posterior sampling with pre-trained score-based generative models (NCSNv2,
annealed Langevin dynamics) as a PyTorch Lightning prediction module, and from Python.

The packages are the layers of docs/architecture.md, each importing only from those below it:
``physics`` → ``sampling`` → ``models`` → ``data`` → ``evaluation`` → ``api`` → ``outputs`` →
``datamodules`` → ``lightning`` → ``tools``, with ``errors``, ``seeding`` and ``atomic`` under all
of them and the command line (``cli``) on top.

What users name in Python (imported on first use, PEP 562, so ``import lit_sampler`` stays light
and the math core's imports stay free of Lightning and h5py):

* :class:`Sampler`, :class:`ReconstructionResult` (:mod:`lit_sampler.api`): reconstruct k-space arrays;
* :func:`estimate_maps` (:mod:`lit_sampler.api`): ESPIRiT maps from a slice's fully sampled centre;
* the array baselines :func:`zero_filled_recon`, :func:`cg_sense_recon`, :func:`l1_wavelet_recon`,
  :func:`total_variation_recon` (:mod:`lit_sampler.api`);
* :func:`measure_slice`, :class:`SliceMeasurement` (:mod:`lit_sampler.data`): a fastMRI-format
  file's slice measured as the pipeline measures it;
* :class:`ScoreDenoiser` (:mod:`lit_sampler.models`): a score network as a denoiser D(x, σ);
* :func:`load_score_model` (:mod:`lit_sampler.models`); :class:`Calibration` (:mod:`lit_sampler.evaluation`).

Configs name classes by their package: ``lit_sampler.lightning.LangevinSampler``,
``lit_sampler.datamodules.FastMRIDataModule``, ``lit_sampler.physics.masks.RandomLineMask``,
``lit_sampler.outputs.ReconstructionWriter``, … The module paths of before the layout
(``lit_sampler.module.LangevinSampler``, ``lit_sampler.data.FastMRIDataModule``, …) still work, with
a ``FutureWarning`` naming the new one (:mod:`lit_sampler._imports`, installed here).
"""

from __future__ import annotations

from . import _imports

__version__ = "0.4.0"

_imports.install()

__getattr__, __dir__, __all__ = _imports.lazy_exports(__name__, {
    "Sampler": ".api",
    "ReconstructionResult": ".api",
    "estimate_maps": ".api",
    "zero_filled_recon": ".api",
    "cg_sense_recon": ".api",
    "l1_wavelet_recon": ".api",
    "total_variation_recon": ".api",
    "measure_slice": ".data",
    "SliceMeasurement": ".data",
    "ScoreDenoiser": ".models",
    "load_score_model": ".models",
    "Calibration": ".evaluation",
})
