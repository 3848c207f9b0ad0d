"""How the package's names are found: lazy package exports, and the names that moved.

* :func:`lazy_exports`: a package's ``__getattr__``/``__dir__``/``__all__`` over a table
  ``name → module`` (PEP 562), so importing a light module of a package (say
  :mod:`lit_sampler.data.geometry`) does not pull in h5py or Lightning through the package's
  ``__init__``.
* The modules moved into the layer packages (docs/architecture.md). An old module path still
  imports — configs name classes by ``class_path`` and jsonargparse resolves it by import, pickles
  name classes by module — and a name taken from it gives one ``FutureWarning`` naming its new path: :data:`MOVED_MODULES`
  (old module → the modules now holding its names) and :data:`MOVED_NAMES` (names that left a
  package that still exists). :func:`install` adds the finder that serves them (the package's
  ``__init__`` calls it); :func:`current_names` rewrites old class paths in recorded settings
  (``run_settings.json``, calibration files) to the classes' names now, so that a run directory or
  a calibration made before the move is compared like with like.

This module imports nothing of the package at import time, so every layer may use it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
import types
import warnings
from typing import Any, Callable

# old module → the modules that hold its names now (searched in order)
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "lit_sampler.fft": ("lit_sampler.physics.fft",),
    "lit_sampler.operators": ("lit_sampler.physics.operators",),
    "lit_sampler.coils": ("lit_sampler.physics.coils",),
    "lit_sampler.noise": ("lit_sampler.physics.noise",),
    "lit_sampler.masks": ("lit_sampler.physics.masks",),
    "lit_sampler.masks_base": ("lit_sampler.physics.masks.common",),
    "lit_sampler.masks_draws": ("lit_sampler.physics.masks.common", "lit_sampler.physics.masks.lines"),
    "lit_sampler.masks_poisson": ("lit_sampler.physics.masks.variable_density",),
    "lit_sampler.schedules": ("lit_sampler.sampling.schedules",),
    "lit_sampler.presets": ("lit_sampler.sampling.presets",),
    "lit_sampler.decomposed": ("lit_sampler.sampling.decomposed",),
    "lit_sampler.warm_start": ("lit_sampler.sampling.warm_start",),
    "lit_sampler.gaussian_chain": ("lit_sampler.sampling.gaussian_chain",),
    "lit_sampler.baselines": ("lit_sampler.sampling.baselines", "lit_sampler.api.baseline_recon"),
    "lit_sampler.chain_tracker": ("lit_sampler.sampling.chain_tracker",),
    "lit_sampler.sampler_options": ("lit_sampler.sampling.options",),
    "lit_sampler.metrics": ("lit_sampler.evaluation.metrics",),
    "lit_sampler.uncertainty": ("lit_sampler.evaluation.uncertainty",),
    "lit_sampler.calibration": ("lit_sampler.evaluation.calibration",),
    "lit_sampler.tuning": ("lit_sampler.evaluation.tuning",),
    "lit_sampler.engine": ("lit_sampler.api.engine",),
    "lit_sampler.inputs": ("lit_sampler.api.inputs",),
    "lit_sampler.baseline_recon": ("lit_sampler.api.baseline_recon",),
    "lit_sampler.prediction": ("lit_sampler.outputs.prediction",),
    "lit_sampler.writer": ("lit_sampler.outputs.writer",),
    "lit_sampler.run_dir": ("lit_sampler.outputs.run_dir",),
    "lit_sampler.report": ("lit_sampler.outputs.report",),
    "lit_sampler.slice_report": ("lit_sampler.outputs.slice_report",),
    "lit_sampler.volumes": ("lit_sampler.outputs.volumes",),
    "lit_sampler.figures": ("lit_sampler.outputs.figures",),
    "lit_sampler.export": ("lit_sampler.outputs.export",),
    "lit_sampler.data.posterior": ("lit_sampler.datamodules.posterior",),
    "lit_sampler.data.prior": ("lit_sampler.datamodules.prior",),
    "lit_sampler.data.training_data": ("lit_sampler.datamodules.training_data",),
    "lit_sampler.data.supervised": ("lit_sampler.datamodules.supervised",),
    "lit_sampler.module": ("lit_sampler.lightning.module",),
    "lit_sampler.training": ("lit_sampler.lightning.training",),
    "lit_sampler.supervised": ("lit_sampler.lightning.supervised",),
    "lit_sampler.progress": ("lit_sampler.lightning.progress",),
    "lit_sampler.interrupts": ("lit_sampler.lightning.interrupts",),
    "lit_sampler.frontier": ("lit_sampler.tools.frontier",),
    "lit_sampler.calibrate": ("lit_sampler.tools.calibrate",),
    "lit_sampler.benchmarks": ("lit_sampler.tools.benchmarks",),
    **{f"lit_sampler.benchmarks.{name}": (f"lit_sampler.tools.benchmarks.{name}",)
       for name in ("bare_loop", "configs", "driver", "measure", "runs", "table", "workload")},
}
# (lit_sampler.sampling and lit_sampler.api were modules and are packages now: they export the
# names their modules had, so they need no entry.)

# names that left a package that still exists: old dotted name → new dotted name
MOVED_NAMES: dict[str, str] = {
    f"lit_sampler.data.{name}": f"lit_sampler.datamodules.{name}"
    for name in ("FastMRIDataModule", "ItemRef", "PriorDataModule", "TrainingDataModule")
}

_warned: set[str] = set()


def _public_name(value: Any, fallback: str) -> str:
    """The shortest dotted name that reaches ``value`` (``lit_sampler.outputs.ReconstructionWriter``
    rather than ``lit_sampler.outputs.writer.ReconstructionWriter``), as jsonargparse prints it."""
    owner, qualname = getattr(value, "__module__", None), getattr(value, "__name__", None)
    if not owner or not qualname:
        return fallback
    parts = owner.split(".")
    for count in range(1, len(parts) + 1):
        prefix = ".".join(parts[:count])
        try:
            if getattr(importlib.import_module(prefix), qualname, None) is value:
                return f"{prefix}.{qualname}"
        except ImportError:
            break
    return fallback


def _warn_moved(old: str, value: Any, new: str) -> None:
    """One ``FutureWarning`` per old name and process, naming the new one."""
    if old in _warned:
        return
    _warned.add(old)
    warnings.warn(f"{old} is now {_public_name(value, new)} (the modules moved into layer packages: "
                  "docs/architecture.md); the old name still works: name the new one in configs and imports",
                  FutureWarning, stacklevel=4)


class _MovedModule(types.ModuleType):
    """What an old module path imports as: its names, looked up in the modules that hold them now."""

    def __init__(self, name: str, homes: tuple[str, ...]):
        super().__init__(name, f"moved to {', '.join(homes)}")
        self.__homes = homes

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for home in self.__homes:
            module = importlib.import_module(home)
            if hasattr(module, name):
                value = getattr(module, name)
                _warn_moved(f"{self.__name__}.{name}", value, f"{home}.{name}")
                return value
        raise AttributeError(f"module {self.__name__!r} (moved to {', '.join(self.__homes)}) has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({name for home in self.__homes for name in dir(importlib.import_module(home))})


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves :data:`MOVED_MODULES`; it comes after the path finders, so a real module always wins."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        homes = MOVED_MODULES.get(fullname)
        if homes is None:
            return None
        package = any(name.startswith(fullname + ".") for name in MOVED_MODULES)
        return importlib.util.spec_from_loader(fullname, self, is_package=package)

    def create_module(self, spec) -> types.ModuleType:
        return _MovedModule(spec.name, MOVED_MODULES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the names are looked up (and the warning given) when first used."""


def install() -> None:
    """Add the finder of the moved modules to ``sys.meta_path`` (once), right after the path finder:
    a real module is found first, and an old name is served before any later finder (an editable
    install's finder of another checkout could otherwise serve a file of the old layout)."""
    if any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        return
    after = [i for i, finder in enumerate(sys.meta_path) if finder is importlib.machinery.PathFinder]
    sys.meta_path.insert(after[0] + 1 if after else len(sys.meta_path), _MovedFinder())


def moved_attribute(package: str, name: str) -> Any:
    """``package.name`` for a name that left ``package`` (:data:`MOVED_NAMES`), with the warning;
    else the ``AttributeError`` Python raises for a missing attribute."""
    new = MOVED_NAMES.get(f"{package}.{name}")
    if new is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    module, _, attr = new.rpartition(".")
    value = getattr(importlib.import_module(module), attr)
    _warn_moved(f"{package}.{name}", value, new)
    return value


def lazy_exports(package: str, homes: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, whose names (``homes``: name →
    module, relative to ``package``) are imported on first use; names that left the package
    (:data:`MOVED_NAMES`) are still found."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            return moved_attribute(package, name)
        value = getattr(importlib.import_module(home, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__, sorted(homes)


_DOTTED = re.compile(r"^lit_sampler(\.[A-Za-z_]\w*)+$")


def _moved_name(dotted: str) -> bool:
    if dotted in MOVED_NAMES:
        return True
    module = dotted.rpartition(".")[0]
    return any(module == old or module.startswith(old + ".") for old in MOVED_MODULES)


def current_name(dotted: str) -> str:
    """An old dotted name of a class or function (``lit_sampler.masks.RandomLineMask``) → the name its
    object has now, ``module.qualname`` as settings record it
    (``lit_sampler.physics.masks.lines.RandomLineMask``); any other text unchanged."""
    if not _DOTTED.match(dotted) or not _moved_name(dotted):
        return dotted
    module, _, attr = dotted.rpartition(".")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            value = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return dotted
    owner, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    return f"{owner}.{qualname}" if owner and qualname else dotted


def current_names(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, tuples, strings) with every old dotted name replaced by
    :func:`current_name`."""
    if isinstance(value, str):
        return current_name(value)
    if isinstance(value, (list, tuple)):
        return type(value)(current_names(v) for v in value)
    if isinstance(value, dict):
        return {k: current_names(v) for k, v in value.items()}
    return value
