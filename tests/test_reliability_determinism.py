"""Guarantee 2 (determinism): one config gives bit-identical volumes, metrics.csv,
volume_metrics.csv and summary.csv on CPU whatever the batch size (1, 3, 4, 8, 16: below, at and
above the network's fixed call size of 4, so calls are padded, exact and chunked), the number of
DataLoader workers, the order of the items, and the number of DDP processes (1 vs 2, gloo)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import write_phantom_file
from helpers import assert_same_results, main_in_process, predict_config, run_cli, write_tiny_checkpoint


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Two volumes of one shape and a third of another (two shape groups), 2 SNRs, 2 samples; the
    reference run: batch size 3, no workers, one process, files and SNRs in the listed order."""
    root = tmp_path_factory.mktemp("determinism")
    data = root / "data"
    write_phantom_file(data / "a.h5", slices=2, coils=2, size=(16, 16))
    write_phantom_file(data / "b.h5", slices=1, coils=2, size=(16, 16), seed=1)
    write_phantom_file(data / "c.h5", slices=1, coils=3, size=(18, 16), seed=2)
    checkpoint = write_tiny_checkpoint(root / "tiny.pt")
    files = [str(data / name) for name in ("a.h5", "b.h5", "c.h5")]

    def run(name: str, in_process: bool = True, trainer: dict | None = None, **data_args) -> Path:
        out = root / name
        args = dict(data=files, batch_size=3, num_workers=0, snr_range=[20, None]) | data_args
        config = predict_config(root, checkpoint, args.pop("data"), out, name=f"{name}.yaml", logger=False,
                                model={"steps_each": 2}, trainer=trainer, **args)
        if in_process:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # like the subprocesses (OMP_NUM_THREADS=1)
            try:
                assert main_in_process("predict", "--config", config) == 0
            finally:
                torch.set_num_threads(threads)
        else:
            job["stderr"] = run_cli("predict", "--config", config, cwd=root, timeout=240).stderr
        return out

    job = {"run": run, "files": files}
    job["reference"] = run("reference")
    return job


@pytest.mark.parametrize(
    "name, data_args",
    [
        ("batch_size_1", dict(batch_size=1)),
        ("batch_size_4_workers_2", dict(batch_size=4, num_workers=2)),
        ("batch_size_8", dict(batch_size=8)),
        ("batch_size_16", dict(batch_size=16)),
        ("reversed_order", dict(reverse=True, snr_range=[None, 20])),
    ],
)
def test_batch_size_workers_and_item_order_do_not_change_results(job, name, data_args):
    if data_args.pop("reverse", False):
        data_args["data"] = job["files"][::-1]  # files, hence batches and shape groups, in another order
    assert_same_results(job["reference"], job["run"](name, **data_args))


def test_two_ddp_processes_give_the_results_of_one(job):
    """A real 2-process gloo run through the CLI (rank 1 gets every other batch, then rank 0
    assembles) against the 1-process reference; batch size 4 on top."""
    out = job["run"]("ddp", in_process=False, trainer={"devices": 2, "strategy": "ddp"}, batch_size=4)
    assert "Starting with 2 processes" in job["stderr"]
    assert_same_results(job["reference"], out)


def test_ddp_with_fewer_items_than_processes(job):
    """One batch, two processes: Lightning's sampler would hand rank 1 nothing (and crash); it gets
    a padding batch instead, joins the metric gather and the writer's barriers, and the result
    equals the reference run's item."""
    out = job["run"]("ddp_one_item", in_process=False, trainer={"devices": 2, "strategy": "ddp"},
                     data=job["files"][1:2], snr_range=[20])
    reference = torch.load(job["reference"] / "items/snr_20dB/b.h5/s0000_n000.pt", weights_only=True)
    alone = torch.load(out / "items/snr_20dB/b.h5/s0000_n000.pt", weights_only=True)
    assert torch.equal(alone["reconstruction"], reference["reconstruction"])
    assert sorted(p.name for p in (out / "reconstructions" / "snr_20dB").iterdir()) == ["b.h5"]
