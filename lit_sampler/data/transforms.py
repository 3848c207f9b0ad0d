"""From a loaded slice to one measurement: target, mask, SNR noise, per-slice scale.

For one item ``(file, slice, SNR)`` (DESIGN.md):

1. read the slice, apply the geometry (:class:`lit_sampler.data.geometry.Geometry`):
   ``k [coils, H, W]``, maps ``S`` (or none) — :class:`~lit_sampler.data.slice_loader.SliceLoader`;
2. ground truth ``x★ = combine(k, S)`` (MVUE or RSS, see :mod:`~lit_sampler.physics.coils`) from the
   fully sampled k-space, unless the stored k-space is already undersampled; pre-whitened k-space
   is combined from the scanner's coils ``W⁻¹ k`` with the maps ``W⁻¹ S``, so ``x★`` and ``x₀`` are
   on the unwhitened intensity scale, the scale of the forward model's image;
3. mask ``M``: the file's ``mask`` (when ``use_file_mask``), else ``mask_fn((H, W), g)`` with
   ``g = mask_generator(seed, fname)`` (``seeded_generator(seed, fname, "mask")``) — one mask per volume
   (``mask_seed="fastmri"``: ``g = numpy.random.RandomState(tuple(map(ord, fname)))``, fastMRI's own);
4. ``y = M ⊙ k + M ⊙ n``, ``n ~ CN(0, ν)``, ``ν = mean_sampled |M ⊙ k|² · 10^(−SNR/10)``
   (:func:`lit_sampler.physics.noise.add_measurement_noise`), noise drawn from
   ``seeded_generator(seed, fname, slice, snr_label(SNR), "noise")``; raw scanner data add their
   measured noise variance to ν (:mod:`lit_sampler.data.measured_noise`);
5. zero-filled image ``x₀ = combine(y, S)`` (same formula as the target);
6. scale ``s = percentile_p(|x₀|)`` (``p = scale_percentile``, default 99): computed from the
   measured (noisy, undersampled) data, as a practitioner without ground truth would;
7. everything is divided by ``s``: ``y/s``, ``x★/s``, ``x₀/s``, ``ν/s²``.

Seeds depend on the item identity only, so an item's content never depends on batching, order or
the number of processes. Samples of one ``(file, slice, SNR)`` share the same measurement.

:meth:`MeasurementTransform.measure` stops after step 5's inputs (the data's own units:
:class:`RawMeasurement`, what :func:`lit_sampler.data.measure_slice` hands a Python user);
:func:`normalise_measurement` does steps 5–7, for the data modules and for the Python API alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from ..errors import DataError
from .fastmri import VolumeInfo
from .measured_noise import measured_noise_var
from ..physics.coils import combine
from ..physics.masks import mask_generator
from ..physics.noise import add_measurement_noise, is_noiseless, snr_label
from ..seeding import seeded_generator
from .slice_loader import PreparedSlice, expand_mask

TARGET_KINDS = ("auto", "mvue", "rss", "none")
MASK_SEEDS = ("run", "fastmri")


@runtime_checkable
class MaskFunc(Protocol):
    """What a mask is: ``mask_fn(shape, generator) -> Tensor``.

    ``shape`` is the k-space ``(H, W)``; the result is float 0/1, ``[1, W]`` (phase-encode lines) or
    ``[H, W]`` (2-D). The classes of :mod:`lit_sampler.physics.masks` implement it. (Typed as a protocol
    with untyped, positional-only parameters and an ``Any`` result so that jsonargparse accepts a
    ``class_path`` to any such class; a ``Callable[..., Tensor]`` type would make jsonargparse
    expect a factory that returns a tensor subclass.)
    """

    def __call__(self, shape: Any, generator: Any, /) -> Any: ...


def default_mask() -> MaskFunc:
    """The default undersampling: fastMRI random lines, 8 % centre, 4× (``RandomLineMask([0.08], [4])``)."""
    from ..physics.masks import RandomLineMask

    return RandomLineMask(center_fractions=[0.08], accelerations=[4])


def parse_snr(level: Any) -> Optional[float]:
    """An ``snr_range`` entry → ``None`` (noiseless) or a finite float in dB.

    Accepts numbers, ``None``, ``inf`` (float or the strings ``"inf"``, ``"+inf"``, ``"infinity"``,
    ``"null"``, ``"none"``, case-insensitive) for noiseless.
    """
    if level is None:
        return None
    if isinstance(level, str):
        text = level.strip().lower()
        if text in ("inf", "+inf", "infinity", "+infinity", ".inf", "null", "none", "noiseless"):
            return None
        try:
            level = float(text)
        except ValueError:
            raise DataError(f"snr_range: {level!r} is not a number in dB, 'inf' or null") from None
    if isinstance(level, bool):
        raise DataError(f"snr_range: {level!r} is not a number in dB, 'inf' or null")
    level = float(level)
    if math.isnan(level) or level == -math.inf:
        raise DataError(f"snr_range: {level!r} is not a valid SNR; expected a finite dB value, 'inf' or null")
    return None if is_noiseless(level) else level


def parse_snr_range(snr_range: Sequence[Any]) -> list[Optional[float]]:
    """Validate ``snr_range`` (non-empty, no repeated level) and normalise its entries."""
    if snr_range is None or len(snr_range) == 0:
        raise DataError("snr_range is empty; expected at least one level in dB (null = noiseless)")
    levels = [parse_snr(level) for level in snr_range]
    labels = [snr_label(level) for level in levels]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise DataError(f"snr_range {list(snr_range)} repeats {repeated}; expected distinct levels")
    return levels


def resolve_target(volume: VolumeInfo, target: str, require_maps: bool) -> tuple[str, str]:
    """``(target kind, combine kind)`` of a volume: target ∈ {"mvue", "rss", "none"}; the zero-filled
    image uses the target's formula, or, for ``"none"``, MVUE where possible and RSS otherwise.

    Raises:
        DataError: an unknown ``target``; multi-coil data without maps where maps are needed (the
            posterior forward model, or ``target="mvue"``).
    """
    if target not in TARGET_KINDS:
        raise DataError(f"target must be one of {list(TARGET_KINDS)}, got {target!r}")
    can_mvue = volume.has_maps or not volume.multicoil
    if volume.multicoil and not volume.has_maps and (require_maps or target == "mvue"):
        why = "the forward model A x = M F(S x) needs them" if require_maps else "target='mvue' needs them"
        raise DataError(
            f"{volume.path}: multi-coil dataset 'kspace' {volume.kspace_shape} but no coil sensitivity "
            f"maps ({why}): looked for datasets 'sens_maps', 's_maps', 'maps' in the file (or set "
            "maps_dir / maps_key); estimate them with scripts/prepare_fastmri.py"
        )
    if target == "auto":
        # single-coil data: the complex image itself (S = 1), whose magnitude is the RSS; keeping the
        # phase matters for a warm start from the zero-filled image
        kind = "mvue" if can_mvue else "rss"
        return kind, kind
    if target == "none":
        return "none", "mvue" if can_mvue else "rss"
    return target, target


@dataclass
class Measurement:
    """One ``(file, slice, SNR)`` measurement, normalised by ``scale`` (see the module docstring).

    Attributes:
        kspace: ``[coils, H, W]`` complex64, ``M ⊙ (k + n) / s``.
        mask: ``[1, H, W]`` float32.
        sens_maps: ``[coils, H, W]`` complex64 (ones ``[1, H, W]`` without maps).
        target: ``[H, W]`` complex64, ``x★ / s`` (zeros when ``has_target`` is False).
        zero_filled: ``[H, W]`` complex64, ``x₀ / s``.
        scale, noise_var, snr_db: ``s``, ``ν / s²`` (normalised units), SNR (``inf`` = noiseless).
        real_noise: the data carry the scanner's own noise (file attribute ``real_noise``).
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    sens_maps: torch.Tensor
    target: torch.Tensor
    has_target: bool
    zero_filled: torch.Tensor
    scale: float
    noise_var: float
    snr_db: float
    real_noise: bool = False


class MeasurementTransform:
    """Mask, noise and normalisation of a :class:`PreparedSlice` (module docstring, steps 2–7).

    Args:
        mask_fn: a :class:`MaskFunc`; ``None`` → :func:`default_mask`.
        seed: run seed for masks and noise.
        scale_percentile: percentile ``p`` of ``|x₀|`` used as the scale.
        target: "auto" | "mvue" | "rss" | "none" (resolved per volume by :func:`resolve_target`).
    """

    def __init__(
        self,
        mask_fn: Optional[MaskFunc] = None,
        seed: int = 0,
        scale_percentile: float = 99.0,
        target: str = "auto",
        mask_seed: str = "run",
    ):
        if mask_seed not in MASK_SEEDS:
            raise DataError(f"mask_seed must be one of {list(MASK_SEEDS)}, got {mask_seed!r}")
        if not 0 < float(scale_percentile) <= 100:
            raise DataError(f"scale_percentile must lie in (0, 100], got {scale_percentile}")
        if target not in TARGET_KINDS:
            raise DataError(f"target must be one of {list(TARGET_KINDS)}, got {target!r}")
        self.mask_fn = default_mask() if mask_fn is None else mask_fn
        self.seed = int(seed)
        self.scale_percentile = float(scale_percentile)
        self.target = target
        self.mask_seed = mask_seed
        self._mask_cache: dict[tuple[str, int, int], torch.Tensor] = {}

    def volume_mask(self, fname: str, shape: tuple[int, int], where: str = "") -> torch.Tensor:
        """The configured mask of a volume, ``[1, H, W]`` float32 (cached; one draw per volume)."""
        key = (fname, int(shape[0]), int(shape[1]))
        if key not in self._mask_cache:
            drawn = self.mask_fn(tuple(int(s) for s in shape), self.mask_source(fname))
            mask = expand_mask(drawn, shape, where or fname)
            if not bool(mask.any()):
                raise DataError(f"{where or fname}: the mask {self.mask_fn!r} samples no k-space point")
            self._mask_cache[key] = mask
        return self._mask_cache[key]

    def mask_source(self, fname: str):
        """The random source of a volume's mask: our ``(seed, fname)`` stream, or with
        ``mask_seed="fastmri"`` fastMRI's ``RandomState(tuple(map(ord, fname)))`` (its validation
        masks, bit for bit; the run ``seed`` then does not change masks)."""
        if self.mask_seed == "fastmri":
            return np.random.RandomState(tuple(map(ord, fname)))
        return mask_generator(self.seed, fname)

    def mask_for(self, data: PreparedSlice) -> torch.Tensor:
        if data.file_mask is not None:
            if not bool(data.file_mask.any()):
                raise DataError(f"{data.where}: dataset 'mask' samples no k-space point")
            return data.file_mask
        return self.volume_mask(data.volume.fname, tuple(data.kspace.shape[-2:]), data.where)

    def kinds(self, data: PreparedSlice) -> tuple[str, str]:
        kind, zf_kind = resolve_target(data.volume, self.target, require_maps=False)
        if data.undersampled:
            kind = "none"
        return kind, zf_kind

    def measure(self, data: PreparedSlice, snr_db: Optional[float]) -> RawMeasurement:
        """Steps 2–5 of the module docstring in the data's own units: the item's mask, its noisy
        masked k-space and ν, and the unscaled ground truth (what a user holding the k-space has)."""
        kspace, maps = data.kspace, data.maps
        target_kind, zf_kind = self.kinds(data)
        mask = self.mask_for(data)
        generator = seeded_generator(self.seed, data.volume.fname, data.slice_num, snr_label(snr_db), "noise")
        try:
            noisy, nu = add_measurement_noise(kspace, mask, snr_db, generator)
        except ValueError as err:
            raise DataError(f"{data.where}: {err}") from None
        nu += measured_noise_var(data.volume)  # raw data's own noise (0 for simulated / fastMRI files)
        # pre-whitened data are combined from the scanner's coils (None otherwise): the images are
        # those of the unwhitened data, not shaded by the whitened coils' gain (coils.py docstring)
        unwhitening = data.unwhitening
        target = None if target_kind == "none" else combine(kspace, maps, target_kind, unwhitening)
        return RawMeasurement(kspace=noisy, mask=mask, maps=maps, noise_var=nu, snr_db=snr_db, target=target,
                              combine_kind=zf_kind, unwhitening=unwhitening,
                              real_noise=bool(data.volume.attrs.get("real_noise", False)), where=data.where)

    def __call__(self, data: PreparedSlice, snr_db: Optional[float]) -> Measurement:
        raw = self.measure(data, snr_db)
        return normalise_measurement(raw, self.scale_percentile)


@dataclass
class RawMeasurement:
    """One measurement in the data's own units, before the per-slice scale (steps 2–5).

    Attributes:
        kspace: ``[coils, H, W]`` complex64, ``M ⊙ (k + n)``.
        mask: ``[1, H, W]`` float32.
        maps: ``[coils, H, W]`` complex64, or ``None`` (single-coil: ``S = 1``).
        noise_var: ν, the complex noise variance per sampled point and coil (0: noiseless).
        snr_db: the added noise's SNR (``None``: none added).
        target: ``[H, W]`` complex ground truth, or ``None`` without one.
        combine_kind: how the zero-filled image is combined (``"mvue"`` or ``"rss"``).
        unwhitening: ``W⁻¹`` of pre-whitened data, or ``None``.
        real_noise: the data carry the scanner's own noise.
        where: the file and slice, for messages.
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    maps: Optional[torch.Tensor]
    noise_var: float
    snr_db: Optional[float]
    target: Optional[torch.Tensor] = None
    combine_kind: str = "mvue"
    unwhitening: Optional[torch.Tensor] = None
    real_noise: bool = False
    where: str = ""


def normalise_measurement(raw: RawMeasurement, scale_percentile: float = 99.0) -> Measurement:
    """Steps 5–7 of the module docstring: the zero-filled image ``x₀``, the scale
    ``s = percentile_p(|x₀|)`` and everything divided by it. The one place the per-slice scale is
    made: the data modules and the Python API (:mod:`lit_sampler.api`) both come through here.

    Raises:
        DataError: a zero (or non-finite) scale, naming ``raw.where``.
    """
    zero_filled = combine(raw.kspace, raw.maps, raw.combine_kind, raw.unwhitening)
    scale = percentile_scale(zero_filled, scale_percentile)
    if not (math.isfinite(scale) and scale > 0):
        raise DataError(
            f"{raw.where}: the zero-filled image is zero at the {scale_percentile:g}th "
            f"percentile (scale = {scale:g}); expected a positive scale (too little signal under the mask?)"
        )
    height, width = raw.kspace.shape[-2:]
    if raw.target is None:
        target = torch.zeros(height, width, dtype=torch.complex64)
    else:
        target = raw.target / scale
    sens_maps = raw.maps if raw.maps is not None else torch.ones(1, height, width, dtype=torch.complex64)
    return Measurement(
        kspace=(raw.kspace / scale).to(torch.complex64),
        mask=raw.mask,
        sens_maps=sens_maps,
        target=target.to(torch.complex64),
        has_target=raw.target is not None,
        zero_filled=(zero_filled / scale).to(torch.complex64),
        scale=scale,
        noise_var=raw.noise_var / scale**2,
        snr_db=math.inf if raw.snr_db is None else float(raw.snr_db),
        real_noise=raw.real_noise,
    )


def percentile_scale(image: torch.Tensor, percentile: float) -> float:
    """``percentile``-th percentile of ``|image|`` (linear interpolation, as ``numpy.percentile``)."""
    magnitude = image.abs().flatten().to(torch.float64)
    return float(torch.quantile(magnitude, percentile / 100.0))
