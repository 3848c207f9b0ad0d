"""The sampler's per-level callback for a batch: divergence per item, progress listeners, oracle."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch

from ..physics.fft import channels_to_complex


class ChainTracker:
    """Called after every level (``callback`` of :func:`lit_sampler.sampling.langevin.annealed_langevin`).

    * divergence per item without host syncs: an item diverges at the first level where its RMS is
      not finite or exceeds ``divergence_factor · (1 + σ)``;
    * ``listeners(info)`` (progress bars);
    * with a ``target`` ``[B, H, W]`` (the ``track_best_nrmse`` DIAGNOSTIC), the iterate of lowest NRMSE.
    """

    def __init__(self, batch_size: int, divergence_factor: float, device: torch.device,
                 listeners: Sequence[Callable[[dict[str, Any]], None]] = (), target: Optional[torch.Tensor] = None):
        self.factor = divergence_factor
        self.listeners = list(listeners)
        self.diverged_level = torch.full((batch_size,), -1, dtype=torch.long, device=device)
        self.target = target
        self.best: Optional[torch.Tensor] = None
        self.best_nrmse = None if target is None else torch.full((batch_size,), float("inf"), device=device)

    def __call__(self, info: dict[str, Any]) -> None:
        x = info["x"]
        rms = x.flatten(1).square().mean(dim=1).sqrt()
        bad = ~torch.isfinite(rms) | (rms > self.factor * (1.0 + info["sigma"]))
        self.diverged_level = torch.where(bad & (self.diverged_level < 0), info["level"], self.diverged_level)
        if self.target is not None:
            image = channels_to_complex(x)[:, 0]
            error = (image - self.target).flatten(1).norm(dim=1) / self.target.flatten(1).norm(dim=1)
            better = error < self.best_nrmse
            self.best_nrmse = torch.where(better, error, self.best_nrmse)
            self.best = image if self.best is None else torch.where(better[:, None, None], image, self.best)
        for listener in self.listeners:
            listener(info)
