"""Files that are either absent, their old version, or complete: never half-written.

Every output of the package (item shards, volumes, tables, figures, exported checkpoints, prepared
data) is written to a temporary ``.<name>.<pid>.tmp`` beside its final name, fsynced, and renamed
over it (``os.replace`` is atomic on POSIX file systems). A process killed meanwhile leaves only
the temporary file, which :func:`lit_sampler.outputs.writer.remove_stale_temporaries` deletes on the next
run. No Lightning or h5py here: data preparation scripts use it too.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputError


def _describe_write_error(path: Path, error: OSError) -> OutputError:
    if isinstance(error, OutputError):
        return error
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(
            f"disk full: cannot write {path} ({error.strerror}); free space on the file system of "
            f"{path.parent} and run the same command again: finished items are kept",
            error.errno,
        )
    return OutputError(f"cannot write {path}: {error.strerror or error}", error.errno)


def _fsync_directory(folder: Path) -> None:
    """Make a rename durable (power loss); best effort where directories cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on success the temporary file is
    fsynced and renamed to ``path`` (``os.replace``, atomic), on any failure it is removed. So
    ``path`` is always either absent, its old version, or complete. A process killed meanwhile
    leaves only ``.<name>.<pid>.tmp``, which the next run removes. ``OSError``s come out as one
    :class:`OutputError` naming the file (and saying so when the disk is full)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise _describe_write_error(path, error) from error
        raise
    _fsync_directory(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent (or its old version) or complete."""
    with atomic_target(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
