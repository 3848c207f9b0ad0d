"""The ISMRMRD file (Inati et al., MRM 77:411, 2017) and its XML header: recognising the file,
importing the optional ``ismrmrd`` package, and the checks on the header and the grid it describes
(:func:`parse_header`: step 1 of :mod:`lit_sampler.data.ismrmrd_raw`).

Every problem raises one :class:`~lit_sampler.errors.DataError` naming the file, what was found
and what is expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import h5py

from ..errors import DataError

INSTALL_HINT = "pip install 'lit_sampler[ismrmrd]'"


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
    """Validate the ISMRMRD XML header of ``path`` (:mod:`~lit_sampler.data.ismrmrd_raw`, step 1) and read its grid.

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
