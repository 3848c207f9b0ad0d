"""The :class:`~lit_sampler.lightning.LangevinSampler`'s options, checked and resolved once at
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
        raise ValueError(f"prior sampling has no data: init {schedule.init!r}{schedule.origin('init')} and sigma_offset: "
                         f"auto{schedule.origin('sigma_offset')} need a measurement")
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


def cs_lambda_at(cs_lambdas, method: str, key: str) -> float | None:
    """The configured λ of the compressed-sensing baseline ``method`` at the noise level named
    ``key`` (:func:`lit_sampler.physics.noise.noise_key`: ``"20"``, ``"inf"``, ``"measured"``); None where
    its table has no entry for ``key``."""
    value = cs_lambdas[method]
    if not isinstance(value, dict):
        return float(value)
    return float(value[key]) if key in value else None


def missing_cs_lambdas(cs_lambdas, keys) -> dict[str, list[str]]:
    """Per configured baseline, the noise keys among ``keys`` it has no λ for (only those with any)."""
    missing = {method: [key for key in keys if cs_lambda_at(cs_lambdas, method, key) is None] for method in cs_lambdas or {}}
    return {method: found for method, found in missing.items() if found}


def given_cs_keys(cs_lambdas) -> dict[str, list[str]]:
    """Per baseline with a λ table, the noise keys the table has (for messages)."""
    return {method: sorted(value) for method, value in (cs_lambdas or {}).items() if isinstance(value, dict)}
