"""Synthetic anatomy-like phantoms and smooth coil maps (demo data and tests; no real data needed).

* :func:`random_volume` draws a random 3-D "head": an outer shell (skull-like), a darker interior
  and a few ellipsoidal structures with random contrast, in the spirit of the Shepp–Logan phantom.
  Slices are cross-sections at heights ``z``, so neighbouring slices of a volume vary smoothly.
  Each slice carries a smooth random phase (low-order polynomial), as real MR images do.
* :func:`coil_maps` places ``coils`` receive loops on a ring around the field of view. Each has the
  on-axis Biot–Savart falloff of a circular loop, ``|S_c| ∝ (d² + a²)^(−3/2)`` (``d`` the distance to
  the loop, ``a`` its radius), and a smooth phase (a per-coil offset plus a linear ramp), and the set
  is normalised so that ``Σ_c |S_c|² = 1`` at every pixel (the ESPIRiT normalisation).
* :func:`simulate_kspace`: fully sampled multi-coil k-space ``F₂(S_c · x)`` (+ optional complex noise).

Coordinates: pixel ``(i, j)`` of an ``H × W`` image sits at ``y = (i − H//2) / (H/2)``,
``x = (j − W//2) / (W/2)`` (the field of view is ``[−1, 1)²``; the centre is index ``n // 2``, as for
the centered FFT). Everything is drawn from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..physics.fft import fft2c


def _grid(height: int, width: int, supersample: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, x)`` coordinates ``[H·s, W·s]`` of the sub-pixel centres (``s = supersample``)."""
    offsets = (torch.arange(supersample, dtype=torch.float64) + 0.5) / supersample - 0.5
    iy = (torch.arange(height, dtype=torch.float64)[:, None] + offsets[None, :]).flatten()
    ix = (torch.arange(width, dtype=torch.float64)[:, None] + offsets[None, :]).flatten()
    y = (iy - height // 2) / (height / 2)
    x = (ix - width // 2) / (width / 2)
    return torch.meshgrid(y, x, indexing="ij")


def _uniform(generator: torch.Generator, low: float, high: float, n: Optional[int] = None) -> torch.Tensor:
    shape = (1,) if n is None else (n,)
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    u = low + (high - low) * u
    return u[0] if n is None else u


@dataclass(frozen=True)
class Ellipsoid:
    """``intensity`` added inside ``((x−cx)/a)² + ((y−cy)/b)² + ((z−cz)/c)² ≤ 1`` (x, y rotated by ``angle``)."""

    intensity: float
    cx: float
    cy: float
    cz: float
    a: float
    b: float
    c: float
    angle: float

    def cross_section(self, x: torch.Tensor, y: torch.Tensor, z: float) -> torch.Tensor:
        """Indicator ``[H, W]`` of the ellipse cut at height ``z`` (empty outside the ellipsoid)."""
        t = 1.0 - ((z - self.cz) / self.c) ** 2
        if t <= 0:
            return torch.zeros_like(x)
        shrink = math.sqrt(t)
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        dx, dy = x - self.cx, y - self.cy
        u = (cos * dx + sin * dy) / (self.a * shrink)
        v = (-sin * dx + cos * dy) / (self.b * shrink)
        return (u * u + v * v <= 1.0).to(x.dtype)


@dataclass(frozen=True)
class PhantomVolume:
    """A random 3-D phantom: additive ellipsoids and a smooth phase ``φ(x, y, z)``.

    The phase is ``Σ_k p_k · m_k(x, y)`` over the monomials ``1, x, y, x², xy, y²``, with coefficients
    varying linearly in ``z``.
    """

    ellipsoids: tuple[Ellipsoid, ...]
    phase0: tuple[float, ...]
    phase1: tuple[float, ...]

    def slice_image(self, height: int, width: int, z: float, supersample: int = 2) -> torch.Tensor:
        """Complex image ``[H, W]`` (complex64) at height ``z`` ∈ (−1, 1); magnitudes in [0, ~1]."""
        y, x = _grid(height, width, supersample)
        magnitude = torch.zeros_like(x)
        for ellipsoid in self.ellipsoids:
            magnitude += ellipsoid.intensity * ellipsoid.cross_section(x, y, z)
        magnitude = magnitude.clamp_min(0.0)
        # Average the sub-pixels: anti-aliased edges (what a finite-resolution scan sees).
        magnitude = magnitude.reshape(height, supersample, width, supersample).mean(dim=(1, 3))
        yc, xc = _grid(height, width, 1)
        monomials = torch.stack([torch.ones_like(xc), xc, yc, xc * xc, xc * yc, yc * yc])
        coeffs = torch.tensor(self.phase0, dtype=torch.float64) + z * torch.tensor(self.phase1, dtype=torch.float64)
        phase = (coeffs[:, None, None] * monomials).sum(dim=0)
        return torch.polar(magnitude, phase).to(torch.complex64)


def random_volume(generator: torch.Generator, num_structures: int = 6) -> PhantomVolume:
    """A random head-like :class:`PhantomVolume` (outer shell 1.0, interior ≈ 0.3, structures ±0.1–0.4)."""
    a = float(_uniform(generator, 0.68, 0.82))
    b = float(_uniform(generator, 0.80, 0.90))
    angle = float(_uniform(generator, -0.2, 0.2))
    shell = 0.08
    ellipsoids = [
        Ellipsoid(1.0, 0.0, 0.0, 0.0, a, b, 1.2, angle),
        Ellipsoid(-float(_uniform(generator, 0.6, 0.75)), 0.0, 0.0, 0.0, a - shell, b - shell, 1.15, angle),
    ]
    for _ in range(num_structures):
        r = float(_uniform(generator, 0.0, 0.55))
        theta = float(_uniform(generator, 0.0, 2 * math.pi))
        sign = 1.0 if float(_uniform(generator, 0.0, 1.0)) < 0.7 else -1.0
        ellipsoids.append(
            Ellipsoid(
                intensity=sign * float(_uniform(generator, 0.1, 0.4)),
                cx=r * math.cos(theta) * (a - shell) * 0.8,
                cy=r * math.sin(theta) * (b - shell) * 0.8,
                cz=float(_uniform(generator, -0.6, 0.6)),
                a=float(_uniform(generator, 0.06, 0.3)),
                b=float(_uniform(generator, 0.06, 0.3)),
                c=float(_uniform(generator, 0.3, 0.9)),
                angle=float(_uniform(generator, 0.0, math.pi)),
            )
        )
    scale = torch.tensor([math.pi / 2, 0.8, 0.8, 0.5, 0.5, 0.5], dtype=torch.float64)
    phase0 = (_uniform(generator, -1.0, 1.0, 6) * scale).tolist()
    phase1 = (_uniform(generator, -0.5, 0.5, 6) * scale).tolist()
    return PhantomVolume(tuple(ellipsoids), tuple(phase0), tuple(phase1))


def slice_positions(num_slices: int, extent: float = 0.6) -> list[float]:
    """Heights ``z`` of ``num_slices`` evenly spaced slices in ``[−extent, extent]``."""
    if num_slices == 1:
        return [0.0]
    return [(-extent + 2 * extent * k / (num_slices - 1)) for k in range(num_slices)]


def phantom_slices(volume: PhantomVolume, num_slices: int, height: int, width: int) -> torch.Tensor:
    """Complex images ``[slices, H, W]`` of a volume at :func:`slice_positions`."""
    return torch.stack([volume.slice_image(height, width, z) for z in slice_positions(num_slices)])


def coil_maps(
    height: int,
    width: int,
    coils: int,
    generator: Optional[torch.Generator] = None,
    ring_radius: float = 1.3,
    loop_radius: float = 0.8,
    phase_ramp: float = 1.0,
) -> torch.Tensor:
    """Smooth sensitivity maps ``[coils, H, W]`` complex64 with ``Σ_c |S_c|² = 1`` everywhere.

    Coil ``c`` sits at angle ``θ_c = 2πc/coils + θ₀`` on a ring of radius ``ring_radius`` (FOV units);
    ``|S_c| ∝ (d_c² + loop_radius²)^(−3/2)`` and ``arg S_c = φ_c + phase_ramp · (x cos θ_c + y sin θ_c)``.
    ``θ₀`` and ``φ_c`` are random when ``generator`` is given (else 0 and ``θ_c``).
    """
    if coils < 1:
        raise ValueError(f"coils must be >= 1, got {coils}")
    y, x = _grid(height, width, 1)
    theta0 = float(_uniform(generator, 0.0, 2 * math.pi / coils)) if generator is not None else 0.0
    maps = []
    for c in range(coils):
        theta = 2 * math.pi * c / coils + theta0
        px, py = ring_radius * math.cos(theta), ring_radius * math.sin(theta)
        distance2 = (x - px) ** 2 + (y - py) ** 2
        magnitude = (distance2 + loop_radius**2) ** -1.5
        offset = float(_uniform(generator, -math.pi, math.pi)) if generator is not None else theta
        phase = offset + phase_ramp * (x * math.cos(theta) + y * math.sin(theta))
        maps.append(torch.polar(magnitude, phase))
    maps = torch.stack(maps)
    maps = maps / maps.abs().square().sum(dim=0, keepdim=True).sqrt()
    return maps.to(torch.complex64)


def simulate_kspace(
    image: torch.Tensor,
    maps: Optional[torch.Tensor] = None,
    noise_std: float = 0.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Fully sampled k-space ``F₂(S_c x)`` ``[..., coils, H, W]`` (``maps=None``: ``F₂ x`` with one coil).

    ``noise_std``: standard deviation of added complex noise per real/imaginary part.
    """
    coil_images = image.unsqueeze(-3) if maps is None else maps * image.unsqueeze(-3)
    kspace = fft2c(coil_images.to(torch.complex64))
    if noise_std > 0:
        noise = torch.randn((*kspace.shape, 2), generator=generator) * noise_std
        kspace = kspace + torch.view_as_complex(noise)
    return kspace.to(torch.complex64)


@dataclass
class DemoVolume:
    """A simulated acquisition: ``images`` ``[slices, H, W]`` (complex ground truth), ``kspace``
    ``[slices, coils, H, W]`` (or ``[slices, H, W]`` single-coil) and ``maps`` like the k-space (or None)."""

    images: torch.Tensor
    kspace: torch.Tensor
    maps: Optional[torch.Tensor]


def demo_volume(
    generator: torch.Generator,
    num_slices: int,
    height: int,
    width: int,
    coils: int = 4,
    single_coil: bool = False,
    noise_std: float = 0.0,
) -> DemoVolume:
    """One random phantom volume with coil maps (one set per volume) and its fully sampled k-space."""
    volume = random_volume(generator)
    images = phantom_slices(volume, num_slices, height, width)
    if single_coil:
        kspace = simulate_kspace(images, None, noise_std, generator)[:, 0]
        return DemoVolume(images, kspace, None)
    maps = coil_maps(height, width, coils, generator)
    kspace = simulate_kspace(images, maps, noise_std, generator)
    return DemoVolume(images, kspace, maps.expand(num_slices, -1, -1, -1).contiguous())
