"""Choosing the compressed-sensing baselines' λ on validation data (never on the reported data).

:func:`tune_cs_lambdas` runs each method over a λ grid on every item of a data module and keeps,
per SNR, the λ with the best mean PSNR (fastMRI convention: magnitudes, data range = the slice's
target maximum). ``scripts/tune_baselines.py`` runs it from a ``predict`` config and prints the
``cs_lambdas`` block to paste into the config that is evaluated on held-out data.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .baselines import CS_METHODS, compressed_sensing
from .data.items import MeasurementBatch
from .metrics import psnr

DEFAULT_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def snr_key(snr_db: float) -> str:
    """How ``cs_lambdas`` names an SNR: ``"20"``, ``"7.5"``, ``"inf"`` (no added noise)."""
    return "inf" if not math.isfinite(float(snr_db)) else f"{float(snr_db):g}"


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
            raise ValueError("tuning λ needs ground truth: the data has no target")
        for i in range(len(batch)):
            target = batch.target[i].abs().double()
            data_range = target.max().clamp_min(torch.finfo(torch.float64).tiny)
            key = snr_key(float(batch.snr_db[i]))
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
                print(f"warning: {method} at SNR {key}: best λ {lamda:g} is at the edge of the grid; widen it")
    return {**record, "cs_lambdas": best}


def merge_records(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One record from two searches over the same items with different λ values."""
    if first["items"] != second["items"]:
        raise ValueError("the two λ searches saw different items; they cannot be merged")
    psnr = {m: {k: {**{float(a): b for a, b in v.items()}, **{float(a): b for a, b in second["psnr"][m][k].items()}}
                for k, v in t.items()} for m, t in first["psnr"].items()}
    return best_lambdas({"psnr": psnr, "items": first["items"], "files": first["files"]})
