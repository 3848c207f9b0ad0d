"""2-D variable-density Poisson-disc masks ``[H, W]``: :class:`VariableDensityMask` (the kind of mask the
Stanford 2-D FSE knees ship with) and the pattern it draws.

What it is: a *maximal* hard-core (Poisson-disc) point set on the ``H × W`` grid whose minimum
distance grows linearly with the normalised k-space radius,
``r(k) = s · (1 + radius_growth · ρ(k))``, ``ρ = sqrt((ky/(H/2))² + (kx/(W/2))²)`` (0 at DC,
1 at the edge midpoints), so the density falls off as ``~1/r²`` from the centre outwards.
Two points ``i, j`` conflict when ``|i − j| < (r_i + r_j) / 2``. The set is built by random-order
dart throwing — every grid point gets a uniform priority and is accepted unless a conflicting
point of lower priority was accepted first — computed in parallel rounds (Luby-style: points that
are the minimum among their undecided conflicts are accepted, their conflicts removed), which
yields exactly the sequential dart-throwing result.

The scale ``s`` is found by bisection so that the pattern holds at least the target number of
points (calibration square included); the surplus (a few percent) is then removed uniformly at
random outside the calibration square, so the count is exactly the target. Removing points keeps
the minimum-distance property. Where the required density exceeds what a grid allows (``r < 1``)
every point is kept, so low accelerations (≲ 3) give a fully sampled central disc plus a sparse
periphery.

The random draws (priorities, removal keys) come from the caller's ``torch.Generator``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .common import MaskSample, check_accelerations, check_shape, choose


class VariableDensityMask:
    """2-D variable-density Poisson-disc mask with a fully sampled calibration square.

    A maximal hard-core point set on the ``H × W`` grid whose minimum distance grows linearly with
    the normalised k-space radius, ``r(k) = s · (1 + radius_growth · ρ(k))`` (ρ = 0 at DC, 1 at
    the edge midpoints), so the density falls off as ``~1/r²`` outwards; built by random-order dart
    throwing with priorities from ``generator`` (:func:`variable_density_pattern`, below). The scale
    ``s`` makes it hold exactly ``round(H·W / R)`` points (calibration square included), so the effective
    acceleration is ``H·W / round(H·W/R)``; low accelerations (≲ 3) give a fully sampled central
    disc plus a sparse periphery.

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
        self.accelerations = check_accelerations(accelerations)
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
        height, width = check_shape(shape)
        if not isinstance(generator, torch.Generator):
            raise ValueError(
                "VariableDensityMask draws from a torch.Generator; mask_seed: fastmri reproduces fastMRI's "
                "line masks only (RandomLineMask, EquispacedLineMask)"
            )
        acceleration = self.accelerations[choose(len(self.accelerations), generator)]
        calib = self.calib_size
        if calib > min(height, width):
            raise ValueError(f"calib_size {calib} exceeds the k-space shape {(height, width)}")
        target = round(height * width / acceleration)
        if target < calib * calib:
            raise ValueError(
                f"calibration square {calib}x{calib} alone exceeds the {target} points allowed "
                f"by acceleration {acceleration:g} on shape {(height, width)}"
            )
        return MaskSample(variable_density_pattern((height, width), calib, self.radius_growth, target, generator),
                          acceleration, calib)


def variable_density_pattern(
    shape: tuple[int, int], calib: int, radius_growth: float, target: int, generator: torch.Generator
) -> torch.Tensor:
    """Float32 0/1 ``[H, W]``: a ``calib × calib`` square centred on DC plus a variable-density
    Poisson-disc set, ``target`` points in all (every point when ``target ≥ H · W``).

    Draws ``[H, W]`` priorities, then ``[H, W]`` removal keys from ``generator``, always both.
    """
    height, width = shape
    device = generator.device
    # Both draws happen unconditionally so every call consumes the same stream layout.
    priority = torch.rand(height, width, generator=generator, device=device)
    removal = torch.rand(height, width, generator=generator, device=device)

    calib_mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    c0, c1 = (height - calib + 1) // 2, (width - calib + 1) // 2
    calib_mask[c0 : c0 + calib, c1 : c1 + calib] = True
    if target >= height * width:
        return torch.ones(height, width, device=device)
    profile = radius_profile(height, width, radius_growth, device)
    return poisson_disc_pattern(profile, priority, removal, calib_mask, target).to(torch.float32)


def radius_profile(height: int, width: int, radius_growth: float, device: torch.device) -> torch.Tensor:
    """``[H, W]``: ``1 + radius_growth · ρ(k)``, the minimum distance up to the scale ``s``."""
    ky = (torch.arange(height, device=device, dtype=torch.float32) - height // 2) / (height / 2)
    kx = (torch.arange(width, device=device, dtype=torch.float32) - width // 2) / (width / 2)
    return 1 + radius_growth * torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


def poisson_disc_pattern(
    profile: torch.Tensor,
    priority: torch.Tensor,
    removal: torch.Tensor,
    calib_mask: torch.Tensor,
    target: int,
) -> torch.Tensor:
    """Bool ``[H, W]``: exactly ``target`` points, the calibration square and a Poisson-disc set.

    Args:
        profile: ``[H, W]`` radius profile (:func:`radius_profile`), scaled by the bisection.
        priority: ``[H, W]`` uniform draws, the dart-throwing order.
        removal: ``[H, W]`` uniform draws; the surplus points with the smallest are dropped.
        calib_mask: ``[H, W]`` bool, the fully sampled calibration square (always kept).
        target: the number of points, at least ``calib_mask.sum()`` and below ``H · W``.
    """
    height, width = profile.shape

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
    return best


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
