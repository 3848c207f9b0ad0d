"""Viewer-ready exports (NIfTI, PNG) and, end to end, an ISMRMRD file through the CLI with them."""

from __future__ import annotations

import re

import h5py
import matplotlib.image
import nibabel
import numpy as np
import pytest
import torch

from helpers import main_in_process, predict_config, read_rows, write_tiny_checkpoint
from ismrmrd_files import Header, Scan, correlated_noise, known_volume, write_ismrmrd
from lit_sampler.data.geometry import Geometry
from lit_sampler.outputs.export import check_formats, export_volume, header_voxel_size, output_voxel_size
from lit_sampler.outputs.writer import ReconstructionWriter


def _volume(num_samples: int = 2) -> dict:
    generator = torch.Generator().manual_seed(0)
    mean = torch.randn(2, 8, 6, dtype=torch.complex64, generator=generator)
    return {"fname": "vol.h5", "snr_db": float("inf"), "slices": [3, 5], "mean": mean,
            "std": torch.rand(2, 8, 6, generator=generator), "num_samples": [num_samples] * 2}


def test_nifti_layout_voxel_size_and_pngs(tmp_path):
    volume = _volume()
    written = export_volume(tmp_path, volume, ("nifti", "png"), voxel=(0.5, 0.75, 4.0))
    folder = tmp_path / "export" / "snr_inf"
    assert sorted(p.relative_to(folder).as_posix() for p in written) == [
        "vol/mean_s0003.png", "vol/mean_s0005.png", "vol/std_s0003.png", "vol/std_s0005.png",
        "vol_mean.nii.gz", "vol_std.nii.gz"]
    image = nibabel.load(folder / "vol_mean.nii.gz")
    data = np.asarray(image.dataobj)
    magnitude = volume["mean"].abs().numpy()
    assert data.shape == (6, 8, 2) and data.dtype == np.float32
    for i, j, k in [(0, 0, 0), (5, 7, 1), (2, 3, 1)]:  # voxel [i, j, k] = |x|[k, H − 1 − j, i]
        assert data[i, j, k] == magnitude[k, 7 - j, i]
    np.testing.assert_allclose(image.affine, np.diag([0.75, 0.5, 4.0, 1.0]))
    assert image.header.get_xyzt_units()[0] == "mm"
    np.testing.assert_allclose(np.asarray(nibabel.load(folder / "vol_std.nii.gz").dataobj)[:, ::-1, :].transpose(2, 1, 0),
                               volume["std"].numpy())
    png = matplotlib.image.imread(folder / "vol" / "mean_s0005.png")
    assert min(png.shape[:2]) >= 256 and png.shape[0] > png.shape[1]  # upscaled, portrait like the 8×6 slice
    # pixel for pixel: each slice pixel is one zoom × zoom block of its value / the volume's maximum
    zoom = png.shape[1] // 6
    assert png.shape[:2] == (8 * zoom, 6 * zoom)
    np.testing.assert_allclose(png[::zoom, ::zoom, 0], magnitude[1] / magnitude.max(), atol=2 / 255)  # 8 bits through a 256-entry colormap
    # the same volume gives the same bytes (gzip without a time stamp); one sample: no std
    again = export_volume(tmp_path / "again", volume, ("nifti",), voxel=(0.5, 0.75, 4.0))
    assert again[0].read_bytes() == (folder / "vol_mean.nii.gz").read_bytes()
    single = export_volume(tmp_path / "single", _volume(num_samples=1), ("nifti",))
    assert [p.name for p in single] == ["vol_mean.nii.gz"]
    assert b"1 mm assumed" in nibabel.load(single[0]).header["descrip"].tobytes()
    np.testing.assert_allclose(nibabel.load(single[0]).affine, np.eye(4))


def test_voxel_size_from_an_ismrmrd_header_and_the_geometry():
    xml = (b'<?xml version="1.0"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding><encodedSpace>'
           b"<matrixSize><x>640</x><y>368</y><z>1</z></matrixSize><fieldOfView_mm><x>440</x><y>220</y><z>7.5</z>"
           b"</fieldOfView_mm></encodedSpace></encoding></ismrmrdHeader>")
    assert header_voxel_size(xml, (640, 368)) == pytest.approx((440 / 640, 220 / 368, 7.5))
    assert header_voxel_size(xml, (320, 320)) is None  # a k-space no longer of the encoded size
    assert header_voxel_size(b"<not xml", (640, 368)) is None
    assert output_voxel_size((1.0, 0.5, 3.0), (64, 32), Geometry()) == (1.0, 0.5, 3.0)
    assert output_voxel_size((1.0, 0.5, 3.0), (64, 32), Geometry((32, 16), "csgm")) == (1.0, 1.0, 3.0)
    assert output_voxel_size((1.0, 0.5, 3.0), (64, 32), Geometry((32, 16), "image")) == (1.0, 0.5, 3.0)
    assert output_voxel_size(None, (64, 32), Geometry()) is None


def test_bad_export_options_are_refused_at_once(monkeypatch):
    with pytest.raises(ValueError, match=re.escape("export: unknown format(s) ['dicom']; expected a list of ['nifti', 'png']")):
        ReconstructionWriter(export=["png", "dicom"])
    import builtins

    real_import = builtins.__import__

    def no_nibabel(name, *args, **kwargs):
        if name == "nibabel":
            raise ImportError("No module named 'nibabel'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nibabel)
    with pytest.raises(ImportError, match=re.escape("export: nifti needs nibabel (No module named 'nibabel'): "
                                                    "pip install 'lit_sampler[export]'")):
        check_formats(["nifti"])
    assert check_formats(["png"]) == ("png",)


def test_ismrmrd_file_through_the_cli_with_its_own_noise_and_exports(tmp_path):
    """``data_path`` holding an ISMRMRD file just works: converted into the cache, reconstructed at
    ``snr_range: [null]`` with its measured (whitened) noise, exported for viewers."""
    truth = known_volume("scan.h5", slices=1, size=(16, 16))
    clean = truth.oversampled.numpy()
    noise = correlated_noise(4, (4096,), seed=7)
    data_noise = np.moveaxis(correlated_noise(4, clean.shape[:1] + clean.shape[2:], seed=8), 0, 1)
    header = Header(encoded=(32, 16, 1), encoded_fov=(240.0, 120.0, 3.0), recon=(16, 16, 1), recon_fov=(120.0, 120.0, 3.0))
    write_ismrmrd(tmp_path / "raw" / "scan.h5", Scan(averages=[clean + data_noise], header=header, noise=noise))
    out = tmp_path / "out"
    writer = {"class_path": "lit_sampler.outputs.ReconstructionWriter",
              "init_args": {"output_dir": str(out), "figure_slices": 1, "export": ["nifti", "png"]}}
    config = predict_config(tmp_path, write_tiny_checkpoint(tmp_path / "tiny.pt"), tmp_path / "raw", out, logger=False,
                            trainer={"callbacks": [writer]}, snr_range=[None], num_samples=2, batch_size=2,
                            raw={"cache_dir": str(tmp_path / "cache"), "calib_width": 12})
    assert main_in_process("predict", "--config", config) == 0
    psi = noise.astype(np.complex128) @ noise.conj().T.astype(np.complex128) / noise.shape[1]
    whitened_var = 4 / np.trace(np.linalg.inv(psi)).real  # c²: the whitened noise variance (whitening.py)
    with h5py.File(out / "reconstructions" / "snr_inf" / "scan.h5", "r") as f:
        assert f["reconstruction"].shape == (1, 16, 16) and f["noise_var"][()] == pytest.approx([whitened_var], rel=1e-5)
        # fully sampled: the ground truth, on the unwhitened scale (the object's magnitude; its maps have Σ|S|² = 1)
        target, image = f["target"][0], truth.images.abs().numpy()[0]
        inside = image > 0.2 * image.max()
        assert np.corrcoef(target.ravel(), image.ravel())[0, 1] > 0.99
        assert np.median(target[inside] / image[inside]) == pytest.approx(1.0, abs=0.02)
    rows = read_rows(out / "metrics.csv")
    assert len(rows) == 2 and {r["status"] for r in rows} == {"ok"}
    nifti = nibabel.load(out / "export" / "snr_inf" / "scan_mean.nii.gz")
    assert nifti.shape == (16, 16, 1)
    np.testing.assert_allclose(nifti.header.get_zooms(), (120 / 16, 240 / 32, 3.0))  # (PE, RO, slice) from the FOV
    assert (out / "export" / "snr_inf" / "scan_std.nii.gz").exists()
    assert (out / "export" / "snr_inf" / "scan" / "mean_s0000.png").stat().st_size > 500
    settings = (out / "run_settings.json").read_text()
    assert '"raw"' in settings and '"calib_width": 12' in settings and "cache" not in settings
