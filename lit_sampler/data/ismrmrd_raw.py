"""ISMRMRD raw data (Inati et al., MRM 77:411, 2017) → gridded multi-coil k-space in our layout.

Reads a dataset of Cartesian 2-D multi-coil acquisitions (what ``siemens_to_ismrmrd`` and the other
vendor converters write) with the ``ismrmrd`` package (optional extra ``lit_sampler[ismrmrd]``) and
returns, per volume, what a fastMRI file holds: k-space ``[slices, coils, H, W]`` with ``H`` the
readout and ``W`` the phase-encode axis, DC at ``(H//2, W//2)`` (the centring of
:func:`lit_sampler.fft.fft2c`), plus the measured line mask when the data are undersampled.

Steps (each its own function below):

1. **Header** (:func:`parse_header`): one encoding space, ``trajectory == cartesian``,
   ``encodedSpace.matrixSize.z == 1`` and no ``kspace_encoding_step_2`` range (2-D), the
   ``kspace_encoding_step_1`` limits present (their ``center`` places the lines).
2. **Classify** acquisitions by flag: noise scan (``ACQ_IS_NOISE_MEASUREMENT``), calibration only
   (``ACQ_IS_PARALLEL_CALIBRATION`` without ``…_AND_IMAGING``: used for the coil maps, not as
   measured data), skipped (navigators, phase correction, dummy scans, feedback, …), imaging.
3. **Grid** (:func:`grid_lines`): sample ``s`` of an acquisition goes to readout row
   ``s − center_sample + X//2`` (``X`` = encoded readout matrix; ``discard_pre/post`` samples are
   dropped), line ``kspace_encode_step_1 = e`` to column ``e − center + W//2`` (``W`` = encoded
   phase-encode matrix), ``slice`` to the slice axis (sorted by counter). Repeated lines (averages,
   repetitions) are averaged (``"mean"``) or one index is selected; a mean needs the same count for
   every line, so that the noise level is one number. Lines of the grid without an acquisition
   (undersampling, partial Fourier) make the volume undersampled: they become its mask.
4. **Noise pre-whitening** (:mod:`lit_sampler.data.whitening`) from the noise scan, when present:
   ``y ← L⁻¹ y`` with ``Ψ = L Lᴴ``; the whitened noise has unit variance per coil and complex sample,
   divided by the number of averaged acquisitions per line.
5. **Readout oversampling** removed when the encoded readout FOV exceeds the recon FOV (scanners
   sample 2× along the readout): centred orthonormal inverse FFT along the readout
   (:func:`lit_sampler.fft.ifft1c`), keep the centre ``X · FOV_recon / FOV_encoded`` rows, FFT back.
   The orthonormal FFT keeps white noise white with the same variance.

The phase-encode axis keeps the encoded matrix and FOV (phase oversampling, if any, is not
removed: cropping it would need fully sampled lines). Voxel size: ``FOV_encoded / matrix_encoded``
along readout and phase encode (unchanged by removing readout oversampling), the slab thickness
``FOV_encoded.z`` across slices.

Every problem raises one :class:`~lit_sampler.data.fastmri.DataError` naming the file, what was
found and what is expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

import h5py
import numpy as np
import torch

from ..fft import fft1c, ifft1c
from ..errors import DataError
from .geometry import center_slice
from .whitening import Whitening, whitening_from_noise

INSTALL_HINT = "pip install 'lit_sampler[ismrmrd]'"

#: ISMRMRD acquisition flags (``ismrmrd/constants.py``; bit ``flag − 1`` of ``flags``).
ACQ_IS_NOISE_MEASUREMENT = 19
ACQ_IS_PARALLEL_CALIBRATION = 20
ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING = 21
ACQ_IS_REVERSE = 22
#: Flags of acquisitions that are neither imaging nor calibration data (navigators, phase
#: correction, feedback, dummy scans, surface-coil correction, phase stabilisation).
SKIPPED_FLAGS = (23, 24, 26, 27, 28, 29, 30, 31)

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


def import_ismrmrd():
    """The ``ismrmrd`` package, or an ImportError that names the extra to install."""
    try:
        import ismrmrd
        import ismrmrd.xsd  # noqa: F401 - the XML header classes (needs xsdata)
    except ImportError as error:
        raise ImportError(f"reading ISMRMRD raw data needs the ismrmrd package ({error}): {INSTALL_HINT}") from None
    return ismrmrd


def is_ismrmrd_file(path: Union[str, Path]) -> bool:
    """Whether ``path`` is an ISMRMRD HDF5 file: a group ``dataset`` holding ``xml`` and ``data``
    (recognised by content, not by name; needs only h5py)."""
    try:
        with h5py.File(path, "r") as f:
            group = f.get("dataset")
            return isinstance(group, h5py.Group) and "xml" in group and "data" in group
    except OSError:
        return False


# --------------------------------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderGeometry:
    """What the XML header says about the grid.

    Attributes:
        encoded_matrix, encoded_fov_mm: ``encodedSpace`` ``(x, y, z)`` (x = readout).
        recon_matrix, recon_fov_mm: ``reconSpace`` ``(x, y, z)``.
        center_line: ``encodingLimits.kspace_encoding_step_1.center``.
        readout_keep: readout samples kept after removing oversampling (``X`` if none).
    """

    encoded_matrix: tuple[int, int, int]
    encoded_fov_mm: tuple[float, float, float]
    recon_matrix: tuple[int, int, int]
    recon_fov_mm: tuple[float, float, float]
    center_line: int
    readout_keep: int

    @property
    def readout_oversampling(self) -> float:
        return self.encoded_matrix[0] / self.readout_keep

    @property
    def voxel_size_mm(self) -> tuple[float, float, float]:
        """``(readout, phase encode, slice)`` in mm."""
        (mx, my, _), (fx, fy, fz) = self.encoded_matrix, self.encoded_fov_mm
        return (fx / mx, fy / my, fz)


def parse_header(xml: Union[str, bytes], path) -> HeaderGeometry:
    """Validate the ISMRMRD XML header of ``path`` (module docstring, step 1) and read its grid.

    Raises:
        DataError: unparsable XML, no or several encodings, a non-Cartesian trajectory, a 3-D
            encoding, missing ``kspace_encoding_step_1`` limits, a recon FOV larger than encoded.
    """
    xsd = import_ismrmrd().xsd
    try:
        header = xsd.CreateFromDocument(xml)
    except Exception as error:  # xsdata's ParserError and friends: the text is not a valid header
        raise DataError(f"{path}: dataset 'dataset/xml' is not a valid ISMRMRD header ({error})") from None
    if len(header.encoding) != 1:
        raise DataError(
            f"{path}: the ISMRMRD header has {len(header.encoding)} encoding spaces; expected exactly one"
        )
    enc = header.encoding[0]
    trajectory = getattr(enc.trajectory, "value", enc.trajectory)
    if trajectory != "cartesian":
        raise DataError(
            f"{path}: encoding trajectory is '{trajectory}'; expected 'cartesian' (non-Cartesian "
            "data need gridding or a NUFFT forward model, which this package does not have)"
        )
    em, ef = enc.encodedSpace.matrixSize, enc.encodedSpace.fieldOfView_mm
    rm, rf = enc.reconSpace.matrixSize, enc.reconSpace.fieldOfView_mm
    limits = enc.encodingLimits
    step2 = limits.kspace_encoding_step_2 if limits is not None else None
    if em.z > 1 or (step2 is not None and step2.maximum > step2.minimum):
        span = "" if step2 is None else f", kspace_encoding_step_2 {step2.minimum}..{step2.maximum}"
        raise DataError(
            f"{path}: 3-D encoding (encodedSpace matrixSize z = {em.z}{span}); expected 2-D "
            "acquisitions (matrixSize z = 1, slices by the 'slice' counter)"
        )
    step1 = limits.kspace_encoding_step_1 if limits is not None else None
    if step1 is None:
        raise DataError(
            f"{path}: the ISMRMRD header has no encodingLimits/kspace_encoding_step_1; expected its "
            "minimum, maximum and center (they place the phase-encode lines on the grid)"
        )
    for name, value in (("encodedSpace", (em.x, em.y, ef.x, ef.y)), ("reconSpace", (rm.x, rm.y, rf.x, rf.y))):
        if min(value) <= 0:
            raise DataError(f"{path}: {name} matrixSize / fieldOfView_mm {list(value)} must be positive")
    if rf.x > ef.x * (1 + 1e-6):
        raise DataError(
            f"{path}: reconSpace fieldOfView_mm x = {rf.x} exceeds encodedSpace x = {ef.x}; expected "
            "the recon FOV within the encoded FOV"
        )
    keep = int(round(em.x * rf.x / ef.x)) if rf.x < ef.x * (1 - 1e-6) else int(em.x)
    return HeaderGeometry(
        encoded_matrix=(int(em.x), int(em.y), int(em.z)),
        encoded_fov_mm=(float(ef.x), float(ef.y), float(ef.z)),
        recon_matrix=(int(rm.x), int(rm.y), int(rm.z)),
        recon_fov_mm=(float(rf.x), float(rf.y), float(rf.z)),
        center_line=int(step1.center),
        readout_keep=max(1, keep),
    )


# --------------------------------------------------------------------------------------------------
# Acquisitions
# --------------------------------------------------------------------------------------------------


@dataclass
class Acquisitions:
    """The acquisitions of one dataset, headers as arrays (one entry per acquisition).

    ``data[i]`` is ``[channels, samples]`` complex64 as stored; the counters are ``idx.*``.
    """

    data: list[np.ndarray]
    flags: np.ndarray
    line: np.ndarray
    slice: np.ndarray
    average: np.ndarray
    repetition: np.ndarray
    contrast: np.ndarray
    phase: np.ndarray
    set: np.ndarray
    center_sample: np.ndarray
    discard_pre: np.ndarray
    discard_post: np.ndarray
    trajectory_dimensions: np.ndarray
    sample_time_us: np.ndarray

    def has_flag(self, flag: int) -> np.ndarray:
        return (self.flags >> np.uint64(flag - 1)) & np.uint64(1) == 1

    def __len__(self) -> int:
        return len(self.data)


def read_acquisitions(path) -> tuple[str, Acquisitions]:
    """``(XML header text, every acquisition)`` of the ISMRMRD file ``path`` (group ``dataset``)."""
    ismrmrd = import_ismrmrd()
    try:
        # read-only (raw data are often write-protected): Dataset's mode argument needs ismrmrd >= 1.15
        dataset = ismrmrd.Dataset(str(path), "dataset", mode="r")
    except OSError as error:
        raise DataError(f"{path}: cannot open as an ISMRMRD file ({error})") from None
    try:
        xml = dataset.read_xml_header()
        count = dataset.number_of_acquisitions()
        rows: dict[str, list] = {k: [] for k in Acquisitions.__dataclass_fields__}
        for i in range(count):
            acq = dataset.read_acquisition(i)
            rows["data"].append(np.array(acq.data, dtype=np.complex64))
            rows["flags"].append(int(acq.flags))
            for name in ("slice", "average", "repetition", "contrast", "phase", "set"):
                rows[name].append(int(getattr(acq.idx, name)))
            rows["line"].append(int(acq.idx.kspace_encode_step_1))
            for name in ("center_sample", "discard_pre", "discard_post", "trajectory_dimensions"):
                rows[name].append(int(getattr(acq, name)))
            rows["sample_time_us"].append(float(acq.sample_time_us))
    except (LookupError, OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the ISMRMRD acquisitions ({error})") from None
    finally:
        dataset.close()
    if not rows["data"]:
        raise DataError(f"{path}: dataset 'dataset/data' holds no acquisitions")
    arrays = {k: np.asarray(v, dtype=np.uint64 if k == "flags" else np.float64 if k == "sample_time_us" else np.int64)
              for k, v in rows.items() if k != "data"}
    return xml.decode() if isinstance(xml, bytes) else str(xml), Acquisitions(data=rows["data"], **arrays)


def classify(acqs: Acquisitions) -> dict[str, np.ndarray]:
    """Boolean masks over acquisitions: ``noise``, ``calibration`` (only), ``imaging`` (module step 2)."""
    noise = acqs.has_flag(ACQ_IS_NOISE_MEASUREMENT)
    skipped = np.zeros(len(acqs), dtype=bool)
    for flag in SKIPPED_FLAGS:
        skipped |= acqs.has_flag(flag)
    calibration_only = acqs.has_flag(ACQ_IS_PARALLEL_CALIBRATION) & ~acqs.has_flag(ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING)
    rest = ~noise & ~skipped
    return {"noise": noise, "calibration": rest & calibration_only, "imaging": rest & ~calibration_only}


def _select(acqs: Acquisitions, chosen: np.ndarray, counter: str, selection, path) -> np.ndarray:
    """Narrow ``chosen`` to one index of ``counter`` (``selection`` an int), or keep all (``"mean"``)."""
    if selection == "mean":
        return chosen
    values = getattr(acqs, counter)
    present = sorted(set(values[chosen].tolist()))
    if isinstance(selection, bool) or not isinstance(selection, int) or selection not in present:
        raise DataError(f"{path}: {counter}: {selection!r} is not among the acquired {counter} indices {present}")
    return chosen & (values == selection)


def select_acquisitions(acqs: Acquisitions, chosen: np.ndarray, options: RawOptions, path) -> np.ndarray:
    """Apply ``options.average`` / ``repetition`` / ``contrast``; ``phase`` and ``set`` must be single."""
    chosen = _select(acqs, chosen, "average", options.average, path)
    chosen = _select(acqs, chosen, "repetition", options.repetition, path)
    contrasts = sorted(set(acqs.contrast[chosen].tolist()))
    if options.contrast is None:
        if len(contrasts) > 1:
            raise DataError(f"{path}: {len(contrasts)} contrasts {contrasts} acquired; choose one with contrast: <index>")
    else:
        chosen = _select(acqs, chosen, "contrast", int(options.contrast), path)
    for counter in ("phase", "set"):
        present = sorted(set(getattr(acqs, counter)[chosen].tolist()))
        if len(present) > 1:
            raise DataError(
                f"{path}: {len(present)} values {present} of the '{counter}' counter acquired; expected one "
                "(cardiac phases / sets are separate images: split the dataset first)"
            )
    return chosen


def select_calibration(acqs: Acquisitions, chosen: np.ndarray, options: RawOptions) -> np.ndarray:
    """Calibration-only lines to use: those of the chosen ``contrast`` (when set), every average and
    repetition (they only feed the coil maps, so their noise level need not be one number)."""
    if options.contrast is None:
        return chosen
    return chosen & (acqs.contrast == int(options.contrast))


def channel_count(acqs: Acquisitions, chosen: np.ndarray, path, role: str) -> int:
    """The one channel count of the ``chosen`` acquisitions (an error if they disagree)."""
    counts = sorted({acqs.data[i].shape[0] for i in np.flatnonzero(chosen)})
    if len(counts) != 1:
        raise DataError(f"{path}: {role} acquisitions have different channel counts {counts}; expected one")
    return counts[0]


def noise_samples(acqs: Acquisitions, noise: np.ndarray) -> np.ndarray:
    """All noise-scan samples ``[coils, N]`` (acquisitions concatenated along samples)."""
    return np.concatenate([acqs.data[i] for i in np.flatnonzero(noise)], axis=1)


@dataclass
class Grid:
    """Lines placed on the encoding grid (module step 3).

    Attributes:
        kspace: ``[slices, coils, X, W]`` complex64, the mean of each line's acquisitions (0 where
            not acquired).
        acquired: ``[slices, W]`` bool, lines with at least one acquisition.
        count: acquisitions averaged per acquired line (the same for every line).
        slices: the ``slice`` counter value of each slice.
    """

    kspace: np.ndarray
    acquired: np.ndarray
    count: int
    slices: list[int]


def grid_lines(acqs: Acquisitions, chosen: np.ndarray, geometry: HeaderGeometry, coils: int, path,
               slices: Optional[list[int]] = None, role: str = "imaging", even: bool = True) -> Grid:
    """Place the ``chosen`` acquisitions on ``[slices, coils, X, W]`` (module step 3); ``even``
    requires the same number of acquisitions for every acquired line (``count`` is then the one
    count, else the largest).

    Raises:
        DataError: a trajectory attached to an acquisition, reversed readouts, a readout that does
            not cover the encoded readout matrix (partial echo) or falls outside it, a line outside
            the encoded phase-encode matrix, lines acquired different numbers of times.
    """
    x_size, width = geometry.encoded_matrix[0], geometry.encoded_matrix[1]
    index = np.flatnonzero(chosen)
    if slices is None:
        slices = sorted(set(acqs.slice[index].tolist()))
    slot = {s: k for k, s in enumerate(slices)}
    total = np.zeros((len(slices), coils, x_size, width), dtype=np.complex128)
    count = np.zeros((len(slices), width), dtype=np.int64)
    reverse = acqs.has_flag(ACQ_IS_REVERSE)
    for i in index:
        where = f"{path}: {role} acquisition {i}"
        if acqs.trajectory_dimensions[i] > 0:
            raise DataError(f"{where} carries a {acqs.trajectory_dimensions[i]}-D trajectory; expected Cartesian data without one")
        if reverse[i]:
            raise DataError(f"{where} is a reversed readout (ACQ_IS_REVERSE, EPI-style); expected forward Cartesian readouts")
        if acqs.slice[i] not in slot:
            continue  # a calibration line of a slice without imaging data
        samples = acqs.data[i].shape[1]
        first, last = int(acqs.discard_pre[i]), samples - int(acqs.discard_post[i])
        row0 = first - int(acqs.center_sample[i]) + x_size // 2
        rows = last - first
        if row0 < 0 or row0 + rows > x_size:
            raise DataError(
                f"{where}: samples {first}..{last - 1} with center_sample {acqs.center_sample[i]} fall on readout "
                f"rows {row0}..{row0 + rows - 1}, outside the encoded matrix x = {x_size}"
            )
        if rows != x_size:
            raise DataError(
                f"{where}: {rows} readout samples cover rows {row0}..{row0 + rows - 1} of the encoded x = {x_size} "
                "(partial echo); expected full readouts (zero-filled samples would count as measured)"
            )
        column = int(acqs.line[i]) - geometry.center_line + width // 2
        if not 0 <= column < width:
            raise DataError(
                f"{where}: kspace_encode_step_1 {acqs.line[i]} (center {geometry.center_line}) falls on column "
                f"{column}, outside the encoded matrix y = {width}"
            )
        k = slot[int(acqs.slice[i])]
        total[k, :, row0 : row0 + rows, column] += acqs.data[i][:, first:last]
        count[k, column] += 1
    counts = sorted(set(count[count > 0].tolist()))
    if even and len(counts) > 1:
        raise DataError(
            f"{path}: {role} lines were acquired {counts[0]} to {counts[-1]} times (averages / repetitions); "
            "a mean needs the same count for every line: select one with average: <index> / repetition: <index>"
        )
    acquired = count > 0
    kspace = np.where(acquired[:, None, None, :], total / np.maximum(count, 1)[:, None, None, :], 0)
    return Grid(kspace=kspace.astype(np.complex64), acquired=acquired, count=counts[-1] if counts else 0, slices=slices)


def remove_readout_oversampling(kspace: np.ndarray, keep: int) -> np.ndarray:
    """Centre ``keep`` rows of the readout image of ``[..., X, W]`` k-space, back in k-space
    (centred orthonormal FFTs along the readout, :func:`lit_sampler.fft.ifft1c` / ``fft1c``)."""
    x_size = kspace.shape[-2]
    if keep == x_size:
        return kspace
    hybrid = ifft1c(torch.from_numpy(np.ascontiguousarray(kspace)), dim=-2)
    hybrid = hybrid[..., center_slice(x_size, keep), :]
    return fft1c(hybrid, dim=-2).numpy().astype(np.complex64)


# --------------------------------------------------------------------------------------------------
# The whole volume
# --------------------------------------------------------------------------------------------------


@dataclass
class RawVolume:
    """One ISMRMRD dataset in our layout (see the module docstring).

    Attributes:
        kspace: ``[slices, coils, H, W]`` complex64 (whitened when ``whitening`` is set).
        calibration: like ``kspace`` with calibration-only lines filled in where imaging lines
            are missing (what coil maps are estimated from).
        mask: ``[W]`` float32 0/1, the acquired lines, or ``None`` when every line was acquired.
        geometry: the header's grid; whitening: the transform applied, or ``None``.
        noise_var: measured noise variance per coil and complex k-space sample (``1 / count``
            after whitening), or ``None`` without a noise scan (or ``whiten=False``).
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
            noise_var = 1.0 / grid.count
    kspace = remove_readout_oversampling(kspace, geometry.readout_keep)
    calibration = remove_readout_oversampling(calibration, geometry.readout_keep)
    mask = None if acquired[0].all() else acquired[0].astype(np.float32)
    return RawVolume(kspace=kspace, calibration=calibration, mask=mask, geometry=geometry, whitening=whitening,
                     noise_var=noise_var, count=grid.count, slices=grid.slices, xml=xml, notes=notes)


def dwell_ratio(acqs: Acquisitions, noise: np.ndarray, imaging: np.ndarray) -> float:
    """``t_noise / t_imaging`` (module :mod:`~lit_sampler.data.whitening`); 1 when either is unset."""
    t_noise = acqs.sample_time_us[noise]
    t_image = acqs.sample_time_us[imaging]
    if not (t_noise > 0).all() or not (t_image > 0).all():
        return 1.0
    return float(np.median(t_noise) / np.median(t_image))
