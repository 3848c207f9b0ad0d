"""How a failure reaches the user: one line ``error: <message>`` and an exit status.

A *known* error — a bad config (unknown key, wrong type, a value our constructors reject), bad input
(:class:`~lit_sampler.errors.DataError`, :class:`~lit_sampler.errors.CheckpointError`), a run
directory that cannot take results (:class:`~lit_sampler.errors.OutputError`, disk full), a diverged
chain with ``fail_fast``, another DDP rank that stopped — becomes one line on stderr and exit status
2 (configuration or input) or 1 (at run time). jsonargparse's nested reports are boiled down to the
key, the class and the problem, with a "did you mean" for near misses. ``LIT_SAMPLER_TRACEBACK=1``
also prints the traceback. Anything else is a bug: :func:`classify` returns ``None`` and the caller
re-raises it with its traceback.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Sequence

from .errors import CheckpointError, DataError, DivergenceError, MissingLambdaError, OutputError

CONFIG_ERROR = 2  # the configuration or its inputs are wrong: fix them and run again
RUNTIME_ERROR = 1  # the run stopped (output directory, disk full, divergence with fail_fast, another rank)
TRACEBACK_VARIABLE = "LIT_SAMPLER_TRACEBACK"
PACKAGE_DIR = Path(__file__).resolve().parent
PEER_FAILURES = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL")


def chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes / contexts, outermost first."""
    found: list[BaseException] = []
    while error is not None and error not in found and len(found) < 50:
        found.append(error)
        error = error.__cause__ or error.__context__
    return found


def _raised_in_package(error: BaseException) -> bool:
    """Whether the innermost frame of ``error``'s traceback is in ``lit_sampler`` (our own check)."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return PACKAGE_DIR in Path(tb.tb_frame.f_code.co_filename).resolve().parents


def _plain_message(error: BaseException) -> str:
    """The message, without the wrapping a DataLoader worker adds (``Caught X in DataLoader worker
    process 0. Original Traceback …``), on one line."""
    text = str(error).strip()
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        text = re.sub(r"^[\w.]+(Error|Exception): ", "", last)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines) or type(error).__name__


def _did_you_mean(class_path: str, option: str) -> str:
    try:
        module_name, _, name = class_path.rpartition(".")
        cls = getattr(__import__(module_name, fromlist=[name]), name)
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
    except Exception:  # only a hint
        return ""
    close = difflib.get_close_matches(option, accepted, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _config_message(error: BaseException) -> str:
    """jsonargparse's nested report (usage, Union subtypes, the whole given value) → one line:
    ``config: model.steps_each: Expected a <class 'int'>. Got value: abc``."""
    causes = chain(error)
    keys: list[str] = []
    class_path = None
    for exc in causes:
        text = str(exc).strip()
        key = re.match(r'Parser key "([^"]+)"', text)
        if key and key.group(1) not in keys:
            keys.append(key.group(1))
        found = re.search(r"Problem with given class_path '([^']+)'", text)
        class_path = class_path or (found.group(1) if found else None)
    inner = [line.strip() for line in str(causes[-1]).strip().splitlines() if line.strip()]
    inner = [line for line in inner if not re.match(r"^(Parser key \"[^\"]+\"|Problem with given class_path '[^']+'):$", line)]
    detail = " ".join(inner[:4]) or type(causes[-1]).__name__
    option = re.search(r"Option '([^']+)' is not accepted", detail)
    if option and class_path:
        detail += _did_you_mean(class_path, option.group(1).rpartition(".")[2])
    missing = re.search(r"module '([\w.]+)' has no attribute '(\w+)'", detail)
    if missing:
        try:
            names = dir(__import__(missing.group(1), fromlist=["_"]))
            close = difflib.get_close_matches(missing.group(2), names, n=1)
            detail += f" (did you mean '{missing.group(1)}.{close[0]}'?)" if close else ""
        except Exception:  # only a hint
            pass
    where = "--config" if keys == ["config"] else ".".join(keys)
    if class_path and where:
        where += f" ({class_path.rpartition('.')[2]})"
    return f"config: {where}: {detail}" if where else f"config: {detail}"


def _distributed_failure(error: BaseException) -> bool:
    """A collective failed because another process of the DDP run stopped."""
    try:
        import torch.distributed as dist

        if isinstance(error, getattr(dist, "DistError", ())):
            return True
    except ImportError:
        pass
    text = str(error)
    return isinstance(error, RuntimeError) and any(marker in text for marker in PEER_FAILURES)


def classify(error: BaseException) -> tuple[int, str] | None:
    """``(exit status, one-line message)`` for a known error, ``None`` for a bug."""
    for exc in chain(error):
        if isinstance(exc, argparse.ArgumentError) or type(exc).__module__.startswith("jsonargparse"):
            return CONFIG_ERROR, _config_message(exc)
        if isinstance(exc, (DataError, CheckpointError)):
            return CONFIG_ERROR, _plain_message(exc)
        if isinstance(exc, (ValueError, TypeError, ImportError)) and _raised_in_package(exc):
            return CONFIG_ERROR, _plain_message(exc)
        if isinstance(exc, (OutputError, DivergenceError)):
            return RUNTIME_ERROR, _plain_message(exc)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is not None:
            return RUNTIME_ERROR, f"{exc.filename}: {exc.strerror}"
        if _distributed_failure(exc):
            seen = [marker for marker in PEER_FAILURES if marker in str(exc)]
            return RUNTIME_ERROR, (
                "another process of this DDP run stopped (its error is printed above), so a collective "
                f"failed here ({seen[0] if seen else type(exc).__name__}); finished items are kept"
            )
    return None


def _rank() -> int:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
    except Exception:
        pass
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)) or 0)


def report(error: BaseException, status: int, message: str, args: Sequence[str]) -> None:
    """Print the one line of a known error (naming the YAML file of a syntax error, the rank under
    DDP; a missing λ with the tuning command for this very command line)."""
    missing = next((e for e in chain(error) if isinstance(e, MissingLambdaError)), None)
    if missing is not None:
        from .evaluation.tuning import missing_lambda_message  # (the tuning command is the tuning module's business)

        message = missing_lambda_message(missing.missing, missing.given, args)
    if "<unicode string>" in message:  # a YAML syntax error: name the file
        configs = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--config"]
        configs += [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
        if len(configs) == 1:
            message = message.replace('"<unicode string>"', configs[0])
    if os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0"):
        traceback.print_exception(error)
    rank = _rank()
    prefix = f"[rank {rank}] " if rank else ""
    hint = " (see --help)" if status == CONFIG_ERROR and message.startswith("config:") else ""
    print(f"error: {prefix}{message}{hint}", file=sys.stderr, flush=True)
