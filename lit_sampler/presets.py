"""Sampler presets and the resolution of the schedule knobs into one :class:`Schedule`.

A preset is defined relative to the network's σ schedule and to the data, never by level counts,
so one name means the same for a 200-level demo prior and the 2,311-level brain checkpoint:

* ``reference``: the reference pipeline's recipe: every level from the configured ``sigma_offset``,
  3 steps each, cold start (its initial noise), no final denoise.
* ``balanced``: zero-filled warm start at a level picked per item from the data
  (:mod:`lit_sampler.warm_start`: σ_start ≥ 1 × the predicted error of the zero-filled image),
  then every level, 1 step each, final Tweedie denoise.
* ``fast``: the same from σ_start ≥ 2 × the predicted error, on 16 levels per decade of σ.

Both were chosen with ``lit_sampler frontier`` on the anatomy demo's validation split
(:data:`WARM_PRESETS`; docs/benchmarks.md, "Quality per network call").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, Optional, Union

from .schedules import check_levels, check_steps, log_spaced_levels

Preset = Literal["reference", "balanced", "fast"]
AUTO_START_FACTOR = 2.0
# warm presets: (start factor, levels per decade of σ; None = every level), from the frontier
WARM_PRESETS: dict[str, tuple[float, Optional[float]]] = {"balanced": (1.0, None), "fast": (2.0, 16.0)}

StepsSpec = Union[int, dict[int, int]]


@dataclass(frozen=True)
class Schedule:
    """What a chain runs. ``levels``: ascending level indices (all of them from the start when the
    start is fixed); ``steps``: one count per entry of ``levels``; ``auto_start``: pick each item's
    start among ``levels`` from its data (``start_factor``); ``init``: the initial state's kind."""

    levels: list[int]
    steps: list[int]
    init: str
    final_denoise: bool
    auto_start: bool = False
    start_factor: float = AUTO_START_FACTOR
    preset: Optional[str] = None
    subset: bool = field(default=False)

    def evaluations(self, start_level: int) -> int:
        """Network calls of an item that starts at ``start_level`` (exact)."""
        return sum(t for level, t in zip(self.levels, self.steps) if level >= start_level) + int(self.final_denoise)

    def describe(self) -> dict:
        runs = [[level, t] for level, t in zip(self.levels, self.steps)]
        return {
            "preset": self.preset,
            "levels_run": len(self.levels),
            "first_level": self.levels[0],
            "steps_total": sum(self.steps),
            "network_evaluations_max": self.evaluations(self.levels[0]),
            "auto_start": self.auto_start,
            "start_factor": self.start_factor if self.auto_start else None,
            "init": self.init,
            "final_denoise": self.final_denoise,
            "level_subset": self.subset,
            "levels": runs if len(runs) <= 64 else f"{len(runs)} levels from {runs[0][0]} to {runs[-1][0]}",
        }


def steps_per_level(steps_each: StepsSpec, levels: list[int]) -> list[int]:
    """``steps_each`` as one count per level: an int for all, or ``{first level: steps}`` pieces
    (``{0: 3, 1801: 4}``: 3 steps up to level 1800, 4 from 1801 on, Jalal et al.'s rule)."""
    if isinstance(steps_each, int):
        counts = [steps_each] * len(levels)
    else:
        pieces = sorted((int(k), int(v)) for k, v in dict(steps_each).items())
        if not pieces or pieces[0][0] > levels[0]:
            raise ValueError(
                f"steps_each: the pieces {dict(pieces)} must start at or before the first level run ({levels[0]})"
            )
        counts = [next(v for k, v in reversed(pieces) if k <= level) for level in levels]
    return check_steps(counts)


def per_decade_levels(sigmas: list[float], per_decade: float) -> list[int]:
    """Levels evenly spaced in log σ over the whole schedule, ``per_decade`` per factor 10 of σ."""
    decades = math.log10(sigmas[0] / sigmas[-1])
    return log_spaced_levels(sigmas, max(2, int(round(decades * per_decade)) + 1), 0)


def resolve_schedule(
    sigmas: list[float],
    *,
    preset: Optional[str],
    steps_each: StepsSpec,
    sigma_offset: Union[int, str],
    levels: Union[int, list[int], None],
    init: str,
    final_denoise: bool,
    start_factor: float,
) -> Schedule:
    """Turn the sampler's knobs (or a preset) into a validated :class:`Schedule`."""
    num = len(sigmas)
    if preset is not None:
        if preset == "reference":
            offset = 0 if sigma_offset == "auto" else int(sigma_offset)
            schedule = resolve_schedule(sigmas, preset=None, steps_each=3, sigma_offset=offset, levels=None,
                                        init="reference", final_denoise=False, start_factor=start_factor)
            return replace(schedule, preset=preset)
        if preset not in WARM_PRESETS:
            raise ValueError(f"unknown preset {preset!r}; expected 'reference', 'balanced' or 'fast'")
        factor, density = WARM_PRESETS[preset]
        levels = None if density is None else per_decade_levels(sigmas, density)
        schedule = resolve_schedule(sigmas, preset=None, steps_each=1, sigma_offset="auto", levels=levels,
                                    init="zero_filled", final_denoise=True, start_factor=factor)
        return replace(schedule, preset=preset)
    auto = sigma_offset == "auto"
    if not auto:
        if isinstance(sigma_offset, str) or not 0 <= int(sigma_offset) < num:
            raise ValueError(
                f"sigma_offset must lie in [0, {num - 1}] for {num} noise levels, got {sigma_offset} "
                "(or be 'auto' with a warm-start init)"
            )
    if auto and init not in ("zero_filled", "cg_sense"):
        raise ValueError(f"sigma_offset: auto picks a warm-start level; it needs init 'zero_filled' or 'cg_sense', got {init!r}")
    first = 0 if auto else int(sigma_offset)
    if levels is None:
        run = list(range(first, num))
    elif isinstance(levels, int):
        run = log_spaced_levels(sigmas, levels, first)
    else:
        run = check_levels(sorted({int(k) for k in levels}), num, first)
    if not start_factor > 0:
        raise ValueError(f"start_factor must be positive, got {start_factor}")
    subset = levels is not None and run != list(range(run[0], num))
    return Schedule(run, steps_per_level(steps_each, run), init, bool(final_denoise), auto, float(start_factor), None, subset)

