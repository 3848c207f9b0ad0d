#!/usr/bin/env python
"""Throughput benchmark: the real ``predict`` path against a bare reference loop.

In one process, on the same random-weight network (saved to a temporary checkpoint, so the real
``checkpoint:`` loading path runs) and the same synthetic fastMRI-format data (phantoms written to a
temporary folder), it times

* ``bare``: the reference pipeline's loop (Aali/Tamir ``annealedLangevin.py``, REFERENCE.md §1.2):
  one slice and one SNR at a time, batch 1, fp32, eager, complex state, the network fed
  ``view_as_real(x).permute(0, 3, 1, 2)``, ``x ← x + α(s − g) + sqrt(αβ)·z`` written inline with
  :class:`~lit_sampler.operators.MultiCoilMRI`, no Lightning. It uses the module's per-item noise
  streams, so on the same seeds it reproduces the module's samples (to rounding);
* the real path, ``Trainer.predict`` with :class:`~lit_sampler.module.LangevinSampler`,
  :class:`~lit_sampler.data.FastMRIDataModule` and :class:`~lit_sampler.writer.ReconstructionWriter`
  (data loading, chains, metrics, shards, volumes and figure all included in the wall time),
  for each configuration of the sweep: batch size (items per forward, items = slices × SNRs ×
  samples), precision, ``channels_last``, Trainer ``inference_mode``, ``batch_invariant``,
  ``compile`` (+ ``compile_mode``) and ``cuda_graph``.

Per configuration it reports image-evaluations per second (one image through the network once;
a slice at the reference settings costs (L − k)·T of them), items (slices) per second, ms per
image-evaluation, the fraction of the wall time spent inside the score network (measured by timing
every network call: exact on CPU; on GPU only with ``--instrument``, because the synchronisations
it needs perturb asynchronous execution; and estimated from standalone calls of the same shapes
on every device), achieved FLOP/s (FLOPs per image-evaluation counted with
``torch.utils.flop_counter`` on a meta-device copy), peak memory (RSS on CPU, sampled every 5 ms;
``max_memory_allocated`` on GPU), the speed-up over the bare loop and the seconds one slice would
take at the reference settings (``--reference-evals``, default (2311 − 1156)·3 = 3465, extrapolated
from the chain's time per image-evaluation). It then checks memory scaling (peak over batch sizes;
memory after each batch of a many-item run; ``--no-memory`` skips it) and, on GPU, that the chain
makes no host-device synchronisation (``torch.cuda.set_sync_debug_mode("error")``).

    python scripts/benchmark.py --quick                     # < 2 minutes on 2 CPU cores
    python scripts/benchmark.py --out bench/cpu             # the fuller CPU sweep
    python scripts/benchmark.py --preset reference --device cuda --peak-tflops 989   # see scripts/gpu_benchmark.sh

Writes ``benchmark.json`` and ``benchmark.md`` into ``--out``. See ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import logging
import math
import os
import platform
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from lit_sampler.data import FastMRIDataModule
from lit_sampler.data.fastmri import write_volume
from lit_sampler.data.geometry import rss
from lit_sampler.data.phantoms import demo_volume
from lit_sampler.masks import EquispacedLineMask
from lit_sampler.models import NCSNv2, NCSNv2Deeper, NCSNv2Deepest
from lit_sampler.operators import MultiCoilMRI
from lit_sampler.seeding import seeded_generator

VARIANTS = {"NCSNv2": NCSNv2, "NCSNv2Deeper": NCSNv2Deeper, "NCSNv2Deepest": NCSNv2Deepest}
REFERENCE_EVALS = (2311 - 1156) * 3  # configs/fastmri.yaml: L = 2311 levels, sigma_offset k = 1156, T = 3


# ---------------------------------------------------------------------------------------------
# What is measured
# ---------------------------------------------------------------------------------------------
@dataclass
class Setup:
    """The network and the data every configuration of one benchmark shares."""

    variant: str = "NCSNv2"
    ngf: int = 16
    size: int = 48
    coils: int = 4
    num_classes: int = 200
    sigma_begin: float = 41.0
    sigma_end: float = 0.01
    levels: int = 10  # levels run: the last ones (sigma_offset = num_classes - levels)
    steps_each: int = 2
    files: int = 1
    slices: int = 2
    snrs: list = field(default_factory=lambda: [None, 20.0])
    samples: int = 1
    step_size: float = 1e-4
    noise_boost: float = 1.0
    cg_iterations: int = 0
    final_denoise: bool = False
    device: str = "cpu"
    seed: int = 0
    reference_evals: int = REFERENCE_EVALS
    peak_tflops: Optional[float] = None  # the accelerator's dense matrix peak for the precision compared
    checkpoint: Optional[str] = None  # use these weights instead of random ones

    @property
    def items(self) -> int:
        return self.files * self.slices * len(self.snrs) * self.samples


@dataclass
class RunConfig:
    """One configuration of the sweep (``kind="bare"``: the reference loop; ``"predict"``: the real path)."""

    name: str
    kind: str = "predict"
    batch_size: int = 1
    precision: str = "32-true"
    channels_last: bool = True  # the module's defaults
    compile: bool = False
    compile_mode: Optional[str] = None
    batch_invariant: bool = True
    inference_mode: bool = True
    cuda_graph: bool = False
    levels: Optional[int] = None  # override Setup.levels (e.g. bf16 on a CPU without bf16 units)
    steps_each: Optional[int] = None
    items: Optional[int] = None  # run only the first N items

    def describe(self) -> str:
        if self.kind == "bare":
            return "bare loop (B=1, fp32, eager)"
        parts = [f"B={self.batch_size}", {"32-true": "fp32", "32": "fp32"}.get(self.precision, self.precision)]
        parts += ["channels_first"] * (not self.channels_last)
        parts += [f"compile({self.compile_mode or 'default'})"] * self.compile
        parts += ["cuda_graph"] * self.cuda_graph
        parts += ["no inference_mode"] * (not self.inference_mode)
        parts += ["batched network (batch_invariant off)"] * (not self.batch_invariant)
        return ", ".join(parts)


BOOL_KEYS = {"channels_last", "compile", "batch_invariant", "inference_mode", "cuda_graph"}
INT_KEYS = {"batch_size", "levels", "steps_each", "items"}


def parse_config(text: str) -> RunConfig:
    """``"name:key=value,key=value"`` (``bare`` alone is the reference loop), e.g.
    ``"bf16_cl:batch_size=8,precision=bf16-mixed,channels_last=1"``."""
    name, _, rest = text.partition(":")
    kwargs: dict[str, Any] = {"name": name}
    if name == "bare" or name.startswith("bare"):
        kwargs["kind"] = "bare"
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        key = key.strip()
        if key in BOOL_KEYS:
            kwargs[key] = value.strip().lower() in ("1", "true", "yes", "on")
        elif key in INT_KEYS:
            kwargs[key] = int(value)
        elif key in ("precision", "compile_mode", "kind"):
            kwargs[key] = value.strip() or None
        else:
            raise ValueError(f"unknown configuration key {key!r} in {text!r}")
    return RunConfig(**kwargs)


def default_configs(setup: Setup, quick: bool) -> list[RunConfig]:
    """The sweep: bare loop; fp32 over batch sizes with the module's defaults (channels-last,
    batch-invariant: on CPU the network is called per item); the batched network
    (``batch_invariant`` off); channels-first; no inference mode; each precision; compile."""
    big = setup.items
    cuda = setup.device.startswith("cuda")
    configs = [RunConfig("bare", kind="bare", items=min(big, 2 if quick else 4))]
    sizes = sorted({1, min(4, big), big})
    configs += [RunConfig(f"fp32_b{b}", batch_size=b) for b in sizes]
    configs += [RunConfig(f"fp32_b{b}_batched", batch_size=b, batch_invariant=False) for b in sizes if b in (1, big)]
    configs.append(RunConfig(f"fp32_b{big}_channels_first", batch_size=big, channels_last=False))
    configs.append(RunConfig(f"fp32_b{big}_batched_channels_first", batch_size=big, channels_last=False, batch_invariant=False))
    configs.append(RunConfig(f"fp32_b{big}_no_inference_mode", batch_size=big, inference_mode=False))
    if cuda:
        configs += [
            RunConfig(f"bf16_b{big}", batch_size=big, precision="bf16-mixed"),
            RunConfig(f"fp16_b{big}", batch_size=big, precision="16-mixed"),
            RunConfig(f"bf16_b{big}_channels_first", batch_size=big, precision="bf16-mixed", channels_last=False),
            RunConfig(f"bf16_b{big}_graph", batch_size=big, precision="bf16-mixed", cuda_graph=True),
        ]
        if not quick:
            configs.append(RunConfig(f"bf16_b{big}_compile", batch_size=big, precision="bf16-mixed", compile=True))
    else:
        # bf16 on a CPU without bf16 instructions is emulated (5-170x slower): one level, one step, 2 items
        configs.append(RunConfig("bf16_b2", batch_size=2, precision="bf16-mixed", levels=1, steps_each=1, items=2))
        configs.append(RunConfig("fp16_b2", batch_size=2, precision="16-mixed", levels=1, steps_each=1, items=2))
        if not quick:
            configs.append(RunConfig(f"fp32_b{big}_compile", batch_size=big, compile=True, batch_invariant=False))
    return configs


PRESETS: dict[str, dict[str, Any]] = {
    # the demo network (configs/train_demo.yaml: NCSNv2, ngf 16, 48x48, 200 levels), short chains
    "quick": dict(levels=5, steps_each=2, files=1, slices=2, snrs=[None, 20.0], samples=1),
    "cpu": dict(levels=25, steps_each=2, files=2, slices=2, snrs=[None, 20.0], samples=1),
    # configs/demo.yaml's chain (random weights unless --checkpoint demo/model.ckpt): 4 files x 2 slices x
    # SNR {20, 5} dB, 200 levels x 1 + denoise, CG-SENSE 10 iterations
    "demo": dict(levels=200, steps_each=1, files=4, slices=2, snrs=[20.0, 5.0], samples=1, final_denoise=True,
                 cg_iterations=10, noise_boost=2.0, step_size=1e-4),
    # the reference architecture: configs/fastmri.yaml (Jalal et al.'s brain prior), 20 levels x 3 steps timed
    "reference": dict(variant="NCSNv2Deepest", ngf=128, size=384, coils=16, num_classes=2311, sigma_begin=232.0,
                      sigma_end=0.0066, levels=20, steps_each=3, files=1, slices=2,
                      snrs=[None, 30.0, 20.0, 10.0], samples=1, step_size=5e-5),
}


# ---------------------------------------------------------------------------------------------
# Data, network, FLOPs
# ---------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    setup: Setup
    workdir: Path
    data_dir: Path
    checkpoint: Path
    network_kwargs: dict
    flops_per_image_eval: int


def write_phantoms(folder: Path, setup: Setup) -> None:
    """``setup.files`` phantom volumes in fastMRI layout (k-space, in-file maps, RSS target)."""
    for index in range(setup.files):
        volume = demo_volume(seeded_generator(setup.seed, "benchmark", index), setup.slices, setup.size, setup.size,
                             coils=setup.coils)
        write_volume(folder / f"bench_{index:03d}.h5", volume.kspace, sens_maps=volume.maps,
                     reconstruction_rss=rss(volume.kspace), attrs={"acquisition": "SYNTHETIC"})


def network_flops(setup: Setup) -> int:
    """FLOPs of one image-evaluation (batch 1), counted by ``FlopCounterMode`` on a meta-device copy
    (no arithmetic is done, so this is instant even for the 94 M-parameter network)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = VARIANTS[setup.variant](in_channels=2, ngf=setup.ngf, num_classes=setup.num_classes,
                                      sigma_begin=setup.sigma_begin, sigma_end=setup.sigma_end)
    net = net.to("meta")
    x = torch.empty(1, 2, setup.size, setup.size, device="meta")
    labels = torch.zeros(1, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        net(x, labels)
    return int(counter.get_total_flops())


def prepare(setup: Setup, workdir: Path) -> Prepared:
    """Write the data and a random-weight checkpoint (its ``sigmas`` buffer included) into ``workdir``."""
    data_dir = workdir / "data"
    write_phantoms(data_dir, setup)
    kwargs = dict(in_channels=2, ngf=setup.ngf, num_classes=setup.num_classes,
                  sigma_begin=setup.sigma_begin, sigma_end=setup.sigma_end)
    if setup.checkpoint:
        checkpoint = Path(setup.checkpoint)
    else:
        torch.manual_seed(setup.seed)
        network = VARIANTS[setup.variant](**kwargs)
        checkpoint = workdir / "random_weights.pt"
        torch.save(network.state_dict(), checkpoint)
        del network
    return Prepared(setup, workdir, data_dir, checkpoint, kwargs, network_flops(setup))


def datamodule(prepared: Prepared, batch_size: int, items: Optional[int] = None,
               samples: Optional[int] = None) -> FastMRIDataModule:
    s = prepared.setup
    dm = FastMRIDataModule(
        data_path=str(prepared.data_dir), snr_range=list(s.snrs), num_samples=samples or s.samples, seed=s.seed,
        batch_size=batch_size, mask=EquispacedLineMask(center_fractions=[0.08], accelerations=[4]),
    )
    dm.setup("predict")
    if items is not None and items < len(dm.items):
        dm.exclude_items(dm.items[items:])
    return dm


# ---------------------------------------------------------------------------------------------
# Instruments
# ---------------------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the high-water mark is the best there is
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


_MALLINFO2 = None


def _heap_bytes() -> Optional[int]:
    """Bytes the C heap has handed out and not taken back (glibc ``mallinfo2``: in-use arena bytes
    plus mmapped blocks); None where unavailable. Unlike RSS it falls when tensors are freed, even
    if the allocator keeps the pages, so it measures the live working set."""
    global _MALLINFO2
    if _MALLINFO2 is None:
        try:
            import ctypes

            class Info(ctypes.Structure):
                _fields_ = [(n, ctypes.c_size_t) for n in
                            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

            libc = ctypes.CDLL("libc.so.6")
            libc.mallinfo2.restype = Info
            _MALLINFO2 = libc.mallinfo2
        except (OSError, AttributeError):
            _MALLINFO2 = False
    if not _MALLINFO2:
        return None
    info = _MALLINFO2()
    return int(info.uordblks + info.hblkhd)


def current_memory(device: str, live: bool = False) -> int:
    """GPU: ``memory_allocated``; CPU: RSS, or with ``live`` the in-use heap (RSS where unavailable)."""
    if device.startswith("cuda"):
        return torch.cuda.memory_allocated()
    heap = _heap_bytes() if live else None
    return _rss_bytes() if heap is None else heap


class PeakMemory:
    """Peak memory over a block: ``max_memory_allocated`` on GPU; on CPU the RSS and the in-use heap
    (:func:`_heap_bytes`), sampled every 5 ms. ``peak`` is absolute, ``delta`` the rise over the value
    when the block began; ``heap_delta`` the rise of the in-use heap (CPU, None where unavailable)."""

    def __init__(self, device: str, interval: float = 0.005):
        self.device = device
        self.interval = interval
        self.peak = self.base = 0
        self.heap_peak = self.heap_base = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _sample(self) -> None:
        self.peak = max(self.peak, _rss_bytes())
        heap = _heap_bytes()
        if heap is not None:
            self.heap_peak = max(self.heap_peak or 0, heap)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self.peak = _rss_bytes()
            self.heap_base = self.heap_peak = _heap_bytes()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self._sample()

    @property
    def delta(self) -> int:
        return self.peak - self.base

    @property
    def heap_delta(self) -> Optional[int]:
        if self.device.startswith("cuda"):
            return self.delta
        return None if self.heap_base is None else self.heap_peak - self.heap_base


class NetworkTimer:
    """Wraps the score function: counts calls and images; with ``timed``, adds up the time inside
    (synchronising around each call on GPU, which perturbs asynchronous execution)."""

    def __init__(self, fn, device: str, timed: bool):
        self.fn, self.device, self.timed = fn, device, timed
        self.calls = self.images = 0
        self.seconds = 0.0

    def __call__(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images += x.shape[0]
        if not self.timed:
            return self.fn(x, labels)
        _sync(self.device)
        start = time.perf_counter()
        out = self.fn(x, labels)
        _sync(self.device)
        self.seconds += time.perf_counter() - start
        return out


def standalone_network_seconds(score, shapes: Counter, size: int, device: str, repeats: int = 3,
                               channels_last: bool = False) -> float:
    """Time of ``shapes`` (batch size → number of calls) network calls, estimated from ``repeats``
    timed calls per batch size on random inputs (after one untimed call); ``channels_last``: inputs
    with NHWC strides, as ``view_as_real(x).permute(0, 3, 1, 2)`` gives the bare loop."""
    total = 0.0
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.inference_mode():
        for batch, calls in shapes.items():
            x = torch.randn(batch, 2, size, size, generator=generator, device=device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            labels = torch.zeros(batch, dtype=torch.long, device=device)
            score(x, labels)
            _sync(device)
            start = time.perf_counter()
            for _ in range(repeats):
                score(x, labels)
            _sync(device)
            total += (time.perf_counter() - start) / repeats * calls
    return total


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


# ---------------------------------------------------------------------------------------------
# The bare reference loop
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def bare_reference_loop(network: torch.nn.Module, items: list[dict], sigmas: list[float], *, step_size: float,
                        steps_each: int, sigma_offset: int, noise_boost: float = 1.0, dc_boost: float = 1.0,
                        device: str = "cpu", score=None) -> dict[str, torch.Tensor]:
    """The reference ALD loop (REFERENCE.md §1.2), one item (slice, SNR, sample) at a time, batch 1,
    fp32, eager. ``items``: the data module's item dicts (the same measurements the module gets).
    Initial state and noise come from the module's per-item generators, so on the same seeds the
    result equals the module's (to rounding; the module runs the same arithmetic in the real layout).
    Returns ``item_key`` → the final image ``[H, W]`` complex, in data units (× scale).
    """
    score = score or network
    sigma_last = sigmas[-1]
    results = {}
    for item in items:
        generator = seeded_generator(int(item["seed"]), item["item_key"], "langevin", device=device)
        height, width = item["kspace"].shape[-2:]
        A = MultiCoilMRI(item["sens_maps"][None].to(device), item["mask"][None].to(device))
        y_adj = A.adjoint(item["kspace"][None].to(device))
        nu = float(item["noise_var"])
        z = torch.randn((2, height, width), generator=generator, device=device) * 0.5**0.5  # CN(0, 1)
        x = torch.complex(z[0], z[1])[None]  # [1, H, W]
        for i in range(sigma_offset, len(sigmas)):
            sigma = sigmas[i]
            alpha = step_size * (sigma / sigma_last) ** 2
            labels = torch.full((1,), i, dtype=torch.long, device=device)
            for _ in range(steps_each):
                s = score(torch.view_as_real(x).permute(0, 3, 1, 2), labels)
                s = torch.view_as_complex(s.permute(0, 2, 3, 1).contiguous())
                g = dc_boost * (A.adjoint(A.forward(x)) - y_adj) / (nu / 2 + sigma**2)
                z = torch.randn((2, height, width), generator=generator, device=device)
                x = x + alpha * (s - g) + math.sqrt(alpha * noise_boost) * torch.complex(z[0], z[1])
        results[item["item_key"]] = (x[0] * float(item["scale"])).cpu()
    return results


def run_bare(prepared: Prepared, cfg: RunConfig, instrument: bool) -> tuple[dict, dict]:
    s = prepared.setup
    device = s.device
    from lit_sampler.models import load_score_model

    network = load_score_model(str(prepared.checkpoint)).to(device).eval().requires_grad_(False)
    levels, steps = cfg.levels or s.levels, cfg.steps_each or s.steps_each
    dm = datamodule(prepared, 1, cfg.items)
    items = dm.load_items(dm.items)
    sigmas = network.sigmas.tolist()
    timer = NetworkTimer(network, device, timed=instrument)
    kwargs = dict(step_size=s.step_size, steps_each=steps, sigma_offset=len(sigmas) - levels,
                  noise_boost=s.noise_boost, device=device)
    # warm-up (allocator, oneDNN primitives / cuDNN autotuning): two network calls
    with torch.no_grad():
        warm = torch.randn(1, 2, s.size, s.size, device=device)
        for _ in range(2):
            network(warm, torch.zeros(1, dtype=torch.long, device=device))
    _sync(device)
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        outputs = bare_reference_loop(network, items, sigmas, score=timer, **kwargs)
        _sync(device)
        wall = time.perf_counter() - start
    evals = len(items) * levels * steps
    shapes = Counter({1: evals})
    row = dict(
        items=len(items), levels=levels, steps_each=steps, image_evals=evals, network_calls=timer.calls,
        wall_s=wall, chain_s=wall, warmup_s=0.0,
        network_s=timer.seconds if instrument else None,
        network_standalone_s=standalone_network_seconds(network, shapes, s.size, device, channels_last=True),
        peak_mem_bytes=memory.peak, peak_mem_delta_bytes=memory.delta, peak_live_delta_bytes=memory.heap_delta,
    )
    del network
    return row, outputs


# ---------------------------------------------------------------------------------------------
# The real predict path
# ---------------------------------------------------------------------------------------------
class _MemoryPerBatch:
    """Lightning callback: memory after every predict batch (RSS on CPU, allocated on GPU)."""

    def __init__(self, device: str):
        import pytorch_lightning as pl

        class Callback(pl.Callback):
            def __init__(inner):
                inner.values = []
                inner.live = []

            def on_predict_batch_end(inner, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
                _sync(device)
                inner.values.append(current_memory(device))
                inner.live.append(current_memory(device, live=True))

        self.callback = Callback()


def build_module(prepared: Prepared, cfg: RunConfig):
    from lit_sampler.module import LangevinSampler

    s = prepared.setup
    levels = cfg.levels or s.levels
    return LangevinSampler(
        checkpoint=str(prepared.checkpoint), step_size=s.step_size, steps_each=cfg.steps_each or s.steps_each,
        sigma_offset=s.num_classes - levels, noise_boost=s.noise_boost, cg_iterations=s.cg_iterations,
        final_denoise=s.final_denoise, channels_last=cfg.channels_last, compile=cfg.compile,
        compile_mode=cfg.compile_mode, batch_invariant=cfg.batch_invariant, cuda_graph=cfg.cuda_graph,
    )


def trainer_for(prepared: Prepared, cfg: RunConfig, output_dir: Path, callbacks=()):
    import pytorch_lightning as pl

    from lit_sampler.writer import ReconstructionWriter

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
        _sync(device)
        warmup = time.perf_counter() - start
        hp.sigma_offset, hp.steps_each, hp.final_denoise, hp.cg_iterations = saved

    timer = NetworkTimer(module._score, device, timed=instrument and not cfg.cuda_graph)
    module._score = timer  # predict_step hands self._score to the sampler: the instance attribute wins
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
        trainer = trainer_for(prepared, cfg, output_dir / "run", [per_batch.callback] if per_batch else [])
    with quiet(), PeakMemory(device) as memory:
        start = time.perf_counter()
        trainer.predict(module, datamodule=dm, return_predictions=False)
        _sync(device)
        wall = time.perf_counter() - start
    del module.predict_step, module._score
    module.to(device)  # the strategy's teardown may have moved it back to the CPU
    row = dict(
        items=sum(batches), levels=cfg.levels or s.levels, steps_each=cfg.steps_each or s.steps_each,
        image_evals=sum(batches) * steps, network_calls=timer.calls, wall_s=wall, chain_s=chain["s"],
        warmup_s=warmup, network_s=timer.seconds if timer.timed else None,
        network_standalone_s=standalone_network_seconds(module._score, shapes, s.size, device),
        peak_mem_bytes=memory.peak, peak_mem_delta_bytes=memory.delta, peak_live_delta_bytes=memory.heap_delta,
        output_dir=str(output_dir / "run"),
    )
    if per_batch is not None:
        row["memory_after_batch"] = per_batch.callback.values
        row["live_after_batch"] = per_batch.callback.live
    del module, trainer
    return row


def check_sync_free(prepared: Prepared, cfg: RunConfig) -> dict:
    """GPU only: run a short chain through the real path with ``torch.cuda.set_sync_debug_mode("error")``
    switched on for the chain itself (score, data consistency, noise, update, per-level callback), so
    any host-device synchronisation inside it raises. (The CPU counterpart is in tests/test_benchmark.py.)"""
    import lit_sampler.module as module_file

    original = module_file.annealed_langevin

    def guarded(score, x, sigmas, **kwargs):
        levels = sigmas.tolist() if isinstance(sigmas, torch.Tensor) else list(sigmas)  # the one sync per chain
        torch.cuda.synchronize()
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            return original(score, x, levels, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode(previous)

    module_file.annealed_langevin = guarded
    try:
        run_predict(prepared, dataclasses.replace(cfg, levels=2, steps_each=2, cuda_graph=False), instrument=False)
        return dict(sync_free=True, config=cfg.name)
    except RuntimeError as error:
        return dict(sync_free=False, config=cfg.name, error=str(error)[:500])
    finally:
        module_file.annealed_langevin = original


def skip_reason(cfg: RunConfig, device: str) -> Optional[str]:
    cuda = device.startswith("cuda")
    if cfg.precision == "16-mixed" and not cuda:
        return "Lightning supports 16-mixed (fp16 autocast) only on GPU"
    if cfg.cuda_graph and not cuda:
        return "cuda_graph needs a CUDA device"
    if cfg.precision == "bf16-mixed" and cuda and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16"
    return None


# ---------------------------------------------------------------------------------------------
# Derived numbers, budget checks, report
# ---------------------------------------------------------------------------------------------
def derive(row: dict, prepared: Prepared, bare: Optional[dict]) -> dict:
    s = prepared.setup
    flops = prepared.flops_per_image_eval
    evals, wall = row["image_evals"], row["wall_s"]
    row["image_evals_per_s"] = evals / wall
    row["items_per_s"] = row["items"] / wall
    row["ms_per_image_eval"] = 1e3 * wall / evals
    row["chain_ms_per_image_eval"] = 1e3 * row["chain_s"] / evals
    row["s_per_slice_at_reference"] = row["chain_ms_per_image_eval"] * s.reference_evals / 1e3
    row["flops_per_image_eval"] = flops
    row["achieved_flops_per_s"] = flops * evals / wall
    row["chain_flops_per_s"] = flops * evals / row["chain_s"]
    if s.peak_tflops:
        row["fraction_of_peak"] = row["chain_flops_per_s"] / (s.peak_tflops * 1e12)
    net = row["network_s"]
    row["frac_in_network"] = None if net is None else min(net / wall, 1.0)
    row["frac_in_network_of_chain"] = None if net is None else min(net / row["chain_s"], 1.0)
    row["frac_in_network_standalone"] = min(row["network_standalone_s"] / wall, 1.0)
    row["fixed_s"] = wall - row["chain_s"]  # setup, data loading, shards, volumes, figure
    reference = bare if bare is not None else (row if row["kind"] == "bare" else None)
    if reference is not None:
        row["speedup_vs_bare"] = reference["ms_per_image_eval"] / row["ms_per_image_eval"]
        row["speedup_vs_bare_chain"] = reference["chain_ms_per_image_eval"] / row["chain_ms_per_image_eval"]
    return row


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
    """Peak memory of one batch over batch sizes (should be linear) and memory after each batch of a
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
    cfg = lambda b, n: RunConfig(f"memory_b{b}", batch_size=b, levels=levels, steps_each=1, items=n)  # noqa: E731
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


def budget(rows: list[dict], memory: Optional[dict]) -> dict:
    done = [r for r in rows if not r.get("skipped")]
    bare = next((r for r in done if r["kind"] == "bare"), None)
    predict = [r for r in done if r["kind"] == "predict" and r["precision"] in ("32-true", "32")]
    out: dict[str, Any] = {}
    timed = [r for r in predict if r.get("frac_in_network") is not None]
    if timed:
        out["outside_network_fraction"] = {r["name"]: 1 - r["frac_in_network"] for r in timed}
        out["outside_network_fraction_of_chain"] = {r["name"]: 1 - r["frac_in_network_of_chain"] for r in timed}
        out["outside_network_below_10pct"] = all(v < 0.10 for v in out["outside_network_fraction"].values())
    if bare and predict:
        batched = [r for r in predict if r["batch_size"] > 1]
        for label, subset in (("batch_invariant", [r for r in batched if r["batch_invariant"]]),
                              ("onednn", [r for r in batched if not r["batch_invariant"]])):
            if subset:
                best = min(subset, key=lambda r: r["ms_per_image_eval"])
                out[f"best_batched_{label}"] = dict(name=best["name"], ms_per_image_eval=best["ms_per_image_eval"],
                                                    bare_ms_per_image_eval=bare["ms_per_image_eval"],
                                                    at_least_as_fast_as_bare=best["ms_per_image_eval"] <= bare["ms_per_image_eval"])
    if memory and "error" not in memory:
        out["memory_linear_in_batch"] = memory["linear_in_batch"]
        out["memory_flat_over_items"] = memory["flat_over_items"]
    return out


def _fmt(value, spec: str = ".3g", scale: float = 1.0) -> str:
    if value is None:
        return "–"
    return format(value * scale, spec)


def to_markdown(report: dict) -> str:
    setup = report["setup"]
    meta = report["meta"]
    lines = [
        f"Setup: {setup['variant']} ngf {setup['ngf']}, {setup['size']}×{setup['size']}, {setup['coils']} coils, "
        f"{setup['num_classes']} levels of which the last {setup['levels']} × T = {setup['steps_each']} timed; "
        f"{setup['items']} items ({setup['files']} files × {setup['slices']} slices × {len(setup['snrs'])} SNRs × "
        f"{setup['samples']} samples); {report['flops_per_image_eval'] / 1e9:.3g} GFLOP per image-evaluation; "
        f"device {meta['device_name']}, torch {meta['torch']}, {meta['threads']} threads, load average "
        f"{meta['loadavg_start']:.2f} → {meta['loadavg_end']:.2f}"
        + (f"; fastest of {meta['repeats']} runs per configuration." if meta.get("repeats", 1) > 1 else "."),
        "",
        "| configuration | items | img-evals/s | items/s | ms/img-eval | chain ms/img-eval | in network | "
        f"GFLOP/s | peak mem (MB) | speed-up vs bare (wall / chain) | s/slice @ {setup['reference_evals']} evals |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if r.get("skipped"):
            lines.append(f"| `{r['name']}` {r['description']} | skipped: {r['skipped']} | | | | | | | | | |")
            continue
        frac = r["frac_in_network"]
        frac_text = f"{frac:.0%}" if frac is not None else f"≈{r['frac_in_network_standalone']:.0%}*"
        mem = r["peak_mem_bytes"] / 2**20
        lines.append(
            f"| `{r['name']}` {r['description']} | {r['items']} | {_fmt(r['image_evals_per_s'])} | "
            f"{_fmt(r['items_per_s'])} | {_fmt(r['ms_per_image_eval'])} | {_fmt(r['chain_ms_per_image_eval'])} | "
            f"{frac_text} | {_fmt(r['achieved_flops_per_s'], '.3g', 1e-9)} | {mem:.0f} | "
            f"{_fmt(r.get('speedup_vs_bare'), '.2f')}× / {_fmt(r.get('speedup_vs_bare_chain'), '.2f')}× | "
            f"{_fmt(r['s_per_slice_at_reference'], '.3g')} |"
        )
    lines += [
        "",
        "*ms/img-eval*: wall time of the whole run (data loading, chains, writing, assembly) per image-evaluation; "
        "*chain*: time inside `predict_step` only (the bare loop: its loop). *in network*: time inside the "
        "score-network calls / wall time; ≈…* = estimated from standalone calls of the same shapes (no per-call "
        "timing). *GFLOP/s*: network FLOPs / wall time. *s/slice*: chain ms/img-eval × the reference's "
        "evaluations per slice (one slice at one SNR).",
    ]
    peak = [r for r in report["results"] if r.get("fraction_of_peak") is not None]
    if peak:
        best = max(peak, key=lambda r: r["fraction_of_peak"])
        lines.append(f"\nBest fraction of the {setup['peak_tflops']} TFLOP/s peak: {best['fraction_of_peak']:.1%} "
                     f"(`{best['name']}`, chain time).")
    if report.get("memory") and "error" in report["memory"]:
        lines += ["", f"Memory check failed: {report['memory']['error']}"]
    elif report.get("memory"):
        m = report["memory"]
        lines += [
            "",
            f"Memory at {m['size']}×{m['size']} ({m['metric']}): batch sizes {m['batch_sizes']} → "
            f"{', '.join(f'{v / 2**20:.1f}' for v in m['peak_delta_bytes'])} MB; fit "
            f"{m['fit_intercept_bytes'] / 2**20:.1f} MB + {m['fit_bytes_per_item'] / 2**20:.2f} MB/item "
            f"(worst residual {m['fit_worst_relative_residual']:.0%}). {m['many_items']['items']} items in batches of "
            f"{m['many_items']['batch_size']}: memory after each batch "
            f"{', '.join(f'{v / 2**20:.1f}' for v in m['many_items']['live_after_batch_bytes'])} MB "
            f"(growth after the first batch {m['many_items']['growth_after_first_batch_bytes'] / 2**20:.2f} MB; RSS "
            f"{', '.join(f'{v / 2**20:.0f}' for v in m['many_items']['rss_after_batch_bytes'])} MB).",
        ]
    if report.get("budget"):
        lines += ["", "Budget checks: " + json.dumps(report["budget"], default=lambda v: round(v, 4))]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
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


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="model/data/chain preset (default: quick with --quick, else cpu)")
    parser.add_argument("--quick", action="store_true", help="short chains, fewer configurations: < 2 min on 2 CPU cores")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--config", action="append", default=None, metavar="NAME:KEY=VALUE,...",
                        help="run these configurations instead of the default sweep (repeatable; 'bare' = reference loop)")
    for name, kind in (("variant", str), ("ngf", int), ("size", int), ("coils", int), ("num-classes", int),
                       ("levels", int), ("steps-each", int), ("files", int), ("slices", int), ("samples", int),
                       ("step-size", float), ("cg-iterations", int), ("reference-evals", int),
                       ("peak-tflops", float), ("checkpoint", str), ("seed", int)):
        parser.add_argument(f"--{name}", type=kind, default=None)
    parser.add_argument("--snrs", nargs="+", default=None, help="SNRs in dB ('inf' = noiseless)")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip the memory scaling check (peak over batch sizes; memory over many items)")
    parser.add_argument("--memory-batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--memory-size", type=int, default=None,
                        help="image size of the memory check (default: 128 on CPU, where 48x48 working sets drown "
                             "in allocator noise; the benchmark size on GPU)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run each configuration this many times and keep the fastest (noisy machines)")
    parser.add_argument("--instrument", action="store_true", help="time every network call also on GPU (perturbs)")
    parser.add_argument("--deadline-s", type=float, default=None, help="skip configurations once this much time has passed")
    parser.add_argument("--out", type=Path, default=Path("benchmark_results"))
    args = parser.parse_args(argv)

    preset = args.preset or ("quick" if args.quick else "cpu")
    values = dict(PRESETS[preset])
    for key in ("variant", "ngf", "size", "coils", "num_classes", "levels", "steps_each", "files", "slices",
                "samples", "step_size", "cg_iterations", "reference_evals", "peak_tflops", "checkpoint", "seed"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.snrs:
        values["snrs"] = [None if s.lower() in ("inf", "none", "null") else float(s) for s in args.snrs]
    values["device"] = args.device
    setup = Setup(**values)
    configs = [parse_config(text) for text in args.config] if args.config else default_configs(setup, args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"benchmark: preset {preset}, {setup.variant} ngf {setup.ngf} {setup.size}x{setup.size}, {setup.items} items, "
          f"{setup.levels} levels x {setup.steps_each} steps, device {setup.device}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory(prefix="lit_sampler_bench-") as workdir:
        report = run_benchmark(setup, configs, Path(workdir), instrument=True if args.instrument else None,
                               memory_batch_sizes=args.memory_batch_sizes if args.memory else None,
                               memory_size=args.memory_size or (None if setup.device.startswith("cuda") else 96 if args.quick else 128),
                               deadline_s=args.deadline_s, partial_path=args.out / "benchmark.partial.json",
                               keep_going=True, repeats=args.repeats)
    for row in report["results"]:
        row.pop("output_dir", None)
    report["meta"]["preset"] = preset
    report["meta"]["argv"] = sys.argv[1:] if argv is None else argv
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2, default=str))
    (args.out / "benchmark.partial.json").unlink(missing_ok=True)
    markdown = to_markdown(report)
    (args.out / "benchmark.md").write_text(markdown)
    print(markdown)
    print(f"wrote {args.out / 'benchmark.json'} and {args.out / 'benchmark.md'} in {report['meta']['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
