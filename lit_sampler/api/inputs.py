"""Arrays a user holds → the pipeline's normalised measurement, and results back in the user's array type.

What :meth:`lit_sampler.api.Sampler.reconstruct` and the array baselines
(:mod:`lit_sampler.api.baseline_recon`) accept, checked once, each bad input one
:class:`~lit_sampler.errors.DataError` naming the argument, what was expected and what was found:

* ``kspace``: complex ``[coils, H, W]`` (one slice; single-coil data: ``coils = 1``) or
  ``[B, coils, H, W]`` (a batch), numpy or torch, in any units. Entries outside the mask are
  ignored (set to 0, as the pipeline's measurement ``M ⊙ (k + n)`` is).
* ``mask``: 0/1 (or bool), one for all items — ``[W]`` (phase-encode lines, fastMRI's layout),
  ``[1, W]``, ``[H, W]``, ``[1, H, W]`` — or one per item of a batch: ``[B, W]``, ``[B, 1, W]``,
  ``[B, H, W]``, ``[B, 1, H, W]``. (A ``[B, W]`` mask whose shape is also ``[H, W]`` is read as one
  2-D mask for all items; give ``[B, 1, W]`` to mean lines per item.)
* ``sens_maps``: complex ``[coils, H, W]`` (shared) or ``[B, coils, H, W]``; ``None``: estimated
  per item by ESPIRiT from the fully sampled centre the mask leaves (:func:`estimate_maps`), or
  ``S = 1`` for single-coil data.
* ``noise_var``: ν, the complex noise variance per sampled point and coil, in the units of
  ``kspace`` (a number, or one per item).

Each item is then normalised exactly as the data modules do it
(:func:`lit_sampler.data.transforms.normalise_measurement`: zero-filled MVUE ``x₀``, scale
``s = 99th percentile of |x₀|``, everything divided by ``s``, ν by ``s²``), in complex64 as the
pipeline computes. Results go back multiplied by ``s``: in the caller's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from ..data.espirit import calibration_region, espirit_maps
from ..errors import DataError

ArrayLike = Union[np.ndarray, torch.Tensor]
ESPIRIT_CALIBRATION = 24  # at most this many centre rows and columns feed ESPIRiT (fastMRI brains: 24-26 lines)


def as_tensor(value: Any, name: str) -> torch.Tensor:
    """A numpy array or torch tensor as a torch tensor (numpy copied, never shared)."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, copy=True))
    raise DataError(f"{name}: expected a numpy array or a torch tensor, found {type(value).__name__}")


def _shape(t: torch.Tensor) -> str:
    return str(list(t.shape))


@dataclass
class ArrayKind:
    """The caller's array type: numpy, or torch on ``device``. :meth:`give` converts a result back."""

    numpy: bool
    device: Optional[torch.device] = None

    @classmethod
    def of(cls, value: ArrayLike) -> "ArrayKind":
        return cls(numpy=not isinstance(value, torch.Tensor),
                   device=value.device if isinstance(value, torch.Tensor) else None)

    def give(self, value: Optional[torch.Tensor]):
        if value is None:
            return None
        value = value.detach()
        if self.numpy:
            return value.cpu().numpy()
        return value.to(self.device)


@dataclass
class CheckedInput:
    """The user's arrays, checked and batched (on the CPU, the caller's units).

    Attributes:
        kspace: ``[B, coils, H, W]`` complex64, zero outside the mask.
        mask: ``[B, 1, H, W]`` float32 0/1.
        sens_maps: ``[B, coils, H, W]`` complex64, or ``None`` (to be estimated / ``S = 1``).
        batched: the caller gave a batch (results keep the batch axis).
        kind: the caller's array type.
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    sens_maps: Optional[torch.Tensor]
    batched: bool
    kind: ArrayKind

    def __len__(self) -> int:
        return self.kspace.shape[0]


def check_kspace(kspace: ArrayLike) -> tuple[torch.Tensor, bool]:
    """``kspace`` as complex64 ``[B, coils, H, W]`` and whether it was a batch."""
    tensor = as_tensor(kspace, "kspace")
    if not tensor.is_complex():
        raise DataError(
            f"kspace: expected complex k-space [coils, H, W] or [B, coils, H, W], found {tensor.dtype} "
            f"{_shape(tensor)} (real and imaginary parts as a last axis of 2? use torch.view_as_complex / "
            "numpy's x[..., 0] + 1j * x[..., 1])"
        )
    if tensor.dim() == 2:
        raise DataError(f"kspace: expected [coils, H, W] or [B, coils, H, W], found {_shape(tensor)}; "
                        "for single-coil data add a coil axis (kspace[None])")
    if tensor.dim() not in (3, 4) or min(tensor.shape) < 1:
        raise DataError(f"kspace: expected [coils, H, W] or [B, coils, H, W], found {_shape(tensor)}")
    if not bool(torch.isfinite(torch.view_as_real(tensor)).all()):
        raise DataError(f"kspace: {_shape(tensor)} holds NaN or Inf values; expected finite values")
    batched = tensor.dim() == 4
    return (tensor if batched else tensor[None]).to(torch.complex64).cpu(), batched


def check_mask(mask: ArrayLike, batch: int, height: int, width: int, batched: bool) -> torch.Tensor:
    """``mask`` (module docstring) as float32 ``[B, 1, H, W]`` 0/1."""
    tensor = as_tensor(mask, "mask")
    found = _shape(tensor)
    shared = ([width], [1, width], [height, width], [1, height, width], [1, 1, width])
    per_item = ([batch, width], [batch, 1, width], [batch, height, width], [batch, 1, height, width],
                [batch, 1, 1, width]) if batched else ()
    shape = list(tensor.shape)
    if shape in [list(s) for s in shared]:
        tensor = tensor.reshape(1, 1, -1, width)
    elif shape in [list(s) for s in per_item]:
        tensor = tensor.reshape(batch, 1, -1, width)
    else:
        expected = f"[{width}], [1, {width}] or [{height}, {width}]"
        if batched:
            expected += (f" (one for all), or [{batch}, {width}], [{batch}, 1, {width}] or [{batch}, {height}, {width}] "
                         "(one per item)")
        raise DataError(f"mask: expected {expected} for k-space [.., {height}, {width}], found {found}")
    if tensor.is_complex():
        raise DataError(f"mask: expected 0/1 or bool values, found complex {found}")
    values = tensor.double()
    if not bool(((values == 0) | (values == 1)).all()):
        raise DataError(f"mask: expected 0/1 or bool values, found values from {float(values.min()):g} "
                        f"to {float(values.max()):g}")
    full = torch.broadcast_to(values != 0, (tensor.shape[0], 1, height, width))
    empty = [b for b in range(full.shape[0]) if not bool(full[b].any())]
    if empty:
        raise DataError(f"mask: samples no k-space point{'' if full.shape[0] == 1 else f' for item {empty[0]}'}; "
                        "expected at least the measured lines")
    return torch.broadcast_to(full.to(torch.float32), (batch, 1, height, width)).clone()


def check_maps(sens_maps: Optional[ArrayLike], kspace: torch.Tensor) -> Optional[torch.Tensor]:
    """``sens_maps`` as complex64 ``[B, coils, H, W]`` matching ``kspace`` (or ``None``)."""
    if sens_maps is None:
        return None
    tensor = as_tensor(sens_maps, "sens_maps")
    batch, coils, height, width = kspace.shape
    if not tensor.is_complex():
        raise DataError(f"sens_maps: expected complex maps [{coils}, {height}, {width}], found {tensor.dtype} {_shape(tensor)}")
    if list(tensor.shape) == [coils, height, width]:
        tensor = tensor[None].expand(batch, -1, -1, -1)
    elif list(tensor.shape) != [batch, coils, height, width]:
        expected = f"[{coils}, {height}, {width}]" + (f" or [{batch}, {coils}, {height}, {width}]" if batch > 1 else "")
        raise DataError(f"sens_maps: expected {expected} (the k-space's coils, H, W), found {_shape(tensor)}")
    if not bool(torch.isfinite(torch.view_as_real(tensor)).all()):
        raise DataError(f"sens_maps: {_shape(tensor)} holds NaN or Inf values; expected finite values")
    return tensor.to(torch.complex64).cpu().clone()


def check_inputs(kspace: ArrayLike, mask: ArrayLike, sens_maps: Optional[ArrayLike] = None) -> CheckedInput:
    """Every check of the module docstring; k-space zeroed outside the mask."""
    kind = ArrayKind.of(kspace)
    tensor, batched = check_kspace(kspace)
    batch, _, height, width = tensor.shape
    full_mask = check_mask(mask, batch, height, width, batched)
    maps = check_maps(sens_maps, tensor)
    sampled = torch.broadcast_to(full_mask.bool(), tensor.shape)
    masked = torch.where(sampled, tensor, torch.zeros((), dtype=tensor.dtype))
    return CheckedInput(masked, full_mask, maps, batched, kind)


def per_item(value: Any, name: str, batch: int) -> list[Any]:
    """A number (or ``None``) for every item, or one value per item (a list, numpy array or tensor of ``B``)."""
    if isinstance(value, np.generic):  # a numpy scalar (np.float32 is no Python float)
        value = value.item()
    if value is None or isinstance(value, (int, float, str)):
        return [value] * batch
    values = value.tolist() if isinstance(value, (np.ndarray, torch.Tensor)) else list(value)
    if isinstance(values, (int, float)):  # a 0-d array
        return [values] * batch
    if len(values) != batch:
        raise DataError(f"{name}: expected one number or {batch} values (one per item), found {len(values)}")
    return values


def check_noise_var(noise_var: Any, batch: int) -> list[float]:
    """ν per item: finite and ≥ 0."""
    values = per_item(noise_var, "noise_var", batch)
    for value in values:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < 0:
            raise DataError(f"noise_var: expected the complex noise variance ν >= 0 (finite; 0 for noiseless data), "
                            f"found {value!r}")
    return [float(v) for v in values]


# ---------------------------------------------------------------------------------------------- maps
def calibration_size(mask: torch.Tensor, limit: int = ESPIRIT_CALIBRATION) -> tuple[int, int]:
    """``(rows, cols)`` of the largest centred block (at most ``limit`` each way) that ``mask``
    ``[H, W]`` samples fully, as :func:`lit_sampler.data.espirit.calibration_region` cuts it:
    first the columns along the centre row, then the rows at that width."""
    height, width = mask.shape
    sampled = mask.bool()

    def full(rows: int, cols: int) -> bool:
        return bool(calibration_region(sampled[None], (rows, cols)).all())

    cols = 0
    while cols < min(limit, width) and full(1, cols + 1):
        cols += 1
    rows = 0
    while cols and rows < min(limit, height) and full(rows + 1, cols):
        rows += 1
    return rows, cols


def estimate_maps(kspace: ArrayLike, mask: ArrayLike, *, kernel_width: int = 6, thresh: float = 0.02,
                  crop: float = 0.0, calib_limit: int = ESPIRIT_CALIBRATION):
    """ESPIRiT coil maps (Uecker et al. 2014, :func:`lit_sampler.data.espirit.espirit_maps`) of one
    slice from the fully sampled centre its mask leaves: the centred block of at most
    ``calib_limit``² points the mask samples fully (the centre lines of a line mask, ``calib_limit``
    rows high). What ``reconstruct`` uses when no maps are given.

    Args:
        kspace: complex ``[coils, H, W]`` (numpy or torch).
        mask: ``[W]``, ``[1, W]`` or ``[H, W]`` 0/1.
        kernel_width, thresh, crop: ESPIRiT's kernel side, singular-value threshold and eigenvalue crop.

    Returns:
        maps ``[coils, H, W]`` complex64, in the type of ``kspace`` (unit norm over coils where kept).

    Raises:
        DataError: bad shapes (as ``reconstruct`` names them), or a fully sampled centre smaller than
            the kernel (then give ``sens_maps``).
    """
    checked = check_inputs(kspace, mask)
    if checked.batched:
        raise DataError(f"kspace: estimate_maps takes one slice [coils, H, W], found {_shape(checked.kspace)}")
    maps = espirit_for(checked.kspace[0], checked.mask[0, 0], kernel_width=kernel_width, thresh=thresh, crop=crop,
                       calib_limit=calib_limit)
    return checked.kind.give(maps)


def espirit_for(kspace: torch.Tensor, mask: torch.Tensor, *, kernel_width: int = 6, thresh: float = 0.02,
                crop: float = 0.0, calib_limit: int = ESPIRIT_CALIBRATION, where: str = "kspace") -> torch.Tensor:
    """:func:`estimate_maps` on checked tensors (``[coils, H, W]``, mask ``[H, W]``)."""
    rows, cols = calibration_size(mask, calib_limit)
    if min(rows, cols) < kernel_width:
        raise DataError(
            f"sens_maps: none given, and the mask of {where} samples a fully sampled centre of only {rows}×{cols} "
            f"points; ESPIRiT (kernel_width {kernel_width}) needs at least {kernel_width}×{kernel_width}: give "
            "sens_maps (e.g. from a fully sampled calibration scan), or sample more centre lines"
        )
    return espirit_maps(kspace, calib_width=(rows, cols), kernel_width=kernel_width, thresh=thresh, crop=crop)


def complete_maps(checked: CheckedInput) -> torch.Tensor:
    """The maps of every item: the given ones, else ESPIRiT per item (multi-coil) or ``S = 1`` (single-coil)."""
    if checked.sens_maps is not None:
        return checked.sens_maps
    batch, coils, height, width = checked.kspace.shape
    if coils == 1:
        return torch.ones(batch, 1, height, width, dtype=torch.complex64)
    return torch.stack([espirit_for(checked.kspace[b], checked.mask[b, 0], where=f"item {b}" if checked.batched else "kspace")
                        for b in range(batch)])


# -------------------------------------------------------------------------------- normalisation
@dataclass
class Normalised:
    """The items normalised as the pipeline does (:func:`lit_sampler.data.transforms.normalise_measurement`).

    ``kspace`` ``[B, coils, H, W]``, ``zero_filled`` ``[B, H, W]`` complex64; ``mask`` ``[B, 1, H, W]``;
    ``sens_maps`` ``[B, coils, H, W]``; ``scale``, ``noise_var`` (ν/s²) float32 ``[B]``.
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    sens_maps: torch.Tensor
    zero_filled: torch.Tensor
    scale: torch.Tensor
    noise_var: torch.Tensor


def normalise(checked: CheckedInput, maps: torch.Tensor, noise_var: Sequence[float],
              scale_percentile: float = 99.0) -> Normalised:
    """Each item through :func:`~lit_sampler.data.transforms.normalise_measurement` (MVUE zero-filled
    image with ``maps``, scale = its ``scale_percentile``-th percentile), stacked."""
    from ..data.transforms import RawMeasurement, normalise_measurement  # (reads h5py files' module: on use)

    single_coil = checked.sens_maps is None and checked.kspace.shape[1] == 1
    items = []
    for b in range(len(checked)):
        where = f"kspace item {b}" if checked.batched else "kspace"
        # single-coil without maps: S = 1, the pipeline's single-coil case (maps None → the image F⁻¹k)
        raw = RawMeasurement(kspace=checked.kspace[b], mask=checked.mask[b], maps=None if single_coil else maps[b],
                             noise_var=float(noise_var[b]), snr_db=None, where=where)
        items.append(normalise_measurement(raw, scale_percentile))
    return Normalised(
        kspace=torch.stack([m.kspace for m in items]),
        mask=torch.stack([m.mask for m in items]),
        sens_maps=torch.stack([m.sens_maps for m in items]),
        zero_filled=torch.stack([m.zero_filled for m in items]),
        scale=torch.tensor([m.scale for m in items], dtype=torch.float32),
        noise_var=torch.tensor([m.noise_var for m in items], dtype=torch.float32),
    )


def to_data_units(images: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Normalised images ``[B, ...]`` times each item's scale, as the pipeline's outputs
    (:func:`lit_sampler.outputs.prediction.add_measurement_outputs`: ``value * scale.float()``)."""
    return images * scale.float().reshape(-1, *([1] * (images.dim() - 1)))
