"""ISMRMRD raw data (Inati et al., MRM 77:411, 2017) → gridded multi-coil k-space in our layout.

Reads a dataset of Cartesian 2-D multi-coil acquisitions (what ``siemens_to_ismrmrd`` and the other
vendor converters write) with the ``ismrmrd`` package (optional extra ``lit_sampler[ismrmrd]``) and
returns, per volume, what a fastMRI file holds: k-space ``[slices, coils, H, W]`` with ``H`` the
readout and ``W`` the phase-encode axis, DC at ``(H//2, W//2)`` (the centring of
:func:`lit_sampler.physics.fft.fft2c`), plus the measured line mask when the data are undersampled.

Steps (:func:`read_ismrmrd` runs them; the header in :mod:`~lit_sampler.data.ismrmrd_header`, the
acquisitions and the grid in :mod:`~lit_sampler.data.ismrmrd_grid`):

1. **Header** (:func:`~lit_sampler.data.ismrmrd_header.parse_header`): one encoding space, ``trajectory == cartesian``,
   ``encodedSpace.matrixSize.z == 1`` and no ``kspace_encoding_step_2`` range (2-D), the
   ``kspace_encoding_step_1`` limits present (their ``center`` places the lines).
2. **Classify** acquisitions by flag: noise scan (``ACQ_IS_NOISE_MEASUREMENT``), calibration only
   (``ACQ_IS_PARALLEL_CALIBRATION`` without ``…_AND_IMAGING``: used for the coil maps, not as
   measured data), skipped (navigators, phase correction, dummy scans, feedback, …), imaging.
3. **Grid** (:func:`~lit_sampler.data.ismrmrd_grid.grid_lines`): sample ``s`` of an acquisition goes to readout row
   ``s − center_sample + X//2`` (``X`` = encoded readout matrix; ``discard_pre/post`` samples are
   dropped), line ``kspace_encode_step_1 = e`` to column ``e − center + W//2`` (``W`` = encoded
   phase-encode matrix), ``slice`` to the slice axis (sorted by counter). Repeated lines (averages,
   repetitions) are averaged (``"mean"``) or one index is selected; a mean needs the same count for
   every line, so that the noise level is one number. Lines of the grid without an acquisition
   (undersampling, partial Fourier) make the volume undersampled: they become its mask.
4. **Noise pre-whitening** (:mod:`lit_sampler.data.whitening`) from the noise scan, when present:
   ``y ← W y``, ``W = c L⁻¹`` with ``Ψ = L Lᴴ`` and ``c² = coils / tr(Ψ⁻¹)``; the whitened noise has
   variance ``c²`` per coil and complex sample, divided by the number of averaged acquisitions per
   line. The image is unchanged: maps of the whitened data are normalised so that ``‖W⁻¹ S‖ = 1``
   (:mod:`lit_sampler.data.raw_prepare`), and images are combined from ``W⁻¹ y``.
5. **Readout oversampling** removed when the encoded readout FOV exceeds the recon FOV (scanners
   sample 2× along the readout): centred orthonormal inverse FFT along the readout
   (:func:`lit_sampler.physics.fft.ifft1c`), keep the centre ``X · FOV_recon / FOV_encoded`` rows, FFT back.
   The orthonormal FFT keeps white noise white with the same variance.

The phase-encode axis keeps the encoded matrix and FOV (phase oversampling, if any, is not
removed: cropping it would need fully sampled lines). Voxel size: ``FOV_encoded / matrix_encoded``
along readout and phase encode (unchanged by removing readout oversampling), the slab thickness
``FOV_encoded.z`` across slices.

Every problem raises one :class:`~lit_sampler.errors.DataError` naming the file, what was
found and what is expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

import numpy as np

from ..errors import DataError
from .ismrmrd_grid import (
    channel_count,
    classify,
    dwell_ratio,
    grid_lines,
    noise_samples,
    read_acquisitions,
    remove_readout_oversampling,
    select_acquisitions,
    select_calibration,
)
from .ismrmrd_header import HeaderGeometry, parse_header
from .whitening import Whitening, whitening_from_noise

Selection = Union[Literal["mean"], int]


@dataclass(frozen=True)
class RawOptions:
    """How ISMRMRD raw data become a prepared volume (all of it except ``cache_dir`` decides the result).

    Args:
        average: ``"mean"`` averages repeated acquisitions of a line over the ``average`` counter;
            an int keeps only that average.
        repetition: the same for the ``repetition`` counter.
        contrast: the ``contrast`` index to keep (e.g. an echo of a multi-echo scan); ``None``
            requires a single contrast.
        whiten: pre-whiten with the dataset's noise scan when it has one.
        calib_width: side of the ESPIRiT calibration region (clipped to the fully sampled centre
            lines of undersampled data); kernel_width, thresh, eig_crop: the ESPIRiT settings of
            :func:`lit_sampler.data.espirit.espirit_maps` (``eig_crop`` is its ``crop``).
        cache_dir: where converted files are kept (default ``$LIT_SAMPLER_CACHE`` or
            ``$XDG_CACHE_HOME/lit_sampler``, i.e. ``~/.cache/lit_sampler``), ``/ismrmrd`` below it.
    """

    average: Selection = "mean"
    repetition: Selection = "mean"
    contrast: Optional[int] = None
    whiten: bool = True
    calib_width: int = 24
    kernel_width: int = 6
    thresh: float = 0.02
    eig_crop: float = 0.95
    cache_dir: Optional[str] = None

    def settings(self) -> dict:
        """The options that decide the converted data (what the cache key and file attrs record)."""
        return {
            "average": self.average, "repetition": self.repetition, "contrast": self.contrast,
            "whiten": self.whiten, "calib_width": self.calib_width, "kernel_width": self.kernel_width,
            "thresh": self.thresh, "eig_crop": self.eig_crop,
        }


@dataclass
class RawVolume:
    """One ISMRMRD dataset in our layout (see the module docstring).

    Attributes:
        kspace: ``[slices, coils, H, W]`` complex64 (whitened when ``whitening`` is set).
        calibration: like ``kspace`` with calibration-only lines filled in where imaging lines
            are missing (what coil maps are estimated from).
        mask: ``[W]`` float32 0/1, the acquired lines, or ``None`` when every line was acquired.
        geometry: the header's grid; whitening: the transform applied, or ``None``.
        noise_var: measured noise variance per coil and complex k-space sample (``c² / count``
            after whitening, :attr:`Whitening.noise_var`), or ``None`` without a noise scan (or
            ``whiten=False``).
        count: acquisitions averaged per line; slices: the ``slice`` counters; xml: the header.
    """

    kspace: np.ndarray
    calibration: np.ndarray
    mask: Optional[np.ndarray]
    geometry: HeaderGeometry
    whitening: Optional[Whitening]
    noise_var: Optional[float]
    count: int
    slices: list[int]
    xml: str
    notes: list[str] = field(default_factory=list)

    def attrs(self) -> dict:
        """File attributes describing the conversion (flat, h5-storable)."""
        voxel = self.geometry.voxel_size_mm
        height, width = self.kspace.shape[-2:]
        out = {
            "source_format": "ismrmrd",
            "real_noise": True,
            "acquired_mask": self.mask is not None,
            "voxel_size_mm": np.asarray(voxel, dtype=np.float64),
            "field_of_view_mm": np.asarray([voxel[0] * height, voxel[1] * width, voxel[2]], dtype=np.float64),
            "readout_oversampling": self.geometry.readout_oversampling,
            "averaged_acquisitions": self.count,
            "source_slices": json.dumps(self.slices),
            "whitened": self.whitening is not None,
        }
        if self.noise_var is not None:
            out["measured_noise_var"] = float(self.noise_var)
        if self.whitening is not None:
            report = self.whitening.report()
            report["whitening_noise_std"] = np.asarray(report["whitening_noise_std"], dtype=np.float64)
            out.update(report)
        return out


def read_ismrmrd(path, options: RawOptions = RawOptions()) -> RawVolume:  # noqa: B008 - frozen dataclass
    """Read, grid, whiten and de-oversample one ISMRMRD file (module docstring, steps 1–5)."""
    xml, acqs = read_acquisitions(path)
    geometry = parse_header(xml, path)
    kinds = classify(acqs)
    imaging = select_acquisitions(acqs, kinds["imaging"], options, path)
    if not imaging.any():
        raise DataError(f"{path}: no imaging acquisitions (all {len(acqs)} are noise, calibration or skipped data)")
    coils = channel_count(acqs, imaging | kinds["calibration"], path, "imaging and calibration")
    grid = grid_lines(acqs, imaging, geometry, coils, path)
    acquired = grid.acquired
    if not (acquired == acquired[:1]).all():
        raise DataError(
            f"{path}: slices acquired different phase-encode lines; expected one line pattern for the "
            "volume (the file's mask is per volume)"
        )
    kspace, calibration = grid.kspace, grid.kspace.copy()
    calibration_only = select_calibration(acqs, kinds["calibration"], options)
    notes = []
    if calibration_only.any():
        cal = grid_lines(acqs, calibration_only, geometry, coils, path, slices=grid.slices, role="calibration", even=False)
        fill = cal.acquired & ~acquired
        calibration = np.where(fill[:, None, None, :], cal.kspace, calibration)
        notes.append(f"{int(cal.acquired[0].sum())} calibration-only lines used for the coil maps")
    whitening, noise_var = None, None
    if kinds["noise"].any():
        noise_coils = channel_count(acqs, kinds["noise"], path, "noise-scan")
        if noise_coils != coils:
            raise DataError(
                f"{path}: the noise scan has {noise_coils} channels but the imaging data have {coils}; "
                "expected the same coils (a noise scan of another coil setup cannot whiten these data)"
            )
        if options.whiten:
            ratio = dwell_ratio(acqs, kinds["noise"], imaging)
            try:
                whitening = whitening_from_noise(noise_samples(acqs, kinds["noise"]), ratio)
            except ValueError as error:
                raise DataError(f"{path}: noise scan: {error}") from None
            kspace = whitening.apply(kspace, coil_axis=1)
            calibration = whitening.apply(calibration, coil_axis=1)
            noise_var = whitening.noise_var / grid.count
    kspace = remove_readout_oversampling(kspace, geometry.readout_keep)
    calibration = remove_readout_oversampling(calibration, geometry.readout_keep)
    mask = None if acquired[0].all() else acquired[0].astype(np.float32)
    return RawVolume(kspace=kspace, calibration=calibration, mask=mask, geometry=geometry, whitening=whitening,
                     noise_var=noise_var, count=grid.count, slices=grid.slices, xml=xml, notes=notes)
