"""Instruments: device synchronisation, memory (RSS, in-use heap, CUDA allocator; peaks sampled
over a block), a counting/timing wrapper for the score network and standalone network timing."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from typing import Optional

import torch


def sync(device: str) -> None:
    """Wait for the GPU (a no-op on CPU), so that a clock read after it covers the queued work."""
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
        sync(self.device)
        start = time.perf_counter()
        out = self.fn(x, labels)
        sync(self.device)
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
            sync(device)
            start = time.perf_counter()
            for _ in range(repeats):
                score(x, labels)
            sync(device)
            total += (time.perf_counter() - start) / repeats * calls
    return total
