"""Data that carry the scanner's own noise (converted ISMRMRD raw data): what the measurement may do.

A prepared file marks such data with attributes (:mod:`lit_sampler.data.raw_prepare`):

* ``real_noise``: the k-space is a measurement, noise included;
* ``measured_noise_var``: its noise variance ν₀ per coil and complex sample in the file's units
  (``c² / averages`` after pre-whitening, :mod:`lit_sampler.data.whitening`; the noise of the
  whitened k-space the forward model sees), when a noise scan measured it;
* ``acquired_mask``: the file's ``mask`` is the acquisition's own line pattern (undersampled data).

Rules (DESIGN.md measurement model, extended):

* the measurement's noise variance is ``ν = ν_added + ν₀`` (independent noises add): at
  ``snr: null`` the sampler's data-consistency term uses the measured ν₀ instead of 0, and a
  finite SNR on fully sampled raw data adds noise on top of the real noise (the SNR is then
  relative to the noisy signal, as for any fastMRI file);
* data acquired undersampled cannot take a retrospective mask (``use_file_mask: false``) or an
  SNR sweep: there is no clean, fully sampled k-space to mask or to set an SNR on.

Files without these attributes (fastMRI files, simulations) keep ``ν₀ = 0`` and every option.
"""

from __future__ import annotations

from typing import Optional, Sequence

from ..errors import DataError
from .fastmri import VolumeInfo


def measured_noise_var(volume: VolumeInfo) -> float:
    """ν₀ of ``volume`` in file units (0 when unknown or the data are simulated)."""
    return float(volume.attrs.get("measured_noise_var", 0.0) or 0.0)


def _where(volume: VolumeInfo) -> str:
    """The file to name in errors: the raw source (and its prepared copy) when converted."""
    source = volume.attrs.get("prepared_source")
    return f"{source} (prepared as {volume.path})" if source else str(volume.path)


def check_measured_data(volume: VolumeInfo, snr_levels: Sequence[Optional[float]], use_file_mask: bool) -> None:
    """Refuse what acquired-undersampled data cannot do (module docstring), from metadata.

    Raises:
        DataError: ``use_file_mask: false`` or a finite SNR on a file whose mask is the acquisition's.
    """
    if not volume.attrs.get("acquired_mask", False):
        return
    if not use_file_mask:
        raise DataError(
            f"{_where(volume)}: the data were acquired undersampled (dataset 'mask' holds the acquired lines), "
            "so use_file_mask: false would undersample the measured k-space a second time; "
            "expected use_file_mask: true (the acquired lines are the mask)"
        )
    finite = [s for s in snr_levels if s is not None]
    if finite:
        raise DataError(
            f"{_where(volume)}: snr_range asks for {', '.join(f'{s:g} dB' for s in finite)}, but the data were "
            "acquired undersampled with the scanner's own noise (attribute 'real_noise'): there is no clean "
            "k-space to set an SNR on; expected snr_range: [null] (the measured noise is used)"
        )
