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


# ---------------------------------------------------------------------------- level runs
def sigma_values(sigmas) -> list[float]:
    """σ_0 … σ_{L−1} (a tensor or a sequence) as Python floats."""
    return [float(s) for s in (sigmas.tolist() if isinstance(sigmas, torch.Tensor) else sigmas)]


def check_levels(levels, num_levels: int, first: int = 0) -> list[int]:
    """``levels`` as a list of ascending level indices in ``[first, L−1]``, else the one error."""
    kept = [int(j) for j in levels]
    if not kept or any(a >= b for a, b in zip(kept, kept[1:])) or kept[0] < first or kept[-1] >= num_levels:
        why = " (sigma_offset to L-1)" if first else ""
        raise ValueError(f"levels must be indices in [{first}, {num_levels - 1}]{why}, in ascending order, got {kept}")
    return kept


def check_steps(counts: list[int]) -> list[int]:
    """Langevin steps per level run, each at least 1."""
    if any(t < 1 for t in counts):
        raise ValueError(f"steps_each must be at least 1, got {min(counts)}")
    return counts


def log_spaced_levels(sigmas, count: int, start: int = 0) -> list[int]:
    """``count`` level indices from ``start`` to L−1, evenly spaced in log σ (both ends included).

    For a geometric schedule these are evenly spaced indices; for any other, each target value of
    log σ takes the nearest level. Duplicates are dropped, so fewer may come back for tiny ranges.
    """
    levels = sigma_values(sigmas)
    last = len(levels) - 1
    if not 0 <= start <= last:
        raise ValueError(f"start level must lie in [0, {last}], got {start}")
    if count < 1:
        raise ValueError(f"need a positive number of levels, got {count}")
    if count == 1:
        return [last]
    logs = np.log(np.asarray(levels[start:], dtype=np.float64))
    targets = np.linspace(logs[0], logs[-1], int(count))
    picked = sorted({start + int(np.argmin(np.abs(logs - t))) for t in targets})
    return picked


def level_step_sizes(sigmas, levels, step_size: float) -> list[float]:
    """Step sizes α'_j for running only the levels ``levels`` (ascending indices) of ``sigmas``.

    With every level, α_i = ε (σ_i/σ_{L−1})². When kept level j stands for the block of m_j levels
    from j up to the next kept one (the last kept level: up to L−1), its step does the block's work:

        α'_j = σ_j² · (1 − (1 − α_j/σ_j²)^{m_j})

    Derivation: near a mode the σ-perturbed score is −(x − μ)/σ², so one step shrinks the distance
    to the mode by (1 − α/σ²); with ε fixed, α_i/σ_i² = ε/σ_{L−1}² = r is the same at every level,
    and the m_j levels' steps shrink it by (1 − r)^{m_j}. α'_j matches that in one step. It is α_j
    when m_j = 1 (the full chain is unchanged), ≈ m_j·α_j when m_j·r ≪ 1, and for 0 < r < 2 stays
    below 2σ_j², so the shortened chain contracts as the full one does (checked by
    :func:`chain_variance`). (Summing the skipped steps instead, α'_j = Σ α_i, overshoots
    2σ_j² as soon as the block is long: that chain diverges.) For r ≥ 2, where even the full chain
    does not contract, the step is left at α_j.
    """
    values = sigma_values(sigmas)
    kept = check_levels(levels, len(values))
    sigma_last = values[-1]
    ends = kept[1:] + [len(values)]
    out = []
    for j, end in zip(kept, ends):
        alpha = step_size * (values[j] / sigma_last) ** 2
        ratio = alpha / values[j] ** 2
        rescale = end - j > 1 and 0.0 < ratio < 2.0
        out.append(values[j] ** 2 * (1.0 - (1.0 - ratio) ** (end - j)) if rescale else alpha)
    return out


def chain_variance(sigmas, levels, alphas, steps, noise_boost: float = 2.0, start_std: float | None = None) -> dict:
    """Technique-4-style check of a schedule: run the chain on the point-mass data of Song & Ermon's
    analysis (at level σ the perturbed density is N(0, σ²), score −x/σ²), in closed form.

    One step maps the per-entry variance v to (1 − α/σ²)² v + αβ. Starting from v = ``start_std²``
    (default σ² of the first level run), the function returns ``{"ratio": v_end / σ_{last}²,
    "contraction": max_j |1 − α_j/σ_j²|}``: a stable schedule has contraction < 1, and a ratio near
    that of the full chain means the shortened chain ends at the right spread.
    """
    values = sigma_values(sigmas)
    kept = [int(j) for j in levels]
    counts = [int(steps)] * len(kept) if isinstance(steps, int) else [int(t) for t in steps]
    variance = (values[kept[0]] if start_std is None else float(start_std)) ** 2
    contraction = 0.0
    for j, alpha, t in zip(kept, alphas, counts):
        factor = 1.0 - alpha / values[j] ** 2
        contraction = max(contraction, abs(factor))
        for _ in range(t):
            variance = factor**2 * variance + alpha * noise_boost
    return {"ratio": variance / values[kept[-1]] ** 2, "contraction": contraction}
