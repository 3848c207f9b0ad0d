"""Load NCSNv2 score networks from the checkpoint formats found in the wild.

The formats and how a file is read safely: :mod:`.checkpoint_formats` (with the restricted
unpickler of :mod:`.unpickle`); the variant, ``ngf`` and channels from the state dict:
:mod:`.architecture`; the noise levels: :mod:`.noise_levels`. Keyword overrides win over
everything read from the file. ``dotmap.DotMap`` configs load as plain ordered dicts, without
the ``dotmap`` package, and no code from the file runs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .architecture import expected_shapes, infer_architecture
from .checkpoint_formats import Contents, PathLike, find_in_config, read_checkpoint, select_weights, unpack
from ..errors import CheckpointError
from .ncsnv2 import VARIANTS
from .noise_levels import resolve_sigmas

__all__ = ["CheckpointInfo", "load_score_model", "describe_checkpoint"]


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint holds, as reported by :func:`describe_checkpoint`."""

    path: str
    format: str  # "ncsnv2-list" | "model_state-dict" | "lightning" | "state-dict"
    variant: str  # "NCSNv2" | "NCSNv2Deeper" | "NCSNv2Deepest"
    ngf: int
    in_channels: int
    num_parameters: int
    has_ema: bool
    weights: str  # which weights load_score_model would take: "ema" or "raw"
    input_map: bool
    num_classes: int | None
    sigma_max: float | None
    sigma_min: float | None
    sigmas_source: str  # "checkpoint" | "config" | "missing"
    epoch: int | None = None
    step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resolve_input_map(config: Any, input_map: bool | None) -> bool:
    """Whether the network maps its input ``x → 2x − 1``: the argument, else the saved config."""
    if input_map is not None:
        return bool(input_map)
    explicit = find_in_config(config, "input_map")
    if isinstance(explicit, bool):
        return explicit
    # ncsnv2 skips 2x − 1 when data.logit_transform or data.rescaled is set.
    return not (bool(find_in_config(config, "logit_transform")) or bool(find_in_config(config, "rescaled")))


def _prepare(
    path: PathLike,
    *,
    use_ema: bool,
    variant: str | type[nn.Module] | None,
    ngf: int | None,
    in_channels: int | None,
    map_location: Any,
) -> tuple[Path, Contents, dict[str, torch.Tensor], str, tuple[str, int, int]]:
    path = Path(path)
    contents = unpack(read_checkpoint(path, map_location), path)
    state, weights = select_weights(contents, use_ema, path)
    architecture = infer_architecture(state, path, variant, ngf, in_channels)
    return path, contents, state, weights, architecture


def load_score_model(
    path: PathLike,
    *,
    use_ema: bool = True,
    variant: str | type[nn.Module] | None = None,
    ngf: int | None = None,
    in_channels: int | None = None,
    num_classes: int | None = None,
    sigmas: Sequence[float] | torch.Tensor | None = None,
    sigma_begin: float | None = None,
    sigma_end: float | None = None,
    input_map: bool | None = None,
    map_location: Any = "cpu",
) -> nn.Module:
    """An NCSNv2 score network from a checkpoint file, in eval mode.

    The result is an :class:`NCSNv2`, :class:`NCSNv2Deeper` or :class:`NCSNv2Deepest` with
    attributes ``sigmas`` (buffer ``[L]``), ``num_classes``, ``ngf``, ``in_channels`` and
    ``input_map``.

    ``model(x, labels)`` (``x`` float ``[B, C, H, W]``, ``labels`` long ``[B]``) returns what the
    original network returns. The architecture is inferred from the state dict, the noise levels
    (buffer ``model.sigmas``, ``[L]``) from the checkpoint's ``sigmas`` or its saved config;
    keyword arguments override either.

    Args:
        path: checkpoint in any of the formats listed in :mod:`.checkpoint_formats`.
        use_ema: take the EMA weights when the file has them (warns and takes the raw ones if not).
        variant: ``"NCSNv2"``, ``"NCSNv2Deeper"``, ``"NCSNv2Deepest"`` (or a class); inferred if None.
        ngf, in_channels: inferred from ``begin_conv.weight`` if None.
        num_classes: checked against the stored noise levels (or used with sigma_begin/sigma_end).
        sigmas, sigma_begin, sigma_end: noise levels to use instead of the stored ones.
        input_map: apply ``2x − 1`` to the input; default: True unless the saved config sets
            ``logit_transform``/``rescaled`` (or ``input_map``).
        map_location: where the tensors go (``torch.load``'s argument); CUDA tensors in the file are
            fine with the default ``"cpu"``.

    Raises:
        CheckpointError: unreadable file, unknown layout, weights that fit no variant, noise levels
            missing or disagreeing with ``num_classes``.
    """
    path, contents, state, _, (name, width, channels) = _prepare(
        path, use_ema=use_ema, variant=variant, ngf=ngf, in_channels=in_channels, map_location=map_location
    )
    stored = state.pop("sigmas", None)
    levels, _ = resolve_sigmas(path, stored, contents.config, sigmas, sigma_begin, sigma_end, num_classes)
    if levels is None:
        raise CheckpointError(
            f"{path}: no noise levels found (no 'sigmas' buffer and no saved config with sigmas or "
            "sigma_begin/sigma_end/num_classes); pass sigmas=[...] or sigma_begin=, sigma_end=, num_classes="
        )
    device = state["begin_conv.weight"].device
    # The original copies into float32 parameters, whatever the stored dtype.
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    weights["sigmas"] = levels.to(device)

    # Built on the meta device and filled by assignment: no random init, no second copy of the weights.
    with torch.device("meta"):
        model = VARIANTS[name](
            in_channels=channels,
            ngf=width,
            sigmas=[1.0] * levels.numel(),
            input_map=_resolve_input_map(contents.config, input_map),
        )
    model.load_state_dict(weights, strict=True, assign=True)
    return model.eval()


def describe_checkpoint(path: PathLike, *, use_ema: bool = True) -> CheckpointInfo:
    """What a checkpoint holds (variant, ngf, channels, noise levels, parameter count, EMA), without
    building the network. Raises :class:`CheckpointError` like :func:`load_score_model`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path, contents, state, weights, (name, width, channels) = _prepare(
            path, use_ema=use_ema, variant=None, ngf=None, in_channels=None, map_location="cpu"
        )
        levels, source = resolve_sigmas(path, state.pop("sigmas", None), contents.config, None, None, None, None)
    meta = dict(contents.meta)
    epoch, step = meta.pop("epoch", None), meta.pop("step", None)
    return CheckpointInfo(
        path=str(path),
        format=contents.format,
        variant=name,
        ngf=width,
        in_channels=channels,
        num_parameters=int(sum(math.prod(shape) for shape in expected_shapes(name, width, channels).values())),
        has_ema=bool(contents.ema),
        weights=weights,
        input_map=_resolve_input_map(contents.config, None),
        num_classes=None if levels is None else int(levels.numel()),
        sigma_max=None if levels is None else float(levels.max()),
        sigma_min=None if levels is None else float(levels.min()),
        sigmas_source=source,
        epoch=epoch if isinstance(epoch, int) else None,
        step=step if isinstance(step, int) else None,
        extra={k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))},
    )
