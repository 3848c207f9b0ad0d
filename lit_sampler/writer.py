"""Writes what the sampler returns: one shard per item while the run goes, volumes at the end.

Layout of a run directory (``output_dir``, default the logger's ``lightning_logs/version_N``)::

    items/<snr>/<file>/s<slice>_n<sample>.pt     one finished item (written atomically, per batch)
    reconstructions/<snr>/<file>.h5              fastMRI-style volume: ``reconstruction`` [slices, H, W]
    metrics.csv  volume_metrics.csv  summary.csv  figure.png
    run_settings.json                            the settings the items were computed with

Shards make the run restartable (an item whose shard exists is never computed again) and let
every rank write its own items: no two processes ever write one file. Volumes, tables and the
figure are assembled by rank 0 once every rank has finished, from the shards in item order (so
they do not depend on how or in how many runs the items were computed). Every file appears under
its final name only when complete (:func:`lit_sampler.atomic.atomic_target`: temporary ``.<name>.<pid>.tmp``, fsync,
``os.replace``); a rerun removes the temporary files of dead runs, and refuses a directory whose
``run_settings.json`` differs from its own settings. See ``docs/reliability.md``.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from .atomic import OutputError, atomic_write_bytes
from .baselines import BASELINES
from .export import check_formats, file_voxel_size, output_voxel_size
from .noise import snr_label
from .report import assemble_run

log = logging.getLogger(__name__)

SHARD_FIELDS = ("reconstruction", "sample", *BASELINES, "target", "oracle_best", "mask")
# what an interrupted write leaves behind: ``.<final name>.<pid>.tmp`` and the writability probe
TEMPORARY = re.compile(r"^\.(?:.+\.(?P<pid>\d+)\.tmp(?:\.png)?|write-test-(?P<probe>\d+))$")


class ResumeMismatchError(ValueError):
    """The output directory holds results of other settings: resuming there would mix them."""


# sampler options that change speed, not results (to rounding), and may differ between a run and its resume
PERFORMANCE_SETTINGS = frozenset({"compile", "compile_mode", "channels_last", "cuda_graph", "batch_invariant", "fail_fast"})
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
    the measurement settings of the data module (seed, mask, geometry, target, scale, maps)."""
    model = {
        k: _plain(v) for k, v in dict(getattr(pl_module, "hparams", {})).items()
        if k not in PERFORMANCE_SETTINGS and not k.startswith("_")  # (not the CLI's `_class_path` etc.)
    }
    transform = getattr(datamodule, "transform", None)
    data = {
        "seed": getattr(datamodule, "seed", None),
        "mask": _plain(getattr(transform, "mask_fn", None)),
        "scale_percentile": getattr(transform, "scale_percentile", None),
        "target": getattr(transform, "target", None),
        "geometry": _plain(getattr(datamodule, "geometry", None)),
        "use_file_mask": getattr(datamodule, "use_file_mask", None),
        "maps_dir": _plain(getattr(datamodule, "maps_dir", None)),
        "maps_key": getattr(datamodule, "maps_key", None),
        "image_shape": _plain(getattr(datamodule, "_image_shape", None)),
    }
    if getattr(transform, "mask_seed", "run") != "run":  # (absent by default: older run directories still resume)
        data["mask_seed"] = transform.mask_seed
    if any(volume.attrs.get("real_noise") for volume in getattr(datamodule, "volumes", None) or []):
        # ISMRMRD input: how it was converted decides the data (the cache folder does not)
        from .data.ismrmrd_raw import RawOptions

        data["raw"] = (getattr(datamodule, "raw", None) or RawOptions()).settings()
    schedule = getattr(pl_module, "schedule", None)
    if schedule is not None:  # what the knobs (or the preset) resolved to, network calls included
        model["schedule"] = _plain(schedule.describe())
    return {"model": model, "data": data}


def check_run_settings(root: Path, settings: dict[str, Any]) -> None:
    """First run: record ``settings`` in ``root/run_settings.json``. Later runs (resume) must have the
    same, or finished items of other settings would be mixed into the volumes and tables."""
    path = root / SETTINGS_FILE
    text = json.dumps(settings, indent=1, sort_keys=True)
    if not path.exists():
        atomic_write_bytes(path, text.encode())
        return
    settings = json.loads(text)  # compare like with like (tuples as lists, …)
    try:
        stored = json.loads(path.read_text())
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


def shard_path(root: Path, fname: str, slice_num: int, snr_db: float, sample_idx: int) -> Path:
    return root / "items" / snr_label(snr_db) / fname / f"s{int(slice_num):04d}_n{int(sample_idx):03d}.pt"


def item_key_of(path: Path) -> str:
    """The data module's ``item_key`` (``fname|slice|snr|sample``) of a shard path."""
    slice_part, sample_part = path.stem.split("_")
    return f"{path.parent.name}|{int(slice_part[1:])}|{path.parent.parent.name}|{int(sample_part[1:])}"


class ReconstructionWriter(BasePredictionWriter):
    """Saves per-item results as they finish and assembles volumes, metrics and figures at the end.

    Args:
        output_dir: run directory; default the logger's directory (``lightning_logs/version_N``).
            Point a rerun at the same directory to resume it.
        figure_slices: slices (per SNR) shown in ``figure.png`` and in TensorBoard image grids.
        save_samples: also store every posterior sample in the volume files (``samples``).
        export: also write each volume's posterior mean (and std) for image viewers: ``nifti``
            (``export/<snr>/<file>_mean.nii.gz``, needs nibabel: the ``export`` extra) and/or ``png``
            (one image per slice); see :mod:`lit_sampler.export`.
    """

    def __init__(self, output_dir: str | None = None, figure_slices: int = 2, save_samples: bool = True,
                 export: list[Literal["nifti", "png"]] | None = None):
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.figure_slices = figure_slices
        self.save_samples = save_samples
        self.export = check_formats(export)
        self.run_dir: Path | None = None
        self._wanted: set[str] | None = None

    # ------------------------------------------------------------------ run directory
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # trainer.log_dir is a collective under DDP: every rank must ask
        root = Path(self.output_dir) if self.output_dir else Path(trainer.log_dir or trainer.default_root_dir)
        self.run_dir = root
        # rank 0 prepares the directory while the other ranks wait; a failure there reaches every
        # rank through the broadcast, so no rank is left waiting in a collective
        settings = run_settings(pl_module, trainer.datamodule)
        self._on_all_ranks(trainer, lambda: self._prepare_directory(root, settings))
        # resume: items with a shard are done; the data module leaves them out, the module's
        # metrics take their stored values (on one rank: the metrics gather across ranks)
        datamodule = trainer.datamodule
        self._wanted = set(datamodule.item_keys()) if hasattr(datamodule, "item_keys") else None
        finished = self.finished_shards()
        if finished and hasattr(datamodule, "exclude_items"):
            datamodule.exclude_items({item_key_of(path) for path in finished})

        def restore() -> None:
            if finished and hasattr(pl_module, "restore_quality"):
                pl_module.restore_quality([load_shard(path, metadata_only=True) for path in finished])
            if finished:
                print(f"resuming in {root}: {len(finished)} finished items are kept")

        self._on_all_ranks(trainer, restore)
        if finished and hasattr(datamodule, "items") and not datamodule.items:
            # nothing left to compute: Lightning skips the whole loop (no on_predict_end), so the
            # outputs are assembled here — a run killed while assembling completes on its rerun
            self._on_all_ranks(trainer, lambda: self._assemble(trainer, pl_module))

    def _assemble(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assemble_run(
            self.run_dir,
            [load_shard(path) for path in self.finished_shards()],
            # the settings that decide the results (the same in a run and its resume, so the files are too)
            settings=run_settings(pl_module, trainer.datamodule)["model"],
            logger=trainer.logger,
            figure_slices=self.figure_slices,
            save_samples=self.save_samples,
            volume_attrs=volume_attributes(trainer.datamodule),
            export=self.export,
        )

    @staticmethod
    def _prepare_directory(root: Path, settings: dict[str, Any]) -> None:
        try:
            (root / "items").mkdir(parents=True, exist_ok=True)
            probe = root / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            reason = "the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else error.strerror or error
            raise OutputError(
                f"output directory {root} is not writable ({reason}); set the writer's output_dir "
                "to a writable folder", error.errno
            ) from error
        stale = remove_stale_temporaries(root)
        if stale:
            log.info("removed %d temporary file(s) left by an interrupted run in %s", stale, root)
        check_run_settings(root, settings)

    @staticmethod
    def _on_all_ranks(trainer: pl.Trainer, work) -> None:
        """Run ``work`` on rank 0 while the other ranks wait in a broadcast; if it fails, rank 0
        raises its error and every other rank an :class:`OutputError` with the same message, so no
        rank is left waiting in a collective for a rank that has stopped."""
        problem = None
        local: Exception | None = None
        if trainer.is_global_zero:
            try:
                work()
            except Exception as error:
                local = error
                problem = (f"rank 0 stopped: {error}", getattr(error, "errno", None))
        problem = trainer.strategy.broadcast(problem, src=0)
        if local is not None:
            raise local
        if problem is not None:
            raise OutputError(*problem)

    def finished_shards(self) -> list[Path]:
        """Shards of this run's items already finished in the run directory (by this or an earlier run)."""
        if self.run_dir is None:
            return []
        shards = sorted((self.run_dir / "items").glob("*/*/s*_n*.pt"))
        wanted = getattr(self, "_wanted", None)
        return shards if wanted is None else [path for path in shards if item_key_of(path) in wanted]

    # ------------------------------------------------------------------ per batch
    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        if prediction is None:
            return
        for i, key in enumerate(prediction["item_key"]):
            shard = {name: value[i] for name, value in prediction.items() if name != "metrics" and value is not None}
            if "metrics" in prediction:
                shard["metrics"] = {name: values[i] for name, values in prediction["metrics"].items()}
            shard["status"] = "diverged" if shard["diverged_level"] >= 0 else "ok"
            path = shard_path(self.run_dir, shard["fname"], shard["slice_num"], shard["snr_db"], shard["sample_idx"])
            buffer = io.BytesIO()
            torch.save({k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in shard.items()}, buffer)
            atomic_write_bytes(path, buffer.getvalue())

    # ------------------------------------------------------------------ the end
    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.strategy.barrier("writer-assemble")
        self._on_all_ranks(trainer, lambda: self._assemble(trainer, pl_module))


def nominal_acceleration(mask_fn: Any) -> float | None:
    """The acceleration a mask function was configured with, when it has a single one."""
    values = getattr(mask_fn, "accelerations", None)
    if values is None and getattr(mask_fn, "acceleration", None) is not None:
        values = [mask_fn.acceleration]
    return float(values[0]) if values and len(set(values)) == 1 else None


def volume_attributes(datamodule: Any) -> dict[str, dict[str, Any]]:
    """Per file: ``multicoil``, ``acquisition`` and the configured ``acceleration`` (what
    fastMRI's ``evaluate.py`` filters on), from the data module's public metadata; and the output
    voxel size ``voxel_size_mm`` when the file tells it (for the exports)."""
    volumes = getattr(datamodule, "volumes", None) or []
    acceleration = nominal_acceleration(getattr(getattr(datamodule, "transform", None), "mask_fn", None))
    out = {}
    for volume in volumes:
        attrs: dict[str, Any] = {"multicoil": bool(volume.multicoil)}
        voxel = output_voxel_size(file_voxel_size(volume), (volume.height, volume.width), getattr(datamodule, "geometry", None))
        if voxel is not None:
            attrs["voxel_size_mm"] = voxel
        if "acquisition" in volume.attrs:
            attrs["acquisition"] = str(volume.attrs["acquisition"])
        if volume.mask_shape is None and acceleration is not None:
            attrs["acceleration"] = int(acceleration) if acceleration == int(acceleration) else acceleration
        out[volume.fname] = attrs
    return out


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
