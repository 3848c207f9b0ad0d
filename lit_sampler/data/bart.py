"""BART ``.cfl`` / ``.hdr`` arrays (Uecker et al., BART toolbox; ``bart/python/cfl.py``'s format).

A BART array ``name`` is two files: ``name.hdr``, text with a line ``# Dimensions`` followed by a
line of (up to 16) integer dimensions, and ``name.cfl``, the raw complex64 (interleaved float32
real, imaginary; little-endian) values in **Fortran order** (the first dimension varies fastest).
BART's dimension order (``misc/mri.h``): ``0 READ, 1 PHS1, 2 PHS2, 3 COIL, 4 MAPS, 5 TE, 6 COEFF,
7 COEFF2, 8 ITER, 9 CSHIFT, 10 TIME, 11 TIME2, 12 LEVEL, 13 SLICE, …``; omitted trailing
dimensions are 1.

Coil maps of a volume (what ``bart ecalib -m1`` writes), mapped to our ``[slices, coils, H, W]``:
``READ = H`` (readout), ``PHS1 = W`` (phase encode), ``COIL = coils``, ``SLICE = slices``, every
other dimension 1 (one map set: ``ecalib -m1``). This is the layout BART's own ``cfl.writecfl``
gives a fastMRI slice written as ``kspace[s].transpose(1, 2, 0)[:, :, None, :]``.

In a ``maps_dir``, the maps of k-space file ``name.h5`` are ``name.h5`` (HDF5, key ``s_maps``) or,
when that is absent, ``name.cfl`` + ``name.hdr`` (the stem of the k-space file's name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import DataError

#: ``maps_key`` of maps read from BART files (not an HDF5 key).
BART_KEY = "<BART cfl>"
READ, PHS1, PHS2, COIL, MAPS, SLICE = 0, 1, 2, 3, 4, 13
DIMS = 16


def _base(path: Union[str, Path]) -> Path:
    """``name`` of ``name``, ``name.cfl`` or ``name.hdr``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".cfl", ".hdr") else path


def read_dims(path: Union[str, Path]) -> list[int]:
    """The dimensions in ``name.hdr`` (padded with ones to 16).

    Raises:
        DataError: no ``.hdr``, or no ``# Dimensions`` line followed by positive integers.
    """
    hdr = _base(path).with_suffix(".hdr")
    try:
        lines = hdr.read_text().splitlines()
    except OSError as error:
        raise DataError(f"{hdr}: cannot read the BART header ({error.strerror or error})") from None
    for i, line in enumerate(lines):
        if line.strip() == "# Dimensions" and i + 1 < len(lines):
            try:
                dims = [int(t) for t in lines[i + 1].split()]
            except ValueError:
                break
            if dims and len(dims) <= DIMS and min(dims) >= 1:
                return dims + [1] * (DIMS - len(dims))
            break
    raise DataError(f"{hdr}: expected a line '# Dimensions' followed by up to {DIMS} positive integers")


def _memmap(path: Union[str, Path], dims: Sequence[int]) -> np.ndarray:
    cfl = _base(path).with_suffix(".cfl")
    expected = int(np.prod(dims)) * 8
    try:
        size = cfl.stat().st_size
    except OSError as error:
        raise DataError(f"{cfl}: cannot read the BART data ({error.strerror or error})") from None
    if size != expected:
        raise DataError(
            f"{cfl}: holds {size} bytes but its header's dims {trim(dims)} need {expected} "
            "(complex64, 8 bytes per value)"
        )
    return np.memmap(cfl, dtype="<c8", mode="r", shape=tuple(dims), order="F")


def trim(dims: Sequence[int]) -> list[int]:
    """``dims`` without trailing ones (at least one entry)."""
    dims = list(dims)
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    return dims


def read_cfl(path: Union[str, Path]) -> np.ndarray:
    """The array ``name`` (``.cfl`` + ``.hdr``) with BART's dims as its shape, trailing ones dropped
    (complex64, Fortran-ordered in memory like the file)."""
    dims = read_dims(path)
    return np.array(_memmap(path, dims), order="F").reshape(trim(dims), order="F")


def write_cfl(path: Union[str, Path], array: np.ndarray) -> Path:
    """Write ``array`` (its shape = BART dims, at most 16) as ``name.hdr`` + ``name.cfl``; returns
    the ``.cfl`` path. Both files are written atomically."""
    from ..atomic import atomic_target

    array = np.asarray(array)
    if array.ndim > DIMS:
        raise ValueError(f"BART arrays have at most {DIMS} dimensions, got {array.ndim}")
    base = _base(path)
    with atomic_target(base.with_suffix(".cfl")) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(np.asarray(array, dtype="<c8").tobytes(order="F"))
    with atomic_target(base.with_suffix(".hdr")) as temporary:
        Path(temporary).write_text("# Dimensions\n" + " ".join(str(d) for d in array.shape) + "\n")
    return base.with_suffix(".cfl")


# --------------------------------------------------------------------------------------------------
# Coil maps
# --------------------------------------------------------------------------------------------------


def find_maps(maps_dir: Union[str, Path], fname: str) -> Optional[Path]:
    """``maps_dir/<stem>.cfl`` for k-space file ``fname`` when it exists, else ``None``."""
    cfl = Path(maps_dir) / (Path(fname).stem + ".cfl")
    return cfl if cfl.is_file() else None


def maps_shape(path: Union[str, Path], kspace_shape: Sequence[int], kspace_path) -> list[int]:
    """Our ``[slices, coils, H, W]`` of the BART maps ``path``, checked against the k-space's.

    Raises:
        DataError: a dimension other than READ, PHS1, COIL, SLICE above 1 (3-D maps, several map
            sets), a size that differs from the k-space (naming both shapes), or a damaged file.
    """
    dims = read_dims(path)
    cfl = _base(path).with_suffix(".cfl")
    extra = {i: d for i, d in enumerate(dims) if d != 1 and i not in (READ, PHS1, COIL, SLICE)}
    shape = [dims[SLICE], dims[COIL], dims[READ], dims[PHS1]]
    expected = [int(s) for s in kspace_shape]
    if len(expected) != 4:
        return shape  # single-coil k-space: the caller's "multi-coil data needs 4 dimensions" error
    if extra or shape != expected:
        bart_expected = [expected[2], expected[3], 1, expected[1]] + [1] * 9 + [expected[0]]
        why = f" (dims {sorted(extra)} must be 1: one map set, 2-D)" if extra else ""
        raise DataError(
            f"{cfl}: BART dims {trim(dims)} are maps [slices, coils, H, W] = {shape}{why}, but the k-space "
            f"('kspace' in {kspace_path}) has {expected}; expected BART dims {trim(bart_expected)} "
            "(READ = H, PHS1 = W, COIL = coils, SLICE (dim 13) = slices)"
        )
    _memmap(path, dims)  # the data file must hold exactly that many values
    return shape


def read_maps_slice(path: Union[str, Path], slice_num: int) -> np.ndarray:
    """Slice ``slice_num`` of BART maps as ``[coils, H, W]`` complex64 (a copy; the file is closed)."""
    dims = read_dims(path)
    data = _memmap(path, dims)
    index = [0] * DIMS
    index[READ] = index[PHS1] = index[COIL] = slice(None)
    index[SLICE] = int(slice_num)
    out = np.array(data[tuple(index)], dtype=np.complex64)  # [H, W, coils]
    del data
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def maps_to_bart(maps: np.ndarray) -> np.ndarray:
    """Our maps ``[slices, coils, H, W]`` → an array of BART dims ``[H, W, 1, coils, 1, …, slices]``
    (14 dims, for :func:`write_cfl`)."""
    maps = np.asarray(maps)
    slices, coils, height, width = maps.shape
    out = maps.transpose(2, 3, 1, 0)  # [H, W, coils, slices]
    return out.reshape(height, width, 1, coils, *([1] * 9), slices)
