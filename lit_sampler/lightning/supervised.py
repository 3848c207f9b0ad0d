"""Supervised training of fastMRI's E2E-VarNet on the prior's own data (``python -m lit_sampler fit``
with ``configs/train_varnet.yaml``): the peer our robustness benchmark compares the prior with.

The network is ``fastmri.models.VarNet`` (Sriram et al. 2020), trained as fastMRI trains it: the
SSIM loss ``fastmri.SSIMLoss`` (7×7 windows, data range the target's maximum) between its RSS
output and the target magnitude, Adam. fastMRI's own Lightning modules need Lightning 1.x (removed
epoch-end hooks), so this module is ours; its batches are our
:class:`~lit_sampler.data.items.MeasurementBatch` (:class:`~lit_sampler.datamodules.SupervisedDataModule`).
Checkpoints hold ``varnet.*`` weights and the architecture in ``hyper_parameters``, which
:class:`~lit_sampler.models.varnet.VarNetBaseline` reads.
"""

from __future__ import annotations

import math
from typing import Optional

import pytorch_lightning as pl
import torch

from ..data.items import MeasurementBatch
from ..evaluation.metrics import psnr
from ..models.varnet import run_varnet, varnet_class, varnet_inputs
from ..physics.noise import snr_label


class VarNetTraining(pl.LightningModule):
    """E2E-VarNet trained with fastMRI's SSIM loss on simulated measurements.

    Args:
        num_cascades, chans, pools, sens_chans, sens_pools: ``fastmri.models.VarNet``'s
            architecture (fastMRI's leaderboard model: 12, 18, 4, 8, 4).
        lr, weight_decay: Adam settings.
        lr_final: if set, a cosine from ``lr`` down to ``lr_final`` over the run's optimizer steps.
    """

    def __init__(self, num_cascades: int = 8, chans: int = 12, pools: int = 3, sens_chans: int = 4,
                 sens_pools: int = 3, lr: float = 3e-4, lr_final: Optional[float] = None, weight_decay: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.varnet = varnet_class()(num_cascades=num_cascades, chans=chans, pools=pools,
                                     sens_chans=sens_chans, sens_pools=sens_pools)
        from fastmri import SSIMLoss

        self.ssim_loss = SSIMLoss()

    def forward(self, batch: MeasurementBatch) -> torch.Tensor:
        """The RSS magnitude ``[B, H, W]`` of the batch's measurements (normalised units)."""
        masked, mask, widths = varnet_inputs(batch.kspace, batch.mask)
        return run_varnet(self.varnet, masked, mask, widths)

    def _loss(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        data_range = target.flatten(1).amax(dim=1)
        return self.ssim_loss(estimate[:, None], target[:, None], data_range)

    def training_step(self, batch: MeasurementBatch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(self(batch), batch.target.abs())
        self.log("train/ssim_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch))
        return loss

    def validation_step(self, batch: MeasurementBatch, batch_idx: int) -> None:
        if batch.is_padding:
            return
        target = batch.target.abs()
        estimate = self(batch)
        self.log("val/ssim_loss", self._loss(estimate, target), on_epoch=True, batch_size=len(batch), sync_dist=True)
        values = psnr(target.double(), estimate.double(), target.flatten(1).amax(dim=1).double())
        for snr in sorted(set(batch.snr_db.tolist()), reverse=True):
            picked = values[batch.snr_db.to(values.device) == snr]
            name = snr_label(None if math.isinf(snr) else snr)
            self.log(f"val/psnr_{name}", picked.mean().float(), on_epoch=True, batch_size=len(picked), sync_dist=True)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.Adam(self.varnet.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.lr_final is None:
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1), eta_min=hp.lr_final)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
