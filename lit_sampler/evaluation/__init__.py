"""Evaluation: how good a reconstruction is and how far its error bars can be trusted.

* :mod:`.metrics`: PSNR / SSIM / NMSE with fastMRI's conventions, per item and per volume, and as
  torchmetrics metrics (:func:`psnr`, :func:`ssim`, :func:`nmse`, :func:`volume_metrics`,
  :func:`item_quality`, :func:`quality_metrics`);
* :mod:`.uncertainty`: posterior mean and spread, coverage, sparsification (:func:`posterior_summary`, …);
* :mod:`.calibration`: the calibration file of the error bars (:class:`Calibration`,
  :func:`write_calibration`, :func:`risk_control_scale`);
* :mod:`.tuning`: the compressed-sensing λ chosen on validation data (:func:`tune_cs_lambdas`) and
  the error of a missing λ (:func:`missing_lambda_message`).

Below it: the physics, the sampling layer's baselines and the data records. The studies that run
whole predictions (frontier, calibrate, benchmarks) are :mod:`lit_sampler.tools`. Names are
imported on first use (torchmetrics is not light).
"""

from __future__ import annotations

from .._imports import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "psnr": ".metrics",
    "ssim": ".metrics",
    "nmse": ".metrics",
    "volume_metrics": ".metrics",
    "item_quality": ".metrics",
    "quality_metrics": ".metrics",
    "posterior_summary": ".uncertainty",
    "coverage": ".uncertainty",
    "Calibration": ".calibration",
    "CalibrationError": ".calibration",
    "write_calibration": ".calibration",
    "risk_control_scale": ".calibration",
    "tune_cs_lambdas": ".tuning",
    "tuning_command": ".tuning",
    "missing_lambda_message": ".tuning",
})
