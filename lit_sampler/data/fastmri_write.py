"""Writing one volume in our fastMRI layout (demo data, prepared data, test fixtures), atomically.

The layout is the one :mod:`lit_sampler.data.fastmri` reads (its keys: ``kspace``, ``sens_maps``,
``mask``); the file appears complete or not at all (:func:`lit_sampler.atomic.atomic_target`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import h5py
import numpy as np
import torch

from ..atomic import atomic_target
from .fastmri import KSPACE_KEY, MAPS_KEYS_IN_FILE, MASK_KEY


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def write_volume(
    path: Union[str, Path],
    kspace,
    sens_maps=None,
    mask=None,
    reconstruction_rss=None,
    attrs: Optional[dict] = None,
    datasets: Optional[dict] = None,
) -> Path:
    """Write one volume in our fastMRI layout, atomically (:func:`lit_sampler.atomic.atomic_target`).

    Args:
        kspace: ``[slices, coils, H, W]`` or ``[slices, H, W]`` complex (stored as complex64).
        sens_maps: maps like ``kspace`` (stored as ``sens_maps``, complex64), optional.
        mask: ``[W]`` or ``[H, W]`` 0/1, optional (stored as float32 ``mask``).
        reconstruction_rss: ``[slices, H, W]`` real, optional (float32).
        attrs: file attributes (e.g. ``max``, ``norm``, ``acquisition``, ``patient_id``).
        datasets: further datasets written as given (e.g. ``ismrmrd_header``).
    """
    path = Path(path)
    with atomic_target(path) as temporary:
        with h5py.File(temporary, "w") as f:
            f.create_dataset(KSPACE_KEY, data=_numpy(kspace).astype(np.complex64))
            if sens_maps is not None:
                f.create_dataset(MAPS_KEYS_IN_FILE[0], data=_numpy(sens_maps).astype(np.complex64))
            if mask is not None:
                f.create_dataset(MASK_KEY, data=_numpy(mask).astype(np.float32))
            if reconstruction_rss is not None:
                f.create_dataset("reconstruction_rss", data=_numpy(reconstruction_rss).astype(np.float32))
            for key, value in (datasets or {}).items():
                f.create_dataset(key, data=value)
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
    return path
