"""What ``predict_step`` returns for a batch and the writer stores, one shard per item: :class:`Prediction`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from ..data.items import MeasurementBatch


@dataclass
class Prediction:
    """Per-item results of one batch of ``B`` items, in data units (× the slice's scale), on the CPU.

    ``images``: name → ``[B, ...]``: ``reconstruction`` (the chain's final state, complex ``[B, H, W]``)
    or ``sample`` (prior sampling, ``[B, C, H, W]``), the baselines (``zero_filled``, ``cg_sense``,
    ``l1_wavelet``, ``total_variation``), ``target``, ``mask`` and the ``oracle_best`` diagnostic, as
    the run produced them. ``scalars``: name → ``B`` values (``acceleration``, ``scale``, ``noise_var``,
    ``oracle_best_nrmse``). ``metrics``: ``{method}_{psnr|ssim|nmse}`` → ``B`` values (NaN for a
    diverged reconstruction). ``diverged_level``: −1, or the level where the item diverged.
    ``nfe``: network evaluations spent on each item; ``start_level``: its first level;
    ``operator_applications``: applications of A or Aᴴ by its data-consistency rule.
    ``absent``: baseline → the items it was not run for (no λ at their noise level, ``cs_missing:
    skip``): their shards leave that baseline's image and metrics out.
    """

    item_key: list[str]
    fname: list[str]
    slice_num: list[int]
    sample_idx: list[int]
    snr_db: list[float]
    diverged_level: list[int]
    nfe: list[int]
    start_level: list[int]
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    scalars: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    absent: dict[str, list[int]] = field(default_factory=dict)
    operator_applications: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.item_key)

    @property
    def failed(self) -> list[int]:
        """Indices of the items whose chain diverged."""
        return [i for i, level in enumerate(self.diverged_level) if level >= 0]

    def shard(self, i: int) -> dict[str, Any]:
        """Item ``i`` as the writer stores it (:func:`lit_sampler.outputs.run_dir.load_shard` reads it back)."""
        shard: dict[str, Any] = {
            "item_key": self.item_key[i], "fname": self.fname[i], "slice_num": self.slice_num[i],
            "sample_idx": self.sample_idx[i], "snr_db": self.snr_db[i], "diverged_level": self.diverged_level[i],
        }
        left_out = [method for method, items in self.absent.items() if i in items]
        shard.update({name: value[i].clone() for name, value in self.images.items() if name not in left_out})
        shard.update({name: values[i] for name, values in self.scalars.items()})
        if self.metrics:
            shard["metrics"] = {name: values[i] for name, values in self.metrics.items()
                                if name.rpartition("_")[0] not in left_out}
        shard["nfe"] = self.nfe[i]
        if self.operator_applications:
            shard["operator_applications"] = self.operator_applications[i]
        shard["start_level"] = self.start_level[i]
        shard["status"] = "diverged" if self.diverged_level[i] >= 0 else "ok"
        return shard


def add_measurement_outputs(prediction: Prediction, batch: MeasurementBatch, estimates: dict[str, torch.Tensor],
                            oracle: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> Optional[torch.Tensor]:
    """Fill ``prediction`` with a posterior batch's images in data units (× scale, on the CPU):
    ``estimates`` (``recon`` → ``reconstruction``, and the baselines, normalised ``[B, H, W]``), the
    mask, the target, the ``oracle`` (best iterate, its NRMSE), and the per-item effective
    acceleration, scale and noise variance. Returns the target in data units when every item has one."""
    scale = batch.scale.float().reshape(-1, 1, 1)
    for name, value in estimates.items():
        prediction.images["reconstruction" if name == "recon" else name] = (value * scale).cpu()
    prediction.images["mask"] = batch.mask.float().cpu()
    sampled = torch.broadcast_to(batch.mask[:, 0].float(), (len(batch), *batch.kspace.shape[-2:]))
    prediction.scalars["acceleration"] = (sampled[0].numel() / sampled.flatten(1).sum(1)).tolist()
    prediction.scalars["scale"] = batch.scale.tolist()
    prediction.scalars["noise_var"] = (batch.noise_var.double() * batch.scale.double() ** 2).tolist()
    if oracle is not None:
        prediction.images["oracle_best"] = (oracle[0] * scale).cpu()
        prediction.scalars["oracle_best_nrmse"] = oracle[1].tolist()
    if not bool(batch.has_target.all()):
        return None
    target = batch.target * scale
    prediction.images["target"] = target.cpu()
    return target
