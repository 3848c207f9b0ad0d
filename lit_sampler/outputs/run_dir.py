"""The run directory's bookkeeping: the settings a run's items were computed with, resume checks,
the settings a calibration file holds for, temporary files of interrupted writes, result shards
(see :mod:`lit_sampler.outputs.writer` for the layout)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from .._imports import current_names
from ..atomic import atomic_write_bytes
from ..errors import OutputError, ResumeMismatchError
from ..evaluation.calibration import file_sha256
from ..sampling.baselines import BASELINES

SHARD_FIELDS = ("reconstruction", "sample", *BASELINES, "target", "oracle_best", "mask")
# what an interrupted write leaves behind: ``.<final name>.<pid>.tmp`` and the writability probe
TEMPORARY = re.compile(r"^\.(?:.+\.(?P<pid>\d+)\.tmp(?:\.png)?|write-test-(?P<probe>\d+))$")


# sampler options that change speed, not results (to rounding), and may differ between a run and its resume
PERFORMANCE_SETTINGS = frozenset({"compile", "compile_mode", "channels_last", "cuda_graph", "batch_invariant", "call_size", "fail_fast"})
SETTINGS_FILE = "run_settings.json"


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-ready description of a setting (objects such as masks by class and public attributes)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if depth > 3:  # (never a repr: it may hold an address, which would differ on every run)
        return f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= 64 else f"tensor {list(value.shape)} sum {float(value.double().sum())!r}"
    cls = f"{type(value).__module__}.{type(value).__qualname__}"
    if dataclasses.is_dataclass(value):
        return {"class": cls, **{f.name: _plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}}
    fields = {k: _plain(v, depth + 1) for k, v in vars(value).items() if not k.startswith("_")} if hasattr(value, "__dict__") else {}
    return {"class": cls, **fields}


def run_settings(pl_module: pl.LightningModule, datamodule: Any) -> dict[str, Any]:
    """What decides an item's result: the sampler's options (less :data:`PERFORMANCE_SETTINGS`) and
    the data module's ``measurement_settings()`` (seed, mask, geometry, target, scale, maps).

    The schedule knobs are recorded as the chain ran them (a knob left unset holds its preset's
    value or its default, ``schedule.knob_sources`` says which); ``cs_skipped`` lists the baselines
    skipped per noise level (``cs_missing: skip``), and ``cs_missing`` appears only when not the
    default ``error`` (so older run directories still resume)."""
    model = {
        k: _plain(v) for k, v in dict(getattr(pl_module, "hparams", {})).items()
        if k not in PERFORMANCE_SETTINGS and not k.startswith("_")  # (not the CLI's `_class_path` etc.)
    }
    data = {key: _plain(value) for key, value in datamodule.measurement_settings().items()}
    schedule = getattr(pl_module, "schedule", None)
    if schedule is not None:  # what the knobs (or the preset) resolved to, network calls included
        model.update({knob: _plain(value) for knob, value in schedule.knobs.items()})
        model["schedule"] = _plain(schedule.describe())
    if model.get("cs_missing") == "error":
        del model["cs_missing"]
    skipped = getattr(pl_module, "cs_skipped", None)
    if skipped:
        model["cs_skipped"] = _plain(skipped)
    return {"model": model, "data": data}


def check_run_settings(root: Path, settings: dict[str, Any]) -> None:
    """First run: record ``settings`` in ``root/run_settings.json``. Later runs (resume) must have the
    same, or finished items of other settings would be mixed into the volumes and tables."""
    path = root / SETTINGS_FILE
    text = json.dumps(settings, indent=1, sort_keys=True)
    if not path.exists():
        atomic_write_bytes(path, text.encode())
        return
    # compare like with like: tuples as lists, …, and class names as they are now (a run directory
    # made before the modules moved names its mask and operator classes by their old paths)
    settings = current_names(json.loads(text))
    try:
        stored = current_names(json.loads(path.read_text()))
    except (OSError, ValueError) as error:
        raise OutputError(f"{path}: unreadable ({error}); delete it only if the results there match this config") from error
    changed = []
    for part in ("model", "data"):
        old, new = stored.get(part, {}), settings[part]
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                changed.append(f"{part}.{key}: {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}")
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise ResumeMismatchError(
            f"output directory {root} holds results of other settings ({shown}); resuming there would mix "
            f"them: use another output_dir, or restore those settings"
        )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(root: Path) -> int:
    """Delete what interrupted writes left in the run directory ``root`` (itself, ``items/`` and
    ``reconstructions/``): temporary files of processes that no longer run, or of this very process
    (which has written nothing yet). Returns how many."""
    removed = 0
    candidates = [*root.glob(".*"), *(root / "items").rglob(".*"), *(root / "reconstructions").rglob(".*")]
    for candidate in candidates:
        match = TEMPORARY.match(candidate.name)
        if match is None or not candidate.is_file():
            continue
        pid = int(match.group("pid") or match.group("probe"))
        if pid == os.getpid() or not _process_alive(pid):
            candidate.unlink(missing_ok=True)
            removed += 1
    return removed


def load_shard(path: Path, metadata_only: bool = False) -> dict[str, Any]:
    try:
        shard = torch.load(path, map_location="cpu", weights_only=True, mmap=metadata_only)
    except Exception as error:  # a shard is written atomically, so this is outside damage
        raise OutputError(
            f"{path}: damaged result shard ({type(error).__name__}: {error}); delete it and run again "
            "to recompute that item"
        ) from error
    if metadata_only:
        shard = {k: v for k, v in shard.items() if k not in SHARD_FIELDS}
    return shard


# sampler options that change the samples' law (the resolved schedule and the checkpoint's hash are added)
SAMPLER_KEYS = ("use_ema", "sigmas", "dc_boost", "prior_sampling", "data_consistency",
                "norm_matched_weight", "init_sigma", "operator")


def calibration_settings(pl_module: Any, datamodule: Any) -> dict[str, Any]:
    """What a calibration holds for: the checkpoint's SHA-256, the resolved schedule and the
    sampler's knobs, the step size, the mask and the number of samples (not the data files, the
    seed or the baselines)."""
    settings = run_settings(pl_module, datamodule)
    model, data = settings["model"], settings["data"]
    checkpoint = model.get("checkpoint")
    out: dict[str, Any] = {key: model.get(key) for key in SAMPLER_KEYS}
    out["checkpoint_sha256"] = file_sha256(checkpoint) if checkpoint else "score_model (no file)"
    out["schedule"] = model.get("schedule")
    out["step_size"] = float(getattr(pl_module, "step_size", model.get("step_size")) or 0)
    out["mask"] = data.get("mask")
    out["num_samples"] = int(getattr(datamodule, "num_samples", 1))
    return out
