#!/usr/bin/env python
"""Robustness: the prior against a supervised network (E2E-VarNet) and classical methods when the
test data or the measurement differ from what the supervised network was trained on.

VarNet (``demo/varnet.ckpt``, ``configs/train_varnet.yaml``) was trained on the prior's own
training slabs with 4× random lines (8 % centre) at 20 and 5 dB. Every method runs on the same
items, masks and noise draws (one ``predict`` run per setting computes the baselines and VarNet
beside the first preset; the other presets see the same seeded measurements):

* in distribution: 4× random lines at 20 and 5 dB (MNI152 test slabs);
* shifted: 8× and 2× random lines, equispaced lines at 4× (``CsgmLineMask``), a 2-D
  variable-density Poisson mask at 4×, horizontal instead of vertical lines (``TransposedMask``),
  0 dB, and another subject (``demo/data/test_other``), each at 20 dB unless said.

λ of TV and L1-wavelet is tuned per setting on the validation split (``demo/data/val``; the other
subject has no validation data of its own and uses the 4× / 20 dB λ). The drop of a shifted setting
is measured from the in-distribution setting at the same SNR (0 dB: from 5 dB). Writes
``results.md``, ``results.json`` and ``robustness.png`` under ``--out``; reruns resume.

    python scripts/robustness_benchmark.py --config configs/demo.yaml --varnet demo/varnet.ckpt
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lit_sampler.cli import build_cli
from lit_sampler.evaluation.tuning import tune_cs_lambdas
from lit_sampler.tools.frontier import override_args, predict_into, read_metrics


def random_lines(acceleration: float, centre: float = 0.08) -> dict:
    return {"class_path": "lit_sampler.physics.masks.RandomLineMask",
            "init_args": {"center_fractions": [centre], "accelerations": [acceleration]}}


@dataclass(frozen=True)
class Setting:
    name: str
    title: str
    mask: dict
    snr: float
    split: str = "test"
    reference: str | None = None  # the in-distribution setting its drop is measured from

    @property
    def shifted(self) -> bool:
        return self.reference is not None


SETTINGS = (
    Setting("in_4x_20dB", "in distribution: 4× random lines, 20 dB", random_lines(4), 20),
    Setting("in_4x_5dB", "in distribution: 4× random lines, 5 dB", random_lines(4), 5),
    Setting("random_8x", "8× random lines (4 % centre)", random_lines(8, 0.04), 20, reference="in_4x_20dB"),
    Setting("random_2x", "2× random lines", random_lines(2), 20, reference="in_4x_20dB"),
    Setting("equispaced_4x", "equispaced lines 4× (CsgmLineMask)",
            {"class_path": "lit_sampler.physics.masks.CsgmLineMask", "init_args": {"acceleration": 4}}, 20, reference="in_4x_20dB"),
    Setting("poisson_4x", "2-D variable-density Poisson 4×",
            {"class_path": "lit_sampler.physics.masks.VariableDensityMask", "init_args": {"accelerations": [4], "calib_size": 12}},
            20, reference="in_4x_20dB"),
    Setting("horizontal_4x", "horizontal lines 4× (phase encoding turned)",
            {"class_path": "lit_sampler.physics.masks.TransposedMask", "init_args": {"mask": random_lines(4)}}, 20,
            reference="in_4x_20dB"),
    Setting("snr_0dB", "4× random lines, 0 dB", random_lines(4), 0, reference="in_4x_5dB"),
    Setting("other_subject", "other subject (dipy T1), 4× random lines, 20 dB", random_lines(4), 20,
            split="test_other", reference="in_4x_20dB"),
)
METHODS = {"zero_filled": "zero-filled", "cg_sense": "CG-SENSE", "l1_wavelet": "L1-wavelet", "total_variation": "TV",
           "varnet": "VarNet"}


def data_args(setting: Setting, data_root: Path, split: str | None = None) -> list[str]:
    return [f"--data.init_args.mask={json.dumps(setting.mask)}", f"--data.init_args.snr_range=[{setting.snr:g}]",
            f"--data.init_args.data_path={data_root / (split or setting.split)}", "--data.init_args.slices=null"]


def tune(config: list[str], setting: Setting, data_root: Path, out: Path) -> dict:
    """λ per CS method for this setting's mask and SNR, on the validation split (cached)."""
    path = out / "lambdas" / f"{setting.name if setting.split == 'test' else 'in_4x_20dB'}.json"
    if path.exists():
        return json.loads(path.read_text())
    tuned_setting = setting if setting.split == "test" else SETTINGS[0]
    cli = build_cli(config + data_args(tuned_setting, data_root, "val") + ["--data.init_args.num_samples=1",
                                                                          "--trainer.logger=false"], run=False)
    cli.datamodule.setup("predict")
    record = tune_cs_lambdas(cli.datamodule.predict_dataloader())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True))
    return record


def column(rows: list[dict], name: str) -> np.ndarray:
    values = np.array([float(r[name]) for r in rows if r.get(name) not in (None, "", "nan")], dtype=float)
    return values[np.isfinite(values)]


def collect(setting: Setting, runs: dict[str, Path]) -> dict[str, dict]:
    """Per method: PSNR/SSIM per slice (the prior: its posterior mean), NFE, effective acceleration."""
    first = next(iter(runs.values()))
    items = [r for r in read_metrics(first / "metrics.csv") if r["sample_idx"] == "0"]
    out = {}
    for method, label in METHODS.items():
        psnr = column(items, f"{method}_psnr")
        if psnr.size:
            out[label] = {"psnr": psnr.tolist(), "ssim": column(items, f"{method}_ssim").tolist(), "nfe": None}
    for preset, run in runs.items():
        slices = read_metrics(run / "slice_metrics.csv")
        out[f"prior, {preset}"] = {"psnr": column(slices, "recon_psnr").tolist(), "ssim": column(slices, "recon_ssim").tolist(),
                                   "nfe": float(column(read_metrics(run / "metrics.csv"), "nfe").mean())}
    acceleration = float(column(items, "acceleration").mean())
    for record in out.values():
        record["acceleration"] = acceleration
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("lightning_logs/robustness"))
    parser.add_argument("--data-root", type=Path, default=Path("demo/data"))
    parser.add_argument("--varnet", default="demo/varnet.ckpt", help="the supervised peer's checkpoint")
    parser.add_argument("--presets", nargs="+", default=["balanced", "fast"])
    parser.add_argument("--num-samples", type=int, default=4, help="posterior samples per slice (the prior's mean)")
    parser.add_argument("--settings", nargs="+", default=[s.name for s in SETTINGS])
    options, config = parser.parse_known_args(argv)
    chosen = [s for s in SETTINGS if s.name in options.settings]
    varnet = {"class_path": "lit_sampler.models.varnet.VarNetBaseline", "init_args": {"checkpoint": options.varnet}}
    results = {}
    for setting in chosen:
        record = tune(config, setting, options.data_root, options.out)
        runs = {}
        for index, preset in enumerate(options.presets):
            run_dir = options.out / setting.name / preset
            overrides = {"preset": preset}
            if index == 0:  # baselines and VarNet once per setting, on the same measurements
                overrides.update(cs_lambdas=record["cs_lambdas"], varnet=varnet)
            else:
                overrides.update(cs_lambdas=None, cg_iterations=0)
            if not (run_dir / "slice_metrics.csv").exists():
                print(f"== {setting.name}: {preset}")
                predict_into(lambda a: build_cli(a, run=False),
                             config + data_args(setting, options.data_root) + override_args(overrides)
                             + [f"--data.init_args.num_samples={options.num_samples}"], run_dir, figure_slices=1,
                             calibration=False)
            runs[preset] = run_dir
        results[setting.name] = {"title": setting.title, "reference": setting.reference,
                                 "cs_lambdas": record["cs_lambdas"], "methods": collect(setting, runs)}
    table = summarise(results)
    (options.out / "results.json").write_text(json.dumps({"settings": results, "table": table}, indent=1))
    (options.out / "results.md").write_text(report(results, table))
    plot(options.out / "robustness.png", results)
    print((options.out / "results.md").read_text())
    return 0


def summarise(results: dict) -> dict:
    """Per method: mean PSNR per setting, drop per shifted setting, wins against VarNet."""
    table: dict = {}
    for name, result in results.items():
        for method, record in result["methods"].items():
            entry = table.setdefault(method, {"psnr": {}, "drop": {}})
            entry["psnr"][name] = float(np.mean(record["psnr"]))
    for method, entry in table.items():
        for name, result in results.items():
            reference = result["reference"]
            if reference and reference in entry["psnr"] and name in entry["psnr"]:
                entry["drop"][name] = entry["psnr"][reference] - entry["psnr"][name]
        drops = list(entry["drop"].values())
        entry["mean_drop"] = float(np.mean(drops)) if drops else math.nan
    return table


def report(results: dict, table: dict) -> str:
    lines = ["# Robustness benchmark", "",
             "PSNR (dB) and SSIM: mean ± std over slices (the prior: the posterior mean of its samples); "
             "R: effective acceleration; NFE: network calls per sample; drop: PSNR lost against the "
             "in-distribution setting at the same SNR (0 dB: against 5 dB).", ""]
    for name, result in results.items():
        lines += [f"## {result['title']}", "", "| method | PSNR | SSIM | R | NFE | drop |", "|---|---|---|---|---|---|"]
        for method, record in result["methods"].items():
            psnr, ssim = np.array(record["psnr"]), np.array(record["ssim"])
            drop = table[method]["drop"].get(name)
            nfe = "–" if record["nfe"] is None else f"{record['nfe']:.1f}"
            drop_text = "–" if drop is None else f"{drop:+.2f}"
            lines.append(f"| {method} | {psnr.mean():.2f} ± {psnr.std():.2f} | {ssim.mean():.4f} ± {ssim.std():.4f} | "
                         f"{record['acceleration']:.2f} | {nfe} | {drop_text} |")
        lines.append("")
    shifted = [n for n, r in results.items() if r["reference"]]
    lines += ["## Summary", "", "| method | " + " | ".join(shifted) + " | mean drop |", "|---|" + "---|" * (len(shifted) + 1)]
    for method, entry in table.items():
        cells = [f"{entry['psnr'][n]:.2f}" if n in entry["psnr"] else "–" for n in shifted]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {entry['mean_drop']:.2f} |")
    if "VarNet" in table:
        for method in [m for m in table if m.startswith("prior")]:
            wins = [n for n in shifted if n in table[method]["psnr"] and n in table["VarNet"]["psnr"]
                    and table[method]["psnr"][n] > table["VarNet"]["psnr"][n]]
            lines.append("")
            lines.append(f"{method}: beats VarNet on {len(wins)} of {len(shifted)} shifted settings ({', '.join(wins) or 'none'}); "
                         f"mean drop {table[method]['mean_drop']:.2f} dB vs VarNet's {table['VarNet']['mean_drop']:.2f} dB.")
    return "\n".join(lines) + "\n"


def plot(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lit_sampler.outputs.figures import save_png

    names = list(results)
    methods = list(dict.fromkeys(m for r in results.values() for m in r["methods"]))
    fig, axis = plt.subplots(figsize=(1.1 * len(names) + 3, 4.2))
    width = 0.8 / max(len(methods), 1)
    for index, method in enumerate(methods):
        xs = [i + (index - (len(methods) - 1) / 2) * width for i, n in enumerate(names) if method in results[n]["methods"]]
        ys = [np.mean(results[n]["methods"][method]["psnr"]) for n in names if method in results[n]["methods"]]
        axis.bar(xs, ys, width=width, label=method)
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    axis.set_ylabel("PSNR (dB), mean over slices")
    low = min(np.mean(r["methods"][m]["psnr"]) for r in results.values() for m in r["methods"])
    axis.set_ylim(max(0.0, low - 2), None)
    axis.legend(fontsize=7, ncol=2)
    axis.grid(axis="y", alpha=0.3)
    save_png(fig, path)


if __name__ == "__main__":
    sys.exit(main())
