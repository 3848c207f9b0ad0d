"""Cartesian undersampling masks, drawn from an explicit ``torch.Generator`` (never a global RNG).

Shape convention: a mask function is called with the k-space image shape ``(H, W)`` (the last two
dims of k-space ``[..., coils, H, W]``) and returns a float32 0/1 tensor that broadcasts against
it: ``[1, W]`` for phase-encode line masks (lines are columns, i.e. indices along ``W``, as in
fastMRI, which samples along the second-to-last axis of its real-view ``[..., H, W, 2]`` k-space)
and ``[H, W]`` for 2-D patterns. The k-space centre (DC) sits at index ``(H // 2, W // 2)``, which
is where the centered FFT of :mod:`lit_sampler.fft` puts it.

Line masks follow ``facebookresearch/fastMRI`` ``fastmri/data/subsample.py`` (semantics, not code):

* one ``(center_fraction, acceleration)`` pair is drawn uniformly per call (paired by index);
* ``num_low_frequencies = round(W · center_fraction)`` (Python's round) centre lines start at
  ``(W − num_low_frequencies + 1) // 2``;
* :class:`RandomLineMask` (``RandomMaskFunc``): every line is kept independently with
  ``p = (W / R − num_low) / (W − num_low)``, so ``E[#lines] = W / R`` (centre ∪ outer);
* :class:`EquispacedLineMask` (``EquispacedMaskFractionFunc``, the masks of the public multicoil
  data): lines at ``round(offset + k · a)`` for ``k ≥ 0`` while ``< W − 1``, with the adjusted
  spacing ``a = R (W − num_low) / (W − num_low · R)`` and ``offset`` uniform in
  ``[0, round(a))``, so the total is ≈ ``W / R``. ``adjust_for_center=False`` gives
  ``EquiSpacedMaskFunc`` instead: lines at ``offset :: R`` (integer R), so the true acceleration is
  below ``R``.

**fastMRI's own draws.** Passed a ``numpy.random.RandomState`` instead of a ``torch.Generator``,
the line masks draw exactly as fastMRI 0.3.0 does (``choose_acceleration``'s ``randint``, then
``uniform(size=W)`` or ``randint(0, round(a))`` and numpy's ``arange``), so
``RandomLineMask(...)(shape, numpy.random.RandomState(tuple(map(ord, fname))))`` is bit for bit the
mask fastMRI's validation gives that file (``mask_seed: fastmri`` of the data modules).

:class:`CsgmLineMask` is Jalal et al.'s ``_get_mask`` (utcsilab/csgm-mri-langevin): a centre block
of ``floor(0.08 W)`` lines (``floor(0.04 W)`` for R > 6) at ``[(W − acs)//2, (W + acs)//2)``, then
``outer[::R]`` of the remaining lines (equispaced) or ``floor(W/R) − acs`` random outer lines.

Acceleration 1 is accepted and means fully sampled (every line is kept; fastMRI's equispaced
formula would leave out the last column, which its ``arange(offset, W − 1, a)`` never reaches). When the
centre alone already holds ``≥ W / R`` lines, no outer line is added (fastMRI's random mask does the
same through a negative probability; its equispaced mask would fail there).

:class:`VariableDensityMask` is a 2-D variable-density Poisson-disc pattern (the kind of mask the
Stanford 2-D FSE knees ship with), see its docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence, Union

import numpy as np
import torch

# a torch.Generator (our per-volume streams) or a numpy RandomState (reproducing fastMRI's draws)
RandomSource = Union[torch.Generator, np.random.RandomState]

__all__ = [
    "MaskSample",
    "RandomLineMask",
    "EquispacedLineMask",
    "CsgmLineMask",
    "VariableDensityMask",
    "effective_acceleration",
    "center_line_slice",
    "mask_generator",
]


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


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"mask shape must be (H, W) with positive sizes, got {shape}")
    return shape  # type: ignore[return-value]


def _check_accelerations(accelerations: Sequence[float]) -> list[float]:
    accelerations = [float(a) for a in accelerations]
    if not accelerations:
        raise ValueError("accelerations must not be empty")
    for a in accelerations:
        if not math.isfinite(a) or a < 1:
            raise ValueError(f"accelerations must be >= 1 (1 means fully sampled), got {a:g}")
    return accelerations


def _choose(n: int, generator: RandomSource) -> int:
    # Always draw, as fastMRI does, so the stream layout does not depend on the list length.
    if isinstance(generator, np.random.RandomState):
        return int(generator.randint(n))
    return int(torch.randint(n, (1,), generator=generator, device=generator.device).item())


def _device(generator: RandomSource) -> torch.device:
    return torch.device("cpu") if isinstance(generator, np.random.RandomState) else generator.device


def center_line_slice(num_cols: int, num_low_frequencies: int) -> slice:
    """Indices of the ``num_low_frequencies`` centre lines of ``num_cols`` (fastMRI placement).

    The block contains the DC line ``num_cols // 2`` for every parity of the two numbers.
    """
    start = (num_cols - num_low_frequencies + 1) // 2
    return slice(start, start + num_low_frequencies)


def mask_generator(seed: int, name: str, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator a volume's mask is drawn from, seeded by ``(seed, name)`` (``name``: the file
    name), so a volume gets the same mask in every run, rank and batch:
    ``RandomLineMask([0.08], [4])((H, W), mask_generator(0, "file_brain_001.h5"))``."""
    from .seeding import seeded_generator

    return seeded_generator(seed, name, "mask", device=device)


class _LineMask:
    """Shared parts of the fastMRI-style phase-encode line masks (see module docstring)."""

    def __init__(self, center_fractions: Sequence[float], accelerations: Sequence[float]):
        center_fractions = [float(c) for c in center_fractions]
        accelerations = _check_accelerations(accelerations)
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

    def __call__(self, shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
        """A float32 0/1 mask ``[1, W]`` for k-space of shape ``(H, W)``."""
        return self.sample(shape, generator).mask

    def sample(self, shape: Sequence[int], generator: torch.Generator) -> MaskSample:
        """Draw a mask for k-space ``(H, W)`` and report the parameters drawn."""
        _, num_cols = _check_shape(shape)
        choice = _choose(len(self.accelerations), generator)
        acceleration = self.accelerations[choice]
        num_low = round(num_cols * self.center_fractions[choice])
        mask = self._outer_lines(num_cols, acceleration, num_low, generator)
        mask[center_line_slice(num_cols, num_low)] = True
        return MaskSample(mask.to(torch.float32)[None, :], acceleration, num_low)

    def _outer_lines(
        self, num_cols: int, acceleration: float, num_low: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Bool ``[W]`` of the lines added outside the centre block (may overlap it)."""
        raise NotImplementedError


class RandomLineMask(_LineMask):
    """fastMRI ``RandomMaskFunc``: centre block plus lines kept with ``p = (W/R − n)/(W − n)``.

    Args:
        center_fractions: fraction of columns in the fully sampled centre, each in (0, 1).
        accelerations: nominal accelerations ``R ≥ 1``, paired by index with ``center_fractions``;
            one pair is drawn uniformly per call.
    """

    def __init__(self, center_fractions: list[float], accelerations: list[float]):
        super().__init__(center_fractions, accelerations)

    def _outer_lines(
        self, num_cols: int, acceleration: float, num_low: int, generator: torch.Generator
    ) -> torch.Tensor:
        if num_low >= num_cols:
            prob = 1.0
        else:
            prob = (num_cols / acceleration - num_low) / (num_cols - num_low)
        # One uniform per column, drawn even where the centre overrides it, so that a column's
        # fate does not depend on the chosen centre width (and matches fastMRI's draw pattern).
        if isinstance(generator, np.random.RandomState):
            return torch.from_numpy(generator.uniform(size=num_cols) < prob)
        u = torch.rand(num_cols, generator=generator, device=generator.device, dtype=torch.float64)
        return u < prob


class EquispacedLineMask(_LineMask):
    """fastMRI ``EquispacedMaskFractionFunc`` (default) or ``EquiSpacedMaskFunc`` line mask.

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
        self, num_cols: int, acceleration: float, num_low: int, generator: torch.Generator
    ) -> torch.Tensor:
        lines = torch.zeros(num_cols, dtype=torch.bool, device=_device(generator))
        if acceleration == 1:
            # fastMRI's arange(offset, W - 1, 1) would leave the last column out.
            return ~lines
        if self.adjust_for_center:
            if num_low * acceleration >= num_cols:
                return lines  # the centre alone meets the line budget W / R
            spacing = acceleration * (num_cols - num_low) / (num_cols - num_low * acceleration)
            stop = num_cols - 1  # fastMRI's np.arange(offset, W - 1, spacing)
        else:
            spacing = acceleration
            stop = num_cols
        high = max(round(spacing), 1)
        if isinstance(generator, np.random.RandomState):  # fastMRI's draw and numpy's arange, verbatim
            offset = int(generator.randint(0, high=high))
            if self.adjust_for_center:
                positions = np.around(np.arange(offset, stop, spacing)).astype(np.int64)
            else:
                positions = np.arange(offset, num_cols, int(spacing))
            lines[torch.from_numpy(positions)] = True
            return lines
        offset = int(torch.randint(high, (1,), generator=generator, device=generator.device).item())
        count = max(math.ceil((stop - offset) / spacing), 0)
        # offset + k·spacing as numpy's arange computes it, then round-half-to-even like np.around.
        positions = offset + spacing * torch.arange(count, dtype=torch.float64, device=lines.device)
        lines[torch.round(positions).long().clamp_(max=num_cols - 1)] = True
        return lines

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
        acceleration = _check_accelerations([acceleration])[0]
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
        _, num_cols = _check_shape(shape)
        center = self.center_lines(num_cols)
        outer = np.setdiff1d(np.arange(num_cols), center)
        if self.pattern == "equispaced":
            chosen = outer[:: int(self.acceleration)]
        else:
            count = min(max(int(math.floor(num_cols / self.acceleration)) - len(center), 0), len(outer))
            if isinstance(generator, np.random.RandomState):
                chosen = generator.choice(outer, count, replace=False)
            else:
                order = torch.randperm(len(outer), generator=generator, device=generator.device).cpu().numpy()
                chosen = outer[order[:count]]
        mask = torch.zeros(num_cols, dtype=torch.float32)
        mask[torch.from_numpy(np.concatenate([center, chosen]).astype(np.int64))] = 1.0
        return MaskSample(mask[None, :], self.acceleration, len(center))


class VariableDensityMask:
    """2-D variable-density Poisson-disc mask with a fully sampled calibration square.

    What it is: a *maximal* hard-core (Poisson-disc) point set on the ``H × W`` grid whose minimum
    distance grows linearly with the normalised k-space radius,
    ``r(k) = s · (1 + radius_growth · ρ(k))``, ``ρ = sqrt((ky/(H/2))² + (kx/(W/2))²)`` (0 at DC,
    1 at the edge midpoints), so the density falls off as ``~1/r²`` from the centre outwards.
    Two points ``i, j`` conflict when ``|i − j| < (r_i + r_j) / 2``. The set is built by random-order
    dart throwing — every grid point gets a uniform priority from ``generator`` and is accepted
    unless a conflicting point of lower priority was accepted first — computed in parallel
    rounds (Luby-style: points that are the minimum among their undecided conflicts are accepted,
    their conflicts removed), which yields exactly the sequential dart-throwing result.

    The scale ``s`` is found by bisection so that the pattern holds at least
    ``round(H·W / R)`` points (calibration square included); the surplus (a few percent) is then
    removed uniformly at random outside the calibration square, so the effective acceleration is
    exactly ``H·W / round(H·W/R)``. Removing points keeps the minimum-distance property.
    Where the required density exceeds what a grid allows (``r < 1``) every point is kept, so
    low accelerations (≲ 3) give a fully sampled central disc plus a sparse periphery.

    Args:
        accelerations: target accelerations ``R ≥ 1`` (one drawn uniformly per call; 1 = full).
        calib_size: side of the fully sampled square centred on DC (0 for none).
        radius_growth: how much larger the minimum distance is at ``ρ = 1`` than at the centre
            (``1 + radius_growth`` times); 0 gives a uniform-density Poisson-disc pattern.
    """

    def __init__(
        self,
        accelerations: list[float],
        calib_size: int = 16,
        radius_growth: float = 2.0,
    ):
        self.accelerations = _check_accelerations(accelerations)
        if int(calib_size) != calib_size or calib_size < 0:
            raise ValueError(f"calib_size must be a non-negative integer, got {calib_size}")
        if not math.isfinite(radius_growth) or radius_growth < 0:
            raise ValueError(f"radius_growth must be >= 0, got {radius_growth:g}")
        self.calib_size = int(calib_size)
        self.radius_growth = float(radius_growth)

    def __repr__(self) -> str:
        return (
            f"VariableDensityMask(accelerations={self.accelerations}, "
            f"calib_size={self.calib_size}, radius_growth={self.radius_growth})"
        )

    def __call__(self, shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
        """A float32 0/1 mask ``[H, W]``."""
        return self.sample(shape, generator).mask

    def sample(self, shape: Sequence[int], generator: torch.Generator) -> MaskSample:
        """Draw a mask for k-space ``(H, W)`` and report the parameters drawn."""
        height, width = _check_shape(shape)
        if not isinstance(generator, torch.Generator):
            raise ValueError(
                "VariableDensityMask draws from a torch.Generator; mask_seed: fastmri reproduces fastMRI's "
                "line masks only (RandomLineMask, EquispacedLineMask)"
            )
        device = generator.device
        acceleration = self.accelerations[_choose(len(self.accelerations), generator)]
        calib = self.calib_size
        if calib > min(height, width):
            raise ValueError(f"calib_size {calib} exceeds the k-space shape {(height, width)}")
        target = round(height * width / acceleration)
        if target < calib * calib:
            raise ValueError(
                f"calibration square {calib}x{calib} alone exceeds the {target} points allowed "
                f"by acceleration {acceleration:g} on shape {(height, width)}"
            )
        # Both draws happen unconditionally so every call consumes the same stream layout.
        priority = torch.rand(height, width, generator=generator, device=device)
        removal = torch.rand(height, width, generator=generator, device=device)

        calib_mask = torch.zeros(height, width, dtype=torch.bool, device=device)
        c0, c1 = (height - calib + 1) // 2, (width - calib + 1) // 2
        calib_mask[c0 : c0 + calib, c1 : c1 + calib] = True
        if target >= height * width:
            return MaskSample(torch.ones(height, width, device=device), acceleration, calib)

        ky = (torch.arange(height, device=device, dtype=torch.float32) - height // 2) / (height / 2)
        kx = (torch.arange(width, device=device, dtype=torch.float32) - width // 2) / (width / 2)
        profile = 1 + self.radius_growth * torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)

        def pattern(scale: float) -> torch.Tensor:
            return _dart_throwing(scale * profile, priority, ~calib_mask) | calib_mask

        # Bisection on log(scale): the count decreases (essentially monotonically) with scale.
        # At `lo` the pattern holds >= target points (r < 1 everywhere keeps every point).
        lo, hi = 0.99 / float(profile.max()), 1.0
        best = pattern(lo)
        while int((candidate := pattern(hi)).sum()) >= target:
            lo, hi, best = hi, 2 * hi, candidate
        for _ in range(40):
            mid = math.sqrt(lo * hi)
            candidate = pattern(mid)
            count = int(candidate.sum())
            if count >= target:
                lo, best = mid, candidate
                if count <= target * 1.02:
                    break
            else:
                hi = mid
        surplus = int(best.sum()) - target
        if surplus > 0:
            # Drop the surplus points with the smallest removal draws (outside the calibration).
            removable = best & ~calib_mask
            keys = torch.where(removable, removal, torch.full_like(removal, 2.0)).flatten()
            drop = torch.topk(keys, surplus, largest=False).indices
            best = best.flatten()
            best[drop] = False
            best = best.view(height, width)
        return MaskSample(best.to(torch.float32), acceleration, calib)


def _dart_throwing(radius: torch.Tensor, priority: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Random-order greedy hard-core sampling on a grid, computed in parallel rounds.

    Args:
        radius: ``[H, W]`` minimum-distance map; points conflict when their distance is below the
            mean of their two radii.
        priority: ``[H, W]`` distinct random priorities (lower is thrown first).
        candidates: ``[H, W]`` bool, points allowed to be chosen.

    Returns:
        ``[H, W]`` bool: the points sequential dart throwing in priority order would accept.
    """
    height, width = radius.shape
    reach = int(math.floor(float(radius.max()) - 1e-9)) if float(radius.max()) > 1 else 0
    if reach == 0:
        return candidates.clone()
    offsets = [
        (dy, dx)
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
        if (dy, dx) != (0, 0) and dy * dy + dx * dx < reach * reach + 2 * reach + 1
    ]
    pad = reach
    big = 2.0  # priorities are in [0, 1): "no conflicting neighbour"
    radius_p = torch.nn.functional.pad(radius, (pad, pad, pad, pad), value=0.0)

    def shifted(t: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        return t[pad + dy : pad + dy + height, pad + dx : pad + dx + width]

    # Conflict structure for this radius map, reused by every round.
    conflicts = []
    for dy, dx in offsets:
        conflict = 2 * math.sqrt(dy * dy + dx * dx) < radius + shifted(radius_p, dy, dx)
        if bool(conflict.any()):
            conflicts.append((dy, dx, conflict))

    chosen = torch.zeros_like(candidates)
    undecided = candidates.clone()
    while bool(undecided.any()):
        prio_p = torch.nn.functional.pad(
            torch.where(undecided, priority, torch.full_like(priority, big)), (pad,) * 4, value=big
        )
        neighbour_min = torch.full_like(priority, big)
        for dy, dx, conflict in conflicts:
            neighbour_min = torch.minimum(
                neighbour_min, torch.where(conflict, shifted(prio_p, dy, dx), big)
            )
        accept = undecided & (priority < neighbour_min)
        chosen |= accept
        accept_p = torch.nn.functional.pad(accept, (pad,) * 4, value=False)
        blocked = accept.clone()
        for dy, dx, conflict in conflicts:
            blocked |= conflict & shifted(accept_p, dy, dx)
        undecided &= ~blocked
    return chosen


def effective_acceleration(mask: torch.Tensor, shape: Sequence[int]) -> float:
    """Total k-space points over sampled points, ``H·W / Σ M``, for a mask broadcast to ``(H, W)``.

    Args:
        mask: 0/1 (or bool) mask broadcastable to ``shape``, e.g. ``[1, W]`` or ``[H, W]``.
        shape: the k-space shape ``(H, W)``.
    """
    shape = _check_shape(shape)
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
