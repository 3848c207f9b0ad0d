"""Guarantee 1 (resume): a ``predict`` run killed at any point — SIGKILL from outside mid-batch,
mid-write, between a complete temporary file and its rename, while the volumes are assembled — and
started again with the same config and output directory skips every finished item, computes the
rest, and ends with volumes and tables bit-identical to an uninterrupted run. No file is ever
visible under its final name unless complete; temporary files of dead runs are removed.

Exact kill points use the tests' fault injection (``tests/faults.py``).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import torch

from conftest import write_phantom_file
from faults import inject
from helpers import (
    assert_same_results,
    cli_env,
    main_in_process,
    predict_config,
    read_rows,
    run_cli,
    snapshot,
    temporaries,
    write_tiny_checkpoint,
)
from lit_sampler.atomic import OutputError, atomic_write_bytes
from lit_sampler.outputs.writer import remove_stale_temporaries

ITEMS = 3 * 2 * 2  # slices × SNRs × samples


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like the CLI subprocesses (OMP_NUM_THREADS=1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Data, checkpoint, and the config of an uninterrupted reference run (made once, in process)."""
    root = tmp_path_factory.mktemp("resume")
    write_phantom_file(root / "data" / "a.h5", slices=2, coils=2, size=(16, 16))
    write_phantom_file(root / "data" / "b.h5", slices=1, coils=2, size=(16, 16), seed=1)
    checkpoint = write_tiny_checkpoint(root / "tiny.pt")

    def config(output: Path, name: str) -> Path:
        # steps_each 4: a batch takes long enough to be caught mid-way by an outside kill
        return predict_config(root, checkpoint, root / "data", output, name=name, logger=False,
                              model={"steps_each": 4}, batch_size=2)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main_in_process("predict", "--config", config(root / "reference", "reference.yaml")) == 0
    finally:
        torch.set_num_threads(threads)
    return {"root": root, "config": config, "reference": root / "reference"}


def shards(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "items").glob("*/*/s*_n*.pt"))


def assert_visible_files_complete(run_dir: Path) -> None:
    """Every file under its final name is whole: shards load, volumes open with every slice, tables parse."""
    for path in shards(run_dir):
        shard = torch.load(path, weights_only=True)
        assert shard["status"] == "ok" and shard["reconstruction"].shape == (16, 16), path
    for path in (run_dir / "reconstructions").rglob("*.h5"):
        with h5py.File(path) as volume:
            assert volume["reconstruction"].shape[1:] == (16, 16) and len(volume["slice_num"]) == volume["reconstruction"].shape[0]
    for name in ("metrics.csv", "summary.csv", "volume_metrics.csv"):
        if (run_dir / name).exists():
            assert read_rows(run_dir / name)
    if (run_dir / "run_settings.json").exists():
        assert json.loads((run_dir / "run_settings.json").read_text())["model"]["steps_each"] == 4
    visible = [p for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert all(p.suffix in (".pt", ".h5", ".csv", ".png", ".json") for p in visible), visible


def killed_run(config: Path, cwd: Path, fault: str) -> subprocess.CompletedProcess:
    proc = run_cli("predict", "--config", config, cwd=cwd, check=False, timeout=120, fault=fault)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])
    return proc


def test_killed_at_every_stage_then_resumed_equals_uninterrupted(job):
    root, out = job["root"], job["root"] / "killed"
    config = job["config"](out, "killed.yaml")

    # 1. SIGKILL from outside, mid-batch: as soon as the first shard exists
    proc = subprocess.Popen([sys.executable, "-m", "lit_sampler", "predict", "--config", str(config)], cwd=root,
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not shards(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, stderr[-3000:]
    first = shards(out)
    assert 1 <= len(first) < ITEMS, "the run must be killed part-way"
    assert not (out / "reconstructions").exists() and not (out / "metrics.csv").exists()
    assert_visible_files_complete(out)
    kept = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in first}

    # 2. killed in the middle of writing the next shard: half a temporary file, no new final file
    killed_run(config, root, "kill_mid_write:1")
    assert shards(out) == first
    [partial] = temporaries(out)
    assert partial.name.endswith(".tmp") and partial.name.startswith(".s") and partial.stat().st_size > 0
    assert_visible_files_complete(out)

    # 3. a complete temporary shard, killed just before its rename; the stale one of run 2 is gone
    killed_run(config, root, "kill_before_rename:2")
    second = shards(out)
    assert len(second) == len(first) + 1
    assert len(temporaries(out)) == 1 and not partial.exists()
    assert_visible_files_complete(out)

    # 4. every remaining item computed, killed while the volumes are assembled (the 2nd volume)
    remaining = ITEMS - len(second)
    killed_run(config, root, f"kill_before_rename:{remaining + 2}")
    assert len(shards(out)) == ITEMS
    volumes = sorted((out / "reconstructions").rglob("*.h5"))
    assert [p.relative_to(out).as_posix() for p in volumes] == ["reconstructions/snr_inf/a.h5"]
    assert volumes[0].read_bytes() == (job["reference"] / "reconstructions/snr_inf/a.h5").read_bytes()
    assert not (out / "metrics.csv").exists()
    assert_visible_files_complete(out)

    # 5. the same command once more finishes the job: identical to the uninterrupted run
    with_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main_in_process("predict", "--config", config) == 0
    finally:
        torch.set_num_threads(with_threads)
    assert temporaries(out) == []
    assert_same_results(job["reference"], out)
    # every item was computed exactly once: shards of the first run were never rewritten, and all
    # shards equal the reference's byte for byte
    assert all((p.stat().st_ino, p.stat().st_mtime_ns) == kept[p] for p in first)
    reference_shards = shards(job["reference"])
    assert [p.relative_to(job["reference"]) for p in reference_shards] == [p.relative_to(out) for p in shards(out)]
    assert all(p.read_bytes() == (out / p.relative_to(job["reference"])).read_bytes() for p in reference_shards)


def test_rerun_of_a_finished_job_changes_nothing(job, one_thread, capsys):
    out = job["root"] / "again"
    config = job["config"](out, "again.yaml")
    assert main_in_process("predict", "--config", config) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main_in_process("predict", "--config", config) == 0
    assert f"{ITEMS} finished items are kept" in capsys.readouterr().out
    after = snapshot(out)
    after.pop("figure.png"), before.pop("figure.png")  # need not be bit-identical (matplotlib)
    assert after == before


def test_few_call_sampler_resumes_to_the_uninterrupted_result(job, one_thread, tmp_path):
    """The decomposed sampler through the same run directory: a run that lost some items (as a
    killed one does) computes only those again and ends bit-identical to an uninterrupted run."""
    root = job["root"]
    checkpoint = root / "tiny.pt"

    def config(output: Path, name: str) -> Path:
        return predict_config(tmp_path, checkpoint, root / "data", output, name=name, logger=False, batch_size=3,
                              model={"steps_each": None, "noise_boost": None, "sampler": "decomposed", "eta": 1.0,
                                     "dc_steps": 3, "levels": 5})

    assert main_in_process("predict", "--config", config(tmp_path / "whole", "whole.yaml")) == 0
    assert json.loads((tmp_path / "whole" / "run_settings.json").read_text())["model"]["schedule"]["sampler"] == "decomposed"
    interrupted = tmp_path / "interrupted"
    assert main_in_process("predict", "--config", config(interrupted, "interrupted.yaml")) == 0
    for path in ("reconstructions", "metrics.csv", "summary.csv", "volume_metrics.csv"):
        target = interrupted / path
        if target.is_dir():
            for file in sorted(target.rglob("*"), reverse=True):
                file.unlink() if file.is_file() else file.rmdir()
            target.rmdir()
        elif target.exists():
            target.unlink()
    lost = shards(interrupted)[::3]
    kept = {p: p.stat().st_mtime_ns for p in shards(interrupted) if p not in lost}
    for path in lost:
        path.unlink()
    assert main_in_process("predict", "--config", config(interrupted, "interrupted.yaml")) == 0
    assert_same_results(tmp_path / "whole", interrupted)
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in kept.items())  # finished items were not recomputed
    assert len(shards(interrupted)) == ITEMS


def test_atomic_write_leaves_old_version_or_new_one(tmp_path):
    """In process: a write failing after half its bytes (disk full) keeps the old file and no temporary."""
    target = tmp_path / "table.csv"
    atomic_write_bytes(target, b"old,complete\n")
    with inject("enospc:1"), pytest.raises(OutputError, match=r"disk full: cannot write .*table\.csv") as caught:
        atomic_write_bytes(target, b"new,content\n" * 1000)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old,complete\n" and temporaries(tmp_path) == []
    atomic_write_bytes(target, b"new\n")
    assert target.read_bytes() == b"new\n"


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live_pid = os.getppid()  # another process that is running: its temporary file is left alone
    (tmp_path / "items" / "snr_inf" / "a.h5").mkdir(parents=True)
    stale = [tmp_path / "items" / "snr_inf" / "a.h5" / f".s0000_n000.pt.{dead_pid}.tmp",
             tmp_path / f".metrics.csv.{dead_pid}.tmp", tmp_path / f".write-test-{dead_pid}",
             tmp_path / f".figure.png.{os.getpid()}.tmp"]
    live = tmp_path / f".summary.csv.{live_pid}.tmp"
    unrelated = tmp_path / ".hidden_config"
    for path in [*stale, live, unrelated]:
        path.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == len(stale)
    assert not any(p.exists() for p in stale) and live.exists() and unrelated.exists()
