"""A restricted unpickler for checkpoints that ``torch.load(weights_only=True)`` refuses.

It imports nothing: globals on torch's own ``weights_only`` allowlist (plus numpy's array and
scalar reconstruction) are handed out, ``dotmap.DotMap`` becomes a plain ``OrderedDict`` (so
Aali's configs load without the ``dotmap`` package), and every other class becomes an inert
placeholder that keeps what the pickle feeds it. No code from the file runs.

Pass :data:`restricted_pickle` as ``torch.load(..., pickle_module=restricted_pickle)``.
"""

from __future__ import annotations

import functools
import importlib
import pickle
import types
from collections import OrderedDict
from typing import Any

import torch

__all__ = ["DOTMAP_GLOBALS", "restricted_pickle"]

DOTMAP_GLOBALS = ("dotmap.DotMap",)


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
        if full_name in DOTMAP_GLOBALS:
            return OrderedDict
        allowed = _allowed_globals()
        if full_name in allowed:
            return allowed[full_name]
        return _foreign_class(full_name)


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


# torch.load takes a ``pickle_module`` and uses its ``Unpickler`` and ``load``.
restricted_pickle = types.ModuleType("lit_sampler_restricted_pickle")
restricted_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle.load = _restricted_load  # type: ignore[attr-defined]
