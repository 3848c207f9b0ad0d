#!/usr/bin/env python
"""Why posterior samples are too alike: every preset's spread on a Gaussian prior, in closed form,
against the exact posterior (:mod:`lit_sampler.sampling.gaussian_chain`).

The model mimics the anatomy demo: 64×64 images whose k-space coefficients have variance
∝ (1 + |k|)^(−3) (natural images' power law), normalised like the demo's images (99th percentile
of the magnitude ≈ 1), the demo's mask (4× random lines, 8 % centre), SNR 20 and 5 dB, and the
demo prior's σ schedule (200 levels from 94.2 to 0.01, ε = σ_L²). For every preset, Langevin
temperature (noise_boost 1 and 2), cold or warm start and with or without the final Tweedie step,
it prints the chain's variance over the posterior's, per direction (measured and unmeasured
k-space), and the squared distance of the chain's mean from the posterior mean (relative to the
posterior's total variance); the few-call sampler per η and number of levels. Markdown tables
(docs/uncertainty.md).

    python scripts/uncertainty_study.py
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

from lit_sampler.physics.masks import RandomLineMask
from lit_sampler.sampling.gaussian_chain import (
    GaussianModel, decomposed_moments, langevin_moments, power_law_variance, spread_summary,
)
from lit_sampler.sampling.langevin import chain_plan
from lit_sampler.sampling.presets import PerDecade, resolve_schedule
from lit_sampler.sampling.schedules import geometric_sigmas, log_spaced_levels
from lit_sampler.sampling.warm_start import auto_start_levels, zero_filled_error

SIZE = 64
SIGMAS = geometric_sigmas(94.23, 0.01, 200).double().tolist()
STEP_SIZE = SIGMAS[-1] ** 2


def demo_model(snr_db: float, generator: torch.Generator, exponent: float = 3.0) -> tuple[GaussianModel, torch.Tensor, torch.Tensor]:
    mask = torch.broadcast_to(RandomLineMask([0.08], [4])((SIZE, SIZE), torch.Generator().manual_seed(0)).bool(), (SIZE, SIZE))
    prior_var = power_law_variance(SIZE, SIZE, exponent, total=0.11)  # |x| ~ Rayleigh: 99th percentile ≈ 1
    clean = GaussianModel(prior_var, mask, 0.0).sample(generator)[0]
    noise_var = float(clean[mask].abs().square().mean()) * 10 ** (-snr_db / 10)  # the SNR of lit_sampler.physics.noise
    model = GaussianModel(prior_var, mask, noise_var)
    truth, y = model.sample(generator)
    return model, truth, y


# the Langevin schedules: the presets, and 0.3.0's `fast` (16 levels per decade from 2 × the error)
LANGEVIN = {"reference": {"preset": "reference"}, "balanced": {"preset": "balanced"},
            "Langevin 16/decade (0.3.0's fast)": {"preset": "balanced", "levels": PerDecade(16.0), "start_factor": 2.0}}


def langevin_rows(model: GaussianModel, y: torch.Tensor) -> list[tuple[str, dict]]:
    post_mean, post_var = model.posterior(y)
    error = predicted_error(model, y)
    rows = []
    for preset, knobs in LANGEVIN.items():
        schedule = resolve_schedule(SIGMAS, **knobs)
        plan = chain_plan(len(SIGMAS), SIGMAS, STEP_SIZE, schedule.steps, 0, schedule.levels)
        starts = ["cold"] if preset == "reference" else ["warm", "cold"]
        for start in starts:
            if start == "warm":
                first = auto_start_levels(SIGMAS, error, schedule.start_factor, schedule.levels)[0]
                run = [step for step in plan if step[0] >= first]
                mean0, var0 = y, SIGMAS[first] ** 2
            else:
                run, first = plan, plan[0][0]
                mean0, var0 = torch.zeros_like(y), (0.5 if preset == "reference" else SIGMAS[first] ** 2)
            calls = sum(step[2] for step in run)
            for beta in (1.0, 2.0):
                for denoise in sorted({False, schedule.final_denoise}):
                    mean, var = langevin_moments(model, y, SIGMAS, run, mean0, var0, beta, final_denoise=denoise)
                    label = (f"{preset}, {start} (σ_start {SIGMAS[first]:.3g}), {calls + denoise} NFE, "
                             f"noise_boost {beta:g}{', denoise' if denoise else ''}")
                    rows.append((label, spread_summary(model, var, mean, post_mean, post_var)))
    return rows


def predicted_error(model: GaussianModel, y: torch.Tensor) -> torch.Tensor:
    """The zero-filled image's predicted RMS error, as ``sigma_offset: auto`` computes it."""
    return zero_filled_error(y[None, None], model.mask[None, None].double(), torch.tensor([model.noise_var]))


def few_call_rows(model: GaussianModel, y: torch.Tensor) -> list[tuple[str, dict]]:
    post_mean, post_var = model.posterior(y)
    rows = []
    for preset in ("fast", "quick"):
        schedule = resolve_schedule(SIGMAS, preset=preset)
        first = auto_start_levels(SIGMAS, predicted_error(model, y), schedule.start_factor, schedule.levels)[0]
        levels = [level for level in schedule.levels if level >= first]
        mean, var = decomposed_moments(model, y, SIGMAS, levels, y, SIGMAS[first] ** 2, schedule.eta)
        rows.append((f"{preset}, warm (σ_start {SIGMAS[first]:.3g}), {len(levels)} NFE, fresh noise",
                     spread_summary(model, var, mean, post_mean, post_var)))
    for count in (5, 10, 25, 100):
        levels = log_spaced_levels(SIGMAS, count, 0)
        for eta in (0.0, 1.0, math.inf):
            mean, var = decomposed_moments(model, y, SIGMAS, levels, torch.zeros_like(y), SIGMAS[0] ** 2, eta)
            name = "fresh noise" if math.isinf(eta) else f"η {eta:g}"
            rows.append((f"few-call, cold, {count} NFE, {name}", spread_summary(model, var, mean, post_mean, post_var)))
    return rows


def table(title: str, rows: list[tuple[str, dict]]) -> str:
    lines = [f"#### {title}", "", "| sampler | var. ratio measured | var. ratio unmeasured | mean offset measured |",
             "|---|---|---|---|"]
    for label, numbers in rows:
        lines.append(f"| {label} | {numbers['var_ratio_measured']:.2f} | {numbers['var_ratio_unmeasured']:.2f} | "
                     f"{numbers['bias_measured']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snr", type=float, nargs="+", default=[20.0, 5.0])
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    generator = torch.Generator().manual_seed(options.seed)
    for snr in options.snr:
        model, _, y = demo_model(snr, generator)
        print(table(f"Langevin presets, {snr:g} dB", langevin_rows(model, y)))
        print(table(f"Few-call sampler, {snr:g} dB", few_call_rows(model, y)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
