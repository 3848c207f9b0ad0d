"""Measurement noise at a prescribed SNR, σ schedules and Song & Ermon's step-size techniques."""

import math

import pytest
import torch

from lit_sampler.physics.noise import add_measurement_noise, noise_variance, snr_label
from lit_sampler.sampling.schedules import (
    geometric_sigmas,
    max_pairwise_distance,
    sigma_ratio_for_dimension,
    technique4_step_size,
)
from lit_sampler.seeding import seeded_generator, stable_seed


@pytest.mark.parametrize("snr_db", [30.0, 10.0, 0.0, -5.0])
def test_measured_snr_matches_request_on_sampled_points(snr_db):
    g = torch.Generator().manual_seed(0)
    kspace = torch.randn(8, 128, 96, dtype=torch.complex64, generator=g) * torch.linspace(0.1, 3, 96)
    mask = (torch.rand(1, 96, generator=g) < 0.3).float()
    noisy, nu = add_measurement_noise(kspace, mask, snr_db, generator=g)
    sampled = mask.bool().expand_as(kspace)
    clean = kspace[sampled]
    noise = noisy[sampled] - clean
    measured = 10 * math.log10(clean.abs().square().mean().item() / noise.abs().square().mean().item())
    assert abs(measured - snr_db) < 0.2
    assert nu == pytest.approx(clean.abs().square().double().mean().item() * 10 ** (-snr_db / 10), rel=1e-6)
    # circular: half the variance in each part; nothing off the sampled points
    assert noise.real.var().item() == pytest.approx(nu / 2, rel=0.05)
    assert noise.imag.var().item() == pytest.approx(nu / 2, rel=0.05)
    assert torch.count_nonzero(noisy[~sampled]) == 0


@pytest.mark.parametrize("snr_db", [None, math.inf])
def test_noiseless_levels_only_mask(snr_db):
    kspace = torch.ones(2, 4, 4, dtype=torch.complex64)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    noisy, nu = add_measurement_noise(kspace, mask, snr_db)
    assert nu == 0.0
    torch.testing.assert_close(noisy, kspace * mask)
    assert snr_label(snr_db) == "snr_inf"


def test_noise_is_reproducible_from_item_seed():
    kspace = torch.ones(2, 4, 4, dtype=torch.complex64)
    mask = torch.ones(1, 4)
    a, _ = add_measurement_noise(kspace, mask, 10.0, seeded_generator(0, "f.h5", 3, "snr_10dB"))
    b, _ = add_measurement_noise(kspace, mask, 10.0, seeded_generator(0, "f.h5", 3, "snr_10dB"))
    c, _ = add_measurement_noise(kspace, mask, 10.0, seeded_generator(0, "f.h5", 4, "snr_10dB"))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_stable_seed_is_fixed_across_processes():
    # a literal: Python's salted hash() would change this between runs
    assert stable_seed(7, "file.h5", 3, "snr_20dB", 0) == 0x746B8378FE4D6522
    assert stable_seed(0, "a", 1) != stable_seed(0, "a", 2)
    # torch's CPU generator keeps only the low 32 bits: the run seed must change those too
    assert stable_seed(0, "x") & 0xFFFFFFFF != stable_seed(1, "x") & 0xFFFFFFFF
    first = torch.rand(3, generator=seeded_generator(0, "x"))
    assert not torch.equal(first, torch.rand(3, generator=seeded_generator(1, "x")))


def test_snr_labels():
    assert [snr_label(s) for s in (20, 7.5, -3.0, 0)] == ["snr_20dB", "snr_7.5dB", "snr_-3dB", "snr_0dB"]


def test_noise_variance_needs_sampled_points():
    with pytest.raises(ValueError, match="the mask samples no k-space point; the SNR is undefined"):
        noise_variance(torch.ones(2, 2, dtype=torch.complex64), torch.zeros(1, 2), 10.0)


def test_geometric_sigmas():
    sigmas = geometric_sigmas(232.0, 0.0066, 2311)
    assert sigmas.shape == (2311,) and sigmas.dtype == torch.float32
    assert sigmas[0].item() == pytest.approx(232.0) and sigmas[-1].item() == pytest.approx(0.0066)
    ratios = sigmas[1:].double() / sigmas[:-1].double()
    assert torch.all(ratios < 1)
    # the ratio of Jalal et al.'s brain schedule (REFERENCE.md §5: 0.995479)
    assert ratios.mean().item() == pytest.approx(0.995479, abs=2e-6)
    with pytest.raises(ValueError, match="need sigma_begin > sigma_end > 0, got 0.1 and 1.0"):
        geometric_sigmas(0.1, 1.0, 10)


def test_technique2_sigma_ratio():
    # Φ(√(2D)(γ−1)+3γ) − Φ(√(2D)(γ−1)−3γ) = 0.5; the reference's grid search gives 0.99610/0.99536/0.99421
    for dims, expected in [(2 * 384 * 384, 0.99610), (2 * 320 * 320, 0.99536), (2 * 256 * 256, 0.99421)]:
        assert sigma_ratio_for_dimension(dims) == pytest.approx(expected, abs=1e-4)


def test_technique4_step_size_does_not_clip():
    # Jalal's brain schedule: the optimum ≈3.9e-7 lies above the reference's 1e-7 grid limit
    eps = technique4_step_size(0.0066, 1 / 0.995479, steps_each=3)
    assert eps == pytest.approx(3.9e-7, rel=0.01)
    # Aali's knee-basis model (REFERENCE.md §1.1): ≈5.38e-9
    assert technique4_step_size(0.0007, 1 / 0.9944, steps_each=4) == pytest.approx(5.38e-9, rel=0.01)


def test_technique1_max_pairwise_distance():
    points = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    assert max_pairwise_distance(points) == pytest.approx(5.0)
