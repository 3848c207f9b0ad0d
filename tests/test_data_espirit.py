"""ESPIRiT against a known phantom, and the two data scripts end to end on tiny files."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch

from lit_sampler.data.espirit import espirit_maps, kernel_autocorrelation
from lit_sampler.data.phantoms import coil_maps, random_volume, simulate_kspace
from lit_sampler.datamodules import FastMRIDataModule
from lit_sampler.physics.fft import fft2c, ifft2c
from lit_sampler.physics.operators import MultiCoilMRI
from lit_sampler.seeding import seeded_generator

ROOT = Path(__file__).resolve().parents[1]


def known_phantom(height, width, coils, seed=0):
    g = seeded_generator(seed, "espirit")
    x = random_volume(g).slice_image(height, width, 0.1)
    maps = coil_maps(height, width, coils, g)  # Σ|S|² = 1 everywhere
    return x, maps, simulate_kspace(x, maps)


@pytest.mark.parametrize("size,coils", [((48, 48), 4), ((45, 47), 3), ((40, 52), 6)])
def test_espirit_recovers_known_maps(size, coils):
    x, true_maps, kspace = known_phantom(*size, coils)
    maps, eig = espirit_maps(kspace, calib_width=24, kernel_width=6, return_eigenvalues=True)
    assert maps.shape == (coils, *size) and maps.dtype == torch.complex64
    inside = x.abs() > 0.05 * x.abs().max()
    # equal up to a per-pixel phase: |Σ_c S_est conj(S_true)| = 1 for unit-norm vectors
    overlap = (maps * true_maps.conj()).sum(0).abs()
    assert overlap[inside].min() > 0.995
    assert eig[inside].min() > 0.95
    norm = maps.abs().square().sum(0)
    torch.testing.assert_close(norm[inside], torch.ones_like(norm[inside]), rtol=0, atol=1e-4)
    # phase convention: coil 0 real and non-negative
    assert (maps[0][inside].imag.abs() < 1e-5).all() and (maps[0][inside].real >= 0).all()
    # the model with estimated maps explains the data: A x̂ ≈ y (full mask), AᴴA x̂ = x̂ on the support
    op = MultiCoilMRI(maps[None], torch.ones(1, 1, 1, size[1]))
    image = op.adjoint(kspace[None])
    assert ((op.forward(image) - kspace[None]).norm() / kspace.norm()) < 0.02
    torch.testing.assert_close(op.normal(image)[0][inside], image[0][inside], rtol=0, atol=1e-4)
    torch.testing.assert_close(image[0].abs()[inside], x.abs()[inside], rtol=0, atol=5e-3)


def test_kernel_autocorrelation_matches_direct_sum():
    kernels = torch.randn(3, 2, 4, 4, dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
    corr = kernel_autocorrelation(kernels)
    k = 4
    for dy, dx in [(0, 0), (1, -2), (-3, 3), (2, 0)]:
        expected = torch.zeros(2, 2, dtype=torch.complex128)
        for qy in range(k):
            for qx in range(k):
                if 0 <= qy - dy < k and 0 <= qx - dx < k:
                    expected += torch.einsum("nc,nd->cd", kernels[:, :, qy, qx], kernels[:, :, qy - dy, qx - dx].conj())
        torch.testing.assert_close(corr[:, :, dy + k - 1, dx + k - 1], expected)


# ------------------------------------------------------------------------------------------ scripts


def run_script(name, *args):
    """Run ``scripts/<name>``'s ``main(argv)`` in-process (a subprocess would re-import torch)."""
    spec = importlib.util.spec_from_file_location(name[:-3], ROOT / "scripts" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = module.main([str(a) for a in args])
    assert code == 0, stderr.getvalue()[-3000:]
    return SimpleNamespace(stdout=stdout.getvalue(), stderr=stderr.getvalue())


def test_make_demo_data(tmp_path):
    out = tmp_path / "demo"
    proc = run_script(
        "make_demo_data.py", "--source", "phantom", "--out", out, "--size", "24", "20", "--coils", "3",
        "--val-files", "2", "--val-slices", "2", "--train-files", "2", "--train-slices", "3",
    )
    assert "val: 2 files, 4 slices" in proc.stdout and "train: 2 files, 6 slices" in proc.stdout
    val = sorted((out / "val").glob("*.h5"))
    assert [p.name for p in val] == ["demo_val_000.h5", "demo_val_001.h5"]
    assert not list(out.rglob("*.tmp"))
    with h5py.File(val[0], "r") as f:
        assert f["kspace"].shape == f["sens_maps"].shape == (2, 3, 24, 20)
        assert f["kspace"].dtype == np.complex64 and f["reconstruction_rss"].shape == (2, 24, 20)
        assert f.attrs["acquisition"] == "SYNTHETIC" and f.attrs["max"] > 0
        maps = f["sens_maps"][0]
        np.testing.assert_allclose((np.abs(maps) ** 2).sum(0), 1.0, atol=1e-5)
        # fully sampled k-space = F(S x): the MVUE reproduces the data
        k = torch.from_numpy(f["kspace"][1])
        s = torch.from_numpy(f["sens_maps"][1])
        x = (s.conj() * ifft2c(k)).sum(0)
        torch.testing.assert_close(fft2c(s * x), k, rtol=1e-4, atol=1e-4)
    with h5py.File(out / "train" / "demo_train_000.h5", "r") as f:
        assert f["kspace"].shape == (3, 24, 20) and "sens_maps" not in f  # single-coil training files
    # deterministic
    again = tmp_path / "again"
    run_script("make_demo_data.py", "--source", "phantom", "--out", again, "--size", "24", "20", "--coils", "3", "--val-files", "1",
               "--val-slices", "2", "--train-files", "0")
    with h5py.File(val[0], "r") as a, h5py.File(again / "val" / "demo_val_000.h5", "r") as b:
        np.testing.assert_array_equal(a["kspace"][()], b["kspace"][()])
    # the demo data feeds the DataModule as is
    dm = FastMRIDataModule(str(out / "val"), snr_range=[None, 20], batch_size=4)
    assert sum(len(b.item_key) for b in dm.predict_dataloader()) == 2 * 2 * 2


def test_prepare_fastmri_end_to_end(tmp_path):
    """A tiny 'raw' file: 2× oversampled readout, zero-padded PE lines, no maps, an XML header."""
    raw_dir, out_dir = tmp_path / "raw", tmp_path / "prepared"
    height, width, pad = 24, 28, 3
    g = seeded_generator(0, "raw")
    volume = random_volume(g)
    slices = [torch.nn.functional.pad(volume.slice_image(height, width, z), (0, 0, height // 2, height // 2)) for z in (-0.2, 0.0, 0.2)]
    x = torch.stack(slices)  # [3, 48, 28]: object in the central half of the readout
    maps = coil_maps(2 * height, width, 4, g)
    kspace = torch.nn.functional.pad(simulate_kspace(x, maps), (pad, pad))  # [3, 4, 48, 34]
    raw_dir.mkdir()
    with h5py.File(raw_dir / "file_raw_000.h5", "w") as f:
        f.create_dataset("kspace", data=kspace.numpy())
        f.create_dataset("reconstruction_rss", data=np.zeros((3, 20, 20), np.float32))
        f.create_dataset("ismrmrd_header", data=b"<ismrmrdHeader/>")
        f.attrs["acquisition"] = "AXT2"
        f.attrs["max"] = 1.5
    proc = run_script("prepare_fastmri.py", raw_dir, out_dir, "--image-size", height, width - 4, "--slices", "1:3")
    assert "prepared 1 file(s), 2 slice(s)" in proc.stdout
    with h5py.File(out_dir / "file_raw_000.h5", "r") as f:
        assert f["kspace"].shape == f["sens_maps"].shape == (2, 4, height, width - 4)
        assert f.attrs["acquisition"] == "AXT2" and f.attrs["max"] == 1.5
        assert json.loads(f.attrs["prepared_source_slices"]) == [1, 2]
        assert f["ismrmrd_header"][()] == b"<ismrmrdHeader/>" and "reconstruction_rss" not in f
        k, s = torch.from_numpy(f["kspace"][0]), torch.from_numpy(f["sens_maps"][0])
    # The prepared maps explain the prepared k-space: F(S x̂) ≈ k with x̂ the pointwise
    # least-squares image (the csgm PE crop of the maps breaks Σ|S|² = 1 slightly, and rings near
    # the FOV edges for maps that are not periodic; ~3.5 % here, for a 28 -> 24 line crop).
    energy = s.abs().square().sum(0)
    support = energy > 0.5
    image = (s.conj() * ifft2c(k)).sum(0) / energy.clamp_min(1e-6)
    assert ((fft2c(s * image) - k).norm() / k.norm()) < 0.06
    inside = ifft2c(k).abs().sum(0) > 0.05 * ifft2c(k).abs().sum(0).max()
    assert support[inside].float().mean() > 0.97
    # ... and feed the DataModule directly (maps found in the file)
    dm = FastMRIDataModule(str(out_dir))
    batch = next(iter(dm.predict_dataloader()))
    assert batch.sens_maps.shape == (1, 4, height, width - 4) and batch.has_target.all()
    # existing outputs are skipped
    assert "skipping 1 file(s)" in run_script("prepare_fastmri.py", raw_dir, out_dir).stdout
