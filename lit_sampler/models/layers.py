"""Building blocks of NCSNv2 (Song & Ermon 2020, "Improved Techniques for Training Score-Based
Generative Models"): InstanceNorm++, pre-activation residual blocks and the RefineNet cascade.

Every block keeps the attribute names of the original implementation (``ermongroup/ncsnv2``,
``models/layers.py`` and ``models/normalization.py``) so that original state dicts load without
remapping: ``normalize1``, ``conv1``, ``normalize2``, ``conv2``, ``shortcut``, ``conv`` (inside a
conv-mean-pool), ``adapt_convs``, ``msf.convs``, ``crp.convs``, ``output_convs`` and the
``"{i}_{j}_conv"`` convolutions of a residual conv unit. Activations and pooling are functional
(they hold no state), so they add nothing to a state dict, exactly as in the original.

All tensors are ``[B, C, H, W]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_channels: int, out_channels: int, *, bias: bool = True, dilation: int = 1) -> nn.Conv2d:
    """3×3 convolution, stride 1, padded to keep the spatial size (also when dilated)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=dilation, dilation=dilation, bias=bias)


def conv1x1(in_channels: int, out_channels: int, *, bias: bool = True) -> nn.Conv2d:
    """1×1 convolution (channel mixing only)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0, bias=bias)


def mean_pool2x2(x: torch.Tensor) -> torch.Tensor:
    """Average over 2×2 blocks, ``[B, C, H, W] -> [B, C, ⌊H/2⌋, ⌊W/2⌋]``.

    On even sizes this is the original's sum of four strided slices / 4, term for term and in the
    same order, so results agree bit for bit. An odd trailing row/column is dropped first, which is
    what ``nn.AvgPool2d(2)`` does in Jalal et al.'s fork (utcsilab/csgm-mri-langevin) and lets
    odd image sizes such as 33×35 run.
    """
    height, width = x.shape[-2:]
    x = x[..., : height - height % 2, : width - width % 2]
    return (x[..., ::2, ::2] + x[..., 1::2, ::2] + x[..., ::2, 1::2] + x[..., 1::2, 1::2]) / 4.0


class InstanceNorm2dPlus(nn.Module):
    """InstanceNorm++ (Song & Ermon 2019, appendix; unconditional form used by NCSNv2).

    Instance normalisation discards each channel's mean; InstanceNorm++ puts it back, normalised
    across channels, with a learned weight α:

        μ_c = mean_{h,w} x_c,   μ̃_c = (μ_c − mean_c μ) / sqrt(var_c μ + 1e-5)   (unbiased var)
        out = γ_c · (IN(x)_c + α_c μ̃_c) + β_c

    Parameters ``alpha``, ``gamma`` (initialised N(1, 0.02)) and ``beta`` (zeros, only if ``bias``).
    """

    def __init__(self, num_features: int, bias: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.bias = bias
        self.alpha = nn.Parameter(torch.empty(num_features).normal_(1.0, 0.02))
        self.gamma = nn.Parameter(torch.empty(num_features).normal_(1.0, 0.02))
        if bias:
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = x.mean(dim=(2, 3))
        centre = means.mean(dim=-1, keepdim=True)
        spread = means.var(dim=-1, keepdim=True)
        means = (means - centre) / torch.sqrt(spread + 1e-5)
        h = F.instance_norm(x, eps=1e-5)
        h = h + means[..., None, None] * self.alpha[..., None, None]
        out = self.gamma.view(-1, self.num_features, 1, 1) * h
        if self.bias:
            out = out + self.beta.view(-1, self.num_features, 1, 1)
        return out


class ConvMeanPool(nn.Module):
    """Convolution (``kernel_size`` 3 or 1, same padding) followed by 2×2 mean pooling: halves H, W
    (floor for odd sizes). Its weights live under ``conv``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mean_pool2x2(self.conv(x))


class ResidualBlock(nn.Module):
    """Pre-activation residual block ``x + conv2(elu(norm2(conv1(elu(norm1(x))))))``.

    ``downsample=True`` without ``dilation`` halves the resolution (conv-mean-pool in ``conv2`` and
    in a 1×1 ``shortcut``). ``downsample=True`` *with* a ``dilation`` keeps the resolution: the
    original marks these blocks ``resample='down'`` but builds them from dilated 3×3 convolutions
    only, so they widen the receptive field instead, and always carry a 3×3 dilated ``shortcut``.
    Without resampling a shortcut exists only when the channel count changes.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, downsample: bool = False, dilation: int | None = None
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.downsample = downsample
        self.dilation = dilation
        # Registration order follows the original so state-dict key order matches too.
        if downsample and dilation is not None:
            self.conv1 = conv3x3(in_channels, in_channels, dilation=dilation)
            self.normalize2 = InstanceNorm2dPlus(in_channels)
            self.conv2 = conv3x3(in_channels, out_channels, dilation=dilation)
            self.shortcut = conv3x3(in_channels, out_channels, dilation=dilation)
        elif downsample:
            self.conv1 = conv3x3(in_channels, in_channels)
            self.normalize2 = InstanceNorm2dPlus(in_channels)
            self.conv2 = ConvMeanPool(in_channels, out_channels, 3)
            self.shortcut = ConvMeanPool(in_channels, out_channels, 1)
        else:
            step = 1 if dilation is None else dilation
            self.conv1 = conv3x3(in_channels, out_channels, dilation=step)
            self.normalize2 = InstanceNorm2dPlus(out_channels)
            self.conv2 = conv3x3(out_channels, out_channels, dilation=step)
            if in_channels != out_channels:
                self.shortcut = (
                    conv1x1(in_channels, out_channels)
                    if dilation is None
                    else conv3x3(in_channels, out_channels, dilation=dilation)
                )
        self.normalize1 = InstanceNorm2dPlus(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.elu(self.normalize1(x)))
        out = self.conv2(F.elu(self.normalize2(out)))
        skip = self.shortcut(x) if hasattr(self, "shortcut") else x
        return skip + out


class RCUBlock(nn.Module):
    """Residual conv unit of RefineNet: ``n_blocks`` residual units, each ``n_stages`` × (ELU, 3×3
    conv without bias). Convolutions are named ``"{block}_{stage}_conv"`` (1-based)."""

    def __init__(self, features: int, n_blocks: int, n_stages: int) -> None:
        super().__init__()
        self.n_blocks = n_blocks
        self.n_stages = n_stages
        for block in range(1, n_blocks + 1):
            for stage in range(1, n_stages + 1):
                self.add_module(f"{block}_{stage}_conv", conv3x3(features, features, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in range(1, self.n_blocks + 1):
            residual = x
            for stage in range(1, self.n_stages + 1):
                x = getattr(self, f"{block}_{stage}_conv")(F.elu(x))
            x = x + residual
        return x


class CRPBlock(nn.Module):
    """Chained residual pooling: ``n_stages`` × (5×5 max-pool stride 1, 3×3 conv without bias),
    each stage's output added to the running sum (after an initial ELU)."""

    def __init__(self, features: int, n_stages: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(features, features, bias=False) for _ in range(n_stages))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.elu(x)
        path = x
        for conv in self.convs:
            path = conv(F.max_pool2d(path, kernel_size=5, stride=1, padding=2))
            x = path + x
        return x


class MSFBlock(nn.Module):
    """Multi-resolution fusion: a 3×3 conv per input to ``features`` channels, bilinear resize
    (``align_corners=True``) to the target size, then the sum."""

    def __init__(self, in_channels: Sequence[int], features: int) -> None:
        super().__init__()
        self.features = features
        self.convs = nn.ModuleList(conv3x3(channels, features) for channels in in_channels)

    def forward(self, xs: Sequence[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        total: torch.Tensor | None = None
        for conv, x in zip(self.convs, xs):
            # Resized even when the size already matches: with align_corners=True that is an exact
            # copy, and it keeps the arithmetic identical to the original.
            h = F.interpolate(conv(x), size=tuple(size), mode="bilinear", align_corners=True)
            total = h if total is None else total + h
        assert total is not None
        return total


class RefineBlock(nn.Module):
    """RefineNet block (Lin et al. 2017) as used by NCSNv2: RCU per input (``adapt_convs``), fusion
    (``msf``, absent for the first block, ``start=True``, which has one input), chained residual
    pooling (``crp``), and an output RCU (``output_convs``, three units for the last block,
    ``end=True``, one otherwise). Output ``[B, features, *size]``."""

    def __init__(self, in_channels: Sequence[int], features: int, *, start: bool = False, end: bool = False) -> None:
        super().__init__()
        self.n_blocks = len(in_channels)
        self.adapt_convs = nn.ModuleList(RCUBlock(channels, 2, 2) for channels in in_channels)
        self.output_convs = RCUBlock(features, 3 if end else 1, 2)
        if not start:
            self.msf = MSFBlock(in_channels, features)
        self.crp = CRPBlock(features, 2)

    def forward(self, xs: Sequence[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        hs = [adapt(x) for adapt, x in zip(self.adapt_convs, xs)]
        h = self.msf(hs, size) if self.n_blocks > 1 else hs[0]
        return self.output_convs(self.crp(h))
