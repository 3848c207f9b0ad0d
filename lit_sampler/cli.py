"""``python -m lit_sampler {predict,fit} --config …``: Lightning's CLI with our defaults.

Models and data modules are chosen in the config by ``class_path`` (``LangevinSampler`` and
``FastMRIDataModule`` / ``PriorDataModule`` for ``predict``; ``ScoreMatching`` and
``TrainingDataModule`` for ``fit``). ``predict`` always writes through a
:class:`~lit_sampler.writer.ReconstructionWriter` (one is added when the config names none),
never keeps predictions in memory, and shows Langevin progress inside each batch.
"""

from __future__ import annotations

import sys
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter, TQDMProgressBar
from pytorch_lightning.cli import LightningCLI

from .progress import LangevinProgressBar
from .writer import ReconstructionWriter


class SamplerCLI(LightningCLI):
    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand == "predict":
            callbacks = trainer.callbacks
            if not any(isinstance(c, BasePredictionWriter) for c in callbacks):
                callbacks.append(ReconstructionWriter())
            for i, callback in enumerate(callbacks):
                if type(callback) is TQDMProgressBar:  # the default one: upgrade it
                    callbacks[i] = LangevinProgressBar(callback.refresh_rate, callback.process_position)
        return trainer

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if subcommand == "predict" and kwargs.get("return_predictions") is None:
            kwargs["return_predictions"] = False  # the writer saves every batch; keep nothing in RAM
        return kwargs


def main(args: list[str] | None = None) -> None:
    """Entry point of ``python -m lit_sampler`` and the ``lit-sampler`` console script."""
    SamplerCLI(
        model_class=pl.LightningModule,
        datamodule_class=pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=False,
        args=args,
        auto_configure_optimizers=False,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
