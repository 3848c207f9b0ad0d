"""How the sampler calls the score network: precision, memory layout, and (on CPU) calls of one fixed
batch shape, so that an item's output bits depend on its input alone.

Why: oneDNN (PyTorch's CPU convolutions) picks its convolution implementation, hence its
rounding, from the tensor shapes. Measured on the shipped build (torch 2.13.0 CPU, 1 and 2
threads, fp32 and bf16, NCSNv2 ngf 4-64 at 32-96 px, docs/reliability.md §2): a call of batch 1
rounds differently from a call of batch 2, 3, 8, 16 or 32 (which agree with each other here), and
within a call of a given shape an item's output is bit-identical at every position and with any
neighbours, because the work is split over the batch without reductions across items (convolutions
reduce over channels and the kernel window; InstanceNorm++ is per item). Calling the network only
ever with ``call_size`` items therefore makes each item's result independent of the batch size, the
item order and the number of processes, whatever batch sizes oneDNN happens to treat alike.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fixed_shape_call(network: Network, x: torch.Tensor, labels: torch.Tensor, call_size: int) -> torch.Tensor:
    """``network(x, labels)`` evaluated in calls of exactly ``call_size`` items.

    x: [B, C, H, W]; labels: [B]. Items are taken in chunks of ``call_size``; the last, partial
    chunk is padded with copies of its first item (a real input, so no special values reach the
    network) and the padding's outputs are dropped. Returns [B, ...] as one call would.
    """
    if call_size < 1:
        raise ValueError(f"call_size must be a positive number of items, got {call_size}")
    outputs = []
    for start in range(0, x.shape[0], call_size):
        chunk, chunk_labels = x[start : start + call_size], labels[start : start + call_size]
        real = chunk.shape[0]
        if real < call_size:
            pad = call_size - real
            chunk = torch.cat([chunk, chunk[:1].expand(pad, *chunk.shape[1:])])
            chunk_labels = torch.cat([chunk_labels, chunk_labels[:1].expand(pad)])
        outputs.append(network(chunk, chunk_labels)[:real])
    return torch.cat(outputs)


def call_network(network: Network, x: torch.Tensor, labels: torch.Tensor, *, autocast_dtype: Optional[torch.dtype] = None,
                 channels_last: bool = True, call_size: Optional[int] = None, cache_casts: bool = True) -> torch.Tensor:
    """s(x, i) in float32 ``[B, C, H, W]``: the network alone runs under ``autocast_dtype`` (the
    trainer's mixed precision; ``None`` = the weights' own dtype), fed channels-last when asked, in
    calls of exactly ``call_size`` items when given (:func:`fixed_shape_call`). ``cache_casts``:
    autocast's weight-cast cache (off inside a captured CUDA graph: each weight is cast once per call
    anyway)."""
    param = next(network.parameters(), None) if isinstance(network, torch.nn.Module) else None
    net_input = x if param is None or autocast_dtype is not None else x.to(param.dtype)
    layout = torch.channels_last if channels_last else torch.contiguous_format

    def call(images: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        return network(images.contiguous(memory_format=layout), levels)

    enabled = autocast_dtype is not None
    with torch.autocast(x.device.type, dtype=autocast_dtype or torch.float32, enabled=enabled, cache_enabled=cache_casts):
        out = call(net_input, labels) if call_size is None else fixed_shape_call(call, net_input, labels, call_size)
    return out.float()
