"""Compressed-sensing baselines (sigpy) and their λ selection, which must never see test data."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import write_phantom_file
from helpers import cli_env, main_in_process, predict_config, read_rows, write_tiny_checkpoint
from lit_sampler.datamodules import FastMRIDataModule
from lit_sampler.evaluation.tuning import tune_cs_lambdas, tuning_command
from lit_sampler.physics.masks import RandomLineMask
from lit_sampler.sampling.baselines import check_cs_lambda, compressed_sensing

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
    """A bad table, or a noise level of the data without a λ, ends the run before it starts, in one
    line that says the fix: the tuning command for exactly that level with this run's data
    settings (here an override on the command line), or the two ways to run without it."""
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    write_phantom_file(tmp_path / "d" / "a.h5", slices=1, coils=2, size=(16, 16))
    config = predict_config(tmp_path, checkpoint, tmp_path / "d", tmp_path / "o", logger=False, num_samples=1,
                            snr_range=[20], model={"cs_lambdas": {"l1_wavelet": {"30": 1e-3}}})
    missing = (
        "error: cs_lambdas.l1_wavelet: no λ for SNR 20 dB (given for ['30']); tune λ on validation data with "
        f"`python scripts/tune_baselines.py --config {config} --data.init_args.slices=middle --data.init_args.data_path "
        "<validation data> --data.init_args.snr_range '[20]' --methods l1_wavelet` and add the printed \"20\" entries "
        "to cs_lambdas, or set cs_missing: skip (runs without that baseline there), or cs_lambdas: null (no "
        "compressed-sensing baselines)"
    )
    unknown = ("error: cs_lambdas: unknown method 'wavelets' for the compressed-sensing baselines; expected one of "
               "['l1_wavelet', 'total_variation']")
    for args, line in (([f"--model.init_args.cs_lambdas={json.dumps({'wavelets': 1e-3})}"], unknown),
                       (["--data.init_args.slices", "middle"], missing)):
        proc = subprocess.run([sys.executable, "-m", "lit_sampler", "predict", "--config", str(config), *args],
                              env=cli_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and proc.stderr.rstrip().splitlines()[-1] == line, proc.stderr[-1500:]
        assert "💡" not in proc.stdout + proc.stderr and "litlogger" not in proc.stderr  # (Lightning's tips)
        assert not (tmp_path / "o").exists()  # refused before the run directory was touched


def test_cs_missing_skip_leaves_that_baseline_out_there(tmp_path, caplog):
    """``cs_missing: skip``: one warning per method and level; the items of that level (here in a
    batch shared with the other level) have no such baseline in their shards, tables and volumes."""
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    write_phantom_file(tmp_path / "d" / "a.h5", slices=1, coils=2, size=(16, 16))
    out = tmp_path / "out"
    config = predict_config(tmp_path, checkpoint, tmp_path / "d", out, logger=False, snr_range=[20, 5],
                            model={"cs_lambdas": {"l1_wavelet": {"20": 1e-2}, "total_variation": 1e-2},
                                   "cs_iterations": 10, "cs_missing": "skip"})
    with caplog.at_level(logging.WARNING, logger="lit_sampler.lightning.module"):
        assert main_in_process("predict", "--config", config) == 0
    warned = [r.getMessage() for r in caplog.records if "cs_missing" in r.getMessage()]
    assert warned == ["warning: cs_lambdas.l1_wavelet: no λ for SNR 5 dB; l1_wavelet is skipped there (cs_missing: skip)"]
    rows = read_rows(out / "metrics.csv")
    assert len(rows) == 4 and all(row["total_variation_psnr"] for row in rows)
    assert [bool(row["l1_wavelet_psnr"]) for row in rows] == [float(row["snr_db"]) == 20 for row in rows]
    summary = {float(row["snr_db"]): row for row in read_rows(out / "summary.csv")}
    assert summary[20.0]["l1_wavelet_psnr"] and summary[5.0]["l1_wavelet_psnr"] == ""
    with h5py.File(out / "reconstructions" / "snr_5dB" / "a.h5") as f:
        assert "l1_wavelet" not in f and "total_variation" in f
    with h5py.File(out / "reconstructions" / "snr_20dB" / "a.h5") as f:
        assert "l1_wavelet" in f
    settings = json.loads((out / "run_settings.json").read_text())["model"]
    assert settings["cs_missing"] == "skip" and settings["cs_skipped"] == {"l1_wavelet": ["5"]}


def test_measured_noise_has_a_lambda_key_of_its_own(tmp_path, capsys):
    """Scanner data (``real_noise``) at ``snr: null`` are named ``measured`` (noiseless simulations
    ``inf``), tuned like any SNR, and a run without that key is refused with the command that tunes it."""
    write_phantom_file(tmp_path / "scan" / "s.h5", slices=1, coils=2, size=(16, 16))
    with h5py.File(tmp_path / "scan" / "s.h5", "a") as handle:
        handle.attrs["real_noise"] = True  # (fully sampled: a retrospective mask and an SNR on top are allowed)
    write_phantom_file(tmp_path / "sim" / "p.h5", slices=1, coils=2, size=(16, 16))

    def keys(folder, snrs):
        return FastMRIDataModule(str(folder), snr_range=snrs, mask=RandomLineMask([0.1], [3])).noise_keys()

    assert keys(tmp_path / "scan", [None]) == ["measured"] and keys(tmp_path / "scan", [20, None]) == ["20", "measured"]
    assert keys(tmp_path / "sim", [None]) == ["inf"] and keys(tmp_path / "sim", ["inf", 7.5]) == ["inf", "7.5"]
    record = tune_cs_lambdas(batches(tmp_path / "scan", (None,)), ["l1_wavelet"], (1e-3, 1e-2), iterations=10)
    assert list(record["cs_lambdas"]["l1_wavelet"]) == ["measured"]

    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    tuned = predict_config(tmp_path, checkpoint, tmp_path / "scan", tmp_path / "out", logger=False, num_samples=1,
                           snr_range=[None], model={"cs_lambdas": record["cs_lambdas"], "cs_iterations": 10})
    assert main_in_process("predict", "--config", tuned) == 0
    assert read_rows(tmp_path / "out" / "metrics.csv")[0]["l1_wavelet_psnr"]
    untuned = predict_config(tmp_path, checkpoint, tmp_path / "scan", tmp_path / "out2", name="untuned.yaml", logger=False,
                             num_samples=1, snr_range=[None], model={"cs_lambdas": {"l1_wavelet": {"20": 1e-2}}})
    capsys.readouterr()
    assert main_in_process("predict", "--config", untuned) == 2
    assert capsys.readouterr().err.rstrip().splitlines()[-1] == (
        "error: cs_lambdas.l1_wavelet: no λ for the measured noise, key \"measured\" (given for ['20']); tune λ on "
        f"validation data with `python scripts/tune_baselines.py --config {untuned} --data.init_args.data_path "
        "<validation data> --data.init_args.snr_range '[null]' --methods l1_wavelet` and add the printed \"measured\" "
        "entries to cs_lambdas, or set cs_missing: skip (runs without that baseline there), or cs_lambdas: null (no "
        "compressed-sensing baselines)"
    )


def test_tuning_command_keeps_the_runs_data_settings():
    args = ["predict", "--config", "my run.yaml", "--data.init_args.slices", "middle", "--data.init_args.snr_range=[20, -30]",
            "--model.init_args.preset", "fast", "--data.init_args.data_path", "test/", "--data.init_args.mask.init_args.accelerations=[8]"]
    assert tuning_command(["-30"], ["l1_wavelet", "total_variation"], args) == (
        "python scripts/tune_baselines.py --config 'my run.yaml' --data.init_args.slices=middle "
        "'--data.init_args.mask.init_args.accelerations=[8]' --data.init_args.data_path <validation data> "
        "--data.init_args.snr_range '[-30]' --methods l1_wavelet total_variation"
    )
    assert tuning_command(["inf", "measured", "5"], ["total_variation"]) == (
        "python scripts/tune_baselines.py --config <your predict config> --data.init_args.data_path <validation data> "
        "--data.init_args.snr_range '[null, 5]' --methods total_variation"
    )
