"""A run's volumes: item shards stacked per (file, SNR) and written as fastMRI-style files."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from ..atomic import atomic_target
from ..evaluation.uncertainty import posterior_summary
from ..physics.noise import snr_label
from ..sampling.baselines import BASELINES


def shard_order(shard: dict[str, Any]) -> tuple:
    return (-shard["snr_db"], shard["fname"], shard["slice_num"], shard["sample_idx"])


def group_volumes(shards: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple, list] = defaultdict(list)
    for shard in sorted(shards, key=shard_order):
        groups[(-shard["snr_db"], shard["fname"])].append(shard)
    return list(groups.values())


def build_volume(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the slices of one (file, SNR); the reconstruction is the posterior mean over samples
    (diverged samples left out), ``std`` the per-pixel standard deviation of the samples'
    magnitudes (Bessel-corrected: the error bar of the magnitude image, :mod:`lit_sampler.evaluation.uncertainty`)."""
    by_slice: dict[int, list] = defaultdict(list)
    for shard in shards:
        by_slice[shard["slice_num"]].append(shard)
    slices = sorted(by_slice)
    samples, means, stds, usables = [], [], [], []
    for s in slices:
        stack = torch.stack([item["reconstruction"] for item in by_slice[s]])
        mean, std, usable = posterior_summary(stack, torch.tensor([item["status"] == "ok" for item in by_slice[s]]))
        samples.append(stack)
        usables.append(usable)
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
        "slice_samples": usables,  # per slice, the samples that did not diverge [N_s, H, W]
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


def add_interval(volume: dict[str, Any], k: float, level: float) -> None:
    """The calibrated interval ``|mean| ± k·std`` of a volume (``lower`` clipped at 0: a magnitude),
    and ``calibrated_std = k/z · std`` (z of a normal interval at ``level``: the std that a reader of
    mean ± z·std would need), :mod:`lit_sampler.evaluation.calibration`."""
    from ..evaluation.uncertainty import normal_multiplier

    magnitude = volume["mean"].abs()
    volume["lower"] = (magnitude - k * volume["std"]).clamp_min(0)
    volume["upper"] = magnitude + k * volume["std"]
    volume["calibrated_std"] = volume["std"] * (k / normal_multiplier(level))
    volume["interval"] = {"level": level, "k": k}


def write_volume(run_dir: Path, volume: dict[str, Any], settings: dict[str, Any], save_samples: bool) -> Path:
    """``reconstructions/<snr>/<file>.h5``: fastMRI's ``reconstruction`` (magnitude of the posterior
    mean) plus the complex mean, std, samples and baselines, and with a calibration the interval
    ``lower`` / ``upper`` and ``calibrated_std``, with the run's settings as attributes."""
    path = run_dir / "reconstructions" / snr_label(volume["snr_db"]) / volume["fname"]
    with atomic_target(path) as temporary:
        with h5py.File(temporary, "w") as handle:
            handle["reconstruction"] = volume["mean"].abs().numpy().astype(np.float32)
            handle["reconstruction_complex"] = volume["mean"].numpy().astype(np.complex64)
            if max(volume["num_samples"]) > 1:
                handle["std"] = volume["std"].numpy().astype(np.float32)
                if save_samples and volume["samples"] is not None:
                    handle["samples"] = volume["samples"].numpy().astype(np.complex64)
                if "interval" in volume:
                    for name in ("lower", "upper", "calibrated_std"):
                        handle[name] = volume[name].numpy().astype(np.float32)
                    handle.attrs["interval_level"] = volume["interval"]["level"]
                    handle.attrs["interval_k"] = volume["interval"]["k"]
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
