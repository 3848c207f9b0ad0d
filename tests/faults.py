"""Fault injection for the reliability tests: make the n-th result file written fail at an exact point.

The tests must kill a real run at exact points of a file write, which timing alone cannot hit.
Every result file is written through :func:`lit_sampler.atomic.atomic_target`: a complete, fsynced
temporary ``.<name>.<pid>.tmp``, then ``os.replace`` onto the final name. :func:`inject` wraps
``os.replace`` so that the ``n``-th such rename of the process (1-based; run_settings.json, item
shards, volumes, tables and the figure, in the order they are written) meets the fault first:

``kill_mid_write:n``
    the temporary file is cut to half its size, then the process gets SIGKILL: what a kill in
    the middle of writing leaves on disk.
``kill_before_rename:n``
    SIGKILL with the temporary file complete, just before it would take its final name.
``enospc:n``
    the temporary file is cut to half and ``OSError(ENOSPC)`` is raised: a full disk.

In the test process: ``with inject("enospc:1"): ...``. For a kill inside a CLI run, run this file
as the program: ``python tests/faults.py <action>:<n> predict --config …`` calls
:func:`lit_sampler.cli.main` with the fault armed (:func:`helpers.run_cli` does, given ``fault=``).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ACTIONS = ("kill_mid_write", "kill_before_rename", "enospc")
TEMPORARY = re.compile(r"^\..+\.\d+\.tmp$")  # the name atomic_target writes to


def _parse(spec: str) -> tuple[str, int]:
    action, _, count = spec.partition(":")
    if action not in ACTIONS or not count.isdigit():
        raise ValueError(f"fault {spec!r}: expected one of {', '.join(ACTIONS)} followed by ':<n>'")
    return action, int(count)


def _fail(action: str, temporary: str) -> None:
    if action in ("kill_mid_write", "enospc"):
        with open(temporary, "r+b") as handle:
            handle.truncate(os.path.getsize(temporary) // 2)
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), temporary)
    os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def inject(spec: str) -> Iterator[None]:
    """Arm the fault ``<action>:<n>`` for the atomic writes made inside the ``with`` block."""
    action, due = _parse(spec)
    real_replace = os.replace
    writes = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal writes
        if TEMPORARY.match(Path(src).name):
            writes += 1
            if writes == due:
                _fail(action, os.fspath(src))
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    try:
        yield
    finally:
        os.replace = real_replace


if __name__ == "__main__":
    from lit_sampler.cli import main

    fault = sys.argv.pop(1)  # the rest is the command line of ``python -m lit_sampler``
    with inject(fault):
        main()
