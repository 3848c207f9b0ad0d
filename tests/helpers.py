"""Helpers shared by the end-to-end tests (``test_cli.py``, ``test_reliability_*.py``): run the CLI
in a subprocess or in this process, write a predict config, a tiny checkpoint, compare run folders."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]

# files that must be bit-identical between runs of one config (TensorBoard events and figure.png need not)
RESULT_TABLES = ("metrics.csv", "volume_metrics.csv", "summary.csv")


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    for var in ("MASTER_PORT", "MASTER_ADDR", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "RANK",
                "LIT_SAMPLER_TRACEBACK"):
        env.pop(var, None)  # Lightning then picks a free port and launches its own ranks; no tracebacks
    env.update(extra)
    return env


def run_cli(*args, cwd, check=True, timeout=300, env: dict[str, str] | None = None, fault: str | None = None):
    """``python -m lit_sampler *args`` in a subprocess (one intra-op thread); with ``fault``
    (``<action>:<n>``, see ``tests/faults.py``) the same CLI run under that fault."""
    program = ["-m", "lit_sampler"] if fault is None else [str(ROOT / "tests" / "faults.py"), fault]
    proc = subprocess.run([sys.executable, *program, *map(str, args)], cwd=cwd, env=cli_env(**(env or {})),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-5000:]}")
    return proc


def main_in_process(*args) -> int:
    """``lit_sampler.cli.main(args)`` in this process; returns the exit status (0 when it returns)."""
    from lit_sampler.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    return 0


def write_tiny_checkpoint(path: Path, levels: int = 5, in_channels: int = 2) -> Path:
    from lit_sampler.models import NCSNv2

    torch.manual_seed(0)
    network = NCSNv2(in_channels=in_channels, ngf=4, sigma_begin=3.0, sigma_end=0.05, num_classes=levels)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path)
    return path


def predict_config(tmp_path, checkpoint, data, output_dir, *, name: str = "predict.yaml", model: dict | None = None,
                   trainer: dict | None = None, logger: bool = True, **data_args) -> Path:
    """A ``predict`` config for the tiny checkpoint; ``model``/``trainer``/``data_args`` override entries."""
    config: dict[str, Any] = {
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp_path),  # (Lightning's config.yaml goes there without a logger)
            "logger": {"class_path": "pytorch_lightning.loggers.TensorBoardLogger",
                       "init_args": {"save_dir": str(tmp_path / "logs"), "name": "run"}} if logger else False,
            "callbacks": [{"class_path": "lit_sampler.outputs.ReconstructionWriter",
                           "init_args": {"output_dir": str(output_dir), "figure_slices": 1}}],
        } | (trainer or {}),
        "model": {"class_path": "lit_sampler.lightning.LangevinSampler",
                  "init_args": {"checkpoint": str(checkpoint), "step_size": 1e-3, "steps_each": 1, "noise_boost": 2.0}
                  | (model or {})},
        "data": {"class_path": "lit_sampler.datamodules.FastMRIDataModule",
                 "init_args": {"data_path": data if isinstance(data, list) else str(data), "snr_range": [20, None],
                               "num_samples": 2, "batch_size": 3,
                               "mask": {"class_path": "lit_sampler.physics.masks.RandomLineMask",
                                        "init_args": {"center_fractions": [0.1], "accelerations": [3]}}} | data_args},
    }
    path = Path(tmp_path) / name
    path.write_text(yaml.safe_dump(config))
    return path


def read_rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def final_files(run_dir: Path) -> list[Path]:
    """The result files of a run directory that must not depend on how the run went: volumes and tables."""
    run_dir = Path(run_dir)
    volumes = sorted((run_dir / "reconstructions").rglob("*.h5"))
    return [p.relative_to(run_dir) for p in volumes] + [Path(t) for t in RESULT_TABLES if (run_dir / t).exists()]


def assert_same_results(expected: Path, actual: Path) -> None:
    """Every volume and table of ``expected`` exists in ``actual`` with the same bytes (and no extra volume)."""
    names = final_files(expected)
    assert names and names == final_files(actual), (names, final_files(actual))
    for name in names:
        assert (Path(expected) / name).read_bytes() == (Path(actual) / name).read_bytes(), f"{name} differs"


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file under ``folder``."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temporaries(folder: Path) -> list[Path]:
    """Temporary files of interrupted writes (``.<name>.<pid>.tmp``) under ``folder``."""
    return sorted(p for p in Path(folder).rglob(".*") if p.is_file() and ".tmp" in p.name)


class PoisonScore(torch.nn.Module):
    """A score network loaded from ``checkpoint`` whose output is NaN at the batch positions in
    ``poison``: chains that diverge in some items of a batch only. Configured by ``class_path:
    helpers.PoisonScore`` as the sampler's ``score_model`` (in-process CLI runs)."""

    def __init__(self, checkpoint: str, poison: list[int] = [1]):  # noqa: B006 - jsonargparse shows defaults
        super().__init__()
        from lit_sampler.models import load_score_model

        self.network = load_score_model(checkpoint)
        self.register_buffer("sigmas", self.network.sigmas.detach().clone())
        self.in_channels = self.network.in_channels
        self.poison = list(poison)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = self.network(x, labels)
        bad = [i for i in self.poison if i < out.shape[0]]
        if bad:
            out = out.clone()
            out[bad] = float("nan")
        return out
