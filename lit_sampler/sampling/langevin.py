"""Annealed Langevin dynamics for prior and posterior sampling with a score network.

Song & Ermon 2019/2020 (NCSN, NCSNv2) with the data-consistency term of the reference MRI pipeline
(Jalal et al. 2021, "Robust Compressed Sensing MRI with Deep Generative Priors"; Aali/Tamir
score-diffusion-sampling). For levels σ_k … σ_{L−1} and T steps per level:

    α_i = ε · (σ_i / σ_{L−1})²
    x  ← x + α_i · ( s(x, i) − g(x, σ_i) ) + sqrt(α_i · β) · z,        z ~ N(0, I)

``β = noise_boost``. The reference draws *complex* CN(0, 1) noise, variance 1/2 per real entry, so
its ``sqrt(2αβ)·CN(0,1)`` is ``sqrt(αβ)·N(0,1)`` on the real layout: β = 1 reproduces the
reference, β = 2 is textbook Langevin dynamics (variance 2α per step).

The state ``x`` is real ``[B, C, H, W]``; ``C = 2K`` channels hold K complex images
(see :mod:`lit_sampler.physics.fft`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..physics.fft import channels_to_complex, complex_to_channels
from ..physics.operators import LinearOperator, normal_of
from .schedules import check_levels, check_steps, level_step_sizes, sigma_values

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DataConsistencyFn = Callable[[torch.Tensor, float, torch.Tensor], torch.Tensor]
Generators = torch.Generator | Sequence[torch.Generator] | None


def randn_like(x: torch.Tensor, generator: Generators) -> torch.Tensor:
    """Standard normal noise shaped like ``x``; one generator per batch item keeps every item's
    stream independent of the batch it is in."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    if len(generator) != x.shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {x.shape[0]}")
    return torch.stack(
        [torch.randn(x.shape[1:], generator=g, dtype=x.dtype, device=x.device) for g in generator]
    )


def langevin_step(
    score: ScoreFn,
    x: torch.Tensor,
    labels: torch.Tensor,
    sigma: float | torch.Tensor,
    alpha: float | torch.Tensor,
    noise_scale: float | torch.Tensor,
    noise: torch.Tensor,
    data_consistency: DataConsistencyFn | None = None,
) -> torch.Tensor:
    """One update x + α (s(x, i) − g(x, σ)) + sqrt(αβ)·z (``noise_scale`` = sqrt(αβ), ``noise`` = z).

    The single definition of the step: the eager loop calls it, and the CUDA-graph path captures it.
    """
    drift = score(x, labels).to(x.dtype)
    if data_consistency is not None:
        drift = drift - data_consistency(x, sigma, drift)
    return x + alpha * drift + noise_scale * noise


def chain_plan(
    num_levels: int,
    sigmas: Sequence[float],
    step_size: float,
    steps_each: int | Sequence[int],
    sigma_offset: int = 0,
    levels: Sequence[int] | None = None,
) -> list[tuple[int, float, int]]:
    """The ``(level, α, steps)`` triples a chain runs, validated once.

    ``levels=None`` runs every level from ``sigma_offset`` with α_i = ε (σ_i/σ_{L−1})²; a list of
    ascending indices runs only those, with the rescaled steps of
    :func:`lit_sampler.sampling.schedules.level_step_sizes`. ``steps_each`` is T for every level or one count
    per run level.
    """
    if num_levels == 0:
        raise ValueError("sigmas is empty")
    if any(a <= b for a, b in zip(sigmas, sigmas[1:])):
        raise ValueError("sigmas must be strictly descending (σ_0 > σ_1 > … > σ_{L-1})")
    if not 0 <= sigma_offset < num_levels:
        raise ValueError(f"sigma_offset must lie in [0, {num_levels - 1}], got {sigma_offset}")
    if not step_size > 0:
        raise ValueError(f"step_size must be positive, got {step_size}")
    run = list(range(sigma_offset, num_levels)) if levels is None else check_levels(levels, num_levels, sigma_offset)
    counts = [steps_each] * len(run) if isinstance(steps_each, int) else [int(t) for t in steps_each]
    if len(counts) != len(run):
        raise ValueError(f"steps_each has {len(counts)} entries for {len(run)} levels; give one per level run")
    check_steps(counts)
    alphas = level_step_sizes(sigmas, run, step_size)
    return list(zip(run, alphas, counts))


def _active_noise(x: torch.Tensor, generator: Generators, active: list[bool]) -> torch.Tensor:
    """Noise for the active items only; inactive items draw nothing (their streams stay untouched)."""
    if generator is None or isinstance(generator, torch.Generator):
        return randn_like(x, generator) * torch.tensor(active, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    return torch.stack(
        [
            torch.randn(x.shape[1:], generator=g, dtype=x.dtype, device=x.device) if a else x.new_zeros(x.shape[1:])
            for g, a in zip(generator, active)
        ]
    )


@torch.no_grad()
def annealed_langevin(
    score: ScoreFn,
    x: torch.Tensor,
    sigmas: torch.Tensor | Sequence[float],
    *,
    step_size: float,
    steps_each: int | Sequence[int],
    sigma_offset: int = 0,
    levels: Sequence[int] | None = None,
    start_levels: Sequence[int] | None = None,
    noise_boost: float = 1.0,
    data_consistency: DataConsistencyFn | None = None,
    final_denoise: bool = False,
    generator: Generators = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    cuda_graph: bool = False,
) -> torch.Tensor:
    """Run annealed Langevin dynamics from ``x`` and return the final iterate.

    Args:
        score: ``score(x, labels)`` with ``x`` ``[B, C, H, W]`` and ``labels`` long ``[B]`` (the level
            index i); returns s(x, σ_i) shaped like ``x``.
        x: initial state ``[B, C, H, W]`` (real).
        sigmas: descending noise levels σ_0 > … > σ_{L−1}.
        step_size: ε; the step at level i is α_i = ε (σ_i/σ_{L−1})².
        steps_each: T, Langevin steps per level, or one count per level run (e.g. Jalal et al.'s
            3 up to level 1800 and 4 after).
        sigma_offset: k, skip the k largest levels (start at σ_k).
        levels: run only these ascending level indices (≥ k), each with the rescaled step of
            :func:`lit_sampler.sampling.schedules.level_step_sizes`, so it does the work of the levels it
            stands for (Song & Ermon's chain on fewer levels). ``None``: every level from k.
        start_levels: per item, the first level it runs (warm starts chosen per item, as in
            Chung et al. 2022's "Come-Closer-Diffuse-Faster"): item b stays as given, and neither
            calls the network nor draws noise, until level ``start_levels[b]``.
        noise_boost: β, the injected noise has variance α_i·β per entry (β = 1: reference, 2: textbook).
        data_consistency: ``g(x, σ_i, s)`` subtracted from the score; ``None`` samples the prior.
        final_denoise: finish with the Tweedie step x ← x + σ_{L−1}² s(x, L−1).
        generator: a ``torch.Generator``, or one per batch item; the only source of randomness.
        callback: called after each level with ``{"x", "level", "sigma", "alpha", "levels", "steps",
            "active", "position", "run_levels"}`` (``active``: the items that ran it, ``None`` = all;
            ``position``: index of the level among the ``run_levels`` levels run).
        cuda_graph: capture one whole step (score, data consistency, update) in a CUDA graph and
            replay it (``x`` must be on a CUDA device); see :func:`_static_chain`. The noise is drawn
            outside the graph from the same generators, so results equal the eager path's up to
            rounding. ``data_consistency`` then receives σ_i as a 0-d tensor instead of a float.

    Returns:
        The final iterate ``[B, C, H, W]``.
    """
    values = sigma_values(sigmas)
    plan = chain_plan(len(values), values, step_size, steps_each, sigma_offset, levels)
    batch = x.shape[0]
    if start_levels is not None:
        start_levels = [int(k) for k in start_levels]
        if len(start_levels) != batch:
            raise ValueError(f"got {len(start_levels)} start levels for a batch of {batch}")
    if cuda_graph:
        if x.device.type != "cuda":
            raise ValueError(f"cuda_graph needs the state on a CUDA device, got {x.device}")
        if start_levels is not None and len(set(start_levels)) > 1:
            raise ValueError("cuda_graph replays one step for the whole batch: per-item start_levels need cuda_graph: false")
        x = _static_chain(score, x, values, plan, noise_boost=noise_boost, data_consistency=data_consistency,
                          generator=generator, callback=callback, capture=True)
    for position, (level, alpha, steps) in enumerate([] if cuda_graph else plan):
        sigma = values[level]
        noise_scale = math.sqrt(alpha * noise_boost)
        labels = torch.full((batch,), level, dtype=torch.long, device=x.device)
        active = None if start_levels is None else [level >= k for k in start_levels]
        if active is not None and all(active):
            active = None
        if active is not None and not any(active):
            continue
        for _ in range(steps):
            if active is None:
                x = langevin_step(score, x, labels, sigma, alpha, noise_scale, randn_like(x, generator), data_consistency)
                continue
            x = _masked_step(score, x, labels, sigma, alpha, noise_scale, data_consistency, generator, active)
        if callback is not None:
            callback({"x": x, "level": level, "sigma": sigma, "alpha": alpha, "levels": len(values), "steps": steps,
                      "active": active, "position": position, "run_levels": len(plan)})

    if final_denoise:
        labels = torch.full((batch,), len(values) - 1, dtype=torch.long, device=x.device)
        x = x + values[-1] ** 2 * score(x, labels).to(x.dtype)
    return x


def _masked_step(score, x, labels, sigma, alpha, noise_scale, data_consistency, generator, active: list[bool]):
    """:func:`langevin_step` for the active items of a batch: the network sees only them."""
    index = torch.tensor([b for b, a in enumerate(active) if a], device=x.device)

    def active_score(state: torch.Tensor, level_labels: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(state)
        out[index] = score(state[index], level_labels[index]).to(state.dtype)
        return out

    stepped = langevin_step(active_score, x, labels, sigma, alpha, noise_scale, _active_noise(x, generator, active), data_consistency)
    keep = torch.tensor(active, device=x.device).reshape(-1, 1, 1, 1)
    return torch.where(keep, stepped, x)


def network_evaluations(plan: list[tuple[int, float, int]], start_level: int = 0, final_denoise: bool = False) -> int:
    """Score-network calls of one item whose chain starts at ``start_level`` (exact)."""
    return sum(steps for level, _, steps in plan if level >= start_level) + int(final_denoise)


def _static_chain(
    score: ScoreFn,
    x: torch.Tensor,
    values: list[float],
    plan: list[tuple[int, float, int]],
    *,
    noise_boost: float,
    data_consistency: DataConsistencyFn | None,
    generator: Generators,
    callback: Callable[[dict[str, Any]], None] | None,
    capture: bool,
    warmup_steps: int = 2,
) -> torch.Tensor:
    """The level loop of :func:`annealed_langevin` on static buffers, one step captured as a CUDA graph.

    One :func:`langevin_step` reads only fixed tensors: the state ``x``, the labels ``i``, 0-d ``σ``,
    ``α``, ``sqrt(αβ)`` and a noise buffer ``z``. They are refilled in place before each replay (the
    level values once per level, ``z`` before every step, drawn eagerly from the per-item
    generators: the random streams are the eager path's), so one graph serves the whole chain.
    ``capture=False`` runs the same static-buffer step eagerly (the logic of the graphed path,
    testable without a GPU). Warm-up steps (on a side stream, as :class:`torch.cuda.CUDAGraph`
    requires) run on a copy of the state that is then restored. The score function must be
    capturable: no host syncs, no data-dependent Python branches, and autocast with
    ``cache_enabled=False``.
    """
    state = x.clone()
    noise = torch.zeros_like(state)
    labels = torch.full((state.shape[0],), plan[0][0], dtype=torch.long, device=state.device)
    sigma_t = torch.zeros((), dtype=state.dtype, device=state.device)
    alpha_t = torch.zeros_like(sigma_t)
    noise_scale_t = torch.zeros_like(sigma_t)

    def set_level(level: int, alpha: float) -> None:
        labels.fill_(level)
        sigma_t.fill_(values[level])
        alpha_t.fill_(alpha)
        noise_scale_t.fill_(math.sqrt(alpha * noise_boost))

    def step() -> None:
        state.copy_(langevin_step(score, state, labels, sigma_t, alpha_t, noise_scale_t, noise, data_consistency))

    run = step
    set_level(plan[0][0], plan[0][1])
    if capture:
        initial = state.clone()
        side = torch.cuda.Stream(device=state.device)
        side.wait_stream(torch.cuda.current_stream(state.device))
        with torch.cuda.stream(side):
            for _ in range(warmup_steps):
                step()
        torch.cuda.current_stream(state.device).wait_stream(side)
        state.copy_(initial)
        del initial
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        run = graph.replay
    for position, (level, alpha, steps) in enumerate(plan):
        set_level(level, alpha)
        for _ in range(steps):
            noise.copy_(randn_like(state, generator))
            run()
        if callback is not None:
            info = {"level": level, "sigma": values[level], "alpha": alpha, "levels": len(values), "steps": steps,
                    "active": None, "position": position, "run_levels": len(plan)}
            callback({"x": state.clone(), **info})  # a copy: the buffer changes at the next replay
    return state


def _per_item(value: torch.Tensor | float, reference: torch.Tensor) -> torch.Tensor:
    """A scalar or ``[B]`` value shaped to broadcast against ``reference`` ``[B, …]``."""
    value = torch.as_tensor(value, dtype=reference.real.dtype, device=reference.device)
    if value.dim() == 0:
        return value
    return value.reshape(-1, *([1] * (reference.dim() - 1)))


def _to_images(x: torch.Tensor) -> torch.Tensor:
    """Real ``[B, 2K, H, W]`` → the operator's complex input: ``[B, H, W]`` for K = 1, else ``[B, K, H, W]``."""
    images = channels_to_complex(x)
    return images[:, 0] if images.shape[1] == 1 else images


def _to_channels(images: torch.Tensor) -> torch.Tensor:
    return complex_to_channels(images.unsqueeze(1) if images.dim() == 3 else images)


class GaussianDataConsistency:
    """The reference pipeline's likelihood gradient (Aali/Tamir, after Arvinte & Tamir):

        g(x, σ) = λ · (AᴴA x − Aᴴy) / (ν/2 + σ²)

    with ν the complex measurement-noise variance (ν/2 per real component) and λ = ``dc_boost``.
    ``Aᴴy`` is computed once. Computed in complex arithmetic, returned in the real layout of ``x``.

    Args:
        operator: a :class:`~lit_sampler.physics.operators.LinearOperator`, or any object with
            ``forward(image)`` / ``adjoint(kspace)`` (and optionally ``normal``).
        y: measured k-space, as ``operator.forward`` returns it.
        noise_var: ν, a scalar or one value per batch item ``[B]``.
        dc_boost: λ.
    """

    def __init__(self, operator: LinearOperator, y: torch.Tensor, noise_var: torch.Tensor | float, dc_boost: float = 1.0):
        self.operator = operator
        self.adjoint_y = operator.adjoint(y)
        self.half_noise_var = _per_item(noise_var, self.adjoint_y) / 2
        self.dc_boost = float(dc_boost)

    def __call__(self, x: torch.Tensor, sigma: float, score_value: torch.Tensor) -> torch.Tensor:
        residual = normal_of(self.operator, _to_images(x)) - self.adjoint_y
        return _to_channels(residual * (self.dc_boost / (self.half_noise_var + sigma**2)))


class NormMatchedDataConsistency:
    """Jalal et al. 2021's rule: the data gradient rescaled to a multiple of the score's norm,

        d = Aᴴ(A x − y),     g = w · ‖s‖ · d / ‖d‖,

    with w = ``weight`` (``mse: 5.0`` in their configs). Norms are taken per batch item (their code
    takes them over the whole batch tensor, which couples the items of a batch).
    """

    def __init__(self, operator: LinearOperator, y: torch.Tensor, weight: float = 5.0, eps: float = 1e-12):
        self.operator = operator
        self.y = y
        self.weight = float(weight)
        self.eps = eps

    def __call__(self, x: torch.Tensor, sigma: float, score_value: torch.Tensor) -> torch.Tensor:
        images = _to_images(x)
        d = _to_channels(self.operator.adjoint(self.operator.forward(images) - self.y))
        d_norm = d.flatten(1).norm(dim=1).clamp_min(self.eps)
        s_norm = score_value.flatten(1).norm(dim=1)
        return d * _per_item(self.weight * s_norm / d_norm, d)
