"""``python -m lit_sampler calibrate --config <predict config> [--out FILE] [--levels …] [--run-dir DIR]``:
fit the scale of the error bars on held-out data with ground truth (:mod:`lit_sampler.evaluation.calibration`).

The config is an ordinary ``predict`` config whose data are the calibration split (validation
data, never the data you report) with ``num_samples ≥ 2``; the command runs it (resumable, like
any run, in ``--run-dir``), then fits k per SNR and level from the slices' posterior means,
sample stds and targets, and writes the calibration file atomically. ``predict`` then takes it
through the writer's ``calibration:`` option; it refuses runs whose settings differ
(:func:`lit_sampler.outputs.run_dir.calibration_settings`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Callable

from ..evaluation.calibration import DEFAULT_LEVELS, CalibrationError, risk_control_scale, write_calibration
from ..physics.noise import snr_label

def fit_scales(volumes: list[dict[str, Any]], levels) -> tuple[dict[str, dict[float, float]], dict[str, int]]:
    """k per SNR label and level from every slice with a target and ≥ 2 usable samples."""
    from ..evaluation.uncertainty import error_ratios, object_support

    ratios: dict[str, list] = {}
    for volume in volumes:
        if "target" not in volume:
            continue
        label = snr_label(None if math.isinf(volume["snr_db"]) else volume["snr_db"])
        for i in range(len(volume["slices"])):
            if volume["slice_samples"][i].shape[0] < 2:
                continue
            target = volume["target"][i].abs().double()
            ratios.setdefault(label, []).append(error_ratios(target, volume["mean"][i].abs().double(),
                                                             volume["std"][i].double(), object_support(target)))
    if not ratios:
        raise CalibrationError("calibrate: no slice with a target and at least 2 samples; the calibration data need "
                               "ground truth (fully sampled k-space) and num_samples >= 2")
    scales = {}
    for label, slices in ratios.items():
        try:
            scales[label] = {float(level): risk_control_scale(slices, level) for level in levels}
        except CalibrationError as error:
            raise CalibrationError(f"calibrate: at {label}: {error}") from None
    return scales, {label: len(slices) for label, slices in ratios.items()}


def parse_calibrate_args(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="lit_sampler calibrate", add_help=False)
    parser.add_argument("--out", default="calibration.json", help="the calibration file to write")
    parser.add_argument("--levels", type=float, nargs="+", default=list(DEFAULT_LEVELS),
                        help="nominal coverages to calibrate (default 0.5 … 0.99)")
    parser.add_argument("--run-dir", default="lightning_logs/calibrate", help="where the calibration run is written")
    return parser.parse_known_args(args)


def run_calibrate(args: list[str], build: Callable[[list[str]], Any]) -> int:
    """Run the config's data, fit, write. ``build(extra)`` is a LightningCLI with ``run=False``."""
    from .frontier import predict_into
    from ..outputs.run_dir import calibration_settings, load_shard
    from ..outputs.volumes import build_volume, group_volumes

    options, rest = parse_calibrate_args(args)
    for level in options.levels:
        if not 0 < level < 1:
            raise CalibrationError(f"calibrate: --levels must lie in (0, 1), got {level:g}")
    run_dir = Path(options.run_dir)
    # the samples are what is calibrated: no compressed sensing or VarNet (they would only cost time)
    rest = rest + ["--model.init_args.cs_lambdas=null", "--model.init_args.varnet=null"]
    cli = build(rest + ["--trainer.logger=false"])
    if getattr(cli.datamodule, "num_samples", 1) < 2:
        raise CalibrationError(f"calibrate: num_samples is {cli.datamodule.num_samples}; the error bars need at least 2 samples")
    predict_into(build, rest, run_dir, figure_slices=0, calibration=False)
    shards = [load_shard(path) for path in sorted((run_dir / "items").glob("*/*/s*_n*.pt"))]
    volumes = [build_volume(group) for group in group_volumes(shards)]
    scales, counts = fit_scales(volumes, options.levels)
    cli.datamodule.setup("predict")
    settings = calibration_settings(cli.model, cli.datamodule)
    source = {"data_path": str(getattr(cli.datamodule.source, "data_path", "")), "run_dir": str(run_dir)}
    write_calibration(Path(options.out), scales, counts, settings, source)
    for label, by_level in scales.items():
        shown = ", ".join(f"{level:g}: {k:.3f}" for level, k in by_level.items())
        print(f"{label} ({counts[label]} slices): k = {{{shown}}}")
    print(f"calibration in {options.out}")
    return 0
