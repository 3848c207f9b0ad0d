"""Viewer-ready copies of the reconstructed volumes: NIfTI (ITK-SNAP, FSLeyes, 3D Slicer) and PNG slices.

Written by the :class:`~lit_sampler.outputs.ReconstructionWriter` with ``export: [nifti, png]``, after
the volume files, per (file, SNR), from the posterior mean's magnitude and (with several samples)
the per-pixel posterior standard deviation::

    export/<snr>/<stem>_mean.nii.gz   export/<snr>/<stem>_std.nii.gz
    export/<snr>/<stem>/mean_s0003.png  …   export/<snr>/<stem>/std_s0003.png  …

NIfTI layout: voxel ``[i, j, k] = |x|[slice k, H − 1 − j, i]`` (``i`` along the phase-encode
columns, ``j`` along the readout rows, bottom to top, ``k`` over the reconstructed slices in
order), float32, gzip. The affine is ``diag(Δ_PE, Δ_RO, Δ_slice)``: the voxel size only; the
orientation is not patient-referenced (the data module keeps no slice positions), so a viewer
shows slices as the PNGs do, row 0 at the top. Voxel size (mm): the prepared file's
``voxel_size_mm`` attribute (ISMRMRD conversions), else the encoded FOV / matrix of the file's
``ismrmrd_header`` (fastMRI files) when the k-space still has the encoded matrix size, adjusted for
the data module's geometry (a ``csgm`` crop of the phase encodes in k-space enlarges Δ_PE by
``W / w``; image-domain crops keep the voxel size); else 1 mm with a note in the header's
``descrip``. Slices that were not reconstructed are not in the volume: with a slice subset the
slice spacing is not the slice thickness.

PNG: one grey-scale image per slice, the mean windowed to ``[0, max]`` of the whole volume (slices
are comparable), the std to its own maximum; at least 256 pixels on the short side (nearest
neighbour). Every file is written atomically.
"""

from __future__ import annotations

import gzip
import logging
import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..atomic import atomic_target, atomic_write_bytes
from ..physics.noise import snr_label

log = logging.getLogger(__name__)

FORMATS = ("nifti", "png")
INSTALL_HINT = "pip install 'lit_sampler[export]'"
PNG_MIN_PIXELS = 256


def check_formats(formats: Optional[Sequence[str]]) -> tuple[str, ...]:
    """Validated export formats; NIfTI needs nibabel (checked now, not after hours of sampling).

    Raises:
        ValueError: an unknown format. ImportError: ``nifti`` without nibabel, naming the extra.
    """
    formats = tuple(formats or ())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"export: unknown format(s) {unknown}; expected a list of {list(FORMATS)}")
    if "nifti" in formats:
        _nibabel()
    return formats


def _nibabel():
    try:
        import nibabel
    except ImportError as error:
        raise ImportError(f"export: nifti needs nibabel ({error}): {INSTALL_HINT}") from None
    return nibabel


# ---------------------------------------------------------------------------- voxel size
def header_voxel_size(xml: str | bytes, shape: tuple[int, int]) -> Optional[tuple[float, float, float]]:
    """``(Δ_RO, Δ_PE, Δ_slice)`` from an ISMRMRD XML header's encodedSpace when the k-space
    ``(H, W)`` still has its matrix size, else ``None`` (plain XML parsing: no ismrmrd needed)."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None

    def find(node, name):
        for child in node.iter():
            if child.tag.rsplit("}", 1)[-1] == name:
                return child
        return None

    encoded = find(root, "encodedSpace")
    if encoded is None:
        return None
    matrix, fov = find(encoded, "matrixSize"), find(encoded, "fieldOfView_mm")
    try:
        mx, my = (int(find(matrix, axis).text) for axis in ("x", "y"))
        fx, fy, fz = (float(find(fov, axis).text) for axis in ("x", "y", "z"))
    except (AttributeError, TypeError, ValueError):
        return None
    if (mx, my) != tuple(shape) or min(mx, my, fx, fy) <= 0:
        return None
    return (fx / mx, fy / my, fz)


def file_voxel_size(volume: Any) -> Optional[tuple[float, float, float]]:
    """The voxel size of a :class:`~lit_sampler.data.fastmri.VolumeInfo` as stored (before the
    data module's geometry): ``voxel_size_mm`` attribute, else its ``ismrmrd_header``."""
    stored = volume.attrs.get("voxel_size_mm")
    if stored is not None and len(stored) == 3:
        return tuple(float(v) for v in stored)
    try:
        import h5py

        with h5py.File(volume.path, "r") as f:
            if "ismrmrd_header" not in f:
                return None
            xml = f["ismrmrd_header"][()]
    except OSError:
        return None
    return header_voxel_size(xml, (volume.height, volume.width))


def output_voxel_size(voxel: Optional[Sequence[float]], stored: tuple[int, int], geometry: Any) -> Optional[tuple[float, float, float]]:
    """The voxel size after the data module's :class:`~lit_sampler.data.geometry.Geometry`."""
    if voxel is None:
        return None
    dx, dy, dz = (float(v) for v in voxel)
    size = getattr(geometry, "image_size", None)
    if size is not None and getattr(geometry, "crop", "csgm") == "csgm":
        dy *= stored[1] / size[1]  # fewer phase encodes over the same FOV
    return (dx, dy, dz)


# ---------------------------------------------------------------------------- writing
def nifti_bytes(volume: np.ndarray, voxel: Optional[Sequence[float]], description: str) -> bytes:
    """``[slices, H, W]`` real → gzip-compressed NIfTI-1 bytes (layout in the module docstring)."""
    nibabel = _nibabel()
    data = np.ascontiguousarray(volume[:, ::-1, :].transpose(2, 1, 0), dtype=np.float32)  # [W, H, S]
    dx, dy, dz = voxel if voxel is not None else (1.0, 1.0, 1.0)
    affine = np.diag([dy, dx, dz, 1.0])
    image = nibabel.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    image.header["descrip"] = description[:79].encode()
    return gzip.compress(image.to_bytes(), mtime=0)  # mtime 0: the same volume gives the same bytes


def png_slice(image: np.ndarray, vmax: float, path: Path) -> None:
    """One slice as a grey-scale PNG windowed to ``[0, vmax]``, pixel for pixel: no axes, no margins,
    no interpolation (each pixel a ``zoom × zoom`` block, so that small images stay visible)."""
    import matplotlib.image as mpimg

    height, width = image.shape
    zoom = max(1, math.ceil(PNG_MIN_PIXELS / min(height, width)))
    scaled = np.clip(np.nan_to_num(image) / (vmax or 1.0), 0.0, 1.0)
    pixels = np.kron(scaled, np.ones((zoom, zoom)))
    with atomic_target(path) as temporary:
        mpimg.imsave(temporary, pixels, cmap="gray", vmin=0.0, vmax=1.0, format="png")


def export_volume(run_dir: Path, volume: dict[str, Any], formats: Sequence[str],
                  voxel: Optional[Sequence[float]] = None) -> list[Path]:
    """Write the configured exports of one assembled volume (``report.build_volume``'s dict:
    ``fname``, ``snr_db``, ``slices``, ``mean`` complex ``[S, H, W]``, ``std`` ``[S, H, W]``,
    ``num_samples``). Returns the written paths."""
    folder = Path(run_dir) / "export" / snr_label(volume["snr_db"])
    stem = Path(volume["fname"]).stem
    images = {"mean": volume["mean"].abs().numpy()}
    if max(volume["num_samples"]) > 1:
        images["std"] = volume["std"].numpy()
    note = "" if voxel is not None else "; voxel size unknown: 1 mm assumed"
    if voxel is None and "nifti" in formats:
        log.warning("%s: no voxel size in the file (voxel_size_mm or ismrmrd_header); NIfTI written with 1 mm", volume["fname"])
    written = []
    for name, image in images.items():
        if "nifti" in formats:
            path = folder / f"{stem}_{name}.nii.gz"
            description = f"lit_sampler {name} {snr_label(volume['snr_db'])} slices {volume['slices'][0]}-{volume['slices'][-1]}{note}"
            atomic_write_bytes(path, nifti_bytes(image, voxel, description))
            written.append(path)
        if "png" in formats:
            vmax = float(np.nanmax(image)) if np.isfinite(image).any() else 1.0
            for index, slice_num in enumerate(volume["slices"]):
                path = folder / stem / f"{name}_s{int(slice_num):04d}.png"
                png_slice(image[index], vmax, path)
                written.append(path)
    return written
