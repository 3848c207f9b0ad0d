#!/usr/bin/env python
"""The anatomy demo's benchmark: the prior beside the baselines users would pick instead.

1. λ of the compressed-sensing baselines (sigpy L1-wavelet, TV) chosen per acceleration and SNR on
   the **validation** split (:func:`lit_sampler.evaluation.tuning.tune_cs_lambdas`);
2. every method on the held-out **test** split (MNI152 test slabs) and, reported separately, on
   the other subject's slices (dipy; whole-head and zoomed partial-FOV views), at 4× (8 % centre)
   and 8× (4 % centre) random lines and the config's SNRs, on the same masks and noise draws:
   zero-filled, CG-SENSE, L1-wavelet, TV, and the prior with the ``reference`` (test split only:
   600 network calls a slice), ``balanced`` and ``fast`` presets (the baselines are computed in the
   first run of each split and acceleration), and any schedule of the frontier's grid by name
   (``--schedules dds_warm_f4_d16_etainf``: the best the frontier found at any cost);
3. ``results.md`` (tables: PSNR of the posterior mean of ``--num-samples`` samples, mean ± std over
   slices, SSIM, NMSE, network calls, effective acceleration, and the samples' spread: one sample's
   PSNR, the mean's gain, raw 90 % coverage, median |error|/std) and ``results.json`` under ``--out``.

    python scripts/anatomy_benchmark.py --config configs/demo.yaml --out lightning_logs/anatomy_benchmark

Reruns resume: finished runs are kept (delete ``--out`` to start over).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from lit_sampler.cli import build_cli
from lit_sampler.evaluation.tuning import DEFAULT_GRID, merge_records, tune_cs_lambdas
from lit_sampler.tools.frontier import GRIDS, resolve_overrides
from lit_sampler.tools.frontier import override_args, predict_into, read_metrics

ACCELERATIONS = {4: 0.08, 8: 0.04}
SPLITS = {"test": "MNI152 test slabs (whole head)", "test_other": "other subject (dipy T1, whole + zoomed)"}
PRESETS = ("reference", "balanced", "fast", "quick")
METHODS = {"zero_filled": "zero-filled", "cg_sense": "CG-SENSE", "l1_wavelet": "L1-wavelet", "total_variation": "TV",
           "varnet": "VarNet"}
SPREAD = ("sample_psnr", "mean_gain_db", "coverage_90", "error_std_ratio", "spearman", "ause", "ause_random",
          "calibrated_coverage_90", "calibrated_width_90")


def mask_args(acceleration: int) -> list[str]:
    fraction = ACCELERATIONS[acceleration]
    return [f"--data.init_args.mask.init_args.center_fractions=[{fraction}]",
            f"--data.init_args.mask.init_args.accelerations=[{acceleration}]"]


def tune(config: list[str], data_root: Path, acceleration: int, out: Path) -> dict:
    """λ per method and SNR on the validation split; a stored search is extended by the λ values of
    :data:`DEFAULT_GRID` it lacks, never recomputed."""
    path = out / f"cs_lambdas_{acceleration}x.json"
    record = json.loads(path.read_text()) if path.exists() else None
    tried = {float(k) for k in next(iter(next(iter(record["psnr"].values())).values()))} if record else set()
    missing = [lamda for lamda in DEFAULT_GRID if lamda not in tried]
    if not missing:
        return record
    cli = build_cli(config + mask_args(acceleration) + [f"--data.init_args.data_path={data_root / 'val'}",
                                                       "--data.init_args.slices=null", "--data.init_args.num_samples=1",
                                                       "--trainer.logger=false"], run=False)
    cli.datamodule.setup("predict")
    found = tune_cs_lambdas(cli.datamodule.predict_dataloader(), grid=missing)
    record = merge_records(record, found) if record else found
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True))
    return record


def stats(rows: list[dict], column: str) -> tuple[float, float]:
    values = np.array([float(r[column]) for r in rows if r.get(column) not in (None, "", "nan")], dtype=float)
    values = values[np.isfinite(values)]
    return (float(values.mean()), float(values.std())) if values.size else (math.nan, math.nan)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("lightning_logs/anatomy_benchmark"))
    parser.add_argument("--data-root", type=Path, default=Path("demo/data"))
    parser.add_argument("--accelerations", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--schedules", nargs="*", default=[], help="frontier grid schedules to run too (by name)")
    parser.add_argument("--num-samples", type=int, default=8, help="posterior samples per slice")
    parser.add_argument("--calibrated", default="quick",
                        help="the preset the config's calibration file was made for (kept there, dropped elsewhere)")
    parser.add_argument("--other-presets", nargs="+", default=["balanced", "fast", "quick"],
                        help="presets on test_other (default: not the 600-NFE reference)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS))
    parser.add_argument("--reference-accelerations", type=int, nargs="+", default=None,
                        help="run the reference preset only at these accelerations (default: all)")
    options, config = parser.parse_known_args(argv)
    fast_path = []  # (the config's batch_invariant: bit-identical to the demo's own runs)
    results = {"tuning": {}, "runs": []}
    grid = {c.name: c for c in GRIDS["full"]}
    unknown = sorted(set(options.schedules) - set(grid))
    if unknown:
        parser.error(f"unknown frontier schedules {unknown}")
    sigmas = build_cli(config + ["--trainer.logger=false"], run=False).model.sigmas.tolist() if options.schedules else []
    for acceleration in options.accelerations:
        record = tune(config, options.data_root, acceleration, options.out)
        results["tuning"][acceleration] = {"cs_lambdas": record["cs_lambdas"], "files": record["files"]}
        for split in options.splits:
            presets = options.presets if split == "test" else options.other_presets
            if options.reference_accelerations is not None and acceleration not in options.reference_accelerations:
                presets = [p for p in presets if p != "reference"]
            for preset in presets + options.schedules:
                run_dir = options.out / f"{split}_{acceleration}x_{preset}"
                overrides = {"preset": preset} if preset in PRESETS else resolve_overrides(grid[preset].overrides, sigmas)
                extra = [f"--data.init_args.num_samples={1 if preset == 'reference' else options.num_samples}"]
                if preset == presets[0]:  # the baselines once per split and acceleration
                    overrides["cs_lambdas"] = record["cs_lambdas"]
                else:
                    overrides.update(cs_lambdas=None, varnet=None)
                if not (run_dir / "metrics.csv").exists():
                    print(f"== {split} {acceleration}x {preset}")
                    predict_into(
                        lambda a: build_cli(a, run=False),
                        config + mask_args(acceleration) + fast_path + extra + override_args(overrides)
                        + [f"--data.init_args.data_path={options.data_root / split}", "--data.init_args.slices=null"],
                        run_dir, calibration=preset == options.calibrated and acceleration == 4,
                    )
                results["runs"].append({"split": split, "acceleration": acceleration, "preset": preset,
                                        "dir": str(run_dir), "wall_s": float((run_dir / "wall_seconds.txt").read_text())})
    tables = write_report(options.out, results)
    (options.out / "results.json").write_text(json.dumps({**results, "tables": tables}, indent=1, sort_keys=True))
    print((options.out / "results.md").read_text())
    return 0


def write_report(out: Path, results: dict) -> list[dict]:
    lines = ["# Anatomy benchmark", "", "PSNR (dB) mean ± std over slices; SSIM and NMSE means; NFE = network "
             "evaluations per item; R = effective acceleration (mean over slices); λ of the CS baselines "
             "chosen on the validation split.", ""]
    tables = []
    for split, title in SPLITS.items():
        runs = [r for r in results["runs"] if r["split"] == split]
        if not runs:
            continue
        lines += [f"## {title}", ""]
        for acceleration in sorted({r["acceleration"] for r in runs}):
            by_preset = {r["preset"]: read_metrics(Path(r["dir"]) / "metrics.csv") for r in runs if r["acceleration"] == acceleration}
            dirs = {r["preset"]: r["dir"] for r in runs if r["acceleration"] == acceleration}
            walls = {r["preset"]: r["wall_s"] for r in runs if r["acceleration"] == acceleration}
            snrs = sorted({float(row["snr_db"]) for rows in by_preset.values() for row in rows}, reverse=True)
            for snr in snrs:
                lines += [f"### {acceleration}× random lines, {snr:g} dB", "",
                          "| method | PSNR | SSIM | NMSE | NFE | R | wall s | sample PSNR | mean's gain | raw 90 % cov. | "
                          "calibrated 90 % cov. | median abs(error)/std | Spearman |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
                base = next(iter(by_preset.values()))  # the run that computed the baselines
                base = [r for r in base if float(r["snr_db"]) == snr]
                accel = stats(base, "acceleration")[0]
                for method, label in METHODS.items():
                    p, ps = stats(base, f"{method}_psnr")
                    if math.isfinite(p):
                        s_, n_ = stats(base, f"{method}_ssim")[0], stats(base, f"{method}_nmse")[0]
                        lines.append(f"| {label} | {p:.2f} ± {ps:.2f} | {s_:.4f} | {n_:.4f} | – | {accel:.2f} | | | | | | | |")
                        tables.append({"split": split, "R": acceleration, "snr": snr, "method": method, "psnr": p,
                                       "psnr_std": ps, "ssim": s_, "nmse": n_, "acceleration": accel})
                for preset, rows in by_preset.items():
                    nfe = stats([r for r in rows if float(r["snr_db"]) == snr], "nfe")[0]
                    slices = [r for r in read_metrics(Path(dirs[preset]) / "slice_metrics.csv") if float(r["snr_db"]) == snr]
                    p, ps = stats(slices, "recon_psnr")
                    s_, n_ = stats(slices, "recon_ssim")[0], stats(slices, "recon_nmse")[0]
                    spread = {k: stats(slices, k)[0] for k in SPREAD}
                    calibrated = spread["calibrated_coverage_90"]
                    shown = (f"{spread['sample_psnr']:.2f} | {spread['mean_gain_db']:+.2f} | {spread['coverage_90']:.1%} | "
                             f"{'–' if not math.isfinite(calibrated) else f'{calibrated:.1%}'} | {spread['error_std_ratio']:.2f} | "
                             f"{spread['spearman']:.2f}") if math.isfinite(spread["coverage_90"]) else "– | – | – | – | – | –"
                    lines.append(f"| prior, {preset} | {p:.2f} ± {ps:.2f} | {s_:.4f} | {n_:.4f} | {nfe:.1f} | "
                                 f"{accel:.2f} | {walls[preset]:.0f} | {shown} |")
                    tables.append({"split": split, "R": acceleration, "snr": snr, "method": f"recon_{preset}", "psnr": p,
                                   "psnr_std": ps, "ssim": s_, "nmse": n_, "nfe": nfe, "acceleration": accel, **spread})
                lines.append("")
    lines += ["λ per acceleration and SNR (validation split):", ""]
    for acceleration, record in results["tuning"].items():
        lines.append(f"- {acceleration}×: `{json.dumps(record['cs_lambdas'], sort_keys=True)}` "
                     f"(files: {', '.join(record['files'])})")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    return tables


if __name__ == "__main__":
    sys.exit(main())
