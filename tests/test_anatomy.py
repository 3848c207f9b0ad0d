"""The anatomy demo's data: generator geometry and normalisation, position splits, ESPIRiT maps
from the calibration block only (never the simulation's maps), and the shipped files themselves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from lit_sampler.data import anatomy
from lit_sampler.physics.coils import mvue
from lit_sampler.physics.fft import fft2c, ifft2c
from lit_sampler.seeding import seeded_generator

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "data"


def load_script():
    spec = importlib.util.spec_from_file_location("make_demo_data", ROOT / "scripts" / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ellipsoid_volume(shape=(40, 48, 36)) -> np.ndarray:
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = sum(g**2 / r**2 for g, r in zip(grids, (0.8, 0.9, 0.7)))
    return np.where(radius < 1, 200.0, 0.0)


def test_oriented_slices_and_views_have_the_right_geometry():
    volume = ellipsoid_volume()
    assert anatomy.oriented_slice(volume, "axial", 10).shape == (48, 40)  # [Y, X] of fixed z
    assert anatomy.oriented_slice(volume, "coronal", 10).shape == (36, 40)  # [Z, X]
    assert anatomy.oriented_slice(volume, "sagittal", 10).shape == (36, 48)  # [Z, Y]
    ramp = np.zeros((4, 5, 6))
    ramp[..., -1] = 1  # the top (superior) axial plane...
    assert anatomy.oriented_slice(ramp, "coronal", 0)[0].all()  # ...is the first row of a coronal cut
    image = np.arange(12.0).reshape(3, 4) + 1
    padded = anatomy.view(image, 6)
    assert padded.shape == (6, 6) and padded.sum() == image.sum()  # whole slice inside, zero around
    assert anatomy.view(image, 2, (1.0, 1.0)).tolist() == [[1.0, 2.0], [5.0, 6.0]]
    with pytest.raises(ValueError, match="unknown orientation"):
        anatomy.oriented_slice(volume, "oblique", 0)


def test_simulation_keeps_amplitude_and_commits_no_inverse_crime():
    side, size = 120, 32
    yy, xx = np.mgrid[:side, :side]
    magnitude = (((yy - 60) ** 2 + (xx - 60) ** 2) < 40**2).astype(float) * 0.8
    acq = anatomy.simulate(magnitude, size, 6, seeded_generator(0, "t"))
    assert acq.kspace.shape == (6, size, size) and acq.kspace.dtype == torch.complex64
    # the band-limited object keeps the fine image's intensity (a disc of 0.8)
    assert acq.truth.abs()[16, 16].item() == pytest.approx(0.8, rel=0.05)
    # coil images sum back to the object through the (unit-norm) maps, up to the band limit
    combined = (ifft2c(acq.kspace) * acq.maps.conj()).sum(0) / acq.maps.abs().square().sum(0).sqrt()
    inside = acq.truth.abs() > 0.4
    assert (combined.abs() - acq.truth.abs())[inside].abs().mean() < 0.05
    # not the inverse crime: the data are not F(S · truth) on the coarse grid
    crime = fft2c(acq.maps * acq.truth)
    assert (crime - acq.kspace).norm() / acq.kspace.norm() > 1e-3
    single = anatomy.simulate(magnitude, size, 0, seeded_generator(0, "t"))
    assert single.kspace.shape == (size, size) and single.maps is None


def test_tissue_contrasts():
    t1 = np.array([0.0, 255.0, 255.0, 255.0])
    gm = np.array([0.0, 255.0, 0.0, 0.0])
    wm = np.array([0.0, 0.0, 255.0, 0.0])
    np.testing.assert_allclose(anatomy.tissue_contrast(t1, gm, wm, "t1"), [0, 1, 1, 1])
    np.testing.assert_allclose(anatomy.tissue_contrast(t1, gm, wm, "t2"), [0, 0.55, 0.3, 1.0])  # CSF brightest


@pytest.mark.parametrize("slab,gap", [(10, 4), (5, 2), (3, 0)])
def test_splits_never_overlap_and_keep_their_gaps(slab, gap):
    positions = list(range(7, 160))
    split = anatomy.slab_split(positions, slab, gap)
    sets = {name: set(v) for name, v in split.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    assert all(sets.values())
    for name in ("val", "test"):
        for p in sets[name]:
            nearest = min(abs(p - q) for q in sets["train"])
            assert nearest > gap
    assert anatomy.slab_centres([1, 2, 3, 10, 11]) == [2, 11]


def test_calibration_maps_come_from_the_calibration_block_only():
    script = load_script()
    side, size = 100, 32
    yy, xx = np.mgrid[:side, :side]
    magnitude = (((yy - 50) ** 2 / 35**2 + (xx - 50) ** 2 / 28**2) < 1).astype(float)
    acq = anatomy.simulate(magnitude, size, 8, seeded_generator(1, "m"))
    maps = script.calibration_maps(acq.kspace)
    width = script.ESPIRIT["calib_width"]
    only_centre = torch.zeros_like(acq.kspace)
    block = slice(size // 2 - width // 2, size // 2 - width // 2 + width)
    only_centre[..., block, block] = acq.kspace[..., block, block]
    assert torch.equal(script.calibration_maps(only_centre), maps)  # nothing outside the block is used
    image = mvue(acq.kspace, maps)
    assert ((image.abs() - acq.truth.abs()).norm() / acq.truth.abs().norm()).item() < 0.05
    assert not torch.allclose(maps, acq.maps)  # estimated, not the simulation's
    # and the forward model they give explains the data to about 1 %
    residual = (fft2c(maps * image) - acq.kspace).norm() / acq.kspace.norm()
    assert residual.item() < 0.03


@pytest.mark.skipif(not (DEMO / "test").exists(), reason="shipped demo data")
def test_shipped_files_hold_calibration_maps_and_disjoint_splits():
    script = load_script()
    names = {split: sorted(p.name for p in (DEMO / split).glob("*.h5")) for split in ("val", "test", "test_other")}
    assert names["val"] and names["test"] and names["test_other"]
    with h5py.File(DEMO / "test" / names["test"][0]) as f:
        kspace = torch.from_numpy(f["kspace"][0])
        stored = torch.from_numpy(f["sens_maps"][0])
        assert f["kspace"].shape[1:] == (8, 64, 64)
        assert f.attrs["acquisition"].startswith("MNI152_")
    torch.testing.assert_close(stored, script.calibration_maps(kspace), rtol=0, atol=1e-6)
    # ground-truth normalisation of the sampler: 99th percentile of the zero-filled image is the scale
    from lit_sampler.datamodules import FastMRIDataModule

    module = FastMRIDataModule(str(DEMO / "test"), snr_range=[None], slices=[0])
    module.setup("predict")
    batch = next(iter(module.predict_dataloader()))
    assert torch.quantile(batch.zero_filled[0].abs().flatten(), 0.99).item() == pytest.approx(1.0, rel=1e-3)
