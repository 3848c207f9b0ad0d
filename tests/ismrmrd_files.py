"""Tiny ISMRMRD raw-data files written by the tests with the ``ismrmrd`` package, from known k-space.

Conventions (those of :mod:`lit_sampler.data.ismrmrd_raw`): the encoded k-space ``[slices, coils,
X, W]`` is centred (DC at ``(X//2, W//2)``, :func:`lit_sampler.physics.fft.fft2c`); column ``c`` is written
as ``kspace_encode_step_1 = c − W//2 + center_line`` and ``center_sample = X//2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import ismrmrd
import numpy as np
import torch
from ismrmrd import xsd

from lit_sampler.data.phantoms import demo_volume
from lit_sampler.physics.fft import fft2c, ifft2c
from lit_sampler.seeding import seeded_generator


@dataclass
class Header:
    """What goes into the XML header (defaults: a valid Cartesian 2-D encoding)."""

    encoded: tuple[int, int, int]
    encoded_fov: tuple[float, float, float]
    recon: Optional[tuple[int, int, int]] = None
    recon_fov: Optional[tuple[float, float, float]] = None
    center_line: Optional[int] = None
    trajectory: str = "cartesian"
    step1_limits: bool = True
    step2_max: int = 0
    slices: int = 1

    def xml(self) -> str:
        x, y, _ = self.encoded
        recon = self.recon or self.encoded
        recon_fov = self.recon_fov or self.encoded_fov
        center = y // 2 if self.center_line is None else self.center_line
        limits = {"slice": xsd.limitType(minimum=0, maximum=self.slices - 1, center=0)}
        if self.step1_limits:
            limits["kspace_encoding_step_1"] = xsd.limitType(minimum=0, maximum=y - 1, center=center)
        if self.step2_max:
            limits["kspace_encoding_step_2"] = xsd.limitType(minimum=0, maximum=self.step2_max, center=self.step2_max // 2)
        header = xsd.ismrmrdHeader(
            experimentalConditions=xsd.experimentalConditionsType(H1resonanceFrequency_Hz=123_000_000),
            encoding=[xsd.encodingType(
                trajectory=xsd.trajectoryType(self.trajectory),
                encodedSpace=xsd.encodingSpaceType(matrixSize=xsd.matrixSizeType(x=x, y=y, z=self.encoded[2]),
                                                   fieldOfView_mm=xsd.fieldOfViewMm(x=self.encoded_fov[0], y=self.encoded_fov[1], z=self.encoded_fov[2])),
                reconSpace=xsd.encodingSpaceType(matrixSize=xsd.matrixSizeType(x=recon[0], y=recon[1], z=recon[2]),
                                                 fieldOfView_mm=xsd.fieldOfViewMm(x=recon_fov[0], y=recon_fov[1], z=recon_fov[2])),
                encodingLimits=xsd.encodingLimitsType(**limits),
            )],
        )
        return xsd.ToXML(header)


@dataclass
class Scan:
    """An acquisition to write: encoded k-space ``[slices, coils, X, W]`` (one array per average)."""

    averages: list[np.ndarray]
    header: Header
    lines: Optional[Sequence[int]] = None  # acquired columns; None = all
    calibration_lines: Sequence[int] = ()  # extra calibration-only lines (ACQ_IS_PARALLEL_CALIBRATION)
    calibration: Optional[np.ndarray] = None  # their k-space (default: average 0)
    noise: Optional[np.ndarray] = None  # noise-scan samples [channels, N]
    noise_dwell_us: float = 5.0
    dwell_us: float = 5.0
    extra_flags: dict = field(default_factory=dict)  # acquisition index -> flag to set
    line_offset: int = 0  # added to every kspace_encode_step_1 (to write counters the header does not allow)


def _acquisition(data: np.ndarray, dwell: float, **idx) -> ismrmrd.Acquisition:
    acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(data, dtype=np.complex64), center_sample=data.shape[1] // 2)
    acq.sample_time_us = dwell
    for name, value in idx.items():
        setattr(acq.idx, name, int(value))
    return acq


def write_ismrmrd(path: Path, scan: Scan) -> Path:
    """Write ``scan`` as an ISMRMRD dataset (noise scan first, then the lines of every slice)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    dataset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    dataset.write_xml_header(scan.header.xml())
    acquisitions = []
    if scan.noise is not None:
        chunk = 1024  # samples per noise acquisition (any length; fewer appends keep the tests fast)
        for start in range(0, scan.noise.shape[1], chunk):
            acq = _acquisition(scan.noise[:, start : start + chunk], scan.noise_dwell_us)
            acq.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
            acquisitions.append(acq)
    slices, _, _, width = scan.averages[0].shape
    center = width // 2 if scan.header.center_line is None else scan.header.center_line
    lines = range(width) if scan.lines is None else scan.lines
    calibration = scan.averages[0] if scan.calibration is None else scan.calibration
    for s in range(slices):
        for line in scan.calibration_lines:
            acq = _acquisition(calibration[s, :, :, line], scan.dwell_us, kspace_encode_step_1=line - width // 2 + center, slice=s)
            acq.set_flag(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION)
            acquisitions.append(acq)
        for a, kspace in enumerate(scan.averages):
            for line in lines:
                acquisitions.append(_acquisition(kspace[s, :, :, line], scan.dwell_us,
                                                 kspace_encode_step_1=line - width // 2 + center + scan.line_offset,
                                                 slice=s, average=a))
    for index, flag in scan.extra_flags.items():
        acquisitions[index].set_flag(flag)
    for acq in acquisitions:
        dataset.append_acquisition(acq)
    dataset.close()
    return path


@dataclass
class Truth:
    """A known multi-coil volume: coil k-space ``[slices, coils, H, W]`` (recon grid), its
    oversampled version ``[slices, coils, 2H, W]`` (the object in the readout centre) and the object
    ``[slices, H, W]`` (complex; its maps have ``Σ_c |S_c|² = 1``, so ``|images|`` is the RSS of
    the coil images: the unwhitened image, fastMRI's ``reconstruction_rss`` convention)."""

    kspace: torch.Tensor
    oversampled: torch.Tensor
    images: torch.Tensor


def known_volume(name: str, slices: int = 2, coils: int = 4, size: tuple[int, int] = (32, 32)) -> Truth:
    """Phantom coil k-space and the same with 2× readout oversampling (zero image outside the FOV)."""
    height, width = size
    volume = demo_volume(seeded_generator(0, name), slices, height, width, coils=coils)
    coil_images = ifft2c(volume.kspace)
    padded = torch.zeros(slices, coils, 2 * height, width, dtype=coil_images.dtype)
    padded[:, :, height // 2 : height // 2 + height] = coil_images  # centre rows of the 2H grid
    return Truth(kspace=volume.kspace.to(torch.complex64), oversampled=fft2c(padded).to(torch.complex64),
                 images=volume.images.to(torch.complex64))


def correlated_noise(coils: int, shape: tuple[int, ...], seed: int, mixing: Optional[np.ndarray] = None) -> np.ndarray:
    """Complex Gaussian noise ``[coils, *shape]`` with covariance ``A Aᴴ`` (``A`` = ``mixing``)."""
    rng = np.random.default_rng(seed)
    white = (rng.standard_normal((coils, *shape)) + 1j * rng.standard_normal((coils, *shape))) / np.sqrt(2)
    mixing = noise_mixing(coils) if mixing is None else mixing
    return np.tensordot(mixing, white, axes=(1, 0)).astype(np.complex64)


def noise_mixing(coils: int, scale: float = 0.02) -> np.ndarray:
    """A fixed lower-triangular mixing ``A`` with correlated channels of unequal noise levels: noise
    levels 1..2 on the diagonal, complex Gaussian off-diagonal terms of standard deviation 0.3 per
    part (30 %), all times ``scale``."""
    rng = np.random.default_rng(123)
    mixing = np.tril(rng.standard_normal((coils, coils)) + 1j * rng.standard_normal((coils, coils))) * 0.3
    mixing[np.diag_indices(coils)] = np.linspace(1.0, 2.0, coils)
    return mixing * scale
