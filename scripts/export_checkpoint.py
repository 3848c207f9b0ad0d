"""Slim a ``lit_sampler fit`` checkpoint for sampling: keep the weights (raw and EMA) and the
hyper-parameters, drop optimizer and loop state (about two thirds of the file); ``--ema-only``
also drops the raw weights (what sampling uses is the EMA; half again).

    python scripts/export_checkpoint.py lightning_logs/train_demo/version_0/checkpoints/last.ckpt demo/model.ckpt --ema-only

The result still loads with ``load_score_model`` / ``checkpoint:`` (EMA weights by default) and is
checked to give the same network outputs as the original before it is written (atomically).

``--varnet`` slims a checkpoint of the supervised peer (``configs/train_varnet.yaml``) the same way:
its ``varnet.*`` weights and architecture, checked to give the same reconstructions through
:class:`lit_sampler.models.varnet.VarNetBaseline`.

    python scripts/export_checkpoint.py lightning_logs/train_varnet/version_0/checkpoints/last.ckpt demo/varnet.ckpt --varnet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from lit_sampler.atomic import atomic_target
from lit_sampler.models import CheckpointError, describe_checkpoint, load_score_model

KEPT = ("state_dict", "hyper_parameters", "epoch", "global_step", "pytorch-lightning_version")


def export(source: Path, destination: Path, ema_only: bool = False) -> None:
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{source}: not a `lit_sampler fit` checkpoint (no 'state_dict')")
    slim = {key: checkpoint[key] for key in KEPT if key in checkpoint}
    if ema_only:
        ema = {k: v for k, v in slim["state_dict"].items() if k.startswith("ema_model.")}
        if not ema:
            raise CheckpointError(f"{source}: no EMA weights ('ema_model.*') to keep with --ema-only")
        slim["state_dict"] = ema
    slim["hyper_parameters"] = dict(slim.get("hyper_parameters", {}))
    with atomic_target(destination) as temporary:
        torch.save(slim, temporary)
        original, exported = load_score_model(source), load_score_model(temporary)
        x = torch.randn(2, original.in_channels, 16, 16, generator=torch.Generator().manual_seed(0))
        labels = torch.tensor([0, len(original.sigmas) - 1])
        with torch.no_grad():
            if not torch.equal(original(x, labels), exported(x, labels)):
                raise CheckpointError(f"{destination}: exported weights do not reproduce {source}")


def export_varnet(source: Path, destination: Path) -> None:
    from lit_sampler.models.varnet import ARCHITECTURE_KEYS, VarNetBaseline

    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{source}: not a `lit_sampler fit` checkpoint (no 'state_dict')")
    hyper = dict(checkpoint.get("hyper_parameters", {}))
    slim = {key: checkpoint[key] for key in KEPT if key in checkpoint}
    slim["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("varnet.")}
    slim["hyper_parameters"] = {key: hyper[key] for key in ARCHITECTURE_KEYS if key in hyper}
    with atomic_target(destination) as temporary:
        torch.save(slim, temporary)
        original, exported = VarNetBaseline(str(source)), VarNetBaseline(str(temporary))
        generator = torch.Generator().manual_seed(0)
        kspace = torch.randn(1, 4, 32, 32, dtype=torch.complex64, generator=generator)
        mask = torch.zeros(1, 1, 1, 32)
        mask[..., ::3] = 1
        mask[..., 14:19] = 1
        if not torch.equal(original(kspace * mask, mask), exported(kspace * mask, mask)):
            raise CheckpointError(f"{destination}: exported weights do not reproduce {source}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="checkpoint written by `python -m lit_sampler fit`")
    parser.add_argument("destination", type=Path)
    parser.add_argument("--ema-only", action="store_true", help="keep only the EMA weights (what sampling uses)")
    parser.add_argument("--varnet", action="store_true", help="the checkpoint is a VarNet's (configs/train_varnet.yaml)")
    args = parser.parse_args(argv)
    try:
        if args.varnet:
            export_varnet(args.source, args.destination)
        else:
            export(args.source, args.destination, args.ema_only)
    except (CheckpointError, OSError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.varnet:
        size = args.destination.stat().st_size / 1e6
        print(f"wrote {args.destination} ({size:.1f} MB): VarNet weights only")
        return 0
    info = describe_checkpoint(args.destination)
    size = args.destination.stat().st_size / 1e6
    print(f"wrote {args.destination} ({size:.1f} MB): {info.variant}, ngf {info.ngf}, {info.num_classes} levels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
