"""How good the posterior samples' spread is as an error bar, per slice, on the magnitude image
inside the object.

For one slice: target ``t = |x★|``, the reconstruction the user receives ``m = |mean_j x_j|`` (the
magnitude of the posterior mean), and ``s`` the standard deviation over the N samples of their
magnitudes ``|x_j|`` (Bessel-corrected). The object is where ``t > 5 %`` of its maximum. Then:

* coverage of ``m ± k s``: the fraction of object pixels with ``|m − t| ≤ k s``;
* ``|m − t| / s``: its median over the object (≈ 0.71 for exact posterior samples and N = 8);
* the mean-of-N gain: PSNR of ``m`` minus the mean PSNR of the samples; for exact posterior
  samples ``E|x_j − x|² = 2 tr Σ`` and ``E|mean_N − x|² = (1 + 1/N) tr Σ``, so the ideal is
  ``10 log10(2N / (N + 1))`` dB (:func:`ideal_mean_gain`);
* Spearman's rank correlation of ``s`` and ``|m − t|`` over the object;
* sparsification (Ilg et al., ECCV 2018): remove object pixels in order of decreasing ``s`` and
  track the RMS error of the rest (relative to all pixels'); the oracle removes them in order of
  decreasing error; AUSE is the area between the two curves, and removing pixels at random gives
  a flat curve at 1 (expected), whose area above the oracle is the reference (:func:`ause`).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch

SUPPORT_FRACTION = 0.05


def object_support(target: torch.Tensor) -> torch.Tensor:
    """Bool ``[H, W]``: pixels of a target magnitude above 5 % of its maximum."""
    return target > SUPPORT_FRACTION * target.max()


def magnitude_std(samples: torch.Tensor) -> torch.Tensor:
    """Per-pixel standard deviation ``[..., H, W]`` of the magnitudes of ``samples`` ``[N, ..., H, W]``
    (complex), with Bessel's correction (N − 1); zero for a single sample."""
    if samples.shape[0] < 2:
        return torch.zeros(samples.shape[1:], dtype=samples.real.dtype)
    return samples.abs().std(dim=0, unbiased=True)


def posterior_summary(samples: torch.Tensor, ok: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mean, std, usable)`` of one slice's samples ``[N, H, W]`` (complex): the posterior mean over
    the samples that did not diverge (``ok`` bool ``[N]``), the magnitude std of those
    (:func:`magnitude_std`), and those samples ``[N_ok, H, W]``. Without any usable sample both are
    NaN. What the volume files hold (:func:`lit_sampler.outputs.volumes.build_volume`) and what the Python
    API returns (:class:`lit_sampler.api.ReconstructionResult`)."""
    usable = samples[ok]
    mean = usable.mean(dim=0) if len(usable) else torch.full_like(samples[0], complex(math.nan, math.nan))
    std = magnitude_std(usable) if len(usable) else mean.abs()
    return mean, std, usable


def normal_multiplier(level: float) -> float:
    """``z`` of a two-sided normal interval of coverage ``level`` (1.645 at 0.9, 1.96 at 0.95)."""
    if not 0 < level < 1:
        raise ValueError(f"coverage level must lie in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def ideal_mean_gain(num_samples: int) -> float:
    """dB the mean of ``num_samples`` exact posterior samples gains over one of them."""
    return 10 * math.log10(2 * num_samples / (num_samples + 1))


def coverage(target: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, k: float | torch.Tensor,
             support: torch.Tensor) -> float:
    """Fraction of ``support`` pixels with ``|mean − target| ≤ k · std`` (magnitudes ``[H, W]``)."""
    inside = (mean - target).abs() <= k * std
    return float(inside[support].double().mean())


def error_ratios(target: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """``|mean − target| / std`` over ``support`` (1-D; ``inf`` where the std is zero and the error is not)."""
    error = (mean - target).abs()[support].double()
    spread = std[support].double()
    return torch.where(error == 0, torch.zeros_like(error), error / spread)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks with ties given their average rank (as scipy's ``rankdata``)."""
    order = torch.argsort(values, stable=True)
    sorted_values = values[order]
    ranks = torch.empty_like(values, dtype=torch.float64)
    ranks[order] = torch.arange(1, len(values) + 1, dtype=torch.float64)
    unique, inverse, counts = torch.unique(sorted_values, return_inverse=True, return_counts=True)
    if len(unique) < len(values):
        sums = torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, ranks[order])
        ranks[order] = (sums / counts)[inverse]
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two 1-D tensors (NaN when either is constant)."""
    ra, rb = _ranks(a.double()), _ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / denominator if denominator > 0 else math.nan


def sparsification_curve(error: torch.Tensor, order_by: torch.Tensor, steps: int = 100) -> torch.Tensor:
    """RMS of ``error`` over the pixels left after removing the fraction ``f = i/steps`` (i = 0 …
    steps − 1) with the largest ``order_by``, relative to the RMS over all pixels ``[steps]``."""
    order = torch.argsort(order_by.double(), descending=True, stable=True)
    squared = error.double()[order].square()
    kept_sums = squared.flip(0).cumsum(0).flip(0)  # sum over pixels order[i:]
    counts = torch.arange(len(squared), 0, -1, dtype=torch.float64)
    total = float(squared.mean())
    if total == 0:
        return torch.zeros(steps, dtype=torch.float64)
    removed = (torch.arange(steps, dtype=torch.float64) / steps * len(squared)).long()
    return (kept_sums[removed] / counts[removed] / total).sqrt()


def ause(error: torch.Tensor, uncertainty: torch.Tensor, steps: int = 100) -> tuple[float, float]:
    """``(AUSE, AUSE of the random order)``: the mean gap between the sparsification curve by
    ``uncertainty`` (resp. the flat curve at 1 that random removal gives in expectation) and the
    oracle's curve (by ``error`` itself), over the removed fractions 0 … 0.99."""
    oracle = sparsification_curve(error, error, steps)
    by_uncertainty = sparsification_curve(error, uncertainty, steps)
    return float((by_uncertainty - oracle).mean()), float((1 - oracle).mean())


def slice_uncertainty(target: torch.Tensor, samples: torch.Tensor, levels=(0.9, 0.95),
                      calibrated: dict[float, float] | None = None) -> dict[str, float]:
    """Every number of the module docstring for one slice.

    Args:
        target: complex or magnitude ``[H, W]``.
        samples: the usable posterior samples ``[N, H, W]`` (complex), N ≥ 2.
        levels: nominal coverages to report for the raw ``m ± z s`` interval (``coverage_90`` …).
        calibrated: nominal level → calibrated k; adds ``calibrated_coverage_90`` and
            ``calibrated_width_90`` (mean ``2 k s`` over the object) per level.
    """
    from .metrics import psnr

    truth = target.abs().double()
    mean = samples.mean(dim=0).abs().double()
    std = magnitude_std(samples).double()
    support = object_support(truth)
    out: dict[str, float] = {}
    for level in levels:
        out[f"coverage_{round(level * 100)}"] = coverage(truth, mean, std, normal_multiplier(level), support)
    out["error_std_ratio"] = float(error_ratios(truth, mean, std, support).median())
    peak = truth.max()
    one = float(psnr(truth.expand(samples.shape[0], -1, -1), samples.abs().double(), peak).mean())
    out["mean_gain_db"] = float(psnr(truth, mean, peak)) - one
    out["sample_psnr"] = one
    error = (mean - truth).abs()[support]
    out["spearman"] = spearman(std[support], error)
    out["ause"], out["ause_random"] = ause(error, std[support])
    for level, k in (calibrated or {}).items():
        name = round(level * 100)
        out[f"calibrated_coverage_{name}"] = coverage(truth, mean, std, k, support)
        out[f"calibrated_width_{name}"] = float((2 * k * std)[support].mean())
    return out
