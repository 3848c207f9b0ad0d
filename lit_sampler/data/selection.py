"""Which fastMRI files and slices a run reads: file discovery (:func:`find_h5_files`) and slice
selection (:data:`SliceSpec`, :func:`select_slices`, :func:`select_all_slices`).

Both raise :class:`DataError` naming what was given and what is expected. The files themselves are
read by :mod:`lit_sampler.data.fastmri`.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import DataError
from .fastmri import KSPACE_KEY, VolumeInfo

SliceSpec = Optional[Union[str, int, list[int], dict[str, list[int]]]]


# --------------------------------------------------------------------------------------------------
# File discovery
# --------------------------------------------------------------------------------------------------


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def find_h5_files(data_path: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]) -> list[Path]:
    """The HDF5 files named by ``data_path``: a folder (its ``*.h5``, sorted), a glob, a file, or a list.

    Raises:
        DataError: a path that does not exist, a folder without ``*.h5``, a glob without match,
            an empty list, or two files of the same name (the file name is the item identity).
    """
    if isinstance(data_path, (str, os.PathLike)):
        entries = [data_path]
    else:
        entries = list(data_path)
        if not entries:
            raise DataError("data_path is an empty list; expected a folder, a glob, a file or a list of those")
    files: list[Path] = []
    for entry in entries:
        text = os.fspath(entry)
        if _is_glob(text):
            matches = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
            if not matches:
                raise DataError(f"{text}: glob matches no files")
            files.extend(matches)
            continue
        path = Path(text)
        if path.is_dir():
            matches = sorted(p for p in path.glob("*.h5") if p.is_file())
            if not matches:
                raise DataError(f"{path}: folder holds no *.h5 files")
            files.extend(matches)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    seen: dict[str, Path] = {}
    for path in files:
        if path.name in seen and seen[path.name].resolve() != path.resolve():
            raise DataError(
                f"{path}: file name '{path.name}' also used by {seen[path.name]}; "
                "expected unique file names (they identify items and outputs)"
            )
        seen[path.name] = path
    # A file listed twice (e.g. a folder and a glob over it) counts once.
    unique: dict[str, Path] = {}
    for path in files:
        unique.setdefault(path.name, path)
    return list(unique.values())


# --------------------------------------------------------------------------------------------------
# Slice selection
# --------------------------------------------------------------------------------------------------


def select_slices(volume: VolumeInfo, spec: SliceSpec) -> list[int]:
    """The slice indices of ``volume`` chosen by ``spec`` (sorted, unique).

    ``spec``: ``None`` / ``"all"``: every slice; ``"middle"``: ``[num_slices // 2]``; ``"a:b"`` or
    ``"a:b:c"``: Python slice syntax over ``range(num_slices)`` (negative bounds allowed; quote it in
    YAML, where an unquoted ``1:3`` reads as the base-60 integer 63); an ``int`` or a list of ints:
    those indices in every file; a ``dict``: file name → list of indices (files not named in the
    dict are skipped; see :func:`select_all_slices`).

    Raises:
        DataError: an index out of range, a malformed string, or a selection with no slice.
    """
    n = volume.num_slices
    if isinstance(spec, dict):
        spec = spec.get(volume.fname, [])
        if not spec:
            return []
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(range(n))
    if isinstance(spec, bool):
        raise DataError(f"slices: expected None, 'all', 'middle', 'a:b', an int, a list or a dict, got {spec!r}")
    if isinstance(spec, int):
        spec = [spec]
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text == "middle":
            return [n // 2]
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise DataError(
                f"slices: '{spec}' is not 'all', 'middle' or Python slice syntax 'a:b' / 'a:b:c'"
            )
        try:
            bounds = [int(p) if p.strip() else None for p in parts]
        except ValueError:
            raise DataError(f"slices: '{spec}' is not Python slice syntax 'a:b' / 'a:b:c' of integers") from None
        if len(bounds) == 3 and bounds[2] == 0:
            raise DataError(f"slices: '{spec}' has step 0")
        chosen = sorted(set(range(n)[slice(*bounds)]))
        if not chosen:
            raise DataError(f"{volume.path}: slices '{spec}' selects no slice of {n} (0..{n - 1})")
        return chosen
    chosen = []
    for s in spec:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise DataError(f"slices: expected integer slice indices, got {s!r}")
        if not 0 <= int(s) < n:
            raise DataError(
                f"{volume.path}: slice {int(s)} is out of range; dataset '{KSPACE_KEY}' has {n} slices (0..{n - 1})"
            )
        chosen.append(int(s))
    return sorted(set(chosen))


def select_all_slices(volumes: Sequence[VolumeInfo], spec: SliceSpec) -> list[list[int]]:
    """:func:`select_slices` for every volume; checks that dict keys name existing files."""
    if isinstance(spec, dict):
        names = {v.fname for v in volumes}
        unknown = sorted(set(spec) - names)
        if unknown:
            raise DataError(f"slices: file name(s) {unknown} not among the data files {sorted(names)}")
    chosen = [select_slices(v, spec) for v in volumes]
    if not any(chosen):
        raise DataError(f"slices: {spec!r} selects no slice in {len(volumes)} file(s)")
    return chosen
