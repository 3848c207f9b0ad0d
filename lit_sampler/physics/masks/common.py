"""What every mask shares: the draw record (:class:`MaskSample`), the input checks, the two random
sources and the draw of the acceleration, the fastMRI centre-line placement, the effective
acceleration and the per-volume generator (:func:`mask_generator`).

Random sources (:data:`RandomSource`): masks draw from

* a ``torch.Generator``: our per-volume streams (:func:`mask_generator`), the default
  (``mask_seed: run`` of the data modules);
* a ``numpy.random.RandomState``: **fastMRI's own draws** (``mask_seed: fastmri``). The line masks
  then draw exactly as fastMRI 0.3.0 does (``choose_acceleration``'s ``randint``, then
  ``uniform(size=W)`` or ``randint(0, round(a))`` and numpy's ``arange``), so
  ``RandomLineMask(...)(shape, numpy.random.RandomState(tuple(map(ord, fname))))`` is bit for bit
  the mask fastMRI's validation gives that file.

Each draw function takes the source and does the same draws, in the same order, whichever source
it is (the torch path follows numpy's formulas, e.g. ``arange`` and round-half-to-even), so a mask
class never needs to know which one it was given.

Shapes as in :mod:`lit_sampler.physics.masks`: k-space ``(H, W)``, masks ``[1, W]`` (lines) or ``[H, W]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch

# a torch.Generator (our per-volume streams) or a numpy RandomState (reproducing fastMRI's draws)
RandomSource = Union[torch.Generator, np.random.RandomState]


def is_fastmri_source(source: RandomSource) -> bool:
    """Whether ``source`` is fastMRI's numpy ``RandomState`` (rather than a ``torch.Generator``)."""
    return isinstance(source, np.random.RandomState)


def source_device(source: RandomSource) -> torch.device:
    """Where masks drawn from ``source`` live: the generator's device, CPU for a ``RandomState``."""
    return torch.device("cpu") if is_fastmri_source(source) else source.device


def choose(n: int, source: RandomSource) -> int:
    """A uniform index in ``range(n)`` (fastMRI's ``choose_acceleration``)."""
    # Always draw, as fastMRI does, so the stream layout does not depend on the list length.
    if is_fastmri_source(source):
        return int(source.randint(n))
    return int(torch.randint(n, (1,), generator=source, device=source.device).item())


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


def mask_generator(seed: int, name: str, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator a volume's mask is drawn from, seeded by ``(seed, name)`` (``name``: the file
    name), so a volume gets the same mask in every run, rank and batch:
    ``RandomLineMask([0.08], [4])((H, W), mask_generator(0, "file_brain_001.h5"))``."""
    from ...seeding import seeded_generator

    return seeded_generator(seed, name, "mask", device=device)
