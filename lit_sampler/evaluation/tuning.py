"""Choosing the compressed-sensing baselines' λ on validation data (never on the reported data).

:func:`tune_cs_lambdas` runs each method over a λ grid on every item of a data module and keeps,
per SNR, the λ with the best mean PSNR (fastMRI convention: magnitudes, data range = the slice's
target maximum). ``scripts/tune_baselines.py`` runs it from a ``predict`` config and prints the
``cs_lambdas`` block to paste into the config that is evaluated on held-out data. Noise levels are
named by :func:`lit_sampler.physics.noise.noise_key` (``"20"``, ``"inf"``, ``"measured"`` for scanner data
with their own noise), so measured-noise data are tuned like any SNR: run the script on validation
scanner data at ``snr_range: [null]``. :func:`missing_lambda_message` is the error of a run that
lacks a λ: it names the command that tunes exactly the missing levels.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..data.items import MeasurementBatch
from ..errors import MissingLambdaError
from .metrics import psnr
from ..physics.noise import MEASURED_KEY, NOISELESS_KEY, describe_noise_key
from ..sampling.baselines import CS_METHODS, compressed_sensing

DEFAULT_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
TUNING_SCRIPT = "scripts/tune_baselines.py"
# data settings the tuning command sets itself (the validation data, the missing levels)
TUNING_REPLACES = ("data_path", "snr_range")


@torch.no_grad()
def tune_cs_lambdas(
    batches: Iterable[MeasurementBatch],
    methods: Sequence[str] = CS_METHODS,
    grid: Sequence[float] = DEFAULT_GRID,
    iterations: int = 100,
    progress=None,
) -> dict[str, Any]:
    """Best λ per method and SNR over the items of ``batches`` (the data module's batches).

    Returns ``{"cs_lambdas": {method: {snr: λ}}, "psnr": {method: {snr: {λ: mean}}}, "items": [...],
    "files": [...]}``: the items and files seen, so a report can show what the choice rests on.
    """
    scores: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    items, files = [], set()
    for batch in batches:
        if batch.is_padding:
            continue
        if not bool(batch.has_target.all()):
            raise ValueError("tuning λ needs ground truth: the data has no target (scanner data acquired "
                             "undersampled have none: tune on fully sampled scanner data, at snr_range: [null])")
        keys = batch.noise_keys()
        for i in range(len(batch)):
            if int(batch.sample_idx[i]) > 0:  # the other samples of a slice share its measurement
                continue
            target = batch.target[i].abs().double()
            data_range = target.max().clamp_min(torch.finfo(torch.float64).tiny)
            key = keys[i]
            items.append(batch.item_key[i])
            files.add(batch.fname[i])
            for method in methods:
                for lamda in grid:
                    image = compressed_sensing(method, batch.kspace[i], batch.sens_maps[i], batch.mask[i],
                                               lamda, iterations)
                    scores[(method, key, float(lamda))].append(float(psnr(target, image.abs().double(), data_range)))
            if progress is not None:
                progress(1)
    table: dict[str, dict[str, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    for (method, key, lamda), values in scores.items():
        table[method][key][lamda] = float(np.mean(values))
    return best_lambdas({"psnr": {m: {k: dict(v) for k, v in t.items()} for m, t in table.items()},
                         "items": items, "files": sorted(files)})


def best_lambdas(record: dict[str, Any]) -> dict[str, Any]:
    """Add ``cs_lambdas`` (the best λ per method and SNR) to a record of mean PSNRs per λ; warn
    when the best λ sits at an edge of the values tried (the grid should then be widened)."""
    best = {}
    for method, by_snr in record["psnr"].items():
        best[method] = {}
        for key, by_lambda in by_snr.items():
            values = {float(k): v for k, v in by_lambda.items()}
            lamda = max(values, key=values.get)
            best[method][key] = lamda
            if lamda in (min(values), max(values)):
                print(f"warning: {method} at {describe_noise_key(key)}: best λ {lamda:g} is at the edge of the grid; widen it")
    return {**record, "cs_lambdas": best}


def merge_records(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One record from two searches over the same items with different λ values."""
    if first["items"] != second["items"]:
        raise ValueError("the two λ searches saw different items; they cannot be merged")
    psnr = {m: {k: {**{float(a): b for a, b in v.items()}, **{float(a): b for a, b in second["psnr"][m][k].items()}}
                for k, v in t.items()} for m, t in first["psnr"].items()}
    return best_lambdas({"psnr": psnr, "items": first["items"], "files": first["files"]})


def _run_arguments(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The ``--config`` files and the data overrides (``--data…``, less :data:`TUNING_REPLACES`) of
    a ``predict`` command line, each override as one shell-quoted ``--key=value`` word."""
    configs: list[str] = []
    data: list[str] = []
    args = [str(a) for a in args]
    i = 0
    while i < len(args):
        option, has_value, value = args[i].partition("=")
        if not has_value and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, i = args[i + 1], i + 1
        i += 1
        if option == "--config":
            configs.append(value)
        elif (option == "--data" or option.startswith("--data.")) and option.rpartition(".")[2] not in TUNING_REPLACES:
            data.append(shlex.quote(f"{option}={value}"))
    return configs, data


def tuning_command(keys: Sequence[str], methods: Sequence[str], args: Sequence[str] = ()) -> str:
    """The ``scripts/tune_baselines.py`` command that tunes ``methods`` at the noise levels ``keys``
    with the data settings of the run ``args`` (its ``--config`` files and ``--data`` overrides)."""
    configs, data = _run_arguments(args)
    levels = list(dict.fromkeys("null" if key in (NOISELESS_KEY, MEASURED_KEY) else key for key in keys))
    words = ["python", TUNING_SCRIPT]
    words += [f"--config {shlex.quote(c)}" for c in configs] or ["--config <your predict config>"]
    words += data + ["--data.init_args.data_path <validation data>",
                     f"--data.init_args.snr_range {shlex.quote('[' + ', '.join(levels) + ']')}", "--methods", *methods]
    return " ".join(words)


def missing_lambda_message(missing: dict[str, list[str]], given: dict[str, list[str]], args: Sequence[str] = ()) -> str:
    """The one error line of baselines without a λ at some noise levels of the data (``missing``:
    method → keys; ``given``: method → the keys its table has), with the three ways out: tune the
    missing λ (the exact command), skip them (``cs_missing: skip``), or drop the baselines."""
    methods = list(missing)
    keys = list(dict.fromkeys(key for found in missing.values() for key in found))
    tables = {method: given.get(method, []) for method in methods}
    if len({tuple(table) for table in tables.values()}) == 1:
        known = f"given for {tables[methods[0]]}"
    else:
        known = "; ".join(f"{method} given for {table}" for method, table in tables.items())
    entries = ", ".join(f'"{key}"' for key in keys)
    which = "that baseline" if len(methods) == 1 else "those baselines"
    return (
        f"{', '.join(f'cs_lambdas.{m}' for m in methods)}: no λ for {', '.join(describe_noise_key(k) for k in keys)} "
        f"({known}); tune λ on validation data with `{tuning_command(keys, methods, args)}` and add the printed "
        f"{entries} entries to cs_lambdas, or set cs_missing: skip (runs without {which} there), or cs_lambdas: null "
        "(no compressed-sensing baselines)"
    )


def missing_lambda_error(missing: dict[str, list[str]], given: dict[str, list[str]]) -> MissingLambdaError:
    """The error of baselines without a λ at some noise levels (:func:`missing_lambda_message`)."""
    return MissingLambdaError(missing, given, missing_lambda_message(missing, given))
