"""FAULT INJECTION FOR THE RELIABILITY TESTS ONLY — not a feature; leave ``LIT_SAMPLER_FAULT`` unset.

The tests (``tests/test_reliability_*.py``) must kill a real run at exact points of a file write,
which timing alone cannot hit. Every result file is written through
:func:`lit_sampler.atomic.atomic_target`, which calls :func:`before_rename` once the temporary file
is complete and :func:`after_rename` once it is in place. With ``LIT_SAMPLER_FAULT=<action>:<n>``
the ``n``-th such write of the process (1-based; run_settings.json, item shards, volumes, tables and the figure, in
the order they are written) meets the fault:

``kill_mid_write:n``
    the temporary file is cut to half its size, then the process gets SIGKILL: what a kill in
    the middle of writing leaves on disk.
``kill_before_rename:n``
    SIGKILL with the temporary file complete, just before it would take its final name.
``kill_after_write:n``
    SIGKILL right after the file took its final name.
``enospc:n``
    the temporary file is cut to half and ``OSError(ENOSPC)`` is raised: a full disk.

Unset, each hook costs one environment lookup per file written.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

VARIABLE = "LIT_SAMPLER_FAULT"
ACTIONS = ("kill_mid_write", "kill_before_rename", "kill_after_write", "enospc")

_writes = 0


def _armed(stage: str) -> str | None:
    """The action due at this write, if the variable names one for it."""
    spec = os.environ.get(VARIABLE)
    if not spec:
        return None
    action, _, count = spec.partition(":")
    if action not in ACTIONS or not count.isdigit():
        raise ValueError(f"{VARIABLE}={spec!r}: expected one of {', '.join(ACTIONS)} followed by ':<n>'")
    if stage == "before":
        global _writes
        _writes += 1
    due = _writes == int(count)
    if action == "kill_after_write":
        return action if due and stage == "after" else None
    return action if due and stage == "before" else None


def before_rename(temporary: Path) -> None:
    action = _armed("before")
    if action in ("kill_mid_write", "enospc"):
        with open(temporary, "r+b") as handle:
            handle.truncate(os.path.getsize(temporary) // 2)
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temporary))
    if action is not None:
        os.kill(os.getpid(), signal.SIGKILL)


def after_rename(path: Path) -> None:
    if _armed("after") is not None:
        os.kill(os.getpid(), signal.SIGKILL)


def reset() -> None:
    """Restart the write count (for in-process tests)."""
    global _writes
    _writes = 0
