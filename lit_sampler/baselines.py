"""Classical reconstructions to compare a prior against.

CG-SENSE (Pruessmann et al. 2001): least squares min_x ‖A x − y‖² solved by conjugate gradients on
the normal equations AᴴA x = Aᴴy, started from zero. With few iterations CG acts as its own
regulariser, which is how CG-SENSE is run in practice.
"""

from __future__ import annotations

from typing import Any

import torch


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-item real inner product Re⟨a, b⟩ over all but the batch dimension, shaped ``[B, 1, …]``."""
    value = (a.conj() * b).real.flatten(1).sum(dim=1)
    return value.reshape(-1, *([1] * (a.dim() - 1)))


@torch.no_grad()
def cg_sense(operator: Any, y: torch.Tensor, iterations: int = 10, tolerance: float = 1e-10) -> torch.Tensor:
    """Solve AᴴA x = Aᴴy by conjugate gradients, independently per batch item.

    Args:
        operator: object with ``forward``/``adjoint`` (and optionally ``normal``), e.g.
            :class:`lit_sampler.operators.MultiCoilMRI`.
        y: measured k-space ``[B, coils, H, W]``.
        iterations: CG iterations (each costs one AᴴA).
        tolerance: an item stops once ‖r‖ ≤ tolerance·‖Aᴴy‖ (further steps would divide rounding noise).

    Returns:
        The least-squares image ``[B, H, W]`` (complex).
    """
    normal = getattr(operator, "normal", None) or (lambda v: operator.adjoint(operator.forward(v)))
    rhs = operator.adjoint(y)
    x = torch.zeros_like(rhs)
    residual = rhs.clone()
    direction = residual.clone()
    rr = _dot(residual, residual)
    floor = rr * tolerance**2
    tiny = torch.finfo(rhs.real.dtype).tiny
    for _ in range(iterations):
        q = normal(direction)
        active = rr > floor
        step = torch.where(active, rr / _dot(direction, q).clamp_min(tiny), 0.0)
        x = x + step * direction
        residual = residual - step * q
        rr_new = _dot(residual, residual)
        direction = residual + (rr_new / rr.clamp_min(tiny)) * direction
        rr = rr_new
    return x
