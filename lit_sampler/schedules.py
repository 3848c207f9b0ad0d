"""Noise-level schedules and step sizes (Song & Ermon 2020, "Improved Techniques for Training
Score-Based Generative Models", techniques 1, 2 and 4).

Levels are geometric and descending, σ_0 > σ_1 > … > σ_{L−1}; ``γ = σ_{i−1}/σ_i > 1`` is their
constant ratio (the reference configs store its inverse as ``sigma_rate``).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def geometric_sigmas(sigma_begin: float, sigma_end: float, num_classes: int) -> torch.Tensor:
    """``num_classes`` geometrically spaced levels from ``sigma_begin`` down to ``sigma_end`` (float32).

    Computed as ``exp(linspace(log σ_begin, log σ_end, L))`` in float64, as the reference does.
    """
    if not (sigma_begin > sigma_end > 0):
        raise ValueError(f"need sigma_begin > sigma_end > 0, got {sigma_begin} and {sigma_end}")
    if num_classes < 2:
        raise ValueError(f"need at least 2 noise levels, got num_classes={num_classes}")
    logs = np.linspace(math.log(sigma_begin), math.log(sigma_end), int(num_classes))
    return torch.from_numpy(np.exp(logs)).float()


def max_pairwise_distance(samples: torch.Tensor) -> float:
    """Technique 1: σ_begin = the largest Euclidean distance between two training samples ``[N, …]``."""
    flat = samples.reshape(samples.shape[0], -1).double()
    if flat.shape[0] < 2:
        raise ValueError("technique 1 needs at least two samples")
    return float(torch.cdist(flat, flat).max())


def _std_normal_cdf(value: float) -> float:
    return 0.5 * (1.0 + math.erf(value / math.sqrt(2.0)))


def sigma_ratio_for_dimension(dimension: int, target: float = 0.5) -> float:
    """Technique 2: the ratio γ⁻¹ = σ_i/σ_{i−1} (the reference's ``sigma_rate``, < 1) for data of
    ``dimension`` real entries D, chosen so that

        Φ(√(2D)(γ − 1) + 3γ) − Φ(√(2D)(γ − 1) − 3γ) = target   (0.5 in the paper),

    solved by bisection on γ ∈ (1, 2) (the left side decreases in γ there).
    """
    root = math.sqrt(2.0 * dimension)

    def coverage(gamma: float) -> float:
        return _std_normal_cdf(root * (gamma - 1) + 3 * gamma) - _std_normal_cdf(root * (gamma - 1) - 3 * gamma)

    low, high = 1.0, 2.0
    if coverage(high) > target:
        raise ValueError(f"no ratio reaches coverage {target} for D={dimension}")
    for _ in range(200):
        mid = 0.5 * (low + high)
        if coverage(mid) > target:
            low = mid
        else:
            high = mid
    return 1.0 / (0.5 * (low + high))


def _technique4_residual(step_size: np.ndarray, sigma_end: float, gamma: float, steps_each: int) -> np.ndarray:
    s2 = sigma_end**2
    decay = 1.0 - step_size / s2
    ratio = 2.0 * step_size / (s2 - s2 * decay**2)
    return np.abs(decay ** (2 * steps_each) * (gamma**2 - ratio) + ratio - 1.0)


def technique4_step_size(sigma_end: float, gamma: float, steps_each: int) -> float:
    """Technique 4: the step size ε that makes T Langevin steps at each level take the variance of
    a sample from σ_{i−1}² to σ_i² (Song & Ermon 2020, eq. 7):

        minimise | (1 − ε/σ_L²)^{2T} (γ² − 2ε/(σ_L² − σ_L²(1 − ε/σ_L²)²)) + 2ε/(σ_L² − σ_L²(1 − ε/σ_L²)²) − 1 |

    with γ = σ_{i−1}/σ_i > 1 (pass ``1 / sigma_rate``). The search covers the whole admissible range
    ε ∈ (σ_L²·1e−12, σ_L²) on a log grid, then refines around the best point, so it never clips (the
    reference's grid stops at 1e−7 and clips the optimum ≈3.9e−7 of its brain schedule).
    """
    if gamma <= 1:
        raise ValueError(f"gamma = sigma_(i-1)/sigma_i must exceed 1, got {gamma}")
    s2 = sigma_end**2
    grid = np.logspace(math.log10(s2) - 12, math.log10(s2), 20001)[:-1]
    best = int(np.argmin(_technique4_residual(grid, sigma_end, gamma, steps_each)))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    fine = np.linspace(low, high, 20001)
    return float(fine[np.argmin(_technique4_residual(fine, sigma_end, gamma, steps_each))])
