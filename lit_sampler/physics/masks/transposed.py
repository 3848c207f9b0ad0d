"""A mask turned by 90°: :class:`TransposedMask` (phase-encode lines become rows)."""

from __future__ import annotations

from typing import Sequence

import torch

from .common import RandomSource, check_shape
from .lines import CsgmLineMask, EquispacedLineMask, RandomLineMask
from .variable_density import VariableDensityMask


class TransposedMask:
    """Another mask turned by 90°: ``mask`` drawn for k-space ``(W, H)`` and transposed, so that
    phase-encode *columns* become *rows* (horizontal lines: the phase-encode direction swapped, a
    measurement shift for a method trained on vertical lines). Returns ``[H, W]``.

    Args:
        mask: the mask to turn (e.g. ``class_path: lit_sampler.physics.masks.RandomLineMask``).
    """

    def __init__(self, mask: "MaskLike"):
        self.mask = mask

    def __repr__(self) -> str:
        return f"TransposedMask(mask={self.mask!r})"

    @property
    def accelerations(self):  # the nominal acceleration of the turned mask
        return getattr(self.mask, "accelerations", None)

    def __call__(self, shape: Sequence[int], generator: RandomSource) -> torch.Tensor:
        height, width = check_shape(shape)
        turned = torch.as_tensor(self.mask((width, height), generator), dtype=torch.float32)
        return torch.broadcast_to(turned, (width, height)).T.contiguous()


MaskLike = RandomLineMask | EquispacedLineMask | CsgmLineMask | VariableDensityMask
