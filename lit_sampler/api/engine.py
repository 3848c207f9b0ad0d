"""The one engine: a :class:`~lit_sampler.data.items.MeasurementBatch` in, the chains' final states out.

Both front doors call :func:`run_chains`: the Lightning module's ``predict_step``
(:class:`lit_sampler.lightning.LangevinSampler`, the CLI) and the Python API's
:meth:`lit_sampler.api.Sampler.reconstruct`. So an item gives the same bits through either, as long
as it gets the same measurement, knobs and seed key (``tests/test_engine_identity.py`` checks it).

For a batch of ``B`` items (normalised units, :mod:`lit_sampler.data.transforms`), in order:

1. the forward operator ``A x = M ⊙ F(S ⊙ x)`` of the batch's maps and mask;
2. CG-SENSE (``cg_iterations``; the ``cg_sense`` warm start needs it, the module reports it);
3. each item's first level: the schedule's, or with ``sigma_offset: auto`` one picked from its
   data (:mod:`lit_sampler.sampling.warm_start`, Chung et al. 2022);
4. the initial state from the item's own generator (``init``: reference noise, uniform, noise, or
   a warm estimate plus N(0, σ_k²));
5. the chain: annealed Langevin dynamics (:func:`lit_sampler.sampling.langevin.annealed_langevin`, Song &
   Ermon 2020 with the data-consistency rule) or the few-call sampler
   (:func:`lit_sampler.sampling.decomposed.decomposed_diffusion`, Chung et al. 2024), with a
   :class:`~lit_sampler.sampling.chain_tracker.ChainTracker` (divergence per item, progress listeners).

FFTs, data consistency and the update run in float32 whatever the network's precision (autocast
is switched off here; :func:`network_score` switches it on for the network alone). Every random
draw comes from the per-item generators of :func:`item_generators`. No Lightning, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional

import torch

from ..data.items import MeasurementBatch
from ..models.network_call import call_network
from ..physics.fft import complex_to_channels
from ..physics.operators import MultiCoilMRI
from ..sampling.baselines import cg_sense, intensity_correction
from ..sampling.chain_tracker import ChainTracker
from ..sampling.decomposed import ProximalDataConsistency, decomposed_diffusion
from ..sampling.langevin import GaussianDataConsistency, NormMatchedDataConsistency, ScoreFn, annealed_langevin, randn_like
from ..sampling.presets import Schedule
from ..sampling.warm_start import auto_start_levels, zero_filled_error
from ..seeding import seeded_generator

# Lightning's precision names → the network's autocast dtype (anything else: the weights' own dtype)
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
LANGEVIN_STREAM = "langevin"  # the purpose key of the chains' generators (initial state and chain noise)


def item_generators(seeds: Sequence[int], item_keys: Sequence[str], device: torch.device | str) -> list[torch.Generator]:
    """One generator per item, ``seeded_generator(seed, item_key, "langevin")``: an item's initial
    state and chain noise depend on the run seed and its key (``"file.h5|12|snr_20dB|0"``,
    :class:`~lit_sampler.data.items.ItemKey`) alone, never on its batch, order or process."""
    return [seeded_generator(int(seed), key, LANGEVIN_STREAM, device=device) for seed, key in zip(seeds, item_keys)]


def network_score(network: Callable, x: torch.Tensor, labels: torch.Tensor, *, autocast_dtype: Optional[torch.dtype],
                  channels_last: bool, batch_invariant: bool, call_size: int, cuda_graph: bool = False) -> torch.Tensor:
    """s(x, i) ``[B, C, H, W]`` in float32 as both front doors call the network: under
    ``autocast_dtype`` (the network alone), channels-last when asked, and on CPU with
    ``batch_invariant`` in calls of exactly ``call_size`` items (so an item's bits do not depend on
    its batch: :mod:`lit_sampler.models.network_call`)."""
    fixed = batch_invariant and x.device.type == "cpu"
    return call_network(network, x, labels, autocast_dtype=autocast_dtype, channels_last=channels_last,
                        call_size=call_size if fixed else None, cache_casts=not cuda_graph)


@dataclass(frozen=True)
class ChainOptions:
    """The chain's settings besides the schedule and step size (the module's options of the same names).

    ``operator_class`` is built per batch as ``cls(sens_maps=[B, coils, H, W], mask=[B, 1, H, W])``.
    """

    prior_sampling: bool = False
    data_consistency: Literal["gaussian", "norm_matched"] = "gaussian"
    norm_matched_weight: float = 5.0
    dc_boost: float = 1.0
    init_sigma: Optional[float] = None
    cg_iterations: int = 10
    divergence_factor: float = 100.0
    cuda_graph: bool = False
    operator_class: Any = MultiCoilMRI


@dataclass
class ChainRun:
    """What :func:`run_chains` returns for a batch of ``B`` items (normalised units, on the batch's device).

    Attributes:
        x: the final states ``[B, C, H, W]`` real (C = 2: one complex image, :mod:`lit_sampler.physics.fft`).
        start_levels: each item's first level.
        nfe: network evaluations per item; operator_applications: applications of A or Aᴴ per item
            by the data-consistency rule (0 for prior sampling).
        cg: CG-SENSE ``[B, H, W]`` complex, or ``None`` (prior sampling or ``cg_iterations: 0``).
        tracker: the chains' :class:`~lit_sampler.sampling.chain_tracker.ChainTracker` (``diverged_level``,
            the oracle's best iterate when asked).
    """

    x: torch.Tensor
    start_levels: list[int]
    nfe: list[int]
    operator_applications: list[int]
    cg: Optional[torch.Tensor]
    tracker: ChainTracker


def run_chains(score: ScoreFn, sigmas: torch.Tensor, schedule: Schedule, step_size: float, batch: MeasurementBatch,
               generators: Sequence[torch.Generator], options: ChainOptions, *, device: torch.device | str,
               listeners: Sequence[Callable[[dict[str, Any]], None]] = (), track_target: bool = False) -> ChainRun:
    """Run one chain per item of ``batch`` (steps 1–5 of the module docstring).

    Args:
        score: ``score(x [B, C, H, W], labels [B]) → s(x, σ_labels)`` (:func:`network_score`).
        sigmas: σ_0 > … > σ_{L−1} ``[L]`` on ``device``.
        schedule: the resolved schedule (:func:`lit_sampler.sampling.presets.resolve_schedule`).
        step_size: ε of the Langevin chain (α_i = ε (σ_i/σ_{L−1})²).
        batch: the items, normalised (k-space ``[B, coils, H, W]``, mask ``[B, 1, H, W]``, maps,
            zero-filled ``[B, H, W]``, ν ``[B]``), on ``device``; prior batches carry only shapes.
        generators: one per item (:func:`item_generators`).
        options: :class:`ChainOptions`.
        listeners: called after every level with the chain's info (progress bars).
        track_target: the ``track_best_nrmse`` DIAGNOSTIC (uses the batch's ground truth).
    """
    prior = options.prior_sampling
    shape = (len(batch), *[int(v) for v in batch.image_shape[0]])
    operator = None if prior else options.operator_class(sens_maps=batch.sens_maps, mask=batch.mask)
    oracle = track_target and not prior and bool(batch.has_target.all())
    tracker = ChainTracker(len(batch), options.divergence_factor, device, listeners, target=batch.target if oracle else None)
    # FFTs, data consistency and the update in float32 whatever the network's precision
    with torch.autocast(torch.device(device).type, enabled=False):
        cg = (cg_sense(operator, batch.kspace, options.cg_iterations, intensity=intensity_correction(batch.sens_maps))
              if operator and options.cg_iterations else None)
        starts = [schedule.levels[0]] * len(batch) if prior else _start_levels(schedule, sigmas, batch)
        estimate = cg if schedule.init == "cg_sense" else (None if prior else batch.zero_filled)
        x = _initial_state(schedule, sigmas, options, shape, generators, starts, estimate, device)
        x = _sample(score, sigmas, schedule, step_size, options, x, batch, operator, starts, generators, tracker)
    return ChainRun(
        x=x, start_levels=starts, nfe=[schedule.evaluations(k) for k in starts],
        operator_applications=[0 if prior else schedule.operator_applications(k, options.data_consistency) for k in starts],
        cg=cg, tracker=tracker,
    )


def _start_levels(schedule: Schedule, sigmas: torch.Tensor, batch: MeasurementBatch) -> list[int]:
    """Each item's first level: the schedule's, or (``sigma_offset: auto``) one picked from its data."""
    if not schedule.auto_start:
        return [schedule.levels[0]] * len(batch)
    error = zero_filled_error(batch.kspace, batch.mask, batch.noise_var.double())
    return auto_start_levels(sigmas.tolist(), error, schedule.start_factor, schedule.levels)


def _initial_state(schedule: Schedule, sigmas: torch.Tensor, options: ChainOptions, shape, generators,
                   starts: list[int], estimate, device) -> torch.Tensor:
    init = schedule.init
    if init == "uniform":  # torch.rand per item, as Jalal et al.'s chain starts
        return torch.stack([torch.rand(shape[1:], generator=g, device=device) for g in generators])
    noise = randn_like(torch.empty(shape, device=device), generators)
    if init == "reference":
        return noise if options.prior_sampling else noise * 0.5**0.5
    sigma = options.init_sigma
    sigma = sigmas[torch.tensor(starts)].to(device) if sigma is None else torch.full((shape[0],), float(sigma), device=device)
    noise = noise * sigma.reshape(-1, 1, 1, 1)
    if init == "noise" or options.prior_sampling:
        return noise
    return complex_to_channels(estimate[:, None]) + noise


def _data_consistency(options: ChainOptions, batch: MeasurementBatch, operator):
    if options.data_consistency == "norm_matched":
        return NormMatchedDataConsistency(operator, batch.kspace, weight=options.norm_matched_weight)
    return GaussianDataConsistency(operator, batch.kspace, batch.noise_var.float(), dc_boost=options.dc_boost)


def _sample(score, sigmas, schedule: Schedule, step_size: float, options: ChainOptions, x: torch.Tensor,
            batch: MeasurementBatch, operator, starts: list[int], generators, tracker) -> torch.Tensor:
    """The configured sampler from ``x``: annealed Langevin dynamics or the few-call sampler."""
    prior = options.prior_sampling
    start_levels = starts if schedule.auto_start else None
    if schedule.sampler == "decomposed":
        dc = None if prior else ProximalDataConsistency(operator, batch.kspace, batch.noise_var.float(), schedule.dc_steps)
        return decomposed_diffusion(score, x, sigmas, levels=schedule.levels, eta=schedule.eta, data_consistency=dc,
                                    start_levels=start_levels, generator=generators, callback=tracker)
    return annealed_langevin(
        score, x, sigmas, step_size=step_size, steps_each=schedule.steps, levels=schedule.levels,
        start_levels=start_levels, noise_boost=schedule.noise_boost,
        data_consistency=None if prior else _data_consistency(options, batch, operator),
        final_denoise=schedule.final_denoise, generator=generators, callback=tracker, cuda_graph=options.cuda_graph,
    )
