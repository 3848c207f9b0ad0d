"""The :class:`~lit_sampler.module.LangevinSampler`'s options, checked and resolved once at
construction: the noise levels, the default step size, the compressed-sensing λ table, the operator class."""

from __future__ import annotations

import importlib
from typing import Any

import torch

from .baselines import check_cs_lambda
from .schedules import technique4_step_size


def import_object(dotted: str) -> Any:
    """``"package.module.Name"`` → the object (used for the configurable operator class)."""
    module_name, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"operator: cannot import {dotted!r} ({error})") from error


def check_network_channels(network: torch.nn.Module, prior_sampling: bool, where: str) -> None:
    """Posterior MRI sampling needs a network of 2 input channels (one complex image)."""
    channels = getattr(network, "in_channels", None)
    if not prior_sampling and isinstance(channels, int) and channels != 2:
        raise ValueError(
            f"{where}: the score network takes {channels} input channels but posterior "
            "MRI sampling needs 2 (one complex image as real, imaginary); use a checkpoint trained on complex images"
        )


def check_options(schedule, *, prior_sampling: bool, cg_iterations: int, call_size: int, step_size: float | None,
                  cuda_graph: bool, compile: bool, compile_mode: str | None) -> None:
    """The combinations of options that cannot run, each refused with the fix."""
    if prior_sampling and (schedule.auto_start or schedule.init in ("zero_filled", "cg_sense")):
        raise ValueError(f"prior sampling has no data: init {schedule.init!r} and sigma_offset: auto need a measurement")
    if schedule.init == "cg_sense" and cg_iterations < 1:
        raise ValueError("init: cg_sense needs cg_iterations >= 1")
    if call_size < 1:
        raise ValueError(f"call_size must be a positive number of items per network call, got {call_size}")
    if step_size is not None and not step_size > 0:
        raise ValueError(f"step_size must be positive, got {step_size}")
    if cuda_graph and compile and compile_mode in ("reduce-overhead", "max-autotune"):
        raise ValueError(
            f"cuda_graph: the step is already captured; compile_mode {compile_mode!r} would nest CUDA graphs"
        )


def sampler_sigmas(network: torch.nn.Module, sigmas: list[float] | None) -> torch.Tensor:
    """σ ``[L]`` float32: the configured levels (as many as the network was trained with), else the
    network's own ``sigmas`` buffer."""
    stored = getattr(network, "sigmas", None)
    if sigmas is not None:
        chosen = torch.as_tensor(sigmas, dtype=torch.float32)
        if isinstance(stored, torch.Tensor) and stored.numel() != chosen.numel():
            raise ValueError(
                f"sigmas: {chosen.numel()} levels given but the network was trained with {stored.numel()}"
            )
    elif isinstance(stored, torch.Tensor):
        chosen = stored.detach().float().cpu()
    else:
        raise ValueError("sigmas: the score model has no `sigmas` buffer; give the noise levels in the config")
    if chosen.dim() != 1 or chosen.numel() < 2 or not bool(torch.all(chosen[1:] < chosen[:-1])):
        raise ValueError("sigmas must be a strictly descending list of at least two noise levels")
    return chosen.clone()


def default_step_size(sigmas: torch.Tensor, steps_each: int) -> float:
    """ε by Song & Ermon's technique 4 for the schedule ``sigmas`` and ``steps_each`` steps per level
    (the reference does so when the value is missing, and always for prior sampling)."""
    sigmas = sigmas.double()
    gamma = float((sigmas[:-1] / sigmas[1:]).mean())
    return technique4_step_size(float(sigmas[-1]), gamma, steps_each)


def check_cs_lambdas(cs_lambdas) -> None:
    """Every configured (method, λ) valid, and sigpy importable (at configuration time, not after the
    first chain)."""
    for method, value in (cs_lambdas or {}).items():
        for lamda in (value.values() if isinstance(value, dict) else [value]):
            try:
                check_cs_lambda(method, float(lamda))
            except ValueError as error:
                raise ValueError(f"cs_lambdas: {error}") from None
    if cs_lambdas:
        from .baselines import sigpy_mri_app

        sigpy_mri_app()


def cs_lambda_at(cs_lambdas, method: str, snr_db: float) -> float | None:
    """The configured λ of a compressed-sensing baseline at ``snr_db`` (None: not configured)."""
    value = (cs_lambdas or {}).get(method)
    if not isinstance(value, dict):
        return None if value is None else float(value)
    key = "inf" if not torch.isfinite(torch.tensor(float(snr_db))) else f"{float(snr_db):g}"
    if key not in value:
        raise ValueError(f"cs_lambdas.{method}: no λ for SNR {key} dB (given for {sorted(value)})")
    return float(value[key])
