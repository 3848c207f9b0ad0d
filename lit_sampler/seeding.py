"""Per-item random streams: a result depends on (seed, item identity), never on batching or rank.

Every random draw of the pipeline (mask, measurement noise, Langevin noise, initial state) takes a
``torch.Generator`` seeded from the run's ``seed`` and the item's identity, e.g.
``(file name, slice, SNR, sample index, purpose)``, through a stable hash (BLAKE2b of the keys'
text). Python's ``hash`` is salted per process, so it cannot be used here. The whole 64-bit digest
is mixed: torch's CPU generator keeps only the low 32 bits of a seed, so the run seed must not
live in the high bits.
"""

from __future__ import annotations

import hashlib

import torch


def stable_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from ``seed`` and any printable keys, identical across processes and runs."""
    text = "\x1f".join(str(k) for k in (int(seed), *keys)).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") & 0x7FFFFFFFFFFFFFFF


def seeded_generator(seed: int, *keys: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded by :func:`stable_seed`."""
    generator = torch.Generator(device=device)
    generator.manual_seed(stable_seed(seed, *keys))
    return generator
