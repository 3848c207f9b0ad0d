"""End-of-run assembly (rank 0): volume files, metric tables, the figure and TensorBoard.

Every table is built here, once, from the item shards (the one metrics path: ``predict_step``
computes each item's values once and stores them in its shard), so the tables cover resumed runs and
do not depend on how the items were batched or spread over processes.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_bytes
from ..evaluation.metrics import QUALITY, volume_metrics
from .figures import figure_panels, log_to_tensorboard, prior_panels, save_figure
from ..physics.noise import snr_label
from ..sampling.baselines import BASELINES, METHODS
from .slice_report import (
    coverage_curve, format_uncertainty, save_calibration_figure, slice_rows, uncertainty_summary,
)
from .volumes import add_interval, build_volume, group_volumes, shard_order, write_prior_samples, write_targets, write_volume

log = logging.getLogger(__name__)

STATS = ("nfe", "operator_applications", "acceleration")  # per item, averaged per SNR beside the metrics


def assemble_run(
    run_dir: Path,
    shards: list[dict[str, Any]],
    settings: dict[str, Any],
    logger: Any = None,
    figure_slices: int = 2,
    save_samples: bool = True,
    volume_attrs: dict[str, dict[str, Any]] | None = None,
    export: tuple[str, ...] = (),
    interval: tuple[Any, float] | None = None,
) -> None:
    """Turn the item shards of a run into its user-facing outputs (see :mod:`lit_sampler.outputs.writer`).

    Everything is computed from the shards sorted by item, so the files are bit-identical however
    the items were computed: in one run or resumed, in any order, batch size or number of processes.
    ``export`` (``"nifti"``, ``"png"``) also writes viewer-ready copies (:mod:`lit_sampler.outputs.export`),
    with the voxel size of ``volume_attrs[fname]["voxel_size_mm"]`` when known. ``interval``:
    ``(calibration, level)`` (:class:`lit_sampler.evaluation.calibration.Calibration`): the calibrated interval
    at that level goes into every volume file and the figure, its coverage into the tables and
    ``calibration.png``.
    """
    if not shards:
        log.warning("no finished items in %s: nothing to assemble", run_dir)
        return
    if shards[0]["fname"] == "prior":
        write_prior_samples(run_dir, shards, settings)
        save_figure(run_dir / "figure.png", prior_panels(shards, figure_slices * 4))
        return
    volumes = [build_volume(group) for group in group_volumes(shards)]
    calibration, level = interval if interval is not None else (None, None)
    for volume in volumes:
        if calibration is not None and max(volume["num_samples"]) > 1:
            add_interval(volume, calibration.scale(snr_label(volume["snr_db"]), level), level)
    for volume in volumes:
        write_volume(run_dir, volume, settings, save_samples)
    if export:
        from .export import export_volume

        for volume in volumes:
            voxel = (volume_attrs or {}).get(volume["fname"], {}).get("voxel_size_mm")
            export_volume(run_dir, volume, export, voxel)
    write_targets(run_dir, volumes, volume_attrs or {})
    write_csv(run_dir / "metrics.csv", [metrics_row(shard) for shard in sorted(shards, key=shard_order)])
    volume_rows = [row for row in (volume_metrics_row(v) for v in volumes) if row]
    if volume_rows:
        write_csv(run_dir / "volume_metrics.csv", volume_rows)
    per_slice = [row for volume in volumes for row in slice_rows(
        volume, {volume["interval"]["level"]: volume["interval"]["k"]} if "interval" in volume else None)]
    if per_slice:
        write_csv(run_dir / "slice_metrics.csv", per_slice)
    table = summary_rows(summarise_shards(shards), volume_rows, per_slice)
    if table:
        write_csv(run_dir / "summary.csv", table)
        print(format_summary(table))
        spread = format_uncertainty(table)
        if spread:
            print(spread)
    curve = coverage_curve(volumes, calibration)
    if curve:
        write_csv(run_dir / "coverage.csv", curve)
        save_calibration_figure(run_dir / "calibration.png", curve)
    panels = figure_panels(volumes, figure_slices)
    save_figure(run_dir / "figure.png", panels)
    log_to_tensorboard(logger, shards, volume_rows, panels, table)
    print(f"results in {run_dir}")


def metrics_row(shard: dict[str, Any]) -> dict[str, Any]:
    row = {key: shard[key] for key in ("fname", "slice_num", "snr_db", "sample_idx", "status", "diverged_level")}
    row.update(scale=shard.get("scale"), noise_var=shard.get("noise_var"))
    row.update({key: shard[key] for key in (*STATS, "start_level") if key in shard})
    row.update(shard.get("metrics", {}))
    return row


def summarise(snrs: torch.Tensor, values: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """Per-SNR means of every ``{method}_{metric}`` column; failed items (NaN) are counted, not averaged."""
    rows = []
    for snr in sorted(set(snrs.tolist()), reverse=True):
        selected = snrs == snr
        row: dict[str, Any] = {"snr": snr_label(snr), "snr_db": snr, "items": int(selected.sum())}
        for name, column in values.items():
            picked = column[selected]
            picked = picked[~torch.isnan(picked)]
            if picked.numel():
                row[name] = float(picked.mean())
        recon = values.get("recon_psnr")  # (not `row`: when every item failed, no mean is there)
        row["failed"] = int(torch.isnan(recon[selected]).sum()) if recon is not None else 0
        rows.append(row)
    return rows


def summarise_shards(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-SNR means of the per-item metrics (:func:`summarise`), taken over the shards in item
    order: the sums run in one fixed order, so ``summary.csv`` does not depend on which items an
    earlier run finished or how the ranks gathered them."""
    rows = [shard for shard in sorted(shards, key=shard_order) if "metrics" in shard]
    if not rows:
        return []
    present = {name for shard in rows for name in shard["metrics"]}
    names = [f"{m}_{q}" for m in METHODS for q in QUALITY if f"{m}_{q}" in present]
    names += sorted(present - set(names))
    snrs = torch.tensor([float(shard["snr_db"]) for shard in rows], dtype=torch.float64)
    values = {
        name: torch.tensor([float(shard["metrics"].get(name, math.nan)) for shard in rows], dtype=torch.float64)
        for name in names
    }
    table = summarise(snrs, values)
    for row in table:  # network calls and effective acceleration beside every number
        for key in STATS:
            picked = [float(s[key]) for s in rows if key in s and float(s["snr_db"]) == row["snr_db"]]
            if picked:
                row[f"mean_{key}"] = float(np.mean(picked))
    return table


def volume_metrics_row(volume: dict[str, Any]) -> dict[str, Any] | None:
    """fastMRI ``evaluate.py`` numbers of one volume (data range: the target volume's maximum)."""
    if "target" not in volume:
        return None
    # evaluate.py centre-crops target and reconstruction to (W, W) first (height clipped to H)
    crop = evaluate_crop(*volume["mean"].shape[-2:])
    target = volume["target"].abs().double()[..., crop[0], crop[1]]
    volume = {**volume, "mean": volume["mean"][..., crop[0], crop[1]], "std": volume["std"][..., crop[0], crop[1]],
              **{name: volume[name][..., crop[0], crop[1]] for name in BASELINES if volume.get(name) is not None}}
    row: dict[str, Any] = {"fname": volume["fname"], "snr_db": volume["snr_db"], "slices": len(volume["slices"])}
    estimates = {"recon": volume["mean"], **{name: volume.get(name) for name in BASELINES}}
    for method, estimate in estimates.items():
        if estimate is None or not torch.isfinite(estimate.abs()).all():
            continue
        for name, value in volume_metrics(target, estimate.abs().double()).items():
            row[f"{method}_{name}"] = value
    if max(volume["num_samples"]) > 1 and torch.isfinite(volume["mean"].abs()).all():
        row["std_error_corr"] = std_error_correlation(target, volume["mean"].abs().double(), volume["std"].double())
    return row


def evaluate_crop(height: int, width: int) -> tuple[slice, slice]:
    """fastMRI ``evaluate.py``'s centre crop to ``(W, W)`` (``transforms.center_crop``: start at
    ``(H − W) // 2``), its height clipped to ``H`` when the image is wider than tall."""
    rows = min(height, width)
    top = (height - rows) // 2
    return slice(top, top + rows), slice(0, width)


def std_error_correlation(target: torch.Tensor, estimate: torch.Tensor, std: torch.Tensor) -> float:
    """Mean over slices of the Pearson correlation between the posterior std and |error| of the
    posterior mean, over the object (pixels above 5 % of the slice's target maximum): how well the
    sampler's uncertainty points at its mistakes."""
    values = []
    for t, e, s in zip(target, estimate, std):
        support = t > 0.05 * t.max()
        if support.sum() < 3:
            continue
        error = (e - t).abs()[support]
        spread = s[support]
        if float(error.std()) == 0 or float(spread.std()) == 0:
            continue
        values.append(float(torch.corrcoef(torch.stack([error, spread]))[0, 1]))
    return float(np.mean(values)) if values else math.nan


def summary_rows(summary: list[dict[str, Any]], volume_rows: list[dict[str, Any]],
                 per_slice: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Per SNR: means of the per-item metrics (the module's), of the per-slice ones and of the
    per-volume fastMRI metrics. ``recon_*`` is the reconstruction the user receives, the posterior
    mean (per slice); each sample's own numbers are ``sample_*`` (the items' ``recon_*``)."""
    table = []
    for row in summary:
        merged = {("sample_" + k[len("recon_"):] if k.startswith("recon_") else k): v for k, v in row.items()}
        merged.update(uncertainty_summary(list(per_slice), row["snr_db"]))
        volumes = [v for v in volume_rows if v["snr_db"] == row["snr_db"]]
        for key in sorted({k for v in volumes for k in v if "_" in k and k not in ("snr_db",)}):
            values = [v[key] for v in volumes if key in v]
            if values and all(isinstance(x, float) for x in values):
                merged[f"volume_{key}"] = float(np.mean(values))
        table.append(merged)
    return table


def format_summary(table: list[dict[str, Any]]) -> str:
    """A plain-text table: one line per SNR and method (per-slice means; volume PSNR in brackets)."""
    lines = [
        f"{'SNR':>9}  {'method':<15} {'PSNR (dB)':>9} {'SSIM':>7} {'NMSE':>9} {'vol PSNR':>9} {'items':>6} {'failed':>6}"
        f" {'NFE':>6} {'R eff':>6}"
    ]
    for row in table:
        for method in METHODS:
            # the recon line also when every item failed (no mean to show, but the count)
            if f"{method}_psnr" not in row and not (method == "recon" and row.get("failed")):
                continue
            label = f"{row['snr_db']:g} dB" if math.isfinite(row["snr_db"]) else "no added noise"
            nfe = f"{row['mean_nfe']:6.1f}" if method == "recon" and "mean_nfe" in row else f"{'':>6}"
            lines.append(
                f"{label:>9}  {method:<15} {row.get(f'{method}_psnr', math.nan):9.2f} "
                f"{row.get(f'{method}_ssim', math.nan):7.4f} "
                f"{row.get(f'{method}_nmse', math.nan):9.5f} {row.get(f'volume_{method}_psnr', math.nan):9.2f} "
                f"{row['items']:6d} {row['failed'] if method == 'recon' else 0:6d} {nfe} {row.get('mean_acceleration', math.nan):6.2f}"
            )
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows (dicts) to CSV, atomically; columns are the union of the rows' keys in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()})
    atomic_write_bytes(path, text.getvalue().encode())
