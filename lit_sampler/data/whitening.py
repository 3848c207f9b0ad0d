"""Coil noise pre-whitening from a noise scan (Pruessmann et al., MRM 46:638, 2001, Appendix;
Hansen & Kellman, JMRI 41:573, 2015, Eq. 3–5).

Receiver noise is zero-mean complex Gaussian, correlated between coils with covariance
``Ψ = E[n nᴴ]`` (``coils × coils``). From ``N`` noise-only samples per coil (a noise scan: the
receivers sampled with no RF), the estimate is

    Ψ̂ = (1/N) Σ_t n_t n_tᴴ,         n_t ∈ ℂ^coils  (no mean removed: receiver noise is zero-mean),

and with its Cholesky factor ``Ψ̂ = L Lᴴ`` (``L`` lower triangular) the whitened data
``y_w = L⁻¹ y`` have noise covariance ``L⁻¹ Ψ̂ L⁻ᴴ = I``: unit variance ``E|n_c|² = 1`` per coil and
complex sample (1/2 per real part), uncorrelated between coils. Coil sensitivities estimated from
whitened data live in the same (virtual) coil space, so the forward model needs no further change.

Noise power per sample scales with the receiver bandwidth, i.e. as 1 / dwell time: a noise scan
sampled at dwell time ``t_n`` describes imaging data at dwell ``t_a`` by ``Ψ_a = Ψ̂ · t_n / t_a``
(Gadgetron's ``NoiseAdjustGadget`` applies the same ratio).

Pure numpy: no ISMRMRD, torch or h5py here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Whitening:
    """A whitening transform and what it was computed from.

    Attributes:
        covariance: ``Ψ`` ``[coils, coils]`` complex128, the noise covariance of the imaging data
            (dwell-time corrected).
        factor: ``L`` ``[coils, coils]``, lower-triangular Cholesky factor of ``Ψ``.
        samples: noise samples per coil the estimate used.
        dwell_ratio: ``t_noise / t_imaging`` applied to the noise scan's covariance (1 if unknown).
    """

    covariance: np.ndarray
    factor: np.ndarray
    samples: int
    dwell_ratio: float = 1.0

    @property
    def coils(self) -> int:
        return int(self.covariance.shape[0])

    @property
    def noise_std(self) -> np.ndarray:
        """Per-coil noise standard deviation ``sqrt(diag Ψ)`` (before whitening)."""
        return np.sqrt(np.real(np.diag(self.covariance)))

    @property
    def condition(self) -> float:
        """Condition number of ``Ψ`` (ratio of its extreme eigenvalues)."""
        values = np.linalg.eigvalsh(self.covariance)
        return float(values[-1] / values[0]) if values[0] > 0 else float("inf")

    @property
    def max_correlation(self) -> float:
        """Largest off-diagonal noise correlation coefficient ``|Ψ_cd| / sqrt(Ψ_cc Ψ_dd)``."""
        std = self.noise_std
        corr = np.abs(self.covariance) / np.outer(std, std)
        np.fill_diagonal(corr, 0.0)
        return float(corr.max()) if corr.size > 1 else 0.0

    def apply(self, data: np.ndarray, coil_axis: int = 0) -> np.ndarray:
        """``L⁻¹ y`` along ``coil_axis`` of ``data`` (any shape with ``coils`` there), complex64."""
        moved = np.moveaxis(np.asarray(data), coil_axis, 0)
        flat = moved.reshape(moved.shape[0], -1).astype(np.complex128)
        # solve L z = y (triangular) rather than forming L⁻¹: same result, better conditioned
        white = np.linalg.solve(self.factor, flat)
        return np.moveaxis(white.reshape(moved.shape), 0, coil_axis).astype(np.complex64)

    def report(self) -> dict:
        """Plain values for file attributes and logs."""
        return {
            "whitening_samples": self.samples,
            "whitening_condition": self.condition,
            "whitening_max_correlation": self.max_correlation,
            "whitening_noise_std": [float(s) for s in self.noise_std],
            "whitening_dwell_ratio": self.dwell_ratio,
        }


def noise_covariance(noise: np.ndarray) -> np.ndarray:
    """``Ψ̂ = (1/N) n nᴴ`` of noise samples ``[coils, N]`` → ``[coils, coils]`` complex128."""
    noise = np.asarray(noise, dtype=np.complex128)
    if noise.ndim != 2 or noise.shape[1] == 0:
        raise ValueError(f"noise samples must be [coils, N] with N > 0, got shape {list(noise.shape)}")
    return noise @ noise.conj().T / noise.shape[1]


def whitening_from_noise(noise: np.ndarray, dwell_ratio: float = 1.0) -> Whitening:
    """The :class:`Whitening` of noise samples ``[coils, N]``, scaled by ``dwell_ratio = t_n / t_a``.

    Raises:
        ValueError: fewer samples than coils (``Ψ̂`` singular) or a covariance that is not
            positive definite (a dead or duplicated channel).
    """
    coils, samples = np.asarray(noise).shape
    if samples < coils:
        raise ValueError(f"{samples} noise samples per coil cannot estimate a {coils}×{coils} covariance")
    covariance = noise_covariance(noise) * float(dwell_ratio)
    covariance = 0.5 * (covariance + covariance.conj().T)  # exactly Hermitian
    try:
        factor = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the noise covariance is not positive definite (a dead, constant or duplicated channel?)"
        ) from None
    return Whitening(covariance=covariance, factor=factor, samples=int(samples), dwell_ratio=float(dwell_ratio))
