"""Cheaper schedules inside annealed Langevin dynamics: level subsets with rescaled steps, per-item
warm starts, steps schedules, exact NFE counts and the presets (issue: quality per network call).

The Gaussian checks use the closed forms of tests/test_sampling.py: on a Gaussian target every
chain is a linear recursion with a known stationary law.
"""

import math

import pytest
import torch

from lit_sampler.sampling.langevin import annealed_langevin, chain_plan, network_evaluations
from lit_sampler.sampling.presets import PLAIN_DEFAULTS, PRESETS, per_decade_levels, resolve_schedule, steps_per_level
from lit_sampler.sampling.schedules import chain_variance, geometric_sigmas, level_step_sizes, log_spaced_levels
from lit_sampler.sampling.warm_start import auto_start_levels, zero_filled_error

from test_sampling import gaussian_score, stationary_variance


def test_full_level_list_is_the_plain_chain_bit_for_bit():
    sigmas = geometric_sigmas(5.0, 0.1, 8)
    score = lambda x, labels: -x / (1 + sigmas[labels].reshape(-1, 1, 1, 1) ** 2)  # noqa: E731
    x0 = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    kwargs = dict(step_size=1e-3, steps_each=2, noise_boost=2.0)
    plain = annealed_langevin(score, x0, sigmas, sigma_offset=2, generator=torch.Generator().manual_seed(1), **kwargs)
    listed = annealed_langevin(score, x0, sigmas, levels=list(range(2, 8)), generator=torch.Generator().manual_seed(1), **kwargs)
    assert torch.equal(plain, listed)


def test_rescaled_step_formula():
    sigmas = geometric_sigmas(10.0, 0.01, 200).tolist()
    eps = 0.3 * sigmas[-1] ** 2  # r = α/σ² = 0.3 at every level
    full = level_step_sizes(sigmas, list(range(200)), eps)
    assert full == pytest.approx([eps * (s / sigmas[-1]) ** 2 for s in sigmas], rel=1e-12)
    kept = [0, 10, 50, 199]
    alphas = level_step_sizes(sigmas, kept, eps)
    for j, end, alpha in zip(kept, kept[1:] + [200], alphas):
        assert alpha == pytest.approx(sigmas[j] ** 2 * (1 - 0.7 ** (end - j)), rel=1e-12)
        assert alpha <= sigmas[j] ** 2 * (1 + 1e-12)  # never past the stability limit
    # small steps: a level standing for m levels takes m of its own steps at once
    tiny = 1e-4 * sigmas[-1] ** 2
    assert level_step_sizes(sigmas, [0, 4], tiny)[0] == pytest.approx(4 * tiny * (sigmas[0] / sigmas[-1]) ** 2, rel=1e-3)
    # where even the full chain cannot contract (α/σ² ≥ 2) the step is left alone
    big = 3 * sigmas[-1] ** 2
    assert level_step_sizes(sigmas, [0, 4], big)[0] == pytest.approx(big * (sigmas[0] / sigmas[-1]) ** 2)


def test_chain_variance_check_subsets_stay_stable_and_end_near_the_full_chain():
    sigmas = geometric_sigmas(50.0, 0.01, 200).tolist()
    eps = sigmas[-1] ** 2
    every = list(range(200))
    reference = chain_variance(sigmas, every, level_step_sizes(sigmas, every, eps), 1)
    for count in (100, 30, 10):
        kept = log_spaced_levels(sigmas, count)
        check = chain_variance(sigmas, kept, level_step_sizes(sigmas, kept, eps), 1)
        assert check["contraction"] < 1
        assert check["ratio"] == pytest.approx(reference["ratio"], rel=0.05)
    # the naive rule (sum of skipped step sizes) is unstable here: |1 − α/σ²| > 1
    kept = log_spaced_levels(sigmas, 10)
    naive = [sum(eps * (s / sigmas[-1]) ** 2 for s in sigmas[j:e]) for j, e in zip(kept, kept[1:] + [200])]
    assert chain_variance(sigmas, kept, naive, 1)["contraction"] > 1


def test_log_spaced_levels():
    sigmas = geometric_sigmas(10.0, 0.1, 101)
    assert log_spaced_levels(sigmas, 5) == [0, 25, 50, 75, 100]
    assert log_spaced_levels(sigmas, 3, start=40) == [40, 70, 100]
    assert log_spaced_levels(sigmas, 1) == [100]
    uneven = [8.0, 4.0, 3.9, 3.8, 1.0, 0.5]  # non-geometric: nearest level in log σ
    assert log_spaced_levels(uneven, 3) == [0, 3, 5]


def test_level_subset_reproduces_the_closed_form_gaussian_posterior():
    """Posterior of a Gaussian prior and k-space data, as in test_sampling, run on 6 of 24 levels."""
    from lit_sampler.physics.fft import complex_to_channels, fft2c, ifft2c
    from lit_sampler.physics.operators import SingleCoilMRI
    from lit_sampler.sampling.langevin import GaussianDataConsistency

    h, w, m, s2, nu = 4, 6, 0.3, 1.0, 0.5
    g = torch.Generator().manual_seed(3)
    mask = torch.zeros(1, 1, 1, w, dtype=torch.float64)
    mask[..., [1, 3, 4]] = 1
    operator = SingleCoilMRI(mask)
    x_true = torch.view_as_complex(m + torch.randn(1, h, w, 2, generator=g, dtype=torch.float64))
    y = operator.forward(x_true)
    chains = 3000
    sigmas = geometric_sigmas(2.0, 0.3, 24).double()
    step_size = 0.04
    kept = log_spaced_levels(sigmas, 6)
    steps = [1] * (len(kept) - 1) + [300]  # then enough steps at the last level to reach stationarity
    dc = GaussianDataConsistency(operator, y.expand(chains, -1, -1, -1), noise_var=nu)
    prior = gaussian_score(m, s2)
    x0 = 2.0 * torch.randn(chains, 2, h, w, generator=g, dtype=torch.float64)
    x = annealed_langevin(lambda x, labels: prior(x, labels, sigmas), x0, sigmas, step_size=step_size,
                          steps_each=steps, levels=kept, noise_boost=2.0, data_consistency=dc, generator=g)
    sigma_l2 = sigmas[-1].item() ** 2
    vp, vn = s2 + sigma_l2, nu / 2 + sigma_l2
    sampled = mask.expand(1, 1, h, w)[0, 0]
    precision = 1 / vp + sampled / vn
    post_mean_k = (fft2c(torch.full((h, w), m * (1 + 1j), dtype=torch.complex128)) / vp + sampled * y[0, 0] / vn) / precision
    post_mean = complex_to_channels(ifft2c(post_mean_k)[None, None])[0]
    post_var = stationary_variance(precision, step_size, 2.0).mean().item()
    assert x.var(dim=0).mean().item() == pytest.approx(post_var, rel=0.03)
    assert (x.mean(dim=0) - post_mean).abs().max().item() < 5 * math.sqrt(post_var / chains)


def test_warm_start_at_level_zero_matches_the_cold_start_in_distribution():
    """An item that starts at level 0 from estimate + σ_0 z, with σ_0 ≫ the target's spread, forgets
    its start: the same law as cold starts."""
    mean, var = 0.5, 1.0
    sigmas = geometric_sigmas(20.0, 0.3, 12).double()
    score = gaussian_score(mean, var)
    n = 3000
    g = torch.Generator().manual_seed(5)
    estimate = 3.0  # far from the mean, as a bad zero-filled image would be
    warm0 = estimate + sigmas[0].item() * torch.randn(n, 2, 2, 2, generator=g, dtype=torch.float64)
    cold0 = sigmas[0].item() * torch.randn(n, 2, 2, 2, generator=g, dtype=torch.float64)
    run = lambda x0, starts: annealed_langevin(lambda x, l: score(x, l, sigmas), x0, sigmas, step_size=0.05,  # noqa: E731
                                               steps_each=40, start_levels=starts, noise_boost=2.0, generator=g)
    warm, cold = run(warm0, [0] * n), run(cold0, None)
    tolerance = 5 * math.sqrt(2 * var / warm.numel())
    assert abs(warm.mean().item() - cold.mean().item()) < tolerance
    assert warm.var().item() == pytest.approx(cold.var().item(), rel=0.03)


def test_per_item_start_levels_are_batch_invariant_and_counted():
    sigmas = geometric_sigmas(5.0, 0.1, 10)
    calls = []

    def score(x, labels):
        calls.append((labels.tolist(), x.shape[0]))
        return -x

    x0 = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(3)]  # noqa: E731
    starts = [0, 4, 7]
    out = annealed_langevin(score, x0, sigmas, step_size=1e-3, steps_each=2, start_levels=starts, generator=gens())
    for b, start in enumerate(starts):
        alone = annealed_langevin(lambda x, l: -x, x0[b:b + 1], sigmas, step_size=1e-3, steps_each=2,
                                  sigma_offset=start, generator=gens()[b:b + 1])
        assert torch.equal(out[b:b + 1], alone)
    # the network saw only the items that had started: exact NFE per item
    seen = sum(size for _, size in calls)
    plan = chain_plan(10, sigmas.tolist(), 1e-3, 2)
    assert seen == sum(network_evaluations(plan, k) for k in starts) == 2 * (10 + 6 + 3)


def test_steps_schedule_pieces():
    assert steps_per_level({0: 3, 1801: 4}, [1799, 1800, 1801, 2310]) == [3, 3, 4, 4]
    assert steps_per_level(2, [5, 6]) == [2, 2]
    with pytest.raises(ValueError, match="must start at or before"):
        steps_per_level({10: 3}, [5, 6])
    sigmas = geometric_sigmas(5.0, 0.1, 6)
    calls = []

    def score(x, labels):
        calls.append(int(labels[0]))
        return torch.zeros_like(x)

    annealed_langevin(score, torch.zeros(1, 2, 2, 2), sigmas, step_size=1e-3, steps_each=[1, 2, 3], levels=[1, 3, 5])
    assert calls == [1, 3, 3, 5, 5, 5]


@pytest.mark.parametrize("levels,sigma_end", [(200, 0.01), (2311, 0.0066)])
def test_presets_resolve_relative_to_the_schedule(levels, sigma_end):
    sigmas = geometric_sigmas(50.0 if levels == 200 else 232.0, sigma_end, levels).tolist()
    reference = resolve_schedule(sigmas, preset="reference", sigma_offset=5)  # (reference keeps the configured k)
    assert reference.levels == list(range(5, levels)) and set(reference.steps) == {3}
    assert reference.init == "reference" and not reference.final_denoise and not reference.auto_start
    assert reference.evaluations(5) == 3 * (levels - 5)
    decades = math.log10(sigmas[0] / sigmas[-1])
    for name in ("balanced", "fast", "quick"):
        table = PRESETS[name]
        schedule = resolve_schedule(sigmas, preset=name)
        langevin = table["sampler"] == "langevin"
        assert schedule.auto_start and schedule.init == "zero_filled" and schedule.final_denoise is langevin
        assert schedule.start_factor == table["start_factor"]
        assert {schedule.sources[knob] for knob in table} == {f"preset {name}"}
        if table["levels"] is None:
            assert schedule.levels == list(range(levels))
        else:
            assert schedule.levels == per_decade_levels(sigmas, table["levels"].count)
            assert len(schedule.levels) == round(decades * table["levels"].count) + 1
        assert schedule.levels[0] == 0 and schedule.levels[-1] == levels - 1
        assert set(schedule.steps) == {1}
        # last level (+ the Tweedie step of the Langevin chain)
        assert schedule.evaluations(schedule.levels[-1]) == (2 if langevin else 1)
    quick = resolve_schedule(sigmas, preset="quick")
    fast = resolve_schedule(sigmas, preset="fast")
    assert quick.evaluations(levels // 2) < fast.evaluations(levels // 2)
    balanced = resolve_schedule(sigmas, preset="balanced")
    assert fast.evaluations(levels // 2) < balanced.evaluations(levels // 2)


# per knob a value that differs from every preset's, and what the schedule then shows
EXPLICIT = {
    "steps_each": (2, lambda s: set(s.steps) == {2}),
    "sigma_offset": (5, lambda s: not s.auto_start and s.levels[0] == 5),
    "levels": (4, lambda s: len(s.levels) == 4),
    "init": ("cg_sense", lambda s: s.init == "cg_sense"),
    "final_denoise": (None, None),  # (the opposite of the preset's: filled in below)
    "start_factor": (4.0, lambda s: s.start_factor == 4.0 and s.auto_start),
    "noise_boost": (3.0, lambda s: s.noise_boost == 3.0),
    "sampler": ("decomposed", lambda s: s.sampler == "decomposed" and set(s.steps) == {1} and not s.final_denoise),
    "eta": (0.5, lambda s: s.eta == 0.5),
    "dc_steps": (2, lambda s: s.dc_steps == 2),
}
PRESET_KNOBS = [(preset, knob) for preset, table in PRESETS.items() for knob in table]


@pytest.mark.parametrize("preset, knob", PRESET_KNOBS, ids=[f"{p}-{k}" for p, k in PRESET_KNOBS])
def test_an_explicit_knob_wins_over_the_preset(preset, knob):
    """The one rule, knob by knob: a knob given next to a preset is what runs and is reported as
    the config's; the preset fills in every other knob it sets."""
    sigmas = geometric_sigmas(50.0, 0.01, 40).tolist()
    value, shows = EXPLICIT[knob]
    if knob == "final_denoise":
        value = not PRESETS[preset]["final_denoise"]
        shows = lambda s: s.final_denoise is value  # noqa: E731
    schedule = resolve_schedule(sigmas, preset=preset, **{knob: value})
    assert schedule.knobs[knob] == value and schedule.sources[knob] == "config"
    assert shows(schedule), schedule
    others = {k: s for k, s in schedule.sources.items() if k != knob}
    assert all(s == f"preset {preset}" for k, s in others.items() if k in PRESETS[preset])
    assert all(s == "default" for k, s in others.items() if k not in PRESETS[preset])
    assert schedule.describe()["knob_sources"] == schedule.sources
    assert f"from the config: {knob}=" in schedule.setup_line(len(sigmas))


def test_plain_defaults_without_a_preset_are_unchanged():
    sigmas = geometric_sigmas(5.0, 0.1, 6).tolist()
    schedule = resolve_schedule(sigmas)
    assert schedule.knobs == PLAIN_DEFAULTS == {
        "sampler": "langevin", "steps_each": 3, "sigma_offset": 0, "levels": None, "init": "reference",
        "final_denoise": False, "start_factor": 2.0, "noise_boost": 1.0, "eta": math.inf, "dc_steps": 5}
    assert schedule.levels == list(range(6)) and set(schedule.steps) == {3} and "knob_sources" not in schedule.describe()
    assert schedule.setup_line(6) == ("sampler: Langevin, 6 of 6 levels, 18 network calls per item; defaults: "
                                      "sampler=langevin, steps_each=3, sigma_offset=0, levels=all, init=reference, "
                                      "final_denoise=false, noise_boost=1")


def test_impossible_combinations_name_the_knobs_and_the_preset():
    sigmas = geometric_sigmas(5.0, 0.1, 6).tolist()
    cases = [
        ("reference", {"sigma_offset": "auto"},
         "sigma_offset: auto (config) picks a warm-start level; it needs init 'zero_filled' or 'cg_sense', got init "
         "'reference' (preset reference); give init: zero_filled (or cg_sense), or a level index as sigma_offset"),
        ("balanced", {"init": "reference"},
         "sigma_offset: auto (preset balanced) picks a warm-start level; it needs init 'zero_filled' or 'cg_sense', got init "
         "'reference' (config); give init: zero_filled (or cg_sense), or a level index as sigma_offset"),
        ("reference", {"start_factor": 4.0},
         "start_factor: 4 has no effect: it places the start of sigma_offset: auto, but the chain starts at the fixed "
         "level sigma_offset: 0 (default); remove start_factor or set sigma_offset: auto"),
        ("balanced", {"sigma_offset": 500},
         "sigma_offset must lie in [0, 5] for 6 noise levels, got 500 (or be 'auto' with a warm-start init)"),
        ("balanced", {"steps_each": 0}, "steps_each must be at least 1, got 0"),
        ("balanced", {"levels": 0}, "need a positive number of levels, got 0"),
        ("balanced", {"start_factor": -1.0}, "start_factor must be positive, got -1.0"),
        ("balanced", {"eta": 0.5},
         "eta: 0.5 applies to sampler: decomposed only, but this run uses sampler: langevin (preset balanced); remove eta "
         "or set sampler: decomposed"),
        (None, {"sampler": "decomposed", "steps_each": 2},
         "steps_each: 2 applies to sampler: langevin only, but this run uses sampler: decomposed; remove steps_each "
         "or set sampler: langevin"),
        (None, {"sampler": "decomposed", "eta": -1.0}, "eta must be >= 0 (0 deterministic, 1 ancestral), got -1.0"),
    ]
    for preset, given, message in cases:
        with pytest.raises(ValueError) as caught:
            resolve_schedule(sigmas, preset=preset, **given)
        assert str(caught.value) == message


def test_schedule_errors():
    sigmas = geometric_sigmas(5.0, 0.1, 6).tolist()
    base = dict(preset=None, steps_each=1, levels=None, final_denoise=False, start_factor=None)
    with pytest.raises(ValueError, match="needs init 'zero_filled' or 'cg_sense'"):
        resolve_schedule(sigmas, sigma_offset="auto", init="noise", **base)
    with pytest.raises(ValueError, match=r"levels must be indices in \[2, 5\]"):
        resolve_schedule(sigmas, sigma_offset=2, init="noise", **{**base, "levels": [1, 3]})
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_schedule(sigmas, sigma_offset=0, init="noise", **{**base, "preset": "turbo"})
    # one check of a level run, whichever entry point meets it first
    bad = r"levels must be indices in \[2, 5\] \(sigma_offset to L-1\), in ascending order, got \[1, 3\]"
    with pytest.raises(ValueError, match=bad):
        chain_plan(6, sigmas, 1e-3, 1, sigma_offset=2, levels=[1, 3])
    with pytest.raises(ValueError, match=r"levels must be indices in \[0, 5\], in ascending order, got \[3, 1\]"):
        level_step_sizes(sigmas, [3, 1], 1e-3)
    with pytest.raises(ValueError, match="need a positive number of levels, got 0"):
        resolve_schedule(sigmas, sigma_offset=0, init="noise", **{**base, "levels": 0})
    with pytest.raises(ValueError, match="steps_each must be at least 1, got 0"):
        resolve_schedule(sigmas, sigma_offset=0, init="noise", **{**base, "steps_each": {0: 0}})


def test_zero_filled_error_predicts_the_true_error_and_auto_start_picks_levels():
    """On a smooth image with power-law k-space, the predicted RMS error of the zero-filled image is
    close to the true one, and the chosen level is the last one above factor × error."""
    from lit_sampler.data.phantoms import coil_maps
    from lit_sampler.physics.fft import fft2c, ifft2c
    from lit_sampler.physics.masks import RandomLineMask, mask_generator

    size = 48
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    image = ((xx**2 / 0.6 + yy**2 / 0.8) < 1).double() * (1 + 0.3 * torch.cos(3 * xx)) + 0j
    maps = coil_maps(size, size, 4).to(torch.complex128)
    mask = RandomLineMask([0.08], [4])((size, size), mask_generator(0, "x"))
    kspace = fft2c(maps * image) * mask
    error_true = (ifft2c(kspace) * maps.conj()).sum(0) - image
    rms_true = math.sqrt(error_true.abs().square().mean().item() / 2)
    predicted = zero_filled_error(kspace[None], mask[None, None].expand(1, 1, 1, size), torch.zeros(1))
    assert predicted.item() == pytest.approx(rms_true, rel=0.5)
    sigmas = geometric_sigmas(10.0, 0.01, 50).tolist()
    (start,) = auto_start_levels(sigmas, predicted, 2.0)
    assert sigmas[start] >= 2 * predicted.item() > sigmas[start + 1]
