"""The three NCSNv2 score networks of Song & Ermon 2020 ("Improved Techniques for Training
Score-Based Generative Models", ``ermongroup/ncsnv2``, ``models/ncsnv2.py``).

    s_θ(x, i) = f_θ(h) / σ_i,    h = 2x − 1   (unless ``input_map=False``)

``f_θ`` is a RefineNet-style U-Net with unconditional InstanceNorm++ and ELU; the noise level
enters only through the division by ``σ_i = sigmas[i]`` (the paper's technique 3). The variants
differ in depth:

* :class:`NCSNv2` (CIFAR-10 / CelebA): stages res1–res4, total stride 2.
* :class:`NCSNv2Deeper` (LSUN): res1–res5, stride 4.
* :class:`NCSNv2Deepest` (FFHQ 256, and the MRI prior of Jalal et al. 2021): res1–res5 plus
  res31, stride 8.

Module, parameter and buffer names equal the original ones (``begin_conv``, ``res1``…``res5``,
``res31``, ``refine1``…``refine5``, ``refine31``, ``normalizer``, ``end_conv``, buffer
``sigmas``), so an original state dict loads with ``load_state_dict(strict=True)`` once its
``module.`` prefix is gone (see :func:`lit_sampler.models.load_score_model`).

The original's ``image_size == 28`` special case (``adjust_padding`` in ``NCSNv2.res4``) never
takes effect, because that block is dilated and the dilated branch ignores the flag, so no image
size argument is needed. Odd sizes work: 2×2 mean pooling drops an odd trailing row/column (as in
Jalal et al.'s fork) and the refine cascade resizes back to each skip connection's exact size, so
the output always has the input's shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .layers import InstanceNorm2dPlus, RefineBlock, ResidualBlock
from ..sampling.schedules import geometric_sigmas

__all__ = ["NCSNv2", "NCSNv2Deeper", "NCSNv2Deepest", "VARIANTS", "build_sigmas"]


class _Stage(NamedTuple):
    """Two residual blocks: the first maps ``in_mult·ngf -> out_mult·ngf`` (downsampling or
    dilated as given), the second keeps ``out_mult·ngf`` with the same dilation."""

    name: str
    in_mult: int
    out_mult: int
    downsample: bool
    dilation: int | None


class _Refine(NamedTuple):
    """A refine block fed by the stage ``skip`` (plus the previous refine output unless first),
    with ``in_mult·ngf`` input and ``out_mult·ngf`` output channels."""

    name: str
    skip: str
    in_mult: int
    out_mult: int


def build_sigmas(
    sigmas: Sequence[float] | torch.Tensor | None = None,
    sigma_begin: float | None = None,
    sigma_end: float | None = None,
    num_classes: int | None = None,
) -> torch.Tensor:
    """The noise levels ``[L]`` (float32) from either explicit ``sigmas`` or the geometric schedule
    ``sigma_begin → sigma_end`` in ``num_classes`` steps (Song & Ermon 2020, technique 2 layout).

    ``num_classes`` given with ``sigmas`` must equal their number.
    """
    if sigmas is not None:
        if sigma_begin is not None or sigma_end is not None:
            raise ValueError("give either sigmas or sigma_begin/sigma_end, not both")
        # Always a real CPU tensor, also under a meta-device context (checks below need values).
        levels = torch.as_tensor(sigmas, dtype=torch.float32, device="cpu").detach().clone().reshape(-1)
        if levels.numel() == 0:
            raise ValueError("sigmas is empty")
        if not bool(torch.all(levels > 0)):
            raise ValueError("sigmas must all be positive")
        if num_classes is not None and int(num_classes) != levels.numel():
            raise ValueError(f"num_classes={num_classes} disagrees with the {levels.numel()} sigmas given")
        return levels
    if sigma_begin is None or sigma_end is None or num_classes is None:
        raise ValueError(
            "NCSNv2 needs its noise levels: pass sigmas=[...] or all of sigma_begin, sigma_end and num_classes"
        )
    return geometric_sigmas(float(sigma_begin), float(sigma_end), int(num_classes))


class _NCSNv2Family(nn.Module):
    """Shared constructor and forward pass; subclasses only declare their stages."""

    _stages: tuple[_Stage, ...] = ()
    _refines: tuple[_Refine, ...] = ()  # in forward order, deepest first
    _refine_registration: tuple[str, ...] = ()  # attribute order of the original

    sigmas: torch.Tensor

    def __init__(
        self,
        in_channels: int = 2,
        ngf: int = 128,
        sigmas: list[float] | None = None,
        sigma_begin: float | None = None,
        sigma_end: float | None = None,
        num_classes: int | None = None,
        input_map: bool = True,
    ) -> None:
        """
        Args:
            in_channels: image channels C (2 for one complex MRI image as real/imaginary).
            ngf: base width; stages use ngf, 2·ngf and 4·ngf channels.
            sigmas: the noise levels σ_0 > … > σ_{L−1} (a list or 1-D tensor); or give
                ``sigma_begin``, ``sigma_end`` and ``num_classes`` for the geometric schedule.
            input_map: apply the original's ``h = 2x − 1`` to the input (its default; the
                original skips it only when ``data.logit_transform`` or ``data.rescaled`` is set).
        """
        super().__init__()
        if in_channels < 1 or ngf < 2:
            raise ValueError(f"need in_channels >= 1 and ngf >= 2, got {in_channels} and {ngf}")
        self.in_channels = int(in_channels)
        self.ngf = int(ngf)
        self.input_map = bool(input_map)
        levels = build_sigmas(sigmas, sigma_begin, sigma_end, num_classes)
        self.num_classes = levels.numel()
        self.register_buffer("sigmas", levels)

        self.begin_conv = nn.Conv2d(self.in_channels, self.ngf, 3, stride=1, padding=1)
        # The original passes num_classes as InstanceNorm2dPlus's positional ``bias`` flag, which
        # is truthy, so the final normaliser has a beta like all the others.
        self.normalizer = InstanceNorm2dPlus(self.ngf, bias=True)
        self.end_conv = nn.Conv2d(self.ngf, self.in_channels, 3, stride=1, padding=1)

        for stage in self._stages:
            width_in, width_out = stage.in_mult * self.ngf, stage.out_mult * self.ngf
            blocks = nn.ModuleList(
                [
                    ResidualBlock(width_in, width_out, downsample=stage.downsample, dilation=stage.dilation),
                    ResidualBlock(width_out, width_out, dilation=stage.dilation),
                ]
            )
            self.add_module(stage.name, blocks)

        by_name = {refine.name: refine for refine in self._refines}
        first, last = self._refines[0].name, self._refines[-1].name
        for name in self._refine_registration:
            refine = by_name[name]
            inputs = [refine.in_mult * self.ngf] * (1 if name == first else 2)
            block = RefineBlock(inputs, refine.out_mult * self.ngf, start=name == first, end=name == last)
            self.add_module(name, block)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Score estimate ``s_θ(x, labels)``.

        Args:
            x: ``[B, C, H, W]`` float images (any H, W the depth allows; odd sizes work).
            labels: ``[B]`` long noise-level indices into ``sigmas``.

        Returns:
            ``[B, C, H, W]``, the network output divided by ``sigmas[labels]``.
        """
        h = 2 * x - 1.0 if self.input_map else x
        h = self.begin_conv(h)

        skips: dict[str, torch.Tensor] = {}
        for stage in self._stages:
            for block in getattr(self, stage.name):
                h = block(h)
            skips[stage.name] = h

        refined: torch.Tensor | None = None
        for refine in self._refines:
            skip = skips[refine.skip]
            inputs = [skip] if refined is None else [skip, refined]
            refined = getattr(self, refine.name)(inputs, skip.shape[2:])
        assert refined is not None

        out = self.end_conv(F.elu(self.normalizer(refined)))
        used_sigmas = self.sigmas[labels].view(x.shape[0], *([1] * (x.dim() - 1)))
        return out / used_sigmas

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, ngf={self.ngf}, num_classes={self.num_classes}, input_map={self.input_map}"


class NCSNv2(_NCSNv2Family):
    """NCSNv2 for 32–64 px images (Song & Ermon 2020; CIFAR-10, CelebA). Total stride 2; res3 and
    res4 are dilated (2, 4) instead of downsampling. ``forward(x [B, C, H, W], labels [B])``."""

    _stages = (
        _Stage("res1", 1, 1, False, None),
        _Stage("res2", 1, 2, True, None),
        _Stage("res3", 2, 2, True, 2),
        _Stage("res4", 2, 2, True, 4),
    )
    _refines = (
        _Refine("refine1", "res4", 2, 2),
        _Refine("refine2", "res3", 2, 2),
        _Refine("refine3", "res2", 2, 1),
        _Refine("refine4", "res1", 1, 1),
    )
    _refine_registration = ("refine1", "refine2", "refine3", "refine4")


class NCSNv2Deeper(_NCSNv2Family):
    """Deeper NCSNv2 for 96–128 px images (Song & Ermon 2020; LSUN). Total stride 4; res4 and res5
    are dilated (2, 4) and widen to 4·ngf. ``forward(x [B, C, H, W], labels [B])``."""

    _stages = (
        _Stage("res1", 1, 1, False, None),
        _Stage("res2", 1, 2, True, None),
        _Stage("res3", 2, 2, True, None),
        _Stage("res4", 2, 4, True, 2),
        _Stage("res5", 4, 4, True, 4),
    )
    _refines = (
        _Refine("refine1", "res5", 4, 4),
        _Refine("refine2", "res4", 4, 2),
        _Refine("refine3", "res3", 2, 2),
        _Refine("refine4", "res2", 2, 1),
        _Refine("refine5", "res1", 1, 1),
    )
    _refine_registration = ("refine1", "refine2", "refine3", "refine4", "refine5")


class NCSNv2Deepest(_NCSNv2Family):
    """Deepest NCSNv2 for ≥ 256 px images (Song & Ermon 2020; FFHQ; the MRI prior of Jalal et al.
    2021 with ngf 128 and 2 channels). Total stride 8: NCSNv2Deeper plus a downsampling stage
    ``res31`` and its ``refine31``. ``forward(x [B, C, H, W], labels [B])``."""

    _stages = (
        _Stage("res1", 1, 1, False, None),
        _Stage("res2", 1, 2, True, None),
        _Stage("res3", 2, 2, True, None),
        _Stage("res31", 2, 2, True, None),
        _Stage("res4", 2, 4, True, 2),
        _Stage("res5", 4, 4, True, 4),
    )
    _refines = (
        _Refine("refine1", "res5", 4, 4),
        _Refine("refine2", "res4", 4, 2),
        _Refine("refine31", "res31", 2, 2),
        _Refine("refine3", "res3", 2, 2),
        _Refine("refine4", "res2", 2, 1),
        _Refine("refine5", "res1", 1, 1),
    )
    _refine_registration = ("refine1", "refine2", "refine3", "refine31", "refine4", "refine5")


# the family by class name: training's ``variant``, checkpoint hyper-parameters, the benchmark
VARIANTS: dict[str, type[_NCSNv2Family]] = {"NCSNv2": NCSNv2, "NCSNv2Deeper": NCSNv2Deeper, "NCSNv2Deepest": NCSNv2Deepest}
