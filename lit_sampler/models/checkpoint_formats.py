"""Reading a checkpoint file and taking it apart into raw weights, EMA weights and saved config.

Formats (see README, "Bring your checkpoint"):

* ``ncsnv2-list``: ``[state_dict, optimizer, epoch, step(, ema_state)]`` written by
  ``ermongroup/ncsnv2`` and Jalal et al.'s ``csgm-mri-langevin`` (state dict ``module.``-prefixed
  from ``DataParallel`` and holding ``module.sigmas``; the EMA shadow unprefixed, parameters only).
* ``model_state-dict``: ``{"model_state", "ema_state", "config", ...}`` of the Aali/Tamir
  training pipeline (``config`` a pickled ``dotmap.DotMap``, tensors often saved on CUDA).
* ``lightning``: a Lightning checkpoint of ``lit_sampler fit``; the network under
  ``state_dict["score_model.…"]``, its EMA copy under ``state_dict["ema_model.…"]``.
* ``state-dict``: a bare ``state_dict()`` of one of the three variants.

Every file is first read with ``torch.load(weights_only=True)``; only when it holds objects that
allowlist refuses (a pickled module, numpy values, Lightning's ``AttributeDict``…) is it read with
the restricted unpickler of :mod:`.unpickle`, so no code from the file runs either way.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from .unpickle import DOTMAP_GLOBALS, restricted_pickle

__all__ = ["CheckpointError", "Contents", "PathLike", "find_in_config", "read_checkpoint", "select_weights", "unpack"]

PathLike = str | Path

_FORMATS_WITH_EMA = ("ncsnv2-list", "model_state-dict", "lightning")


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
    return bool(unsafe - set(DOTMAP_GLOBALS))


def read_checkpoint(path: PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True`` where the file allows it, else the restricted
    unpickler. Every failure becomes a :class:`CheckpointError` naming the file."""
    path = Path(path)
    _sniff(path)
    if not _needs_restricted_reader(path):
        try:
            safe = getattr(torch.serialization, "safe_globals", None)
            if safe is not None:
                try:
                    context = safe([(OrderedDict, name) for name in DOTMAP_GLOBALS])
                except TypeError:  # torch without (global, name) pairs: DotMap falls through
                    context = safe([])
                with context:
                    return torch.load(path, map_location=map_location, weights_only=True)
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError:  # refused by the allowlist: the restricted unpickler below
            pass
        except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
            raise CheckpointError(
                f"{path}: could not be read as a PyTorch checkpoint ({type(exc).__name__}: {exc}); "
                "the file may be truncated or corrupted"
            ) from exc
    try:
        return torch.load(path, map_location=map_location, weights_only=False, pickle_module=restricted_pickle)
    except Exception as exc:  # noqa: BLE001 - every reader failure is reported the same way
        detail = f"{type(exc).__name__}: {exc}"
        raise CheckpointError(
            f"{path}: could not be read as a PyTorch checkpoint ({detail}); the file may be truncated or corrupted"
        ) from exc


@dataclass
class Contents:
    """A checkpoint taken apart: its format name, the raw and EMA state dicts (keys without
    ``module.``/Lightning prefixes; None where absent), the saved config as plain dicts, and
    epoch/step metadata."""

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


def find_in_config(tree: Any, key: str) -> Any:
    """First non-empty value stored under ``key`` anywhere in a nested config (depth first)."""
    if isinstance(tree, Mapping):
        value = tree.get(key)
        if value is not None and not (isinstance(value, (Mapping, list)) and len(value) == 0):
            return value
        for child in tree.values():
            found = find_in_config(child, key)
            if found is not None:
                return found
    elif isinstance(tree, list):
        for child in tree:
            found = find_in_config(child, key)
            if found is not None:
                return found
    return None


def unpack(obj: Any, path: Path) -> Contents:
    """The parts of whatever ``read_checkpoint`` returned, by format; :class:`CheckpointError`
    for a layout that is none of them."""
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
        return Contents("ncsnv2-list", _strip(obj[0]), ema, None, meta)

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
        return Contents("lightning", raw or None, ema or None, _plain(obj.get("hyper_parameters")), meta)

    if "model_state" in obj or "ema_state" in obj:
        parts: dict[str, dict[str, torch.Tensor] | None] = {}
        for key in ("model_state", "ema_state"):
            part = obj.get(key)
            if part is not None and not _is_state_dict(part):
                raise CheckpointError(f"{path}: '{key}' is a {type(part).__name__}, expected a state dict of tensors")
            parts[key] = _strip(part) if part is not None else None
        meta = {k: obj[k] for k in ("epoch", "step") if k in obj and isinstance(obj[k], int)}
        return Contents("model_state-dict", parts["model_state"], parts["ema_state"], _plain(obj.get("config")), meta)

    if _is_state_dict(obj):
        return Contents("state-dict", _strip(obj), None)

    keys = sorted(str(k) for k in obj)[:12]
    raise CheckpointError(
        f"{path}: unrecognised checkpoint layout with top-level keys {keys}; expected an ncsnv2 list, "
        "a dict with 'model_state'/'ema_state', a Lightning checkpoint with 'state_dict', or a bare state dict"
    )


def select_weights(contents: Contents, use_ema: bool, path: Path) -> tuple[dict[str, torch.Tensor], str]:
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
