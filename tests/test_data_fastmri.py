"""File discovery, metadata validation, slice selection and every bad-input error (exact messages)."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
import torch

from lit_sampler.data import DataError
from lit_sampler.data.fastmri import inspect_volume, read_slice
from lit_sampler.data.selection import find_h5_files, select_slices
from lit_sampler.datamodules import FastMRIDataModule, TrainingDataModule


def raises(message: str):
    return pytest.raises(DataError, match=re.escape(message))


def write_raw(path, **datasets):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
    return path


def complex_array(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


# ---------------------------------------------------------------------------------------- discovery


def test_find_files_folder_glob_file_and_list(multicoil_dir, phantom_file, tmp_path):
    other = phantom_file(tmp_path / "other" / "c.h5", slices=1)
    assert [p.name for p in find_h5_files(multicoil_dir)] == ["a.h5", "b.h5"]
    assert [p.name for p in find_h5_files(str(multicoil_dir / "b*.h5"))] == ["b.h5"]
    assert [p.name for p in find_h5_files(other)] == ["c.h5"]
    assert [p.name for p in find_h5_files([str(multicoil_dir), str(other)])] == ["a.h5", "b.h5", "c.h5"]
    # a file named twice through different routes counts once
    assert [p.name for p in find_h5_files([str(multicoil_dir), str(multicoil_dir / "a.h5")])] == ["a.h5", "b.h5"]


def test_missing_folder(tmp_path):
    with raises(f"{tmp_path / 'nope'}: no such file or folder"):
        find_h5_files(tmp_path / "nope")


def test_folder_without_h5(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with raises(f"{tmp_path / 'empty'}: folder holds no *.h5 files"):
        FastMRIDataModule(str(tmp_path / "empty")).setup()


def test_glob_without_match(tmp_path):
    with raises(f"{tmp_path}/*.h5: glob matches no files"):
        find_h5_files(f"{tmp_path}/*.h5")


def test_duplicate_file_names(phantom_file, tmp_path):
    phantom_file(tmp_path / "x" / "a.h5", slices=1)
    phantom_file(tmp_path / "y" / "a.h5", slices=1)
    with raises(f"{tmp_path / 'y' / 'a.h5'}: file name 'a.h5' also used by {tmp_path / 'x' / 'a.h5'}"):
        find_h5_files([str(tmp_path / "x"), str(tmp_path / "y")])


# ----------------------------------------------------------------------------------------- metadata


def test_inspect_multicoil_and_single_coil(phantom_file, tmp_path):
    mc = inspect_volume(phantom_file(tmp_path / "mc.h5", slices=2, coils=3, size=(20, 17)))
    assert (mc.num_slices, mc.coils, mc.height, mc.width, mc.multicoil) == (2, 3, 20, 17, True)
    assert mc.maps_key == "sens_maps" and mc.maps_path == str(tmp_path / "mc.h5")
    assert mc.attrs["acquisition"] == "SYNTHETIC"
    sc = inspect_volume(phantom_file(tmp_path / "sc.h5", slices=2, size=(15, 16), single_coil=True))
    assert (sc.coils, sc.height, sc.width, sc.multicoil, sc.has_maps) == (1, 15, 16, False, False)


@pytest.mark.parametrize("key", ["sens_maps", "s_maps", "maps"])
def test_maps_keys_in_file(phantom_file, tmp_path, key):
    info = inspect_volume(phantom_file(tmp_path / "a.h5", slices=1, coils=2, maps_key=key))
    assert info.maps_key == key


def test_maps_dir_csgm_layout(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "data" / "a.h5", slices=2, coils=2, maps="dir", maps_dir=tmp_path / "maps")
    info = inspect_volume(path, maps_dir=tmp_path / "maps")
    assert info.maps_path == str(tmp_path / "maps" / "a.h5") and info.maps_key == "s_maps"
    raw = read_slice(info, 1)
    assert raw.maps.shape == raw.kspace.shape == (2, 32, 32)


def test_missing_maps_file_in_maps_dir(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "data" / "a.h5", slices=1, coils=2, maps=None)
    (tmp_path / "maps").mkdir()
    with raises(f"{tmp_path / 'maps' / 'a.h5'}: no such maps file (maps_dir) for {path}"):
        inspect_volume(path, maps_dir=tmp_path / "maps")


def test_missing_maps_key(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=1, coils=2)
    with raises(f"{path}: no dataset 'coil_maps' (maps_key) (found: ['kspace', 'reconstruction_rss', 'sens_maps'])"):
        inspect_volume(path, maps_key="coil_maps")


def test_multicoil_without_maps_is_an_error_for_sampling(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=1, coils=2, maps=None)
    with raises(
        f"{path}: multi-coil dataset 'kspace' [1, 2, 32, 32] but no coil sensitivity maps "
        "(the forward model A x = M F(S x) needs them): looked for datasets 'sens_maps', 's_maps', 'maps'"
    ):
        FastMRIDataModule(str(path)).setup()
    # ... but training on RSS images needs no maps
    dm = TrainingDataModule(str(path), target="auto", cache=False)
    dm.setup()
    assert len(dm.train_dataset) == 1


def test_truncated_file(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with raises(f"{path}: cannot open as an HDF5 file ("):
        FastMRIDataModule(str(path)).setup()


def test_corrupt_file(tmp_path):
    path = tmp_path / "junk.h5"
    path.write_bytes(b"this is not hdf5" * 100)
    with raises(f"{path}: cannot open as an HDF5 file ("):
        inspect_volume(path)


def test_missing_kspace(tmp_path):
    path = write_raw(tmp_path / "a.h5", reconstruction_rss=np.zeros((2, 8, 8), np.float32))
    with raises(f"{path}: no dataset 'kspace' (found: ['reconstruction_rss'])"):
        FastMRIDataModule(str(path)).setup()


@pytest.mark.parametrize("shape", [(8, 8), (1, 2, 3, 8, 8)])
def test_wrong_ndim(tmp_path, shape):
    path = write_raw(tmp_path / "a.h5", kspace=complex_array(*shape))
    with raises(
        f"{path}: dataset 'kspace' has {len(shape)} dimensions {list(shape)} but needs 3 "
        "[slices, H, W] (single-coil) or 4 [slices, coils, H, W] (multi-coil)"
    ):
        inspect_volume(path)


def test_three_dims_with_maps(tmp_path):
    path = write_raw(tmp_path / "a.h5", kspace=complex_array(4, 32, 32), sens_maps=complex_array(4, 2, 32, 32))
    with raises(f"{path}: dataset 'kspace' has 3 dimensions [4, 32, 32] but multi-coil data needs 4 [slices, coils, H, W]"):
        inspect_volume(path)


def test_real_kspace_dtype(tmp_path):
    path = write_raw(tmp_path / "a.h5", kspace=np.zeros((2, 8, 8), np.float32))
    with raises(f"{path}: dataset 'kspace' has dtype float32 but needs a complex type (complex64)"):
        inspect_volume(path)


def test_maps_shape_mismatch(tmp_path):
    path = write_raw(tmp_path / "a.h5", kspace=complex_array(2, 3, 16, 16), sens_maps=complex_array(2, 3, 16, 15))
    with raises(
        f"{path}: dataset 'sens_maps' has shape [2, 3, 16, 15] but the k-space ('kspace' in {path}) has "
        "[2, 3, 16, 16]; maps must be [slices, coils, H, W] like the k-space"
    ):
        FastMRIDataModule(str(path)).setup()


def test_maps_dir_shape_mismatch(tmp_path):
    path = write_raw(tmp_path / "d" / "a.h5", kspace=complex_array(2, 3, 16, 16))
    maps = write_raw(tmp_path / "m" / "a.h5", s_maps=complex_array(2, 4, 16, 16))
    with raises(f"{maps}: dataset 's_maps' has shape [2, 4, 16, 16] but the k-space ('kspace' in {path}) has [2, 3, 16, 16]"):
        inspect_volume(path, maps_dir=tmp_path / "m")


def test_bad_mask_shape(tmp_path):
    path = write_raw(
        tmp_path / "a.h5", kspace=complex_array(1, 2, 16, 12), sens_maps=complex_array(1, 2, 16, 12), mask=np.ones(16)
    )
    with raises(f"{path}: dataset 'mask' has shape [16] but needs [12] (W) or [16, 12] (H, W)"):
        inspect_volume(path)


# ------------------------------------------------------------------------------------ per-slice data


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_kspace(phantom_file, tmp_path, bad):
    path = phantom_file(tmp_path / "a.h5", slices=3, coils=2)
    with h5py.File(path, "a") as f:
        k = f["kspace"][1]
        k[0, 3, 4] = bad
        f["kspace"][1] = k
    dm = FastMRIDataModule(str(path), snr_range=[None])
    dm.setup()  # metadata is fine; the data check runs per item
    assert len(dm.measurements(["a.h5|0|snr_inf|0"])) == 1
    with raises(f"{path}: slice 1: dataset 'kspace' has 1 non-finite values (NaN/Inf); expected all finite"):
        dm.measurements(["a.h5|1|snr_inf|0"])


def test_non_finite_maps(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=2, coils=2)
    with h5py.File(path, "a") as f:
        m = f["sens_maps"][0]
        m[1, :2, 0] = np.nan
        f["sens_maps"][0] = m
    dm = FastMRIDataModule(str(path))
    with raises(f"{path}: slice 0: dataset 'sens_maps' has 2 non-finite values (NaN/Inf); expected all finite"):
        dm.measurements(["a.h5|0|snr_inf|0"])


def test_all_zero_slice(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=3, coils=2)
    with h5py.File(path, "a") as f:
        f["kspace"][2] = np.zeros(f["kspace"].shape[1:], np.complex64)
    dm = FastMRIDataModule(str(path))
    with raises(f"{path}: slice 2: dataset 'kspace' is all zero; expected measured data"):
        dm.measurements(["a.h5|2|snr_inf|0"])


def test_error_raised_from_worker_keeps_type_and_message(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=2, coils=2)
    with h5py.File(path, "a") as f:
        f["kspace"][1] = np.zeros(f["kspace"].shape[1:], np.complex64)
    dm = FastMRIDataModule(str(path), num_workers=1)
    dm.setup()
    with raises(f"{path}: slice 1: dataset 'kspace' is all zero; expected measured data"):
        list(dm.predict_dataloader())


def test_image_size_larger_than_data(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=1, coils=2, size=(32, 30))
    with raises(f"{path}: image_size [32, 31] is larger than the data: dataset 'kspace' has H×W = [32, 30]"):
        FastMRIDataModule(str(path), image_size=(32, 31)).setup()


def test_empty_snr_range(multicoil_dir):
    with raises("snr_range is empty; expected at least one level in dB (null = noiseless)"):
        FastMRIDataModule(str(multicoil_dir), snr_range=[])


def test_bad_and_repeated_snr_levels(multicoil_dir):
    with raises("snr_range: 'loud' is not a number in dB, 'inf' or null"):
        FastMRIDataModule(str(multicoil_dir), snr_range=["loud"])
    with raises("snr_range [None, 'inf'] repeats ['snr_inf']; expected distinct levels"):
        FastMRIDataModule(str(multicoil_dir), snr_range=[None, "inf"])


# ------------------------------------------------------------------------------------ slice selection


def test_slice_selection(phantom_file, tmp_path):
    info = inspect_volume(phantom_file(tmp_path / "a.h5", slices=5, coils=2))
    assert select_slices(info, None) == [0, 1, 2, 3, 4]
    assert select_slices(info, "all") == [0, 1, 2, 3, 4]
    assert select_slices(info, "middle") == [2]
    assert select_slices(info, "1:3") == [1, 2]
    assert select_slices(info, "-2:") == [3, 4]
    assert select_slices(info, "::2") == [0, 2, 4]
    assert select_slices(info, [4, 0, 4]) == [0, 4]
    assert select_slices(info, 3) == [3]
    assert select_slices(info, {"a.h5": [1]}) == [1]
    assert select_slices(info, {"other.h5": [1]}) == []


def test_slice_selection_errors(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=4, coils=2)
    info = inspect_volume(path)
    with raises(f"{path}: slice 4 is out of range; dataset 'kspace' has 4 slices (0..3)"):
        select_slices(info, [1, 4])
    with raises(f"{path}: slices '7:9' selects no slice of 4 (0..3)"):
        select_slices(info, "7:9")
    with raises("slices: 'first' is not 'all', 'middle' or Python slice syntax 'a:b' / 'a:b:c'"):
        select_slices(info, "first")
    with raises("slices: file name(s) ['zzz.h5'] not among the data files ['a.h5']"):
        FastMRIDataModule(str(path), slices={"zzz.h5": [0]}).setup()


def test_datamodule_slices_per_file(multicoil_dir):
    dm = FastMRIDataModule(str(multicoil_dir), slices={"b.h5": [1]})
    dm.setup()
    assert dm.items == ["b.h5|1|snr_inf|0"]
    assert dm.volume_slices() == {"b.h5": [1]}


def test_read_slice_returns_copies(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=2, coils=2, size=(9, 11))
    raw = read_slice(inspect_volume(path), 1)
    assert raw.kspace.dtype == torch.complex64 and raw.kspace.shape == (2, 9, 11)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(raw.kspace.numpy(), f["kspace"][1])
        np.testing.assert_array_equal(raw.maps.numpy(), f["sens_maps"][1])
