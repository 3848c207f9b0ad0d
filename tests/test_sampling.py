"""Annealed Langevin dynamics against closed forms: Gaussian priors and Gaussian posteriors.

For a Gaussian target the chain is a linear recursion, so its stationary law is known exactly:
a mode with drift −λ(x − m), step α and injected variance αβ has stationary mean m and variance
β / (λ (2 − αλ)) (→ β/(2λ) as α → 0: β = 2 samples the target, β = 1 gives half its variance).
"""

import math

import pytest
import torch

from lit_sampler.physics.fft import complex_to_channels, fft2c, ifft2c
from lit_sampler.physics.operators import MultiCoilMRI, SingleCoilMRI
from lit_sampler.sampling.langevin import GaussianDataConsistency, NormMatchedDataConsistency, annealed_langevin
from lit_sampler.sampling.schedules import geometric_sigmas


def gaussian_score(mean, var):
    """Score of N(mean, var·I) convolved with N(0, σ²I), at level σ = sigmas[label]."""

    def score(x, labels, sigmas):
        sigma = sigmas[labels].reshape(-1, 1, 1, 1).to(x.dtype)
        return -(x - mean) / (var + sigma**2)

    return score


def stationary_variance(precision, alpha, beta):
    return beta / (precision * (2 - alpha * precision))


@pytest.mark.parametrize("noise_boost", [2.0, 1.0])
def test_prior_sampling_reproduces_gaussian_mean_and_variance(noise_boost):
    mean, var = 0.5, 1.0
    sigmas = geometric_sigmas(3.0, 0.3, 5).double()
    score = gaussian_score(mean, var)
    step_size = 0.05
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4000, 2, 4, 4, generator=g, dtype=torch.float64) * 3
    x = annealed_langevin(
        lambda x, labels: score(x, labels, sigmas), x0, sigmas,
        step_size=step_size, steps_each=300, noise_boost=noise_boost, generator=g,
    )
    precision = 1 / (var + sigmas[-1].item() ** 2)
    expected_var = stationary_variance(precision, step_size, noise_boost)
    assert abs(x.mean().item() - mean) < 4 * math.sqrt(expected_var / x.numel())
    # the variance of a Gaussian sample of n draws has standard error var·sqrt(2/n)
    assert abs(x.var().item() - expected_var) < 4 * expected_var * math.sqrt(2 / x.numel())
    # and it is the target's variance (noise_boost 2), or half of it (the reference's noise_boost 1)
    assert x.var().item() == pytest.approx(noise_boost / 2 * (var + sigmas[-1].item() ** 2), rel=0.03)


def test_posterior_sampling_matches_closed_form_gaussian_posterior():
    """Prior: each real component N(m, s²). Measurement y = M F x + CN(0, ν) on sampled points.
    In k-space (F unitary) every mode is independent with drift precision
    λ_j = 1/(s² + σ²) + M_j/(ν/2 + σ²), so the posterior is diagonal there."""
    h, w = 6, 8
    m, s2, nu = 0.3, 1.0, 0.5
    g = torch.Generator().manual_seed(1)
    mask = torch.zeros(1, 1, 1, w, dtype=torch.float64)
    mask[..., [1, 3, 4, 6]] = 1
    operator = SingleCoilMRI(mask)
    x_true = (m + math.sqrt(s2) * torch.randn(1, h, w, 2, generator=g, dtype=torch.float64))
    x_true = torch.view_as_complex(x_true)
    noise = torch.view_as_complex(torch.randn(1, 1, h, w, 2, generator=g, dtype=torch.float64)) * math.sqrt(nu / 2)
    y = operator.forward(x_true) + mask * noise

    chains = 3000
    sigmas = geometric_sigmas(1.0, 0.3, 4).double()
    step_size = 0.04
    dc = GaussianDataConsistency(operator, y.expand(chains, -1, -1, -1), noise_var=nu)
    prior = gaussian_score(m, s2)
    x0 = torch.randn(chains, 2, h, w, generator=g, dtype=torch.float64)
    x = annealed_langevin(
        lambda x, labels: prior(x, labels, sigmas), x0, sigmas,
        step_size=step_size, steps_each=300, noise_boost=2.0, data_consistency=dc, generator=g,
    )

    sigma_l2 = sigmas[-1].item() ** 2
    vp, vn = s2 + sigma_l2, nu / 2 + sigma_l2
    sampled = mask.expand(1, 1, h, w)[0, 0]
    precision = 1 / vp + sampled / vn
    prior_mean_k = fft2c(torch.full((h, w), m * (1 + 1j), dtype=torch.complex128))
    post_mean_k = (prior_mean_k / vp + sampled * y[0, 0] / vn) / precision
    post_mean = complex_to_channels(ifft2c(post_mean_k)[None, None])[0]
    # per real component, each pixel's variance is the mean of the modes' variances (|F_jp|² = 1/N)
    post_var = stationary_variance(precision, step_size, 2.0).mean().item()

    empirical_var = x.var(dim=0)
    assert empirical_var.mean().item() == pytest.approx(post_var, rel=0.02)
    assert (empirical_var - post_var).abs().max().item() < 5 * post_var * math.sqrt(2 / chains)
    assert (x.mean(dim=0) - post_mean).abs().max().item() < 5 * math.sqrt(post_var / chains)
    # sanity: the data pulled the chains away from the prior mean
    assert (post_mean - m).abs().max().item() > 0.3


def counting_score():
    calls = []

    def score(x, labels):
        calls.append(labels.clone())
        return torch.zeros_like(x)

    return score, calls


@pytest.mark.parametrize("sigma_offset", [0, 3])
def test_sigma_offset_skips_largest_levels_and_counts_steps(sigma_offset):
    sigmas = geometric_sigmas(10.0, 0.1, 7)
    score, calls = counting_score()
    seen = []
    annealed_langevin(
        score, torch.zeros(2, 2, 3, 3), sigmas, step_size=1e-3, steps_each=3, sigma_offset=sigma_offset,
        generator=torch.Generator().manual_seed(0), callback=seen.append,
    )
    assert len(calls) == (7 - sigma_offset) * 3
    assert [int(c[0]) for c in calls[::3]] == list(range(sigma_offset, 7))
    assert [info["level"] for info in seen] == list(range(sigma_offset, 7))
    assert seen[0]["sigma"] == pytest.approx(sigmas[sigma_offset].item())
    assert seen[-1]["alpha"] == pytest.approx(1e-3)
    assert {"x", "level", "sigma", "alpha", "levels", "steps"} <= set(seen[0])


def test_step_sizes_follow_sigma_squared_scaling_and_reference_noise():
    """With a zero score one step adds sqrt(α_i β)·z exactly: compare against the generator's draws."""
    sigmas = torch.tensor([4.0, 2.0, 1.0])
    x0 = torch.zeros(1, 2, 2, 2)
    out = annealed_langevin(lambda x, l: torch.zeros_like(x), x0, sigmas, step_size=0.01, steps_each=1,
                            noise_boost=1.5, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    expected = sum(math.sqrt(0.01 * (s / 1.0) ** 2 * 1.5) * torch.randn(1, 2, 2, 2, generator=g) for s in (4.0, 2.0, 1.0))
    torch.testing.assert_close(out, expected)


def test_final_denoise_is_tweedie_step():
    sigmas = torch.tensor([2.0, 0.5])
    score = lambda x, labels: torch.full_like(x, 3.0) * (labels == 1).float().reshape(-1, 1, 1, 1)
    out = annealed_langevin(score, torch.zeros(1, 2, 1, 1), sigmas, step_size=0.1, steps_each=1,
                            noise_boost=0.0, final_denoise=True)
    # level 1 contributes α_1·3 = 0.1·3; the Tweedie step adds σ_L²·3 = 0.25·3
    torch.testing.assert_close(out, torch.full((1, 2, 1, 1), 0.3 + 0.75))


def test_same_seed_same_result_and_per_item_streams_ignore_batching():
    sigmas = geometric_sigmas(5.0, 0.5, 4)
    score = lambda x, labels: -x
    x0 = torch.zeros(3, 2, 4, 4)
    kwargs = dict(step_size=0.01, steps_each=2)
    run = lambda seed: annealed_langevin(score, x0, sigmas, generator=torch.Generator().manual_seed(seed), **kwargs)
    torch.testing.assert_close(run(3), run(3), rtol=0, atol=0)
    assert not torch.equal(run(3), run(4))
    gens = lambda: [torch.Generator().manual_seed(100 + i) for i in range(3)]
    together = annealed_langevin(score, x0, sigmas, generator=gens(), **kwargs)
    alone = annealed_langevin(score, x0[1:2], sigmas, generator=gens()[1:2], **kwargs)
    torch.testing.assert_close(together[1:2], alone, rtol=0, atol=0)


def test_no_global_rng_use():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    annealed_langevin(lambda x, l: -x, torch.zeros(2, 2, 3, 3), torch.tensor([2.0, 1.0]), step_size=0.1,
                      steps_each=2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sigma_offset=3), r"sigma_offset must lie in \[0, 2\], got 3"),
        (dict(steps_each=0), r"steps_each must be at least 1, got 0"),
        (dict(step_size=0.0), r"step_size must be positive, got 0.0"),
    ],
)
def test_invalid_knobs(kwargs, message):
    args = dict(step_size=0.1, steps_each=1) | kwargs
    with pytest.raises(ValueError, match=message):
        annealed_langevin(lambda x, l: x, torch.zeros(1, 2, 2, 2), torch.tensor([3.0, 2.0, 1.0]), **args)
    with pytest.raises(ValueError, match=r"sigmas must be strictly descending"):
        annealed_langevin(lambda x, l: x, torch.zeros(1, 2, 2, 2), torch.tensor([1.0, 2.0]), step_size=0.1, steps_each=1)


def test_gaussian_data_consistency_formula_multicoil_per_item_noise():
    g = torch.Generator().manual_seed(2)
    b, coils, h, w = 3, 4, 6, 5
    maps = torch.randn(b, coils, h, w, generator=g, dtype=torch.complex128)
    mask = (torch.rand(b, 1, 1, w, generator=g) < 0.5).double()
    op = MultiCoilMRI(maps, mask)
    y = op.forward(torch.randn(b, h, w, generator=g, dtype=torch.complex128))
    x = torch.randn(b, 2, h, w, generator=g, dtype=torch.float64)
    nu = torch.tensor([0.1, 0.2, 0.0], dtype=torch.float64)
    dc = GaussianDataConsistency(op, y, noise_var=nu, dc_boost=1.7)
    image = torch.complex(x[:, 0], x[:, 1])
    for i in range(b):
        sigma = 0.3
        expected = 1.7 * (op.adjoint(op.forward(image))[i] - op.adjoint(y)[i]) / (nu[i] / 2 + sigma**2)
        got = dc(x, sigma, torch.zeros_like(x))[i]
        torch.testing.assert_close(got, torch.stack([expected.real, expected.imag]))


def test_norm_matched_data_consistency_direction_and_norm():
    g = torch.Generator().manual_seed(3)
    b, h, w = 2, 5, 6
    op = SingleCoilMRI((torch.rand(b, 1, 1, w, generator=g) < 0.5).double())
    y = op.forward(torch.randn(b, h, w, generator=g, dtype=torch.complex128))
    x = torch.randn(b, 2, h, w, generator=g, dtype=torch.float64)
    s = torch.randn(b, 2, h, w, generator=g, dtype=torch.float64)
    s[1] *= 10
    out = NormMatchedDataConsistency(op, y, weight=5.0)(x, 0.1, s)
    d = op.adjoint(op.forward(torch.complex(x[:, 0], x[:, 1])) - y)
    for i in range(b):
        assert out[i].norm().item() == pytest.approx(5.0 * s[i].norm().item())
        direction = torch.stack([d[i].real, d[i].imag])
        torch.testing.assert_close(out[i] / out[i].norm(), direction / direction.norm())
