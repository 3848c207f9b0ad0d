"""Guarantee 4 (input hardening): every corrupted input or setting ends the CLI with exactly one
line ``error: <message>`` on stderr (no traceback unless ``LIT_SAMPLER_TRACEBACK=1``), exit status
2 (configuration / input) or 1 (at run time), never hangs, and never changes a result an earlier
run left in the output directory (new item shards of good items may be added).

Most cases run ``lit_sampler.cli.main`` in this process (fast); a real 2-process DDP run where
only rank 1 meets bad data must stop with the message, not hang.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import write_phantom_file
from faults import inject
from helpers import main_in_process, predict_config, run_cli, snapshot, temporaries, write_tiny_checkpoint
from lit_sampler.sampling.presets import PRESETS, show_knob


@dataclass
class Setup:
    root: Path
    data: Path  # a.h5 (2 slices) and b.h5 (1 slice), 16×16, 2 coils
    checkpoint: Path
    finished: Path  # a complete run of the good config

    def config(self, out: Path, name: str, data=None, model: dict | None = None, **data_args) -> Path:
        data = [str(self.data / "a.h5"), str(self.data / "b.h5")] if data is None else data
        return predict_config(self.root, self.checkpoint, data, out, name=name, logger=False,
                              model=model, **({"snr_range": [20], "batch_size": 2} | data_args))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    data = root / "data"
    write_phantom_file(data / "a.h5", slices=2, coils=2, size=(16, 16))
    write_phantom_file(data / "b.h5", slices=1, coils=2, size=(16, 16), seed=1)
    s = Setup(root, data, write_tiny_checkpoint(root / "tiny.pt"), root / "finished")
    with one_thread_and_deadline():
        assert main_in_process("predict", "--config", s.config(s.finished, "finished.yaml")) == 0
    return s


class one_thread_and_deadline:
    """One intra-op thread (as the CLI subprocesses) and SIGALRM after ``seconds``: a hang fails the test."""

    def __init__(self, seconds: int = 60):
        self.seconds = seconds

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

        def hang(signum, frame):
            raise TimeoutError(f"the CLI did not return within {self.seconds} s")

        self.previous = signal.signal(signal.SIGALRM, hang)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)
        torch.set_num_threads(self.threads)


# ------------------------------------------------------------------------------------ broken inputs
def truncated(path: Path, setup: Setup) -> None:
    content = (setup.data / "a.h5").read_bytes()
    path.write_bytes(content[: int(len(content) * 0.4)])


def random_bytes(path: Path, setup: Setup) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())


def empty(path: Path, setup: Setup) -> None:
    path.write_bytes(b"")


def real_kspace(path: Path, setup: Setup) -> None:
    with h5py.File(setup.data / "a.h5") as good, h5py.File(path, "w") as bad:
        bad["kspace"] = np.abs(good["kspace"][()]).astype(np.float32)


def no_kspace(path: Path, setup: Setup) -> None:
    with h5py.File(setup.data / "a.h5") as good, h5py.File(path, "w") as bad:
        bad["reconstruction_rss"] = good["reconstruction_rss"][()]


def mismatched_maps(path: Path, setup: Setup) -> None:
    shutil.copy(setup.data / "a.h5", path)
    with h5py.File(path, "a") as f:
        maps = f["sens_maps"][()]
        del f["sens_maps"]
        f["sens_maps"] = maps[:, :1]  # one coil of two


def nan_kspace(path: Path, setup: Setup) -> None:
    shutil.copy(setup.data / "a.h5", path)
    with h5py.File(path, "a") as f:
        kspace = f["kspace"][1]
        kspace[0, 3, 3] = np.nan
        f["kspace"][1] = kspace


BAD_DATA = [
    (truncated, r"c\.h5: cannot open as an HDF5 file \(.*truncated file"),
    (random_bytes, r"c\.h5: cannot open as an HDF5 file"),
    (empty, r"c\.h5: cannot open as an HDF5 file"),
    (real_kspace, r"c\.h5: dataset 'kspace' has dtype float32 but needs a complex type"),
    (no_kspace, r"c\.h5: no dataset 'kspace' \(found: \['reconstruction_rss'\]\)"),
    (mismatched_maps, r"c\.h5: dataset 'sens_maps' has shape \[2, 1, 16, 16\] but the k-space .* has \[2, 2, 16, 16\]"),
    # found only when slice 1 is read, mid-run: the items before it are kept as results
    (nan_kspace, r"c\.h5: slice 1: dataset 'kspace' has 1 non-finite values \(NaN/Inf\)"),
]


def run_case(setup: Setup, tmp_path: Path, capsys, make_config, keep_results: bool = True):
    """Copy the finished run to a fresh output dir, run the CLI there, return (status, error line,
    stderr, output dir, snapshot before)."""
    out = tmp_path / "out"
    shutil.copytree(setup.finished, out)
    before = snapshot(out)
    capsys.readouterr()
    with one_thread_and_deadline():
        status = main_in_process("predict", "--config", make_config(out))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err and "usage:" not in err, err[-3000:]
    assert err.rstrip().splitlines()[-1] == errors[0]
    after = snapshot(out)
    if keep_results:  # nothing there before was changed or removed; no temporary file is left
        assert {k: after.get(k) for k in before} == before
        assert temporaries(out) == []
    return status, errors[0], out, before


@pytest.mark.parametrize("corrupt, message", BAD_DATA, ids=[case[0].__name__ for case in BAD_DATA])
def test_corrupted_data_files(setup, tmp_path, capsys, corrupt, message):
    bad = tmp_path / "c.h5"
    corrupt(bad, setup)
    data = [str(setup.data / "a.h5"), str(setup.data / "b.h5"), str(bad)]
    status, line, out, before = run_case(setup, tmp_path, capsys, lambda o: setup.config(o, "bad.yaml", data=data))
    assert status == 2, line
    assert re.search(message, line), line
    new = sorted(set(snapshot(out)) - set(before))
    if corrupt is nan_kspace:  # slice 0 of c.h5 was computed before slice 1 failed
        assert new == ["items/snr_20dB/c.h5/s0000_n000.pt", "items/snr_20dB/c.h5/s0000_n001.pt"]
    else:  # found while checking the files, before anything ran
        assert new == []


# ------------------------------------------------------------------------------------ checkpoints and config
def bad_checkpoint(kind: str, setup: Setup, tmp_path: Path) -> str:
    path = tmp_path / f"{kind}.pt"
    if kind == "hdf5":
        shutil.copy(setup.data / "a.h5", path)
    elif kind == "truncated":
        content = setup.checkpoint.read_bytes()
        path.write_bytes(content[: len(content) // 2])
    elif kind == "four_channels":
        write_tiny_checkpoint(path, in_channels=4)
    elif kind == "foreign_state":
        torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    return str(path)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("hdf5", r"hdf5\.pt: not a PyTorch checkpoint; .* found leading bytes b'\\x89HDF"),
        ("truncated", r"truncated\.pt: truncated or corrupted checkpoint"),
        ("missing", r"missing\.pt: no such file"),
        ("four_channels", r"four_channels\.pt: the score network takes 4 input channels but posterior MRI sampling needs 2"),
        ("foreign_state", r"foreign_state\.pt: "),
    ],
)
def test_wrong_checkpoint(setup, tmp_path, capsys, kind, message):
    checkpoint = bad_checkpoint(kind, setup, tmp_path)
    status, line, _, _ = run_case(setup, tmp_path, capsys, lambda o: setup.config(o, "c.yaml", model={"checkpoint": checkpoint}))
    assert status == 2 and re.search(message, line), line


@pytest.mark.parametrize(
    "model, data_args, message",
    [
        ({"step_sise": 1e-3}, {}, r"^error: config: model \(LangevinSampler\): Option 'step_sise' is not accepted \(did you mean 'step_size'\?\)"),
        ({"steps_each": "many"}, {}, r"^error: config: model\.steps_each \(LangevinSampler\): Expected a <class 'int'>\. Got value: many"),
        ({"steps_each": 0}, {}, r"^error: steps_each must be at least 1, got 0$"),
        ({"data_consistency": "gausian"}, {}, r"^error: config: model\.data_consistency .*gausian"),
        ({}, {"snr_rnage": [5]}, r"^error: config: data \(FastMRIDataModule\): Option 'snr_rnage' is not accepted \(did you mean 'snr_range'\?\)"),
        ({}, {"batch_size": 0}, r"^error: batch_size must be >= 1, got 0$"),
        ({}, {"slices": [7]}, r"^error: .*a\.h5.* 7"),
        # every knob a preset sets, given next to the preset: it wins, so a bad value is refused as
        # without a preset (0.3.0 let the preset replace it silently), and a combination that
        # cannot run names the knobs and where each came from
        ({"preset": "balanced", "steps_each": 0}, {}, r"^error: steps_each must be at least 1, got 0$"),
        ({"preset": "balanced", "sigma_offset": 500}, {},
         r"^error: sigma_offset must lie in \[0, 4\] for 5 noise levels, got 500 \(or be 'auto' with a warm-start init\)$"),
        ({"preset": "reference", "sigma_offset": "auto"}, {},
         r"^error: sigma_offset: auto \(config\) picks a warm-start level; it needs init 'zero_filled' or 'cg_sense', "
         r"got init 'reference' \(preset reference\); give init: zero_filled \(or cg_sense\), or a level index as sigma_offset$"),
        ({"preset": "balanced", "init": "reference"}, {},
         r"^error: sigma_offset: auto \(preset balanced\) picks a warm-start level; it needs init 'zero_filled' or 'cg_sense', "
         r"got init 'reference' \(config\); give init: zero_filled \(or cg_sense\), or a level index as sigma_offset$"),
        ({"preset": "balanced", "levels": 0}, {}, r"^error: need a positive number of levels, got 0$"),
        ({"preset": "balanced", "final_denoise": "maybe"}, {},
         r"^error: config: model\.final_denoise \(LangevinSampler\): Expected a <class 'bool'>\. Got value: maybe \(see --help\)$"),
        ({"preset": "reference", "start_factor": 4.0}, {},
         r"^error: start_factor: 4 has no effect: it places the start of sigma_offset: auto, but the chain starts at the "
         r"fixed level sigma_offset: 0 \(default\); remove start_factor or set sigma_offset: auto$"),
        ({"preset": "balanced", "start_factor": -1.0}, {}, r"^error: start_factor must be positive, got -1\.0$"),
        ({"preset": "balanced", "prior_sampling": True}, {},
         r"^error: prior sampling has no data: init 'zero_filled' \(preset balanced\) and sigma_offset: auto \(preset balanced\) "
         r"need a measurement$"),
        # the few-call presets' knobs: another sampler's knob given next to them is refused, and theirs
        ({"preset": "fast", "steps_each": 2}, {},
         r"^error: steps_each: 2 applies to sampler: langevin only, but this run uses sampler: decomposed \(preset fast\); "
         r"remove steps_each or set sampler: langevin$"),
        ({"preset": "balanced", "eta": 0.5}, {},
         r"^error: eta: 0\.5 applies to sampler: decomposed only, but this run uses sampler: langevin \(preset balanced\); "
         r"remove eta or set sampler: decomposed$"),
        ({"preset": "quick", "steps_each": None, "noise_boost": None, "dc_steps": -1}, {},
         r"^error: dc_steps must be >= 0 \(conjugate-gradient steps per level\), got -1$"),
        ({"cs_missing": "ignore"}, {},
         r"^error: config: model\.cs_missing \(LangevinSampler\): Expected a typing\.Literal\['error', 'skip'\]\. "
         r"Got value: ignore \(see --help\)$"),
    ],
)
def test_config_mistakes(setup, tmp_path, capsys, model, data_args, message):
    status, line, _, _ = run_case(setup, tmp_path, capsys, lambda o: setup.config(o, "c.yaml", model=model, **data_args))
    assert status == 2 and re.search(message, line), line


# every knob a Langevin preset sets, a value that differs from the preset's (balanced: Langevin,
# steps_each 1, sigma_offset auto, every level, init zero_filled, final_denoise true, start_factor 1,
# noise_boost 2); the few-call presets' own knobs (eta, dc_steps) are in test_schedules_cheap.py

GIVEN_NEXT_TO_BALANCED = [("steps_each", 2, 2), ("sigma_offset", 1, 1), ("levels", 3, 3), ("init", "cg_sense", "cg_sense"),
                      ("final_denoise", False, False), ("start_factor", 4.0, 4.0), ("noise_boost", 1.5, 1.5),
                      ("sampler", "decomposed", "decomposed")]


@pytest.mark.parametrize("knob, value, recorded", GIVEN_NEXT_TO_BALANCED, ids=[case[0] for case in GIVEN_NEXT_TO_BALANCED])
def test_preset_knob_given_explicitly_wins(setup, tmp_path, capsys, knob, value, recorded):
    """The run uses the given knob, says so on its ``sampler:`` line and records it, with its
    source, in run_settings.json; the preset fills in the others."""
    out = tmp_path / "out"
    model = {"preset": "balanced", "steps_each": None, "noise_boost": None, knob: value}
    config = setup.config(out, "c.yaml", data=[str(setup.data / "b.h5")], model=model, num_samples=1)
    capsys.readouterr()
    with one_thread_and_deadline():
        assert main_in_process("predict", "--config", config) == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if line.startswith("sampler: "))
    assert f"(preset balanced); from the config: {knob}={show_knob(value)}; from preset balanced: " in line, line
    settings = json.loads((out / "run_settings.json").read_text())["model"]
    assert settings[knob] == recorded and settings["preset"] == "balanced"
    sources = settings["schedule"]["knob_sources"]
    assert {k: sources[k] for k in PRESETS["balanced"]} == {k: "config" if k == knob else "preset balanced" for k in PRESETS["balanced"]}
    schedule = settings["schedule"]
    shown = {
        "steps_each": schedule.get("steps_total") == 2 * schedule["levels_run"],
        "sigma_offset": schedule["first_level"] == 1 and not schedule["auto_start"],
        "levels": schedule["levels_run"] == 3,
        "init": schedule["init"] == "cg_sense",
        "final_denoise": schedule.get("final_denoise") is False,
        "start_factor": schedule["start_factor"] == 4.0 and schedule["auto_start"],
        "noise_boost": schedule.get("noise_boost") == 1.5,
        "sampler": schedule.get("sampler") == "decomposed" and "final_denoise" not in schedule,
    }
    assert shown[knob], schedule


def test_unknown_keys_and_broken_yaml(setup, tmp_path, capsys):
    config = setup.config(tmp_path / "out", "c.yaml")
    text = config.read_text()
    cases = {
        "top.yaml": ("modle: 1\n" + text, r"^error: config: Subcommand 'predict' does not accept option 'modle'"),
        "trainer.yaml": (text.replace("trainer:\n", "trainer:\n  max_epohcs: 3\n"), r"does not accept option 'trainer\.max_epohcs'"),
        "class.yaml": (text.replace("lit_sampler.lightning.LangevinSampler", "lit_sampler.lightning.LangevinSamplr"),
                       r"has no attribute 'LangevinSamplr' \(did you mean 'lit_sampler\.lightning\.LangevinSampler'\?\)"),
        "broken.yaml": (text.replace("trainer:\n", "trainer: [\n"), r"^error: config: .* in .*broken\.yaml, line \d+, column \d+"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content)
        status, line, _, _ = run_case(setup, tmp_path / name.split(".")[0], capsys, lambda o: tmp_path / name)
        assert status == 2 and re.search(message, line), (name, line)


# ------------------------------------------------------------------------------------ output directory
def test_resume_with_other_settings_is_refused(setup, tmp_path, capsys):
    """Finished items of other settings would be mixed into the volumes: refused, nothing changed.
    Options that only change speed (here ``fail_fast``, ``channels_last``) may differ."""
    status, line, _, _ = run_case(setup, tmp_path / "a", capsys,
                                  lambda o: setup.config(o, "c.yaml", model={"step_size": 2e-3}, seed=5))
    assert status == 2 and re.search(
        r"^error: output directory .*/out holds results of other settings \(model\.step_size: 0\.001 -> 0\.002; "
        r"data\.seed: 0 -> 5\); resuming there would mix them", line), line
    out = tmp_path / "b" / "out"
    shutil.copytree(setup.finished, out)
    before = snapshot(out)
    with one_thread_and_deadline():
        status = main_in_process("predict", "--config", setup.config(out, "c.yaml", model={"fail_fast": True, "channels_last": True}))
    assert status == 0 and {k: v for k, v in snapshot(out).items() if k != "figure.png"} == {
        k: v for k, v in before.items() if k != "figure.png"}


def test_output_dir_that_is_a_file(setup, tmp_path, capsys):
    occupied = tmp_path / "occupied"
    occupied.write_bytes(b"someone's file")
    capsys.readouterr()
    with one_thread_and_deadline():
        status = main_in_process("predict", "--config", setup.config(occupied, "c.yaml"))
    err = capsys.readouterr().err
    assert status == 1 and occupied.read_bytes() == b"someone's file"
    assert f"error: output directory {occupied} is not writable (Not a directory)" in err and "Traceback" not in err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores directory permissions; the output-dir-is-a-file case covers the path")
def test_read_only_output_dir(setup, tmp_path, capsys):
    locked = tmp_path / "locked"
    shutil.copytree(setup.finished, locked)
    before = snapshot(locked)
    locked.chmod(0o555)
    try:
        with one_thread_and_deadline():
            status = main_in_process("predict", "--config", setup.config(locked, "c.yaml"))
    finally:
        locked.chmod(0o755)
    assert status == 1 and "is not writable (Permission denied)" in capsys.readouterr().err
    assert snapshot(locked) == before


@pytest.mark.parametrize("stage", ["item shard", "volume"])
def test_disk_full(setup, tmp_path, capsys, stage):
    """``OSError(ENOSPC)`` half-way through the first file written (fault ``enospc:1``): for
    a new item its shard, for a finished job the first volume. The old results stay intact."""
    extra = tmp_path / "c.h5"
    write_phantom_file(extra, slices=1, coils=2, size=(16, 16), seed=2)  # (an atomic write too: before the fault)
    data = [str(setup.data / "a.h5"), str(setup.data / "b.h5")] + ([str(extra)] if stage == "item shard" else [])
    with inject("enospc:1"):
        status, line, out, before = run_case(setup, tmp_path, capsys, lambda o: setup.config(o, "c.yaml", data=data))
    target = out / ("items/snr_20dB/c.h5/s0000_n000.pt" if stage == "item shard" else "reconstructions/snr_20dB/a.h5")
    assert status == 1
    assert line == (f"error: disk full: cannot write {target} (No space left on device); free space on the file "
                    f"system of {target.parent} and run the same command again: finished items are kept")
    assert sorted(set(snapshot(out)) - set(before)) == []  # no partial file under any name


def test_traceback_on_request_and_bugs_keep_theirs(setup, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LIT_SAMPLER_TRACEBACK", "1")
    with one_thread_and_deadline():
        status = main_in_process("predict", "--config", setup.config(tmp_path / "o", "c.yaml", model={"steps_each": 0}))
    err = capsys.readouterr().err
    assert status == 2 and "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1] == "error: steps_each must be at least 1, got 0"
    monkeypatch.delenv("LIT_SAMPLER_TRACEBACK")

    def bug(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("lit_sampler.outputs.writer.assemble_run", bug)
    with one_thread_and_deadline(), pytest.raises(KeyError, match="a bug"):  # not condensed: a bug shows its traceback
        main_in_process("predict", "--config", setup.config(tmp_path / "o2", "c2.yaml"))


# ------------------------------------------------------------------------------------ real processes
def test_ddp_rank_with_bad_data_stops_the_run_without_hanging(setup, tmp_path):
    """Only rank 1 reads the Inf slice (batches: [a s0], [a s1] → rank 1, [b s0]); rank 0 meets
    the dead peer in its next collective (or Lightning's process observer stops it): the command
    ends non-zero within seconds, rank 1's message names the file and slice, no traceback."""
    bad = tmp_path / "data"
    bad.mkdir()
    shutil.copy(setup.data / "a.h5", bad / "a.h5")
    shutil.copy(setup.data / "b.h5", bad / "b.h5")
    with h5py.File(bad / "a.h5", "a") as f:
        kspace = f["kspace"][1]
        kspace[1, 2, 2] = np.inf
        f["kspace"][1] = kspace
    out = tmp_path / "out"
    # read in DataLoader workers, so the message is also unwrapped from the worker's report
    config = predict_config(tmp_path, setup.checkpoint, [str(bad / "a.h5"), str(bad / "b.h5")], out, logger=False,
                            trainer={"devices": 2, "strategy": "ddp"}, snr_range=[20], num_samples=2, batch_size=2,
                            num_workers=1)
    proc = run_cli("predict", "--config", config, cwd=tmp_path, check=False, timeout=150)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-4000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors[0].startswith(f"error: [rank 1] {bad / 'a.h5'}: slice 1: dataset 'kspace' has 1 non-finite values"), errors
    # what rank 0 finished is kept for the rerun (complete files only); the bad slice has no result
    for shard in (out / "items").rglob("*.pt"):
        assert torch.load(shard, weights_only=True)["status"] == "ok"
    assert not list((out / "items").rglob("s0001_*.pt"))
