"""Geometry: centre crops (odd and even), padding removal, csgm vs image crop, MVUE / RSS."""

from __future__ import annotations

import re

import pytest
import torch

from lit_sampler.data import DataError
from lit_sampler.data.geometry import (
    Geometry,
    center_crop,
    center_slice,
    csgm_resize_kspace,
    csgm_resize_maps,
    drop_padding_columns,
    edge_zero_columns,
    padding_free_width,
)
from lit_sampler.data.phantoms import coil_maps, random_volume, simulate_kspace
from lit_sampler.physics.coils import mvue, rss
from lit_sampler.physics.fft import fft2c, ifft2c
from lit_sampler.seeding import seeded_generator


def phantom(height, width, coils=4, seed=0):
    g = seeded_generator(seed, "geometry")
    x = random_volume(g).slice_image(height, width, 0.0)
    maps = coil_maps(height, width, coils, g)
    return x, maps, simulate_kspace(x, maps)


@pytest.mark.parametrize("n,m", [(8, 4), (9, 4), (8, 5), (9, 5), (7, 7)])
def test_center_crop_keeps_the_centre(n, m):
    x = torch.arange(n * n).reshape(n, n)
    out = center_crop(x, (m, m))
    assert out.shape == (m, m)
    assert out[m // 2, m // 2] == x[n // 2, n // 2]


@pytest.mark.parametrize("width,left,right", [(20, 3, 3), (20, 3, 2), (21, 2, 4), (21, 0, 0), (16, 0, 5)])
def test_padding_free_width_is_centred_and_avoids_padding(width, left, right):
    m = padding_free_width(width, left, right)
    start = width // 2 - m // 2
    assert start >= left and start + m <= width - right
    # the widest such window: one more column would touch the padding or lose the centre
    for bigger in (m + 1, m + 2):
        s = width // 2 - bigger // 2
        assert s < left or s + bigger > width - right


def test_drop_padding_columns_restores_unpadded_kspace():
    x, maps, k = phantom(16, 14)
    padded = torch.nn.functional.pad(k, (3, 3))
    assert edge_zero_columns(padded) == (3, 3)
    torch.testing.assert_close(drop_padding_columns(padded), k)


def test_csgm_crop_equals_crop_of_unpadded_data():
    """Padding removal then crop == crop of the unpadded k-space (the padding never survives)."""
    x, maps, k = phantom(24, 20)
    padded = torch.nn.functional.pad(k, (4, 4))
    geometry = Geometry((16, 16), "csgm")
    out_padded, _, _ = geometry.apply(padded, None, None, "p")
    out_plain, _, _ = geometry.apply(k, None, None, "p")
    torch.testing.assert_close(out_padded, out_plain)


def test_csgm_crop_refuses_to_keep_padding():
    _, _, k = phantom(24, 20)
    padded = torch.nn.functional.pad(k, (4, 4))
    with pytest.raises(
        DataError,
        match=re.escape(
            "f.h5: slice 0: image_size [16, 22] is larger than the data: dataset 'kspace' has 20 "
            "phase-encode columns after dropping 4 + 4 all-zero padding columns (of W = 28)"
        ),
    ):
        Geometry((16, 22), "csgm").apply(padded, None, None, "f.h5: slice 0")


@pytest.mark.parametrize("size,target", [((32, 32), (24, 20)), ((31, 27), (20, 15)), ((30, 25), (17, 24))])
def test_csgm_resize_is_pe_kspace_crop_and_readout_image_crop(size, target):
    x, maps, k = phantom(*size)
    out = csgm_resize_kspace(k, target)
    assert out.shape == (4, *target)
    # readout crop in image domain, PE crop in k-space, done by hand in the other order
    hybrid = torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(k, dim=-2), dim=-2, norm="ortho"), dim=-2)
    hybrid = center_crop(hybrid, (target[0], None))
    expected = torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(hybrid, dim=-2), dim=-2, norm="ortho"), dim=-2)
    expected = center_crop(expected, (None, target[1]))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def oversampled_phantom(height, width, coils=4, seed=0):
    """An object in the central half of a 2× oversampled readout FOV (as in fastMRI raw data)."""
    g = seeded_generator(seed, "geometry")
    x = random_volume(g).slice_image(height, width, 0.0)
    # Smooth the edges (Gaussian k-space window) so the PE crop below removes little energy.
    ky = torch.arange(height) - height // 2
    kx = torch.arange(width) - width // 2
    window = torch.exp(-(ky[:, None] ** 2 / (height / 5) ** 2 + kx[None, :] ** 2 / (width / 5) ** 2) / 2)
    x = ifft2c(fft2c(x) * window)
    x = torch.nn.functional.pad(x, (0, 0, height // 2, height - height // 2))
    maps = coil_maps(2 * height, width, coils, g)
    # Band-limit the maps (keep 7 × 7 central k-space lines): smooth *and periodic* over the FOV.
    # Real maps are not periodic; their PE k-space crop (csgm) then rings near the FOV edges —
    # a property of the method, not what this test is about.
    band = torch.zeros(2 * height, width)
    band[center_slice(2 * height, 7), center_slice(width, 7)] = 1
    maps = ifft2c(fft2c(maps) * band)
    return x, maps, simulate_kspace(x, maps)


@pytest.mark.parametrize("crop", ["csgm", "image"])
@pytest.mark.parametrize("size,target", [((16, 32), (16, 28)), ((17, 31), (17, 28))])
def test_cropped_maps_stay_consistent_with_cropped_kspace(crop, size, target):
    """After the geometry, k-space ≈ F(S' · x') with x' the MVUE of the cropped data: the forward
    model still explains the data — exactly for 'image' (pointwise products commute with image
    crops), and for 'csgm' up to the error of cropping the PE spectrum of a product S·x."""
    x, maps, k = oversampled_phantom(*size)
    k2, maps2, _ = Geometry(target, crop).apply(k, maps, None, "f")
    assert k2.shape == maps2.shape == (4, *target)
    # pointwise least-squares image (MVUE / sqrt(Σ|S|²)); cropped maps need not keep Σ|S|² = 1
    x2 = (maps2.conj() * ifft2c(k2)).sum(0) / maps2.abs().square().sum(0)
    residual = (fft2c(maps2 * x2) - k2).norm() / k2.norm()
    assert residual < (1e-4 if crop == "image" else 0.01)
    if crop == "image":
        torch.testing.assert_close(x2, center_crop(x, target), rtol=1e-4, atol=1e-4)


def test_csgm_maps_follow_jalal_route():
    _, maps, _ = phantom(20, 18)
    out = csgm_resize_maps(maps, (12, 10))
    expected = ifft2c(csgm_resize_kspace(fft2c(maps), (12, 10)))
    torch.testing.assert_close(out, expected)


def test_geometry_is_a_no_op_at_data_size_or_none():
    _, maps, k = phantom(16, 15)
    for geometry in (Geometry(None), Geometry((16, 15), "csgm"), Geometry((16, 15), "image")):
        out, m, _ = geometry.apply(k, maps, None, "f")
        assert out is k and m is maps


def test_mvue_and_rss_of_consistent_data():
    x, maps, k = phantom(20, 21)
    torch.testing.assert_close(mvue(k, maps), x, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(rss(k), x.abs(), rtol=1e-4, atol=1e-5)
    # single-coil: S = 1
    k1 = fft2c(x)[None]
    torch.testing.assert_close(mvue(k1, None), x, rtol=1e-4, atol=1e-5)


def test_mvue_guards_zero_maps():
    x, maps, k = phantom(16, 16)
    maps = maps.clone()
    maps[:, :3, :] = 0  # outside the support of cropped ESPIRiT maps
    out = mvue(k, maps)
    assert torch.isfinite(out.abs()).all()
    assert (out[:3] == 0).all()


def test_mvue_scales_with_unnormalised_maps():
    """The sqrt(Σ|S|²) denominator makes MVUE invariant to a per-pixel positive scaling of S."""
    x, maps, k = phantom(16, 16)
    weight = torch.linspace(0.5, 2.0, 16)[None, :, None]
    scaled = maps * weight
    kk = fft2c(scaled * x)
    expected = x * (scaled.abs().square().sum(0)).sqrt()
    torch.testing.assert_close(mvue(kk, scaled), expected, rtol=1e-4, atol=1e-5)


def test_file_mask_needs_kspace_crop():
    _, maps, k = phantom(16, 16)
    line_mask = torch.ones(1, 16)
    with pytest.raises(DataError, match=re.escape("f: dataset 'mask' is stored with the data, so the phase-encode axis")):
        Geometry((16, 12), "image").apply(k, maps, line_mask, "f")
    two_d = torch.ones(16, 16)
    with pytest.raises(DataError, match=re.escape("f: dataset 'mask' is a 2-D [H, W] pattern, which a readout crop")):
        Geometry((12, 16), "csgm").apply(k, maps, two_d, "f")
    k2, _, m2 = Geometry((12, 10), "csgm").apply(k, maps, line_mask, "f")
    assert m2.shape == (1, 10) and k2.shape == (4, 12, 10)
