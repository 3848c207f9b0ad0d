"""The Lightning prediction module: per-item determinism, precision, divergence, prior sampling."""

import math
import re

import pytest
import pytorch_lightning as pl
import torch

from lit_sampler.datamodules import FastMRIDataModule, PriorDataModule
from lit_sampler.lightning.module import LangevinSampler
from lit_sampler.models import NCSNv2
from lit_sampler.physics.masks import RandomLineMask
from lit_sampler.sampling.schedules import technique4_step_size


def tiny_network(levels: int = 6) -> NCSNv2:
    torch.manual_seed(0)
    return NCSNv2(in_channels=2, ngf=4, sigma_begin=2.0, sigma_end=0.05, num_classes=levels)


class ShrinkScore(torch.nn.Module):
    """Score of N(0, 1) smoothed at σ: −x / (1 + σ²); optionally NaN for one batch position."""

    def __init__(self, levels: int = 5, nan_at: int | None = None):
        super().__init__()
        self.register_buffer("sigmas", torch.logspace(0, -1, levels))
        self.nan_at = nan_at
        self.seen_dtypes: list[torch.dtype] = []
        self.conv = torch.nn.Conv2d(2, 2, 1, bias=False)
        torch.nn.init.eye_(self.conv.weight[:, :, 0, 0])

    def forward(self, x, labels):
        out = self.conv(x)
        self.seen_dtypes.append(out.dtype)
        out = -out / (1 + self.sigmas[labels].reshape(-1, 1, 1, 1) ** 2)
        if self.nan_at is not None and out.shape[0] > self.nan_at:
            out = out.clone()
            out[self.nan_at] = float("nan")
        return out


def batches(datamodule):
    datamodule.setup("predict")
    return list(datamodule.predict_dataloader())


def run_module(module, datamodule):
    outputs = {}
    for batch in batches(datamodule):
        out = module.predict_step(batch, 0)
        for i, key in enumerate(out.item_key):
            outputs[key] = out.shard(i)
    return outputs


@pytest.fixture
def two_files(tmp_path, phantom_file):
    folder = tmp_path / "data"
    phantom_file(folder / "a.h5", slices=2, coils=3, size=(24, 24))
    phantom_file(folder / "b.h5", slices=1, coils=3, size=(24, 24))
    return folder


def datamodule(folder, **kwargs):
    args = dict(snr_range=[20.0, None], mask=RandomLineMask([0.1], [3]), seed=3) | kwargs
    return FastMRIDataModule(str(folder), **args)


def test_results_do_not_depend_on_batch_composition(two_files):
    module = LangevinSampler(score_model=tiny_network(), step_size=1e-3, steps_each=2, noise_boost=2.0)
    one = run_module(module, datamodule(two_files, batch_size=1, num_samples=2))
    many = run_module(module, datamodule(two_files, batch_size=5, num_samples=2))
    assert set(one) == set(many) and len(one) == 3 * 2 * 2
    for key in one:
        assert torch.equal(one[key]["reconstruction"], many[key]["reconstruction"]), key  # bit-identical
    # two samples of one measurement differ (independent chains), their measurement does not
    a0, a1 = one["a.h5|0|snr_20dB|0"], one["a.h5|0|snr_20dB|1"]
    assert not torch.equal(a0["reconstruction"], a1["reconstruction"])
    torch.testing.assert_close(a0["zero_filled"], a1["zero_filled"])


def test_outputs_are_in_data_units(two_files):
    dm = datamodule(two_files, snr_range=[None])
    module = LangevinSampler(score_model=ShrinkScore(), step_size=1e-2, steps_each=1)
    batch = batches(dm)[0]
    out = module.predict_step(batch, 0)
    scale = batch.scale.reshape(-1, 1, 1)
    torch.testing.assert_close(out.images["zero_filled"], batch.zero_filled * scale)
    torch.testing.assert_close(out.images["target"], batch.target * scale)
    assert out.scalars["noise_var"] == [0.0] * len(out.item_key)
    assert set(out.metrics) == {f"{m}_{q}" for m in ("recon", "zero_filled", "cg_sense") for q in ("psnr", "ssim", "nmse")}


def test_network_runs_under_autocast_and_the_chain_in_float32(two_files):
    score = ShrinkScore()
    module = LangevinSampler(score_model=score, step_size=1e-2, steps_each=1, cg_iterations=0)
    trainer = pl.Trainer(accelerator="cpu", precision="bf16-mixed", logger=False, enable_progress_bar=False)
    dm = datamodule(two_files, snr_range=[20.0], slices=[0])
    trainer.predict(module, datamodule=dm, return_predictions=True)
    assert set(score.seen_dtypes) == {torch.bfloat16}
    out = module.predict_step(batches(dm)[0], 0)  # outside the trainer's autocast: float32 end to end
    assert out.images["reconstruction"].dtype == torch.complex64


def test_divergence_is_reported_per_item_and_does_not_poison_the_batch(two_files, caplog):
    # batched network calls, so that the NaN item shares every call with its neighbours
    module = LangevinSampler(score_model=ShrinkScore(nan_at=1), step_size=1e-2, steps_each=1, batch_invariant=False)
    batch = batches(datamodule(two_files, snr_range=[20.0], batch_size=3))[0]
    out = module.predict_step(batch, 0)
    assert out.diverged_level == [-1, 0, -1]
    assert torch.isfinite(out.images["reconstruction"][[0, 2]]).all()
    assert math.isnan(out.metrics["recon_psnr"][1]) and not math.isnan(out.metrics["recon_psnr"][0])
    assert "diverged: a.h5 slice 1 SNR 20 dB sample 0 at level 0" in caplog.text
    strict = LangevinSampler(score_model=ShrinkScore(nan_at=1), step_size=1e-2, steps_each=1, fail_fast=True,
                             batch_invariant=False)
    with pytest.raises(RuntimeError, match=r"diverged: a.h5 slice 1 .* Stopping: fail_fast is set."):
        strict.predict_step(batch, 0)


def test_blow_up_without_nan_is_caught():
    """A step size far too large makes the iterates explode long before they overflow."""
    module = LangevinSampler(score_model=ShrinkScore(levels=8), step_size=30.0, steps_each=3, prior_sampling=True)
    out = module.predict_step(batches(PriorDataModule(image_size=8, num_samples=2, batch_size=2))[0], 0)
    assert all(level >= 0 for level in out.diverged_level)


def test_prior_sampling_shapes_and_step_size_default():
    network = tiny_network(levels=5)
    module = LangevinSampler(score_model=network, prior_sampling=True, steps_each=2)
    gamma = float((network.sigmas[:-1].double() / network.sigmas[1:].double()).mean())
    assert module.step_size == pytest.approx(technique4_step_size(float(network.sigmas[-1]), gamma, 2))
    out = module.predict_step(batches(PriorDataModule(image_size=(12, 10), channels=2, num_samples=3, batch_size=3))[0], 0)
    assert out.images["sample"].shape == (3, 1, 12, 10) and out.images["sample"].dtype == torch.complex64
    assert module.network_evaluations == 5 * 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "give exactly one of `checkpoint` (a file) and `score_model` (a module)"),
        (dict(score_model=ShrinkScore(), sigma_offset=5), "sigma_offset must lie in [0, 4] for 5 noise levels, got 5"),
        (dict(score_model=ShrinkScore(), steps_each=0), "steps_each must be at least 1, got 0"),
        (dict(score_model=ShrinkScore(), step_size=-1.0), "step_size must be positive, got -1.0"),
        (dict(score_model=ShrinkScore(), sigmas=[3.0, 2.0]), "sigmas: 2 levels given but the network was trained with 5"),
        (dict(score_model=torch.nn.Conv2d(2, 2, 1)), "sigmas: the score model has no `sigmas` buffer; give the noise levels in the config"),
        (dict(score_model=ShrinkScore(), operator="no.such.Operator"), "operator: cannot import 'no.such.Operator'"),
    ],
)
def test_configuration_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        LangevinSampler(**kwargs)


def test_init_modes_and_norm_matched_rule(two_files):
    dm = datamodule(two_files, snr_range=[20.0], slices=[0])
    batch = batches(dm)[0]
    for init in ("reference", "noise", "zero_filled"):
        module = LangevinSampler(score_model=ShrinkScore(), step_size=1e-2, steps_each=1, init=init,
                                 data_consistency="norm_matched", sigma_offset=2)
        out = module.predict_step(batch, 0)
        assert torch.isfinite(out.images["reconstruction"]).all()
    # zero_filled init with zero noise and no steps' worth of drift starts exactly at the zero-filled image
    module = LangevinSampler(score_model=ShrinkScore(), step_size=1e-12, steps_each=1, init="zero_filled", init_sigma=0.0,
                             noise_boost=0.0, cg_iterations=0)
    out = module.predict_step(batch, 0)
    torch.testing.assert_close(out.images["reconstruction"], out.images["zero_filled"], rtol=1e-5, atol=1e-6)
