"""The samplers on a Gaussian prior, in closed form: what their samples' mean and spread are,
against the exact posterior.

The model: a complex image whose k-space coefficients ``K = F x`` (centred orthonormal FFT) are
independent, circular, zero-mean, with variance ``v_k`` per real component; single-coil
measurement ``y = M ⊙ K + n`` with ``n ~ CN(0, ν)`` (``ν/2`` per real component) on the sampled
points. Everything is then diagonal in k-space, and per real component of coefficient ``k``:

* the σ-perturbed prior score is ``−K/(v_k + σ²)`` (exact Tweedie: ``E[K₀ | K] = K v_k/(v_k + σ²)``);
* the Gaussian data-consistency rule of :mod:`lit_sampler.sampling.langevin` adds
  ``−λ m_k (K − y_k)/(ν/2 + σ²)``, so one Langevin step is the scalar recursion
  ``K ← (1 − α P) K + α b + sqrt(α β) z``, ``P = 1/(v_k+σ²) + λ m_k/(ν/2+σ²)``, ``b = λ m_k y_k/(ν/2+σ²)``:
  mean ``μ ← (1 − αP) μ + α b``, variance ``V ← (1 − αP)² V + αβ``;
* the posterior is ``N(μ_post, V_post)`` with ``1/V_post = 1/v_k + 2 m_k/ν``, ``μ_post = V_post · 2 m_k y_k/ν``.

A chain started from a warm estimate ``x₀ + σ_s z`` starts at mean ``F x₀`` and variance ``σ_s²``
(per real component). :func:`langevin_moments` runs a chain plan on these recursions; the test
suite checks it against the sampler's own code with :class:`GaussianPriorScore`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from ..physics.fft import channels_to_complex, complex_to_channels, fft2c, ifft2c


@dataclass
class GaussianModel:
    """Prior variance per real component of each k-space coefficient ``prior_var`` ``[H, W]``, the
    sampling mask ``mask`` ``[H, W]`` (bool) and the complex noise variance ``noise_var`` ν."""

    prior_var: torch.Tensor
    mask: torch.Tensor
    noise_var: float

    def posterior(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean [H, W] complex, variance per real component [H, W])`` of the k-space coefficients given
        the measured k-space ``y`` ``[H, W]`` (zero where not sampled)."""
        m = self.mask.double()
        if self.noise_var == 0:
            var = torch.where(self.mask, torch.zeros_like(self.prior_var), self.prior_var)
            return torch.where(self.mask, y, torch.zeros_like(y)), var
        precision = 1 / self.prior_var + 2 * m / self.noise_var
        var = 1 / precision
        return var * 2 * m * y / self.noise_var, var

    def sample(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(truth K [H, W], measurement y [H, W])`` drawn from the model (complex128)."""
        shape = self.prior_var.shape
        truth = torch.complex(torch.randn(shape, generator=generator, dtype=torch.float64),
                              torch.randn(shape, generator=generator, dtype=torch.float64)) * self.prior_var.sqrt()
        noise = torch.complex(torch.randn(shape, generator=generator, dtype=torch.float64),
                              torch.randn(shape, generator=generator, dtype=torch.float64)) * math.sqrt(self.noise_var / 2)
        return truth, torch.where(self.mask, truth + noise, torch.zeros_like(truth))


def power_law_variance(height: int, width: int, exponent: float = 3.0, total: float = 1.0) -> torch.Tensor:
    """``v_k ∝ (1 + |k|)^(−exponent)`` (|k| in cycles per field of view), scaled so that the image has
    mean power ``total`` per real entry: natural images' spectra fall off as a power of the frequency."""
    ky = torch.arange(height, dtype=torch.float64) - height // 2
    kx = torch.arange(width, dtype=torch.float64) - width // 2
    radius = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    var = (1 + radius) ** (-float(exponent))
    return var * total / var.mean()


def langevin_moments(model: GaussianModel, y: torch.Tensor, sigmas: Sequence[float],
                     plan: Sequence[tuple[int, float, int]], start_mean: torch.Tensor, start_var: float | torch.Tensor,
                     noise_boost: float, dc_boost: float = 1.0, final_denoise: bool = False,
                     prior_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[H, W]`` complex and variance per real component ``[H, W]`` of the k-space coefficients
    after the chain ``plan`` (``(level, α, steps)`` triples, :func:`lit_sampler.sampling.langevin.chain_plan`)
    from ``N(start_mean, start_var)``; ``prior_only``: no data consistency (prior sampling)."""
    mean = start_mean.to(torch.complex128).clone()
    var = torch.as_tensor(start_var, dtype=torch.float64).expand(model.prior_var.shape).clone()
    m = 0.0 if prior_only else model.mask.double() * float(dc_boost)
    for level, alpha, steps in plan:
        sigma2 = float(sigmas[level]) ** 2
        precision = 1 / (model.prior_var + sigma2) + m / (model.noise_var / 2 + sigma2)
        drift = m * y / (model.noise_var / 2 + sigma2)
        factor = 1 - alpha * precision
        for _ in range(int(steps)):
            mean = factor * mean + alpha * drift
            var = factor**2 * var + alpha * noise_boost
    if final_denoise:
        shrink = model.prior_var / (model.prior_var + float(sigmas[-1]) ** 2)
        mean, var = mean * shrink, var * shrink**2
    return mean, var


def decomposed_moments(model: GaussianModel, y: torch.Tensor, sigmas: Sequence[float], levels: Sequence[int],
                       start_mean: torch.Tensor, start_var: float | torch.Tensor, eta: float,
                       prior_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance per real component ``[H, W]`` of the output of
    :func:`lit_sampler.sampling.decomposed.decomposed_diffusion` (data consistency solved exactly) from
    ``N(start_mean, start_var)``. Per level σ with next level σ' (0 after the last), per coefficient:
    Tweedie ``a = v/(v + σ²)``; on measured coefficients the data-consistent estimate is
    ``w y + (1 − w) a K`` with ``w = 2σ²/(2σ² + ν)``; then ``K' = (…) + b (1 − a) K/σ + c z``,
    ``b = sqrt(σ'² − c²)``, c of :func:`lit_sampler.sampling.decomposed.renoise_std`."""
    from .decomposed import renoise_std

    mean = start_mean.to(torch.complex128).clone()
    var = torch.as_tensor(start_var, dtype=torch.float64).expand(model.prior_var.shape).clone()
    measured = torch.zeros_like(model.prior_var) if prior_only else model.mask.double()
    for position, level in enumerate(levels):
        sigma2 = float(sigmas[level]) ** 2
        sigma_next = float(sigmas[levels[position + 1]]) if position + 1 < len(levels) else 0.0
        shrink = model.prior_var / (model.prior_var + sigma2)
        weight = measured * (2 * sigma2 / (2 * sigma2 + model.noise_var) if model.noise_var > 0 else 1.0)
        fresh = renoise_std(math.sqrt(sigma2), sigma_next, eta)
        keep = math.sqrt(max(sigma_next**2 - fresh**2, 0.0)) / math.sqrt(sigma2)
        factor = (1 - weight) * shrink + keep * (1 - shrink)
        mean = factor * mean + weight * y
        var = factor**2 * var + fresh**2
    return mean, var


class GaussianPriorScore(torch.nn.Module):
    """The exact σ-perturbed score of the :class:`GaussianModel` prior as a score network:
    ``forward(x [B, 2, H, W], labels [B]) = channels(F⁻¹(−F x / (v + σ_i²)))``, with the ``sigmas``
    buffer the sampler reads. For tests and studies of the samplers where the answer is known."""

    def __init__(self, prior_var: torch.Tensor, sigmas: Sequence[float]):
        super().__init__()
        self.register_buffer("prior_var", torch.as_tensor(prior_var, dtype=torch.float64))
        self.register_buffer("sigmas", torch.as_tensor(list(sigmas), dtype=torch.float32))
        self.in_channels = 2

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        sigma2 = self.sigmas.double()[labels].reshape(-1, 1, 1) ** 2
        kspace = fft2c(channels_to_complex(x.double())[:, 0])
        return complex_to_channels(ifft2c(-kspace / (self.prior_var + sigma2))[:, None]).to(x.dtype)


def spread_summary(model: GaussianModel, chain_var: torch.Tensor, chain_mean: Optional[torch.Tensor],
                   post_mean: torch.Tensor, post_var: torch.Tensor) -> dict[str, float]:
    """Per direction (measured / unmeasured coefficients): the chain's total variance over the
    posterior's (1 = exact spread), and its mean's squared distance from the posterior mean over
    the posterior's total variance (0 = unbiased)."""
    out = {}
    for name, where in (("measured", model.mask), ("unmeasured", ~model.mask)):
        if not bool(where.any()):
            continue
        out[f"var_ratio_{name}"] = float(chain_var[where].sum() / post_var[where].sum())
        if chain_mean is not None:
            out[f"bias_{name}"] = float((chain_mean - post_mean)[where].abs().square().sum() / (2 * post_var[where].sum()))
    return out
