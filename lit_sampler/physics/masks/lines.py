"""Phase-encode line masks ``[1, W]``: lines are columns, i.e. indices along ``W``, as in fastMRI,
which samples along the second-to-last axis of its real-view ``[..., H, W, 2]`` k-space.

* :class:`RandomLineMask`, :class:`EquispacedLineMask`: fastMRI's line masks
  (``facebookresearch/fastMRI`` ``fastmri/data/subsample.py``, semantics, not code): one
  ``(center_fraction, acceleration)`` pair is drawn uniformly per call (paired by index);
  ``num_low_frequencies = round(W · center_fraction)`` (Python's round) centre lines start at
  ``(W − num_low_frequencies + 1) // 2``; the outer lines as each class's docstring says.
* :class:`CsgmLineMask`: Jalal et al.'s ``_get_mask`` (utcsilab/csgm-mri-langevin).
* :func:`random_lines`, :func:`equispaced_lines`, :func:`random_subset`: their draws, on either
  random source (:mod:`lit_sampler.physics.masks.common`): from fastMRI's ``RandomState`` they are
  fastMRI's own, bit for bit.

Acceleration 1 is accepted and means fully sampled (every line is kept; fastMRI's equispaced
formula would leave out the last column, which its ``arange(offset, W − 1, a)`` never reaches). When the
centre alone already holds ``≥ W / R`` lines, no outer line is added (fastMRI's random mask does the
same through a negative probability; its equispaced mask would fail there).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np
import torch

from .common import (
    MaskSample, RandomSource, center_line_slice, check_accelerations, check_shape, choose, is_fastmri_source,
    source_device,
)


class _LineMask:
    """Shared parts of the fastMRI-style phase-encode line masks (see module docstring)."""

    def __init__(self, center_fractions: Sequence[float], accelerations: Sequence[float]):
        center_fractions = [float(c) for c in center_fractions]
        accelerations = check_accelerations(accelerations)
        if len(center_fractions) != len(accelerations):
            raise ValueError(
                "center_fractions and accelerations must have the same length, "
                f"got {len(center_fractions)} and {len(accelerations)}"
            )
        for c in center_fractions:
            if not 0 < c < 1:
                raise ValueError(f"center_fractions must lie in (0, 1), got {c:g}")
        self.center_fractions = center_fractions
        self.accelerations = accelerations

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(center_fractions={self.center_fractions}, "
            f"accelerations={self.accelerations})"
        )

    def __call__(self, shape: Sequence[int], generator: RandomSource) -> torch.Tensor:
        """A float32 0/1 mask ``[1, W]`` for k-space of shape ``(H, W)``."""
        return self.sample(shape, generator).mask

    def sample(self, shape: Sequence[int], generator: RandomSource) -> MaskSample:
        """Draw a mask for k-space ``(H, W)`` and report the parameters drawn."""
        _, num_cols = check_shape(shape)
        choice = choose(len(self.accelerations), generator)
        acceleration = self.accelerations[choice]
        num_low = round(num_cols * self.center_fractions[choice])
        mask = self._outer_lines(num_cols, acceleration, num_low, generator)
        mask[center_line_slice(num_cols, num_low)] = True
        return MaskSample(mask.to(torch.float32)[None, :], acceleration, num_low)

    def _outer_lines(
        self, num_cols: int, acceleration: float, num_low: int, generator: RandomSource
    ) -> torch.Tensor:
        """Bool ``[W]`` of the lines added outside the centre block (may overlap it)."""
        raise NotImplementedError


class RandomLineMask(_LineMask):
    """fastMRI ``RandomMaskFunc``: centre block plus lines kept with ``p = (W/R − n)/(W − n)``.

    Every line is kept independently (centre ∪ outer), so ``E[#lines] = W / R``.

    Args:
        center_fractions: fraction of columns in the fully sampled centre, each in (0, 1).
        accelerations: nominal accelerations ``R ≥ 1``, paired by index with ``center_fractions``;
            one pair is drawn uniformly per call.
    """

    def __init__(self, center_fractions: list[float], accelerations: list[float]):
        super().__init__(center_fractions, accelerations)

    def _outer_lines(
        self, num_cols: int, acceleration: float, num_low: int, generator: RandomSource
    ) -> torch.Tensor:
        if num_low >= num_cols:
            prob = 1.0
        else:
            prob = (num_cols / acceleration - num_low) / (num_cols - num_low)
        return random_lines(num_cols, prob, generator)


class EquispacedLineMask(_LineMask):
    """fastMRI ``EquispacedMaskFractionFunc`` (default) or ``EquiSpacedMaskFunc`` line mask.

    With ``adjust_for_center`` (the masks of the public multicoil data): lines at
    ``round(offset + k · a)`` for ``k ≥ 0`` while ``< W − 1``, ``offset`` uniform in
    ``[0, round(a))``, plus the centre, so the total is ≈ ``W / R``.

    Args:
        center_fractions: fraction of columns in the fully sampled centre, each in (0, 1).
        accelerations: nominal accelerations ``R ≥ 1``, paired by index with ``center_fractions``.
        adjust_for_center: True: spacing ``a = R (W − n) / (W − n R)`` so the total is ≈ W/R
            (fastMRI's fraction variant, used for the public multicoil data; lines are only
            approximately equispaced). False: exact spacing ``R`` (must be an integer) from a
            random offset, plus the centre, so the true acceleration is lower than ``R``.
    """

    def __init__(
        self,
        center_fractions: list[float],
        accelerations: list[float],
        adjust_for_center: bool = True,
    ):
        super().__init__(center_fractions, accelerations)
        if not adjust_for_center:
            for a in self.accelerations:
                if a != int(a):
                    raise ValueError(
                        f"accelerations must be integers when adjust_for_center=False, got {a:g}"
                    )
        self.adjust_for_center = adjust_for_center

    def _outer_lines(
        self, num_cols: int, acceleration: float, num_low: int, generator: RandomSource
    ) -> torch.Tensor:
        lines = torch.zeros(num_cols, dtype=torch.bool, device=source_device(generator))
        if acceleration == 1:
            # fastMRI's arange(offset, W - 1, 1) would leave the last column out.
            return ~lines
        if not self.adjust_for_center:
            return equispaced_lines(num_cols, acceleration, num_cols, generator, integer_spacing=True)
        if num_low * acceleration >= num_cols:
            return lines  # the centre alone meets the line budget W / R
        spacing = acceleration * (num_cols - num_low) / (num_cols - num_low * acceleration)
        # fastMRI's np.arange(offset, W - 1, spacing)
        return equispaced_lines(num_cols, spacing, num_cols - 1, generator)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", adjust_for_center={self.adjust_for_center})"


class CsgmLineMask:
    """Jalal et al. 2021's phase-encode line mask (``_get_mask`` of utcsilab/csgm-mri-langevin).

    ``acs = floor(0.08 W)`` for 1 < R ≤ 6, else ``floor(0.04 W)``; centre lines
    ``[(W − acs)//2, (W + acs)//2)``; then ``outer[::R]`` of the other lines in index order
    (``equispaced``, bit for bit theirs: W = 384, R = 4 gives 30 + 89 = 119 lines, an effective
    3.23×), or ``floor(W/R) − acs`` distinct outer lines drawn at random (``random``: their count
    and centre; the draw is ours, per volume, where theirs comes from numpy's global RNG).

    Args:
        acceleration: R (an integer for ``equispaced``, as their ``int(R)`` slice needs).
        pattern: ``equispaced`` (their brain T2 config) or ``random``.
    """

    def __init__(self, acceleration: float, pattern: Literal["equispaced", "random"] = "equispaced"):
        acceleration = check_accelerations([acceleration])[0]
        if pattern not in ("equispaced", "random"):
            raise ValueError(f"pattern must be 'equispaced' or 'random', got {pattern!r}")
        if pattern == "equispaced" and acceleration != int(acceleration):
            raise ValueError(f"equispaced csgm masks need an integer acceleration, got {acceleration:g}")
        self.acceleration = acceleration
        self.pattern = pattern

    def __repr__(self) -> str:
        return f"CsgmLineMask(acceleration={self.acceleration:g}, pattern={self.pattern!r})"

    def __call__(self, shape: Sequence[int], generator: RandomSource) -> torch.Tensor:
        return self.sample(shape, generator).mask

    def center_lines(self, num_cols: int) -> np.ndarray:
        fraction = 0.08 if 1 < self.acceleration <= 6 else 0.04
        acs = int(math.floor(fraction * num_cols))
        return np.arange((num_cols - acs) // 2, (num_cols + acs) // 2)

    def sample(self, shape: Sequence[int], generator: RandomSource) -> MaskSample:
        _, num_cols = check_shape(shape)
        center = self.center_lines(num_cols)
        outer = np.setdiff1d(np.arange(num_cols), center)
        if self.pattern == "equispaced":
            chosen = outer[:: int(self.acceleration)]
        else:
            count = min(max(int(math.floor(num_cols / self.acceleration)) - len(center), 0), len(outer))
            chosen = random_subset(outer, count, generator)
        mask = torch.zeros(num_cols, dtype=torch.float32)
        mask[torch.from_numpy(np.concatenate([center, chosen]).astype(np.int64))] = 1.0
        return MaskSample(mask[None, :], self.acceleration, len(center))


# ---------------------------------------------------------------------------- the draws
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
