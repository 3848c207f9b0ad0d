"""Load NCSNv2 score networks from the checkpoint formats found in the wild.

Formats (see ``docs/checkpoints.md``):

* ``ncsnv2-list``: ``[state_dict, optimizer, epoch, step(, ema_state)]`` written by
  ``ermongroup/ncsnv2`` and Jalal et al.'s ``csgm-mri-langevin`` (state dict ``module.``-prefixed
  from ``DataParallel`` and holding ``module.sigmas``; the EMA shadow unprefixed, parameters only).
* ``model_state-dict``: ``{"model_state", "ema_state", "config", ...}`` of the Aali/Tamir
  training pipeline (``config`` a pickled ``dotmap.DotMap``, tensors often saved on CUDA).
* ``lightning``: a Lightning checkpoint of ``lit_sampler fit``; the network under
  ``state_dict["score_model.…"]``, its EMA copy under ``state_dict["ema_model.…"]``.
* ``state-dict``: a bare ``state_dict()`` of one of the three variants.

The variant comes from the key names (``res31`` ⇒ Deepest, ``res5`` ⇒ Deeper, else NCSNv2),
``ngf`` and the channel count from ``begin_conv.weight``, the noise levels from the ``sigmas``
buffer (or the saved config). Keyword overrides win over all of these.

Every file is first read with ``torch.load(weights_only=True)``; only when it holds objects that
allowlist refuses (a pickled module, numpy values, Lightning's ``AttributeDict``…) is it read with
a restricted unpickler that imports nothing: unknown classes become inert placeholders, so no code
from the file runs either way. ``dotmap.DotMap`` configs load as plain ordered dicts, without the
``dotmap`` package.
"""

from __future__ import annotations

import functools
import importlib
import math
import pickle
import types
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..schedules import geometric_sigmas
from .ncsnv2 import NCSNv2, NCSNv2Deeper, NCSNv2Deepest, _NCSNv2Family, build_sigmas

__all__ = ["CheckpointError", "CheckpointInfo", "load_score_model", "describe_checkpoint", "resolve_variant"]

PathLike = str | Path

_VARIANTS: dict[str, type[_NCSNv2Family]] = {
    "NCSNv2": NCSNv2,
    "NCSNv2Deeper": NCSNv2Deeper,
    "NCSNv2Deepest": NCSNv2Deepest,
}
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
_DOTMAP_GLOBALS = ("dotmap.DotMap",)
_FORMATS_WITH_EMA = ("ncsnv2-list", "model_state-dict", "lightning")


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


# ----------------------------------------------------------------------------------------------
# Reading the file safely


class _ForeignObject(dict):
    """Inert stand-in for an instance of a class that the restricted unpickler will not import.

    It accepts whatever the pickle feeds it (constructor arguments, state, items) and keeps it
    for inspection; none of the original class's code runs.
    """

    foreign_name = "?"
    dump_patches = False  # consulted by torch's legacy loader for pickled modules

    def __new__(cls, *args: Any, **kwargs: Any) -> _ForeignObject:
        obj = super().__new__(cls)
        obj.__dict__["foreign_args"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        self.__dict__["foreign_state"] = state

    def append(self, item: Any) -> None:
        self.__dict__.setdefault("foreign_items", []).append(item)

    def extend(self, items: Any) -> None:
        self.__dict__.setdefault("foreign_items", []).extend(items)

    def __repr__(self) -> str:
        return f"<foreign {self.foreign_name}>"


@functools.lru_cache(maxsize=None)
def _foreign_class(full_name: str) -> type[_ForeignObject]:
    return type(f"Foreign[{full_name}]", (_ForeignObject,), {"foreign_name": full_name})


@functools.lru_cache(maxsize=1)
def _allowed_globals() -> dict[str, Any]:
    """Globals the restricted unpickler may hand out: torch's own ``weights_only`` allowlist (tensor
    rebuild functions, dtypes, ``OrderedDict``…) plus numpy's array/scalar reconstruction."""
    allowed: dict[str, Any] = {"collections.OrderedDict": OrderedDict, "torch.Size": torch.Size}
    try:
        from torch import _weights_only_unpickler

        allowed.update(_weights_only_unpickler._get_allowed_globals())
    except (ImportError, AttributeError):  # private API; the minimum above still reads tensors
        import torch._utils as tu

        allowed.update({f"torch._utils.{n}": getattr(tu, n) for n in dir(tu) if n.startswith("_rebuild")})
    try:
        import numpy as np
    except ImportError:
        return allowed
    allowed.update({"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype})
    # Pickles name numpy 1's ``numpy.core.multiarray``; numpy 2 moved it to ``numpy._core``.
    multiarray = None
    for module_name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            multiarray = importlib.import_module(module_name)
            break
        except ImportError:
            continue
    for name in ("_reconstruct", "scalar") if multiarray is not None else ():
        for module_name in ("numpy._core.multiarray", "numpy.core.multiarray"):
            allowed[f"{module_name}.{name}"] = getattr(multiarray, name)
    dtypes = getattr(np, "dtypes", None)
    for name in dir(dtypes) if dtypes is not None else ():
        obj = getattr(dtypes, name)
        if isinstance(obj, type) and issubclass(obj, np.dtype):
            allowed[f"numpy.dtypes.{name}"] = obj
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        full_name = f"{module}.{name}"
        if full_name in _DOTMAP_GLOBALS:
            return OrderedDict
        allowed = _allowed_globals()
        if full_name in allowed:
            return allowed[full_name]
        return _foreign_class(full_name)


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


_restricted_pickle = types.ModuleType("lit_sampler_restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
_restricted_pickle.load = _restricted_load  # type: ignore[attr-defined]


def _sniff(path: Path) -> None:
    """Reject what is clearly not a torch checkpoint before unpickling, with a specific reason."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), expected a PyTorch checkpoint")
    with path.open("rb") as handle:
        head = handle.read(512)
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{path}: truncated or corrupted checkpoint: a torch.save zip archive without its "
                f"end-of-archive directory ({size} bytes); the download or copy was probably cut short"
            )
        return
    if head[:1] == b"\x80":  # pickle protocol ≥ 2: legacy (pre-1.6) torch.save or plain pickle
        return
    if head.startswith(b"\x1f\x8b"):
        hint = "gzip-compressed (e.g. checkpoint.tar.gz): unpack it first (tar -xzf FILE) and pass the .pth inside"
    elif len(head) >= 262 and head[257:262] == b"ustar":
        hint = "a tar archive: extract it first (tar -xf FILE) and pass the .pth inside"
    else:
        hint = f"expected a torch.save zip archive or pickle, found leading bytes {head[:8]!r}"
    raise CheckpointError(f"{path}: not a PyTorch checkpoint; {hint}")


def _needs_restricted_reader(path: Path) -> bool | None:
    """True when the file names globals outside the weights-only allowlist (besides DotMap);
    None when this torch cannot tell without trying."""
    probe = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if probe is None or not zipfile.is_zipfile(path):
        return None
    try:
        unsafe = set(probe(str(path)))
    except Exception:  # noqa: BLE001 - a failed probe only means "try and see"
        return None
    return bool(unsafe - set(_DOTMAP_GLOBALS))


def _read_checkpoint(path: PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True`` where the file allows it, else the restricted
    unpickler. Every failure becomes a :class:`CheckpointError` naming the file."""
    path = Path(path)
    _sniff(path)
    errors: list[str] = []
    if not _needs_restricted_reader(path):
        try:
            safe = getattr(torch.serialization, "safe_globals", None)
            if safe is not None:
                try:
                    context = safe([(OrderedDict, name) for name in _DOTMAP_GLOBALS])
                except TypeError:  # torch without (global, name) pairs: DotMap falls through
                    context = safe([])
                with context:
                    return torch.load(path, map_location=map_location, weights_only=True)
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as exc:
            errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
            raise CheckpointError(
                f"{path}: could not be read as a PyTorch checkpoint ({type(exc).__name__}: {exc}); "
                "the file may be truncated or corrupted"
            ) from exc
    try:
        return torch.load(path, map_location=map_location, weights_only=False, pickle_module=_restricted_pickle)
    except Exception as exc:  # noqa: BLE001 - every reader failure is reported the same way
        detail = f"{type(exc).__name__}: {exc}"
        raise CheckpointError(
            f"{path}: could not be read as a PyTorch checkpoint ({detail}); the file may be truncated or corrupted"
        ) from exc


# ----------------------------------------------------------------------------------------------
# Taking the file apart


@dataclass
class _Contents:
    format: str
    raw: dict[str, torch.Tensor] | None
    ema: dict[str, torch.Tensor] | None
    config: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and any(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _strip(state: Mapping[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors under ``prefix`` with the prefix and any ``DataParallel`` ``module.`` removed."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or not key.startswith(prefix):
            continue
        key = key[len(prefix) :]
        while key.startswith("module."):
            key = key[len("module.") :]
        if key == "n_averaged":  # torch.optim.swa_utils.AveragedModel bookkeeping
            continue
        out[key] = value
    return out


def _plain(obj: Any) -> Any:
    """Pickled configs (DotMap, AttributeDict, placeholders of foreign classes…) as nested plain
    dicts and lists. A DotMap or placeholder whose entries arrived as object state rather than
    items is unwrapped (DotMap keeps them in ``_map``)."""
    if isinstance(obj, Mapping):
        items = dict(obj)
        extra = getattr(obj, "__dict__", {})
        if not items:
            state = extra.get("foreign_state", extra)
            if isinstance(state, Mapping):
                items = dict(state.get("_map", state))
        return {str(k): _plain(v) for k, v in items.items() if not str(k).startswith("foreign_")}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _find(tree: Any, key: str) -> Any:
    """First non-empty value stored under ``key`` anywhere in a nested config (depth first)."""
    if isinstance(tree, Mapping):
        value = tree.get(key)
        if value is not None and not (isinstance(value, (Mapping, list)) and len(value) == 0):
            return value
        for child in tree.values():
            found = _find(child, key)
            if found is not None:
                return found
    elif isinstance(tree, list):
        for child in tree:
            found = _find(child, key)
            if found is not None:
                return found
    return None


def _unpack(obj: Any, path: Path) -> _Contents:
    if isinstance(obj, (list, tuple)):
        if not obj or not _is_state_dict(obj[0]):
            raise CheckpointError(
                f"{path}: a list checkpoint whose first element is {type(obj[0]).__name__ if obj else 'missing'}; "
                "expected [state_dict, optimizer, epoch, step, ema_state] as written by ncsnv2"
            )
        ema = _strip(obj[-1]) if len(obj) >= 5 and _is_state_dict(obj[-1]) else None
        meta = {}
        if len(obj) >= 4:
            meta = {"epoch": obj[2], "step": obj[3]}
        return _Contents("ncsnv2-list", _strip(obj[0]), ema, None, meta)

    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, expected a dict, list or state dict")

    if "state_dict" in obj and _is_state_dict(obj["state_dict"]):
        state = obj["state_dict"]
        raw, ema = _strip(state, "score_model."), _strip(state, "ema_model.")
        if not raw and not ema:
            prefixes = sorted({k.split(".", 1)[0] for k in state})
            raise CheckpointError(
                f"{path}: Lightning checkpoint without 'score_model.*' or 'ema_model.*' keys in state_dict "
                f"(found prefixes {prefixes}); expected a checkpoint written by `lit_sampler fit`"
            )
        meta = {k: obj.get(k) for k in ("epoch", "global_step", "pytorch-lightning_version") if k in obj}
        if "global_step" in meta:
            meta["step"] = meta.pop("global_step")
        return _Contents("lightning", raw or None, ema or None, _plain(obj.get("hyper_parameters")), meta)

    if "model_state" in obj or "ema_state" in obj:
        parts: dict[str, dict[str, torch.Tensor] | None] = {}
        for key in ("model_state", "ema_state"):
            part = obj.get(key)
            if part is not None and not _is_state_dict(part):
                raise CheckpointError(f"{path}: '{key}' is a {type(part).__name__}, expected a state dict of tensors")
            parts[key] = _strip(part) if part is not None else None
        meta = {k: obj[k] for k in ("epoch", "step") if k in obj and isinstance(obj[k], int)}
        return _Contents("model_state-dict", parts["model_state"], parts["ema_state"], _plain(obj.get("config")), meta)

    if _is_state_dict(obj):
        return _Contents("state-dict", _strip(obj), None)

    keys = sorted(str(k) for k in obj)[:12]
    raise CheckpointError(
        f"{path}: unrecognised checkpoint layout with top-level keys {keys}; expected an ncsnv2 list, "
        "a dict with 'model_state'/'ema_state', a Lightning checkpoint with 'state_dict', or a bare state dict"
    )


def _select(contents: _Contents, use_ema: bool, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The weights to load and which they are. EMA shadows hold parameters only, so they are laid
    over the raw state dict, which still provides the buffers (``sigmas``)."""
    if use_ema and contents.ema:
        return {**(contents.raw or {}), **contents.ema}, "ema"
    if contents.raw:
        if use_ema and contents.format in _FORMATS_WITH_EMA:
            warnings.warn(f"{path}: no EMA weights in this checkpoint; using the raw weights", stacklevel=3)
        return dict(contents.raw), "raw"
    assert contents.ema is not None
    warnings.warn(f"{path}: only EMA weights in this checkpoint; using them although use_ema=False", stacklevel=3)
    return dict(contents.ema), "ema"


# ----------------------------------------------------------------------------------------------
# Architecture inference


def resolve_variant(variant: str | type[nn.Module]) -> type[_NCSNv2Family]:
    """The class for a variant name (``"NCSNv2Deepest"``, ``"deepest"``, Aali's ``"large"``…)."""
    if isinstance(variant, type) and issubclass(variant, _NCSNv2Family):
        return variant
    name = _ALIASES.get(str(variant).lower())
    if name is None:
        raise CheckpointError(f"unknown NCSNv2 variant {variant!r}; expected one of {sorted(_VARIANTS)}")
    return _VARIANTS[name]


@functools.lru_cache(maxsize=32)
def _expected_shapes(variant: str, ngf: int, in_channels: int) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = _VARIANTS[variant](in_channels=in_channels, ngf=ngf, sigmas=[1.0])
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "sigmas"}


def _guess(state: Mapping[str, torch.Tensor]) -> tuple[str, int, int] | None:
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


def _infer_architecture(
    state: Mapping[str, torch.Tensor],
    path: Path,
    variant: str | type[nn.Module] | None,
    ngf: int | None,
    in_channels: int | None,
) -> tuple[str, int, int]:
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
        expected = _expected_shapes(name, width, channels)
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
            fits = not any(_mismatch(state, _expected_shapes(*guess)))
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


# ----------------------------------------------------------------------------------------------
# Noise levels and input map


def _config_sigmas(config: Any) -> torch.Tensor | None:
    if config is None:
        return None
    stored = _find(config, "sigmas")
    if stored is not None:
        levels = torch.as_tensor(stored, dtype=torch.float32).detach().cpu().reshape(-1)
        if levels.numel() > 0:
            return levels
    begin, end, count = (_find(config, k) for k in ("sigma_begin", "sigma_end", "num_classes"))
    if begin is None or end is None or count is None:
        return None
    if str(_find(config, "sigma_dist") or "geometric") == "uniform":
        return torch.linspace(float(begin), float(end), int(count), dtype=torch.float64).float()
    return geometric_sigmas(float(begin), float(end), int(count))


def _resolve_sigmas(
    path: Path,
    stored: torch.Tensor | None,
    config: Any,
    sigmas: Sequence[float] | torch.Tensor | None,
    sigma_begin: float | None,
    sigma_end: float | None,
    num_classes: int | None,
) -> tuple[torch.Tensor | None, str]:
    from_config = _config_sigmas(config)
    if sigmas is not None or sigma_begin is not None or sigma_end is not None:
        count = num_classes
        if sigmas is None and count is None:
            count = next((s.numel() for s in (stored, from_config) if s is not None), None)
        try:
            levels = build_sigmas(sigmas, sigma_begin, sigma_end, count)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc
        if stored is not None and not (stored.shape == levels.shape and torch.allclose(stored.float().cpu(), levels, rtol=1e-4)):
            warnings.warn(f"{path}: the sigmas passed replace the {stored.numel()} levels stored in the checkpoint", stacklevel=4)
        return levels, "argument"
    for levels, source in ((stored, "checkpoint"), (from_config, "config")):
        if levels is None:
            continue
        levels = levels.detach().float().cpu().reshape(-1)
        if num_classes is not None and int(num_classes) != levels.numel():
            where = "'sigmas' buffer" if source == "checkpoint" else "saved config"
            raise CheckpointError(
                f"{path}: num_classes={num_classes} disagrees with the {levels.numel()} noise levels in the {where}"
            )
        if source == "checkpoint" and from_config is not None:
            if from_config.shape != levels.shape or not torch.allclose(from_config, levels, rtol=1e-4):
                warnings.warn(
                    f"{path}: the saved config's sigmas differ from the checkpoint's 'sigmas' buffer; using the buffer",
                    stacklevel=4,
                )
        return levels, source
    return None, "missing"


def _resolve_input_map(config: Any, input_map: bool | None) -> bool:
    if input_map is not None:
        return bool(input_map)
    explicit = _find(config, "input_map")
    if isinstance(explicit, bool):
        return explicit
    # ncsnv2 skips 2x − 1 when data.logit_transform or data.rescaled is set.
    return not (bool(_find(config, "logit_transform")) or bool(_find(config, "rescaled")))


# ----------------------------------------------------------------------------------------------
# Public API


def _prepare(
    path: PathLike,
    *,
    use_ema: bool,
    variant: str | type[nn.Module] | None,
    ngf: int | None,
    in_channels: int | None,
    map_location: Any,
) -> tuple[Path, _Contents, dict[str, torch.Tensor], str, tuple[str, int, int]]:
    path = Path(path)
    contents = _unpack(_read_checkpoint(path, map_location), path)
    state, weights = _select(contents, use_ema, path)
    architecture = _infer_architecture(state, path, variant, ngf, in_channels)
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
        path: checkpoint in any of the formats listed in the module docstring.
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
    levels, _ = _resolve_sigmas(path, stored, contents.config, sigmas, sigma_begin, sigma_end, num_classes)
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
        model = _VARIANTS[name](
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
        levels, source = _resolve_sigmas(path, state.pop("sigmas", None), contents.config, None, None, None, None)
    meta = dict(contents.meta)
    epoch, step = meta.pop("epoch", None), meta.pop("step", None)
    return CheckpointInfo(
        path=str(path),
        format=contents.format,
        variant=name,
        ngf=width,
        in_channels=channels,
        num_parameters=int(sum(math.prod(shape) for shape in _expected_shapes(name, width, channels).values())),
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
