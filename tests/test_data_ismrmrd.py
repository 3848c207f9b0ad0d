"""ISMRMRD raw data in: gridding, readout oversampling, pre-whitening, acquired masks, the cache,
and items equal to those of a fastMRI file of the same k-space (files written by the tests
themselves with the ``ismrmrd`` package, from a known phantom)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ismrmrd_files import Header, Scan, Truth, correlated_noise, known_volume, noise_mixing, write_ismrmrd
from lit_sampler.data import DataError
from lit_sampler.data.espirit import espirit_maps
from lit_sampler.data.fastmri import inspect_volume
from lit_sampler.data.fastmri_write import write_volume
from lit_sampler.data.ismrmrd_header import is_ismrmrd_file
from lit_sampler.data.ismrmrd_raw import RawOptions, read_ismrmrd
from lit_sampler.data.raw_prepare import cached_path, convert_ismrmrd
from lit_sampler.datamodules import FastMRIDataModule
from lit_sampler.physics.fft import fft2c
from lit_sampler.physics.masks import RandomLineMask
from lit_sampler.physics.operators import MultiCoilMRI
from lit_sampler.sampling.baselines import cg_sense, intensity_correction

ROOT = Path(__file__).resolve().parents[1]
COILS, SIZE = 4, (32, 32)
FOV = (400.0, 200.0, 5.0)  # encoded: 2× readout oversampling
RECON_FOV = (200.0, 200.0, 5.0)


def oversampled_header(slices: int, **changes) -> Header:
    height, width = SIZE
    return Header(**({"encoded": (2 * height, width, 1), "encoded_fov": FOV, "recon": (height, width, 1),
                      "recon_fov": RECON_FOV, "slices": slices} | changes))


def expected_maps(kspace: np.ndarray, calib) -> np.ndarray:
    """ESPIRiT maps computed here, independently of the conversion, with its default settings."""
    return np.stack([espirit_maps(torch.from_numpy(k), calib_width=calib, kernel_width=6, thresh=0.02, crop=0.95).numpy()
                     for k in kspace])


def items(data_path, cache, whiten: bool = True, **kwargs) -> list[dict]:
    """The measurements of every item, as dicts with their ``item_key``."""
    dm = FastMRIDataModule(data_path=str(data_path), raw=RawOptions(cache_dir=str(cache), whiten=whiten),
                           mask=RandomLineMask([0.25], [2]), **kwargs)
    dm.setup("predict")
    return [{"item_key": key, **vars(m)} for key, m in zip(dm.items, dm.measurements(dm.items))]


def assert_items_equal(got: list[dict], want: list[dict]) -> None:
    assert [g["item_key"] for g in got] == [w["item_key"] for w in want]
    for g, w in zip(got, want):
        for key in ("kspace", "mask", "sens_maps", "target", "zero_filled"):
            torch.testing.assert_close(g[key], w[key], rtol=1e-4, atol=1e-5 * float(w[key].abs().max()), msg=f"{g['item_key']} {key}")
        assert g["has_target"] == w["has_target"]
        for key in ("scale", "noise_var", "snr_db"):
            assert g[key] == pytest.approx(w[key], rel=1e-4, abs=1e-12), key


def test_fully_sampled_items_equal_the_fastmri_file(tmp_path):
    truth = known_volume("scan.h5", slices=2)
    raw = write_ismrmrd(tmp_path / "raw" / "scan.h5", Scan(averages=[truth.oversampled.numpy()], header=oversampled_header(2)))
    assert is_ismrmrd_file(raw)
    kspace = truth.kspace.numpy()  # oversampling removed = the phantom's own k-space
    reference = write_volume(tmp_path / "fastmri" / "scan.h5", kspace, sens_maps=expected_maps(kspace, (24, 24)))
    assert not is_ismrmrd_file(reference)
    got = items(raw, tmp_path / "cache", snr_range=[None, 10])
    assert_items_equal(got, items(reference, tmp_path / "unused", snr_range=[None, 10]))
    assert all(g["has_target"] for g in got) and not bool(got[0]["mask"].all())  # a retrospective mask
    # the cached conversion: FOV, voxel size and provenance recorded
    (cached,) = (tmp_path / "cache" / "ismrmrd").glob("scan-*/scan.h5")
    with h5py.File(cached, "r") as f:
        assert "mask" not in f and f.attrs["source_format"] == "ismrmrd" and not f.attrs["acquired_mask"]
        np.testing.assert_allclose(f.attrs["voxel_size_mm"], [200 / 32, 200 / 32, 5.0])
        np.testing.assert_allclose(f.attrs["field_of_view_mm"], [200.0, 200.0, 5.0])
        assert f.attrs["readout_oversampling"] == 2.0 and "measured_noise_var" not in f.attrs
        assert b"encodedSpace" in f["ismrmrd_header"][()]


def test_undersampled_acquisition_keeps_its_lines_as_the_mask(tmp_path):
    truth = known_volume("under.h5", slices=1)
    width = SIZE[1]
    lines = sorted(set(range(10, 22)) | set(range(0, width, 3)))  # 12 centre lines + every third
    scan = Scan(averages=[truth.oversampled.numpy()], header=oversampled_header(1), lines=lines)
    raw = write_ismrmrd(tmp_path / "raw" / "under.h5", scan)
    mask = np.zeros(width, np.float32)
    mask[lines] = 1
    kspace = truth.kspace.numpy() * mask
    reference = write_volume(tmp_path / "fastmri" / "under.h5", kspace, mask=mask, sens_maps=expected_maps(kspace, (24, 12)))
    got = items(raw, tmp_path / "cache")
    assert_items_equal(got, items(reference, tmp_path / "unused"))
    # the acquired lines, not the configured RandomLineMask; no ground truth
    np.testing.assert_array_equal(got[0]["mask"][0, 0].numpy(), mask)
    assert not got[0]["has_target"] and got[0]["noise_var"] == 0.0
    # no SNR sweep, no second (retrospective) mask on real undersampled data
    (cached,) = (tmp_path / "cache" / "ismrmrd").glob("under-*/under.h5")
    with pytest.raises(DataError, match="^" + re.escape(
        f"{raw} (prepared as {cached}): snr_range asks for 20 dB, 5 dB, but the data were acquired undersampled with the scanner's own "
        "noise (attribute 'real_noise'): there is no clean k-space to set an SNR on; expected snr_range: [null] "
        "(the measured noise is used)") + "$"):
        items(raw, tmp_path / "cache", snr_range=[None, 20, 5])
    with pytest.raises(DataError, match="^" + re.escape(
        f"{raw} (prepared as {cached}): the data were acquired undersampled (dataset 'mask' holds the acquired lines), so "
        "use_file_mask: false would undersample the measured k-space a second time; expected use_file_mask: "
        "true (the acquired lines are the mask)") + "$"):
        items(raw, tmp_path / "cache", use_file_mask=False)


def test_prewhitening_makes_the_noise_white(tmp_path):
    truth = known_volume("noisy.h5", slices=2)
    clean = truth.oversampled.numpy()
    mixing = noise_mixing(COILS)
    data_noise = np.moveaxis(correlated_noise(COILS, clean.shape[:1] + clean.shape[2:], seed=1, mixing=mixing), 0, 1)
    noise_scan = correlated_noise(COILS, (64 * 256,), seed=2, mixing=mixing)
    scan = Scan(averages=[clean + data_noise], header=oversampled_header(2), noise=noise_scan)
    raw = write_ismrmrd(tmp_path / "raw" / "noisy.h5", scan)
    volume = read_ismrmrd(raw)
    # whitening from the noise scan: Ψ̂ = n nᴴ / N, L = chol(Ψ̂), W = c L⁻¹ with c² = coils / tr(Ψ̂⁻¹)
    psi = noise_scan.astype(np.complex128) @ noise_scan.conj().T.astype(np.complex128) / noise_scan.shape[1]
    np.testing.assert_allclose(volume.whitening.covariance, psi, rtol=1e-5, atol=1e-12)
    factor = np.linalg.cholesky(psi)
    c2 = COILS / np.trace(np.linalg.inv(psi)).real
    assert volume.whitening.scale ** 2 == pytest.approx(c2, rel=1e-9)
    whiten = np.sqrt(c2) * np.linalg.inv(factor)
    white_scan = whiten @ noise_scan
    np.testing.assert_allclose(white_scan @ white_scan.conj().T / white_scan.shape[1], c2 * np.eye(COILS), atol=1e-5 * c2)
    # the imaging noise (another draw of the same process) is white after whitening, to sampling error
    expected_clean = whiten @ np.moveaxis(truth.kspace.numpy(), 1, 0).reshape(COILS, -1)
    residual = np.moveaxis(volume.kspace, 1, 0).reshape(COILS, -1) - expected_clean
    covariance = residual @ residual.conj().T / residual.shape[1]
    np.testing.assert_allclose(covariance, c2 * np.eye(COILS), atol=0.12 * c2)  # 2·32·32 samples per coil
    assert np.abs(np.cov(np.moveaxis(data_noise, 1, 0).reshape(COILS, -1)) / c2 - np.eye(COILS)).max() > 0.5  # it was not
    assert volume.noise_var == pytest.approx(c2, rel=1e-9) and volume.whitening.max_correlation > 0.1
    # the item's noise level is the measured, whitened one: ν = c² per coil and sample, in data units
    got = items(raw, tmp_path / "cache")
    assert [g["noise_var"] * g["scale"] ** 2 for g in got] == pytest.approx([c2, c2], rel=1e-5)
    (cached,) = (tmp_path / "cache" / "ismrmrd").glob("noisy-*/noisy.h5")
    with h5py.File(cached, "r") as f:
        assert f.attrs["whitened"] and f.attrs["measured_noise_var"] == pytest.approx(c2, rel=1e-9)
        assert f.attrs["whitening_scale"] == pytest.approx(np.sqrt(c2), rel=1e-9)
        assert f.attrs["whitening_samples"] == 64 * 256 and f.attrs["whitening_condition"] > 1.0
        np.testing.assert_allclose(f["noise_covariance"][()], psi, rtol=1e-4, atol=1e-9)
        # the same whitened k-space as W y computed here
        whitened = np.moveaxis((whiten @ np.moveaxis(read_ismrmrd(raw, RawOptions(whiten=False)).kspace, 1, 0)
                                .reshape(COILS, -1)).reshape(COILS, 2, *SIZE), 0, 1)
        np.testing.assert_allclose(f["kspace"][()], whitened, atol=1e-5 * np.abs(whitened).max())


# ------------------------------------------------------------------ whitening keeps the image (issue 25)
STRONG_COILS, STRONG_SLICES = 8, 4


def correlated_scan(tmp_path, name: str, relative_noise: float) -> tuple[Path, Truth]:
    """A fully sampled 8-coil, 4-slice scan with 2× readout oversampling, strongly correlated coil
    noise (:func:`noise_mixing`: 30 % off-diagonal terms, levels 1..2) of ``relative_noise`` × the
    largest k-space sample, and a noise scan of the same process."""
    truth = known_volume(name, slices=STRONG_SLICES, coils=STRONG_COILS)
    clean = truth.oversampled.numpy()
    mixing = noise_mixing(STRONG_COILS, scale=relative_noise * float(np.abs(clean).max()))
    data_noise = np.moveaxis(correlated_noise(STRONG_COILS, clean.shape[:1] + clean.shape[2:], seed=11, mixing=mixing), 0, 1)
    noise_scan = correlated_noise(STRONG_COILS, (64 * 256,), seed=12, mixing=mixing)
    raw = write_ismrmrd(tmp_path / "raw" / name, Scan(averages=[clean + data_noise], header=oversampled_header(STRONG_SLICES),
                                                     noise=noise_scan))
    return raw, truth


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double() - a.double().mean(), b.flatten().double() - b.double().mean()
    return float(a @ b / (a.norm() * b.norm()))


def relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    return float((estimate - truth).norm() / truth.norm())


def cg_images(got: list[dict], iterations: int = 10) -> list[torch.Tensor]:
    """CG-SENSE of every item through its own forward model, as the module runs it, in data units."""
    return [cg_sense(MultiCoilMRI(sens_maps=g["sens_maps"][None], mask=g["mask"][None]), g["kspace"][None], iterations,
                     intensity=intensity_correction(g["sens_maps"][None]))[0] * g["scale"]
            for g in got]


@pytest.mark.parametrize("whiten", [True, False])
def test_correlated_noise_leaves_the_target_the_true_image(tmp_path, whiten):
    """Tiny noise: the stored target is the object on the unwhitened scale, on every slice, whitened
    or not; it is the image of the forward model the sampler uses; CG-SENSE recovers it."""
    raw, truth = correlated_scan(tmp_path, "strong.h5", relative_noise=1e-4)
    got = items(raw, tmp_path / "cache", whiten=whiten, snr_range=[None])
    assert len(got) == STRONG_SLICES
    for g, image, cg in zip(got, truth.images.abs(), cg_images(got)):
        target = (g["target"] * g["scale"]).abs()
        assert correlation(target, image) >= 0.999, g["item_key"]
        inside = image > 0.2 * image.max()
        assert float((target[inside] / image[inside]).median()) == pytest.approx(1.0, abs=0.01)  # the intensity scale
        # x = target explains the measured k-space through the item's maps: the sampler's image is the target
        model = g["mask"] * fft2c(g["sens_maps"] * g["target"])
        assert relative_error(model, g["kspace"]) < 0.05, g["item_key"]
        assert relative_error(cg.abs(), image) < 0.12, g["item_key"]
    # ν is the noise variance of the k-space the forward model sees (c² after whitening, none measured without)
    (cached,) = (tmp_path / "cache" / "ismrmrd").glob("strong-*/strong.h5")
    with h5py.File(cached, "r") as f:
        assert bool(f.attrs["whitened"]) == whiten and (not whiten or f.attrs["whitening_max_correlation"] > 0.3)
        c2 = f.attrs["whitening_scale"] ** 2 if whiten else 0.0
    assert [g["noise_var"] * g["scale"] ** 2 for g in got] == pytest.approx([c2] * STRONG_SLICES, rel=1e-5)


def test_whitened_and_unwhitened_conversions_give_the_same_images(tmp_path):
    raw, truth = correlated_scan(tmp_path, "same.h5", relative_noise=1e-4)
    white = items(raw, tmp_path / "white", whiten=True, snr_range=[None])
    plain = items(raw, tmp_path / "plain", whiten=False, snr_range=[None])
    for w, p, image in zip(white, plain, truth.images.abs()):
        assert w["scale"] == pytest.approx(p["scale"], rel=1e-3)
        target_w, target_p = w["target"] * w["scale"], p["target"] * p["scale"]
        assert relative_error(target_w.abs(), target_p.abs()) < 1e-3
        # the phases come from two ESPIRiT runs (in two coil bases): equal to a few mrad
        assert relative_error(target_w, target_p) < 0.02
        # the zero-filled images agree on the object; off it, the two ESPIRiT runs extrapolate the maps
        # differently, and aliased signal lands there
        inside = image > 0.2 * image.max()
        zero_w, zero_p = (w["zero_filled"] * w["scale"])[inside], (p["zero_filled"] * p["scale"])[inside]
        assert relative_error(zero_w.abs(), zero_p.abs()) < 1e-3


def test_whitening_improves_the_least_squares_reconstruction_of_noisy_data(tmp_path):
    """With noise that matters, whitening weights the coils by their noise (the ML estimate of
    Pruessmann et al.): CG-SENSE (the module's 10 iterations) of the whitened data is closer to the
    object than of the raw data, on every slice (by 6–20 % here)."""
    raw, truth = correlated_scan(tmp_path, "noisy8.h5", relative_noise=5e-3)
    white = cg_images(items(raw, tmp_path / "white", whiten=True, snr_range=[None]))
    plain = cg_images(items(raw, tmp_path / "plain", whiten=False, snr_range=[None]))
    for w, p, image in zip(white, plain, truth.images.abs()):
        assert relative_error(w.abs(), image) < relative_error(p.abs(), image)


def test_maps_made_elsewhere_from_the_whitened_kspace_are_put_on_the_unwhitened_scale(tmp_path):
    """Maps estimated from the prepared (whitened) k-space by another tool (BART's ``ecalib``: unit
    norm over the whitened coils) give the items of the conversion's own maps."""
    raw, _ = correlated_scan(tmp_path, "elsewhere.h5", relative_noise=1e-4)
    prepared = convert_ismrmrd(raw, tmp_path / "prepared" / "elsewhere.h5", with_maps=False)
    with h5py.File(prepared, "r") as f:
        assert "sens_maps" not in f
        unit_whitened = expected_maps(f["kspace"][()], (24, 24))
    write_volume(tmp_path / "maps" / "elsewhere.h5", np.zeros_like(unit_whitened), datasets={"s_maps": unit_whitened})
    got = items(prepared, tmp_path / "unused", maps_dir=str(tmp_path / "maps"), snr_range=[None, 10])
    assert_items_equal(got, items(raw, tmp_path / "cache", snr_range=[None, 10]))


def test_files_prepared_before_the_whitening_scale_are_read_on_the_unwhitened_scale(tmp_path):
    """A version-1 conversion (``y ← L⁻¹ y``, no ``whitening_scale``, unit-norm whitened maps) gives
    the same images: its ``W⁻¹`` is ``L``."""
    raw, _ = correlated_scan(tmp_path, "old.h5", relative_noise=1e-4)
    current = convert_ismrmrd(raw, tmp_path / "current" / "old.h5")
    old = tmp_path / "old" / "old.h5"
    with h5py.File(current, "r") as f:
        c = float(f.attrs["whitening_scale"])
        attrs = {k: v for k, v in f.attrs.items() if k != "whitening_scale"}
        attrs["measured_noise_var"] = 1.0
        write_volume(old, f["kspace"][()] / c, sens_maps=expected_maps(f["kspace"][()], (24, 24)), attrs=attrs,
                     datasets={"noise_covariance": f["noise_covariance"][()]})
    got, want = items(old, tmp_path / "unused", snr_range=[None]), items(current, tmp_path / "unused", snr_range=[None])
    for g, w in zip(got, want):
        torch.testing.assert_close(g["target"] * g["scale"], w["target"] * w["scale"], rtol=1e-4, atol=1e-5 * float((w["target"] * w["scale"]).abs().max()))
        assert g["scale"] == pytest.approx(w["scale"], rel=1e-4)
        assert g["noise_var"] * g["scale"] ** 2 == pytest.approx(1.0)  # the old file's own k-space units


def test_noise_scan_dwell_time_scales_the_covariance(tmp_path):
    truth = known_volume("dwell.h5", slices=1)
    noise_scan = correlated_noise(COILS, (4096,), seed=3)
    base = dict(averages=[truth.oversampled.numpy()], header=oversampled_header(1), noise=noise_scan)
    same = read_ismrmrd(write_ismrmrd(tmp_path / "same.h5", Scan(**base)))
    slower = read_ismrmrd(write_ismrmrd(tmp_path / "slow.h5", Scan(**base, noise_dwell_us=10.0, dwell_us=5.0)))
    # noise sampled at twice the dwell time has half the bandwidth: the imaging data have 2× its variance
    np.testing.assert_allclose(slower.whitening.covariance, 2 * same.whitening.covariance, rtol=1e-6)
    assert slower.whitening.dwell_ratio == 2.0


def test_averages_are_combined_or_selected(tmp_path):
    truth = known_volume("avg.h5", slices=1)
    first, second = truth.oversampled.numpy(), 3 * truth.oversampled.numpy()
    noise_scan = correlated_noise(COILS, (4096,), seed=4)
    raw = write_ismrmrd(tmp_path / "avg.h5", Scan(averages=[first, second], header=oversampled_header(1), noise=noise_scan))
    off = RawOptions(whiten=False)
    np.testing.assert_allclose(read_ismrmrd(raw, off).kspace, 2 * truth.kspace.numpy(), atol=1e-5)
    np.testing.assert_allclose(read_ismrmrd(raw, RawOptions(average=1, whiten=False)).kspace, 3 * truth.kspace.numpy(), atol=1e-5)
    whitened = read_ismrmrd(raw)
    one = whitened.whitening.noise_var  # c² per whitened acquisition
    assert whitened.noise_var == pytest.approx(one / 2, rel=1e-12)  # the mean of two whitened acquisitions
    assert read_ismrmrd(raw, RawOptions(average=0)).noise_var == pytest.approx(one, rel=1e-12)
    with pytest.raises(DataError, match=re.escape(f"{raw}: average: 2 is not among the acquired average indices [0, 1]")):
        read_ismrmrd(raw, RawOptions(average=2))
    uneven = write_ismrmrd(tmp_path / "uneven.h5", Scan(averages=[first], header=oversampled_header(1), calibration_lines=()))
    with h5py.File(uneven, "a") as f:  # append a second average of one line only
        data = f["dataset/data"]
        data.resize(data.shape[0] + 1, axis=0)
        row = data[0]
        row["head"]["idx"]["average"] = 1
        data[-1] = row
    with pytest.raises(DataError, match="^" + re.escape(
        f"{uneven}: imaging lines were acquired 1 to 2 times (averages / repetitions); a mean needs the same count "
        "for every line: select one with average: <index> / repetition: <index>") + "$"):
        read_ismrmrd(uneven)


def test_contrasts_are_selected(tmp_path):
    truth = known_volume("echo2.h5", slices=1)
    raw = write_ismrmrd(tmp_path / "echo2.h5", Scan(averages=[truth.oversampled.numpy()], header=oversampled_header(1)))
    with h5py.File(raw, "a") as f:  # a second echo: every line again, contrast 1, twice the signal
        data = f["dataset/data"]
        count = data.shape[0]
        data.resize(2 * count, axis=0)
        for i in range(count):
            row = data[i]
            row["head"]["idx"]["contrast"] = 1
            row["data"] = row["data"] * 2
            data[count + i] = row
    with pytest.raises(DataError, match="^" + re.escape(f"{raw}: 2 contrasts [0, 1] acquired; choose one with contrast: <index>") + "$"):
        read_ismrmrd(raw)
    np.testing.assert_allclose(read_ismrmrd(raw, RawOptions(contrast=1)).kspace, 2 * truth.kspace.numpy(), atol=1e-5)


def test_calibration_only_lines_feed_the_maps_not_the_data(tmp_path):
    truth = known_volume("cal.h5", slices=1)
    width = SIZE[1]
    lines = list(range(0, width, 2))  # every other line, no centre block
    calibration_lines = [c for c in range(10, 22) if c % 2]  # the missing centre lines, calibration only
    raw = write_ismrmrd(tmp_path / "cal.h5", Scan(averages=[truth.oversampled.numpy()], header=oversampled_header(1),
                                                  lines=lines, calibration_lines=calibration_lines))
    volume = read_ismrmrd(raw)
    np.testing.assert_array_equal(np.flatnonzero(volume.mask), lines)  # calibration lines are not data
    assert not np.any(volume.kspace[..., calibration_lines])
    np.testing.assert_allclose(volume.calibration[..., 10:22], truth.kspace.numpy()[..., 10:22], atol=1e-5)
    target = convert_ismrmrd(raw, tmp_path / "out" / "cal.h5")
    with h5py.File(target, "r") as f:
        np.testing.assert_array_equal(f.attrs["prepared_calibration_region"], [24, 13])  # columns 10..22
        np.testing.assert_allclose(f["sens_maps"][()], expected_maps(volume.calibration, (24, 13)), atol=1e-5)


def test_the_cache_converts_once_per_file_and_setting(tmp_path, monkeypatch):
    truth = known_volume("c.h5", slices=1)
    raw = write_ismrmrd(tmp_path / "raw" / "c.h5", Scan(averages=[truth.oversampled.numpy()], header=oversampled_header(1)))
    options = RawOptions(cache_dir=str(tmp_path / "cache"))
    calls = []
    import lit_sampler.data.raw_prepare as raw_prepare

    real = raw_prepare.convert_ismrmrd
    monkeypatch.setattr(raw_prepare, "convert_ismrmrd", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    for _ in range(2):
        dm = FastMRIDataModule(data_path=str(tmp_path / "raw"), raw=options)
        dm.prepare_data()
        dm.setup("predict")
    assert len(calls) == 1 and dm.volumes[0].fname == "c.h5"  # the source's name identifies items
    assert dm.volumes[0].path == str(cached_path(raw, options, True))
    assert cached_path(raw, RawOptions(cache_dir=options.cache_dir, calib_width=16), True) != cached_path(raw, options, True)
    assert cached_path(raw, options, False) != cached_path(raw, options, True)
    monkeypatch.setenv("LIT_SAMPLER_CACHE", str(tmp_path / "env"))
    assert str(cached_path(raw, RawOptions(), True)).startswith(str(tmp_path / "env" / "ismrmrd" / "c-"))


def test_the_script_writes_the_same_file(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import prepare_ismrmrd

    truth = known_volume("s.h5", slices=1)
    write_ismrmrd(tmp_path / "raw" / "s.h5", Scan(averages=[truth.oversampled.numpy()], header=oversampled_header(1)))
    (tmp_path / "raw" / "other.h5").write_bytes((tmp_path / "raw" / "s.h5").read_bytes())
    write_volume(tmp_path / "raw" / "fastmri.h5", truth.kspace.numpy())  # not ISMRMRD: left alone
    assert prepare_ismrmrd.main([str(tmp_path / "raw"), str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["other.h5", "s.h5"]
    converted = convert_ismrmrd(tmp_path / "raw" / "s.h5", tmp_path / "direct" / "s.h5")
    with h5py.File(tmp_path / "out" / "s.h5", "r") as a, h5py.File(converted, "r") as b:
        np.testing.assert_array_equal(a["kspace"][()], b["kspace"][()])
        np.testing.assert_array_equal(a["sens_maps"][()], b["sens_maps"][()])


# ---------------------------------------------------------------------------------------------- errors
def _bad(tmp_path, name: str, **changes) -> Path:
    truth = known_volume(name, slices=1)
    scan = changes.pop("scan", {})
    return write_ismrmrd(tmp_path / name, Scan(**({"averages": [truth.oversampled.numpy()],
                                                   "header": oversampled_header(1, **changes)} | scan)))


@pytest.mark.parametrize("case, message", [
    ({"trajectory": "radial"}, "encoding trajectory is 'radial'; expected 'cartesian' (non-Cartesian data need "
                               "gridding or a NUFFT forward model, which this package does not have)"),
    ({"encoded": (64, 32, 8)}, "3-D encoding (encodedSpace matrixSize z = 8); expected 2-D acquisitions "
                               "(matrixSize z = 1, slices by the 'slice' counter)"),
    ({"step2_max": 7}, "3-D encoding (encodedSpace matrixSize z = 1, kspace_encoding_step_2 0..7); expected 2-D "
                       "acquisitions (matrixSize z = 1, slices by the 'slice' counter)"),
    ({"step1_limits": False}, "the ISMRMRD header has no encodingLimits/kspace_encoding_step_1; expected its "
                              "minimum, maximum and center (they place the phase-encode lines on the grid)"),
])
def test_bad_headers_give_one_clear_error(tmp_path, case, message):
    path = _bad(tmp_path, "bad.h5", **case)
    with pytest.raises(DataError, match="^" + re.escape(f"{path}: {message}") + "$"):
        read_ismrmrd(path)


def test_a_noise_scan_of_other_coils_is_refused(tmp_path):
    path = _bad(tmp_path, "coils.h5", scan={"noise": correlated_noise(COILS + 2, (256,), seed=5)})
    with pytest.raises(DataError, match="^" + re.escape(
        f"{path}: the noise scan has 6 channels but the imaging data have 4; expected the same coils (a noise scan "
        "of another coil setup cannot whiten these data)") + "$"):
        read_ismrmrd(path)


def test_a_whitened_file_needs_its_noise_covariance(tmp_path):
    """Without ``W⁻¹`` the images of whitened k-space cannot be put back on the unwhitened scale."""
    kspace = known_volume("w.h5", slices=1).kspace.numpy()
    missing = write_volume(tmp_path / "missing.h5", kspace, attrs={"whitened": True})
    with pytest.raises(DataError, match="^" + re.escape(
        f"{missing}: attribute 'whitened' is set but there is no dataset 'noise_covariance'; expected the [4, 4] noise "
        "covariance the k-space was whitened with (it puts images back on the unwhitened scale)") + "$"):
        inspect_volume(missing)
    wrong = write_volume(tmp_path / "wrong.h5", kspace, attrs={"whitened": True}, datasets={"noise_covariance": np.eye(3, dtype=np.complex64)})
    with pytest.raises(DataError, match="^" + re.escape(
        f"{wrong}: dataset 'noise_covariance' has shape [3, 3] but the k-space [1, 4, 32, 32] has 4 coils; expected [4, 4]") + "$"):
        inspect_volume(wrong)
    singular = write_volume(tmp_path / "singular.h5", kspace, attrs={"whitened": True}, datasets={"noise_covariance": np.zeros((4, 4), np.complex64)})
    with pytest.raises(DataError, match="^" + re.escape(
        f"{singular}: dataset 'noise_covariance' / attribute 'whitening_scale': the noise covariance is not positive definite "
        "(a dead, constant or duplicated channel?)") + "$"):
        inspect_volume(singular)
    scale = write_volume(tmp_path / "scale.h5", kspace, attrs={"whitened": True, "whitening_scale": -1.0},
                         datasets={"noise_covariance": np.eye(4, dtype=np.complex64)})
    with pytest.raises(DataError, match="^" + re.escape(
        f"{scale}: dataset 'noise_covariance' / attribute 'whitening_scale': the whitening scale must be a positive number, got -1.0") + "$"):
        inspect_volume(scale)
    plain = write_volume(tmp_path / "plain.h5", kspace, attrs={"whitened": False})
    assert inspect_volume(plain).unwhitening is None


def test_lines_outside_the_grid_and_partial_echoes_are_refused(tmp_path):
    outside = _bad(tmp_path, "outside.h5", scan={"line_offset": 8})  # counters 8 above what the header's center allows
    with pytest.raises(DataError, match="^" + re.escape(
        f"{outside}: imaging acquisition 24: kspace_encode_step_1 32 (center 16) falls on column 32, outside the "
        "encoded matrix y = 32") + "$"):
        FastMRIDataModule(data_path=str(outside), raw=RawOptions(cache_dir=str(tmp_path / "c"))).setup()
    truth = known_volume("echo.h5", slices=1)
    partial = write_ismrmrd(tmp_path / "echo.h5", Scan(averages=[truth.oversampled.numpy()[:, :, 8:]], header=oversampled_header(1)))
    with pytest.raises(DataError, match="^" + re.escape(
        f"{partial}: imaging acquisition 0: 56 readout samples cover rows 4..59 of the encoded x = 64 (partial echo); "
        "expected full readouts (zero-filled samples would count as measured)") + "$"):
        read_ismrmrd(partial)


def test_missing_package_names_the_extra(monkeypatch, tmp_path):
    import builtins

    path = _bad(tmp_path, "pkg.h5")
    real_import = builtins.__import__

    def no_ismrmrd(name, *args, **kwargs):
        if name == "ismrmrd" or name.startswith("ismrmrd."):
            raise ImportError("No module named 'ismrmrd'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ismrmrd)
    with pytest.raises(ImportError, match=re.escape("reading ISMRMRD raw data needs the ismrmrd package (No module named "
                                                    "'ismrmrd'): pip install 'lit_sampler[ismrmrd]'")):
        read_ismrmrd(path)
