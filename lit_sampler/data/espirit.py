"""ESPIRiT coil sensitivity estimation (Uecker et al., MRM 71:990–1001, 2014), in torch.

Given fully sampled calibration k-space ``y_c``, the patches ``p(k₀)[c, q] = y_c(k₀ + q)`` (``q``
in a ``kernel_width²`` window) of the calibration region span a low-dimensional subspace. Its
orthonormal basis ``v_n`` (right singular vectors of the calibration matrix with ``σ_n > thresh ·
σ_max``) defines, at every pixel ``r``, the ``coils × coils`` matrix

    G(r) = (1/k²) Σ_n g_n(r) g_n(r)ᴴ,       g_n[c](r) = Σ_q v_n[c, q] · e^{+2πi ⟨q, r⟩},

(the projection onto the subspace, demodulated at ``r`` and averaged over the window; ``⟨q, r⟩ =
q_y r_y / H + q_x r_x / W`` in centred pixel indices). ``G(r)`` is Hermitian with eigenvalues in
``[0, 1]``, and the sensitivities ``S(r)`` are its eigenvector of eigenvalue 1 (Uecker et al., Eq. 13
ff.). Maps are kept where that eigenvalue exceeds ``crop`` and set to 0 elsewhere, normalised to
unit norm over coils (``Σ_c |S_c|² = 1``) with the phase of coil 0 removed.

Implementation notes (why it is cheap): ``G(r)`` is a trigonometric polynomial in ``r`` whose
coefficients are the kernel autocorrelations ``R[c, d, Δ] = Σ_n Σ_q v_n[c, q] conj(v_n[d, q − Δ])``
for ``Δ ∈ [−(k−1), k−1]²``, so ``G = (1/k²) Σ_Δ R[·, ·, Δ] e^{2πi⟨Δ, r⟩}`` is evaluated by two small
matrix products per block of image rows, never forming per-kernel images; the per-pixel
``coils × coils`` eigenproblems are solved in blocks with ``torch.linalg.eigh``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch


def calibration_region(kspace: torch.Tensor, calib_width) -> torch.Tensor:
    """Centre block of ``[coils, H, W]`` k-space (clipped to its size): ``calib_width × calib_width``,
    or ``rows × cols`` for a pair (e.g. the fully sampled centre lines of a line mask: ``(H, n)``)."""
    height, width = kspace.shape[-2:]
    rows, cols = (calib_width, calib_width) if isinstance(calib_width, int) else tuple(calib_width)
    ch, cw = min(int(rows), height), min(int(cols), width)
    y0, x0 = height // 2 - ch // 2, width // 2 - cw // 2
    return kspace[..., y0 : y0 + ch, x0 : x0 + cw]


def calibration_matrix(calib: torch.Tensor, kernel_width: int) -> torch.Tensor:
    """All ``kernel_width²`` patches of ``[coils, h, w]`` as rows: ``[patches, coils · k · k]``."""
    coils = calib.shape[0]
    k = kernel_width
    patches = calib.unfold(1, k, 1).unfold(2, k, 1)  # [coils, h-k+1, w-k+1, k, k]
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, coils * k * k)


def signal_kernels(kspace: torch.Tensor, calib_width, kernel_width: int, thresh: float) -> torch.Tensor:
    """Orthonormal basis of the calibration patches' signal subspace, ``[n, coils, k, k]`` (complex128)."""
    calib = calibration_region(kspace, calib_width).to(torch.complex128)
    if min(calib.shape[-2:]) < kernel_width:
        raise ValueError(
            f"calibration region {list(calib.shape[-2:])} is smaller than kernel_width {kernel_width}"
        )
    matrix = calibration_matrix(calib, kernel_width)
    _, singular, vh = torch.linalg.svd(matrix, full_matrices=False)
    keep = singular > thresh * singular[0]
    return vh[keep].reshape(-1, kspace.shape[0], kernel_width, kernel_width)


def kernel_autocorrelation(kernels: torch.Tensor) -> torch.Tensor:
    """``R[c, d, Δy, Δx] = Σ_n Σ_q v_n[c, q] conj(v_n[d, q − Δ])`` for ``Δ`` in ``[−(k−1), k−1]²``.

    Returns ``[coils, coils, 2k−1, 2k−1]`` with ``Δ = 0`` at index ``k − 1``.
    """
    n, coils, k, _ = kernels.shape
    out = torch.zeros(coils, coils, 2 * k - 1, 2 * k - 1, dtype=kernels.dtype)
    for dy in range(-(k - 1), k):
        ys, ys_shift = slice(max(dy, 0), k + min(dy, 0)), slice(max(-dy, 0), k + min(-dy, 0))
        for dx in range(-(k - 1), k):
            xs, xs_shift = slice(max(dx, 0), k + min(dx, 0)), slice(max(-dx, 0), k + min(-dx, 0))
            a = kernels[:, :, ys, xs]  # v[c, q] with q - Δ inside the window
            b = kernels[:, :, ys_shift, xs_shift]  # v[d, q - Δ]
            out[:, :, dy + k - 1, dx + k - 1] = torch.einsum("ncyx,ndyx->cd", a, b.conj())
    return out


def _phasors(n: int, k: int) -> torch.Tensor:
    """``e^{2πi Δ r / n}`` ``[2k−1, n]`` for ``Δ ∈ [−(k−1), k−1]`` and centred pixels ``r = i − n//2``."""
    delta = torch.arange(-(k - 1), k, dtype=torch.float64)[:, None]
    r = (torch.arange(n, dtype=torch.float64) - n // 2)[None, :]
    return torch.polar(torch.ones_like(delta * r), 2 * math.pi * delta * r / n)


def espirit_maps(
    kspace: torch.Tensor,
    calib_width=24,
    kernel_width: int = 6,
    thresh: float = 0.02,
    crop: float = 0.95,
    block_pixels: int = 1 << 15,
    return_eigenvalues: bool = False,
):
    """One ESPIRiT map set from fully sampled (at least in the calibration region) k-space.

    Args:
        kspace: ``[coils, H, W]`` complex, centred (DC at ``(H//2, W//2)``, as :func:`fft2c` makes it).
        calib_width: side of the centre calibration square (fastMRI brains: 24–26 lines), or
            ``(rows, cols)`` of a rectangle (the centre lines of a line mask).
        kernel_width: side of the k-space kernel window.
        thresh: keep singular vectors with ``σ > thresh · σ_max``.
        crop: keep a pixel's map where the top eigenvalue of ``G(r)`` exceeds this (else 0).
        block_pixels: pixels per eigen-decomposition block (memory: ``block · coils² · 16`` bytes).
        return_eigenvalues: also return the top eigenvalue map ``[H, W]``.

    Returns:
        maps ``[coils, H, W]`` complex64 (``Σ_c |S_c|² = 1`` where kept, coil 0 real ≥ 0), and the
        eigenvalue map when asked.
    """
    if kspace.dim() != 3 or not kspace.is_complex():
        raise ValueError(f"espirit_maps expects complex [coils, H, W] k-space, got {tuple(kspace.shape)} {kspace.dtype}")
    coils, height, width = kspace.shape
    kernels = signal_kernels(kspace, calib_width, kernel_width, thresh)
    corr = kernel_autocorrelation(kernels) / kernel_width**2  # [c, d, 2k-1, 2k-1]
    ey = _phasors(height, kernel_width)  # [2k-1, H]
    ex = _phasors(width, kernel_width)  # [2k-1, W]
    # Sum over Δx once: T[c, d, Δy, x] = Σ_Δx R[c, d, Δy, Δx] e^{2πi Δx x / W}.
    partial = torch.einsum("cdyx,xj->cdyj", corr, ex)
    maps = torch.zeros(height, width, coils, dtype=torch.complex128)
    eigenvalues = torch.zeros(height, width, dtype=torch.float64)
    rows_per_block = max(1, block_pixels // width)
    for start in range(0, height, rows_per_block):
        rows = slice(start, min(start + rows_per_block, height))
        gram = torch.einsum("cdyj,yi->ijcd", partial, ey[:, rows])  # [rows, W, c, d]
        # G is Hermitian up to rounding; symmetrise so eigh sees exactly that.
        gram = 0.5 * (gram + gram.conj().transpose(-1, -2))
        values, vectors = torch.linalg.eigh(gram)
        eigenvalues[rows] = values[..., -1]
        maps[rows] = vectors[..., -1]
    # Remove the arbitrary per-pixel phase of the eigenvectors: make coil 0 real and non-negative.
    reference = maps[..., :1]
    phase = torch.where(reference.abs() > 0, reference / reference.abs().clamp_min(1e-30), torch.ones_like(reference))
    maps = maps * phase.conj()
    maps = torch.where((eigenvalues > crop)[..., None], maps, torch.zeros_like(maps))
    maps = maps.permute(2, 0, 1).to(torch.complex64).contiguous()
    if return_eigenvalues:
        return maps, eigenvalues.to(torch.float32)
    return maps


def espirit_volume(kspace: torch.Tensor, progress: Optional[callable] = None, **kwargs) -> torch.Tensor:
    """:func:`espirit_maps` for every slice of ``[slices, coils, H, W]`` → maps of the same shape."""
    out = torch.empty(kspace.shape, dtype=torch.complex64)
    for s in range(kspace.shape[0]):
        out[s] = espirit_maps(kspace[s], **kwargs)
        if progress is not None:
            progress(1)
    return out


def add_espirit_arguments(parser) -> None:
    """The ESPIRiT options of the preparation scripts (``--calib-width``, ``--kernel-width``,
    ``--thresh``, ``--eig-crop``), with :func:`espirit_maps`' defaults."""
    parser.add_argument("--calib-width", type=int, default=24)
    parser.add_argument("--kernel-width", type=int, default=6)
    parser.add_argument("--thresh", type=float, default=0.02, help="singular-value threshold (× σ_max)")
    parser.add_argument("--eig-crop", type=float, default=0.95, help="keep maps where the eigenvalue exceeds this")
