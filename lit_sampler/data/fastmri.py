"""Reading fastMRI-format HDF5 files: metadata validation (:func:`inspect_volume`) and per-slice reads.

File layout (fastMRI, ``facebookresearch/fastMRI`` ``fastmri/data/README.md``):

* ``kspace``: complex, ``[slices, coils, H, W]`` (multi-coil) or ``[slices, H, W]`` (single-coil);
  ``H`` is the readout, ``W`` the phase-encode axis (lines are columns).
* optional coil sensitivities shaped like the k-space, ``[slices, coils, H, W]`` complex: in the same
  file under ``sens_maps`` (ours), ``s_maps`` or ``maps``; or in a separate maps folder holding a file
  of the same name with the key ``s_maps`` (the layout of ``utcsilab/csgm-mri-langevin``), or BART
  ``<stem>.cfl``/``.hdr`` files there (:mod:`lit_sampler.data.bart`).
* optional ``mask``: ``[W]`` (fastMRI test/challenge files) or ``[H, W]``, 0/1.
* optional ``reconstruction_rss`` / ``reconstruction_esc`` (not used for sampling: their 320×320
  image-domain crop is a different geometry from ours) and ``ismrmrd_header``.
* attributes such as ``max``, ``norm``, ``acquisition``, ``patient_id``.

Files are opened per read and closed right after (``with h5py.File(...)``), and arrays are copied
out before the file closes: nothing stays open, so datasets are safe with ``num_workers > 0`` and
DDP, and the h5py attribute-read leak of fastMRI issue #215 cannot pile up.

Every problem with the input raises :class:`DataError` naming the file, the slice when relevant,
the key and what was expected versus found. Cheap checks (paths, keys, shapes, dtypes from h5py
metadata without reading arrays) run eagerly in :func:`inspect_volume`; checks that need the data
(NaN/Inf, all-zero slice) run per slice in :func:`read_slice`.

Which files and slices are read: :mod:`lit_sampler.data.selection`; writing this layout:
:mod:`lit_sampler.data.fastmri_write`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import h5py
import numpy as np
import torch

from . import bart
from ..errors import DataError
from .whitening import whitening_from_covariance

KSPACE_KEY = "kspace"
MASK_KEY = "mask"
#: Keys searched, in order, for maps inside the k-space file when ``maps_key`` is not given.
MAPS_KEYS_IN_FILE = ("sens_maps", "s_maps", "maps")
#: Key of the maps in a separate maps folder (csgm-mri-langevin layout) when ``maps_key`` is not given.
MAPS_KEY_IN_DIR = "s_maps"
#: Attributes copied into :attr:`VolumeInfo.attrs` when present.
ATTR_KEYS = (
    "max", "norm", "acquisition", "patient_id", "acceleration", "num_low_frequencies",
    # written by the ISMRMRD conversion (lit_sampler.data.raw_prepare; rules in data.measured_noise)
    "real_noise", "measured_noise_var", "acquired_mask", "voxel_size_mm", "prepared_source",
    "whitened", "whitening_scale",
)
#: The noise covariance ``Ψ`` a whitened file's k-space was whitened with (ISMRMRD conversions).
NOISE_COVARIANCE_KEY = "noise_covariance"


def _shape(shape: Sequence[int]) -> list[int]:
    return [int(s) for s in shape]


# --------------------------------------------------------------------------------------------------
# Volume metadata
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeInfo:
    """Metadata of one k-space file, read without loading arrays.

    Attributes:
        path: the k-space file.
        fname: its file name (the volume's identity in items and outputs).
        num_slices, coils, height, width: k-space shape ``[slices, coils, H, W]`` (coils = 1 for
            single-coil files).
        multicoil: whether ``kspace`` has a coil axis.
        maps_path, maps_key: where the sensitivity maps live, or ``None``.
        mask_shape: shape of the stored ``mask`` dataset (``[W]`` or ``[H, W]``), or ``None``.
        attrs: selected file attributes (:data:`ATTR_KEYS`), as plain Python values.
        unwhitening: ``W⁻¹`` ``[coils, coils]`` complex128 of pre-whitened k-space (attribute
            ``whitened``), which takes its coils back to the scanner's; ``None`` otherwise
            (:func:`unwhitening_of`).
    """

    path: str
    fname: str
    num_slices: int
    coils: int
    height: int
    width: int
    multicoil: bool
    maps_path: Optional[str] = None
    maps_key: Optional[str] = None
    mask_shape: Optional[tuple[int, ...]] = None
    attrs: dict = field(default_factory=dict, compare=False)
    unwhitening: Optional[np.ndarray] = field(default=None, compare=False, repr=False)

    @property
    def has_maps(self) -> bool:
        return self.maps_key is not None

    @property
    def kspace_shape(self) -> list[int]:
        if self.multicoil:
            return [self.num_slices, self.coils, self.height, self.width]
        return [self.num_slices, self.height, self.width]


def _open(path: Union[str, Path], role: str = "") -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file{role}") from None
    except OSError as err:
        raise DataError(f"{path}: cannot open as an HDF5 file ({err})") from None


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _dataset(f: h5py.File, key: str, path, role: str = "") -> h5py.Dataset:
    if key not in f or not isinstance(f[key], h5py.Dataset):
        raise DataError(f"{path}: no dataset '{key}'{role} (found: {sorted(f.keys())})")
    return f[key]


def _check_complex(dset: h5py.Dataset, path, key: str) -> None:
    if dset.dtype.kind != "c":
        raise DataError(f"{path}: dataset '{key}' has dtype {dset.dtype} but needs a complex type (complex64)")


def inspect_volume(
    path: Union[str, Path],
    maps_dir: Optional[Union[str, Path]] = None,
    maps_key: Optional[str] = None,
) -> VolumeInfo:
    """Validate one file from its metadata and locate its maps (no array is read).

    Maps lookup: with ``maps_dir``, the file of the same name in that folder, key ``maps_key`` or
    ``s_maps``, or else BART's ``<stem>.cfl``/``.hdr`` there (:mod:`lit_sampler.data.bart`);
    otherwise the k-space file itself, key ``maps_key`` or the first of
    :data:`MAPS_KEYS_IN_FILE` present. A given ``maps_key`` that is absent is an error; absent maps
    without ``maps_key`` / ``maps_dir`` just mean "no maps".

    Raises:
        DataError: unreadable file, missing ``kspace``, wrong ndim or dtype, no slices, maps missing
            or of a shape different from the k-space, bad ``mask`` shape.
    """
    path = Path(path)
    with _open(path) as f:
        kspace = _dataset(f, KSPACE_KEY, path)
        shape = _shape(kspace.shape)
        _check_complex(kspace, path, KSPACE_KEY)
        maps_path: Optional[Path] = None
        found_key: Optional[str] = None
        if maps_dir is None:
            if maps_key is not None:
                _dataset(f, maps_key, path, " (maps_key)")
                found_key, maps_path = maps_key, path
            else:
                for key in MAPS_KEYS_IN_FILE:
                    if key in f and isinstance(f[key], h5py.Dataset):
                        found_key, maps_path = key, path
                        break
        if kspace.ndim not in (3, 4):
            raise DataError(
                f"{path}: dataset '{KSPACE_KEY}' has {kspace.ndim} dimensions {shape} but needs 3 "
                "[slices, H, W] (single-coil) or 4 [slices, coils, H, W] (multi-coil)"
            )
        mask_shape = None
        if MASK_KEY in f and isinstance(f[MASK_KEY], h5py.Dataset):
            mask_shape = tuple(_shape(f[MASK_KEY].shape))
        attrs = {k: _plain(f.attrs[k]) for k in ATTR_KEYS if k in f.attrs}
        unwhitening = unwhitening_of(f, attrs, path, shape)
    if maps_dir is not None:
        maps_path = Path(maps_dir) / path.name
        found_key = maps_key or MAPS_KEY_IN_DIR
        if not maps_path.is_file():
            bart_maps = bart.find_maps(maps_dir, path.name)  # BART's name.cfl/.hdr instead of name.h5
            if bart_maps is None:
                raise DataError(
                    f"{maps_path}: no such maps file (maps_dir) for {path} (nor BART maps {Path(path.stem + '.cfl').name} / .hdr)"
                )
            maps_path, found_key = bart_maps, bart.BART_KEY
    maps_shape = None
    if found_key == bart.BART_KEY:
        maps_shape = bart.maps_shape(maps_path, shape, path)
    elif found_key is not None:
        with _open(maps_path, " (maps)") as mf:
            maps = _dataset(mf, found_key, maps_path, " (maps)")
            maps_shape = _shape(maps.shape)
            _check_complex(maps, maps_path, found_key)
    if len(shape) == 3 and maps_shape is not None:
        raise DataError(
            f"{path}: dataset '{KSPACE_KEY}' has 3 dimensions {shape} but multi-coil data needs 4 "
            f"[slices, coils, H, W] (maps '{found_key}' in {maps_path} have shape {maps_shape})"
        )
    multicoil = len(shape) == 4
    num_slices, height, width = shape[0], shape[-2], shape[-1]
    coils = shape[1] if multicoil else 1
    if num_slices == 0 or coils == 0 or height == 0 or width == 0:
        raise DataError(f"{path}: dataset '{KSPACE_KEY}' has shape {shape}; expected no empty axis")
    if maps_shape is not None and maps_shape != shape:
        raise DataError(
            f"{maps_path}: dataset '{found_key}' has shape {maps_shape} but the k-space "
            f"('{KSPACE_KEY}' in {path}) has {shape}; maps must be [slices, coils, H, W] like the k-space"
        )
    if mask_shape is not None and mask_shape not in ((width,), (height, width)):
        raise DataError(
            f"{path}: dataset '{MASK_KEY}' has shape {list(mask_shape)} but needs [{width}] (W) or "
            f"[{height}, {width}] (H, W) for k-space {shape}"
        )
    return VolumeInfo(
        path=str(path),
        fname=path.name,
        num_slices=num_slices,
        coils=coils,
        height=height,
        width=width,
        multicoil=multicoil,
        maps_path=None if maps_path is None else str(maps_path),
        maps_key=found_key,
        mask_shape=mask_shape,
        attrs=attrs,
        unwhitening=unwhitening,
    )


def unwhitening_of(f: h5py.File, attrs: dict, path, shape: Sequence[int]) -> Optional[np.ndarray]:
    """``W⁻¹ = L / c`` of a file whose k-space was pre-whitened (attribute ``whitened``; ``L`` the
    Cholesky factor of dataset ``noise_covariance``, ``c`` the attribute ``whitening_scale``, 1 in
    files prepared before it existed, which whitened with ``L⁻¹``), else ``None``.
    (:mod:`lit_sampler.data.whitening`; with it, images of whitened data are on the unwhitened scale.)

    Raises:
        DataError: ``whitened`` without a ``noise_covariance`` of shape ``[coils, coils]`` that is
            positive definite, or a bad ``whitening_scale``.
    """
    if not attrs.get("whitened", False):
        return None
    coils = shape[1] if len(shape) == 4 else 1
    if NOISE_COVARIANCE_KEY not in f or not isinstance(f[NOISE_COVARIANCE_KEY], h5py.Dataset):
        raise DataError(
            f"{path}: attribute 'whitened' is set but there is no dataset '{NOISE_COVARIANCE_KEY}'; expected the "
            f"[{coils}, {coils}] noise covariance the k-space was whitened with (it puts images back on the "
            "unwhitened scale)"
        )
    covariance = np.array(f[NOISE_COVARIANCE_KEY], dtype=np.complex128)
    if list(covariance.shape) != [coils, coils]:
        raise DataError(
            f"{path}: dataset '{NOISE_COVARIANCE_KEY}' has shape {list(covariance.shape)} but the k-space "
            f"{list(shape)} has {coils} coils; expected [{coils}, {coils}]"
        )
    try:
        whitening = whitening_from_covariance(covariance, scale=attrs.get("whitening_scale", 1.0))
    except ValueError as error:
        raise DataError(f"{path}: dataset '{NOISE_COVARIANCE_KEY}' / attribute 'whitening_scale': {error}") from None
    return whitening.unwhitening


# --------------------------------------------------------------------------------------------------
# Per-slice reads
# --------------------------------------------------------------------------------------------------


@dataclass
class RawSlice:
    """One slice as stored: ``kspace`` ``[coils, H, W]`` complex64, ``maps`` same or ``None``,
    ``file_mask`` ``[1, W]`` / ``[H, W]`` float32 0/1 or ``None``."""

    kspace: torch.Tensor
    maps: Optional[torch.Tensor]
    file_mask: Optional[torch.Tensor]


def _read(path, keys: Sequence[str], slice_num: int, role: str = "") -> list[np.ndarray]:
    """Slice ``slice_num`` of each dataset in ``keys`` (``None`` reads a whole small dataset), one open."""
    out = []
    key = keys[0] if keys else ""
    try:
        with h5py.File(path, "r") as f:
            for key in keys:
                # np.array copies, so nothing refers to the file once it is closed.
                if key == MASK_KEY:
                    out.append(np.array(f[key], dtype=np.float32))
                else:
                    out.append(np.array(f[key][slice_num], dtype=np.complex64))
    except OSError as err:
        raise DataError(f"{path}: slice {slice_num}: cannot read dataset '{key}'{role} ({err})") from None
    return out


def _check_finite(array: np.ndarray, path, key: str, slice_num: int) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        raise DataError(
            f"{path}: slice {slice_num}: dataset '{key}' has {int(bad.sum())} non-finite values "
            "(NaN/Inf); expected all finite"
        )


def read_slice(volume: VolumeInfo, slice_num: int, read_maps: bool = True) -> RawSlice:
    """Read and check one slice of ``volume`` (and its maps and stored mask); each file opened once.

    Raises:
        DataError: unreadable data, NaN/Inf in k-space or maps, an all-zero k-space slice, a stored
            mask with values other than 0 and 1.
    """
    want_maps = read_maps and volume.has_maps
    maps_inline = want_maps and volume.maps_path == volume.path
    keys = [KSPACE_KEY]
    if volume.mask_shape is not None:
        keys.append(MASK_KEY)
    if maps_inline:
        keys.append(volume.maps_key)
    arrays = dict(zip(keys, _read(volume.path, keys, slice_num)))
    kspace = arrays[KSPACE_KEY]
    _check_finite(kspace, volume.path, KSPACE_KEY, slice_num)
    if not np.any(kspace):
        raise DataError(
            f"{volume.path}: slice {slice_num}: dataset '{KSPACE_KEY}' is all zero; expected measured data"
        )
    if not volume.multicoil:
        kspace = kspace[None]
    maps = None
    if want_maps:
        if maps_inline:
            maps_np = arrays[volume.maps_key]
        elif volume.maps_key == bart.BART_KEY:
            maps_np = bart.read_maps_slice(volume.maps_path, slice_num)
        else:
            (maps_np,) = _read(volume.maps_path, [volume.maps_key], slice_num, " (maps)")
        _check_finite(maps_np, volume.maps_path, volume.maps_key, slice_num)
        maps = torch.from_numpy(maps_np)
    file_mask = None
    if MASK_KEY in arrays:
        mask_np = arrays[MASK_KEY]
        if not np.all(np.isin(mask_np, (0.0, 1.0))):
            raise DataError(f"{volume.path}: dataset '{MASK_KEY}' holds values other than 0 and 1")
        file_mask = torch.from_numpy(mask_np.reshape((1, -1) if mask_np.ndim == 1 else mask_np.shape))
    return RawSlice(kspace=torch.from_numpy(kspace), maps=maps, file_mask=file_mask)
