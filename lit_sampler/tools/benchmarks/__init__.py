"""Throughput benchmark of the real ``predict`` path against a bare reference loop (the code behind
``scripts/benchmark.py``; what it measures and how to read it: ``docs/benchmarks.md``).

* ``configs``: :class:`Setup` (network, data, chain), :class:`RunConfig` (one row of the sweep),
  ``--config`` parsing, the default sweep, the presets.
* ``workload``: phantom data, a random-weight checkpoint, FLOPs per image-evaluation.
* ``measure``: memory and network-time instruments.
* ``bare_loop``: the reference pipeline's loop, batch 1, fp32, eager.
* ``runs``: ``Trainer.predict`` per configuration, the GPU host-sync check, the memory scaling check.
* ``table``: derived numbers, budget checks, the markdown table.
* ``driver``: the whole sweep, and writing ``benchmark.json`` / ``benchmark.md``.
"""

from .bare_loop import bare_reference_loop, run_bare
from .configs import PRESETS, REFERENCE_EVALS, RunConfig, Setup, default_configs, parse_config, setup_from_preset
from .driver import benchmark_to_folder, run_benchmark
from .runs import run_predict
from .table import to_markdown
from .workload import Prepared, datamodule, prepare

__all__ = [
    "PRESETS",
    "REFERENCE_EVALS",
    "Prepared",
    "RunConfig",
    "Setup",
    "bare_reference_loop",
    "benchmark_to_folder",
    "datamodule",
    "default_configs",
    "parse_config",
    "prepare",
    "run_bare",
    "run_benchmark",
    "run_predict",
    "setup_from_preset",
    "to_markdown",
]
