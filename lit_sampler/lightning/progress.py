"""A progress bar that shows the Langevin chain inside a batch, not only the batch count."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm


class LangevinProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar plus a second line for the current batch: level i / L, σ_i, ETA.

    The sampler reports each finished level through the module's level listeners; the bar
    refreshes at most ``level_refresh_seconds`` apart, so thousands of levels cost nothing.
    """

    def __init__(self, refresh_rate: int = 1, process_position: int = 0, level_refresh_seconds: float = 0.5):
        super().__init__(refresh_rate=refresh_rate, process_position=process_position)
        self.level_refresh_seconds = level_refresh_seconds
        self._levels_bar: Tqdm | None = None
        self._last_refresh = 0.0
        self._pending = 0
        self._reported = 0

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        if self.is_enabled and hasattr(pl_module, "add_level_listener"):
            pl_module.add_level_listener(self._on_level)

    def on_predict_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        super().on_predict_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        if not self.is_enabled or not hasattr(pl_module, "sigmas"):
            return
        schedule = getattr(pl_module, "schedule", None)
        levels = len(schedule.levels) if schedule is not None else len(pl_module.sigmas)
        if self._levels_bar is None:
            self._levels_bar = Tqdm(
                desc="Langevin levels",
                position=2 * self.process_position + 1,
                disable=self.is_disabled,
                leave=False,
                dynamic_ncols=True,
                unit="level",
            )
        self._levels_bar.reset(total=levels)
        self._pending = 0
        self._reported = 0
        self._last_refresh = time.monotonic()

    def _on_level(self, info: dict[str, Any]) -> None:
        if self._levels_bar is None:
            return
        # levels where no item of the batch is active yet (per-item warm starts) are not reported:
        # the position among the levels run says how far the chain is
        done = info.get("position", self._reported + self._pending) + 1
        self._pending = done - self._reported
        now = time.monotonic()
        if now - self._last_refresh >= self.level_refresh_seconds or info["level"] == info["levels"] - 1:
            self._levels_bar.update(self._pending)
            self._levels_bar.set_postfix_str(f"σ={info['sigma']:.4g}", refresh=False)
            self._reported += self._pending
            self._pending = 0
            self._last_refresh = now

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._levels_bar is not None:
            self._levels_bar.close()
            self._levels_bar = None
        super().on_predict_end(trainer, pl_module)
