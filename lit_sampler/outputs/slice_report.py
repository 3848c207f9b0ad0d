"""Per-slice numbers of a run's volumes: the quality of the reconstruction the user receives (the
posterior mean) and how good the samples' spread is as an error bar (:mod:`lit_sampler.evaluation.uncertainty`),
their per-SNR means, the coverage curve and ``calibration.png``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..evaluation.calibration import DEFAULT_LEVELS
from ..evaluation.metrics import item_quality
from ..evaluation.uncertainty import coverage, ideal_mean_gain, normal_multiplier, object_support, slice_uncertainty
from ..physics.noise import snr_label

# per-SNR means of the per-slice uncertainty numbers that summary.csv and TensorBoard carry
UNCERTAINTY_COLUMNS = ("sample_psnr", "mean_gain_db", "coverage_90", "coverage_95", "error_std_ratio", "spearman",
                       "ause", "ause_random")


def slice_rows(volume: dict[str, Any], scales: Optional[dict[float, float]] = None) -> list[dict[str, Any]]:
    """One row per slice with a target: ``recon_psnr|ssim|nmse`` of ``|mean|`` and, with ≥ 2 usable
    samples, the uncertainty numbers (``scales``: level → calibrated k, adds calibrated coverage and
    the mean interval width in normalised units, i.e. divided by the slice's scale)."""
    if "target" not in volume:
        return []
    target = volume["target"].abs().double()
    quality = item_quality(target, volume["mean"].abs().double())
    rows = []
    for i, slice_num in enumerate(volume["slices"]):
        row: dict[str, Any] = {"fname": volume["fname"], "slice_num": slice_num, "snr_db": volume["snr_db"]}
        row.update({f"recon_{name}": float(values[i]) for name, values in quality.items()})
        samples = volume["slice_samples"][i]
        row["num_samples"] = int(samples.shape[0])
        if samples.shape[0] >= 2 and math.isfinite(float(quality["psnr"][i])):
            numbers = slice_uncertainty(target[i], samples, calibrated=scales)
            for name in [n for n in numbers if n.startswith("calibrated_width")]:
                numbers[name] /= volume["scale"][i]
            row.update(numbers)
        rows.append(row)
    return rows


def uncertainty_summary(rows: list[dict[str, Any]], snr_db: float) -> dict[str, float]:
    """Per-SNR means of the slices' numbers (``recon_*`` of the posterior mean, the uncertainty
    columns, calibrated ones when present) and ``ideal_gain_db`` for their number of samples."""
    picked = [row for row in rows if row["snr_db"] == snr_db]
    out: dict[str, float] = {}
    names = sorted({name for row in picked for name, value in row.items() if isinstance(value, float)} - {"snr_db"})
    for name in names:
        values = [row[name] for row in picked if name in row and math.isfinite(row[name])]
        if values:
            out[name] = float(np.mean(values))
    counts = [row["num_samples"] for row in picked if "coverage_90" in row]
    if counts:
        out["ideal_gain_db"] = ideal_mean_gain(int(np.median(counts)))
    return out


def coverage_curve(volumes: list[dict[str, Any]], calibration: Any = None,
                   levels=DEFAULT_LEVELS) -> list[dict[str, Any]]:
    """Per SNR and nominal level: the mean over slices of the coverage of ``|mean| ± z·std`` (raw) and,
    with a calibration that has the level, of ``|mean| ± k·std`` (calibrated)."""
    rows = []
    for snr in sorted({v["snr_db"] for v in volumes}, reverse=True):
        slices = [(v["target"][i].abs().double(), v["mean"][i].abs().double(), v["std"][i].double())
                  for v in volumes if v["snr_db"] == snr and "target" in v
                  for i in range(len(v["slices"])) if v["slice_samples"][i].shape[0] >= 2]
        if not slices:
            continue
        label = snr_label(None if math.isinf(snr) else snr)
        for level in levels:
            row: dict[str, Any] = {"snr": label, "snr_db": snr, "level": level}
            row["raw"] = float(np.mean([coverage(t, m, s, normal_multiplier(level), object_support(t)) for t, m, s in slices]))
            k = None if calibration is None else calibration.k.get(label, {}).get(float(level))
            if k is not None:
                row["k"] = k
                row["calibrated"] = float(np.mean([coverage(t, m, s, k, object_support(t)) for t, m, s in slices]))
            rows.append(row)
    return rows


def save_calibration_figure(path: Path, curve: list[dict[str, Any]]) -> None:
    """``calibration.png``: observed against nominal coverage per SNR, raw and calibrated."""
    if not curve:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import save_png

    fig, axis = plt.subplots(figsize=(4.6, 4.2))
    axis.plot([0.5, 1.0], [0.5, 1.0], color="0.6", lw=1, label="ideal")
    for index, snr in enumerate(dict.fromkeys(row["snr"] for row in curve)):
        rows = [row for row in curve if row["snr"] == snr]
        colour = f"C{index}"
        axis.plot([r["level"] for r in rows], [r["raw"] for r in rows], "o--", color=colour, label=f"{snr} raw (mean ± z·std)")
        calibrated = [r for r in rows if "calibrated" in r]
        if calibrated:
            axis.plot([r["level"] for r in calibrated], [r["calibrated"] for r in calibrated], "s-", color=colour,
                      label=f"{snr} calibrated (mean ± k·std)")
    axis.set_xlabel("nominal coverage")
    axis.set_ylabel("observed coverage (object pixels, mean over slices)")
    axis.set_xlim(0.48, 1.0)
    axis.set_ylim(0.0, 1.0)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    save_png(fig, path)


def format_uncertainty(table: list[dict[str, Any]]) -> str:
    """Per SNR: samples' PSNR, the mean's gain (ideal), coverage of the raw and calibrated intervals,
    median |error|/std, Spearman and AUSE (random order's in brackets)."""
    rows = [row for row in table if "coverage_90" in row]
    if not rows:
        return ""
    lines = [f"{'SNR':>9}  {'sample PSNR':>11} {'mean gain (ideal)':>17} {'cov 90/95 raw':>13} {'cov cal':>8} "
             f"{'|err|/std':>9} {'Spearman':>8} {'AUSE (random)':>14}"]
    for row in rows:
        label = f"{row['snr_db']:g} dB" if math.isfinite(row["snr_db"]) else "no added noise"
        calibrated = [name for name in row if name.startswith("calibrated_coverage_")]
        cal = f"{row[calibrated[0]]:8.1%}" if calibrated else f"{'–':>8}"
        lines.append(
            f"{label:>9}  {row['sample_psnr']:11.2f} {row['mean_gain_db']:+8.2f} ({row['ideal_gain_db']:+.2f} dB)"
            f" {row['coverage_90']:6.1%}/{row['coverage_95']:5.1%} {cal} {row['error_std_ratio']:9.2f}"
            f" {row['spearman']:8.2f} {row['ause']:6.3f} ({row['ause_random']:.3f})"
        )
    return "\n".join(lines)
