"""``python -m lit_sampler frontier --config …``: quality per network call for one checkpoint.

Runs a grid of schedules (:data:`GRIDS`) with the ``predict`` config's data, model and trainer, each
into its own run directory, and writes

* ``frontier.csv``: one row per schedule and SNR: family, settings, mean network evaluations (NFE)
  per item, wall seconds, PSNR / SSIM / NMSE mean and standard deviation over items, Pareto flag;
* ``frontier.png``: PSNR against NFE (log axis), one curve per family and panel per SNR, the
  baselines of the run (zero-filled, CG-SENSE, CS when configured) as horizontal lines;

and prints the cheapest schedule within 0.5 dB and within 0.2 dB of the most expensive one.
Schedules are defined relative to the network's σ schedule (fractions of the levels, levels per
decade of σ, factors of the data's predicted error), so the grid fits any checkpoint. Run it on
validation data, never on the data you report.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..atomic import atomic_write_bytes
from ..outputs.figures import save_png
from ..outputs.report import write_csv
from ..sampling.baselines import BASELINES


@dataclass(frozen=True)
class Candidate:
    """One schedule of the grid: ``name``, the ``family`` it is drawn in, sampler overrides."""

    name: str
    family: str
    overrides: dict[str, Any] = field(default_factory=dict)


def _langevin(name: str, family: str, **knobs: Any) -> Candidate:
    """Annealed Langevin at the textbook temperature (β = 2, the posterior's spread), one step a level."""
    return Candidate(name, family, {"sampler": "langevin", "noise_boost": 2.0, "steps_each": 1, "final_denoise": True,
                                    **knobs})


def _cold(steps: int) -> Candidate:
    return _langevin(f"cold_T{steps}", "Langevin, cold start, every level",
                     init="noise", sigma_offset=0, levels=None, steps_each=steps)


def _warm(factor: float, per_decade: float | None) -> Candidate:
    name = f"warm_f{factor:g}" + (f"_d{per_decade:g}" if per_decade else "_all")
    family = "Langevin, warm start (auto), every level" if per_decade is None else "Langevin, warm start (auto), levels/decade"
    return _langevin(name, family, init="zero_filled", sigma_offset="auto", start_factor=factor,
                     levels=("per_decade", per_decade) if per_decade else None)


def _cold_subset(per_decade: float) -> Candidate:
    return _langevin(f"cold_d{per_decade:g}", "Langevin, cold start, levels/decade",
                     init="noise", sigma_offset=0, levels=("per_decade", per_decade))


def _eta_label(eta: float) -> str:
    return "fresh noise" if math.isinf(eta) else f"η={eta:g}"


def _few_call_cold(count: int, eta: float = 1.0) -> Candidate:
    """The few-call sampler from pure noise at σ_0 on ``count`` levels evenly spaced in log σ."""
    return Candidate(f"dds_cold_n{count}" + (f"_eta{eta:g}" if eta != 1.0 else ""),
                     f"few-call (DDS), cold start, {_eta_label(eta)}",
                     {"sampler": "decomposed", "init": "noise", "sigma_offset": 0, "levels": count, "eta": eta})


def _few_call_warm(factor: float, per_decade: float, eta: float = 1.0, init: str = "zero_filled") -> Candidate:
    """The few-call sampler from a warm start at a level picked per item (CCDF), ``per_decade`` levels."""
    name = f"dds_warm_f{factor:g}_d{per_decade:g}" + (f"_eta{eta:g}" if eta != 1.0 else "") + ("_cg" if init == "cg_sense" else "")
    return Candidate(name, f"few-call (DDS), warm start (auto), {_eta_label(eta)}",
                     {"sampler": "decomposed", "init": init, "sigma_offset": "auto", "start_factor": factor,
                      "levels": ("per_decade", per_decade), "eta": eta})


GRIDS: dict[str, list[Candidate]] = {
    # about 5 minutes on 2 CPU cores for the anatomy demo's validation split at 2 samples: the
    # presets `quick` and `fast`, a cold few-call chain and 0.3.0's Langevin `fast`
    "quick": [_warm(2.0, 16.0), _few_call_cold(10, math.inf), _few_call_warm(4.0, 4.5, math.inf),
              _few_call_warm(4.0, 12.0, math.inf)],
    "full": [
        Candidate("reference", "reference recipe", {"preset": "reference"}),
        _cold(1),
        *[_cold_subset(d) for d in (12.0, 6.0)],
        *[_warm(f, None) for f in (1.0, 2.0)],
        *[_warm(2.0, d) for d in (16.0, 8.0, 4.0)],
        *[_warm(f, 8.0) for f in (1.0, 4.0)],
        *[_few_call_cold(n) for n in (5, 10, 25, 50)],
        _few_call_cold(10, 0.0), *[_few_call_cold(n, math.inf) for n in (5, 10, 15, 25, 50)],
        *[_few_call_warm(f, d) for f, d in ((2.0, 4.0), (2.0, 8.0), (4.0, 4.0), (1.0, 4.0))],
        *[_few_call_warm(f, d, math.inf) for f, d in ((2.0, 4.0), (2.0, 8.0), (4.0, 4.0), (4.0, 4.5), (6.0, 4.5), (4.0, 5.0), (4.0, 8.0),
                                                       (4.0, 12.0), (4.0, 16.0), (8.0, 4.0), (8.0, 5.0), (8.0, 8.0))],
        _few_call_warm(2.0, 4.0, init="cg_sense"),
    ],
}


def resolve_overrides(overrides: dict[str, Any], sigmas: list[float]) -> dict[str, Any]:
    """Sampler init arguments of a candidate for this σ schedule (levels per decade → indices).

    A candidate is a whole schedule: the preset knobs it leaves out are unset (``null``), so that
    its preset's values or the plain defaults apply, not the config's (an explicit knob would win
    over the candidate's preset) — except ``sigma_offset``, which the reference recipe takes from
    the config."""
    from ..sampling.presets import KNOBS, per_decade_levels

    out = dict(overrides)
    levels = out.get("levels")
    if isinstance(levels, tuple) and levels[0] == "per_decade":
        out["levels"] = per_decade_levels(sigmas, float(levels[1]))
    if "preset" not in out:
        out["preset"] = None
    for knob in KNOBS:
        if knob != "sigma_offset":
            out.setdefault(knob, None)
    return out


# ------------------------------------------------------------------------------------ analysis
def read_metrics(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


SPREAD_COLUMNS = ("sample_psnr", "mean_gain_db", "ideal_gain_db", "coverage_90", "error_std_ratio", "spearman")


def summarise_run(candidate: Candidate, run_dir: Path, wall_s: float) -> list[dict[str, Any]]:
    """Per SNR, from the run's tables: the PSNR / SSIM / NMSE of the reconstruction the user receives
    (the posterior mean of the config's samples; mean and std over slices), the samples' own PSNR and
    spread numbers (with 2 or more samples), mean NFE and operator applications per item, baselines."""
    summary = read_metrics(run_dir / "summary.csv")
    slices = read_metrics(run_dir / "slice_metrics.csv")
    out = []
    for row_in in summary:
        snr = _number(row_in["snr_db"])
        same = [r for r in slices if _number(r["snr_db"]) == snr or (math.isnan(snr) and math.isnan(_number(r["snr_db"])))]
        row: dict[str, Any] = {"schedule": candidate.name, "family": candidate.family, "snr_db": snr,
                               "items": int(_number(row_in["items"])), "wall_s": wall_s,
                               "nfe": _number(row_in.get("mean_nfe")),
                               "operator_applications": _number(row_in.get("mean_operator_applications"))}
        for metric in ("psnr", "ssim", "nmse"):
            values = np.array([_number(r.get(f"recon_{metric}")) for r in same])
            values = values[np.isfinite(values)]
            row[f"{metric}_mean"] = float(values.mean()) if values.size else math.nan
            row[f"{metric}_std"] = float(values.std()) if values.size else math.nan
        for name in SPREAD_COLUMNS:
            if name in row_in and row_in[name] != "":
                row[name] = _number(row_in[name])
        for method in BASELINES:
            value = _number(row_in.get(f"{method}_psnr"))
            if math.isfinite(value):
                row[f"{method}_psnr"] = value
        row["settings"] = " ".join(f"{k}={v}" for k, v in candidate.overrides.items())
        out.append(row)
    return out


def mark_pareto(rows: list[dict[str, Any]]) -> None:
    """Flag, per SNR, the schedules no other schedule beats in both NFE (fewer) and PSNR (higher)."""
    for snr in {r["snr_db"] for r in rows}:
        group = [r for r in rows if r["snr_db"] == snr]
        for r in group:
            r["pareto"] = not any(
                o is not r and o["nfe"] <= r["nfe"] and o["psnr_mean"] >= r["psnr_mean"]
                and (o["nfe"] < r["nfe"] or o["psnr_mean"] > r["psnr_mean"])
                for o in group
            )


def cheapest_within(rows: list[dict[str, Any]], tolerance_db: float) -> dict[str, Any] | None:
    """The schedule with the fewest NFE whose PSNR, at every SNR, is within ``tolerance_db`` of the
    most expensive schedule's."""
    by_schedule: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_schedule.setdefault(r["schedule"], []).append(r)
    cost = {name: float(np.mean([r["nfe"] for r in group])) for name, group in by_schedule.items()}
    if not cost:
        return None
    reference = max(cost, key=cost.get)
    best_psnr = {r["snr_db"]: r["psnr_mean"] for r in by_schedule[reference]}
    fits = [
        name for name, group in by_schedule.items()
        if all(r["psnr_mean"] >= best_psnr.get(r["snr_db"], math.inf) - tolerance_db for r in group)
    ]
    if not fits:
        return None
    name = min(fits, key=lambda n: cost[n])
    return {"schedule": name, "nfe": cost[name], "reference": reference, "reference_nfe": cost[reference],
            "speedup": cost[reference] / cost[name]}


def plot_frontier(path: Path, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snrs = sorted({r["snr_db"] for r in rows}, reverse=True)
    fig, axes = plt.subplots(1, len(snrs), figsize=(6.0 * len(snrs), 4.4), squeeze=False)
    styles = {"zero_filled": ("zero-filled", ":"), "cg_sense": ("CG-SENSE", "-."),
              "l1_wavelet": ("L1-wavelet", "--"), "total_variation": ("TV", (0, (1, 1)))}
    for axis, snr in zip(axes[0], snrs):
        group = [r for r in rows if r["snr_db"] == snr]
        for family in dict.fromkeys(r["family"] for r in group):
            points = sorted((r for r in group if r["family"] == family), key=lambda r: r["nfe"])
            axis.errorbar([p["nfe"] for p in points], [p["psnr_mean"] for p in points], marker="o", capsize=2,
                          label=family, linestyle="-" if len(points) > 1 else "none")
        front = sorted((r for r in group if r.get("pareto")), key=lambda r: r["nfe"])
        axis.plot([p["nfe"] for p in front], [p["psnr_mean"] for p in front], color="k", alpha=0.25, linewidth=6,
                  label="Pareto front", zorder=0)
        for method, (label, style) in styles.items():
            values = [r[f"{method}_psnr"] for r in group if f"{method}_psnr" in r]
            if values:
                axis.axhline(float(np.mean(values)), color="gray", linestyle=style, linewidth=1, label=label)
        # diverged schedules (far below every baseline) would flatten the rest: clip, and say so
        floor = min([float(np.mean([r[f"{m}_psnr"] for r in group if f"{m}_psnr" in r])) for m in styles
                     if any(f"{m}_psnr" in r for r in group)] + [max(p["psnr_mean"] for p in group)]) - 4.0
        below = [p for p in group if p["psnr_mean"] < floor]
        if below:
            axis.set_ylim(bottom=floor)
            axis.annotate("below: " + ", ".join(p["schedule"] for p in below), (0.02, 0.02), xycoords="axes fraction",
                          fontsize=7)
        axis.set_xscale("log")
        axis.set_xlabel("network evaluations per item (NFE)")
        axis.set_ylabel("PSNR (dB)")
        axis.set_title("no added noise" if not math.isfinite(snr) else f"{snr:g} dB")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    save_png(fig, path)


# ------------------------------------------------------------------------------------ the driver
def parse_frontier_args(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="lit_sampler frontier", add_help=False)
    parser.add_argument("--out", default=None, help="output folder (default lightning_logs/frontier)")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="full")
    parser.add_argument("--schedules", default=None, help="comma-separated names of the grid to run (default all)")
    return parser.parse_known_args(args)


def run_frontier(args: list[str], build: Callable[[list[str]], Any]) -> int:
    """Run the grid; ``build(extra_args)`` returns a LightningCLI instantiated with ``run=False``."""
    options, rest = parse_frontier_args(args)
    out = Path(options.out or "lightning_logs/frontier")
    grid = GRIDS[options.grid]
    if options.schedules:
        wanted = [s.strip() for s in options.schedules.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {c.name for c in grid})
        if unknown:
            raise ValueError(f"frontier: unknown schedule(s) {unknown}; the {options.grid!r} grid has {[c.name for c in grid]}")
        grid = [c for c in grid if c.name in wanted]
    rows: list[dict[str, Any]] = []
    cli = build(rest + ["--trainer.logger=false"])
    sigmas = cli.model.sigmas.tolist()  # (the network's own levels)
    plans = [(candidate, resolve_overrides(candidate.overrides, sigmas)) for candidate in grid]
    print(expected_cost(cli, plans))
    for index, (candidate, overrides) in enumerate(plans):
        if index > 0:  # the baselines once, in the first run (the same measurements in every run)
            overrides = {**overrides, "cs_lambdas": None, "varnet": None}
            if overrides.get("init") != "cg_sense":  # (a CG-SENSE warm start needs its iterations)
                overrides["cg_iterations"] = 0
        print(f"[frontier {index + 1}/{len(grid)}] {candidate.name}", flush=True)
        # (a calibration file holds for one schedule; the grid's runs report raw and no calibrated coverage)
        wall = predict_into(build, rest + override_args(overrides), out / candidate.name, figure_slices=0,
                            calibration=False)
        if not (out / candidate.name / "summary.csv").exists():
            raise ValueError(f"frontier: {candidate.name} wrote no metrics (no ground truth in the data?)")
        rows += summarise_run(candidate, out / candidate.name, wall)
    mark_pareto(rows)
    write_csv(out / "frontier.csv", rows)
    plot_frontier(out / "frontier.png", rows)
    print(format_frontier(rows))
    for tolerance in (0.5, 0.2):
        best = cheapest_within(rows, tolerance)
        if best:
            print(f"cheapest within {tolerance} dB of {best['reference']} ({best['reference_nfe']:.0f} NFE): "
                  f"{best['schedule']} at {best['nfe']:.1f} NFE ({best['speedup']:.1f}x fewer)")
    print(f"frontier in {out}")
    atomic_write_bytes(out / "grid.txt", "\n".join(f"{c.name}\t{c.family}\t{c.overrides}" for c in grid).encode())
    return 0


def seconds_per_evaluation(cli, repeats: int = 3) -> float:
    """Wall seconds of one image-evaluation of the score network as the run will call it (a batch
    of the data module's size, the trainer's precision left aside), the median of a few calls."""
    datamodule = cli.datamodule
    datamodule.setup("predict")
    shape = [int(v) for v in datamodule.collate(datamodule.items[:1]).image_shape[0]]
    batch = min(int(getattr(datamodule, "batch_size", 1)), max(len(datamodule.items), 1))
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
    labels = torch.full((batch,), len(cli.model.sigmas) // 2, dtype=torch.long)
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            cli.model.score(x, labels)
            times.append(time.perf_counter() - start)
    return float(np.median(times[1:])) / batch


def expected_cost(cli, plans: list[tuple[Candidate, dict[str, Any]]]) -> str:
    """What the grid will cost, printed before it starts: network calls per item (for warm starts
    from the start levels the data give, as the runs will pick them), items, and the minutes at the
    seconds per evaluation measured now."""
    from ..sampling.presets import KNOBS, resolve_schedule
    from ..sampling.warm_start import auto_start_levels, zero_filled_error

    datamodule = cli.datamodule
    per_eval = seconds_per_evaluation(cli)
    items = list(datamodule.items)
    errors = []  # the predicted zero-filled error of every item, as `sigma_offset: auto` computes it
    for start in range(0, len(items), 64):
        batch = datamodule.collate(items[start:start + 64])
        if batch.has_measurement:
            errors.append(zero_filled_error(batch.kspace, batch.mask, batch.noise_var.double()))
    error = torch.cat(errors) if errors else None
    sigmas = cli.model.sigmas.tolist()
    lines = [f"frontier: {len(plans)} schedules on {len(items)} items; {per_eval * 1e3:.0f} ms per network evaluation here"]
    total = 0.0
    for candidate, overrides in plans:
        knobs = {k: overrides.get(k) for k in KNOBS}
        if overrides.get("sigma_offset") is None:
            knobs["sigma_offset"] = cli.model.hparams.sigma_offset
        schedule = resolve_schedule(sigmas, preset=overrides.get("preset"), **knobs)
        if schedule.auto_start and error is not None:
            starts = auto_start_levels(sigmas, error, schedule.start_factor, schedule.levels)
        else:
            starts = [schedule.levels[0]] * len(items)
        calls = sum(schedule.evaluations(k) for k in starts)
        seconds = calls * per_eval
        total += seconds
        lines.append(f"  {candidate.name:<24} {calls / max(len(items), 1):6.1f} calls per item, about {seconds / 60:5.1f} min")
    lines.append(f"expected: about {total / 60:.0f} min in all (network calls at the speed measured now)")
    return "\n".join(lines)


def override_args(overrides: dict[str, Any]) -> list[str]:
    """``--model.init_args.<knob>=<value>`` arguments for sampler overrides."""
    return [f"--model.init_args.{k}={_yaml(v)}" for k, v in overrides.items()]


def predict_into(build: Callable[[list[str]], Any], args: list[str], run_dir: Path, figure_slices: int = 2,
                 calibration: bool = True) -> float:
    """One ``predict`` run of the config ``args`` into ``run_dir`` (no TensorBoard logger); returns
    the wall seconds spent on that directory (``wall_seconds.txt``, summed over resumed runs).
    Resumes when ``run_dir`` holds finished items of the same settings. ``calibration=False`` drops
    the writer's calibration file (a run that makes one must not need one)."""
    # (default_root_dir: without a logger, Lightning saves the run's config.yaml there)
    cli = build(args + ["--trainer.logger=false", f"--trainer.default_root_dir={run_dir}"])
    writer = _writer_of(cli.trainer)
    writer.output_dir = str(run_dir)
    writer.figure_slices = figure_slices
    if not calibration:
        writer.calibration_path = None
    start = time.perf_counter()
    cli.trainer.predict(cli.model, datamodule=cli.datamodule, return_predictions=False)
    # the compute of every run into this directory (a resumed run adds only what it computed)
    record = Path(run_dir) / "wall_seconds.txt"
    wall = time.perf_counter() - start + (float(record.read_text()) if record.exists() else 0.0)
    atomic_write_bytes(record, f"{wall:.3f}\n".encode())
    return wall


def format_frontier(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'schedule':<22} {'SNR':>6} {'NFE':>7} {'wall s':>7} {'PSNR':>14} {'SSIM':>7} pareto"]
    for r in sorted(rows, key=lambda r: (-r["snr_db"] if math.isfinite(r["snr_db"]) else -1e9, r["nfe"])):
        lines.append(
            f"{r['schedule']:<22} {r['snr_db']:>6g} {r['nfe']:7.1f} {r['wall_s']:7.1f} "
            f"{r['psnr_mean']:7.2f} ± {r['psnr_std']:4.2f} {r['ssim_mean']:7.4f} {'*' if r.get('pareto') else ''}"
        )
    return "\n".join(lines)


def _yaml(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"  # (YAML's spelling; jsonargparse does not read "inf")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_yaml(v) for v in value) + "]"
    return str(value)


def _writer_of(trainer):
    from ..outputs.writer import ReconstructionWriter

    for callback in trainer.callbacks:
        if isinstance(callback, ReconstructionWriter):
            return callback
    raise ValueError("frontier: the trainer has no ReconstructionWriter")
