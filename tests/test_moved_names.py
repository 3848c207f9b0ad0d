"""The modules moved into layer packages (docs/architecture.md). What users wrote before keeps
working: configs and imports naming a pre-move path (with one FutureWarning naming the new one),
run directories and calibration files that recorded pre-move class names. And nothing shipped
names an old path any more."""

from __future__ import annotations

import importlib
import re
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from helpers import ROOT, assert_same_results, main_in_process, predict_config, snapshot, write_tiny_checkpoint
from lit_sampler import _imports

# every class_path a shipped config or the README ever named (`git log -p -- configs README.md docs
# | grep class_path`), and the operator's import path: old → new
OLD_CLASS_PATHS = {
    "lit_sampler.module.LangevinSampler": "lit_sampler.lightning.LangevinSampler",
    "lit_sampler.training.ScoreMatching": "lit_sampler.lightning.ScoreMatching",
    "lit_sampler.supervised.VarNetTraining": "lit_sampler.lightning.VarNetTraining",
    "lit_sampler.interrupts.StopOnSignal": "lit_sampler.lightning.StopOnSignal",
    "lit_sampler.data.FastMRIDataModule": "lit_sampler.datamodules.FastMRIDataModule",
    "lit_sampler.data.PriorDataModule": "lit_sampler.datamodules.PriorDataModule",
    "lit_sampler.data.TrainingDataModule": "lit_sampler.datamodules.TrainingDataModule",
    "lit_sampler.data.supervised.SupervisedDataModule": "lit_sampler.datamodules.SupervisedDataModule",
    "lit_sampler.masks.RandomLineMask": "lit_sampler.physics.masks.RandomLineMask",
    "lit_sampler.masks.EquispacedLineMask": "lit_sampler.physics.masks.EquispacedLineMask",
    "lit_sampler.masks.CsgmLineMask": "lit_sampler.physics.masks.CsgmLineMask",
    "lit_sampler.masks.VariableDensityMask": "lit_sampler.physics.masks.VariableDensityMask",
    "lit_sampler.masks.TransposedMask": "lit_sampler.physics.masks.TransposedMask",
    "lit_sampler.writer.ReconstructionWriter": "lit_sampler.outputs.ReconstructionWriter",
    "lit_sampler.operators.MultiCoilMRI": "lit_sampler.physics.operators.MultiCoilMRI",
}
UNCHANGED = ["lit_sampler.models.NCSNv2Deepest", "lit_sampler.models.varnet.VarNetBaseline"]


def resolve(dotted: str):
    """What jsonargparse does with a class_path: import the module, take the attribute."""
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Each old name warns once per process: forget which did, and the proxies built so far."""
    monkeypatch.setattr(_imports, "_warned", set())
    for name in [n for n in sys.modules if n in _imports.MOVED_MODULES]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("old, new", sorted(OLD_CLASS_PATHS.items()))
def test_an_old_class_path_resolves_to_the_moved_class_with_one_warning(old, new, fresh_warnings):
    with pytest.warns(FutureWarning, match=rf"^{re.escape(old)} is now (lit_sampler\.[\w.]+) \(") as caught:
        value = resolve(old)
        assert resolve(old) is value  # (warned once)
    assert value is resolve(new) and len(caught) == 1
    named = re.match(r"^\S+ is now (\S+) ", str(caught[0].message)).group(1)  # the shortest path to it
    assert resolve(named) is value and len(named) <= len(new)


@pytest.mark.parametrize("path", UNCHANGED)
def test_unmoved_class_paths_resolve_without_a_warning(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(resolve(path), type)


def test_old_module_imports_keep_working(fresh_warnings):
    with pytest.warns(FutureWarning):
        from lit_sampler.baselines import cg_sense, cg_sense_recon  # (split between two packages now)
        from lit_sampler.benchmarks.configs import RunConfig
        from lit_sampler.data import FastMRIDataModule
        from lit_sampler.masks_draws import choose, random_lines
        from lit_sampler.sampler_options import check_options
    from lit_sampler.api import cg_sense_recon as new_recon
    from lit_sampler.datamodules import FastMRIDataModule as new_module
    from lit_sampler.physics.masks.common import choose as new_choose
    from lit_sampler.sampling import cg_sense as new_cg_sense
    assert (cg_sense, cg_sense_recon, FastMRIDataModule, choose) == (new_cg_sense, new_recon, new_module, new_choose)
    assert random_lines.__module__ == "lit_sampler.physics.masks.lines"
    assert RunConfig.__module__ == "lit_sampler.tools.benchmarks.configs" and callable(check_options)
    # lit_sampler.sampling and lit_sampler.api were modules: the packages export their names
    from lit_sampler.api import ReconstructionResult, Sampler  # noqa: F401
    from lit_sampler.sampling import GaussianDataConsistency, annealed_langevin  # noqa: F401
    with pytest.raises(AttributeError, match=r"^module 'lit_sampler.data' has no attribute 'Nothing'$"):
        import lit_sampler.data

        lit_sampler.data.Nothing
    with pytest.raises(AttributeError, match=r"'lit_sampler.writer' \(moved to lit_sampler.outputs.writer\) has no attribute 'Nothing'"):
        import lit_sampler.writer

        lit_sampler.writer.Nothing


def old_config(config: Path, path: Path) -> Path:
    """``config`` with every new class path written as before the move."""
    text = config.read_text()
    for old, new in sorted(OLD_CLASS_PATHS.items(), key=lambda item: -len(item[1])):
        text = text.replace(new, old)
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_written_with_old_class_paths_still_parse(name, tmp_path, capsys, fresh_warnings):
    config = old_config(ROOT / "configs" / name, tmp_path / name)
    assert "lit_sampler.module." in config.read_text() or "lit_sampler.training." in config.read_text() \
        or "lit_sampler.supervised." in config.read_text()
    subcommand = "fit" if name.startswith("train") else "predict"
    with pytest.warns(FutureWarning, match=r" is now lit_sampler\."):
        assert main_in_process(subcommand, "--config", config, "--print_config") == 0
    assert "class_path: lit_sampler." in capsys.readouterr().out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny predict config (new class paths) and its finished run."""
    from conftest import write_phantom_file

    root = tmp_path_factory.mktemp("moved")
    write_phantom_file(root / "data" / "a.h5", slices=2, coils=2, size=(16, 16))
    checkpoint = write_tiny_checkpoint(root / "tiny.pt")

    def config(out: Path, name: str, **data_args) -> Path:
        return predict_config(root, checkpoint, root / "data", out, name=name, logger=False,
                              **({"snr_range": [20], "batch_size": 2} | data_args))

    finished = root / "finished"
    assert main_in_process("predict", "--config", config(finished, "new.yaml")) == 0
    return config, finished


def test_a_config_with_old_class_paths_runs_and_gives_the_same_results(tiny, tmp_path):
    config, finished = tiny
    old = old_config(config(tmp_path / "out", "new.yaml"), tmp_path / "old.yaml")
    assert "lit_sampler.module.LangevinSampler" in old.read_text() and "lit_sampler.masks.RandomLineMask" in old.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        assert main_in_process("predict", "--config", old) == 0
    assert_same_results(finished, tmp_path / "out")


def test_a_run_directory_of_before_the_move_resumes(tiny, tmp_path, capsys):
    """run_settings.json names the mask (and the operator) by module and class: an older run
    directory has the old names, and they compare equal to the classes they name now."""
    config, finished = tiny
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    settings = out / "run_settings.json"
    text = settings.read_text()
    older = text.replace('"lit_sampler.physics.masks.lines.RandomLineMask"', '"lit_sampler.masks.RandomLineMask"')
    older = older.replace('"lit_sampler.physics.operators.MultiCoilMRI"', '"lit_sampler.operators.MultiCoilMRI"')
    assert older.count('"lit_sampler.masks.RandomLineMask"') == 1 and older.count('"lit_sampler.operators.MultiCoilMRI"') == 1
    settings.write_text(older)
    before = snapshot(out)
    assert main_in_process("predict", "--config", config(out, "again.yaml")) == 0
    assert "resuming in" in capsys.readouterr().out
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k != "figure.png"} == {k: v for k, v in before.items() if k != "figure.png"}
    # other settings are still refused, the old names shown as recorded
    assert main_in_process("predict", "--config", config(out, "other.yaml", seed=5)) == 2
    assert "holds results of other settings (data.seed: 0 -> 5)" in capsys.readouterr().err


def test_a_calibration_of_before_the_move_is_accepted(tmp_path):
    from lit_sampler.evaluation.calibration import Calibration, CalibrationError, write_calibration

    mask = {"class": "lit_sampler.masks.RandomLineMask", "accelerations": [4.0], "center_fractions": [0.08]}
    path = tmp_path / "calibration.json"
    write_calibration(path, {"snr_20dB": {0.9: 1.7}}, {"snr_20dB": 10},
                      {"operator": "lit_sampler.operators.MultiCoilMRI", "mask": mask}, "test")
    now = {"operator": "lit_sampler.physics.operators.MultiCoilMRI",
           "mask": mask | {"class": "lit_sampler.physics.masks.lines.RandomLineMask"}}
    Calibration(path).check(now)
    with pytest.raises(CalibrationError, match=r"was made for mask = .*lit_sampler\.masks\.RandomLineMask"):
        Calibration(path).check(now | {"mask": mask | {"class": "lit_sampler.physics.masks.lines.EquispacedLineMask"}})


def test_current_names_leave_other_text_alone():
    assert _imports.current_names(["lit_sampler.masks.RandomLineMask", "lit_sampler.masks.Nothing", "demo/data",
                                   "my_package.MyOperator", ("lit_sampler.operators.MultiCoilMRI",)]) == [
        "lit_sampler.physics.masks.lines.RandomLineMask", "lit_sampler.masks.Nothing", "demo/data",
        "my_package.MyOperator", ("lit_sampler.physics.operators.MultiCoilMRI",)]


SHIPPED = ["configs", "docs", "scripts", "examples", "tests", "lit_sampler", "README.md", "demo/README.md", ".ci"]
# the files that name old paths on purpose: the table of moves, its test, the notes on them
KEEP_OLD = {"lit_sampler/_imports.py", "lit_sampler/__init__.py", "tests/test_moved_names.py", "docs/architecture.md"}


def test_nothing_shipped_names_an_old_path():
    token = re.compile(r"\blit_sampler(?:\.[A-Za-z_]\w*)+")
    found = []
    for entry in SHIPPED:
        paths = [ROOT / entry] if (ROOT / entry).is_file() else sorted((ROOT / entry).rglob("*"))
        for path in paths:
            relative = str(path.relative_to(ROOT))
            if not path.is_file() or path.suffix not in (".py", ".md", ".yaml", ".sh", "") or relative in KEEP_OLD:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for match in token.finditer(line):
                    parts = match.group(0).split(".")
                    prefixes = {".".join(parts[:n]) for n in range(2, len(parts) + 1)}
                    if prefixes & set(_imports.MOVED_MODULES) or match.group(0) in _imports.MOVED_NAMES:
                        found.append(f"{relative}:{number}: {match.group(0)}")
    assert found == []


def test_the_table_of_moves_points_at_modules_that_exist():
    for homes in _imports.MOVED_MODULES.values():
        for home in homes:
            assert importlib.import_module(home).__name__ == home
    for new in _imports.MOVED_NAMES.values():
        assert isinstance(resolve(new), type)
