"""Writes what the sampler returns: one shard per item while the run goes, volumes at the end.

Layout of a run directory (``output_dir``, default the logger's ``lightning_logs/version_N``)::

    items/<snr>/<file>/s<slice>_n<sample>.pt     one finished item (written atomically, per batch)
    reconstructions/<snr>/<file>.h5              fastMRI-style volume: ``reconstruction`` [slices, H, W]
    metrics.csv  volume_metrics.csv  summary.csv  figure.png

Shards make the run restartable (an item whose shard exists is never computed again) and let
every rank write its own items: no two processes ever write one file. Volumes, tables and the
figure are assembled by rank 0 once every rank has finished. Every file appears under its final
name only when complete (temporary file + ``os.replace``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from .noise import snr_label
from .report import assemble_run

log = logging.getLogger(__name__)

SHARD_FIELDS = ("reconstruction", "sample", "zero_filled", "cg_sense", "target", "oracle_best")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent or complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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
    """

    def __init__(self, output_dir: str | None = None, figure_slices: int = 2, save_samples: bool = True):
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.figure_slices = figure_slices
        self.save_samples = save_samples
        self.run_dir: Path | None = None
        self._wanted: set[str] | None = None

    # ------------------------------------------------------------------ run directory
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # trainer.log_dir is a collective under DDP: every rank must ask
        root = Path(self.output_dir) if self.output_dir else Path(trainer.log_dir or trainer.default_root_dir)
        self.run_dir = root
        if trainer.is_global_zero:
            try:
                (root / "items").mkdir(parents=True, exist_ok=True)
                probe = root / f".write-test-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as error:
                raise OSError(f"output directory {root} is not writable: {error.strerror}") from error
        trainer.strategy.barrier("writer-setup")
        # resume: items with a shard are done; the data module leaves them out, the module's
        # metrics take their stored values (on one rank: the metrics gather across ranks)
        datamodule = trainer.datamodule
        self._wanted = set(datamodule.item_keys()) if hasattr(datamodule, "item_keys") else None
        finished = self.finished_shards()
        if finished and hasattr(datamodule, "exclude_items"):
            datamodule.exclude_items({item_key_of(path) for path in finished})
        if finished and trainer.is_global_zero and hasattr(pl_module, "restore_quality"):
            pl_module.restore_quality([load_shard(path, metadata_only=True) for path in finished])
        if finished and trainer.is_global_zero:
            print(f"resuming in {root}: {len(finished)} finished items are kept")
        trainer.strategy.barrier("writer-resume")

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
        if trainer.is_global_zero:
            assemble_run(
                self.run_dir,
                [load_shard(path) for path in self.finished_shards()],
                summary=getattr(pl_module, "summary", []),
                settings=dict(pl_module.hparams),
                logger=trainer.logger,
                figure_slices=self.figure_slices,
                save_samples=self.save_samples,
            )
        trainer.strategy.barrier("writer-done")


def load_shard(path: Path, metadata_only: bool = False) -> dict[str, Any]:
    try:
        shard = torch.load(path, map_location="cpu", weights_only=True, mmap=metadata_only)
    except Exception as error:  # a shard is written atomically, so this is outside damage
        raise RuntimeError(f"{path}: unreadable result shard ({error}); delete it to recompute that item") from error
    if metadata_only:
        shard = {k: v for k, v in shard.items() if k not in SHARD_FIELDS}
    return shard


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
