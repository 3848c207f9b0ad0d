"""Which NCSNv2 network a state dict is: variant, ``ngf`` and input channels.

The variant comes from the key names (``res31`` ⇒ Deepest, ``res5`` ⇒ Deeper, else NCSNv2),
``ngf`` and the channel count from ``begin_conv.weight`` ``[ngf, C, 3, 3]``; keyword overrides
win, and the state dict is then checked key by key and shape by shape against that network.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from .ncsnv2 import VARIANTS, _NCSNv2Family

__all__ = ["expected_shapes", "infer_architecture", "resolve_variant"]

# Aali's training configs name the variants by ``model.depth``.
_ALIASES = {
    "ncsnv2": "NCSNv2",
    "low": "NCSNv2",
    "ncsnv2deeper": "NCSNv2Deeper",
    "deeper": "NCSNv2Deeper",
    "medium": "NCSNv2Deeper",
    "ncsnv2deepest": "NCSNv2Deepest",
    "deepest": "NCSNv2Deepest",
    "large": "NCSNv2Deepest",
}


def resolve_variant(variant: str | type[nn.Module]) -> type[_NCSNv2Family]:
    """The class for a variant name (``"NCSNv2Deepest"``, ``"deepest"``, Aali's ``"large"``…)."""
    if isinstance(variant, type) and issubclass(variant, _NCSNv2Family):
        return variant
    name = _ALIASES.get(str(variant).lower())
    if name is None:
        raise CheckpointError(f"unknown NCSNv2 variant {variant!r}; expected one of {sorted(VARIANTS)}")
    return VARIANTS[name]


@functools.lru_cache(maxsize=32)
def expected_shapes(variant: str, ngf: int, in_channels: int) -> dict[str, tuple[int, ...]]:
    """Key → shape of the network's state dict (``sigmas`` left out), built on the meta device."""
    with torch.device("meta"):
        model = VARIANTS[variant](in_channels=in_channels, ngf=ngf, sigmas=[1.0])
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "sigmas"}


def _guess(state: Mapping[str, torch.Tensor]) -> tuple[str, int, int] | None:
    """(variant, ngf, in_channels) read off the keys and ``begin_conv.weight``; None if it is not 4-D."""
    weight = state.get("begin_conv.weight")
    if weight is None or weight.dim() != 4:
        return None
    if any(k.startswith("res31.") for k in state):
        variant = "NCSNv2Deepest"
    elif any(k.startswith("res5.") for k in state):
        variant = "NCSNv2Deeper"
    else:
        variant = "NCSNv2"
    return variant, int(weight.shape[0]), int(weight.shape[1])


def _mismatch(state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]]) -> tuple[list, list, list]:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and k != "sigmas"]
    shapes = [(k, expected[k], tuple(state[k].shape)) for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    return missing, unexpected, shapes


def _listing(keys: Sequence[Any], limit: int = 6) -> str:
    shown = ", ".join(str(k) for k in keys[:limit])
    return f"{shown}, … ({len(keys)} in all)" if len(keys) > limit else shown


def infer_architecture(
    state: Mapping[str, torch.Tensor],
    path: Path,
    variant: str | type[nn.Module] | None,
    ngf: int | None,
    in_channels: int | None,
) -> tuple[str, int, int]:
    """(variant name, ngf, in_channels) of the network ``state`` fits, overrides taken as given;
    :class:`CheckpointError` naming the missing/unexpected keys and shape mismatches otherwise."""
    guess = _guess(state)
    if guess is None and (variant is None or ngf is None or in_channels is None):
        sample = _listing(sorted(state)[:6])
        hint = ""
        if any(".embed." in k or k.endswith("embed.weight") for k in state):
            hint = " (its 'embed' keys suggest a noise-conditional NCSN v1 network, which is not supported)"
        raise CheckpointError(
            f"{path}: no 4-D 'begin_conv.weight' in the state dict, so it is not an NCSNv2 network{hint}; "
            f"keys start with: {sample}"
        )
    name = resolve_variant(variant).__name__ if variant is not None else guess[0]  # type: ignore[index]
    width = int(ngf) if ngf is not None else guess[1]  # type: ignore[index]
    channels = int(in_channels) if in_channels is not None else guess[2]  # type: ignore[index]

    try:
        expected = expected_shapes(name, width, channels)
    except ValueError as exc:
        raise CheckpointError(f"{path}: cannot build {name}(ngf={width}, in_channels={channels}): {exc}") from exc
    missing, unexpected, shapes = _mismatch(state, expected)
    if missing or unexpected or shapes:
        problems = []
        if missing:
            problems.append(f"missing keys: {_listing(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_listing(unexpected)}")
        if shapes:
            problems.append(
                "shape mismatches: " + _listing([f"{k} expected {list(e)} found {list(f)}" for k, e, f in shapes], 3)
            )
        suggestion = ""
        if guess is not None:
            fits = not any(_mismatch(state, expected_shapes(*guess)))
            suggestion = (
                f". The shapes suggest {guess[0]}(ngf={guess[1]}, in_channels={guess[2]}) "
                f"(from begin_conv.weight {list(state['begin_conv.weight'].shape)} and the stage names)"
                + (", which fits exactly: drop the conflicting overrides" if fits and guess != (name, width, channels) else "")
            )
        if any(k.endswith(("weight_orig", "weight_u")) for k in state):
            suggestion += "; its weight_orig/weight_u keys mean spectral normalisation (model.spec_norm), which is not supported"
        raise CheckpointError(
            f"{path}: the state dict does not fit {name}(ngf={width}, in_channels={channels}): "
            + "; ".join(problems)
            + suggestion
        )
    return name, width, channels
