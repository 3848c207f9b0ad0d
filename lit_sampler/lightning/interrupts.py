"""Stopping a run cleanly on SIGTERM / SIGINT (what SLURM and job schedulers send before a kill).

Lightning logs SIGTERM and carries on in ``predict``; a scheduler then kills the job mid-batch a few
seconds or minutes later. :class:`StopOnSignal` instead records the signal and stops at the next
batch boundary: the batch that was running finishes and its shards are written (atomically, as
always), nothing is assembled, and the CLI prints how to resume and exits with ``128 + signal``.
A second SIGINT (Ctrl-C twice) stops at once, as Python's default does.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from ..errors import RunInterrupted

HANDLED = (signal.SIGTERM, signal.SIGINT)


class StopOnSignal(Callback):
    """Turns SIGTERM / SIGINT during ``predict`` into a stop after the current batch."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        previous = self._previous.get(signum)
        # Lightning's own SIGTERM handler forwards the signal to DDP child processes: keep it
        if signum == signal.SIGTERM and callable(previous):
            previous(signum, frame)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.received = None
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in HANDLED:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handler)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        signum = self.received or (signal.SIGTERM if getattr(trainer, "received_sigterm", False) else None)
        if signum is None:
            return
        name = signal.Signals(signum).name
        run_dir = next((getattr(c, "run_dir", None) for c in trainer.callbacks if getattr(c, "run_dir", None)), None)
        where = f" in {run_dir}" if run_dir else ""
        self._restore()
        raise RunInterrupted(
            f"stopped by {name} after batch {batch_idx + 1}: every finished item is saved{where}; "
            "run the same command again to resume (finished items are kept)",
            signum,
        )

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        self._previous.clear()

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore()
