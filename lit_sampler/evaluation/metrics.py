"""Image-quality metrics with fastMRI conventions: PSNR, SSIM, NMSE on real magnitude images.

Definitions (``facebookresearch/fastMRI`` ``fastmri/evaluate.py``, which calls scikit-image):

* ``PSNR = 10 · log10(data_range² / MSE)`` (``skimage.metrics.peak_signal_noise_ratio``).
* ``NMSE = ‖gt − pred‖² / ‖gt‖²``.
* ``SSIM`` = ``skimage.metrics.structural_similarity`` with its defaults: a 7×7 *uniform* window,
  K1 = 0.01, K2 = 0.03, C1 = (K1·L)², C2 = (K2·L)² with ``L = data_range`` (explicit: skimage
  requires it for float images), *sample* (co)variances (× NP/(NP − 1), NP = 49), and the mean of
  the SSIM map over the interior only: the 3-pixel border ((7 − 1) // 2) is cropped, which is the
  same as a 'valid' 7×7 filter. ``fastmri.SSIMLoss`` computes the same quantity.

This SSIM is **not** torchmetrics' ``StructuralSimilarityIndexMeasure``: that one defaults to an
11×11 Gaussian window (σ = 1.5), population (co)variances, reflect padding of the image instead
of cropping the border, and ``data_range=None`` meaning the joint range of *both* images; its
numbers differ from the fastMRI leaderboard's (tests check that they differ). Hence our own.

Volume-level numbers (:func:`volume_metrics`) follow ``evaluate.py`` exactly: for a volume
``[S, H, W]``, PSNR uses the MSE over the whole volume and ``data_range = maxval or gt.max()``,
SSIM is the mean over slices with ``data_range = maxval or gt.max()``, NMSE is over the volume.
fastMRI also centre-crops both volumes to ``(W, W)`` (``W = target.shape[-1]``) before this; that
crop is the caller's job.

The functions accept ``[B, H, W]`` (returning ``[B]``) or ``[H, W]`` (returning a 0-d tensor) and
compute in float64. The :class:`torchmetrics.Metric` classes (:class:`FastMRIPSNR`,
:class:`FastMRISSIM`, :class:`FastMRINMSE`) store the per-image values (``cat`` across ranks)
and report their mean, i.e. the mean of per-image PSNR, *not* torchmetrics' PSNR of one global
MSE.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

__all__ = [
    "psnr",
    "nmse",
    "ssim",
    "volume_metrics",
    "FastMRIPSNR",
    "FastMRISSIM",
    "FastMRINMSE",
    "PerImageValues",
    "QUALITY",
    "item_quality",
    "quality_metrics",
]

QUALITY = ("psnr", "ssim", "nmse")

SSIM_WIN_SIZE = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_images(target: torch.Tensor, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate and return float64 ``[B, H, W]`` views and whether the input was a single image."""
    if target.shape != pred.shape:
        raise ValueError(
            f"target and pred must have the same shape, got {tuple(target.shape)} and {tuple(pred.shape)}"
        )
    if target.dim() not in (2, 3):
        raise ValueError(f"expected images [B, H, W] or [H, W], got shape {tuple(target.shape)}")
    if target.is_complex() or pred.is_complex():
        raise ValueError("expected real magnitude images, got a complex tensor (take .abs() first)")
    single = target.dim() == 2
    target, pred = target.to(torch.float64), pred.to(torch.float64)
    if single:
        target, pred = target[None], pred[None]
    return target, pred, single


def _check_data_range(data_range: float | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """``data_range`` as float64 ``[B]``; a scalar applies to every image."""
    dr = torch.as_tensor(data_range, dtype=torch.float64, device=device)
    if dr.dim() == 0:
        dr = dr.expand(batch)
    elif dr.shape != (batch,):
        raise ValueError(
            f"data_range must be a scalar or have shape [{batch}], got shape {tuple(dr.shape)}"
        )
    if not bool(torch.all(dr > 0)) or not bool(torch.all(torch.isfinite(dr))):
        raise ValueError(f"data_range must be positive and finite, got {dr.tolist()}")
    return dr


def _unbatch(values: torch.Tensor, single: bool) -> torch.Tensor:
    return values[0] if single else values


def psnr(target: torch.Tensor, pred: torch.Tensor, data_range: float | torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, per image: ``10 log10(data_range² / mean((gt − pred)²))``.

    Implements ``skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=...)``.

    Args:
        target: ground truth ``[B, H, W]`` or ``[H, W]``, real.
        pred: reconstruction, same shape.
        data_range: ``L`` of the formula, scalar or ``[B]`` (fastMRI: the volume maximum).

    Returns:
        float64 ``[B]`` (0-d for a single image); ``inf`` where the images are identical.
    """
    target, pred, single = _check_images(target, pred)
    dr = _check_data_range(data_range, target.shape[0], target.device)
    mse = (target - pred).square().mean(dim=(-2, -1))
    return _unbatch(10 * torch.log10(dr.square() / mse), single)


def nmse(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Normalised MSE per image: ``‖gt − pred‖² / ‖gt‖²`` (fastMRI ``evaluate.nmse``).

    Args:
        target: ground truth ``[B, H, W]`` or ``[H, W]``, real.
        pred: reconstruction, same shape.

    Returns:
        float64 ``[B]`` (0-d for a single image).
    """
    target, pred, single = _check_images(target, pred)
    error = (target - pred).square().sum(dim=(-2, -1))
    return _unbatch(error / target.square().sum(dim=(-2, -1)), single)


def ssim(target: torch.Tensor, pred: torch.Tensor, data_range: float | torch.Tensor) -> torch.Tensor:
    """Structural similarity per image, equal to skimage's ``structural_similarity`` defaults.

    7×7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance (× 49/48), mean of the SSIM map
    over the 'valid' interior (skimage's 3-pixel border crop). Wang et al. 2004, Eq. 13, with
    fastMRI's conventions (see the module docstring for how it differs from torchmetrics).

    Args:
        target: ground truth ``[B, H, W]`` or ``[H, W]``, real, ``H, W ≥ 7``.
        pred: reconstruction, same shape.
        data_range: ``L`` in ``C1 = (K1 L)²``, ``C2 = (K2 L)²``, scalar or ``[B]``.

    Returns:
        float64 ``[B]`` (0-d for a single image).
    """
    target, pred, single = _check_images(target, pred)
    if min(target.shape[-2:]) < SSIM_WIN_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE}, got {tuple(target.shape[-2:])}"
        )
    dr = _check_data_range(data_range, target.shape[0], target.device)[:, None, None, None]
    x, y = target[:, None], pred[:, None]  # [B, 1, H, W]

    def window_mean(t: torch.Tensor) -> torch.Tensor:
        # 'valid' 7×7 box mean: equals skimage's uniform_filter on the pixels its crop keeps.
        return F.avg_pool2d(t, SSIM_WIN_SIZE, stride=1)

    num_points = SSIM_WIN_SIZE**2
    cov_norm = num_points / (num_points - 1)  # sample covariance, skimage's default
    ux, uy = window_mean(x), window_mean(y)
    vx = cov_norm * (window_mean(x * x) - ux * ux)
    vy = cov_norm * (window_mean(y * y) - uy * uy)
    vxy = cov_norm * (window_mean(x * y) - ux * uy)
    c1, c2 = (SSIM_K1 * dr) ** 2, (SSIM_K2 * dr) ** 2
    ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return _unbatch(ssim_map.mean(dim=(-3, -2, -1)), single)


def volume_metrics(
    target_volume: torch.Tensor, pred_volume: torch.Tensor, maxval: float | None = None
) -> dict[str, float]:
    """fastMRI ``evaluate.py`` metrics of one volume.

    Args:
        target_volume: ground truth ``[S, H, W]`` (fastMRI: ``reconstruction_rss`` / ``_esc``,
            centre-cropped to ``(W, W)`` by the caller), real.
        pred_volume: reconstruction, same shape.
        maxval: data range for PSNR and SSIM; ``None`` uses ``target_volume.max()`` as
            ``evaluate.py`` does (``MriModule`` passes the file's ``attrs["max"]``).

    Returns:
        ``{"psnr": PSNR of the volume MSE, "ssim": mean slice SSIM, "nmse": volume NMSE}``.
    """
    if target_volume.dim() != 3:
        raise ValueError(f"expected volumes [S, H, W], got shape {tuple(target_volume.shape)}")
    target, pred, _ = _check_images(target_volume, pred_volume)
    data_range = float(target.max()) if maxval is None else float(maxval)
    # PSNR and NMSE of the whole volume = the single-image formulas on the flattened volume.
    flat_target, flat_pred = target.reshape(1, -1, target.shape[-1]), pred.reshape(1, -1, pred.shape[-1])
    return {
        "psnr": float(psnr(flat_target, flat_pred, data_range)[0]),
        "ssim": float(ssim(target, pred, data_range).mean()),
        "nmse": float(nmse(flat_target, flat_pred)[0]),
    }


def item_quality(target: torch.Tensor, estimate: torch.Tensor) -> dict[str, torch.Tensor]:
    """PSNR, SSIM and NMSE ``[B]`` of magnitude images ``[B, H, W]`` against ``target`` (magnitudes),
    the data range of each being its target's maximum (fastMRI's per-slice convention)."""
    target, estimate = target.double(), estimate.double()
    data_range = target.flatten(1).amax(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    return {"psnr": psnr(target, estimate, data_range), "ssim": ssim(target, estimate, data_range),
            "nmse": nmse(target, estimate)}


def quality_metrics(methods, **kwargs) -> dict[str, "_PerImageMetric"]:
    """One torchmetrics metric per ``{method}_{psnr|ssim|nmse}`` (``kwargs`` go to each metric)."""
    kinds = {"psnr": FastMRIPSNR, "ssim": FastMRISSIM, "nmse": FastMRINMSE}
    return {f"{method}_{name}": kinds[name](**kwargs) for method in methods for name in QUALITY}


class _PerImageMetric(Metric):
    """Mean of a per-image metric; per-image values are kept (``cat`` across ranks).

    ``compute()`` returns the float64 mean over every image seen by every rank;
    :meth:`per_image` returns the values themselves.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def _append(self, values: torch.Tensor) -> None:
        self.values.append(values.detach().reshape(-1))

    def extend(self, values: torch.Tensor) -> None:
        """Add per-image values computed elsewhere (e.g. items finished by an earlier, resumed run)."""
        self._append(torch.as_tensor(values, dtype=torch.float64, device=self.device))

    def per_image(self) -> torch.Tensor:
        """float64 ``[N]``: the values of every image updated on this rank (after a sync: all ranks)."""
        # A list while accumulating; torchmetrics turns it into one tensor when it syncs ranks.
        if isinstance(self.values, list) and not self.values:
            return torch.zeros(0, dtype=torch.float64, device=self.device)
        return dim_zero_cat(self.values)

    def compute(self) -> torch.Tensor:
        values = self.per_image()
        if values.numel() == 0:
            return torch.tensor(math.nan, dtype=torch.float64, device=self.device)
        return values.mean()


class FastMRIPSNR(_PerImageMetric):
    """Mean per-image PSNR (:func:`psnr`); ``data_range`` is required, scalar or ``[B]``."""

    higher_is_better = True

    def update(self, pred: torch.Tensor, target: torch.Tensor, data_range: float | torch.Tensor) -> None:
        """Args: ``pred``, ``target`` ``[B, H, W]`` or ``[H, W]``; ``data_range`` scalar or ``[B]``."""
        self._append(psnr(target, pred, data_range))


class FastMRISSIM(_PerImageMetric):
    """Mean per-image fastMRI/skimage SSIM (:func:`ssim`); ``data_range`` is required."""

    higher_is_better = True

    def update(self, pred: torch.Tensor, target: torch.Tensor, data_range: float | torch.Tensor) -> None:
        """Args: ``pred``, ``target`` ``[B, H, W]`` or ``[H, W]``; ``data_range`` scalar or ``[B]``."""
        self._append(ssim(target, pred, data_range))


class FastMRINMSE(_PerImageMetric):
    """Mean per-image NMSE (:func:`nmse`)."""

    higher_is_better = False

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Args: ``pred``, ``target`` ``[B, H, W]`` or ``[H, W]``."""
        self._append(nmse(target, pred))


class PerImageValues(_PerImageMetric):
    """Any per-image quantity (e.g. the SNR of each item), kept row-aligned with the metrics above."""

    def update(self, values: torch.Tensor) -> None:
        """Args: ``values`` ``[B]``."""
        self._append(values.double())
