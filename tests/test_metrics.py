"""fastMRI-convention metrics against scikit-image and a transcription of fastMRI's evaluate.py."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.image import StructuralSimilarityIndexMeasure

from lit_sampler.evaluation.metrics import (
    FastMRINMSE,
    FastMRIPSNR,
    FastMRISSIM,
    nmse,
    psnr,
    ssim,
    volume_metrics,
)


def random_pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=torch.float64)
    pred = (target + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).abs()
    return target, pred


def structured_pair(shape, seed):
    """A smooth blob with an edge, and a blurred, noisy, slightly biased copy of it."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape[-2:]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h, dtype=torch.float64),
                            torch.linspace(-1, 1, w, dtype=torch.float64), indexing="ij")
    image = torch.exp(-(xx**2 + yy**2) * 3) + 0.5 * (xx > 0.2).double() + 0.2 * torch.sin(8 * yy)
    image = 7.3 * (image - image.min())  # not in [0, 1]: data_range really matters
    target = image.expand(shape).clone()
    blurred = torch.nn.functional.avg_pool2d(target.reshape(-1, 1, h, w), 3, 1, 1, count_include_pad=False)
    pred = blurred.reshape(shape) * 1.05 + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)
    return target, pred


SHAPES = [(3, 32, 32), (2, 33, 29), (2, 7, 7), (1, 40, 9)]
PAIRS = [random_pair, structured_pair]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("make", PAIRS)
@pytest.mark.parametrize("data_range", [1.0, 255.0, "max"])
def test_ssim_and_psnr_equal_skimage(shape, make, data_range):
    target, pred = make(shape, seed=len(shape) + shape[-1])
    dr = float(target.max()) if data_range == "max" else data_range
    ours_ssim = ssim(target, pred, dr)
    ours_psnr = psnr(target, pred, dr)
    assert ours_ssim.shape == (shape[0],) and ours_ssim.dtype == torch.float64
    for b in range(shape[0]):
        t, p = target[b].numpy(), pred[b].numpy()
        assert ours_ssim[b].item() == pytest.approx(structural_similarity(t, p, data_range=dr), abs=1e-4)
        assert ours_psnr[b].item() == pytest.approx(peak_signal_noise_ratio(t, p, data_range=dr), abs=1e-4)
        # Not just 1e-4: the same float64 arithmetic up to rounding.
        assert ours_ssim[b].item() == pytest.approx(structural_similarity(t, p, data_range=dr), abs=1e-10)


def test_per_image_data_range_and_single_image():
    target, pred = structured_pair((3, 24, 30), seed=1)
    ranges = torch.tensor([1.0, 5.0, 40.0])
    batched = ssim(target, pred, ranges)
    batched_psnr = psnr(target, pred, ranges)
    for b in range(3):
        single = ssim(target[b], pred[b], float(ranges[b]))
        assert single.dim() == 0
        assert single.item() == pytest.approx(batched[b].item(), abs=1e-12)
        assert psnr(target[b], pred[b], ranges[b]).item() == pytest.approx(batched_psnr[b].item(), abs=1e-12)
    assert len(set(batched.tolist())) == 3  # the range enters C1, C2


def test_float32_inputs_are_evaluated_in_float64():
    target, pred = random_pair((2, 20, 20), seed=3)
    t32, p32 = target.float(), pred.float()
    expected = [structural_similarity(t32[b].double().numpy(), p32[b].double().numpy(), data_range=1.0)
                for b in range(2)]
    assert ssim(t32, p32, 1.0).tolist() == pytest.approx(expected, abs=1e-10)


def test_nmse_and_psnr_formulas():
    target, pred = random_pair((2, 16, 12), seed=4)
    for b in range(2):
        t, p = target[b].numpy(), pred[b].numpy()
        assert nmse(target, pred)[b].item() == pytest.approx(
            np.linalg.norm(t - p) ** 2 / np.linalg.norm(t) ** 2, rel=1e-12)
        assert psnr(target, pred, 2.0)[b].item() == pytest.approx(
            10 * np.log10(4.0 / np.mean((t - p) ** 2)), rel=1e-12)
    assert torch.isinf(psnr(target, target, 1.0)).all()
    assert torch.all(ssim(target, target, 1.0) == 1)


# ---------------------------------------------------------------- volumes (fastMRI evaluate.py)


def fastmri_evaluate(gt: np.ndarray, pred: np.ndarray, maxval=None) -> dict:
    """Transcription of fastMRI ``evaluate.py``'s psnr / ssim / nmse for one volume."""
    psnr_maxval = gt.max() if maxval is None else maxval
    ssim_maxval = gt.max() if maxval is None else maxval
    ssim_value = sum(structural_similarity(gt[i], pred[i], data_range=ssim_maxval)
                     for i in range(gt.shape[0])) / gt.shape[0]
    return {
        "psnr": peak_signal_noise_ratio(gt, pred, data_range=psnr_maxval),
        "ssim": ssim_value,
        "nmse": np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2,
    }


@pytest.mark.parametrize("make", PAIRS)
@pytest.mark.parametrize("maxval", [None, 12.5])
def test_volume_metrics_match_fastmri_evaluate(make, maxval):
    target, pred = make((4, 26, 21), seed=7)
    target = target * torch.linspace(0.5, 1.5, 4, dtype=torch.float64)[:, None, None]  # slices differ
    ours = volume_metrics(target, pred, maxval=maxval)
    expected = fastmri_evaluate(target.numpy(), pred.numpy(), maxval)
    assert set(ours) == {"psnr", "ssim", "nmse"}
    for key in expected:
        assert ours[key] == pytest.approx(float(expected[key]), abs=1e-8), key
    # The volume PSNR is not the mean of slice PSNRs (one MSE over the volume).
    dr = float(target.max()) if maxval is None else maxval
    assert ours["psnr"] != pytest.approx(psnr(target, pred, dr).mean().item(), abs=1e-6)


# ---------------------------------------------------------------- torchmetrics classes


def test_metric_accumulates_per_image_values():
    metrics = {"ssim": FastMRISSIM(), "psnr": FastMRIPSNR(), "nmse": FastMRINMSE()}
    expected = {k: [] for k in metrics}
    for step, shape in enumerate([(2, 20, 20), (3, 20, 20), (20, 20)]):
        target, pred = structured_pair(shape, seed=step)
        dr = torch.full(shape[:1], 9.0) if len(shape) == 3 else 9.0
        metrics["ssim"].update(pred, target, data_range=dr)
        metrics["psnr"].update(pred, target, data_range=dr)
        metrics["nmse"].update(pred, target)
        expected["ssim"].append(ssim(target, pred, 9.0).reshape(-1))
        expected["psnr"].append(psnr(target, pred, 9.0).reshape(-1))
        expected["nmse"].append(nmse(target, pred).reshape(-1))
    for key, metric in metrics.items():
        values = torch.cat(expected[key])
        assert values.numel() == 6
        assert torch.allclose(metric.per_image(), values, rtol=0, atol=1e-12)
        assert metric.compute().item() == pytest.approx(values.mean().item(), abs=1e-12)
    metrics["ssim"].reset()
    assert metrics["ssim"].per_image().numel() == 0


def test_metric_sync_without_and_with_a_fake_second_rank():
    target, pred = random_pair((3, 16, 16), seed=11)
    local = FastMRIPSNR()
    local.update(pred, target, data_range=1.0)
    # No process group: compute() and an explicit sync are no-ops.
    with local.sync_context():
        assert local.per_image().numel() == 3
    assert local.compute().item() == pytest.approx(psnr(target, pred, 1.0).mean().item(), abs=1e-12)

    other_values = torch.tensor([10.0, 20.0], dtype=torch.float64)

    def fake_gather(tensor, group=None):  # what gather_all_tensors returns with 2 ranks
        return [tensor, other_values]

    synced = FastMRIPSNR(dist_sync_fn=fake_gather, distributed_available_fn=lambda: True)
    synced.update(pred, target, data_range=1.0)
    mine = psnr(target, pred, 1.0)
    assert synced.compute().item() == pytest.approx(torch.cat([mine, other_values]).mean().item(), abs=1e-12)
    with synced.sync_context(dist_sync_fn=fake_gather, distributed_available=lambda: True):
        assert synced.per_image().numel() == 5
    assert synced.per_image().numel() == 3  # unsynced again: local values only


def test_torchmetrics_ssim_differs():
    target, pred = structured_pair((2, 48, 48), seed=5)
    ours = ssim(target, pred, 10.0).mean().item()
    theirs = StructuralSimilarityIndexMeasure(data_range=10.0)(pred[:, None], target[:, None]).item()
    assert abs(ours - theirs) > 1e-3  # Gaussian 11×11, population covariance, padding
    assert ours == pytest.approx(
        np.mean([structural_similarity(target[b].numpy(), pred[b].numpy(), data_range=10.0) for b in range(2)]),
        abs=1e-10,
    )


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t, p: ssim(t, p[:, :-1], 1.0),
         "target and pred must have the same shape, got (2, 10, 10) and (2, 9, 10)"),
        (lambda t, p: psnr(t, p, 0.0), "data_range must be positive and finite, got [0.0, 0.0]"),
        (lambda t, p: ssim(t, p, torch.tensor([1.0, -1.0])),
         "data_range must be positive and finite, got [1.0, -1.0]"),
        (lambda t, p: psnr(t, p, torch.ones(3)), "data_range must be a scalar or have shape [2], got shape (3,)"),
        (lambda t, p: nmse(t[None], p[None]), "expected images [B, H, W] or [H, W], got shape (1, 2, 10, 10)"),
        (lambda t, p: nmse(t.to(torch.complex64), p.to(torch.complex64)),
         "expected real magnitude images, got a complex tensor (take .abs() first)"),
        (lambda t, p: ssim(t[:, :6], p[:, :6], 1.0), "SSIM needs images of at least 7x7, got (6, 10)"),
        (lambda t, p: volume_metrics(t[0], p[0]), "expected volumes [S, H, W], got shape (10, 10)"),
        (lambda t, p: FastMRISSIM().update(p, t, data_range=-2.0),
         "data_range must be positive and finite, got [-2.0, -2.0]"),
    ],
)
def test_bad_inputs(call, message):
    target, pred = random_pair((2, 10, 10), seed=0)
    with pytest.raises(ValueError, match=re.escape(message)):
        call(target, pred)
