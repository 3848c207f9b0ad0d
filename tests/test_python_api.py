"""The Python API (lit_sampler.Sampler): array types in and out, batches, seed keys, maps by
ESPIRiT, calibrated intervals, progress bar, divergence, and one clear error per bad input."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import lit_sampler
from lit_sampler import Sampler, estimate_maps
from lit_sampler.data.phantoms import demo_volume
from lit_sampler.errors import DataError
from lit_sampler.evaluation.calibration import CalibrationError, write_calibration
from lit_sampler.models import NCSNv2
from lit_sampler.physics.masks import RandomLineMask
from lit_sampler.physics.noise import add_measurement_noise
from lit_sampler.seeding import seeded_generator

SIZE = 24


def tiny_network() -> NCSNv2:
    torch.manual_seed(0)
    return NCSNv2(in_channels=2, ngf=4, sigma_begin=2.0, sigma_end=0.05, num_classes=5)


@pytest.fixture(scope="module")
def sampler() -> Sampler:
    return Sampler(tiny_network(), preset=None, device="cpu", step_size=1e-3, steps_each=1, noise_boost=2.0)


@pytest.fixture(scope="module")
def slices():
    """Two noisy 4-coil slices at 20 dB with their maps, a 3× line mask with a 10-line centre, and ν."""
    volume = demo_volume(seeded_generator(0, "api"), 2, SIZE, SIZE, coils=4)
    mask = RandomLineMask([0.4], [3])((SIZE, SIZE), seeded_generator(0, "mask"))[0]  # [W]
    measured = [add_measurement_noise(volume.kspace[s], mask, 20.0, seeded_generator(0, "noise", s)) for s in range(2)]
    return {"kspace": torch.stack([m[0] for m in measured]), "maps": volume.maps, "mask": mask,
            "noise_var": [m[1] for m in measured]}


def test_one_slice_numpy_in_numpy_out(sampler, slices):
    result = sampler.reconstruct(slices["kspace"][0].numpy(), slices["mask"].numpy(), slices["maps"][0].numpy(),
                                 noise_var=slices["noise_var"][0], num_samples=3, progress=False)
    assert isinstance(result.mean, np.ndarray) and result.mean.shape == (SIZE, SIZE) and result.mean.dtype == np.complex64
    assert result.std.shape == (SIZE, SIZE) and result.std.dtype == np.float32 and (result.std >= 0).all()
    assert result.samples.shape == (3, SIZE, SIZE) and result.diverged.shape == (3,) and not result.diverged.any()
    assert result.lower is None and result.upper is None and result.k is None
    assert result.nfe == sampler.network_evaluations == 5 and result.start_level == 0
    np.testing.assert_allclose(result.mean, result.samples.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result.std, np.abs(result.samples).std(axis=0, ddof=1), rtol=1e-5, atol=1e-6)
    # in the caller's units: the chain ran on the slice divided by its scale (99th percentile of |zero-filled|)
    assert result.scale == pytest.approx(float(np.percentile(np.abs(result.zero_filled), 99)), rel=1e-5)
    assert result.keys == ["reconstruct|0|0", "reconstruct|0|1", "reconstruct|0|2"]


def test_batch_in_torch_out_equals_the_slices_one_by_one(sampler, slices):
    batch = sampler.reconstruct(slices["kspace"], slices["mask"], slices["maps"], noise_var=slices["noise_var"],
                                num_samples=2, key=["a|0", "a|1"], progress=False)
    assert isinstance(batch.mean, torch.Tensor) and batch.samples.shape == (2, 2, SIZE, SIZE)
    assert batch.nfe == [5, 5] and len(batch.scale) == 2
    for b in range(2):  # an item's bits depend on its measurement, knobs, seed and key, not on its batch
        one = sampler.reconstruct(slices["kspace"][b], slices["mask"], slices["maps"][b], noise_var=slices["noise_var"][b],
                                  num_samples=2, key=f"a|{b}", progress=False)
        assert torch.equal(one.samples, batch.samples[b]) and torch.equal(one.mean, batch.mean[b])
    # the default key of item b is "reconstruct|b"; another seed, other streams
    default = sampler.reconstruct(slices["kspace"], slices["mask"], slices["maps"], noise_var=slices["noise_var"],
                                  num_samples=2, progress=False)
    second = sampler.reconstruct(slices["kspace"][1], slices["mask"], slices["maps"][1], noise_var=slices["noise_var"][1],
                                 num_samples=2, key="reconstruct|1", progress=False)
    assert torch.equal(default.samples[1], second.samples)
    reseeded = sampler.reconstruct(slices["kspace"][1], slices["mask"], slices["maps"][1], noise_var=slices["noise_var"][1],
                                   num_samples=2, key="reconstruct|1", seed=1, progress=False)
    assert not torch.equal(reseeded.samples, second.samples)


def test_missing_maps_are_estimated_by_espirit_and_single_coil_is_s_equal_1(sampler, slices):
    kspace, mask = slices["kspace"][0], slices["mask"]
    result = sampler.reconstruct(kspace, mask, noise_var=slices["noise_var"][0], num_samples=1, progress=False)
    assert torch.equal(result.sens_maps, estimate_maps(kspace, mask))
    energy = result.sens_maps.abs().square().sum(0)
    torch.testing.assert_close(energy, torch.ones_like(energy))  # unit norm over coils everywhere (crop 0)
    single = sampler.reconstruct(kspace[:1], mask, noise_var=0.0, num_samples=1, progress=False)
    assert torch.equal(single.sens_maps, torch.ones(1, SIZE, SIZE, dtype=torch.complex64))
    assert torch.equal(single.std, torch.zeros(SIZE, SIZE))  # one sample: no spread


def test_calibrated_interval_and_its_settings_check(sampler, slices, tmp_path):
    path = tmp_path / "calibration.json"
    write_calibration(path, {"snr_20dB": {0.9: 1.7}}, {"snr_20dB": 10}, sampler.calibration_settings(2), "test")
    args = (slices["kspace"][0], slices["mask"], slices["maps"][0])
    result = sampler.reconstruct(*args, noise_var=slices["noise_var"][0], snr_db=20, num_samples=2, calibration=path,
                                 progress=False)
    assert (result.k, result.level, result.snr_label) == (1.7, 0.9, "snr_20dB")
    torch.testing.assert_close(result.upper, result.mean.abs() + 1.7 * result.std)
    torch.testing.assert_close(result.lower, (result.mean.abs() - 1.7 * result.std).clamp_min(0))
    with pytest.raises(CalibrationError, match=r"was made for num_samples = 2, this run has 3"):
        sampler.reconstruct(*args, noise_var=slices["noise_var"][0], snr_db=20, num_samples=3, calibration=path, progress=False)
    with pytest.raises(CalibrationError, match=r"has no k for snr_5dB \(it has \['snr_20dB'\]\)"):
        sampler.reconstruct(*args, noise_var=slices["noise_var"][0], snr_db=5, num_samples=2, calibration=path, progress=False)
    with pytest.raises(CalibrationError, match=r"^snr_db: the calibration .* keys k by SNR label \(it has \['snr_20dB'\]\)"):
        sampler.reconstruct(*args, noise_var=slices["noise_var"][0], num_samples=2, calibration=path, progress=False)


def test_progress_bar_can_be_switched_off(sampler, slices, capsys):
    args = (slices["kspace"][0], slices["mask"], slices["maps"][0])
    sampler.reconstruct(*args, noise_var=slices["noise_var"][0], num_samples=1, progress=False)
    assert capsys.readouterr().err == ""
    sampler.reconstruct(*args, noise_var=slices["noise_var"][0], num_samples=1, progress=True)
    assert "chains" in capsys.readouterr().err


class NaNScore(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("sigmas", torch.tensor([1.0, 0.1]))

    def forward(self, x, labels):
        return torch.full_like(x, float("nan"))


def test_a_diverged_chain_is_flagged_and_left_out(slices):
    sampler = Sampler(NaNScore(), preset=None, device="cpu", step_size=1e-3)
    diverged = r"^2 of 2 chains diverged \(reconstruct\|0\|0, reconstruct\|0\|1\); they are left out"
    with pytest.warns(RuntimeWarning, match=diverged):
        result = sampler.reconstruct(slices["kspace"][0], slices["mask"], slices["maps"][0], noise_var=1.0, num_samples=2,
                                     progress=False)
    assert result.diverged.tolist() == [True, True]
    assert torch.isnan(result.mean).all() and torch.isnan(result.std).all()


def test_exports_and_sampler_options_are_the_modules():
    assert {"Sampler", "ReconstructionResult", "ScoreDenoiser", "estimate_maps", "measure_slice"} <= set(dir(lit_sampler))
    with pytest.raises(ValueError, match=r"^unknown preset 'turbo'; expected one of 'reference', 'balanced', 'fast', 'quick'$"):
        Sampler(tiny_network(), preset="turbo")
    with pytest.raises(ValueError, match=r"^precision must be one of \['32-true', 'bf16-mixed', '16-mixed'\], got 'half'$"):
        Sampler(tiny_network(), precision="half")
    with pytest.raises(ValueError, match=r"^sigma_offset: auto picks a warm-start level; it needs init 'zero_filled'"):
        Sampler(tiny_network(), preset=None, sigma_offset="auto")
    line = Sampler(tiny_network(), preset="balanced", device="cpu").describe()
    assert line.startswith("sampler: Langevin, ") and "(preset balanced)" in line


KSPACE = torch.zeros(4, SIZE, SIZE, dtype=torch.complex64) + 1
MASK = torch.ones(SIZE)


@pytest.mark.parametrize("call, message", [
    (lambda s: s.reconstruct(KSPACE.real, MASK, noise_var=0),
     r"kspace: expected complex k-space \[coils, H, W\] or \[B, coils, H, W\], found torch.float32 \[4, 24, 24\]"),
    (lambda s: s.reconstruct(KSPACE[0], MASK, noise_var=0),
     r"kspace: expected \[coils, H, W\] or \[B, coils, H, W\], found \[24, 24\]; for single-coil data add a coil axis"),
    (lambda s: s.reconstruct([[1j]], MASK, noise_var=0), r"kspace: expected a numpy array or a torch tensor, found list"),
    (lambda s: s.reconstruct(KSPACE, torch.ones(SIZE + 1), noise_var=0),
     r"mask: expected \[24\], \[1, 24\] or \[24, 24\] for k-space \[\.\., 24, 24\], found \[25\]"),
    (lambda s: s.reconstruct(KSPACE[None].expand(2, -1, -1, -1), torch.ones(3, SIZE), noise_var=0),
     r"mask: expected .* \(one for all\), or \[2, 24\], \[2, 1, 24\] or \[2, 24, 24\] \(one per item\) .* found \[3, 24\]"),
    (lambda s: s.reconstruct(KSPACE, MASK * 2, noise_var=0), r"mask: expected 0/1 or bool values, found values from 2 to 2"),
    (lambda s: s.reconstruct(KSPACE, MASK * 0, noise_var=0), r"mask: samples no k-space point; expected"),
    (lambda s: s.reconstruct(KSPACE, MASK, KSPACE[:3], noise_var=0),
     r"sens_maps: expected \[4, 24, 24\] \(the k-space's coils, H, W\), found \[3, 24, 24\]"),
    (lambda s: s.reconstruct(KSPACE, MASK, KSPACE.real, noise_var=0), r"sens_maps: expected complex maps \[4, 24, 24\]"),
    (lambda s: s.reconstruct(KSPACE, MASK, KSPACE), r"noise_var: required: give ν, the complex noise variance"),
    (lambda s: s.reconstruct(KSPACE, MASK, KSPACE, snr_db=20),
     r"noise_var: required: snr_db=20 is only the calibration's label and does not say ν; give ν"),
    (lambda s: s.reconstruct(KSPACE, MASK, KSPACE, noise_var=-1.0), r"noise_var: expected the complex noise variance ν >= 0"),
    (lambda s: s.reconstruct(KSPACE, MASK, KSPACE, noise_var=0.0, snr_db=20),
     r"noise_var: 0 \(noiseless\) but snr_db=20 says noise was added"),
    (lambda s: s.reconstruct(KSPACE[None].expand(2, -1, -1, -1), MASK, KSPACE, noise_var=[1.0]),
     r"noise_var: expected one number or 2 values \(one per item\), found 1"),
    (lambda s: s.reconstruct(KSPACE, MASK, KSPACE, noise_var=0, key="a.h5|3|snr_20dB|0"),
     r"key: 'a.h5\|3\|snr_20dB\|0' names a sample .* give the slice's key 'a.h5\|3\|snr_20dB'"),
    (lambda s: s.reconstruct(KSPACE[None].expand(2, -1, -1, -1), MASK, KSPACE, noise_var=0, key="a"),
     r"key: one key 'a' for a batch of 2 would give every item the same random streams"),
    (lambda s: s.reconstruct(KSPACE, MASK, KSPACE, noise_var=0, num_samples=0),
     r"num_samples: expected a positive integer, found 0"),
    (lambda s: s.reconstruct(KSPACE, MASK, KSPACE, noise_var=0, seed="7"), r"seed: expected an integer, found '7'"),
    (lambda s: s.reconstruct(KSPACE, torch.eye(SIZE)[0] + torch.eye(SIZE)[SIZE // 2], noise_var=0),
     r"sens_maps: none given, and the mask of kspace samples a fully sampled centre of only 24×1 points; ESPIRiT"),
])
def test_each_bad_input_is_one_clear_error(sampler, call, message):
    with pytest.raises(DataError) as error:
        call(sampler)
    text = str(error.value)
    assert "\n" not in text and re.search(message, text), text


def test_array_baselines_are_the_pipelines_on_the_normalised_slice(slices):
    from lit_sampler.api import l1_wavelet_recon, total_variation_recon, zero_filled_recon
    from lit_sampler.sampling.baselines import compressed_sensing
    from lit_sampler.api.inputs import check_inputs, complete_maps, normalise

    kspace, mask, maps = slices["kspace"][0].numpy(), slices["mask"].numpy(), slices["maps"][0].numpy()
    data = normalise(check_inputs(kspace, mask, maps), torch.from_numpy(maps)[None], [0.0])
    for recon, method, lamda in ((l1_wavelet_recon, "l1_wavelet", 1e-2), (total_variation_recon, "total_variation", 3e-2)):
        image = recon(kspace, mask, maps, lamda=lamda, iterations=20)
        expected = compressed_sensing(method, data.kspace[0], data.sens_maps[0], data.mask[0], lamda, 20) * data.scale[0]
        assert isinstance(image, np.ndarray) and np.array_equal(image, expected.numpy())
    zero_filled = zero_filled_recon(torch.from_numpy(kspace)[None], mask, maps)  # a batch of one stays a batch
    assert zero_filled.shape == (1, SIZE, SIZE)
    assert complete_maps(check_inputs(kspace, mask, maps)).shape == (1, 4, SIZE, SIZE)
    assert math.isclose(float(data.scale[0]), float(np.percentile(np.abs(zero_filled[0].numpy()), 99)), rel_tol=1e-5)


def test_the_python_api_imports_no_lightning():
    """A notebook's `import lit_sampler` and the Python API stay light: no Lightning, no h5py on import."""
    import subprocess
    import sys

    probe = ("import sys\nimport lit_sampler.api, lit_sampler.api.engine, lit_sampler.api.inputs, lit_sampler.api.baseline_recon\n"
             "import lit_sampler.models.denoiser\n"
             "print(sorted(k for k in ('h5py', 'pytorch_lightning', 'lightning') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
