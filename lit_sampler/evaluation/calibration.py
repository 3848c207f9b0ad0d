"""Calibrated error bars: the scale ``k`` of the interval ``m ± k·s`` by conformal risk control.

Per slice (the exchangeable unit), with ``m`` the magnitude of the posterior mean, ``s`` the
samples' magnitude std and the object's pixels (:mod:`lit_sampler.evaluation.uncertainty`), the loss of a
scale k is the slice's miscoverage ``L_i(k)`` = the fraction of object pixels with
``|m − t| > k s``: in [0, 1] and non-increasing in k. Conformal risk control (Angelopoulos,
Bates, Fisch, Lei & Schuster, ICLR 2024, "Conformal Risk Control", Theorem 1) picks, from n
calibration slices,

    k̂ = inf { k : (Σᵢ L_i(k) + 1) / (n + 1) ≤ α }

and guarantees, for a new slice exchangeable with them, ``E[L_{n+1}(k̂)] ≤ α``: **the expected
fraction of the object covered by the interval is at least 1 − α** (the expectation over the
calibration slices and the new one). It needs ``n ≥ 1/α − 1`` slices (else no finite k
satisfies the rule: one clear error). It is tight: for continuous losses the expected coverage is
at most ``1 − α + 2/(n + 1)``.

The fit is made per SNR (the noise level changes the posterior) and per nominal level, and holds
only for the settings it was made with (:func:`lit_sampler.outputs.run_dir.calibration_settings`): the
checkpoint (its SHA-256), the sampler's schedule and knobs, the mask and the number of samples. A calibration file is
written atomically; reading one for other settings is one error naming both.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch

from .._imports import current_names
from ..atomic import atomic_write_bytes
from ..errors import DataError

DEFAULT_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
METHOD = "conformal risk control (Angelopoulos et al., ICLR 2024), slices as exchangeable units"
GUARANTEE = "E[fraction of a new slice's object pixels inside mean ± k·std] >= level"
FORMAT_VERSION = 1


class CalibrationError(DataError):
    """A calibration that cannot be made (too few slices) or does not fit the run's settings."""


def minimum_slices(level: float) -> int:
    """The fewest calibration slices for which conformal risk control reaches ``level``: n ≥ 1/α − 1."""
    alpha = 1.0 - float(level)
    return max(1, math.ceil(1.0 / alpha - 1.0 - 1e-9))


def risk_control_scale(ratios: Sequence[torch.Tensor], level: float) -> float:
    """k̂ of the module docstring from each calibration slice's ``|m − t| / s`` over its object.

    Args:
        ratios: one 1-D tensor per slice (``inf`` where s = 0 and the error is not).
        level: the nominal coverage 1 − α.

    The candidates are the slices' ratio values themselves (each L_i only steps there), so the
    returned k is exact: the smallest value at which the rule holds.
    """
    alpha = 1.0 - float(level) + 1e-12  # (1 − 0.9 is 0.0999…98 in floating point)
    n = len(ratios)
    if n < minimum_slices(level):
        raise CalibrationError(
            f"coverage {level:g} needs at least {minimum_slices(level)} calibration slices "
            f"(conformal risk control: n >= 1/alpha - 1), got {n}"
        )
    sorted_ratios = [torch.sort(r.double().flatten()).values for r in ratios]
    candidates = torch.unique(torch.cat([r[torch.isfinite(r)] for r in sorted_ratios] + [torch.zeros(1, dtype=torch.float64)]))

    def risk(k: torch.Tensor) -> float:  # (Σ L_i(k) + 1) / (n + 1)
        losses = [1.0 - float(torch.searchsorted(r, k, right=True)) / max(len(r), 1) for r in sorted_ratios]
        return (sum(losses) + 1.0) / (n + 1)

    low, high = 0, len(candidates) - 1
    if risk(candidates[high]) > alpha:  # only an infinite k would do (pixels with s = 0 and an error)
        return math.inf
    while low < high:
        middle = (low + high) // 2
        if risk(candidates[middle]) <= alpha:
            high = middle
        else:
            low = middle + 1
    return float(candidates[low])


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_calibration(path: Path, scales: dict[str, dict[float, float]], slices: dict[str, int],
                      settings: dict[str, Any], source: str) -> None:
    """``calibration.json``: k per SNR label and level, the slice counts, the settings it holds for."""
    document = {
        "format_version": FORMAT_VERSION, "method": METHOD, "guarantee": GUARANTEE,
        "k": {snr: {f"{level:g}": value for level, value in sorted(by_level.items())} for snr, by_level in scales.items()},
        "calibration_slices": slices, "settings": settings, "calibration_data": source,
    }
    atomic_write_bytes(Path(path), (json.dumps(document, indent=1, sort_keys=True) + "\n").encode())


class Calibration:
    """A calibration file read back: ``scale(snr_label, level)`` → k, checked against a run's settings."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            document = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise CalibrationError(f"calibration: {self.path} not found; make it with `python -m lit_sampler calibrate`") from None
        except (OSError, json.JSONDecodeError) as error:
            raise CalibrationError(f"calibration: {self.path} is not a calibration file ({error})") from None
        if not isinstance(document, dict) or document.get("format_version") != FORMAT_VERSION or "k" not in document:
            raise CalibrationError(f"calibration: {self.path} is not a calibration file of format {FORMAT_VERSION}")
        self.k = {snr: {float(level): float(v) for level, v in by_level.items()} for snr, by_level in document["k"].items()}
        self.settings = document.get("settings", {})
        self.slices = document.get("calibration_slices", {})

    def scale(self, snr: str, level: float) -> float:
        if snr not in self.k:
            raise CalibrationError(f"calibration: {self.path} has no k for {snr} (it has {sorted(self.k)}); calibrate at that SNR")
        by_level = self.k[snr]
        if float(level) not in by_level:
            raise CalibrationError(
                f"calibration: {self.path} has no k for coverage {level:g} at {snr} (it has {sorted(by_level)})"
            )
        return by_level[float(level)]

    def check(self, settings: dict[str, Any]) -> None:
        """One error naming the first setting that differs from the calibration's (theirs vs this run's)."""
        for key in sorted(set(self.settings) | set(settings)):
            made, now = self.settings.get(key), settings.get(key)
            if _canonical(made) != _canonical(now):
                raise CalibrationError(
                    f"calibration: {self.path} was made for {key} = {_show(made)}, this run has {_show(now)}; "
                    "calibrate for these settings (python -m lit_sampler calibrate) or restore them"
                )


def _canonical(value: Any) -> str:
    # a calibration made before the modules moved names the mask and operator classes by their old
    # module paths: compare them by the classes they name now
    return json.dumps(current_names(value), sort_keys=True)


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."
