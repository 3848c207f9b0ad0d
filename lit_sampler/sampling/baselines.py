"""Classical reconstructions to compare a prior against.

* Zero-filled: the coil-combined image of the measured k-space (computed by the data transform).
* CG-SENSE (Pruessmann et al. 2001): least squares min_x ‖A x − y‖² solved by conjugate gradients
  on the normal equations AᴴA x = Aᴴy, started from zero, with the paper's intensity correction
  (:func:`intensity_correction`) as preconditioner. With few iterations CG acts as its own
  regulariser, which is how CG-SENSE is run in practice.
* Compressed sensing (Lustig, Donoho & Pauly 2007), through sigpy (the optional ``baselines``
  extra; the solvers users already compare against, so we call them rather than re-implement them):
  ``l1_wavelet``  min_x ½‖P F S x − y‖² + λ‖W x‖₁ (Daubechies-4 wavelets), and
  ``total_variation``  min_x ½‖P F S x − y‖² + λ‖∇x‖₁, each for ``iterations`` iterations.
  λ is relative to the data scale (images normalised to a 99th percentile of 1); choose it on
  validation data (``scripts/tune_baselines.py``), never on the data you report.
* ``varnet``: fastMRI's supervised E2E-VarNet (Sriram et al. 2020) on the same masked, noisy k-space
  (:class:`lit_sampler.models.varnet.VarNetBaseline`, the optional ``varnet`` extra).

The functions here take the engine's tensors (an operator, normalised k-space). On arrays, called
like ``Sampler.reconstruct`` (``recon(kspace, mask, sens_maps=None, …)``, the caller's units and
array type): ``zero_filled_recon``, ``cg_sense_recon``, ``l1_wavelet_recon``,
``total_variation_recon`` in :mod:`lit_sampler.api` (:mod:`lit_sampler.api.baseline_recon`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import numpy as np
import torch

from ..physics.operators import LinearOperator, normal_of

# every estimate a run can report beside the reconstruction, in table order
BASELINES = ("zero_filled", "cg_sense", "l1_wavelet", "total_variation", "varnet")
CS_METHODS = ("l1_wavelet", "total_variation")
METHODS = ("recon", *BASELINES)  # what the tables and volume files hold


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-item real inner product Re⟨a, b⟩ over all but the batch dimension, shaped ``[B, 1, …]``."""
    value = (a.conj() * b).real.flatten(1).sum(dim=1)
    return value.reshape(-1, *([1] * (a.dim() - 1)))


def intensity_correction(sens_maps: torch.Tensor) -> torch.Tensor:
    """Pruessmann et al. 2001's intensity correction ``I = (Σ_c |S_c|²)^(−1/2)`` of maps
    ``[B, coils, H, W]`` → real ``[B, H, W]``; 1 where ``Σ_c |S_c|² = 0`` (cropped maps: AᴴA is
    zero there and the image stays 0). 1 everywhere for unit-norm maps."""
    energy = sens_maps.abs().square().sum(dim=-3)
    return torch.where(energy > 0, energy.clamp_min(torch.finfo(energy.dtype).tiny).rsqrt(), torch.ones_like(energy))


@torch.no_grad()
def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], rhs: torch.Tensor, x: torch.Tensor | None,
                       iterations: int, tolerance: float = 1e-10) -> torch.Tensor:
    """Solve ``apply(x) = rhs`` (``apply`` Hermitian positive semi-definite) by conjugate gradients
    from ``x``, independently per batch item (per-item inner products: an item's iterates do not
    depend on its batch).

    Args:
        apply: the operator, e.g. ``AᴴA`` or ``AᴴA + γ I``, on complex ``[B, …]``.
        rhs, x: right-hand side and starting point, complex ``[B, …]`` (``x=None``: zero).
        iterations: CG iterations (each costs one ``apply``; with a starting point, the first
            residual costs one more).
        tolerance: an item stops once ‖r‖ ≤ tolerance·‖r₀‖ (further steps would divide rounding
            noise); never below 10 × the dtype's machine epsilon.
    """
    if x is None:
        x, residual = torch.zeros_like(rhs), rhs.clone()
    else:
        residual = rhs - apply(x)
    direction = residual.clone()
    rr = _dot(residual, residual)
    floor = rr * max(tolerance, 10 * torch.finfo(rhs.real.dtype).eps) ** 2
    tiny = torch.finfo(rhs.real.dtype).tiny
    for _ in range(iterations):
        q = apply(direction)
        active = rr > floor
        step = torch.where(active, rr / _dot(direction, q).clamp_min(tiny), 0.0)
        x = x + step * direction
        residual = residual - step * q
        rr_new = _dot(residual, residual)
        direction = residual + (rr_new / rr.clamp_min(tiny)) * direction
        rr = rr_new
    return x


@torch.no_grad()
def cg_sense(operator: LinearOperator, y: torch.Tensor, iterations: int = 10, tolerance: float = 1e-10,
             intensity: torch.Tensor | None = None) -> torch.Tensor:
    """Solve AᴴA x = Aᴴy by conjugate gradients from zero, independently per batch item.

    With ``intensity`` ``I`` (Pruessmann et al. 2001's intensity correction, :func:`intensity_correction`),
    CG runs on ``(I AᴴA I) z = I Aᴴy`` and returns ``x = I z``: the same least-squares problem,
    preconditioned so that a fully sampled AᴴA has a unit diagonal. For unit-norm maps ``I = 1``
    and this is plain CG; for maps whose energy varies over the image (those of pre-whitened
    scanner data, whose image is the unwhitened one, docs/data.md) plain CG converges slowly. Any
    positive ``I`` leaves the least-squares solution unchanged; only the iterates differ.

    Args:
        operator: a :class:`~lit_sampler.physics.operators.LinearOperator` (e.g.
            :class:`~lit_sampler.physics.operators.MultiCoilMRI`) or any object with ``forward``/``adjoint``.
        y: measured k-space ``[B, coils, H, W]``.
        iterations: CG iterations (each costs one AᴴA).
        tolerance: an item stops once ‖r‖ ≤ tolerance·‖Aᴴy‖ (further steps would divide rounding
            noise); never below 10 × the dtype's machine epsilon, which single-coil data reach after
            one step (AᴴA = F⁻¹MF is a projection, so the first step solves the system exactly and
            the residual left is rounding, whose directions AᴴA barely sees).
        intensity: ``I`` ``[B, H, W]`` real, or ``None`` (``I = 1``).

    Returns:
        The least-squares image ``[B, H, W]`` (complex).
    """
    weight = 1.0 if intensity is None else intensity  # x·1.0 is x exactly: no preconditioner, same iterates
    rhs = weight * operator.adjoint(y)
    return weight * conjugate_gradient(lambda z: weight * normal_of(operator, weight * z), rhs, None, iterations, tolerance)


def sigpy_mri_app():
    try:
        import sigpy.mri.app as app
    except ImportError:
        raise ImportError(
            "the compressed-sensing baselines (cs_lambdas) need sigpy: pip install 'lit_sampler[baselines]'"
        ) from None
    return app


def check_cs_lambda(method: str, lamda: float) -> None:
    """The one check of a compressed-sensing baseline's settings: a known method, λ finite and ≥ 0."""
    if method not in CS_METHODS:
        raise ValueError(f"unknown method {method!r} for the compressed-sensing baselines; expected one of {list(CS_METHODS)}")
    if not (math.isfinite(lamda) and lamda >= 0):
        raise ValueError(f"{method}: λ must be a finite number >= 0, got {lamda}")


def compressed_sensing(
    method: str, kspace: torch.Tensor, sens_maps: torch.Tensor, mask: torch.Tensor, lamda: float, iterations: int = 100
) -> torch.Tensor:
    """One item's L1-wavelet or total-variation reconstruction with sigpy.

    Args:
        method: ``"l1_wavelet"`` or ``"total_variation"``.
        kspace: measured k-space ``[coils, H, W]`` (zero where not sampled).
        sens_maps: ``[coils, H, W]``.
        mask: the sampling pattern, broadcastable to ``[H, W]`` (0/1).
        lamda: λ (relative to the normalised data).

    Returns:
        The complex image ``[H, W]`` (complex64, on ``kspace``'s device).
    """
    app = sigpy_mri_app()
    check_cs_lambda(method, lamda)
    y = kspace.detach().cpu().numpy().astype("complex128")
    maps = sens_maps.detach().cpu().numpy().astype("complex128")
    weights = torch.broadcast_to(mask.detach().cpu().reshape(mask.shape[-2:]).double(), kspace.shape[-2:]).numpy()
    solver = app.L1WaveletRecon if method == "l1_wavelet" else app.TotalVariationRecon
    with _numpy_global_seed(0):
        image = solver(y, maps, float(lamda), weights=weights, max_iter=int(iterations), show_pbar=False).run()
    return torch.from_numpy(image).to(torch.complex64).to(kspace.device)


@contextlib.contextmanager
def _numpy_global_seed(seed: int):
    """Run with numpy's global RNG seeded, and restore its state afterwards. Why: sigpy's solvers
    start their step-size power iteration (``MaxEig``) from a vector drawn from numpy's global RNG,
    which made a baseline depend on everything drawn before it (run order, resume, other items).
    Seeded per call, an item's baseline depends on its own data alone; restored, nothing else sees it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)
