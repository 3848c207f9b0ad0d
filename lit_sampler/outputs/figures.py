"""A run's pictures: the figure (target | zero-filled | CS | reconstruction | error | std), prior
sample grids, and the TensorBoard images and scalars."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_target
from ..physics.noise import snr_label
from .volumes import shard_order


def figure_panels(volumes: list[dict[str, Any]], figure_slices: int) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """Rows (one per SNR and shown slice) of (title, magnitude image) panels:
    target | zero-filled | CS (L1-wavelet, else TV, when run) | VarNet (when run) | reconstruction | error |
    the calibrated error bar (half-width k·std of the interval, with a calibration) or the std.
    Error, error bar and std share one grey scale per row, so a bar can be read against the error."""
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
            if "varnet" in volume:
                panels.append(("VarNet", volume["varnet"][i].abs().numpy()))
            panels.append(("reconstruction", recon))
            if "target" in volume:
                panels.append(("|error|", np.abs(recon - target)))
            if "interval" in volume:  # the calibrated error bar, on the error's scale
                level = volume["interval"]["level"]
                half_width = (volume["upper"][i] - volume["mean"][i].abs()).numpy()
                panels.append((f"{level:.0%} error bar", half_width))
            elif max(volume["num_samples"]) > 1:
                panels.append(("std", volume["std"][i].numpy()))
            label = f"{snr:g} dB" if math.isfinite(snr) else "no added noise"
            rows.append((f"{volume['fname']} s{volume['slices'][i]} · {label}", panels))
    return rows


def prior_panels(shards: list[dict[str, Any]], count: int) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    shown = sorted(shards, key=lambda s: s["sample_idx"])[:count]
    panels = [(f"sample {s['sample_idx']}", s["sample"][0].abs().numpy()) for s in shown]
    return [("prior samples", panels[i : i + 4]) for i in range(0, len(panels), 4)]


def _is_spread(title: str) -> bool:
    """Panels of errors and error bars (shown on their own common scale, not the image's)."""
    return title in ("|error|", "std") or title.endswith("error bar")


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
        spreads = [np.nanmax(image) for title, image in panels if _is_spread(title)]
        spread_max = float(max(spreads)) if spreads else None
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c >= len(panels):
                axis.axis("off")
                continue
            title, image = panels[c]
            axis.imshow(image, cmap="gray", vmin=0, vmax=spread_max if _is_spread(title) else vmax)
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


def log_to_tensorboard(logger: Any, shards, volume_rows, panels, summary=()) -> None:
    """When the logger is TensorBoard: the per-SNR summary (``snr_20dB/recon_psnr``, …), per-slice
    and per-volume scalars, and the image grids."""
    experiment = getattr(logger, "experiment", None)
    if experiment is None or not hasattr(experiment, "add_scalar"):
        return
    for row in summary:
        for name, value in row.items():
            if isinstance(value, float) and name != "snr_db" and math.isfinite(value):
                experiment.add_scalar(f"{row['snr']}/{name}", value, global_step=0)
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
