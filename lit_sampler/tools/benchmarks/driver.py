"""Runs the sweep (the bare loop first) and writes ``benchmark.json`` / ``benchmark.md``."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch

from .bare_loop import run_bare
from .configs import RunConfig, Setup, skip_reason
from .runs import check_sync_free, memory_scaling, run_predict
from .table import budget, derive, to_markdown
from .workload import prepare


def run_benchmark(setup: Setup, configs: list[RunConfig], workdir: Path, instrument: Optional[bool] = None,
                  memory_batch_sizes: Optional[list[int]] = None, memory_size: Optional[int] = None,
                  deadline_s: Optional[float] = None, log=print, partial_path: Optional[Path] = None,
                  keep_going: bool = False, repeats: int = 1) -> dict:
    """Run every configuration (the bare loop first) and return the report dict."""
    started = time.perf_counter()
    device = setup.device
    cuda = device.startswith("cuda")
    if instrument is None:
        instrument = not cuda
    if cuda:  # as the reference (sampling.py): TF32 on, cuDNN autotuning on
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    prepared = prepare(setup, workdir)
    setup = prepared.setup
    loadavg_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows: list[dict] = []
    bare: Optional[dict] = None

    def checks() -> tuple[Optional[dict], Optional[dict]]:
        """The GPU host-sync check and the memory scaling check (on GPU before the sweep, so that a
        long torch.compile at the end cannot crowd them out)."""
        sync = memory = None
        try:
            if cuda:
                last = next((c for c in reversed(configs) if c.kind == "predict" and not skip_reason(c, device)), None)
                if last is not None:
                    sync = check_sync_free(prepared, dataclasses.replace(last, compile=False, name=f"{last.name}_eager"))
                    log(f"sync check: {sync}")
            if memory_batch_sizes:
                mem_setup = dataclasses.replace(setup, size=memory_size or setup.size, checkpoint=str(prepared.checkpoint))
                mem_prepared = prepare(mem_setup, workdir / "memory") if mem_setup.size != setup.size else prepared
                memory = memory_scaling(mem_prepared, memory_batch_sizes)
                log(f"memory: linear in batch {memory['linear_in_batch']}, flat over items {memory['flat_over_items']}")
        except Exception as error:
            if not keep_going:
                raise
            log(f"checks FAILED: {type(error).__name__}: {error}")
            memory = memory or dict(error=f"{type(error).__name__}: {str(error)[:300]}")
        return sync, memory

    if cuda:
        sync, memory = checks()
    for cfg in sorted(configs, key=lambda c: c.kind != "bare"):
        info = dict(description=cfg.describe(), **dataclasses.asdict(cfg))
        reason = skip_reason(cfg, device)
        if reason is None and deadline_s is not None and time.perf_counter() - started > deadline_s:
            reason = f"time budget of {deadline_s:.0f} s spent"
        if reason:
            rows.append(dict(info, skipped=reason))
            log(f"{cfg.name:32s} skipped: {reason}")
            continue
        try:
            runs = []
            for _ in range(max(1, repeats)):  # the fastest of the repeats: the least disturbed
                runs.append(run_bare(prepared, cfg, instrument)[0] if cfg.kind == "bare"
                            else run_predict(prepared, cfg, instrument))
            row = min(runs, key=lambda r: r["wall_s"])
            row["wall_s_runs"] = [r["wall_s"] for r in runs]
        except Exception as error:  # one failing configuration (e.g. an untested GPU path) keeps the others
            if not keep_going:
                raise
            rows.append(dict(info, skipped=f"failed: {type(error).__name__}: {str(error)[:300]}"))
            log(f"{cfg.name:32s} FAILED: {type(error).__name__}: {error}")
            if cuda:
                torch.cuda.empty_cache()
            continue
        row = derive(dict(info, **row), prepared, bare)
        if cfg.kind == "bare" and bare is None:
            bare = row
        rows.append(row)
        if partial_path is not None:  # survives a time-out of the whole script
            partial_path.write_text(json.dumps(dict(partial=True, results=rows), indent=1, default=str))
        frac = row["frac_in_network"]
        log(f"{cfg.name:32s} {row['ms_per_image_eval']:9.2f} ms/img-eval  {row['image_evals_per_s']:8.2f} img-evals/s  "
            f"in-net {'–' if frac is None else format(frac, '.0%'):>4s}  "
            f"peak {row['peak_mem_bytes'] / 2**20:7.0f} MB  x{row.get('speedup_vs_bare', 1.0):.2f}  "
            f"({row['wall_s']:.1f} s)")
    if not cuda:
        sync, memory = checks()
    meta = dict(
        torch=torch.__version__, python=platform.python_version(), platform=platform.platform(),
        device=device, device_name=torch.cuda.get_device_name() if cuda else (platform.processor() or "cpu"),
        threads=torch.get_num_threads(), omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
        loadavg_start=loadavg_start, loadavg_end=os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        instrumented=instrument, repeats=repeats, seconds=time.perf_counter() - started, sync_check=sync,
        date=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    setup_dict = dataclasses.asdict(setup)
    setup_dict["items"] = setup.items
    report = dict(meta=meta, setup=setup_dict, flops_per_image_eval=prepared.flops_per_image_eval,
                  results=rows, memory=memory)
    report["budget"] = budget(rows, memory)
    return report


def benchmark_to_folder(setup: Setup, configs: list[RunConfig], out: Path, *, preset: str, argv: list[str],
                        instrument: Optional[bool] = None, memory_batch_sizes: Optional[list[int]] = None,
                        memory_size: Optional[int] = None, deadline_s: Optional[float] = None,
                        repeats: int = 1) -> dict:
    """:func:`run_benchmark` in a temporary folder, keeping going past failing configurations;
    writes ``benchmark.json`` and ``benchmark.md`` into ``out`` (``benchmark.partial.json`` while it
    runs) and prints the table. Returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    print(f"benchmark: preset {preset}, {setup.variant} ngf {setup.ngf} {setup.size}x{setup.size}, {setup.items} items, "
          f"{setup.levels} levels x {setup.steps_each} steps, device {setup.device}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory(prefix="lit_sampler_bench-") as workdir:
        report = run_benchmark(setup, configs, Path(workdir), instrument=instrument,
                               memory_batch_sizes=memory_batch_sizes, memory_size=memory_size,
                               deadline_s=deadline_s, partial_path=out / "benchmark.partial.json",
                               keep_going=True, repeats=repeats)
    for row in report["results"]:
        row.pop("output_dir", None)
    report["meta"]["preset"] = preset
    report["meta"]["argv"] = argv
    (out / "benchmark.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "benchmark.partial.json").unlink(missing_ok=True)
    markdown = to_markdown(report)
    (out / "benchmark.md").write_text(markdown)
    print(markdown)
    print(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.md'} in {report['meta']['seconds']:.0f} s")
    return report
