"""Complex measurement noise at a prescribed SNR on the sampled k-space points.

Definition (DESIGN.md): for clean, undersampled k-space ``y`` with mask ``M``,

    ν = mean_{sampled} |y|² · 10^(−SNR/10),      y_noisy = y + M ⊙ n,   n ~ CN(0, ν),

i.e. the SNR is the ratio of mean signal power to noise power over the sampled entries only, and
the circular complex noise has variance ν/2 in each of its real and imaginary parts. ``SNR = None``
or ``inf`` adds nothing (ν = 0).
"""

from __future__ import annotations

import math

import torch


def is_noiseless(snr_db: float | None) -> bool:
    return snr_db is None or (math.isinf(snr_db) and snr_db > 0)


def snr_label(snr_db: float | None) -> str:
    """Folder/file label of an SNR level: ``snr_20dB``, ``snr_7.5dB``, ``snr_-3dB``, ``snr_inf``."""
    if is_noiseless(snr_db):
        return "snr_inf"
    return f"snr_{float(snr_db):g}dB"


NOISELESS_KEY = "inf"  # no noise added to data without noise of their own (simulations, fastMRI files)
MEASURED_KEY = "measured"  # no noise added to data that carry the scanner's own (converted raw data)


def noise_key(snr_db: float | None, real_noise: bool = False) -> str:
    """How ``cs_lambdas`` (and its tuning) names a measurement's noise level: the added SNR in dB as
    written (``"20"``, ``"7.5"``, ``"-3"``); with nothing added, ``"inf"`` for data without noise
    of their own, ``"measured"`` for data that carry the scanner's noise (file attribute
    ``real_noise``, :mod:`lit_sampler.data.measured_noise`): a λ tuned on noiseless data would not
    fit them. Real-noise data with a finite SNR on top use the SNR's key, as any fastMRI file."""
    if is_noiseless(snr_db):
        return MEASURED_KEY if real_noise else NOISELESS_KEY
    return f"{float(snr_db):g}"


def describe_noise_key(key: str) -> str:
    """A :func:`noise_key` in words, for messages: ``SNR 20 dB``, ``the measured noise, key "measured"``."""
    if key == NOISELESS_KEY:
        return f'data without added noise, key "{key}"'
    if key == MEASURED_KEY:
        return f'the measured noise, key "{key}"'
    return f"SNR {key} dB"


def sampled_points(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Boolean tensor shaped like ``kspace`` marking the sampled entries (mask broadcast over coils)."""
    return torch.broadcast_to(mask.bool(), kspace.shape)


def noise_variance(kspace: torch.Tensor, mask: torch.Tensor, snr_db: float | None) -> float:
    """ν = mean over sampled entries of |y|², times 10^(−SNR/10); 0 when noiseless."""
    if is_noiseless(snr_db):
        return 0.0
    sampled = sampled_points(kspace, mask)
    if not bool(sampled.any()):
        raise ValueError("the mask samples no k-space point; the SNR is undefined")
    signal_power = kspace[sampled].abs().square().double().mean().item()
    return signal_power * 10.0 ** (-float(snr_db) / 10.0)


def add_measurement_noise(
    kspace: torch.Tensor,
    mask: torch.Tensor,
    snr_db: float | None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, float]:
    """Add CN(0, ν) noise on the sampled points of one item's k-space.

    Args:
        kspace: clean complex k-space of one item, e.g. ``[coils, H, W]`` (already masked or not:
            unsampled entries are zeroed by the mask).
        mask: sampling mask broadcastable to ``kspace``.
        snr_db: measurement SNR in dB; ``None`` / ``inf`` for no noise.
        generator: source of the noise.

    Returns:
        ``(noisy masked k-space, ν)``.
    """
    sampled = sampled_points(kspace, mask)
    clean = torch.where(sampled, kspace, torch.zeros((), dtype=kspace.dtype, device=kspace.device))
    nu = noise_variance(clean, mask, snr_db)
    if nu == 0.0:
        return clean, 0.0
    real_dtype = kspace.real.dtype
    noise = torch.randn(
        (*kspace.shape, 2), generator=generator, dtype=real_dtype, device=kspace.device
    ) * math.sqrt(nu / 2.0)
    noisy = clean + torch.where(sampled, torch.view_as_complex(noise), torch.zeros((), dtype=kspace.dtype, device=kspace.device))
    return noisy, nu
