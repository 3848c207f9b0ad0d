"""Measurement transform: masks per volume, seeded SNR noise, per-slice scale, targets."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from lit_sampler.data.phantoms import coil_maps
from lit_sampler.datamodules import FastMRIDataModule
from lit_sampler.physics.coils import combine, mix_coils, mvue, rss, unwhitened_unit_maps
from lit_sampler.physics.fft import fft2c, ifft2c
from lit_sampler.physics.masks import EquispacedLineMask, RandomLineMask, VariableDensityMask


def items_by_key(dm, keys=None):
    dm.setup()
    keys = dm.items if keys is None else keys
    return dict(zip(keys, dm.measurements(keys)))


def stored(path, slice_num, key="kspace"):
    with h5py.File(path, "r") as f:
        return torch.from_numpy(np.array(f[key][slice_num]))


def test_item_fields_and_normalisation(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=2, coils=3, size=(24, 21))
    dm = FastMRIDataModule(str(path), snr_range=[None, 10.0])
    items = items_by_key(dm)
    assert sorted(items) == sorted(f"a.h5|{s}|{l}|0" for s in (0, 1) for l in ("snr_inf", "snr_10dB"))
    it = items["a.h5|1|snr_10dB|0"]
    assert it.kspace.shape == it.sens_maps.shape == (3, 24, 21) and it.kspace.dtype == torch.complex64
    assert it.mask.shape == (1, 24, 21) and it.mask.dtype == torch.float32
    assert it.target.shape == it.zero_filled.shape == (24, 21) and it.target.dtype == torch.complex64
    assert it.has_target
    assert it.snr_db == 10.0 and it.noise_var > 0
    k, s = stored(path, 1), stored(path, 1, "sens_maps")
    scale = it.scale
    # target: MVUE of the fully sampled slice, divided by the scale
    torch.testing.assert_close(it.target * scale, mvue(k, s), rtol=1e-4, atol=1e-5)
    # zero-filled: the same formula on the measured (masked, noisy) k-space
    torch.testing.assert_close(it.zero_filled * scale, mvue(it.kspace * scale, s), rtol=1e-4, atol=1e-5)
    # scale: 99th percentile of the zero-filled magnitude, so the normalised one has percentile 1
    assert torch.quantile(it.zero_filled.abs().flatten().double(), 0.99).item() == pytest.approx(1.0, rel=1e-5)
    # nothing outside the mask
    assert (it.kspace * (1 - it.mask) == 0).all()


def test_snr_and_noise_variance(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=1, coils=4, size=(48, 48))
    dm = FastMRIDataModule(str(path), snr_range=[None, 5.0])
    items = items_by_key(dm)
    clean, noisy = items["a.h5|0|snr_inf|0"], items["a.h5|0|snr_5dB|0"]
    assert clean.noise_var == 0 and math.isinf(clean.snr_db)
    torch.testing.assert_close(clean.mask, noisy.mask)
    sampled = torch.broadcast_to(noisy.mask.bool(), noisy.kspace.shape)
    k_clean = stored(path, 0)[sampled]
    signal = k_clean.abs().square().mean().item()
    nu_physical = noisy.noise_var * noisy.scale ** 2
    assert nu_physical == pytest.approx(signal * 10 ** (-0.5), rel=1e-4)  # ν = mean|y|² · 10^(−SNR/10)
    residual = noisy.kspace[sampled] * noisy.scale - k_clean
    assert residual.abs().square().mean().item() == pytest.approx(nu_physical, rel=0.1)
    assert residual.real.var().item() == pytest.approx(nu_physical / 2, rel=0.15)  # ν/2 per real part


def test_masks_are_per_volume_and_noise_per_slice_and_snr(phantom_file, tmp_path):
    folder = tmp_path / "d"
    phantom_file(folder / "a.h5", slices=3, coils=2, size=(16, 40))
    phantom_file(folder / "b.h5", slices=2, coils=2, size=(16, 40))
    dm = FastMRIDataModule(str(folder), snr_range=[20.0, 10.0], num_samples=2, mask=RandomLineMask([0.1], [3]))
    items = items_by_key(dm)
    mask_a = items["a.h5|0|snr_20dB|0"].mask
    for s in range(3):
        torch.testing.assert_close(items[f"a.h5|{s}|snr_10dB|1"].mask, mask_a)
    assert not torch.equal(items["b.h5|0|snr_20dB|0"].mask, mask_a)
    # samples share the measurement; different SNRs or slices get different noise
    torch.testing.assert_close(items["a.h5|1|snr_20dB|0"].kspace, items["a.h5|1|snr_20dB|1"].kspace)
    assert not torch.equal(items["a.h5|1|snr_20dB|0"].kspace, items["a.h5|1|snr_10dB|0"].kspace)
    # reproducible across instances; a different seed changes masks and noise
    again = items_by_key(FastMRIDataModule(str(folder), snr_range=[20.0, 10.0], num_samples=2, mask=RandomLineMask([0.1], [3])))
    for key, it in items.items():
        torch.testing.assert_close(again[key].kspace, it.kspace)


def test_seed_changes_masks_and_noise(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=1, coils=2, size=(16, 40))
    items = [
        items_by_key(FastMRIDataModule(str(path), snr_range=[20.0], seed=seed))["a.h5|0|snr_20dB|0"]
        for seed in (0, 1)
    ]
    assert not torch.equal(items[0].mask, items[1].mask)
    assert not torch.equal(items[0].kspace, items[1].kspace)


@pytest.mark.parametrize(
    "mask", [EquispacedLineMask([0.125], [2]), VariableDensityMask([3], calib_size=4)], ids=["equispaced", "2d"]
)
def test_other_masks(phantom_file, tmp_path, mask):
    path = phantom_file(tmp_path / "a.h5", slices=1, coils=2, size=(20, 24))
    it = items_by_key(FastMRIDataModule(str(path), mask=mask))["a.h5|0|snr_inf|0"]
    assert it.mask.shape == (1, 20, 24)
    assert 0 < it.mask.mean() < 1


@pytest.mark.parametrize("size", [(16, 16), (15, 13)])
def test_single_coil_targets(phantom_file, tmp_path, size):
    path = phantom_file(tmp_path / "s.h5", slices=2, size=size, single_coil=True)
    k = stored(path, 1)[None]
    rss_item = items_by_key(FastMRIDataModule(str(path), target="rss"))["s.h5|1|snr_inf|0"]
    assert rss_item.kspace.shape == (1, *size)
    torch.testing.assert_close(rss_item.sens_maps, torch.ones(1, *size, dtype=torch.complex64))
    assert (rss_item.target.imag == 0).all()
    torch.testing.assert_close(rss_item.target.real * rss_item.scale, rss(k), rtol=1e-4, atol=1e-5)
    mvue_item = items_by_key(FastMRIDataModule(str(path), target="mvue"))["s.h5|1|snr_inf|0"]
    torch.testing.assert_close(mvue_item.target * mvue_item.scale, ifft2c(k)[0], rtol=1e-4, atol=1e-5)
    # single-coil: |MVUE| = RSS, so the scale does not depend on the target convention
    assert mvue_item.scale == pytest.approx(rss_item.scale)
    # and "auto" is the complex image (S = 1), keeping the phase for warm starts
    auto_item = items_by_key(FastMRIDataModule(str(path)))["s.h5|1|snr_inf|0"]
    torch.testing.assert_close(auto_item.target, mvue_item.target)
    torch.testing.assert_close(auto_item.zero_filled, mvue_item.zero_filled)
    none_item = items_by_key(FastMRIDataModule(str(path), target="none"))["s.h5|1|snr_inf|0"]
    assert not none_item.has_target and (none_item.target == 0).all()


def test_file_mask_full_and_undersampled_kspace(phantom_file, tmp_path):
    width = 20
    line_mask = np.zeros(width, np.float32)
    line_mask[[0, 3, 8, 9, 10, 11, 15]] = 1
    full = phantom_file(tmp_path / "full.h5", slices=1, coils=2, size=(16, width), mask=line_mask)
    it = items_by_key(FastMRIDataModule(str(full)))["full.h5|0|snr_inf|0"]
    torch.testing.assert_close(it.mask[0, 0], torch.from_numpy(line_mask))
    assert it.has_target  # full k-space + a mask (Stanford-knee style): ground truth exists
    # fastMRI test-split style: the stored k-space is already undersampled -> no ground truth
    under = phantom_file(tmp_path / "under.h5", slices=1, coils=2, size=(16, width), mask=line_mask)
    with h5py.File(under, "a") as f:
        f["kspace"][0] = f["kspace"][0] * line_mask
    it = items_by_key(FastMRIDataModule(str(under)))["under.h5|0|snr_inf|0"]
    assert not it.has_target and (it.target == 0).all()
    torch.testing.assert_close(it.kspace * it.scale, stored(under, 0), rtol=1e-5, atol=1e-6)
    # ignoring the stored mask uses the configured one
    it = items_by_key(FastMRIDataModule(str(full), use_file_mask=False, mask=RandomLineMask([0.2], [2])))
    assert not torch.equal(it["full.h5|0|snr_inf|0"].mask[0, 0], torch.from_numpy(line_mask))
    # a csgm crop keeps the stored mask's central lines
    it = items_by_key(FastMRIDataModule(str(full), image_size=(12, 12)))["full.h5|0|snr_inf|0"]
    torch.testing.assert_close(it.mask[0, 0], torch.from_numpy(line_mask[4:16]))


def test_cropped_items(phantom_file, tmp_path):
    path = phantom_file(tmp_path / "a.h5", slices=1, coils=2, size=(33, 31))
    for crop in ("csgm", "image"):
        it = items_by_key(FastMRIDataModule(str(path), image_size=(20, 17), crop=crop))["a.h5|0|snr_inf|0"]
        assert it.kspace.shape == it.sens_maps.shape == (2, 20, 17)
        assert it.target.shape == (20, 17) and torch.isfinite(it.target.abs()).all()


def _whitened_phantom(coils: int = 5, shape=(12, 10)):
    """Unwhitened unit-norm maps Ŝ, object x, coil k-space F(Ŝ x), and a whitening W with its inverse."""
    g = torch.Generator().manual_seed(3)
    maps = coil_maps(*shape, coils, g).to(torch.complex128)
    image = torch.randn(*shape, dtype=torch.complex128, generator=g)
    mixing = torch.randn(coils, coils, dtype=torch.complex128, generator=g) * 0.3 + torch.diag(torch.linspace(1, 2, coils)).to(torch.complex128)
    whiten = torch.linalg.inv(torch.linalg.cholesky(mixing @ mixing.conj().T)) * 0.7  # W = c L⁻¹
    return maps, image, fft2c(maps * image), whiten, torch.linalg.inv(whiten)


def test_whitened_coils_combine_to_the_unwhitened_image():
    """Pruessmann et al.: whiten data and maps together, the object is unchanged. ``W Ŝ`` scaled to
    ``‖W⁻¹ S‖ = 1`` is the whitened maps' convention; combining through ``W⁻¹`` gives the
    unwhitened MVUE / RSS, whatever the whitened maps' per-pixel scale was."""
    maps, image, kspace, whiten, unwhiten = _whitened_phantom()
    white_k, white_maps = mix_coils(kspace, whiten), mix_coils(maps, whiten)
    # unit norm over the whitened coils (ESPIRiT's, BART's) → the unwhitened coils' unit norm
    unit_white = white_maps / white_maps.abs().square().sum(0, keepdim=True).sqrt()
    scaled = unwhitened_unit_maps(unit_white, unwhiten)
    torch.testing.assert_close(scaled, white_maps)
    torch.testing.assert_close(unwhitened_unit_maps(scaled, unwhiten), scaled)  # idempotent
    # the image of the whitened forward model is the object, and both combinations recover it
    torch.testing.assert_close(fft2c(scaled * image), white_k)
    torch.testing.assert_close(combine(white_k, scaled, "mvue", unwhiten), mvue(kspace, maps))
    torch.testing.assert_close(combine(white_k, scaled, "mvue", unwhiten), image)
    torch.testing.assert_close(combine(white_k, None, "rss", unwhiten).real, rss(kspace))
    # without the unwhitening, the whitened coils shade the image by ‖W Ŝ‖ (the bug of issue 25)
    gain = white_maps.abs().square().sum(0).sqrt()
    torch.testing.assert_close(rss(white_k), image.abs() * gain)
    assert float(gain.max() / gain.min()) > 1.2


def test_unwhitened_unit_maps_keep_cropped_pixels_and_check_the_matrix():
    maps, _, _, whiten, unwhiten = _whitened_phantom()
    maps = mix_coils(maps, whiten)
    maps[:, :3] = 0  # cropped by ESPIRiT
    out = unwhitened_unit_maps(maps, unwhiten)
    assert torch.equal(out[:, :3], torch.zeros_like(out[:, :3]))
    torch.testing.assert_close(mix_coils(out[:, 3:], unwhiten).abs().square().sum(0), torch.ones(maps.shape[1] - 3, maps.shape[2], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^coil transform has shape \[4, 4\] but data \[5, 12, 10\] need \[5, 5\] "
                                         r"\(a matrix over the coil axis, dimension -3\)$"):
        mix_coils(maps, unwhiten[:4, :4])
