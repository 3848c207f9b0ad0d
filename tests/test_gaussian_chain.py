"""The samplers on a Gaussian prior: the closed forms of :mod:`lit_sampler.sampling.gaussian_chain` against
the samplers' own code (Monte Carlo), the few-call sampler's data consistency and counts."""

import math

import pytest
import torch

from lit_sampler.physics.fft import channels_to_complex, complex_to_channels, fft2c, ifft2c
from lit_sampler.physics.operators import SingleCoilMRI
from lit_sampler.sampling.decomposed import ProximalDataConsistency, decomposed_diffusion, decomposed_evaluations
from lit_sampler.sampling.gaussian_chain import (
    GaussianModel, GaussianPriorScore, decomposed_moments, langevin_moments, power_law_variance,
)
from lit_sampler.sampling.langevin import GaussianDataConsistency, annealed_langevin, chain_plan
from lit_sampler.sampling.schedules import geometric_sigmas

SIZE = 8


def small_model(noise_var: float = 0.02) -> GaussianModel:
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    mask[:, [0, 2, 3, 4, 6]] = True
    return GaussianModel(power_law_variance(SIZE, SIZE, 2.0, total=0.5), mask, noise_var)


def measured(model: GaussianModel, seed: int = 0):
    truth, y = model.sample(torch.Generator().manual_seed(seed))
    operator = SingleCoilMRI(model.mask.double()[None, None])
    return truth, y, operator


def empirical_kspace_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (complex) and variance per real component of the k-space coefficients of chains ``[N, 2, H, W]``."""
    kspace = fft2c(channels_to_complex(x)[:, 0])
    var = (kspace.real.var(dim=0) + kspace.imag.var(dim=0)) / 2
    return kspace.mean(dim=0), var


def check_moments(x, mean, var, chains):
    got_mean, got_var = empirical_kspace_moments(x)
    # standard errors: mean sqrt(var/n) per component, variance var·sqrt(2/(2n)) (two components)
    assert ((got_mean - mean).abs() <= 5 * (2 * var / chains).sqrt() + 1e-9).all()
    assert ((got_var - var).abs() <= 5 * var * math.sqrt(1 / chains) + 1e-12).all()


@pytest.mark.parametrize("noise_boost,denoise", [(2.0, True), (1.0, False)])
def test_langevin_moments_match_the_sampler(noise_boost, denoise):
    model = small_model()
    _, y, operator = measured(model)
    sigmas = geometric_sigmas(3.0, 0.02, 12).double().tolist()
    plan = chain_plan(12, sigmas, 4e-4, 1, 0, [3, 5, 7, 9, 11])  # a level subset, rescaled steps
    chains = 6000
    generator = torch.Generator().manual_seed(1)
    start_std = sigmas[3]
    x0 = complex_to_channels(ifft2c(y)[None, None]).expand(chains, -1, -1, -1)  # a zero-filled warm start
    x0 = x0 + start_std * torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    score = GaussianPriorScore(model.prior_var, sigmas)
    dc = GaussianDataConsistency(operator, y[None, None].expand(chains, 1, -1, -1), noise_var=model.noise_var)
    x = annealed_langevin(score, x0, sigmas, step_size=4e-4, steps_each=1, levels=[3, 5, 7, 9, 11],
                          noise_boost=noise_boost, data_consistency=dc, final_denoise=denoise, generator=generator)
    mean, var = langevin_moments(model, y, sigmas, plan, y, start_std**2, noise_boost, final_denoise=denoise)
    check_moments(x, mean, var, chains)


@pytest.mark.parametrize("eta", [0.0, 1.0, math.inf])
def test_decomposed_moments_match_the_sampler(eta):
    model = small_model()
    _, y, operator = measured(model, seed=2)
    sigmas = geometric_sigmas(3.0, 0.02, 12).double().tolist()
    levels = [0, 4, 8, 11]
    chains = 6000
    generator = torch.Generator().manual_seed(3)
    x0 = sigmas[0] * torch.randn(chains, 2, SIZE, SIZE, generator=generator, dtype=torch.float64)
    score = GaussianPriorScore(model.prior_var, sigmas)
    # enough CG steps to solve the 2×2-per-coefficient system exactly
    dc = ProximalDataConsistency(operator, y[None, None].expand(chains, 1, -1, -1), model.noise_var, steps=3)
    x = decomposed_diffusion(score, x0, sigmas, levels=levels, eta=eta, data_consistency=dc, generator=generator)
    mean, var = decomposed_moments(model, y, sigmas, levels, torch.zeros_like(y), sigmas[0] ** 2, eta)
    check_moments(x, mean, var, chains)


def test_data_consistency_is_exact_on_noiseless_fully_sampled_data():
    """ν = 0 and every point measured: the data term pins the estimate to the measurement."""
    generator = torch.Generator().manual_seed(4)
    truth = torch.randn(2, SIZE, SIZE, dtype=torch.complex128, generator=generator)
    operator = SingleCoilMRI(torch.ones(1, 1, SIZE, SIZE, dtype=torch.float64))
    y = operator.forward(truth)
    dc = ProximalDataConsistency(operator, y, 0.0, steps=2)
    guess = complex_to_channels(torch.zeros(2, 1, SIZE, SIZE, dtype=torch.complex128))
    solved = channels_to_complex(dc(guess, 0.5))[:, 0]
    assert torch.allclose(solved, truth, atol=1e-5 * float(truth.abs().max()))
    assert dc.applications == 2 + 1  # the first residual, then one per CG step


def test_calls_are_counted_exactly_and_items_start_where_told():
    sigmas = geometric_sigmas(3.0, 0.02, 12).double().tolist()
    seen = []

    def score(x, labels):  # the score of a point mass at 0: Tweedie's estimate is exactly 0
        seen.append(labels.tolist())
        return -x / torch.tensor(sigmas, dtype=x.dtype)[labels].reshape(-1, 1, 1, 1) ** 2

    x = torch.zeros(3, 2, 4, 4, dtype=torch.float64)
    levels = [0, 3, 6, 9, 11]
    out = decomposed_diffusion(score, x, sigmas, levels=levels, start_levels=[0, 6, 11],
                               generator=[torch.Generator().manual_seed(i) for i in range(3)])
    assert seen == [[0], [3], [6, 6], [9, 9], [11, 11, 11]]
    assert [decomposed_evaluations(levels, k) for k in (0, 6, 11)] == [5, 3, 1]
    assert out.abs().max() < 1e-12  # every item ends on its last estimate (0): the last step adds no noise


def test_an_item_gives_the_same_bits_alone_and_in_a_batch():
    model = small_model()
    _, y, _ = measured(model, seed=5)
    sigmas = geometric_sigmas(3.0, 0.02, 12).double().tolist()
    score = GaussianPriorScore(model.prior_var, sigmas)
    masks = model.mask.double()[None, None].expand(3, 1, -1, -1)
    ys = y[None, None].expand(3, 1, -1, -1) * torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64).reshape(3, 1, 1, 1)
    x0 = sigmas[0] * torch.randn(3, 2, SIZE, SIZE, generator=torch.Generator().manual_seed(6), dtype=torch.float64)

    def run(index):
        dc = ProximalDataConsistency(SingleCoilMRI(masks[index]), ys[index], model.noise_var, steps=4)
        return decomposed_diffusion(score, x0[index], sigmas, levels=[0, 5, 11], eta=1.0, data_consistency=dc,
                                    generator=[torch.Generator().manual_seed(10 + i) for i in index])

    together = run([0, 1, 2])
    for i in range(3):
        assert torch.equal(run([i])[0], together[i])


def test_every_preset_spreads_like_the_posterior_at_its_own_temperature():
    """The closed forms on a demo-like Gaussian model (64², power-law spectrum, 4× lines, 20 dB,
    the demo prior's σ schedule): at β = 1 every preset has about half the posterior's variance in
    both directions (the reference's noise: temperature ½); at each preset's own β it is within the
    discretisation error of one step per level (docs/uncertainty.md has the table)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("study", Path(__file__).parents[1] / "scripts" / "uncertainty_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    model, _, y = study.demo_model(20.0, torch.Generator().manual_seed(1))
    rows = dict(study.langevin_rows(model, y))
    for label, numbers in rows.items():
        ratios = (numbers["var_ratio_measured"], numbers["var_ratio_unmeasured"])
        if "noise_boost 1" in label:
            assert all(0.4 <= r <= 0.65 for r in ratios), (label, ratios)
        elif label.startswith("reference"):
            assert all(0.98 <= r <= 1.12 for r in ratios), (label, ratios)
        else:  # one step per level: within 30 % (balanced's warm start: 19 % short in unmeasured directions)
            assert all(0.78 <= r <= 1.3 for r in ratios), (label, ratios)
    from lit_sampler.sampling.presets import PRESETS

    assert PRESETS["reference"]["noise_boost"] == 1.0  # the reference's own recipe
    assert PRESETS["balanced"]["noise_boost"] == 2.0
