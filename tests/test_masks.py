"""Undersampling masks: fastMRI line-mask semantics, the 2-D variable-density mask, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lit_sampler.physics.masks import (
    EquispacedLineMask,
    RandomLineMask,
    VariableDensityMask,
    center_line_slice,
    effective_acceleration,
)
from lit_sampler.seeding import seeded_generator


def gen(*keys) -> torch.Generator:
    return seeded_generator(0, "test_masks", *keys)


# ---------------------------------------------------------------- centre block


@pytest.mark.parametrize(
    "width, fraction, start, count",
    [
        (10, 0.3, 4, 3),  # even W, odd n
        (11, 0.2, 5, 2),  # odd W, even n
        (15, 0.2, 6, 3),  # odd W, odd n
        (320, 0.08, 147, 26),  # round(25.6) = 26
        (321, 0.08, 148, 26),
        (10, 0.25, 4, 2),  # round(2.5) = 2: Python's round-half-even, as fastMRI
    ],
)
@pytest.mark.parametrize("cls", [RandomLineMask, EquispacedLineMask])
def test_center_block_position_and_count(cls, width, fraction, start, count):
    mask_fn = cls([fraction], [4])
    for seed in range(5):
        draw = mask_fn.sample((7, width), gen("centre", seed))
        assert draw.mask.shape == (1, width) and draw.mask.dtype == torch.float32
        assert draw.num_low_frequencies == count
        assert center_line_slice(width, count) == slice(start, start + count)
        assert start <= width // 2 < start + count  # the DC line is inside
        assert torch.all(draw.mask[0, start : start + count] == 1)
        assert set(draw.mask.unique().tolist()) <= {0.0, 1.0}


# ---------------------------------------------------------------- random lines


@pytest.mark.parametrize("width, fraction, acceleration", [(320, 0.08, 4), (369, 0.04, 8)])
def test_random_mask_expected_line_count(width, fraction, acceleration):
    mask_fn = RandomLineMask([fraction], [acceleration])
    counts = torch.tensor(
        [float(mask_fn((1, width), gen("count", i)).sum()) for i in range(400)], dtype=torch.float64
    )
    # E[#lines] = W / R exactly; the sd of the mean of 400 draws is < 0.4 lines here.
    assert abs(counts.mean().item() - width / acceleration) < 1.5
    assert counts.std().item() > 1  # really random


def test_random_mask_determinism_and_seed_dependence():
    mask_fn = RandomLineMask([0.08], [4])
    a = mask_fn((320, 320), gen("det", 1))
    b = mask_fn((320, 320), gen("det", 1))
    c = mask_fn((320, 320), gen("det", 2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_pair_choice_is_paired_and_uniform():
    mask_fn = RandomLineMask([0.08, 0.04], [4, 8])
    draws = [mask_fn.sample((1, 320), gen("choice", i)) for i in range(60)]
    pairs = {(d.acceleration, d.num_low_frequencies) for d in draws}
    assert pairs == {(4.0, 26), (8.0, 13)}  # paired by index, never crossed
    n4 = sum(d.acceleration == 4 for d in draws)
    assert 15 <= n4 <= 45


def test_acceleration_one_is_full_sampling():
    for cls in (RandomLineMask, EquispacedLineMask):
        mask = cls([0.1], [1])((5, 33), gen("full"))
        assert torch.all(mask == 1)


# ---------------------------------------------------------------- equispaced lines


def fastmri_equispaced_fraction(width: int, fraction: float, acceleration: float, offset: int) -> np.ndarray:
    """Transcription of fastMRI's EquispacedMaskFractionFunc for a given offset (test oracle)."""
    num_low = round(width * fraction)
    mask = np.zeros(width)
    pad = (width - num_low + 1) // 2
    mask[pad : pad + num_low] = 1
    adjusted = acceleration * (num_low - width) / (num_low * acceleration - width)
    samples = np.around(np.arange(offset, width - 1, adjusted)).astype(np.uint)
    mask[samples] = 1
    return mask


@pytest.mark.parametrize("width, fraction, acceleration", [(320, 0.08, 4), (368, 0.04, 8), (321, 0.08, 4)])
def test_equispaced_matches_fastmri_structure(width, fraction, acceleration):
    num_low = round(width * fraction)
    spacing = acceleration * (width - num_low) / (width - num_low * acceleration)
    candidates = {
        offset: fastmri_equispaced_fraction(width, fraction, acceleration, offset)
        for offset in range(round(spacing))
    }
    mask_fn = EquispacedLineMask([fraction], [acceleration])
    seen = set()
    for i in range(60):
        mask = mask_fn((1, width), gen("equi", i))[0].numpy()
        matches = [o for o, m in candidates.items() if np.array_equal(m, mask)]
        assert len(matches) >= 1
        seen.update(matches)
        assert abs(mask.sum() - width / acceleration) <= 3  # ≈ W / R by construction
    assert seen == set(candidates)  # every offset in [0, round(a)) occurs


def test_equispaced_exact_spacing_variant():
    mask_fn = EquispacedLineMask([0.08], [4], adjust_for_center=False)
    for i in range(10):
        mask = mask_fn((1, 320), gen("exact", i))[0]
        outer = torch.ones(320, dtype=torch.bool)
        outer[center_line_slice(320, 26)] = False
        lines = torch.nonzero(mask.bool() & outer).flatten()
        assert torch.all(lines % 4 == lines[0] % 4)  # one residue class mod R outside the centre
        assert effective_acceleration(mask[None], (1, 320)) < 4


def test_equispaced_center_exceeding_budget_adds_no_lines():
    mask = EquispacedLineMask([0.5], [4])((1, 40), gen("budget"))
    assert mask.sum() == 20 and torch.all(mask[0, 10:30] == 1)


# ---------------------------------------------------------------- effective acceleration


def test_effective_acceleration():
    lines = torch.zeros(1, 12)
    lines[0, [0, 5, 6]] = 1
    assert effective_acceleration(lines, (8, 12)) == pytest.approx(4.0)
    grid = torch.zeros(4, 6)
    grid[0, :3] = 1
    assert effective_acceleration(grid, (4, 6)) == pytest.approx(8.0)
    with pytest.raises(ValueError, match=re.escape("mask samples no k-space point")):
        effective_acceleration(torch.zeros(1, 12), (8, 12))
    with pytest.raises(
        ValueError, match=re.escape("mask of shape (1, 12) does not broadcast to k-space shape (8, 10)")
    ):
        effective_acceleration(lines, (8, 10))


# ---------------------------------------------------------------- 2-D variable density


@pytest.mark.parametrize("shape, acceleration, calib", [((96, 80), 4.0, 12), ((97, 101), 8.0, 16)])
def test_variable_density_acceleration_and_calibration(shape, acceleration, calib):
    draw = VariableDensityMask([acceleration], calib_size=calib).sample(shape, gen("vd", shape))
    mask = draw.mask
    assert mask.shape == shape and mask.dtype == torch.float32
    assert effective_acceleration(mask, shape) == pytest.approx(acceleration, rel=0.01)
    h0, w0 = (shape[0] - calib + 1) // 2, (shape[1] - calib + 1) // 2
    assert torch.all(mask[h0 : h0 + calib, w0 : w0 + calib] == 1)
    assert mask[shape[0] // 2, shape[1] // 2] == 1
    # Variable density: the sampled fraction falls from the inner ring to the outer ring.
    ky = (torch.arange(shape[0]) - shape[0] // 2)[:, None] / (shape[0] / 2)
    kx = (torch.arange(shape[1]) - shape[1] // 2)[None, :] / (shape[1] / 2)
    rho = (ky**2 + kx**2).sqrt()
    inner = mask[(rho > 0.3) & (rho < 0.5)].mean()
    outer = mask[rho > 0.8].mean()
    assert inner > 1.5 * outer > 0


def test_variable_density_hard_core_distance():
    # Outside the calibration square no two samples are closer than the radius at the centre.
    mask_fn = VariableDensityMask([6.0], calib_size=0, radius_growth=0.0)  # uniform Poisson disc
    mask = mask_fn((64, 64), gen("hardcore"))
    points = torch.nonzero(mask).double()
    distance = torch.cdist(points, points) + torch.eye(len(points)) * 1e9
    assert distance.min() >= 2.0  # r ≈ 2.1–2.3 for R = 6: neighbours at distance 1 or √2 excluded
    assert effective_acceleration(mask, (64, 64)) == pytest.approx(6.0, rel=0.01)


def test_variable_density_384_target():
    mask = VariableDensityMask([10.0])((384, 384), gen("vd384"))
    assert effective_acceleration(mask, (384, 384)) == pytest.approx(10.0, rel=0.01)


def test_variable_density_determinism_and_choice():
    mask_fn = VariableDensityMask([4.0, 8.0], calib_size=8)
    a = mask_fn.sample((48, 48), gen("vdd", 1))
    b = mask_fn.sample((48, 48), gen("vdd", 1))
    assert torch.equal(a.mask, b.mask) and a.acceleration == b.acceleration
    draws = [mask_fn.sample((48, 48), gen("vdd", i)) for i in range(2, 14)]
    assert {d.acceleration for d in draws} == {4.0, 8.0}
    assert len({tuple(d.mask.flatten().tolist()) for d in draws}) == len(draws)
    assert torch.all(VariableDensityMask([1.0], calib_size=4)((9, 7), gen("one")) == 1)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RandomLineMask([0.08, 0.04], [4]),
         "center_fractions and accelerations must have the same length, got 2 and 1"),
        (lambda: EquispacedLineMask([1.5], [4]), "center_fractions must lie in (0, 1), got 1.5"),
        (lambda: RandomLineMask([0.0], [4]), "center_fractions must lie in (0, 1), got 0"),
        (lambda: RandomLineMask([0.08], [0.5]),
         "accelerations must be >= 1 (1 means fully sampled), got 0.5"),
        (lambda: RandomLineMask([], []), "accelerations must not be empty"),
        (lambda: EquispacedLineMask([0.08], [2.5], adjust_for_center=False),
         "accelerations must be integers when adjust_for_center=False, got 2.5"),
        (lambda: VariableDensityMask([0.9]),
         "accelerations must be >= 1 (1 means fully sampled), got 0.9"),
        (lambda: VariableDensityMask([4.0], calib_size=-2),
         "calib_size must be a non-negative integer, got -2"),
        (lambda: VariableDensityMask([4.0], radius_growth=-1.0), "radius_growth must be >= 0, got -1"),
    ],
)
def test_invalid_arguments(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_invalid_call_arguments():
    with pytest.raises(ValueError, match=re.escape("mask shape must be (H, W) with positive sizes, got (2, 3, 4)")):
        RandomLineMask([0.08], [4])((2, 3, 4), gen("e"))
    with pytest.raises(ValueError, match=re.escape("calib_size 16 exceeds the k-space shape (8, 40)")):
        VariableDensityMask([4.0])((8, 40), gen("e"))
    with pytest.raises(
        ValueError,
        match=re.escape("calibration square 16x16 alone exceeds the 100 points allowed by acceleration 16 on shape (40, 40)"),
    ):
        VariableDensityMask([16.0])((40, 40), gen("e"))


def test_mask_generator_seeds_by_seed_and_name():
    from lit_sampler.physics.masks import mask_generator

    mask = RandomLineMask([0.08], [4])
    first = mask((32, 64), mask_generator(0, "file_a.h5"))
    assert torch.equal(first, mask((32, 64), mask_generator(0, "file_a.h5")))
    assert not torch.equal(first, mask((32, 64), mask_generator(1, "file_a.h5")))
    assert not torch.equal(first, mask((32, 64), mask_generator(0, "file_b.h5")))
