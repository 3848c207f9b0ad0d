"""Sampling: the chains and what they are planned with. Math core: torch and numpy only, never
Lightning or h5py; below it only :mod:`lit_sampler.physics` (and the foundation modules).

* :mod:`.langevin`: annealed Langevin dynamics (Song & Ermon 2020) as a pure function,
  :func:`annealed_langevin` with one :func:`langevin_step`, and the data-consistency rules
  :class:`GaussianDataConsistency` (the reference's) and :class:`NormMatchedDataConsistency`
  (Jalal et al. 2021);
* :mod:`.decomposed`: the few-call sampler (Tweedie denoise, conjugate-gradient data consistency,
  re-noise; Chung et al. 2024), :func:`decomposed_diffusion`;
* :mod:`.schedules`: noise levels and step sizes (Song & Ermon's techniques 1, 2 and 4), level subsets;
* :mod:`.presets`: the named recipes and the one merge rule of their knobs (:func:`resolve_schedule`);
* :mod:`.warm_start`: the first level per item from its data (Chung et al. 2022);
* :mod:`.baselines`: the classical reconstructions (zero-filled, CG-SENSE, compressed sensing): the
  chains start from them or compare with them, and the few-call sampler's data consistency runs
  their conjugate gradients;
* :mod:`.chain_tracker`: the per-level callback (divergence, progress, the oracle diagnostic);
* :mod:`.options`: the sampler's options checked and resolved once (both front doors);
* :mod:`.gaussian_chain`: the closed-form moments of the chains on a Gaussian prior (tests, studies).

Samplers are pure functions ``(score, x, sigmas, knobs, generator, callback) → x``: no I/O, no
logging, no global RNG. ``lit_sampler.sampling`` was the Langevin module; its names are here.
"""

from .baselines import BASELINES, CS_METHODS, METHODS, cg_sense, compressed_sensing, conjugate_gradient
from .chain_tracker import ChainTracker
from .decomposed import ProximalDataConsistency, decomposed_diffusion, decomposed_evaluations
from .langevin import (
    DataConsistencyFn, GaussianDataConsistency, Generators, NormMatchedDataConsistency, ScoreFn, annealed_langevin,
    chain_plan, langevin_step, network_evaluations, randn_like,
)
from .presets import KNOBS, PRESETS, Schedule, resolve_schedule
from .schedules import geometric_sigmas, level_step_sizes, log_spaced_levels, technique4_step_size
from .warm_start import auto_start_levels, zero_filled_error

__all__ = [
    "annealed_langevin",
    "langevin_step",
    "chain_plan",
    "network_evaluations",
    "randn_like",
    "GaussianDataConsistency",
    "NormMatchedDataConsistency",
    "ScoreFn",
    "DataConsistencyFn",
    "Generators",
    "decomposed_diffusion",
    "decomposed_evaluations",
    "ProximalDataConsistency",
    "geometric_sigmas",
    "level_step_sizes",
    "log_spaced_levels",
    "technique4_step_size",
    "KNOBS",
    "PRESETS",
    "Schedule",
    "resolve_schedule",
    "auto_start_levels",
    "zero_filled_error",
    "BASELINES",
    "CS_METHODS",
    "METHODS",
    "cg_sense",
    "compressed_sensing",
    "conjugate_gradient",
    "ChainTracker",
]
