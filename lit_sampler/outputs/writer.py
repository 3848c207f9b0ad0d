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

import errno
import io
import logging
import os
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from ..atomic import atomic_write_bytes
from ..data.items import ItemKey, PredictItems
from ..errors import OutputError
from .export import check_formats
from .prediction import Prediction
from .report import assemble_run
from .run_dir import calibration_settings, check_run_settings, load_shard, remove_stale_temporaries, run_settings

log = logging.getLogger(__name__)
class ReconstructionWriter(BasePredictionWriter):
    """Saves per-item results as they finish and assembles volumes, metrics and figures at the end.

    Args:
        output_dir: run directory; default the logger's directory (``lightning_logs/version_N``).
            Point a rerun at the same directory to resume it.
        figure_slices: slices (per SNR) shown in ``figure.png`` and in TensorBoard image grids.
        save_samples: also store every posterior sample in the volume files (``samples``).
        export: also write each volume's posterior mean (and std) for image viewers: ``nifti``
            (``export/<snr>/<file>_mean.nii.gz``, needs nibabel: the ``export`` extra) and/or ``png``
            (one image per slice); see :mod:`lit_sampler.outputs.export`.
        calibration: a calibration file (``python -m lit_sampler calibrate``): every volume file
            then holds the calibrated interval ``lower``/``upper`` at ``interval_level`` and
            ``calibrated_std``, and the tables its coverage. Refused (one error naming both) when it
            was made for other settings (:func:`lit_sampler.outputs.run_dir.calibration_settings`).
        interval_level: the nominal coverage of the written interval (one the calibration has).
    """

    def __init__(self, output_dir: str | None = None, figure_slices: int = 2, save_samples: bool = True,
                 export: list[Literal["nifti", "png"]] | None = None, calibration: str | None = None,
                 interval_level: float = 0.9):
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.figure_slices = figure_slices
        self.save_samples = save_samples
        self.export = check_formats(export)
        self.calibration_path = calibration
        self.interval_level = float(interval_level)
        self.calibration = None
        self.run_dir: Path | None = None
        self._wanted: set[str] | None = None

    # ------------------------------------------------------------------ run directory
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        check_data = getattr(pl_module, "check_data", None)
        if check_data is not None and trainer.datamodule is not None:
            # settings the data cannot run (a missing λ) are refused before the directory is touched
            check_data(trainer.datamodule)
        # trainer.log_dir is a collective under DDP: every rank must ask
        root = Path(self.output_dir) if self.output_dir else Path(trainer.log_dir or trainer.default_root_dir)
        self.run_dir = root
        # rank 0 prepares the directory while the other ranks wait; a failure there reaches every
        # rank through the broadcast, so no rank is left waiting in a collective
        settings = run_settings(pl_module, trainer.datamodule)
        if self.calibration_path is not None:
            self.calibration = self._read_calibration(pl_module, trainer.datamodule)
        self._on_all_ranks(trainer, lambda: self._prepare_directory(root, settings))
        # resume: items with a shard are done and the data module leaves them out (the tables are
        # built from every shard at the end, so they cover the earlier runs' items too)
        datamodule = trainer.datamodule
        if not isinstance(datamodule, PredictItems):
            raise TypeError(f"ReconstructionWriter needs a prediction data module, got {type(datamodule).__name__}")
        self._wanted = set(datamodule.item_keys())
        finished = self.finished_shards()
        if finished:
            datamodule.exclude_items({str(ItemKey.from_shard_path(path)) for path in finished})
            if trainer.is_global_zero:
                print(f"resuming in {root}: {len(finished)} finished items are kept")
        if finished and not datamodule.items:
            # nothing left to compute: Lightning skips the whole loop (no on_predict_end), so the
            # outputs are assembled here — a run killed while assembling completes on its rerun
            self._on_all_ranks(trainer, lambda: self._assemble(trainer, pl_module))

    def _read_calibration(self, pl_module, datamodule):
        """The calibration file, checked against this run's settings and SNRs before any chain runs."""
        from ..evaluation.calibration import Calibration
        from ..physics.noise import snr_label

        calibration = Calibration(self.calibration_path)
        calibration.check(calibration_settings(pl_module, datamodule))
        for snr in getattr(datamodule, "snr_levels", []):
            calibration.scale(snr_label(snr), self.interval_level)
        return calibration

    def _assemble(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assemble_run(
            self.run_dir,
            [load_shard(path) for path in self.finished_shards()],
            # the settings that decide the results (the same in a run and its resume, so the files are too)
            settings=run_settings(pl_module, trainer.datamodule)["model"],
            logger=trainer.logger,
            figure_slices=self.figure_slices,
            save_samples=self.save_samples,
            volume_attrs=trainer.datamodule.volume_attributes(),
            export=self.export,
            interval=None if self.calibration is None else (self.calibration, self.interval_level),
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
        wanted = self._wanted
        return shards if wanted is None else [path for path in shards if str(ItemKey.from_shard_path(path)) in wanted]

    # ------------------------------------------------------------------ per batch
    def write_on_batch_end(self, trainer, pl_module, prediction: Prediction | None, batch_indices, batch, batch_idx,
                           dataloader_idx=0):
        if prediction is None:
            return
        for i, key in enumerate(prediction.item_key):
            buffer = io.BytesIO()
            torch.save(prediction.shard(i), buffer)
            atomic_write_bytes(ItemKey.parse(key).shard_path(self.run_dir), buffer.getvalue())

    # ------------------------------------------------------------------ the end
    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.strategy.barrier("writer-assemble")
        self._on_all_ranks(trainer, lambda: self._assemble(trainer, pl_module))
