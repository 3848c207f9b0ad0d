"""Every random number of a line mask, from either random source (the masks of :mod:`lit_sampler.physics.masks`).

* a ``torch.Generator``: our per-volume streams (:func:`lit_sampler.physics.masks.mask_generator`), the
  default (``mask_seed: run`` of the data modules);
* a ``numpy.random.RandomState``: **fastMRI's own draws** (``mask_seed: fastmri``). The line masks
  then draw exactly as fastMRI 0.3.0 does (``choose_acceleration``'s ``randint``, then
  ``uniform(size=W)`` or ``randint(0, round(a))`` and numpy's ``arange``), so
  ``RandomLineMask(...)(shape, numpy.random.RandomState(tuple(map(ord, fname))))`` is bit for bit
  the mask fastMRI's validation gives that file.

Each function takes the source and does the same draws, in the same order, whichever source it is
(the torch path follows numpy's formulas, e.g. ``arange`` and round-half-to-even), so a mask class
never needs to know which one it was given.
"""

from __future__ import annotations

import math
from typing import Union

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


def random_lines(num_cols: int, prob: float, source: RandomSource) -> torch.Tensor:
    """Bool ``[W]``: each of ``num_cols`` lines kept with probability ``prob`` (fastMRI ``RandomMaskFunc``).

    One uniform per column is drawn, even where the centre overrides it, so that a column's fate
    does not depend on the chosen centre width (and matches fastMRI's draw pattern).
    """
    if is_fastmri_source(source):
        return torch.from_numpy(source.uniform(size=num_cols) < prob)
    u = torch.rand(num_cols, generator=source, device=source.device, dtype=torch.float64)
    return u < prob


def equispaced_lines(
    num_cols: int, spacing: float, stop: int, source: RandomSource, integer_spacing: bool = False
) -> torch.Tensor:
    """Bool ``[W]``: lines at ``round(offset + k · spacing) < stop``, ``offset`` uniform in
    ``[0, round(spacing))`` (fastMRI ``EquispacedMaskFractionFunc``; ``integer_spacing``: its
    ``EquiSpacedMaskFunc``, lines ``offset :: spacing`` below ``num_cols``)."""
    lines = torch.zeros(num_cols, dtype=torch.bool, device=source_device(source))
    high = max(round(spacing), 1)
    if is_fastmri_source(source):  # fastMRI's draw and numpy's arange, verbatim
        offset = int(source.randint(0, high=high))
        if integer_spacing:
            positions = np.arange(offset, num_cols, int(spacing))
        else:
            positions = np.around(np.arange(offset, stop, spacing)).astype(np.int64)
        lines[torch.from_numpy(positions)] = True
        return lines
    offset = int(torch.randint(high, (1,), generator=source, device=source.device).item())
    count = max(math.ceil((stop - offset) / spacing), 0)
    # offset + k·spacing as numpy's arange computes it, then round-half-to-even like np.around.
    positions = offset + spacing * torch.arange(count, dtype=torch.float64, device=lines.device)
    lines[torch.round(positions).long().clamp_(max=num_cols - 1)] = True
    return lines


def random_subset(values: np.ndarray, count: int, source: RandomSource) -> np.ndarray:
    """``count`` distinct entries of ``values`` in random order (numpy's ``choice(replace=False)``
    from a ``RandomState``; the first ``count`` of a ``randperm`` from a ``torch.Generator``)."""
    if is_fastmri_source(source):
        return source.choice(values, count, replace=False)
    order = torch.randperm(len(values), generator=source, device=source.device).cpu().numpy()
    return values[order[:count]]
