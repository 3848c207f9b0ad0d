"""``python -m lit_sampler {predict,fit,frontier,calibrate} --config …``: Lightning's CLI with our defaults.

``frontier`` takes a ``predict`` config and runs a grid of schedules on its data
(:mod:`lit_sampler.tools.frontier`); ``calibrate`` runs a ``predict`` config on held-out data and fits the
error bars' scale (:mod:`lit_sampler.tools.calibrate`).

Models and data modules are chosen in the config by ``class_path`` (``LangevinSampler`` and
``FastMRIDataModule`` / ``PriorDataModule`` for ``predict``; ``ScoreMatching`` and
``TrainingDataModule`` for ``fit``). ``predict`` always writes through a
:class:`~lit_sampler.outputs.ReconstructionWriter` (one is added when the config names none),
never keeps predictions in memory, and shows Langevin progress inside each batch.

Errors: a known error ends the process with one line ``error: <message>`` and exit status 2 or 1
(:mod:`lit_sampler.failures`); anything else is a bug and keeps Python's traceback. Under DDP a
failing rank also stops the other ranks (see ``docs/reliability.md``).
"""

from __future__ import annotations

import logging
import signal
import sys
import warnings
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter, TQDMProgressBar
from pytorch_lightning.cli import LightningCLI

from .errors import RunInterrupted
from .failures import chain, classify, report
from .lightning.interrupts import StopOnSignal
from .lightning.progress import LangevinProgressBar
from .outputs.writer import ReconstructionWriter


class SamplerTrainer(pl.Trainer):
    """Lightning's Trainer, except that ``predict`` keeps no predictions by default: the writer saves
    every batch, so holding them all in RAM would only cost memory (the CLI reads this default)."""

    def predict(self, model=None, dataloaders=None, datamodule=None, return_predictions: bool | None = False,
                ckpt_path: str | None = None, weights_only: bool | None = None):
        return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only)


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




class _NoLightningTips(logging.Filter):
    """Drops Lightning's promotional "💡 Tip: … litlogger / litmodels" lines. Lightning logs them
    through its rank-zero logger at Trainer construction, with no setting to turn them off
    (Lightning-AI/pytorch-lightning#21294); its other messages pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def silence_lightning_tips() -> None:
    """Install :class:`_NoLightningTips` on the logger Lightning's ``rank_zero_info`` uses (once)."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _NoLightningTips) for f in logger.filters):
        logger.addFilter(_NoLightningTips())


def _stop_other_ranks() -> None:
    """Rank 0 launched the other DDP ranks: stop them (they may be waiting in a collective)."""
    trainer = SamplerCLI.trainer_in_use
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    if launcher is not None:
        launcher.kill(signal.SIGKILL)  # the launcher's own API: a no-op on ranks without children


def build_cli(args: list[str] | None, run: bool = True) -> SamplerCLI:
    """Our LightningCLI over ``args``; ``run=False`` only instantiates ``model``, ``datamodule`` and
    ``trainer`` from a ``predict``-style config (``frontier`` and the scripts use that)."""
    silence_lightning_tips()
    return SamplerCLI(
        model_class=pl.LightningModule,
        trainer_class=SamplerTrainer,
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
            from .tools.frontier import run_frontier

            run_frontier(given[1:], lambda extra: build_cli(extra, run=False))
        elif given[:1] == ["calibrate"]:
            from .tools.calibrate import run_calibrate

            run_calibrate(given[1:], lambda extra: build_cli(extra, run=False))
        else:
            build_cli(args)
    except Exception as error:
        interrupted = next((e for e in chain(error) if isinstance(e, RunInterrupted)), None)
        if interrupted is not None:
            print(f"interrupted: {interrupted}", file=sys.stderr, flush=True)
            _stop_other_ranks()
            sys.exit(interrupted.exit_code)
        known = classify(error)
        if known is None:
            _stop_other_ranks()
            raise  # a bug: keep the traceback
        report(error, *known, given)
        _stop_other_ranks()
        sys.exit(known[0])


if __name__ == "__main__":
    main(sys.argv[1:])
