"""Shared fixtures: tiny fastMRI-format files written by the tests themselves (no real data)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import h5py
import numpy as np
import pytest
import torch

from lit_sampler.data.fastmri_write import write_volume
from lit_sampler.data.phantoms import demo_volume
from lit_sampler.physics.coils import rss
from lit_sampler.seeding import seeded_generator


def write_phantom_file(
    path: Path,
    slices: int = 3,
    coils: int = 4,
    size: tuple[int, int] = (32, 32),
    single_coil: bool = False,
    maps: Optional[str] = "file",
    maps_key: str = "sens_maps",
    maps_dir: Optional[Path] = None,
    mask=None,
    pad_columns: tuple[int, int] = (0, 0),
    seed: int = 0,
) -> Path:
    """Write a phantom volume in fastMRI layout.

    Args:
        maps: "file" (dataset ``maps_key`` in the file), "dir" (``maps_dir/<name>`` with key
            ``s_maps``), or None.
        pad_columns: zero phase-encode columns added (left, right), like fastMRI's padding.
    """
    height, width = size
    volume = demo_volume(seeded_generator(seed, path.name), slices, height, width, coils=coils, single_coil=single_coil)
    kspace, sens = volume.kspace, volume.maps
    left, right = pad_columns
    if left or right:
        kspace = torch.nn.functional.pad(kspace, (left, right))
        if sens is not None:
            # Maps of the padded grid: the same smooth maps over the wider k-space (resampled by
            # zero-padding their k-space as well).
            from lit_sampler.physics.fft import fft2c, ifft2c

            sens = ifft2c(torch.nn.functional.pad(fft2c(sens), (left, right)))
            sens = sens / sens.abs().square().sum(-3, keepdim=True).sqrt()
    write_volume(
        path,
        kspace,
        sens_maps=None,
        mask=mask,
        reconstruction_rss=rss(kspace if not single_coil else kspace[:, None]),
        attrs={"max": 1.0, "norm": 1.0, "acquisition": "SYNTHETIC", "patient_id": path.stem},
    )
    if sens is not None and maps == "file":
        with h5py.File(path, "a") as f:
            f.create_dataset(maps_key, data=sens.numpy().astype(np.complex64))
    elif sens is not None and maps == "dir":
        assert maps_dir is not None
        maps_dir.mkdir(parents=True, exist_ok=True)
        with h5py.File(maps_dir / path.name, "w") as f:
            f.create_dataset("s_maps", data=sens.numpy().astype(np.complex64))
    return path


@pytest.fixture
def phantom_file():
    """The :func:`write_phantom_file` helper."""
    return write_phantom_file


@pytest.fixture
def multicoil_dir(tmp_path) -> Path:
    """Two multi-coil volumes (32×32 and 32×32, 4 coils, 3 slices) with in-file maps."""
    folder = tmp_path / "mc"
    write_phantom_file(folder / "a.h5", slices=3, coils=4, size=(32, 32))
    write_phantom_file(folder / "b.h5", slices=2, coils=4, size=(32, 32))
    return folder
