"""The noise levels σ ``[L]`` a checkpoint's network was trained with.

In order: levels passed by the caller (``sigmas``, or ``sigma_begin``/``sigma_end``/``num_classes``),
the state dict's ``sigmas`` buffer, the saved config (``sigmas``, or ``sigma_begin``/``sigma_end``/
``num_classes`` with ``sigma_dist`` geometric or uniform, as ncsnv2 builds them).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .checkpoint_formats import find_in_config
from ..errors import CheckpointError
from .ncsnv2 import build_sigmas
from ..sampling.schedules import geometric_sigmas

__all__ = ["resolve_sigmas"]


def _config_sigmas(config: Any) -> torch.Tensor | None:
    """The levels ``[L]`` a saved config stores or describes; None if it has neither."""
    if config is None:
        return None
    stored = find_in_config(config, "sigmas")
    if stored is not None:
        levels = torch.as_tensor(stored, dtype=torch.float32).detach().cpu().reshape(-1)
        if levels.numel() > 0:
            return levels
    begin, end, count = (find_in_config(config, k) for k in ("sigma_begin", "sigma_end", "num_classes"))
    if begin is None or end is None or count is None:
        return None
    if str(find_in_config(config, "sigma_dist") or "geometric") == "uniform":
        return torch.linspace(float(begin), float(end), int(count), dtype=torch.float64).float()
    return geometric_sigmas(float(begin), float(end), int(count))


def resolve_sigmas(
    path: Path,
    stored: torch.Tensor | None,
    config: Any,
    sigmas: Sequence[float] | torch.Tensor | None,
    sigma_begin: float | None,
    sigma_end: float | None,
    num_classes: int | None,
) -> tuple[torch.Tensor | None, str]:
    """(levels ``[L]`` float32 on the CPU, or None, and their source: ``"argument"``,
    ``"checkpoint"``, ``"config"`` or ``"missing"``). Warns where sources disagree; raises
    :class:`CheckpointError` where ``num_classes`` disagrees with the stored levels."""
    from_config = _config_sigmas(config)
    if sigmas is not None or sigma_begin is not None or sigma_end is not None:
        count = num_classes
        if sigmas is None and count is None:
            count = next((s.numel() for s in (stored, from_config) if s is not None), None)
        try:
            levels = build_sigmas(sigmas, sigma_begin, sigma_end, count)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc
        if stored is not None and not (stored.shape == levels.shape and torch.allclose(stored.float().cpu(), levels, rtol=1e-4)):
            warnings.warn(f"{path}: the sigmas passed replace the {stored.numel()} levels stored in the checkpoint", stacklevel=4)
        return levels, "argument"
    for levels, source in ((stored, "checkpoint"), (from_config, "config")):
        if levels is None:
            continue
        levels = levels.detach().float().cpu().reshape(-1)
        if num_classes is not None and int(num_classes) != levels.numel():
            where = "'sigmas' buffer" if source == "checkpoint" else "saved config"
            raise CheckpointError(
                f"{path}: num_classes={num_classes} disagrees with the {levels.numel()} noise levels in the {where}"
            )
        if source == "checkpoint" and from_config is not None:
            if from_config.shape != levels.shape or not torch.allclose(from_config, levels, rtol=1e-4):
                warnings.warn(
                    f"{path}: the saved config's sigmas differ from the checkpoint's 'sigmas' buffer; using the buffer",
                    stacklevel=4,
                )
        return levels, source
    return None, "missing"
