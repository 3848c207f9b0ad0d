"""End-of-run assembly (rank 0): volume files, metric tables, the figure and TensorBoard images."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from .atomic import atomic_target, atomic_write_bytes
from .baselines import BASELINES, METHODS
from .metrics import volume_metrics
from .noise import snr_label

log = logging.getLogger(__name__)

ESTIMATES = METHODS
STATS = ("nfe", "acceleration")  # per item, averaged per SNR beside the metrics


def assemble_run(
    run_dir: Path,
    shards: list[dict[str, Any]],
    settings: dict[str, Any],
    logger: Any = None,
    figure_slices: int = 2,
    save_samples: bool = True,
    volume_attrs: dict[str, dict[str, Any]] | None = None,
    export: tuple[str, ...] = (),
) -> None:
    """Turn the item shards of a run into its user-facing outputs (see :mod:`lit_sampler.writer`).

    Everything is computed from the shards sorted by item, so the files are bit-identical however
    the items were computed: in one run or resumed, in any order, batch size or number of processes.
    ``export`` (``"nifti"``, ``"png"``) also writes viewer-ready copies (:mod:`lit_sampler.export`),
    with the voxel size of ``volume_attrs[fname]["voxel_size_mm"]`` when known.
    """
    if not shards:
        log.warning("no finished items in %s: nothing to assemble", run_dir)
        return
    if shards[0]["fname"] == "prior":
        write_prior_samples(run_dir, shards, settings)
        save_figure(run_dir / "figure.png", prior_panels(shards, figure_slices * 4))
        return
    volumes = [build_volume(group) for group in group_volumes(shards)]
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
    table = summary_rows(summarise_shards(shards), volume_rows)
    if table:
        write_csv(run_dir / "summary.csv", table)
        print(format_summary(table))
    panels = figure_panels(volumes, figure_slices)
    save_figure(run_dir / "figure.png", panels)
    log_to_tensorboard(logger, shards, volume_rows, panels)
    print(f"results in {run_dir}")


# ---------------------------------------------------------------------------- volumes
def shard_order(shard: dict[str, Any]) -> tuple:
    return (-shard["snr_db"], shard["fname"], shard["slice_num"], shard["sample_idx"])


def group_volumes(shards: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple, list] = defaultdict(list)
    for shard in sorted(shards, key=shard_order):
        groups[(-shard["snr_db"], shard["fname"])].append(shard)
    return list(groups.values())


def build_volume(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the slices of one (file, SNR); the reconstruction is the posterior mean over samples
    (diverged samples left out), ``std`` the per-pixel standard deviation of the samples."""
    by_slice: dict[int, list] = defaultdict(list)
    for shard in shards:
        by_slice[shard["slice_num"]].append(shard)
    slices = sorted(by_slice)
    samples, means, stds = [], [], []
    for s in slices:
        stack = torch.stack([item["reconstruction"] for item in by_slice[s]])
        usable = stack[[item["status"] == "ok" for item in by_slice[s]]]
        mean = usable.mean(dim=0) if len(usable) else torch.full_like(stack[0], complex(math.nan, math.nan))
        std = (usable - mean).abs().square().mean(dim=0).sqrt() if len(usable) else mean.abs()
        samples.append(stack)
        means.append(mean)
        stds.append(std)
    first = [by_slice[s][0] for s in slices]
    volume = {
        "fname": shards[0]["fname"],
        "snr_db": shards[0]["snr_db"],
        "slices": slices,
        "mean": torch.stack(means),
        "std": torch.stack(stds),
        "samples": torch.stack(samples) if len({len(x) for x in samples}) == 1 else None,
        "num_samples": [len(by_slice[s]) for s in slices],
        "failed": [sum(item["status"] != "ok" for item in by_slice[s]) for s in slices],
        "scale": [item["scale"] for item in first],
        "noise_var": [item["noise_var"] for item in first],
    }
    for name in ("target", *BASELINES, "mask"):
        if all(name in item for item in first):
            volume[name] = torch.stack([item[name] for item in first])
    return volume


def file_mask(masks: torch.Tensor) -> np.ndarray:
    """A volume's masks ``[S, ...]`` as stored: ``[W]`` (fastMRI's layout) when every slice has the
    same line mask, else ``[S, H, W]`` / ``[S, 1, W]``."""
    flat = masks.reshape(masks.shape[0], -1, masks.shape[-1]).float()
    lines = bool((flat == flat[:, :1]).all())  # every row the same: a phase-encode line mask
    if lines and bool((flat == flat[:1]).all()):
        return flat[0, 0].numpy().astype(np.float32)
    return (flat[:, :1] if lines else flat).numpy().astype(np.float32)


def write_targets(run_dir: Path, volumes: list[dict[str, Any]], volume_attrs: dict[str, dict[str, Any]]) -> None:
    """``targets/<file>.h5`` with exactly the reconstructed slices of each volume, the way fastMRI's
    ``evaluate.py`` reads targets: ``reconstruction_rss`` (multi-coil) or ``reconstruction_esc``
    (single-coil) holding our target magnitude (MVUE or RSS, as configured), attributes
    ``acquisition`` and ``acceleration`` when known, and ``max``."""
    done = set()
    for volume in volumes:
        if "target" not in volume or volume["fname"] in done:
            continue
        done.add(volume["fname"])
        attrs = volume_attrs.get(volume["fname"], {})
        key = "reconstruction_rss" if attrs.get("multicoil", True) else "reconstruction_esc"
        target = volume["target"].abs().numpy().astype(np.float32)
        path = run_dir / "targets" / volume["fname"]
        with atomic_target(path) as temporary, h5py.File(temporary, "w") as handle:
            handle[key] = target
            handle["slice_num"] = np.asarray(volume["slices"], dtype=np.int64)
            handle.attrs["max"] = float(target.max())
            for name in ("acquisition", "acceleration"):
                if name in attrs:
                    handle.attrs[name] = attrs[name]


def write_volume(run_dir: Path, volume: dict[str, Any], settings: dict[str, Any], save_samples: bool) -> Path:
    """``reconstructions/<snr>/<file>.h5``: fastMRI's ``reconstruction`` (magnitude of the posterior
    mean) plus the complex mean, std, samples and baselines, with the run's settings as attributes."""
    path = run_dir / "reconstructions" / snr_label(volume["snr_db"]) / volume["fname"]
    with atomic_target(path) as temporary:
        with h5py.File(temporary, "w") as handle:
            handle["reconstruction"] = volume["mean"].abs().numpy().astype(np.float32)
            handle["reconstruction_complex"] = volume["mean"].numpy().astype(np.complex64)
            if max(volume["num_samples"]) > 1:
                handle["std"] = volume["std"].numpy().astype(np.float32)
                if save_samples and volume["samples"] is not None:
                    handle["samples"] = volume["samples"].numpy().astype(np.complex64)
            for name in ("target", *BASELINES):
                if name in volume:
                    handle[name] = volume[name].abs().numpy().astype(np.float32)
            handle["slice_num"] = np.asarray(volume["slices"], dtype=np.int64)
            if "mask" in volume:
                handle["mask"] = file_mask(volume["mask"])
            handle["scale"] = np.asarray(volume["scale"], dtype=np.float64)
            handle["noise_var"] = np.asarray(volume["noise_var"], dtype=np.float64)
            handle["failed_samples"] = np.asarray(volume["failed"], dtype=np.int64)
            handle.attrs["snr_db"] = volume["snr_db"]
            for key, value in settings.items():
                handle.attrs[f"sampler.{key}"] = "null" if value is None else value if isinstance(value, (int, float, str, bool)) else str(value)
    return path


def write_prior_samples(run_dir: Path, shards: list[dict[str, Any]], settings: dict[str, Any]) -> Path:
    shards = sorted(shards, key=lambda s: s["sample_idx"])
    samples = torch.stack([s["sample"] for s in shards])
    path = run_dir / "samples.h5"
    with atomic_target(path) as temporary, h5py.File(temporary, "w") as handle:
        handle["samples"] = samples.numpy().astype(np.complex64)
        handle["magnitude"] = samples.abs().numpy().astype(np.float32)
        handle["diverged_level"] = np.asarray([s["diverged_level"] for s in shards])
        for key, value in settings.items():
            handle.attrs[f"sampler.{key}"] = "null" if value is None else value if isinstance(value, (int, float, str, bool)) else str(value)
    print(f"{len(shards)} prior samples in {path}")
    return path


# ---------------------------------------------------------------------------- tables
def metrics_row(shard: dict[str, Any]) -> dict[str, Any]:
    row = {key: shard[key] for key in ("fname", "slice_num", "snr_db", "sample_idx", "status", "diverged_level")}
    row.update(scale=shard.get("scale"), noise_var=shard.get("noise_var"))
    row.update({key: shard[key] for key in (*STATS, "start_level") if key in shard})
    row.update(shard.get("metrics", {}))
    return row


def summarise_shards(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-SNR means of the per-item metrics (the module's :func:`~lit_sampler.module.summarise`),
    taken over the shards in item order: the sums run in one fixed order, so ``summary.csv`` does
    not depend on which items an earlier run finished or how the ranks gathered them."""
    from .module import QUALITY, summarise

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


def summary_rows(summary: list[dict[str, Any]], volume_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per SNR: means of per-slice metrics (from the module) and of per-volume fastMRI metrics."""
    table = []
    for row in summary:
        merged = dict(row)
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
        for method in ESTIMATES:
            # the recon line also when every item failed (no mean to show, but the count)
            if f"{method}_psnr" not in row and not (method == "recon" and row.get("failed")):
                continue
            label = f"{row['snr_db']:g} dB" if math.isfinite(row["snr_db"]) else "no noise"
            nfe = f"{row['mean_nfe']:6.1f}" if method == "recon" and "mean_nfe" in row else f"{'':>6}"
            lines.append(
                f"{label:>9}  {method:<15} {row.get(f'{method}_psnr', math.nan):9.2f} "
                f"{row.get(f'{method}_ssim', math.nan):7.4f} "
                f"{row.get(f'{method}_nmse', math.nan):9.5f} {row.get(f'volume_{method}_psnr', math.nan):9.2f} "
                f"{row['items']:6d} {row['failed'] if method == 'recon' else 0:6d} {nfe} {row.get('mean_acceleration', math.nan):6.2f}"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- pictures
def figure_panels(volumes: list[dict[str, Any]], figure_slices: int) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """Rows (one per SNR and shown slice) of (title, magnitude image) panels:
    target | zero-filled | CS (L1-wavelet, else TV, when run) | reconstruction | error | std."""
    rows = []
    by_snr: dict[float, list] = defaultdict(list)
    for volume in volumes:
        by_snr[volume["snr_db"]].append(volume)
    for snr in sorted(by_snr, reverse=True):
        shown = [(v, i) for v in by_snr[snr] for i in range(len(v["slices"]))][:figure_slices]
        for volume, i in shown:
            recon = volume["mean"][i].abs().numpy()
            panels = []
            if "target" in volume:
                target = volume["target"][i].abs().numpy()
                panels.append(("target", target))
            if "zero_filled" in volume:
                panels.append(("zero-filled", volume["zero_filled"][i].abs().numpy()))
            for name, title in (("l1_wavelet", "L1-wavelet"), ("total_variation", "TV")):
                if name in volume:
                    panels.append((title, volume[name][i].abs().numpy()))
                    break
            panels.append(("reconstruction", recon))
            if "target" in volume:
                panels.append(("|error|", np.abs(recon - target)))
            if max(volume["num_samples"]) > 1:
                panels.append(("std", volume["std"][i].numpy()))
            label = f"{snr:g} dB" if math.isfinite(snr) else "no noise"
            rows.append((f"{volume['fname']} s{volume['slices'][i]} · {label}", panels))
    return rows


def prior_panels(shards: list[dict[str, Any]], count: int) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    shown = sorted(shards, key=lambda s: s["sample_idx"])[:count]
    panels = [(f"sample {s['sample_idx']}", s["sample"][0].abs().numpy()) for s in shown]
    return [("prior samples", panels[i : i + 4]) for i in range(0, len(panels), 4)]


def save_figure(path: Path, rows: list[tuple[str, list[tuple[str, np.ndarray]]]]) -> None:
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.4 * columns, 2.5 * len(rows)), squeeze=False)
    for r, (label, panels) in enumerate(rows):
        vmax = float(np.nanmax(panels[0][1])) or 1.0
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c >= len(panels):
                axis.axis("off")
                continue
            title, image = panels[c]
            axis.imshow(image, cmap="gray", vmin=0, vmax=vmax if title not in ("|error|", "std") else None)
            axis.set_title(title, fontsize=9)
        axes[r][0].set_ylabel(label, fontsize=8)
    save_png(fig, path)


def save_png(fig, path: Path) -> None:
    """Write a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        with atomic_target(path) as temporary:
            fig.savefig(temporary, dpi=110, format="png")
    finally:
        plt.close(fig)


def log_to_tensorboard(logger: Any, shards, volume_rows, panels) -> None:
    """Per-slice and per-volume scalars and the image grids, when the logger is TensorBoard."""
    experiment = getattr(logger, "experiment", None)
    if experiment is None or not hasattr(experiment, "add_scalar"):
        return
    for shard in sorted(shards, key=shard_order):
        for name, value in shard.get("metrics", {}).items():
            if shard["sample_idx"] == 0 and math.isfinite(value):
                tag = f"slices/{snr_label(shard['snr_db'])}/{shard['fname']}/{name}"
                experiment.add_scalar(tag, value, global_step=shard["slice_num"])
    for row in volume_rows:
        for name, value in row.items():
            if isinstance(value, float) and name != "snr_db":
                experiment.add_scalar(f"volumes/{snr_label(row['snr_db'])}/{row['fname']}/{name}", value, 0)
    for index, (label, row_panels) in enumerate(panels):
        vmax = float(np.nanmax(row_panels[0][1])) or 1.0
        grid = np.concatenate([np.clip(np.nan_to_num(image) / vmax, 0, 1) for _, image in row_panels], axis=1)
        experiment.add_image(f"grids/{index:02d} {label}", grid[None].astype(np.float32), global_step=0)
    experiment.flush()


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
