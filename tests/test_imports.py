"""The layout rules (docs/architecture.md): imports only go down the layers, and the math core
(physics, sampling) imports neither Lightning nor h5py."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lit_sampler"

# bottom to top. A module may import from its own layer and the layers below it, never from one
# above: every import counts, at the top of a file or inside a function, and so do the
# ``lazy_exports`` tables of the packages' __init__ files.
LAYERS = [
    ("errors", "seeding", "atomic", "_imports"),  # the foundation: top-level modules under everything
    ("physics",),  # the forward model                                  } the math core: no Lightning,
    ("sampling",),  # the chains, schedules, presets, baselines          } no h5py
    ("models",),  # networks and checkpoints
    ("data",),  # files → measurements, records (no Lightning)
    ("evaluation",),  # metrics, uncertainty, calibration, tuning
    ("api",),  # the engine and the Python API (no Lightning)
    ("outputs",),  # writer, run directory, report, volumes, figures, export
    ("datamodules",),  # the LightningDataModules
    ("lightning",),  # the LightningModules and callbacks
    ("tools",),  # frontier, calibrate, benchmarks
    ("failures", "cli", "__main__", "__init__"),  # the command line, and the package's own exports
]
MATH_CORE = ("physics", "sampling")
FORBIDDEN_IN_CORE = ("pytorch_lightning", "lightning", "h5py")
LAYER = {unit: index for index, units in enumerate(LAYERS) for unit in units}


def modules() -> dict[str, Path]:
    """Dotted name → file of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("lit_sampler", *path.relative_to(PACKAGE).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def unit(dotted: str) -> str:
    """The layer unit of a module: its top-level package or module (``lit_sampler`` itself: ``__init__``)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(name: str, path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import in the file, relative ones resolved, and of the
    modules named by its ``lazy_exports`` table."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def absolute(module: str | None, level: int) -> str:
        if not level:
            return module or ""
        base = package.split(".")[: len(package.split(".")) - (level - 1)]
        return ".".join(base + ([module] if module else []))

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node.module, node.level)
            if node.module is None:  # from . import x: x is a module
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "lazy_exports":
            table = node.args[1]
            assert isinstance(table, ast.Dict), f"{path}: lazy_exports takes a dict literal"
            for value in table.values:
                relative = value.value
                level = len(relative) - len(relative.lstrip("."))
                found.append((value.lineno, absolute(relative[level:] or None, level)))
    return found


def test_every_module_has_a_layer():
    assert sorted({unit(name) for name in modules()} - set(LAYER)) == []


def test_imports_only_go_down_the_layers():
    upward = []
    for name, path in modules().items():
        here = LAYER[unit(name)]
        for line, target in imports(name, path):
            if target.split(".")[0] != "lit_sampler":
                continue
            there = LAYER[unit(target)]
            if there > here:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {unit(name)} imports {target} ({unit(target)})")
    assert upward == []


def test_the_math_core_names_neither_lightning_nor_h5py():
    named = []
    for name, path in modules().items():
        if unit(name) in MATH_CORE:
            named += [f"{path.name}:{line}: {target}" for line, target in imports(name, path)
                      if target.split(".")[0] in FORBIDDEN_IN_CORE]
    assert named == []


def test_math_core_imports_neither_lightning_nor_h5py():
    """And at run time: importing every module of the math core (and the light modules the Python
    API and the tests lean on) loads neither."""
    core = [name for name in modules() if unit(name) in MATH_CORE]
    light = ["lit_sampler", "lit_sampler.models", "lit_sampler.data.geometry", "lit_sampler.evaluation.metrics"]
    probe = ("import sys\n" + "".join(f"import {name}\n" for name in core + light)
             + f"print(sorted(k for k in {FORBIDDEN_IN_CORE!r} if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_rule_sees_an_upward_import(tmp_path):
    """The checker itself: a physics module importing the Lightning shell, inside a function, is caught."""
    path = tmp_path / "bad.py"
    path.write_text("def f():\n    from ..lightning.module import LangevinSampler\n")
    assert imports("lit_sampler.physics.bad", path) == [(2, "lit_sampler.lightning.module")]
    assert LAYER[unit("lit_sampler.lightning.module")] > LAYER[unit("lit_sampler.physics.bad")]
