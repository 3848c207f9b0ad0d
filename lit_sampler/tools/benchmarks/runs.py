"""The real path, ``Trainer.predict`` with :class:`~lit_sampler.lightning.LangevinSampler`, timed
per configuration; the GPU host-sync check; the memory scaling check."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch

from ...api import engine as engine_file
from .configs import RunConfig
from ...lightning.module import LangevinSampler
from .measure import NetworkTimer, PeakMemory, current_memory, standalone_network_seconds, sync
from ...outputs.writer import ReconstructionWriter
from .workload import Prepared, datamodule


@contextlib.contextmanager
def quiet():
    """Silence Lightning's banners and the writer's summary table."""
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "pytorch_lightning.utilities.rank_zero",
                                                     "lightning.pytorch", "lightning.pytorch.utilities.rank_zero")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


class _MemoryPerBatch(pl.Callback):
    """Memory after every predict batch: ``values`` (RSS on CPU, allocated on GPU) and ``live``
    (in-use heap on CPU, allocated on GPU)."""

    def __init__(self, device: str):
        self.device = device
        self.values: list[int] = []
        self.live: list[int] = []

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        sync(self.device)
        self.values.append(current_memory(self.device))
        self.live.append(current_memory(self.device, live=True))


def build_module(prepared: Prepared, cfg: RunConfig) -> LangevinSampler:
    s = prepared.setup
    levels = cfg.levels or s.levels
    return LangevinSampler(
        checkpoint=str(prepared.checkpoint), step_size=s.step_size, steps_each=cfg.steps_each or s.steps_each,
        sigma_offset=s.num_classes - levels, noise_boost=s.noise_boost, cg_iterations=s.cg_iterations,
        final_denoise=s.final_denoise, channels_last=cfg.channels_last, compile=cfg.compile,
        compile_mode=cfg.compile_mode, batch_invariant=cfg.batch_invariant, call_size=cfg.call_size,
        cuda_graph=cfg.cuda_graph,
    )


def trainer_for(prepared: Prepared, cfg: RunConfig, output_dir: Path, callbacks=()) -> pl.Trainer:
    cuda = prepared.setup.device.startswith("cuda")
    return pl.Trainer(
        accelerator="gpu" if cuda else "cpu", devices=1, precision=cfg.precision, logger=False,
        enable_progress_bar=False, enable_model_summary=False, inference_mode=cfg.inference_mode,
        benchmark=True if cuda else None,
        callbacks=[ReconstructionWriter(output_dir=str(output_dir), figure_slices=1), *callbacks],
    )


def run_predict(prepared: Prepared, cfg: RunConfig, instrument: bool, samples: Optional[int] = None,
                memory_per_batch: bool = False) -> dict:
    """One configuration through ``Trainer.predict``; the row of measurements (and ``output_dir``)."""
    s = prepared.setup
    device = s.device
    module = build_module(prepared, cfg)
    dm = datamodule(prepared, cfg.batch_size, cfg.items, samples)
    batches = [len(b) for b in dm.predict_batches()]
    steps = module.network_evaluations  # per item: levels × T (+1 final denoise)
    shapes = Counter()
    for b in batches:
        shapes[b] += steps
    output_dir = Path(tempfile.mkdtemp(prefix=f"{cfg.name}-", dir=prepared.workdir))

    warmup = 0.0
    if cfg.compile or cfg.cuda_graph or device.startswith("cuda"):
        # compile / autotune / capture for every batch size on a one-level, one-step run first
        hp = module.hparams
        saved = hp.sigma_offset, hp.steps_each, hp.final_denoise, hp.cg_iterations
        hp.sigma_offset, hp.steps_each, hp.final_denoise, hp.cg_iterations = s.num_classes - 1, 1, False, 0
        start = time.perf_counter()
        with quiet():
            trainer_for(prepared, cfg, output_dir / "warmup").predict(
                module, datamodule=datamodule(prepared, cfg.batch_size, cfg.items, samples), return_predictions=False)
        sync(device)
        warmup = time.perf_counter() - start
        hp.sigma_offset, hp.steps_each, hp.final_denoise, hp.cg_iterations = saved

    timer = NetworkTimer(module.score, device, timed=instrument and not cfg.cuda_graph)
    module.score = timer  # predict_step hands self.score to the sampler: the instance attribute wins
    chain = {"s": 0.0}
    predict_step = module.predict_step

    def timed_predict_step(*args, **kwargs):
        start = time.perf_counter()
        out = predict_step(*args, **kwargs)  # returns CPU tensors: synchronised already
        chain["s"] += time.perf_counter() - start
        return out

    module.predict_step = timed_predict_step
    per_batch = _MemoryPerBatch(device) if memory_per_batch else None
    with quiet():
        trainer = trainer_for(prepared, cfg, output_dir / "run", [per_batch] if per_batch else [])
    with quiet(), PeakMemory(device) as memory:
        start = time.perf_counter()
        trainer.predict(module, datamodule=dm, return_predictions=False)
        sync(device)
        wall = time.perf_counter() - start
    del module.predict_step, module.score
    module.to(device)  # the strategy's teardown may have moved it back to the CPU
    row = dict(
        items=sum(batches), levels=cfg.levels or s.levels, steps_each=cfg.steps_each or s.steps_each,
        image_evals=sum(batches) * steps, network_calls=timer.calls, wall_s=wall, chain_s=chain["s"],
        warmup_s=warmup, network_s=timer.seconds if timer.timed else None,
        network_standalone_s=standalone_network_seconds(module.score, shapes, s.size, device),
        peak_mem_bytes=memory.peak, peak_mem_delta_bytes=memory.delta, peak_live_delta_bytes=memory.heap_delta,
        output_dir=str(output_dir / "run"),
    )
    if per_batch is not None:
        row["memory_after_batch"] = per_batch.values
        row["live_after_batch"] = per_batch.live
    del module, trainer
    return row


def check_sync_free(prepared: Prepared, cfg: RunConfig) -> dict:
    """GPU only: run a short chain through the real path with ``torch.cuda.set_sync_debug_mode("error")``
    switched on for the chain itself (score, data consistency, noise, update, per-level callback), so
    any host-device synchronisation inside it raises. (The CPU counterpart is in tests/test_benchmark.py.)
    The chain is the engine's call of :func:`~lit_sampler.sampling.langevin.annealed_langevin`."""
    original = engine_file.annealed_langevin

    def guarded(score, x, sigmas, **kwargs):
        levels = sigmas.tolist() if isinstance(sigmas, torch.Tensor) else list(sigmas)  # the one sync per chain
        torch.cuda.synchronize()
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            return original(score, x, levels, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode(previous)

    engine_file.annealed_langevin = guarded
    try:
        run_predict(prepared, dataclasses.replace(cfg, levels=2, steps_each=2, cuda_graph=False), instrument=False)
        return dict(sync_free=True, config=cfg.name)
    except RuntimeError as error:
        return dict(sync_free=False, config=cfg.name, error=str(error)[:500])
    finally:
        engine_file.annealed_langevin = original


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares ``y = a + b x``: (a, b, worst relative residual)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    worst = max(abs(y - (a + b * x)) / max(abs(y), 1.0) for x, y in zip(xs, ys))
    return a, b, worst


def memory_scaling(prepared: Prepared, batch_sizes: list[int], batches: int = 8, levels: int = 1) -> dict:
    """Peak memory of one batch over batch sizes, each with the network called at that size
    (``call_size`` = batch size; should be linear) and memory after each batch of a
    ``batches``-batch run (should be flat: nothing accumulates per item). On CPU the peak is the
    in-use heap (glibc ``mallinfo2``), because RSS keeps pages the allocator retains; on GPU
    ``max_memory_allocated``. Runs one level of one step per item (memory does not depend on the
    chain length)."""
    s = prepared.setup
    device = s.device
    per_item = s.files * s.slices * len(s.snrs)
    largest = max(batch_sizes)
    small = min(batch_sizes[1:] or batch_sizes)
    samples = max(1, math.ceil(max(largest, small * batches) / per_item))
    cfg = lambda b, n: RunConfig(f"memory_b{b}", batch_size=b, call_size=b, levels=levels, steps_each=1, items=n)  # noqa: E731
    run_predict(prepared, cfg(largest, largest), instrument=False, samples=samples)  # warm every allocator
    rows = [run_predict(prepared, cfg(b, b), instrument=False, samples=samples) for b in batch_sizes]
    live = [r["peak_live_delta_bytes"] for r in rows]
    metric = "max_memory_allocated" if device.startswith("cuda") else "peak in-use heap (glibc mallinfo2)"
    if any(v is None for v in live):
        live, metric = [r["peak_mem_delta_bytes"] for r in rows], "peak RSS"
    a, slope, worst = linear_fit([float(b) for b in batch_sizes], [float(p) for p in live])
    many = run_predict(prepared, cfg(small, small * batches), instrument=False, samples=samples, memory_per_batch=True)
    after, rss_after = many["live_after_batch"], many["memory_after_batch"]
    growth = max(after[1:] or after) - after[0]
    working_set = live[batch_sizes.index(small)]
    return dict(
        metric=f"{metric}, rise over the run's start (bytes)", size=s.size, batch_sizes=batch_sizes,
        peak_delta_bytes=live, peak_rss_delta_bytes=[r["peak_mem_delta_bytes"] for r in rows],
        fit_intercept_bytes=a, fit_bytes_per_item=slope, fit_worst_relative_residual=worst,
        many_items=dict(items=many["items"], batch_size=small, live_after_batch_bytes=after,
                        rss_after_batch_bytes=rss_after, growth_after_first_batch_bytes=growth,
                        working_set_one_batch_bytes=working_set),
        linear_in_batch=slope > 0 and worst < 0.15,
        flat_over_items=growth <= 0.1 * max(working_set, 1),
    )
