#!/usr/bin/env python
"""Make ``peer_masks.npz``: masks drawn by the peers' own algorithms, for tests/test_masks_peers.py.

* fastMRI: the ``fastmri`` 0.3.0 package itself (``pip install fastmri==0.3.0 --no-deps``; only
  this script needs it), ``RandomMaskFunc`` and ``EquispacedMaskFractionFunc`` called as its
  validation data transforms call them: ``mask_func(shape, seed=tuple(map(ord, fname)))``.
* csgm (utcsilab/csgm-mri-langevin ``dataloaders.py::_get_mask``, not a package): its algorithm
  restated below in plain numpy, line by line from the published description, independently of
  ``lit_sampler.physics.masks``.

    python tests/data/peer_masks/make_peer_masks.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FNAMES = ("file_brain_AXT2_200_2000019.h5", "file1000000.h5", "demo_val_000.h5")
WIDTHS = (64, 320, 368, 384, 396)
FASTMRI_CASES = {  # name: (class, center_fractions, accelerations)
    "random_4x": ("RandomMaskFunc", [0.08], [4]),
    "random_8x": ("RandomMaskFunc", [0.04], [8]),
    "random_mixed": ("RandomMaskFunc", [0.08, 0.04], [4, 8]),
    "equispaced_4x": ("EquispacedMaskFractionFunc", [0.08], [4]),
    "equispaced_8x": ("EquispacedMaskFractionFunc", [0.04], [8]),
}


def csgm_mask(width: int, acceleration: int) -> np.ndarray:
    """csgm's equispaced ``_get_mask`` for ``width`` phase-encode lines."""
    acs = int(np.floor(0.08 * width)) if 1 < acceleration <= 6 else int(np.floor(0.04 * width))
    center = np.arange((width - acs) // 2, (width + acs) // 2)
    outer = np.setdiff1d(np.arange(width), center)
    lines = np.concatenate([center, outer[:: int(acceleration)]])
    mask = np.zeros(width, dtype=np.float32)
    mask[lines] = 1
    return mask


def load_subsample():
    """``fastmri/data/subsample.py`` alone (``import fastmri.data`` would pull pandas, requests, …)."""
    import importlib.util

    spec = importlib.util.find_spec("fastmri")
    if spec is None:
        raise SystemExit("error: needs the fastmri package: pip install fastmri==0.3.0 --no-deps")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "subsample.py"
    module_spec = importlib.util.spec_from_file_location("fastmri_subsample", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def main() -> None:
    subsample = load_subsample()

    arrays = {}
    for name, (cls, fractions, accelerations) in FASTMRI_CASES.items():
        for fname in FNAMES:
            for width in WIDTHS:
                func = getattr(subsample, cls)(fractions, accelerations)
                mask, _ = func((15, 640, width, 2), seed=tuple(map(ord, fname)))
                arrays[f"fastmri|{name}|{fname}|{width}"] = mask.numpy().reshape(-1).astype(np.float32)
    for acceleration in (4, 8):
        for width in WIDTHS:
            arrays[f"csgm|equispaced_{acceleration}x|{width}"] = csgm_mask(width, acceleration)
    out = Path(__file__).with_name("peer_masks.npz")
    np.savez_compressed(out, **arrays)
    print(f"{len(arrays)} masks -> {out}")


if __name__ == "__main__":
    main()
