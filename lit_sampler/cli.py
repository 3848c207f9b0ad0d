"""``python -m lit_sampler {predict,fit,frontier} --config …``: Lightning's CLI with our defaults.

``frontier`` takes a ``predict`` config and runs a grid of schedules on its data
(:mod:`lit_sampler.frontier`).

Models and data modules are chosen in the config by ``class_path`` (``LangevinSampler`` and
``FastMRIDataModule`` / ``PriorDataModule`` for ``predict``; ``ScoreMatching`` and
``TrainingDataModule`` for ``fit``). ``predict`` always writes through a
:class:`~lit_sampler.writer.ReconstructionWriter` (one is added when the config names none),
never keeps predictions in memory, and shows Langevin progress inside each batch.

Errors: a *known* error — a bad config (unknown key, wrong type, a value our constructors
reject), bad input (:class:`~lit_sampler.data.DataError`, :class:`~lit_sampler.models.CheckpointError`),
a run directory that cannot take results (:class:`~lit_sampler.writer.OutputError`, disk full),
a diverged chain with ``fail_fast`` — ends the process with one line ``error: <message>`` on
stderr and exit status 2 (configuration or input) or 1 (at run time). Set
``LIT_SAMPLER_TRACEBACK=1`` to also get the traceback. Anything else is a bug and keeps Python's
traceback. Under DDP a failing rank also stops the other ranks (see ``docs/reliability.md``).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import os
import re
import signal
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter, TQDMProgressBar
from pytorch_lightning.cli import LightningCLI

from .interrupts import RunInterrupted, StopOnSignal
from .progress import LangevinProgressBar
from .writer import OutputError, ReconstructionWriter

CONFIG_ERROR = 2  # the configuration or its inputs are wrong: fix them and run again
RUNTIME_ERROR = 1  # the run stopped (output directory, disk full, divergence with fail_fast, another rank)
TRACEBACK_VARIABLE = "LIT_SAMPLER_TRACEBACK"
PACKAGE_DIR = Path(__file__).resolve().parent
PEER_FAILURES = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL")


class SamplerCLI(LightningCLI):
    trainer_in_use: pl.Trainer | None = None  # the last trainer built (its launcher owns the DDP children)

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand in ("predict", None):  # (None: built without running, by `frontier`)
            callbacks = trainer.callbacks
            if not any(isinstance(c, BasePredictionWriter) for c in callbacks):
                callbacks.append(ReconstructionWriter())
            for i, callback in enumerate(callbacks):
                if type(callback) is TQDMProgressBar:  # the default one: upgrade it
                    callbacks[i] = LangevinProgressBar(callback.refresh_rate, callback.process_position)
            if not any(isinstance(c, StopOnSignal) for c in callbacks):
                callbacks.append(StopOnSignal())
        SamplerCLI.trainer_in_use = trainer
        return trainer

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if subcommand == "predict" and kwargs.get("return_predictions") is None:
            kwargs["return_predictions"] = False  # the writer saves every batch; keep nothing in RAM
        return kwargs


# ---------------------------------------------------------------------------------------- errors
def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes / contexts, outermost first."""
    chain: list[BaseException] = []
    while error is not None and error not in chain and len(chain) < 50:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


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
    chain = _chain(error)
    keys: list[str] = []
    class_path = None
    for exc in chain:
        text = str(exc).strip()
        key = re.match(r'Parser key "([^"]+)"', text)
        if key and key.group(1) not in keys:
            keys.append(key.group(1))
        found = re.search(r"Problem with given class_path '([^']+)'", text)
        class_path = class_path or (found.group(1) if found else None)
    inner = [line.strip() for line in str(chain[-1]).strip().splitlines() if line.strip()]
    inner = [line for line in inner if not re.match(r"^(Parser key \"[^\"]+\"|Problem with given class_path '[^']+'):$", line)]
    detail = " ".join(inner[:4]) or type(chain[-1]).__name__
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
    from .data.fastmri import DataError
    from .models import CheckpointError
    from .module import DivergenceError

    for exc in _chain(error):
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


def _stop_other_ranks() -> None:
    """Rank 0 launched the other DDP ranks: stop them (they may be waiting in a collective)."""
    trainer = SamplerCLI.trainer_in_use
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    for process in getattr(launcher, "procs", []) or []:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)


def build_cli(args: list[str] | None, run: bool = True) -> SamplerCLI:
    """Our LightningCLI over ``args``; ``run=False`` only instantiates ``model``, ``datamodule`` and
    ``trainer`` from a ``predict``-style config (``frontier`` and the scripts use that)."""
    return SamplerCLI(
        model_class=pl.LightningModule,
        datamodule_class=pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=False,
        args=args,
        run=run,
        auto_configure_optimizers=False,
        parser_kwargs={"exit_on_error": False},  # errors go to main(), reported in one line
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of ``python -m lit_sampler`` and the ``lit-sampler`` console script."""
    SamplerCLI.trainer_in_use = None
    # Lightning's own use of a deprecated torch API; nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    given = sys.argv[1:] if args is None else list(args)
    try:
        if given[:1] == ["frontier"]:
            from .frontier import run_frontier

            run_frontier(given[1:], lambda extra: build_cli(extra, run=False))
        else:
            build_cli(args)
    except Exception as error:
        interrupted = next((e for e in _chain(error) if isinstance(e, RunInterrupted)), None)
        if interrupted is not None:
            print(f"interrupted: {interrupted}", file=sys.stderr, flush=True)
            _stop_other_ranks()
            sys.exit(interrupted.exit_code)
        known = classify(error)
        if known is None:
            _stop_other_ranks()
            raise  # a bug: keep the traceback
        status, message = known
        if "<unicode string>" in message:  # a YAML syntax error: name the file
            configs = [given[i + 1] for i, a in enumerate(given[:-1]) if a == "--config"]
            configs += [a.split("=", 1)[1] for a in given if a.startswith("--config=")]
            if len(configs) == 1:
                message = message.replace('"<unicode string>"', configs[0])
        if os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0"):
            traceback.print_exc()
        rank = _rank()
        prefix = f"[rank {rank}] " if rank else ""
        hint = " (see --help)" if status == CONFIG_ERROR and message.startswith("config:") else ""
        print(f"error: {prefix}{message}{hint}", file=sys.stderr, flush=True)
        _stop_other_ranks()
        sys.exit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
