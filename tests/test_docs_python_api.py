"""Docs that run: every ```python block of docs/python_api.md (in order, in one namespace, as the
cells of a notebook), the README's "Python API" section, and every examples/*.py notebook script,
from the repository root, exactly as written (the demo prior on 64² slices, `preset="fast"`,
two samples: a few seconds a reconstruction on one core)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import matplotlib
import pytest
import torch

from helpers import ROOT

matplotlib.use("Agg")  # (the docs say so themselves; this keeps a stray backend away from the test process)

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block of a markdown text, in order."""
    return [(match.group(1), match.group(2)) for match in FENCE.finditer(text)]


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run_blocks(blocks: list[tuple[str, str]], where: str) -> dict:
    assert blocks, f"{where}: no code block"
    namespace: dict = {"__name__": "__docs__"}
    for index, (language, code) in enumerate(blocks):
        assert language == "python", f"{where}: block {index} is ```{language}, not run; every block must be ```python"
        try:
            exec(compile(code, f"{where}[block {index}]", "exec"), namespace)
        except Exception as error:  # name the block, then fail with the original
            raise AssertionError(f"{where}: block {index} failed: {type(error).__name__}: {error}\n{code}") from error
    return namespace


def test_every_block_of_docs_python_api_runs(at_root):
    namespace = run_blocks(code_blocks((ROOT / "docs" / "python_api.md").read_text()), "docs/python_api.md")
    # what the page promises, checked on what it computed
    result, measured = namespace["result"], namespace["measured"]
    target = measured.target.abs()
    psnr = namespace["psnr"]
    assert psnr(target, result.mean.abs(), target.max()) > psnr(target, result.zero_filled.abs(), target.max())
    assert (namespace["figures"] / "demo_slice.png").stat().st_size > 0
    assert (namespace["figures"] / "baselines.png").stat().st_size > 0
    assert namespace["own"].mean.shape == (2, 64, 64) and namespace["calibrated"].upper is not None


def test_readme_python_api_section_runs(at_root):
    namespace = run_blocks(code_blocks(readme_section("Python API")), "README.md, Python API")
    assert "result" in namespace


def test_examples_exist_as_notebook_scripts():
    assert EXAMPLES, "examples/*.py"
    for path in EXAMPLES:
        text = path.read_text()
        assert text.startswith("# %% [markdown]") and text.count("\n# %%") >= 2, f"{path.name}: not percent-format cells"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(at_root, path):
    namespace = runpy.run_path(str(path), run_name="__main__")
    assert namespace.get("OUTPUT") is not None and any(Path(namespace["OUTPUT"]).iterdir()), f"{path.name} wrote no figure"
