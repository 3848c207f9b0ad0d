"""BART ``.cfl``/``.hdr``: the format against a known array, and maps from a ``maps_dir``."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
import torch

from conftest import write_phantom_file
from lit_sampler.data import DataError
from lit_sampler.data.bart import maps_to_bart, read_cfl, read_dims, write_cfl
from lit_sampler.datamodules import FastMRIDataModule


def test_cfl_round_trips_a_known_array_in_fortran_order(tmp_path):
    known = (np.arange(2 * 3 * 4) + 1j * np.arange(2 * 3 * 4)[::-1]).astype(np.complex64).reshape(2, 3, 4)
    path = write_cfl(tmp_path / "known", known)
    assert path == tmp_path / "known.cfl"
    assert (tmp_path / "known.hdr").read_text() == "# Dimensions\n2 3 4\n"
    # the file layout: element [i, j, k] at offset i + 2 j + 6 k (first dimension fastest), float32 re/im pairs
    raw = np.fromfile(tmp_path / "known.cfl", dtype="<f4").reshape(-1, 2)
    for i, j, k in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 2, 3)]:
        value = raw[i + 2 * j + 6 * k]
        assert complex(value[0], value[1]) == known[i, j, k]
    np.testing.assert_array_equal(read_cfl(tmp_path / "known"), known)
    np.testing.assert_array_equal(read_cfl(tmp_path / "known.cfl"), known)
    assert read_dims(tmp_path / "known") == [2, 3, 4] + [1] * 13
    # a header as BART writes it (all 16 dims, other comment blocks) reads the same
    (tmp_path / "known.hdr").write_text("# Dimensions\n2 3 4 1 1 1 1 1 1 1 1 1 1 1 1 1 \n# Command\nbart ecalib\n")
    np.testing.assert_array_equal(read_cfl(tmp_path / "known"), known)


def _data(tmp_path):
    folder = tmp_path / "data"
    write_phantom_file(folder / "vol.h5", slices=2, coils=4, size=(16, 12), maps="dir", maps_dir=tmp_path / "h5maps")
    with h5py.File(tmp_path / "h5maps" / "vol.h5", "r") as f:
        maps = f["s_maps"][()]
    return folder, maps


def test_bart_maps_in_maps_dir_equal_h5_maps(tmp_path):
    folder, maps = _data(tmp_path)
    write_cfl(tmp_path / "bart" / "vol", maps_to_bart(maps))
    assert read_dims(tmp_path / "bart" / "vol")[:4] == [16, 12, 1, 4] and read_dims(tmp_path / "bart" / "vol")[13] == 2
    got, want = [], []
    for maps_dir, out in ((tmp_path / "bart", got), (tmp_path / "h5maps", want)):
        dm = FastMRIDataModule(data_path=str(folder), maps_dir=str(maps_dir), snr_range=[None])
        dm.setup()
        out.extend(dm.measurements(dm.items))
    assert len(got) == 2
    for g, w in zip(got, want):
        torch.testing.assert_close(g.sens_maps, w.sens_maps, rtol=0, atol=0)
        torch.testing.assert_close(g.target, w.target, rtol=0, atol=0)


def test_bart_maps_of_the_wrong_shape_are_refused(tmp_path):
    folder, maps = _data(tmp_path)
    write_cfl(tmp_path / "bart" / "vol", maps_to_bart(maps[:, :, :, :10]))  # 10 phase encodes, not 12
    cfl = tmp_path / "bart" / "vol.cfl"
    with pytest.raises(DataError, match="^" + re.escape(
        f"{cfl}: BART dims [16, 10, 1, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2] are maps [slices, coils, H, W] = [2, 4, 16, 10], "
        f"but the k-space ('kspace' in {folder / 'vol.h5'}) has [2, 4, 16, 12]; expected BART dims "
        "[16, 12, 1, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2] (READ = H, PHS1 = W, COIL = coils, SLICE (dim 13) = slices)") + "$"):
        FastMRIDataModule(data_path=str(folder), maps_dir=str(tmp_path / "bart")).setup()
    two_sets = np.concatenate([maps_to_bart(maps)] * 2, axis=4)  # MAPS = 2 (ecalib -m2)
    write_cfl(tmp_path / "bart" / "vol", two_sets)
    with pytest.raises(DataError, match=re.escape("(dims [4] must be 1: one map set, 2-D)")):
        FastMRIDataModule(data_path=str(folder), maps_dir=str(tmp_path / "bart")).setup()
    # a data file that does not hold what the header says
    write_cfl(tmp_path / "bart" / "vol", maps_to_bart(maps))
    cfl.write_bytes(cfl.read_bytes()[:-8])
    with pytest.raises(DataError, match="^" + re.escape(
        f"{cfl}: holds {16 * 12 * 4 * 2 * 8 - 8} bytes but its header's dims [16, 12, 1, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2] "
        f"need {16 * 12 * 4 * 2 * 8} (complex64, 8 bytes per value)") + "$"):
        FastMRIDataModule(data_path=str(folder), maps_dir=str(tmp_path / "bart")).setup()
    (tmp_path / "bart" / "vol.hdr").write_text("16 12 1 4\n")
    with pytest.raises(DataError, match="^" + re.escape(
        f"{tmp_path / 'bart' / 'vol.hdr'}: expected a line '# Dimensions' followed by up to 16 positive integers") + "$"):
        FastMRIDataModule(data_path=str(folder), maps_dir=str(tmp_path / "bart")).setup()


def test_no_maps_of_either_kind_names_both(tmp_path):
    folder, _ = _data(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="^" + re.escape(
        f"{tmp_path / 'empty' / 'vol.h5'}: no such maps file (maps_dir) for {folder / 'vol.h5'} (nor BART maps vol.cfl / .hdr)") + "$"):
        FastMRIDataModule(data_path=str(folder), maps_dir=str(tmp_path / "empty")).setup()
