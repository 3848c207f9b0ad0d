"""Guarantee 3 (divergence): a NaN/Inf or blow-up in one chain is caught per item, reported with
file, slice, SNR, sample and level, recorded as failed in metrics.csv / summary.csv / the volume,
leaves the other items of its batch bit-identical to a run without it, and does not stop the run
unless ``fail_fast`` is set (then: one error line, exit status 1)."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from conftest import write_phantom_file
from helpers import main_in_process, predict_config, read_rows, write_tiny_checkpoint


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    root = tmp_path_factory.mktemp("divergence")
    write_phantom_file(root / "data" / "a.h5", slices=2, coils=2, size=(16, 16))
    checkpoint = write_tiny_checkpoint(root / "tiny.pt")

    def run(name: str, model: dict) -> tuple[int, object]:
        out = root / name
        config = predict_config(root, checkpoint, root / "data", out, name=f"{name}.yaml", logger=False,
                                # network calls of the whole batch (the default calls it in fixed
                                # chunks of call_size): the poisoned item shares every call
                                model={"steps_each": 2, "batch_invariant": False} | model, snr_range=[20],
                                num_samples=3, batch_size=3)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return main_in_process("predict", "--config", config), out
        finally:
            torch.set_num_threads(threads)

    status, reference = run("reference", {})
    assert status == 0
    return {"run": run, "checkpoint": checkpoint, "reference": reference}


def shard(run_dir, slice_num, sample):
    return torch.load(run_dir / f"items/snr_20dB/a.h5/s{slice_num:04d}_n{sample:03d}.pt", weights_only=True)


def test_nan_in_one_chain_fails_that_item_only(job, caplog):
    """Batches are the 3 samples of a slice; the score is NaN at batch position 1 (sample 1)."""
    poisoned = {"checkpoint": None, "score_model": {"class_path": "helpers.PoisonScore",
                                                    "init_args": {"checkpoint": str(job["checkpoint"]), "poison": [1]}}}
    status, out = job["run"]("poisoned", poisoned)
    assert status == 0  # the run went on
    for slice_num in (0, 1):
        assert f"diverged: a.h5 slice {slice_num} SNR 20 dB sample 1 at level 0" in caplog.text
        bad = shard(out, slice_num, 1)
        assert bad["status"] == "diverged" and bad["diverged_level"] == 0 and math.isnan(bad["metrics"]["recon_psnr"])
        for sample in (0, 2):  # its batch neighbours: bit-identical to the run without the NaN
            good, clean = shard(out, slice_num, sample), shard(job["reference"], slice_num, sample)
            assert good["status"] == "ok" and torch.equal(good["reconstruction"], clean["reconstruction"])
            assert good["metrics"] == clean["metrics"]
    rows = read_rows(out / "metrics.csv")
    assert [(r["slice_num"], r["sample_idx"], r["status"], r["diverged_level"]) for r in rows] == [
        (s, n, "diverged" if n == "1" else "ok", "0" if n == "1" else "-1") for s in "01" for n in "012"]
    assert all(r["recon_psnr"] == "nan" for r in rows if r["status"] == "diverged")
    [summary] = read_rows(out / "summary.csv")
    assert summary["items"] == "6" and summary["failed"] == "2"
    with h5py.File(out / "reconstructions/snr_20dB/a.h5") as volume:
        assert list(volume["failed_samples"][()]) == [1, 1]
        assert np.isfinite(volume["reconstruction"][()]).all()  # the posterior mean leaves the failed sample out


def test_step_size_far_too_large(job, caplog, capsys):
    status, out = job["run"]("blow_up", {"step_size": 1e4})
    assert status == 0
    assert "diverged: a.h5 slice 0 SNR 20 dB sample 0 at level" in caplog.text
    rows = read_rows(out / "metrics.csv")
    assert {r["status"] for r in rows} == {"diverged"} and all(int(r["diverged_level"]) >= 0 for r in rows)
    [summary] = read_rows(out / "summary.csv")
    assert summary["failed"] == "6" and summary["items"] == "6" and summary["zero_filled_psnr"]
    assert "recon" in capsys.readouterr().out  # the printed table shows the failures too
    with h5py.File(out / "reconstructions/snr_20dB/a.h5") as volume:
        assert list(volume["failed_samples"][()]) == [3, 3]


def test_fail_fast_stops_with_one_line(job, capsys):
    status, out = job["run"]("fail_fast", {"step_size": 1e4, "fail_fast": True})
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == 1 and "Traceback" not in err
    assert len(errors) == 1 and errors[0].startswith("error: diverged: a.h5 slice 0 SNR 20 dB sample 0 at level ")
    assert errors[0].endswith("Stopping: fail_fast is set.")
    assert not list((out / "items").rglob("*.pt"))  # the failed batch left nothing behind
