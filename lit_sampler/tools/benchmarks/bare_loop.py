"""The reference pipeline's loop (Aali/Tamir ``annealedLangevin.py``, REFERENCE.md §1.2) that the
real predict path is compared against: one item at a time, batch 1, fp32, eager, complex state."""

from __future__ import annotations

import math
import time
from collections import Counter

import torch

from .configs import RunConfig
from ...data.items import MeasurementBatch
from .measure import NetworkTimer, PeakMemory, standalone_network_seconds, sync
from ...models import load_score_model
from ...physics.operators import MultiCoilMRI
from ...seeding import seeded_generator
from .workload import Prepared, datamodule


@torch.no_grad()
def bare_reference_loop(network: torch.nn.Module, items: MeasurementBatch, sigmas: list[float], *, step_size: float,
                        steps_each: int, sigma_offset: int, noise_boost: float = 1.0, dc_boost: float = 1.0,
                        device: str = "cpu", score=None) -> dict[str, torch.Tensor]:
    """The reference ALD loop (REFERENCE.md §1.2), one item (slice, SNR, sample) at a time, batch 1,
    fp32, eager. ``items``: one batch of every item (the same measurements the module gets).
    Initial state and noise come from the module's per-item generators, so on the same seeds the
    result equals the module's (to rounding; the module runs the same arithmetic in the real layout).
    Returns ``item_key`` → the final image ``[H, W]`` complex, in data units (× scale).
    """
    score = score or network
    sigma_last = sigmas[-1]
    results = {}
    for index, key in enumerate(items.item_key):
        generator = seeded_generator(int(items.seed[index]), key, "langevin", device=device)
        height, width = items.kspace.shape[-2:]
        A = MultiCoilMRI(items.sens_maps[index : index + 1].to(device), items.mask[index : index + 1].to(device))
        y_adj = A.adjoint(items.kspace[index : index + 1].to(device))
        nu = float(items.noise_var[index])
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
        results[key] = (x[0] * float(items.scale[index])).cpu()
    return results


def run_bare(prepared: Prepared, cfg: RunConfig, instrument: bool) -> tuple[dict, dict]:
    """The bare loop on the checkpoint and items of ``prepared``: (row of measurements, its outputs
    ``item_key`` → image ``[H, W]`` complex)."""
    s = prepared.setup
    device = s.device
    network = load_score_model(str(prepared.checkpoint)).to(device).eval().requires_grad_(False)
    levels, steps = cfg.levels or s.levels, cfg.steps_each or s.steps_each
    dm = datamodule(prepared, 1, cfg.items)
    items = dm.collate(dm.items)
    sigmas = network.sigmas.tolist()
    timer = NetworkTimer(network, device, timed=instrument)
    kwargs = dict(step_size=s.step_size, steps_each=steps, sigma_offset=len(sigmas) - levels,
                  noise_boost=s.noise_boost, device=device)
    # warm-up (allocator, oneDNN primitives / cuDNN autotuning): two network calls
    with torch.no_grad():
        warm = torch.randn(1, 2, s.size, s.size, device=device)
        for _ in range(2):
            network(warm, torch.zeros(1, dtype=torch.long, device=device))
    sync(device)
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        outputs = bare_reference_loop(network, items, sigmas, score=timer, **kwargs)
        sync(device)
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
