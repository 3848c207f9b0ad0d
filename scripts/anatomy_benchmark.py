#!/usr/bin/env python
"""The anatomy demo's benchmark: the prior beside the baselines users would pick instead.

1. λ of the compressed-sensing baselines (sigpy L1-wavelet, TV) chosen per acceleration and SNR on
   the **validation** split (:func:`lit_sampler.evaluation.tuning.tune_cs_lambdas`);
2. every method on the held-out **test** split (MNI152 test slabs) and, reported separately, on
   the other subject's slices (dipy; whole-head and zoomed partial-FOV views), at 4× (8 % centre)
   and 8× (4 % centre) random lines and the config's SNRs, on the same masks and noise draws:
   zero-filled, CG-SENSE, L1-wavelet, TV, and the prior with the ``reference`` (test split only:
   600 network calls a slice), ``balanced`` and ``fast`` presets (the baselines are computed in the
   first run of each split and acceleration);
3. ``results.md`` (tables: PSNR mean ± std over slices, SSIM, NMSE, network calls, effective
   acceleration; posterior std–error correlation) and ``results.json`` under ``--out``.

    python scripts/anatomy_benchmark.py --config configs/demo.yaml --out lightning_logs/anatomy_benchmark

Reruns resume: finished runs are kept (delete ``--out`` to start over).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

from lit_sampler.cli import build_cli
from lit_sampler.evaluation.tuning import DEFAULT_GRID, merge_records, tune_cs_lambdas
from lit_sampler.tools.frontier import override_args, predict_into

ACCELERATIONS = {4: 0.08, 8: 0.04}
SPLITS = {"test": "MNI152 test slabs (whole head)", "test_other": "other subject (dipy T1, whole + zoomed)"}
PRESETS = ("reference", "balanced", "fast")
METHODS = {"zero_filled": "zero-filled", "cg_sense": "CG-SENSE", "l1_wavelet": "L1-wavelet", "total_variation": "TV"}


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
                                                       "--data.init_args.slices=null", "--trainer.logger=false"], run=False)
    cli.datamodule.setup("predict")
    found = tune_cs_lambdas(cli.datamodule.predict_dataloader(), grid=missing)
    record = merge_records(record, found) if record else found
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True))
    return record


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


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
    parser.add_argument("--other-presets", nargs="+", default=["balanced", "fast"],
                        help="presets on test_other (default: not the 600-NFE reference)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS))
    parser.add_argument("--reference-accelerations", type=int, nargs="+", default=None,
                        help="run the reference preset only at these accelerations (default: all)")
    options, config = parser.parse_known_args(argv)
    fast_path = ["--model.init_args.batch_invariant=false"]  # batched network calls: results equal to rounding
    results = {"tuning": {}, "runs": []}
    for acceleration in options.accelerations:
        record = tune(config, options.data_root, acceleration, options.out)
        results["tuning"][acceleration] = {"cs_lambdas": record["cs_lambdas"], "files": record["files"]}
        for split in options.splits:
            presets = options.presets if split == "test" else options.other_presets
            if options.reference_accelerations is not None and acceleration not in options.reference_accelerations:
                presets = [p for p in presets if p != "reference"]
            for preset in presets:
                run_dir = options.out / f"{split}_{acceleration}x_{preset}"
                overrides = {"preset": preset}
                extra = []
                if preset == presets[0]:  # the baselines once per split and acceleration
                    overrides["cs_lambdas"] = record["cs_lambdas"]
                if preset == "reference":
                    extra.append("--data.init_args.num_samples=1")
                if not (run_dir / "metrics.csv").exists():
                    print(f"== {split} {acceleration}x {preset}")
                    predict_into(
                        lambda a: build_cli(a, run=False),
                        config + mask_args(acceleration) + fast_path + extra + override_args(overrides)
                        + [f"--data.init_args.data_path={options.data_root / split}", "--data.init_args.slices=null"],
                        run_dir,
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
            by_preset = {r["preset"]: read_rows(Path(r["dir"]) / "metrics.csv") for r in runs if r["acceleration"] == acceleration}
            volumes = {r["preset"]: Path(r["dir"]) / "volume_metrics.csv" for r in runs if r["acceleration"] == acceleration}
            walls = {r["preset"]: r["wall_s"] for r in runs if r["acceleration"] == acceleration}
            snrs = sorted({float(row["snr_db"]) for rows in by_preset.values() for row in rows}, reverse=True)
            for snr in snrs:
                lines += [f"### {acceleration}× random lines, {snr:g} dB", "",
                          "| method | PSNR | SSIM | NMSE | NFE | R | wall s |", "|---|---|---|---|---|---|---|"]
                base = next(iter(by_preset.values()))  # the run that computed the baselines
                base = [r for r in base if float(r["snr_db"]) == snr]
                accel = stats(base, "acceleration")[0]
                for method, label in METHODS.items():
                    p, ps = stats(base, f"{method}_psnr")
                    if math.isfinite(p):
                        s_, n_ = stats(base, f"{method}_ssim")[0], stats(base, f"{method}_nmse")[0]
                        lines.append(f"| {label} | {p:.2f} ± {ps:.2f} | {s_:.4f} | {n_:.4f} | – | {accel:.2f} | |")
                        tables.append({"split": split, "R": acceleration, "snr": snr, "method": method, "psnr": p,
                                       "psnr_std": ps, "ssim": s_, "nmse": n_, "acceleration": accel})
                for preset, rows in by_preset.items():
                    rows = [r for r in rows if float(r["snr_db"]) == snr]
                    p, ps = stats(rows, "recon_psnr")
                    s_, n_ = stats(rows, "recon_ssim")[0], stats(rows, "recon_nmse")[0]
                    nfe = stats(rows, "nfe")[0]
                    corr = ""
                    if volumes[preset].exists():
                        vrows = [v for v in read_rows(volumes[preset]) if float(v["snr_db"]) == snr]
                        c = stats(vrows, "std_error_corr")[0]
                        corr = f" (std–error corr {c:.2f})" if math.isfinite(c) else ""
                    lines.append(f"| prior, {preset}{corr} | {p:.2f} ± {ps:.2f} | {s_:.4f} | {n_:.4f} | {nfe:.1f} | "
                                 f"{accel:.2f} | {walls[preset]:.0f} |")
                    tables.append({"split": split, "R": acceleration, "snr": snr, "method": f"recon_{preset}", "psnr": p,
                                   "psnr_std": ps, "ssim": s_, "nmse": n_, "nfe": nfe, "acceleration": accel})
                lines.append("")
    lines += ["λ per acceleration and SNR (validation split):", ""]
    for acceleration, record in results["tuning"].items():
        lines.append(f"- {acceleration}×: `{json.dumps(record['cs_lambdas'], sort_keys=True)}` "
                     f"(files: {', '.join(record['files'])})")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    return tables


if __name__ == "__main__":
    sys.exit(main())
