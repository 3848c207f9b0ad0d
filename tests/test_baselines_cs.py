"""Compressed-sensing baselines (sigpy) and their λ selection, which must never see test data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_phantom_file
from helpers import cli_env, main_in_process, predict_config, read_rows, write_tiny_checkpoint
from lit_sampler.baselines import check_cs_lambda, compressed_sensing
from lit_sampler.data import FastMRIDataModule
from lit_sampler.masks import RandomLineMask
from lit_sampler.tuning import tune_cs_lambdas

ROOT = Path(__file__).resolve().parents[1]


def batches(folder: Path, snrs=(20,)):
    module = FastMRIDataModule(str(folder), snr_range=list(snrs), batch_size=2, mask=RandomLineMask([0.1], [3]))
    module.setup("predict")
    return list(module.predict_dataloader())


@pytest.mark.parametrize("method", ["l1_wavelet", "total_variation"])
def test_cs_beats_zero_filled_and_a_large_lambda_flattens(tmp_path, method):
    write_phantom_file(tmp_path / "a.h5", slices=1, coils=4, size=(32, 32))
    batch = batches(tmp_path)[0]
    target = batch.target[0].abs()
    image = compressed_sensing(method, batch.kspace[0], batch.sens_maps[0], batch.mask[0], 1e-3, 60)
    assert image.shape == target.shape and image.dtype == torch.complex64
    error = (image.abs() - target).norm()
    assert error < (batch.zero_filled[0].abs() - target).norm()
    flat = compressed_sensing(method, batch.kspace[0], batch.sens_maps[0], batch.mask[0], 1e3, 60)
    # λ → ∞: the penalty wins; wavelets shrink the image to zero, TV to a constant
    assert flat.abs().std() < 0.02 * target.max()
    with pytest.raises(ValueError, match="λ must be a finite number"):
        compressed_sensing(method, batch.kspace[0], batch.sens_maps[0], batch.mask[0], -1.0)


@pytest.mark.parametrize("method", ["l1_wavelet", "total_variation"])
def test_cs_baseline_depends_on_its_data_alone(tmp_path, method):
    """sigpy draws its power-iteration start from numpy's global RNG: whatever that RNG's state, the
    baseline is the same bits, and the caller's RNG state is left as it was."""
    write_phantom_file(tmp_path / "a.h5", slices=1, coils=4, size=(24, 24))
    batch = batches(tmp_path)[0]
    args = (method, batch.kspace[0], batch.sens_maps[0], batch.mask[0], 1e-2, 20)
    np.random.seed(1)
    first = compressed_sensing(*args)
    after = np.random.get_state()[1].copy()
    np.random.seed(2)
    np.random.standard_normal(100)
    assert torch.equal(compressed_sensing(*args), first)
    np.random.seed(1)
    compressed_sensing(*args)
    assert np.array_equal(np.random.get_state()[1], after)


def test_cs_settings_are_checked_in_one_place():
    check_cs_lambda("l1_wavelet", 0.0)
    with pytest.raises(ValueError, match=r"unknown method 'wavelets' for the compressed-sensing baselines"):
        check_cs_lambda("wavelets", 1e-3)
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"total_variation: λ must be a finite number >= 0"):
            check_cs_lambda("total_variation", bad)


def test_lambda_selection_depends_on_validation_data_only(tmp_path):
    write_phantom_file(tmp_path / "val" / "v.h5", slices=2, coils=4, size=(24, 24))
    write_phantom_file(tmp_path / "test" / "t.h5", slices=2, coils=4, size=(24, 24), seed=5)
    grid = (1e-4, 1e-2, 1.0)
    first = tune_cs_lambdas(batches(tmp_path / "val", (20, 5)), ["l1_wavelet"], grid, iterations=30)
    assert first["files"] == ["v.h5"] and len(first["items"]) == 4
    assert set(first["cs_lambdas"]["l1_wavelet"]) == {"20", "5"}
    # replacing the test files changes nothing: the selection never reads them
    write_phantom_file(tmp_path / "test" / "t.h5", slices=3, coils=4, size=(24, 24), seed=9)
    again = tune_cs_lambdas(batches(tmp_path / "val", (20, 5)), ["l1_wavelet"], grid, iterations=30)
    assert again["cs_lambdas"] == first["cs_lambdas"] and again["items"] == first["items"]
    for method, by_snr in first["psnr"].items():  # (sigpy's threaded sums vary in the 4th digit)
        for key, by_lambda in by_snr.items():
            assert again["psnr"][method][key] == pytest.approx(by_lambda, rel=2e-3)


def test_tuning_script_and_cs_columns_through_the_cli(tmp_path):
    write_phantom_file(tmp_path / "val" / "v.h5", slices=1, coils=2, size=(16, 16))
    write_phantom_file(tmp_path / "test" / "t.h5", slices=1, coils=2, size=(16, 16), seed=3)
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    config = predict_config(tmp_path, checkpoint, tmp_path / "val", tmp_path / "unused", logger=False, num_samples=1)
    record = tmp_path / "lambdas.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "tune_baselines.py"), "--config", str(config),
                           "--grid", "1e-3", "1e-2", "--iterations", "20", "--out", str(record)],
                          env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cs_lambdas:" in proc.stdout and "l1_wavelet" in proc.stdout
    tuned = json.loads(record.read_text())
    assert tuned["files"] == ["v.h5"]
    lambdas = tuned["cs_lambdas"]
    config = predict_config(tmp_path, checkpoint, tmp_path / "test", tmp_path / "out", name="test.yaml", logger=False,
                            num_samples=1, model={"cs_lambdas": lambdas, "cs_iterations": 20})
    assert main_in_process("predict", "--config", config) == 0
    rows = read_rows(tmp_path / "out" / "metrics.csv")
    assert {"l1_wavelet_psnr", "total_variation_psnr", "nfe", "acceleration"} <= set(rows[0])
    summary = read_rows(tmp_path / "out" / "summary.csv")
    assert "l1_wavelet_psnr" in summary[0] and float(summary[0]["mean_nfe"]) == 5.0


def test_cs_lambdas_errors(tmp_path):
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    write_phantom_file(tmp_path / "d" / "a.h5", slices=1, coils=2, size=(16, 16))
    for lambdas, message in (({"wavelets": 1e-3}, "unknown method 'wavelets'"),
                             ({"l1_wavelet": {"30": 1e-3}}, "no λ for SNR 20 dB")):
        config = predict_config(tmp_path, checkpoint, tmp_path / "d", tmp_path / "o", logger=False, num_samples=1,
                                snr_range=[20], model={"cs_lambdas": lambdas})
        proc = subprocess.run([sys.executable, "-m", "lit_sampler", "predict", "--config", str(config)], env=cli_env(),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-1500:]
