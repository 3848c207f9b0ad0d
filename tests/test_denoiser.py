"""A score network as a denoiser D(x, σ) = x + σ² s(x, σ) (deepinv's ``denoiser(x, sigma)``): on a
Gaussian prior, whose score is exact, D is the exact posterior mean E[x₀ | x = x₀ + σ z]."""

from __future__ import annotations

import math

import pytest
import torch

from lit_sampler import Sampler, ScoreDenoiser
from lit_sampler.models import NCSNv2
from lit_sampler.physics.fft import channels_to_complex, complex_to_channels, fft2c, ifft2c
from lit_sampler.sampling.gaussian_chain import GaussianModel, GaussianPriorScore, power_law_variance
from lit_sampler.sampling.schedules import geometric_sigmas


def posterior_mean(x: torch.Tensor, prior_var: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """E[x₀ | x] for x₀ with k-space variance ``prior_var`` per real component and noise σ per real
    entry: ``F⁻¹(F x · v / (v + σ²))`` (the orthonormal FFT keeps the noise white with variance σ²)."""
    kspace = fft2c(channels_to_complex(x.double())[:, 0])
    shrink = prior_var / (prior_var + sigma.double().reshape(-1, 1, 1) ** 2)
    return complex_to_channels(ifft2c(kspace * shrink)[:, None])


@pytest.fixture
def gaussian():
    prior_var = power_law_variance(16, 12)
    sigmas = geometric_sigmas(4.0, 0.02, 10)
    model = GaussianModel(prior_var, torch.zeros(16, 12, dtype=torch.bool), 0.0)
    generator = torch.Generator().manual_seed(0)
    clean = ifft2c(torch.stack([model.sample(generator)[0] for _ in range(3)]))  # [3, H, W] complex: x₀ ~ prior
    return prior_var, sigmas, complex_to_channels(clean[:, None]).float()


def test_denoiser_is_the_exact_posterior_mean_on_a_gaussian_prior(gaussian):
    prior_var, sigmas, clean = gaussian
    denoiser = ScoreDenoiser(GaussianPriorScore(prior_var, sigmas))
    generator = torch.Generator().manual_seed(1)
    # one σ for the batch (a float, deepinv's common case) and one per item ([B]), all trained levels
    for sigma in (float(sigmas[4]), sigmas[[1, 5, 9]]):
        per_item = torch.as_tensor(sigma, dtype=torch.float32).expand(3)
        noisy = clean + per_item.reshape(-1, 1, 1, 1) * torch.randn(clean.shape, generator=generator)
        out = denoiser(noisy, sigma)
        assert out.shape == noisy.shape and out.dtype == torch.float32
        torch.testing.assert_close(out.double(), posterior_mean(noisy, prior_var, per_item), rtol=1e-5, atol=1e-5)
        # it denoises: closer to the truth than the noisy input
        assert float((out - clean).square().mean()) < float((noisy - clean).square().mean())


def test_sigma_maps_to_the_nearest_level_in_log_sigma(gaussian):
    prior_var, sigmas, clean = gaussian
    denoiser = ScoreDenoiser(GaussianPriorScore(prior_var, sigmas))
    between = math.sqrt(float(sigmas[2]) * float(sigmas[3]))  # the geometric midpoint of levels 2 and 3
    assert denoiser.level_of(between * 1.01).tolist() == [2] and denoiser.level_of(between * 0.99).tolist() == [3]
    assert denoiser.level_of(torch.tensor([100.0, 1e-6, float(sigmas[7])]), 3).tolist() == [0, 9, 7]
    assert denoiser.level_of(torch.tensor([[[[0.5]]], [[[0.05]]], [[[4.0]]]]), 3).shape == (3,)  # [B, 1, 1, 1]
    # between levels: x + σ² s(x, nearest level), σ as requested
    sigma = float(sigmas[3]) * 1.05
    expected = clean + sigma**2 * GaussianPriorScore(prior_var, sigmas)(clean, torch.full((3,), 3))
    torch.testing.assert_close(denoiser(clean, sigma), expected)


def test_bad_calls_are_refused(gaussian):
    prior_var, sigmas, clean = gaussian
    denoiser = ScoreDenoiser(GaussianPriorScore(prior_var, sigmas))
    with pytest.raises(ValueError, match=r"x must be real \[B, C, H, W\]"):
        denoiser(channels_to_complex(clean), 0.1)
    with pytest.raises(ValueError, match=r"sigma must be one number or one per item \(\[3\]\), got shape \[2\]"):
        denoiser(clean, torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"sigma must be positive"):
        denoiser(clean, 0.0)
    with pytest.raises(ValueError, match=r"has no `sigmas` buffer"):
        ScoreDenoiser(torch.nn.Identity())


def test_a_checkpoint_network_is_a_denoiser_through_the_sampler():
    torch.manual_seed(0)
    network = NCSNv2(in_channels=2, ngf=4, sigma_begin=2.0, sigma_end=0.05, num_classes=5)
    denoiser = Sampler(network, preset=None, device="cpu").denoiser()
    x = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        out = denoiser(x, torch.tensor([0.05, 2.0]))
        expected = x + torch.tensor([0.05, 2.0]).reshape(-1, 1, 1, 1) ** 2 * network(x, torch.tensor([4, 0]))
    torch.testing.assert_close(out, expected)
