"""Error bars: the uncertainty numbers on hand-made maps, conformal risk control's k (exact
finite-sample rule and its guarantee), calibration files."""

import json
import math
import re

import numpy as np
import pytest
import torch

from lit_sampler.evaluation.calibration import (
    Calibration, CalibrationError, minimum_slices, risk_control_scale, write_calibration,
)
from lit_sampler.evaluation.uncertainty import (
    ause, coverage, error_ratios, ideal_mean_gain, magnitude_std, normal_multiplier, slice_uncertainty,
    sparsification_curve, spearman,
)


def test_magnitude_std_is_the_bessel_corrected_std_of_magnitudes():
    generator = torch.Generator().manual_seed(0)
    samples = torch.randn(5, 3, 4, dtype=torch.complex128, generator=generator)
    expected = np.abs(samples.numpy()).std(axis=0, ddof=1)
    assert np.allclose(magnitude_std(samples).numpy(), expected)
    assert torch.equal(magnitude_std(samples[:1]), torch.zeros(3, 4, dtype=torch.float64))


def test_coverage_counts_object_pixels_inside_the_interval():
    target = torch.zeros(2, 5)
    mean = torch.tensor([[0.0, 0.5, 1.0, 1.5, 2.0], [3.0, 0.1, 0.2, 0.3, 0.4]])
    std = torch.ones(2, 5)
    support = torch.ones(2, 5, dtype=torch.bool)
    support[1, 0] = False  # the 3.0 outside the object does not count
    assert coverage(target, mean, std, 1.0, support) == pytest.approx(7 / 9)
    assert coverage(target, mean, std, 2.0, support) == pytest.approx(1.0)
    assert normal_multiplier(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert ideal_mean_gain(8) == pytest.approx(10 * math.log10(16 / 9))


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    a = torch.tensor([1.0, 2.0, 2.0, 3.0, 5.0, 4.0, 4.0, 0.5])
    b = torch.tensor([2.0, 1.0, 4.0, 4.0, 6.0, 3.0, 5.0, 0.0])
    assert spearman(a, b) == pytest.approx(spearmanr(a.numpy(), b.numpy()).statistic)
    assert math.isnan(spearman(torch.ones(4), torch.arange(4.0)))


def test_sparsification_by_the_error_itself_is_the_oracle_and_random_is_flat():
    error = torch.tensor([4.0, 3.0, 2.0, 1.0])
    oracle = sparsification_curve(error, error, steps=4)
    # removing the largest first: RMS of [4,3,2,1], [3,2,1], [2,1], [1] over RMS of all
    rms = math.sqrt((16 + 9 + 4 + 1) / 4)
    expected = [1.0, math.sqrt(14 / 3) / rms, math.sqrt(5 / 2) / rms, 1 / rms]
    assert oracle.tolist() == pytest.approx(expected)
    assert ause(error, error, steps=4)[0] == pytest.approx(0.0)
    reverse = sparsification_curve(error, -error, steps=4)  # the smallest removed first: the worst order
    gap, random_gap = ause(error, -error, steps=4)
    assert gap == pytest.approx(float((reverse - oracle).mean()))
    assert random_gap == pytest.approx(float((1 - oracle).mean()))
    assert gap > random_gap > 0


def test_slice_numbers_of_exact_gaussian_samples():
    """Truth and N samples from one Gaussian per pixel: the raw 95 % interval covers about
    95 % less the t-penalty, and the mean of N gains the ideal amount."""
    generator = torch.Generator().manual_seed(0)
    centre, spread, n = 5.0, 0.3, 8
    truth = centre + spread * torch.randn(96, 96, generator=generator, dtype=torch.float64)
    samples = (centre + spread * torch.randn(n, 96, 96, generator=generator, dtype=torch.float64)).to(torch.complex128)
    numbers = slice_uncertainty(truth, samples)
    # |mean − truth| / s with s the sample std: a t-variable scaled by sqrt(1 + 1/N)
    from scipy.stats import t

    expected = 2 * t.cdf(normal_multiplier(0.95) / math.sqrt(1 + 1 / n), df=n - 1) - 1
    assert numbers["coverage_95"] == pytest.approx(expected, abs=0.01)
    assert numbers["mean_gain_db"] == pytest.approx(ideal_mean_gain(n), abs=0.1)
    assert numbers["error_std_ratio"] == pytest.approx(t.ppf(0.75, df=n - 1) * math.sqrt(1 + 1 / n), abs=0.03)
    assert abs(numbers["spearman"]) < 0.05  # the spread says nothing about where errors are: constant truth spread


def test_error_ratios_are_zero_for_exact_pixels_and_inf_without_spread():
    target = torch.tensor([1.0, 1.0, 1.0])
    mean = torch.tensor([1.0, 2.0, 3.0])
    std = torch.tensor([0.0, 0.5, 0.0])
    assert error_ratios(target, mean, std, torch.ones(3, dtype=torch.bool)).tolist() == [0.0, 2.0, math.inf]


def test_risk_control_is_the_split_conformal_quantile_for_one_pixel_slices():
    # one pixel per slice: L_i(k) = 1[k < r_i], so the rule keeps at most α(n+1) − 1 scores above
    # k̂, i.e. k̂ = the ⌈(n + 1)(1 − α)⌉-th smallest score (exact, not up to rounding)
    scores = torch.arange(1, 20, dtype=torch.float64)[torch.randperm(19, generator=torch.Generator().manual_seed(0))]
    ratios = [s.reshape(1) for s in scores]
    assert risk_control_scale(ratios, 0.9) == 18.0  # ⌈20 · 0.9⌉ = 18
    assert risk_control_scale(ratios, 0.5) == 10.0  # ⌈20 · 0.5⌉ = 10
    assert risk_control_scale(ratios[:9], 0.9) == float(scores[:9].max())  # n = 9: the largest (⌈10 · 0.9⌉ = 9)


def test_too_few_slices_for_the_level_is_one_error():
    assert minimum_slices(0.9) == 9 and minimum_slices(0.99) == 99 and minimum_slices(0.5) == 1
    ratios = [torch.ones(3)] * 8
    with pytest.raises(CalibrationError, match=re.escape(
        "coverage 0.9 needs at least 9 calibration slices (conformal risk control: n >= 1/alpha - 1), got 8"
    )):
        risk_control_scale(ratios, 0.9)


def test_risk_control_guarantees_expected_coverage_on_synthetic_slices():
    """Slices whose ratios are |N(0, σ_i²)| with σ_i varying per slice: over many calibrations the
    expected coverage of a new slice is at least the level, and not much more (1/(n+1) here)."""
    generator = torch.Generator().manual_seed(1)
    n, pixels, level, trials = 19, 200, 0.8, 400
    covered = []
    for _ in range(trials):
        scales = 0.5 + torch.rand(n + 1, generator=generator, dtype=torch.float64)
        slices = [(s * torch.randn(pixels, generator=generator, dtype=torch.float64)).abs() for s in scales]
        k = risk_control_scale(slices[:n], level)
        covered.append(float((slices[n] <= k).double().mean()))
    mean = float(np.mean(covered))
    assert level - 3 * np.std(covered) / math.sqrt(trials) <= mean <= level + 2 / (n + 1)


def settings():
    return {"checkpoint_sha256": "ab" * 32, "num_samples": 8, "schedule": {"preset": "fast"}, "noise_boost": 2.0}


def test_calibration_file_round_trip_and_mismatch_errors(tmp_path):
    path = tmp_path / "calibration.json"
    write_calibration(path, {"snr_20dB": {0.9: 1.7, 0.5: 0.6}}, {"snr_20dB": 40}, settings(), {"data_path": "val"})
    document = json.loads(path.read_text())
    assert document["k"] == {"snr_20dB": {"0.5": 0.6, "0.9": 1.7}} and "conformal risk control" in document["method"]
    calibration = Calibration(path)
    calibration.check(settings())
    assert calibration.scale("snr_20dB", 0.9) == 1.7
    other = {**settings(), "num_samples": 2}
    with pytest.raises(CalibrationError, match=re.escape(
        f"calibration: {path} was made for num_samples = 8, this run has 2; calibrate for these settings "
        "(python -m lit_sampler calibrate) or restore them"
    )):
        calibration.check(other)
    with pytest.raises(CalibrationError, match=re.escape(f"calibration: {path} has no k for snr_5dB (it has ['snr_20dB'])")):
        calibration.scale("snr_5dB", 0.9)
    with pytest.raises(CalibrationError, match=re.escape(f"has no k for coverage 0.95 at snr_20dB (it has [0.5, 0.9])")):
        calibration.scale("snr_20dB", 0.95)
    with pytest.raises(CalibrationError, match="not found"):
        Calibration(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CalibrationError, match="is not a calibration file"):
        Calibration(tmp_path / "bad.json")


def test_calibrate_then_predict_writes_the_interval(tmp_path, multicoil_dir):
    """End to end on tiny data: `calibrate` fits k per SNR from a run with targets; `predict` with
    the file writes lower/upper/calibrated_std and the calibrated coverage; another num_samples is
    one error line."""
    import h5py

    from tests.helpers import predict_config, read_rows, run_cli, write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "ckpt.pt")
    config = predict_config(tmp_path, checkpoint, multicoil_dir, tmp_path / "unused", snr_range=[20], num_samples=3)
    out = tmp_path / "calibration.json"
    proc = run_cli("calibrate", "--config", config, "--out", out, "--levels", "0.5", "0.8",
                   "--run-dir", tmp_path / "calib_run", cwd=tmp_path)
    assert "snr_20dB (5 slices)" in proc.stdout
    document = json.loads(out.read_text())
    assert document["calibration_slices"] == {"snr_20dB": 5} and set(document["k"]["snr_20dB"]) == {"0.5", "0.8"}
    k = document["k"]["snr_20dB"]["0.8"]

    run = tmp_path / "run"
    config = predict_config(tmp_path, checkpoint, multicoil_dir / "a.h5", run, name="p.yaml", snr_range=[20], num_samples=3,
                            trainer={"callbacks": [{"class_path": "lit_sampler.outputs.ReconstructionWriter", "init_args": {
                                "output_dir": str(run), "figure_slices": 1, "calibration": str(out), "interval_level": 0.8}}]})
    run_cli("predict", "--config", config, cwd=tmp_path)
    with h5py.File(run / "reconstructions" / "snr_20dB" / "a.h5", "r") as handle:
        mean, std = handle["reconstruction"][()], handle["std"][()]
        assert np.allclose(handle["upper"][()], mean + k * std, rtol=1e-5)
        assert np.allclose(handle["lower"][()], np.maximum(mean - k * std, 0), rtol=1e-5, atol=1e-7)
        assert np.allclose(handle["calibrated_std"][()], std * k / normal_multiplier(0.8), rtol=1e-5)
        assert handle.attrs["interval_level"] == 0.8 and handle.attrs["interval_k"] == pytest.approx(k)
    summary = read_rows(run / "summary.csv")[0]
    assert 0 <= float(summary["calibrated_coverage_80"]) <= 1 and float(summary["calibrated_width_80"]) > 0
    assert (run / "calibration.png").exists() and (run / "slice_metrics.csv").exists()

    bad = predict_config(tmp_path, checkpoint, multicoil_dir / "a.h5", tmp_path / "run2", name="q.yaml", snr_range=[20],
                         num_samples=2, trainer={"callbacks": [{"class_path": "lit_sampler.outputs.ReconstructionWriter",
                                                                "init_args": {"output_dir": str(tmp_path / "run2"),
                                                                              "calibration": str(out)}}]})
    proc = run_cli("predict", "--config", bad, cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert f"error: calibration: {out} was made for num_samples = 3, this run has 2" in proc.stderr
