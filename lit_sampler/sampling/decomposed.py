"""A few-call posterior sampler: denoise, solve the data term by conjugate gradients, re-noise.

After Chung, Lee & Ye, ICLR 2024, "Decomposed Diffusion Sampler for Accelerating Large-Scale
Inverse Problems" (DDS), for variance-exploding score networks (NCSN). One network call per level
σ_j of ``levels`` (ascending indices, decreasing σ):

    x̂₀ = x + σ_j² s(x, j)                               Tweedie's denoised estimate
    x̂₀ ← argmin_x ‖y − A x‖²/ν + ‖x − x̂₀‖²/(2σ_j²)     data consistency (``dc_steps`` CG iterations from x̂₀)
    ε̂  = (x − x̂₀_Tweedie)/σ_j                          the noise direction the network saw
    x  ← x̂₀ + sqrt(σ_{j+1}² − c²) ε̂ + c z,  c = min(η σ_{j+1} sqrt(1 − σ_{j+1}²/σ_j²), σ_{j+1})
                                                        re-noise to the next level (σ after the last: 0)

The data term is the measurement's own likelihood (ν: complex noise variance, ν/2 per real
component) and the proximal term treats x̂₀ as an estimate of per-entry variance σ_j² (an upper
bound of Var(x₀ | x) per real entry), so high levels follow the data and low levels the denoiser;
CG costs operator applications, not network calls. η is DDIM's (Song, Meng & Ermon, ICLR 2021):
0 is the deterministic update, 1 the ancestral one (the noise of q(x_{j+1} | x_j, x̂₀), exact in
the limit of many levels), and larger values add more fresh noise up to all of it
(c = σ_{j+1}: ``eta: fresh``). The output is the last data-consistent estimate.

On a Gaussian prior the law of the output is known in closed form
(:func:`lit_sampler.sampling.gaussian_chain.decomposed_moments`): every re-noise draws fresh variance
η²σ², and a direction whose prior variance v is comparable with σ² loses part of its posterior
variance Var(x₀|x) = vσ²/(v + σ²) per step (the exact reverse step would need it); docs/uncertainty.md
gives the measured spread.

The state is real ``[B, C, H, W]`` (C = 2: one complex image).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .baselines import conjugate_gradient
from .langevin import Generators, ScoreFn, _active_noise, _per_item, _to_channels, _to_images
from ..physics.operators import LinearOperator, normal_of
from .schedules import check_levels, sigma_values

ProximalFn = Callable[[torch.Tensor, float], torch.Tensor]


class ProximalDataConsistency:
    """``x̂₀ ↦ argmin_x ‖y − A x‖²/ν + ‖x − x̂₀‖²/(2σ²)`` by ``steps`` CG iterations on

        (AᴴA + γ I) x = Aᴴy + γ x̂₀,     γ = ν / (2σ²),

    started from x̂₀ (``steps + 1`` normal-operator applications per call; Aᴴy once). Noiseless
    data (ν = 0) use ν = ``floor`` × the mean energy of the measured k-space instead, close to the
    hard constraint A x = y.

    Args:
        operator: a :class:`~lit_sampler.physics.operators.LinearOperator`.
        y: measured k-space as ``operator.forward`` returns it.
        noise_var: ν per item ``[B]`` or a scalar.
        steps: CG iterations per call.
    """

    def __init__(self, operator: LinearOperator, y: torch.Tensor, noise_var: torch.Tensor | float, steps: int = 5,
                 floor: float = 1e-6):
        if steps < 0:
            raise ValueError(f"dc_steps must be >= 0, got {steps}")
        self.operator = operator
        self.adjoint_y = operator.adjoint(y)
        energy = y.abs().square().flatten(1).sum(1) / (y != 0).flatten(1).sum(1).clamp_min(1)
        nu = torch.as_tensor(noise_var, dtype=energy.dtype, device=energy.device).expand(energy.shape)
        self.noise_var = torch.where(nu > 0, nu, floor * energy)
        self.steps = int(steps)
        self.applications = 0  # normal-operator applications so far (for the counts users see)

    def __call__(self, estimate: torch.Tensor, sigma: float) -> torch.Tensor:
        images = _to_images(estimate)
        gamma = _per_item(self.noise_var / (2 * sigma**2), images)

        def apply(image: torch.Tensor) -> torch.Tensor:
            self.applications += 1
            return normal_of(self.operator, image) + gamma * image

        solved = conjugate_gradient(apply, self.adjoint_y + gamma * images, images, self.steps)
        return _to_channels(solved).to(estimate.dtype)


def renoise_std(sigma: float, sigma_next: float, eta: float) -> float:
    """c of the re-noise from σ to σ': ``min(η σ' sqrt(1 − σ'²/σ²), σ')``."""
    if sigma_next <= 0:
        return 0.0
    if math.isinf(eta):
        return sigma_next
    return min(float(eta) * sigma_next * math.sqrt(max(1 - (sigma_next / sigma) ** 2, 0.0)), sigma_next)


def decomposed_evaluations(levels: Sequence[int], start_level: int) -> int:
    """Network calls of an item that starts at ``start_level``: one per level run (exact)."""
    return sum(1 for level in levels if level >= start_level)


@torch.no_grad()
def decomposed_diffusion(
    score: ScoreFn,
    x: torch.Tensor,
    sigmas: torch.Tensor | Sequence[float],
    *,
    levels: Sequence[int],
    eta: float = math.inf,
    data_consistency: ProximalFn | None = None,
    start_levels: Sequence[int] | None = None,
    generator: Generators = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> torch.Tensor:
    """Run the sampler of the module docstring from ``x`` and return the last estimate.

    Args:
        score: ``score(x, labels)`` as for :func:`lit_sampler.sampling.langevin.annealed_langevin`.
        x: initial state ``[B, C, H, W]`` at the first level run (noise of std σ around an estimate).
        sigmas: the network's levels σ_0 > … > σ_{L−1}.
        levels: ascending level indices to run, one network call each.
        eta: η ≥ 0, DDIM's noise parameter (0 deterministic, 1 ancestral; ``math.inf``, the default:
            all fresh noise, whose posterior mean stays unbiased with many levels at low SNR).
        data_consistency: ``dc(x̂₀, σ) → x̂₀`` (:class:`ProximalDataConsistency`); ``None`` samples the prior.
        start_levels: per item, the first level it runs (warm starts per item); earlier levels
            leave it as given and draw nothing.
        generator: a ``torch.Generator`` or one per item; the only source of randomness.
        callback: called after each level with ``{"x", "denoised", "level", "sigma", "levels", "steps",
            "active", "position", "run_levels"}`` (as the Langevin chain's, ``steps`` = 1).
    """
    values = sigma_values(sigmas)
    run = check_levels(levels, len(values))
    if not float(eta) >= 0.0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    batch = x.shape[0]
    starts = [run[0]] * batch if start_levels is None else [int(k) for k in start_levels]
    if len(starts) != batch:
        raise ValueError(f"got {len(starts)} start levels for a batch of {batch}")
    for position, level in enumerate(run):
        active = [level >= k for k in starts]
        if not any(active):
            continue
        sigma = values[level]
        sigma_next = values[run[position + 1]] if position + 1 < len(run) else 0.0
        index = torch.tensor([b for b, a in enumerate(active) if a], device=x.device)
        state = x[index]
        labels = torch.full((len(index),), level, dtype=torch.long, device=x.device)
        denoised = state + sigma**2 * score(state, labels).to(state.dtype)
        direction = (state - denoised) / sigma
        if data_consistency is not None:
            denoised = _dc_on(data_consistency, denoised, sigma, index, batch)
        noise = _active_noise(x, generator, active)[index] if sigma_next > 0 else torch.zeros_like(state)
        fresh = renoise_std(sigma, sigma_next, eta)
        updated = denoised + math.sqrt(max(sigma_next**2 - fresh**2, 0.0)) * direction + fresh * noise
        x = x.clone()
        x[index] = updated
        if callback is not None:
            callback({"x": x, "denoised": denoised, "level": level, "sigma": sigma, "levels": len(values), "steps": 1,
                      "active": None if all(active) else active, "position": position, "run_levels": len(run)})
    return x


def _dc_on(data_consistency: ProximalFn, denoised: torch.Tensor, sigma: float, index: torch.Tensor, batch: int) -> torch.Tensor:
    """Data consistency of the active items only (the rule holds every item's y and ν)."""
    if len(index) == batch:
        return data_consistency(denoised, sigma)
    full = torch.zeros((batch, *denoised.shape[1:]), dtype=denoised.dtype, device=denoised.device)
    full[index] = denoised
    return data_consistency(full, sigma)[index]
