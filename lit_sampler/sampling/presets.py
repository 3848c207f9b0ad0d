"""Sampler presets and the resolution of the schedule knobs into one :class:`Schedule`.

A preset is defined relative to the network's σ schedule and to the data, never by level counts,
so one name means the same for a 200-level demo prior and the 2,311-level brain checkpoint:

* ``reference``: the reference pipeline's recipe: annealed Langevin on every level from the
  configured ``sigma_offset``, 3 steps each, cold start (its initial noise), the reference's noise
  (``noise_boost`` 1: half the posterior's variance), no final denoise.
* ``balanced``: the posterior sampler: annealed Langevin at the textbook temperature
  (``noise_boost`` 2, docs/uncertainty.md) from a zero-filled warm start at a level picked per item
  from the data (:mod:`lit_sampler.sampling.warm_start`: σ_start ≥ 1 × the predicted error of the
  zero-filled image), every level after it, 1 step each, final Tweedie denoise (≈ 60 network calls).
* ``fast``: the few-call sampler (:mod:`lit_sampler.sampling.decomposed`) from a zero-filled warm
  start at σ_start ≥ 4 × the predicted error, 12 levels per decade of σ, fresh noise at every
  re-noise (≈ 22 calls): the best image per network call, samples about 2× too alike (calibrate).
* ``quick``: the same on 4.5 levels per decade (≈ 9.5 calls).

All but ``reference`` were chosen with ``lit_sampler frontier`` on the anatomy demo's validation
split (docs/benchmarks.md, "Quality per network call").

**One rule for every knob a preset sets** (:data:`PRESETS`): a knob given explicitly (config or
command line) wins over the preset; the preset fills in only the knobs left unset (``None``);
without a preset an unset knob takes its plain default (:data:`PLAIN_DEFAULTS`).
:func:`merge_knobs` applies the rule and says where each value came from (``config``,
``preset <name>``, ``default``); :func:`resolve_schedule` turns the values into a
:class:`Schedule` and refuses what cannot run in one line naming the knobs and their sources.
``reference`` sets neither ``sigma_offset`` (it runs from the configured one) nor ``start_factor``
(it starts cold). A new knob is one entry in :data:`PLAIN_DEFAULTS` plus one in each preset that
sets it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, Optional, Union

from .schedules import check_levels, check_steps, log_spaced_levels

Preset = Literal["reference", "balanced", "fast", "quick"]
AUTO_START_FACTOR = 2.0
StepsSpec = Union[int, dict[int, int]]


@dataclass(frozen=True)
class PerDecade:
    """``levels`` as a density: ``count`` levels per factor 10 of σ, evenly spaced in log σ from
    the first level run to the last (how a preset names a level subset for any σ schedule)."""

    count: float

    def __str__(self) -> str:
        return f"{self.count:g} per decade"


# the knobs a preset may set, with their plain defaults (an unset knob without a preset); for
# `levels` None means every level
PLAIN_DEFAULTS: dict[str, Any] = {
    "sampler": "langevin", "steps_each": 3, "sigma_offset": 0, "levels": None, "init": "reference",
    "final_denoise": False, "start_factor": AUTO_START_FACTOR, "noise_boost": 1.0, "eta": math.inf, "dc_steps": 5,
}
# the knobs that only one sampler reads (a value given for the other sampler is refused)
SAMPLER_KNOBS: dict[str, tuple[str, ...]] = {
    "langevin": ("steps_each", "final_denoise", "noise_boost"),
    "decomposed": ("eta", "dc_steps"),
}
KNOBS = tuple(PLAIN_DEFAULTS)
# per preset, the knobs it sets (a knob it leaves out keeps the config's value or the plain default)
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {"sampler": "langevin", "steps_each": 3, "levels": None, "init": "reference", "final_denoise": False,
                  "noise_boost": 1.0},
    "balanced": {"sampler": "langevin", "steps_each": 1, "sigma_offset": "auto", "levels": None, "init": "zero_filled",
                 "final_denoise": True, "start_factor": 1.0, "noise_boost": 2.0},
    "fast": {"sampler": "decomposed", "sigma_offset": "auto", "levels": PerDecade(12.0), "init": "zero_filled",
             "start_factor": 4.0, "eta": math.inf},
    "quick": {"sampler": "decomposed", "sigma_offset": "auto", "levels": PerDecade(4.5), "init": "zero_filled",
              "start_factor": 4.0, "eta": math.inf},
}


def merge_knobs(preset: Optional[str], given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The rule of the module docstring: per knob, the given value (not ``None``), else the
    preset's, else the plain default. Returns ``(values, sources)``; a source is ``"config"``,
    ``"preset <name>"`` or ``"default"``."""
    unknown = sorted(set(given) - set(PLAIN_DEFAULTS))
    if unknown:
        raise TypeError(f"not schedule knobs: {unknown}; the knobs are {list(KNOBS)}")
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(repr(p) for p in PRESETS)}")
    table = PRESETS.get(preset, {})
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for knob, default in PLAIN_DEFAULTS.items():
        if given.get(knob) is not None:
            values[knob], sources[knob] = given[knob], "config"
        elif knob in table:
            values[knob], sources[knob] = table[knob], f"preset {preset}"
        else:
            values[knob], sources[knob] = default, "default"
    return values, sources


def knob_origin(preset: Optional[str], sources: dict[str, str], knob: str) -> str:
    """`` (preset fast)`` / `` (config)`` / `` (default)`` after a knob in a message when a preset is
    in play (without one every knob is the config's or its default, and messages stay short)."""
    return f" ({sources[knob]})" if preset is not None and knob in sources else ""


def show_knob(value: Any) -> str:
    """A knob's value as a config would spell it (``true``, ``auto``, ``all``, ``16 per decade``)."""
    if value is None or value == "all":
        return "all"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return json.dumps({str(k): v for k, v in value.items()})
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"[{value[0]}, {value[1]}, … {value[-1]}] ({len(value)} levels)"
    return str(value)


@dataclass(frozen=True)
class Schedule:
    """What a chain runs. ``levels``: ascending level indices (all of them from the start when the
    start is fixed); ``steps``: one count per entry of ``levels``; ``auto_start``: pick each item's
    start among ``levels`` from its data (``start_factor``); ``init``: the initial state's kind.
    ``knobs``/``sources``: the resolved knob values and where each came from (:func:`merge_knobs`)."""

    levels: list[int]
    steps: list[int]
    init: str
    final_denoise: bool
    auto_start: bool = False
    start_factor: float = AUTO_START_FACTOR
    preset: Optional[str] = None
    subset: bool = field(default=False)
    knobs: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    sampler: str = "langevin"
    noise_boost: float = 1.0
    eta: float = math.inf
    dc_steps: int = 5

    def evaluations(self, start_level: int) -> int:
        """Network calls of an item that starts at ``start_level`` (exact; the few-call sampler runs one
        step per level and no final denoise)."""
        return sum(t for level, t in zip(self.levels, self.steps) if level >= start_level) + int(self.final_denoise)

    def operator_applications(self, start_level: int, data_consistency: str = "gaussian") -> int:
        """Applications of A or Aᴴ per item that starts at ``start_level`` (exact): the data-consistency
        rule's, not the baselines'. Langevin: AᴴA x per step (two), plus Aᴴy once for the Gaussian
        rule; the few-call sampler: ``dc_steps`` + 1 AᴴA per level (the first residual and each CG
        step), plus Aᴴy once."""
        steps = sum(t for level, t in zip(self.levels, self.steps) if level >= start_level)
        if self.sampler == "decomposed":
            return 2 * (self.dc_steps + 1) * steps + 1
        return 2 * steps + (1 if data_consistency == "gaussian" else 0)

    def origin(self, knob: str) -> str:
        """Where ``knob`` came from, for messages (:func:`knob_origin`)."""
        return knob_origin(self.preset, self.sources, knob)

    def describe(self) -> dict:
        runs = [[level, t] for level, t in zip(self.levels, self.steps)]
        described = {
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
        if self.sampler == "decomposed":
            described.update(sampler=self.sampler, eta=self.eta, dc_steps=self.dc_steps)
            for knob in ("steps_total", "final_denoise"):
                described.pop(knob)
        else:  # (the sampler's name only when it is not the default: older run directories still resume)
            described["noise_boost"] = self.noise_boost
        if self.preset is not None:  # (absent without a preset: older run directories still resume)
            described["knob_sources"] = dict(self.sources)
        return described

    def setup_line(self, num_levels: int) -> str:
        """One line for the console: what the chain runs and where each knob came from."""
        calls = self.evaluations(self.levels[0])
        name = "few-call (decomposed)" if self.sampler == "decomposed" else "Langevin"
        head = f"sampler: {name}, {len(self.levels)} of {num_levels} levels, "
        head += f"at most {calls} network calls per item" if self.auto_start else f"{calls} network calls per item"
        if self.preset is not None:
            head += f" (preset {self.preset})"
        groups: dict[str, list[str]] = {}
        for knob, value in self.knobs.items():
            if knob == "start_factor" and not self.auto_start:
                continue  # (no effect on a chain that starts at a fixed level)
            if knob not in SAMPLER_KNOBS.get(self.sampler, ()) and any(knob in k for k in SAMPLER_KNOBS.values()):
                continue  # (the other sampler's knob)
            groups.setdefault(self.sources[knob], []).append(f"{knob}={show_knob(value)}")
        labels = {"config": "from the config", f"preset {self.preset}": f"from preset {self.preset}", "default": "defaults"}
        parts = [f"{label}: {', '.join(groups[source])}" for source, label in labels.items() if source in groups]
        return "; ".join([head, *parts])


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


def per_decade_levels(sigmas: list[float], per_decade: float, start: int = 0) -> list[int]:
    """Levels evenly spaced in log σ from ``start`` to the last level, ``per_decade`` per factor 10 of σ."""
    decades = math.log10(sigmas[start] / sigmas[-1])
    return log_spaced_levels(sigmas, max(2, int(round(decades * per_decade)) + 1), start)


def resolve_schedule(sigmas: list[float], *, preset: Optional[str] = None, **given: Any) -> Schedule:
    """Turn the sampler's knobs (:data:`KNOBS`, ``None`` = unset) and a preset into a validated
    :class:`Schedule` by the rule of the module docstring."""
    knobs, sources = merge_knobs(preset, given)
    origin = partial(knob_origin, preset, sources)
    num = len(sigmas)
    sampler = knobs["sampler"]
    if sampler not in SAMPLER_KNOBS:
        raise ValueError(f"sampler must be one of {list(SAMPLER_KNOBS)}, got {sampler!r}")
    for other, owned in SAMPLER_KNOBS.items():
        for knob in owned:
            if other != sampler and sources[knob] == "config":
                raise ValueError(
                    f"{knob}: {show_knob(knobs[knob])} applies to sampler: {other} only, but this run uses sampler: "
                    f"{sampler}{origin('sampler')}; remove {knob} or set sampler: {other}"
                )
    if sampler == "decomposed":
        if not float(knobs["eta"]) >= 0:
            raise ValueError(f"eta must be >= 0 (0 deterministic, 1 ancestral), got {knobs['eta']}")
        if int(knobs["dc_steps"]) < 0:
            raise ValueError(f"dc_steps must be >= 0 (conjugate-gradient steps per level), got {knobs['dc_steps']}")
        knobs = {**knobs, "steps_each": 1, "final_denoise": False}
    sigma_offset, init, levels = knobs["sigma_offset"], knobs["init"], knobs["levels"]
    auto = sigma_offset == "auto"
    if not auto:
        if isinstance(sigma_offset, str) or not 0 <= int(sigma_offset) < num:
            raise ValueError(
                f"sigma_offset must lie in [0, {num - 1}] for {num} noise levels, got {sigma_offset} "
                "(or be 'auto' with a warm-start init)"
            )
    if auto and init not in ("zero_filled", "cg_sense"):
        raise ValueError(
            f"sigma_offset: auto{origin('sigma_offset')} picks a warm-start level; it needs init 'zero_filled' "
            f"or 'cg_sense', got init {init!r}{origin('init')}; give init: zero_filled (or cg_sense), or a level "
            "index as sigma_offset"
        )
    first = 0 if auto else int(sigma_offset)
    if levels is None or levels == "all":
        run = list(range(first, num))
    elif isinstance(levels, PerDecade):
        run = per_decade_levels(sigmas, levels.count, first)
    elif isinstance(levels, int):
        run = log_spaced_levels(sigmas, levels, first)
    else:
        run = check_levels(sorted({int(k) for k in levels}), num, first)
    start_factor = knobs["start_factor"]
    if not start_factor > 0:
        raise ValueError(f"start_factor must be positive, got {start_factor}")
    if sources["start_factor"] == "config" and not auto:
        raise ValueError(
            f"start_factor: {start_factor:g} has no effect: it places the start of sigma_offset: auto, but the chain "
            f"starts at the fixed level sigma_offset: {sigma_offset}{origin('sigma_offset')}; remove start_factor "
            "or set sigma_offset: auto"
        )
    subset = run != list(range(run[0], num))
    return Schedule(run, steps_per_level(knobs["steps_each"], run), init, bool(knobs["final_denoise"]), auto,
                    float(start_factor), preset, subset, knobs, sources, sampler, float(knobs["noise_boost"]),
                    float(knobs["eta"]), int(knobs["dc_steps"]))
