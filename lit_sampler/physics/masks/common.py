"""What every mask of :mod:`lit_sampler.physics.masks` shares: the draw record, the input checks, the
fastMRI centre-line placement and the effective acceleration of a mask.

Shapes as in :mod:`lit_sampler.physics.masks`: k-space ``(H, W)``, masks ``[1, W]`` (lines) or ``[H, W]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class MaskSample:
    """One mask draw and the parameters it was drawn with.

    Attributes:
        mask: float32 0/1, ``[1, W]`` (lines) or ``[H, W]`` (2-D).
        acceleration: the nominal acceleration chosen for this draw.
        num_low_frequencies: fully sampled centre lines (line masks) or side of the fully sampled
            calibration square (2-D); usable as the ACS size for sensitivity estimation.
    """

    mask: torch.Tensor
    acceleration: float
    num_low_frequencies: int


def check_shape(shape: Sequence[int]) -> tuple[int, int]:
    """The k-space shape ``(H, W)`` as two positive ints (a ValueError otherwise)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"mask shape must be (H, W) with positive sizes, got {shape}")
    return shape  # type: ignore[return-value]


def check_accelerations(accelerations: Sequence[float]) -> list[float]:
    """A non-empty list of finite accelerations ``≥ 1`` as floats (a ValueError otherwise)."""
    accelerations = [float(a) for a in accelerations]
    if not accelerations:
        raise ValueError("accelerations must not be empty")
    for a in accelerations:
        if not math.isfinite(a) or a < 1:
            raise ValueError(f"accelerations must be >= 1 (1 means fully sampled), got {a:g}")
    return accelerations


def center_line_slice(num_cols: int, num_low_frequencies: int) -> slice:
    """Indices of the ``num_low_frequencies`` centre lines of ``num_cols`` (fastMRI placement).

    The block contains the DC line ``num_cols // 2`` for every parity of the two numbers.
    """
    start = (num_cols - num_low_frequencies + 1) // 2
    return slice(start, start + num_low_frequencies)


def effective_acceleration(mask: torch.Tensor, shape: Sequence[int]) -> float:
    """Total k-space points over sampled points, ``H·W / Σ M``, for a mask broadcast to ``(H, W)``.

    Args:
        mask: 0/1 (or bool) mask broadcastable to ``shape``, e.g. ``[1, W]`` or ``[H, W]``.
        shape: the k-space shape ``(H, W)``.
    """
    shape = check_shape(shape)
    try:
        full = torch.broadcast_to(mask, shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to k-space shape {shape}"
        ) from None
    sampled = float((full != 0).sum())
    if sampled == 0:
        raise ValueError("mask samples no k-space point")
    return shape[0] * shape[1] / sampled
