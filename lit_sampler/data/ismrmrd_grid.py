"""The acquisitions of an ISMRMRD dataset and their gridding (steps 2 and 3 of
:mod:`lit_sampler.data.ismrmrd_raw`, and its readout-oversampling removal, step 5).

* :func:`read_acquisitions`: every acquisition, headers as arrays (:class:`Acquisitions`);
* :func:`classify` by flag: noise scan, calibration only, skipped (navigators, phase correction,
  dummy scans, …), imaging; :func:`select_acquisitions`: the chosen average, repetition, contrast;
* :func:`grid_lines`: sample ``s`` goes to readout row ``s − center_sample + X//2``, line
  ``kspace_encode_step_1 = e`` to column ``e − center + W//2``; repeated lines are averaged;
* :func:`remove_readout_oversampling`: keep the centre rows of the readout image.
* :func:`noise_samples`, :func:`dwell_ratio`: the noise scan, for pre-whitening (step 4).

Every problem raises one :class:`~lit_sampler.errors.DataError` naming the file, what was found and
what is expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch

from ..errors import DataError
from .geometry import center_slice
from .ismrmrd_header import HeaderGeometry, import_ismrmrd
from ..physics.fft import fft1c, ifft1c

if TYPE_CHECKING:  # (ismrmrd_raw imports this module: the options are only read here)
    from .ismrmrd_raw import RawOptions

#: ISMRMRD acquisition flags (``ismrmrd/constants.py``; bit ``flag − 1`` of ``flags``).
ACQ_IS_NOISE_MEASUREMENT = 19
ACQ_IS_PARALLEL_CALIBRATION = 20
ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING = 21
ACQ_IS_REVERSE = 22
#: Flags of acquisitions that are neither imaging nor calibration data (navigators, phase
#: correction, feedback, dummy scans, surface-coil correction, phase stabilisation).
SKIPPED_FLAGS = (23, 24, 26, 27, 28, 29, 30, 31)


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
    """Boolean masks over acquisitions: ``noise``, ``calibration`` (only), ``imaging`` (:mod:`~lit_sampler.data.ismrmrd_raw`, step 2)."""
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
    """Lines placed on the encoding grid (:mod:`~lit_sampler.data.ismrmrd_raw`, step 3).

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
    """Place the ``chosen`` acquisitions on ``[slices, coils, X, W]`` (:mod:`~lit_sampler.data.ismrmrd_raw`, step 3); ``even``
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
    (centred orthonormal FFTs along the readout, :func:`lit_sampler.physics.fft.ifft1c` / ``fft1c``)."""
    x_size = kspace.shape[-2]
    if keep == x_size:
        return kspace
    hybrid = ifft1c(torch.from_numpy(np.ascontiguousarray(kspace)), dim=-2)
    hybrid = hybrid[..., center_slice(x_size, keep), :]
    return fft1c(hybrid, dim=-2).numpy().astype(np.complex64)


def dwell_ratio(acqs: Acquisitions, noise: np.ndarray, imaging: np.ndarray) -> float:
    """``t_noise / t_imaging`` (module :mod:`~lit_sampler.data.whitening`); 1 when either is unset."""
    t_noise = acqs.sample_time_us[noise]
    t_image = acqs.sample_time_us[imaging]
    if not (t_noise > 0).all() or not (t_image > 0).all():
        return 1.0
    return float(np.median(t_noise) / np.median(t_image))
