#!/usr/bin/env python
"""Print what an NCSNv2 checkpoint holds: format, variant, ngf, channels, noise levels, parameter
count, whether EMA weights are present.

    python scripts/inspect_checkpoint.py CKPT [--json] [--raw]

Exit status 1 (with the reason on stderr) for a file that is not a usable checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys

from lit_sampler.models import CheckpointError, CheckpointInfo, describe_checkpoint

_FORMATS = {
    "ncsnv2-list": "ncsnv2 runner list [state_dict, optimizer, epoch, step, ema_state] (Song; Jalal et al.)",
    "model_state-dict": "dict with model_state / ema_state / config (Aali/Tamir training pipeline)",
    "lightning": "Lightning checkpoint of `lit_sampler fit` (score_model / ema_model)",
    "state-dict": "bare state dict",
}


def format_info(info: CheckpointInfo) -> str:
    """Human-readable summary, one fact per line."""
    if info.num_classes is None:
        levels = "not stored: pass sigmas or sigma_begin/sigma_end/num_classes when loading"
    else:
        levels = f"{info.num_classes}, σ from {info.sigma_max:.6g} down to {info.sigma_min:.6g} (from the {info.sigmas_source})"
    ema = "yes" if info.has_ema else "no"
    rows = [
        ("checkpoint", info.path),
        ("format", _FORMATS.get(info.format, info.format)),
        ("variant", info.variant),
        ("ngf", str(info.ngf)),
        ("channels", str(info.in_channels)),
        ("parameters", f"{info.num_parameters:,} ({info.num_parameters / 1e6:.2f} M)"),
        ("noise levels", levels),
        ("EMA weights", f"{ema}; loading takes the {info.weights} weights by default"),
        ("input map", "h = 2x − 1" if info.input_map else "none (x used as is)"),
    ]
    if info.epoch is not None or info.step is not None:
        rows.append(("epoch / step", f"{info.epoch} / {info.step}"))
    rows.extend((key, str(value)) for key, value in info.extra.items())
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="checkpoint file (.pth, .pt, .ckpt)")
    parser.add_argument("--json", action="store_true", help="print the facts as JSON")
    parser.add_argument("--raw", action="store_true", help="describe the raw weights instead of the EMA ones")
    args = parser.parse_args(argv)
    try:
        info = describe_checkpoint(args.checkpoint, use_ema=not args.raw)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info.to_dict(), indent=2) if args.json else format_info(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
