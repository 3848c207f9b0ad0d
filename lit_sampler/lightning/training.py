"""Denoising score matching for NCSNv2 networks (``python -m lit_sampler fit``).

Song & Ermon 2020 ("Improved Techniques for Training Score-Based Generative Models"), as the
reference's training code runs it: levels i ~ U{0, …, L−1}, x̃ = x + σ_i z, and the loss

    ℓ = ½ ‖σ_i s_θ(x̃, i) + z‖²        (anneal power 2: ½‖s − (−z/σ)‖² weighted by σ²)

summed over pixels and averaged over the batch, Adam (lr 1e-4, eps 1e-3) and an exponential
moving average of the weights (rate 0.999) that is what sampling uses.

The σ schedule is geometric; unset ends come from the data: σ_begin by technique 1 (the largest
pairwise distance of training images), and with ``sigma_end`` unset, the ratio by technique 2.
"""

from __future__ import annotations

import copy
import logging
from typing import Literal

import pytorch_lightning as pl
import torch

from ..models import VARIANTS
from ..sampling.schedules import geometric_sigmas, max_pairwise_distance, sigma_ratio_for_dimension

log = logging.getLogger(__name__)


def dsm_loss(score_model: torch.nn.Module, x: torch.Tensor, sigmas: torch.Tensor, generator=None) -> torch.Tensor:
    """Denoising score matching loss (anneal power 2) of a batch ``x`` ``[B, C, H, W]``."""
    labels = torch.randint(0, len(sigmas), (x.shape[0],), device=x.device, generator=generator)
    sigma = sigmas[labels].reshape(-1, *([1] * (x.dim() - 1)))
    z = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
    residual = sigma * score_model(x + sigma * z, labels) + z
    return 0.5 * residual.square().flatten(1).sum(dim=1).mean()


class ScoreMatching(pl.LightningModule):
    """Train an NCSNv2 score network by denoising score matching, with EMA weights.

    Args:
        variant: ``NCSNv2`` (stride 2), ``NCSNv2Deeper`` (4) or ``NCSNv2Deepest`` (8, the MRI prior of
            Jalal et al.).
        ngf: base channel count.
        in_channels: image channels (2 = one complex image).
        num_classes: number of noise levels L.
        sigma_begin: σ_0; ``None`` = technique 1 on up to ``technique1_images`` training images.
        sigma_end: σ_{L−1}; ``None`` = σ_0 · r^(L−1) with r from technique 2.
        lr, adam_eps, weight_decay: Adam settings (the reference: 1e-4, 1e-3, 0).
        lr_final: if set, the learning rate follows a cosine from ``lr`` down to ``lr_final`` over
            the run's optimizer steps (``trainer.max_steps`` or epochs); ``None`` keeps it constant.
        ema_rate: μ of the EMA shadow θ̄ ← μ θ̄ + (1 − μ) θ.
        ema_warmup: use μ_n = min(μ, (1 + n)/(10 + n)) at optimizer step n, so the shadow forgets
            the random initialisation within the first steps (with a plain μ = 0.999 half of the
            initial weights would still be in the shadow after 700 steps; the reference trains
            ~100k steps, where it does not matter).
        input_map: the network's h = 2x − 1 input map (on in the reference MRI checkpoints).
        technique1_images: images used to estimate σ_begin.
        log_images: images shown in TensorBoard (noisy / denoised / clean) at each validation.
    """

    def __init__(
        self,
        variant: Literal["NCSNv2", "NCSNv2Deeper", "NCSNv2Deepest"] = "NCSNv2",
        ngf: int = 32,
        in_channels: int = 2,
        num_classes: int = 200,
        sigma_begin: float | None = None,
        sigma_end: float | None = 0.01,
        lr: float = 1e-4,
        lr_final: float | None = None,
        adam_eps: float = 1e-3,
        weight_decay: float = 0.0,
        ema_rate: float = 0.999,
        ema_warmup: bool = True,
        input_map: bool = True,
        technique1_images: int = 2000,
        log_images: int = 8,
    ):
        super().__init__()
        self.save_hyperparameters()
        if not 0.0 <= ema_rate < 1.0:
            raise ValueError(f"ema_rate must lie in [0, 1), got {ema_rate}")
        # provisional levels; setup() replaces them when σ_begin comes from the data
        provisional = geometric_sigmas(sigma_begin or 1.0, sigma_end or 1e-2, num_classes)
        self.score_model = VARIANTS[variant](in_channels=in_channels, ngf=ngf, sigmas=provisional.tolist(), input_map=input_map)
        self.ema_model = copy.deepcopy(self.score_model).requires_grad_(False)
        self._sigmas_ready = sigma_begin is not None and sigma_end is not None

    # ------------------------------------------------------------------ σ schedule
    def setup(self, stage: str) -> None:
        if stage != "fit" or self._sigmas_ready:
            return
        hp = self.hparams
        sigma_begin = hp.sigma_begin
        if sigma_begin is None:
            images = self.trainer.datamodule.all_images(hp.technique1_images)
            sigma_begin = max_pairwise_distance(images)
            log.info("technique 1: sigma_begin = %.4g from %d images", sigma_begin, len(images))
        sigma_end = hp.sigma_end
        if sigma_end is None:
            shape = self.trainer.datamodule.image_shape()
            dims = hp.in_channels * shape[-2] * shape[-1]
            sigma_end = sigma_begin * sigma_ratio_for_dimension(dims) ** (hp.num_classes - 1)
        self.set_sigmas(geometric_sigmas(sigma_begin, sigma_end, hp.num_classes))

    def set_sigmas(self, sigmas: torch.Tensor) -> None:
        """Install the noise levels in the network and its EMA copy (saved with the checkpoint)."""
        for model in (self.score_model, self.ema_model):
            model.sigmas.copy_(sigmas.to(model.sigmas))
        self.hparams.sigma_begin = float(sigmas[0])
        self.hparams.sigma_end = float(sigmas[-1])
        self._sigmas_ready = True

    @property
    def sigmas(self) -> torch.Tensor:
        return self.score_model.sigmas

    # ------------------------------------------------------------------ training
    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = dsm_loss(self.score_model, batch, self.sigmas)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch.shape[0])
        self.log("train/loss_per_pixel", loss / batch[0].numel(), on_step=False, on_epoch=True, batch_size=batch.shape[0])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        rate = self.hparams.ema_rate
        if self.hparams.ema_warmup:
            step = self.global_step
            rate = min(rate, (1 + step) / (10 + step))
        with torch.no_grad():
            for shadow, param in zip(self.ema_model.parameters(), self.score_model.parameters()):
                shadow.lerp_(param.detach(), 1.0 - rate)

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        # fixed draws per batch, so validation curves compare like with like across epochs
        generator = torch.Generator(device=batch.device).manual_seed(batch_idx)
        for name, model in (("raw", self.score_model), ("ema", self.ema_model)):
            loss = dsm_loss(model, batch, self.sigmas, generator=generator)
            self.log(f"val/loss_{name}", loss, on_epoch=True, batch_size=batch.shape[0], sync_dist=True)
        if batch_idx == 0:
            self._log_denoised(batch)

    def _log_denoised(self, batch: torch.Tensor) -> None:
        """Noisy | Tweedie-denoised (x̃ + σ² s) | clean magnitudes at a few levels, EMA weights."""
        experiment = getattr(self.logger, "experiment", None)
        if experiment is None or not hasattr(experiment, "add_image") or not self.trainer.is_global_zero:
            return
        x = batch[: self.hparams.log_images]
        levels = torch.linspace(0, len(self.sigmas) - 1, x.shape[0]).round().long().to(x.device)
        sigma = self.sigmas[levels].reshape(-1, 1, 1, 1)
        generator = torch.Generator(device=x.device).manual_seed(0)
        noisy = x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        denoised = noisy + sigma**2 * self.ema_model(noisy, levels)

        def magnitude(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(t.shape[0], -1, 2, *t.shape[-2:]).square().sum(2).sqrt()[:, 0]

        rows = torch.cat([magnitude(noisy), magnitude(denoised), magnitude(x)], dim=-1)
        scale = magnitude(x).flatten(1).amax(dim=1).clamp_min(1e-8).reshape(-1, 1, 1)
        grid = (rows / scale).clamp(0, 1).reshape(-1, rows.shape[-1])
        experiment.add_image("val/noisy_denoised_clean", grid[None].float().cpu(), global_step=self.global_step)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.Adam(
            self.score_model.parameters(), lr=hp.lr, betas=(0.9, 0.999), eps=hp.adam_eps, weight_decay=hp.weight_decay
        )
        if hp.lr_final is None:
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1), eta_min=hp.lr_final)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
