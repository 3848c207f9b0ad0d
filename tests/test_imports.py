"""Layout rule (DESIGN.md): the math core imports neither Lightning nor h5py."""

import subprocess
import sys

CORE = ["physics", "sampling", "evaluation.metrics", "data.geometry", "models"]


def test_math_core_imports_neither_lightning_nor_h5py():
    probe = ("import sys\n" + "".join(f"import lit_sampler.{name}\n" for name in CORE)
             + "print(sorted(k for k in ('h5py', 'pytorch_lightning', 'lightning') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
