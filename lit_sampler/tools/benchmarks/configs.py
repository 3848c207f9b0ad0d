"""What one benchmark measures: the shared :class:`Setup` (network, data, chain), the sweep's
:class:`RunConfig` rows, the ``--config name:key=value,…`` parser, the default sweep and the presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

REFERENCE_EVALS = (2311 - 1156) * 3  # configs/fastmri.yaml: L = 2311 levels, sigma_offset k = 1156, T = 3


@dataclass
class Setup:
    """The network and the data every configuration of one benchmark shares."""

    variant: str = "NCSNv2"
    ngf: int = 16
    size: int = 48
    coils: int = 4
    num_classes: int = 200
    sigma_begin: float = 41.0
    sigma_end: float = 0.01
    levels: int = 10  # levels run: the last ones (sigma_offset = num_classes - levels)
    steps_each: int = 2
    files: int = 1
    slices: int = 2
    snrs: list = field(default_factory=lambda: [None, 20.0])
    samples: int = 1
    step_size: float = 1e-4
    noise_boost: float = 1.0
    cg_iterations: int = 0
    final_denoise: bool = False
    device: str = "cpu"
    seed: int = 0
    reference_evals: int = REFERENCE_EVALS
    peak_tflops: Optional[float] = None  # the accelerator's dense matrix peak for the precision compared
    checkpoint: Optional[str] = None  # use these weights instead of random ones

    @property
    def items(self) -> int:
        return self.files * self.slices * len(self.snrs) * self.samples


@dataclass
class RunConfig:
    """One configuration of the sweep (``kind="bare"``: the reference loop; ``"predict"``: the real path)."""

    name: str
    kind: str = "predict"
    batch_size: int = 1
    precision: str = "32-true"
    channels_last: bool = True  # the module's defaults
    compile: bool = False
    compile_mode: Optional[str] = None
    batch_invariant: bool = True
    call_size: int = 4  # the module's default (network calls of exactly this many items when batch_invariant)
    inference_mode: bool = True
    cuda_graph: bool = False
    levels: Optional[int] = None  # override Setup.levels (e.g. bf16 on a CPU without bf16 units)
    steps_each: Optional[int] = None
    items: Optional[int] = None  # run only the first N items

    def describe(self) -> str:
        if self.kind == "bare":
            return "bare loop (B=1, fp32, eager)"
        parts = [f"B={self.batch_size}", {"32-true": "fp32", "32": "fp32"}.get(self.precision, self.precision)]
        parts += ["channels_first"] * (not self.channels_last)
        parts += [f"compile({self.compile_mode or 'default'})"] * self.compile
        parts += ["cuda_graph"] * self.cuda_graph
        parts += ["no inference_mode"] * (not self.inference_mode)
        parts += ["batched network (batch_invariant off)"] * (not self.batch_invariant)
        parts += [f"fixed calls of {self.call_size}"] * (self.batch_invariant and self.call_size != 4)
        return ", ".join(parts)


BOOL_KEYS = {"channels_last", "compile", "batch_invariant", "inference_mode", "cuda_graph"}
INT_KEYS = {"batch_size", "call_size", "levels", "steps_each", "items"}


def parse_config(text: str) -> RunConfig:
    """``"name:key=value,key=value"`` (``bare`` alone is the reference loop), e.g.
    ``"bf16_cl:batch_size=8,precision=bf16-mixed,channels_last=1"``."""
    name, _, rest = text.partition(":")
    kwargs: dict[str, Any] = {"name": name}
    if name == "bare" or name.startswith("bare"):
        kwargs["kind"] = "bare"
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        key = key.strip()
        if key in BOOL_KEYS:
            kwargs[key] = value.strip().lower() in ("1", "true", "yes", "on")
        elif key in INT_KEYS:
            kwargs[key] = int(value)
        elif key in ("precision", "compile_mode", "kind"):
            kwargs[key] = value.strip() or None
        else:
            raise ValueError(f"unknown configuration key {key!r} in {text!r}")
    return RunConfig(**kwargs)


def default_configs(setup: Setup, quick: bool) -> list[RunConfig]:
    """The sweep: bare loop; fp32 over batch sizes with the module's defaults (channels-last,
    batch-invariant: on CPU the network is called per item); the batched network
    (``batch_invariant`` off); channels-first; no inference mode; each precision; compile."""
    big = setup.items
    cuda = setup.device.startswith("cuda")
    configs = [RunConfig("bare", kind="bare", items=min(big, 2 if quick else 4))]
    sizes = sorted({1, min(4, big), big})
    configs += [RunConfig(f"fp32_b{b}", batch_size=b) for b in sizes]
    configs += [RunConfig(f"fp32_b{b}_batched", batch_size=b, batch_invariant=False) for b in sizes if b in (1, big)]
    configs.append(RunConfig(f"fp32_b{big}_channels_first", batch_size=big, channels_last=False))
    configs.append(RunConfig(f"fp32_b{big}_batched_channels_first", batch_size=big, channels_last=False, batch_invariant=False))
    configs.append(RunConfig(f"fp32_b{big}_no_inference_mode", batch_size=big, inference_mode=False))
    if cuda:
        configs += [
            RunConfig(f"bf16_b{big}", batch_size=big, precision="bf16-mixed"),
            RunConfig(f"fp16_b{big}", batch_size=big, precision="16-mixed"),
            RunConfig(f"bf16_b{big}_channels_first", batch_size=big, precision="bf16-mixed", channels_last=False),
            RunConfig(f"bf16_b{big}_graph", batch_size=big, precision="bf16-mixed", cuda_graph=True),
        ]
        if not quick:
            configs.append(RunConfig(f"bf16_b{big}_compile", batch_size=big, precision="bf16-mixed", compile=True))
    else:
        # bf16 on a CPU without bf16 instructions is emulated (5-170x slower): one level, one step, 2 items
        configs.append(RunConfig("bf16_b2", batch_size=2, precision="bf16-mixed", levels=1, steps_each=1, items=2))
        configs.append(RunConfig("fp16_b2", batch_size=2, precision="16-mixed", levels=1, steps_each=1, items=2))
        if not quick:
            configs.append(RunConfig(f"fp32_b{big}_compile", batch_size=big, compile=True, batch_invariant=False))
    return configs


PRESETS: dict[str, dict[str, Any]] = {
    # a small NCSNv2 (ngf 16, 48x48, 200 levels, random weights), short chains
    "quick": dict(levels=5, steps_each=2, files=1, slices=2, snrs=[None, 20.0], samples=1),
    "cpu": dict(levels=25, steps_each=2, files=2, slices=2, snrs=[None, 20.0], samples=1),
    # configs/demo.yaml's chain on its network's shape (demo/model.ckpt: NCSNv2 ngf 24, 64x64, 200 levels;
    # random weights unless --checkpoint demo/model.ckpt): 4 files x 2 slices x SNR {20, 5} dB,
    # 200 levels x 1 + denoise, CG-SENSE 10 iterations
    "demo": dict(ngf=24, size=64, levels=200, steps_each=1, files=4, slices=2, snrs=[20.0, 5.0], samples=1, final_denoise=True,
                 cg_iterations=10, noise_boost=2.0, step_size=1e-4),
    # the reference architecture: configs/fastmri.yaml (Jalal et al.'s brain prior), 20 levels x 3 steps timed
    "reference": dict(variant="NCSNv2Deepest", ngf=128, size=384, coils=16, num_classes=2311, sigma_begin=232.0,
                      sigma_end=0.0066, levels=20, steps_each=3, files=1, slices=2,
                      snrs=[None, 30.0, 20.0, 10.0], samples=1, step_size=5e-5),
}


def skip_reason(cfg: RunConfig, device: str) -> Optional[str]:
    """Why ``cfg`` cannot run on ``device`` (None: it can)."""
    cuda = device.startswith("cuda")
    if cfg.precision == "16-mixed" and not cuda:
        return "Lightning supports 16-mixed (fp16 autocast) only on GPU"
    if cfg.cuda_graph and not cuda:
        return "cuda_graph needs a CUDA device"
    if cfg.precision == "bf16-mixed" and cuda and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16"
    return None


def setup_from_preset(preset: str, device: str, snrs: Optional[list[str]] = None, **overrides: Any) -> Setup:
    """``PRESETS[preset]`` with every override that is not None; ``snrs`` as typed on the command
    line (``"inf"``, ``"none"`` or ``"null"`` = noiseless)."""
    values = dict(PRESETS[preset])
    values.update({key: value for key, value in overrides.items() if value is not None})
    if snrs:
        values["snrs"] = [None if s.lower() in ("inf", "none", "null") else float(s) for s in snrs]
    values["device"] = device
    return Setup(**values)
