"""Denoising score matching: the loss falls, EMA weights are kept and are what sampling loads."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lit_sampler.datamodules import TrainingDataModule
from lit_sampler.lightning.training import ScoreMatching, dsm_loss
from lit_sampler.models import load_score_model
from lit_sampler.sampling.schedules import max_pairwise_distance

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def train_dir(tmp_path, phantom_file):
    folder = tmp_path / "train"
    for i in range(3):
        phantom_file(folder / f"t{i}.h5", slices=4, coils=2, size=(16, 16), seed=i)
    return folder


def test_dsm_loss_is_half_squared_residual_of_sigma_scaled_score():
    class Constant(torch.nn.Module):
        def forward(self, x, labels):
            return torch.zeros_like(x)

    x = torch.zeros(64, 2, 4, 4)
    # zero score: ½‖z‖² per item, i.e. ½·(2·4·4) on average
    loss = dsm_loss(Constant(), x, torch.tensor([2.0, 1.0]), generator=torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(16.0, rel=0.1)
    # the exact score of N(0, 0) smoothed at σ, −x̃/σ², gives zero loss
    class Exact(torch.nn.Module):
        def forward(self, x, labels):
            return -x / torch.tensor([2.0, 1.0])[labels].reshape(-1, 1, 1, 1) ** 2

    assert dsm_loss(Exact(), x, torch.tensor([2.0, 1.0])).item() == pytest.approx(0.0, abs=1e-10)


def test_training_lowers_the_loss_and_keeps_an_ema_that_sampling_loads(train_dir, tmp_path):
    torch.manual_seed(0)
    dm = TrainingDataModule(str(train_dir), target="mvue", batch_size=8, val_fraction=0.34, seed=0)
    model = ScoreMatching(ngf=4, num_classes=6, sigma_begin=None, sigma_end=0.05, lr=3e-3, ema_rate=0.99)
    trainer = pl.Trainer(accelerator="cpu", max_steps=40, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
                         limit_val_batches=0)
    dm.setup("fit")
    images = torch.cat([batch for batch in dm.train_dataloader()])
    generator = lambda: torch.Generator().manual_seed(1)

    def eval_loss():
        with torch.no_grad():
            return dsm_loss(model.score_model, images, model.sigmas, generator=generator()).item()

    trainer.fit(model, datamodule=dm)
    # technique 1 chose σ_begin from the training images
    assert model.sigmas[0].item() == pytest.approx(max_pairwise_distance(dm.all_images(2000)), rel=1e-5)
    trained = eval_loss()
    fresh = ScoreMatching(ngf=4, num_classes=6, sigma_begin=float(model.sigmas[0]), sigma_end=0.05)
    with torch.no_grad():
        untrained = dsm_loss(fresh.score_model, images, model.sigmas, generator=generator()).item()
    assert trained < 0.7 * untrained

    # EMA differs from the raw weights and is what a checkpoint gives the sampler by default
    raw = dict(model.score_model.named_parameters())
    assert any(not torch.equal(p, raw[n]) for n, p in model.ema_model.named_parameters())
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    x, labels = images[:4], torch.tensor([0, 2, 4, 5])
    with torch.no_grad():
        torch.testing.assert_close(load_score_model(path)(x, labels), model.ema_model.eval()(x, labels))
        torch.testing.assert_close(load_score_model(path, use_ema=False)(x, labels), model.score_model.eval()(x, labels))
    torch.testing.assert_close(load_score_model(path).sigmas, model.sigmas)

    # the slim export for shipping (scripts/export_checkpoint.py) keeps both weight sets, drops the optimizer
    export = __import__("runpy").run_path(str(ROOT / "scripts" / "export_checkpoint.py"))["export"]
    slim = tmp_path / "slim.ckpt"
    export(path, slim)
    assert slim.stat().st_size < 0.6 * path.stat().st_size
    with torch.no_grad():
        torch.testing.assert_close(load_score_model(slim)(x, labels), model.ema_model(x, labels), rtol=0, atol=0)
        torch.testing.assert_close(load_score_model(slim, use_ema=False)(x, labels), model.score_model(x, labels), rtol=0, atol=0)
    # --ema-only (what the demo ships): the EMA network alone, bit for bit
    ema_only = tmp_path / "ema.ckpt"
    export(path, ema_only, ema_only=True)
    assert ema_only.stat().st_size < 0.6 * slim.stat().st_size
    with torch.no_grad():
        torch.testing.assert_close(load_score_model(ema_only)(x, labels), model.ema_model(x, labels), rtol=0, atol=0)


def test_ema_update_with_warmup():
    model = ScoreMatching(ngf=4, num_classes=3, sigma_begin=1.0, sigma_end=0.1, ema_rate=0.999)
    shadow = {n: p.clone() for n, p in model.ema_model.named_parameters()}
    with torch.no_grad():
        for p in model.score_model.parameters():
            p.add_(1.0)
    model.on_train_batch_end(None, None, 0)  # global_step 0: μ_0 = min(0.999, 1/10)
    for name, p in model.ema_model.named_parameters():
        torch.testing.assert_close(p, 0.1 * shadow[name] + 0.9 * dict(model.score_model.named_parameters())[name])


def test_bad_training_settings():
    with pytest.raises(ValueError, match=r"ema_rate must lie in \[0, 1\), got 1.5"):
        ScoreMatching(ema_rate=1.5)
