"""The undersampling masks users name in configs (``class_path: lit_sampler.physics.masks.<Class>``).

Shape convention: a mask function is called with the k-space image shape ``(H, W)`` (the last two
dims of k-space ``[..., coils, H, W]``) and returns a float32 0/1 tensor that broadcasts against
it: ``[1, W]`` for phase-encode line masks (lines are columns, i.e. indices along ``W``, as in
fastMRI, which samples along the second-to-last axis of its real-view ``[..., H, W, 2]`` k-space)
and ``[H, W]`` for 2-D patterns. The k-space centre (DC) sits at index ``(H // 2, W // 2)``, which
is where the centered FFT of :mod:`lit_sampler.physics.fft` puts it.

* :class:`RandomLineMask`, :class:`EquispacedLineMask`: fastMRI's line masks
  (``facebookresearch/fastMRI`` ``fastmri/data/subsample.py``, semantics, not code): one
  ``(center_fraction, acceleration)`` pair is drawn uniformly per call (paired by index);
  ``num_low_frequencies = round(W · center_fraction)`` (Python's round) centre lines start at
  ``(W − num_low_frequencies + 1) // 2``; the outer lines as each class's docstring says.
* :class:`CsgmLineMask`: Jalal et al.'s ``_get_mask`` (utcsilab/csgm-mri-langevin).
* :class:`VariableDensityMask`: a 2-D variable-density Poisson-disc pattern (the kind of mask the
  Stanford 2-D FSE knees ship with); the algorithm is :mod:`lit_sampler.physics.masks.variable_density`.

Masks draw from an explicit ``torch.Generator`` (never a global RNG) or, for fastMRI's own
validation masks bit for bit (``mask_seed: fastmri``), from a ``numpy.random.RandomState``: the
draws on either source are :mod:`lit_sampler.physics.masks.draws`.

Acceleration 1 is accepted and means fully sampled (every line is kept; fastMRI's equispaced
formula would leave out the last column, which its ``arange(offset, W − 1, a)`` never reaches). When the
centre alone already holds ``≥ W / R`` lines, no outer line is added (fastMRI's random mask does the
same through a negative probability; its equispaced mask would fail there).

The classes are defined here, not only imported: configs name them by this path, and
``run_settings.json`` records a mask by its class's module and name (a resume compares them).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np
import torch

# MaskSample, center_line_slice and effective_acceleration are public here (``__all__``), where
# users import them from; they live in masks_base with the checks every mask class shares.
from .common import MaskSample, check_accelerations, check_shape, center_line_slice, effective_acceleration
from .draws import RandomSource, choose, equispaced_lines, random_lines, random_subset, source_device
from .variable_density import variable_density_pattern

__all__ = [
    "MaskSample",
    "RandomLineMask",
    "EquispacedLineMask",
    "CsgmLineMask",
    "VariableDensityMask",
    "TransposedMask",
    "effective_acceleration",
    "center_line_slice",
    "mask_generator",
]


def mask_generator(seed: int, name: str, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator a volume's mask is drawn from, seeded by ``(seed, name)`` (``name``: the file
    name), so a volume gets the same mask in every run, rank and batch:
    ``RandomLineMask([0.08], [4])((H, W), mask_generator(0, "file_brain_001.h5"))``."""
    from ...seeding import seeded_generator

    return seeded_generator(seed, name, "mask", device=device)


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


class VariableDensityMask:
    """2-D variable-density Poisson-disc mask with a fully sampled calibration square.

    A maximal hard-core point set on the ``H × W`` grid whose minimum distance grows linearly with
    the normalised k-space radius, ``r(k) = s · (1 + radius_growth · ρ(k))`` (ρ = 0 at DC, 1 at
    the edge midpoints), so the density falls off as ``~1/r²`` outwards; built by random-order dart
    throwing with priorities from ``generator`` (:mod:`lit_sampler.physics.masks.variable_density`). The scale ``s``
    makes it hold exactly ``round(H·W / R)`` points (calibration square included), so the effective
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
