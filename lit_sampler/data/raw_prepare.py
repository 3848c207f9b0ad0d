"""ISMRMRD raw data → a prepared fastMRI-style h5 (k-space, ESPIRiT maps, measured mask), cached.

One conversion (:func:`convert_ismrmrd`) backs both ``scripts/prepare_ismrmrd.py`` and the data
modules, which read ISMRMRD files directly: :func:`resolve_raw_files` recognises ISMRMRD files by
content (:func:`~lit_sampler.data.ismrmrd_header.is_ismrmrd_file`), converts each once into the
cache, and hands the cached path on, so everything after file discovery is the fastMRI path,
unchanged.

Prepared file (our fastMRI layout, :func:`lit_sampler.data.fastmri_write.write_volume`):

* ``kspace`` ``[slices, coils, H, W]`` complex64 (whitened: ``W y``, ``W = c L⁻¹``; readout
  oversampling removed);
* ``sens_maps`` like it: ESPIRiT (:func:`lit_sampler.data.espirit.espirit_maps`) per slice from the
  calibration region: the centre ``calib_width²`` block of fully sampled data, or the fully sampled
  centre lines of undersampled data (calibration-only lines included), ``calib_width`` rows high.
  Whitened data: the maps of the whitened coils, scaled per pixel so that ``‖W⁻¹ S‖ = 1``
  (:func:`lit_sampler.physics.coils.unwhitened_unit_maps`), so the image ``x`` of ``kspace = F(S x)`` is
  the unwhitened image (what ``whiten: false`` and fastMRI's ``reconstruction_rss`` give), not
  that image times the smooth gain ``‖W Ŝ‖`` of unit-norm whitened maps;
* ``mask`` ``[W]``: the acquired lines, only when the data are undersampled (the data module then
  uses it as the file mask and applies no retrospective mask);
* ``ismrmrd_header`` (the XML), ``noise_covariance`` ``Ψ`` ``[coils, coils]`` when whitened;
* attrs: ``source_format = "ismrmrd"``, ``real_noise``, ``acquired_mask``, ``voxel_size_mm``,
  ``field_of_view_mm``, ``measured_noise_var`` (with a noise scan), ``whitened``, the whitening
  report (``whitening_*``, among them ``whitening_scale`` = ``c``), ``prepared_*`` (source, options).
  ``noise_covariance`` and ``whitening_scale`` give ``W⁻¹ = L / c``, with which readers put
  images back on the unwhitened scale (:func:`lit_sampler.data.fastmri.inspect_volume`).

Cache: ``<cache_dir>/ismrmrd/<stem>-<key>/<source file name>``, the key a SHA-256 of the source's
resolved path, size and modification time, the conversion settings and :data:`FORMAT_VERSION`; a
changed file or setting converts again, an unchanged one is read from the cache. The cached file
keeps the source's name: the name identifies items and outputs. Writes are atomic, so concurrent
processes (DDP ranks) converting the same file cannot leave a half-written cache entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..errors import DataError
from .espirit import espirit_maps
from .fastmri_write import write_volume
from .geometry import padding_free_width
from .ismrmrd_header import is_ismrmrd_file
from .ismrmrd_raw import RawOptions, RawVolume, read_ismrmrd
from ..physics.coils import unwhitened_unit_maps

log = logging.getLogger(__name__)

#: Bump when the conversion changes what it writes: old cache entries are then not reused.
#: 2: whitening scaled by ``c`` (``whitening_scale``) and maps normalised so that ``‖W⁻¹ S‖ = 1``.
FORMAT_VERSION = 2


def default_cache_dir() -> Path:
    """``$LIT_SAMPLER_CACHE``, else ``$XDG_CACHE_HOME/lit_sampler`` (``~/.cache/lit_sampler``)."""
    if os.environ.get("LIT_SAMPLER_CACHE"):
        return Path(os.environ["LIT_SAMPLER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lit_sampler"


def calibration_columns(acquired: np.ndarray) -> int:
    """Width of the widest centred window of acquired lines ``[W]`` (bool) around column ``W//2``."""
    width = acquired.shape[-1]
    centre = width // 2
    if not acquired[centre]:
        return 0
    left = centre
    while left > 0 and acquired[left - 1]:
        left -= 1
    right = centre
    while right < width - 1 and acquired[right + 1]:
        right += 1
    return padding_free_width(width, left, width - 1 - right)


def estimate_maps(raw: RawVolume, options: RawOptions, path) -> tuple[np.ndarray, tuple[int, int]]:
    """ESPIRiT maps ``[slices, coils, H, W]`` of ``raw`` from its calibration lines, and the
    calibration region ``(rows, cols)`` used. Whitened data: normalised so that ``‖W⁻¹ S‖ = 1``
    (module docstring).

    Raises:
        DataError: fewer fully sampled centre lines than the ESPIRiT kernel needs.
    """
    height, width = raw.kspace.shape[-2:]
    acquired = np.abs(raw.calibration[0]).reshape(-1, width).max(axis=0) > 0
    cols = min(int(options.calib_width), calibration_columns(acquired))
    rows = min(int(options.calib_width), height)
    if min(rows, cols) < options.kernel_width:
        raise DataError(
            f"{path}: {calibration_columns(acquired)} fully sampled centre lines, but ESPIRiT with kernel_width "
            f"{options.kernel_width} needs at least that many: acquire more calibration lines, lower "
            "kernel_width, or supply maps (maps_dir)"
        )
    maps = torch.stack([
        espirit_maps(torch.from_numpy(raw.calibration[s]), calib_width=(rows, cols), kernel_width=options.kernel_width,
                     thresh=options.thresh, crop=options.eig_crop)
        for s in range(raw.kspace.shape[0])
    ])
    if raw.whitening is not None:
        # ESPIRiT's unit norm over the whitened coils would make the image x·‖W Ŝ‖ (a smooth shading);
        # unit norm over the scanner's coils keeps x the unwhitened image (whitening.py docstring)
        maps = unwhitened_unit_maps(maps, torch.from_numpy(raw.whitening.unwhitening))
    return maps.numpy(), (rows, cols)


def convert_ismrmrd(source, target, options: RawOptions = RawOptions(), with_maps: bool = True) -> Path:  # noqa: B008
    """Convert the ISMRMRD file ``source`` into the prepared h5 ``target`` (module docstring).

    ``with_maps=False`` skips ESPIRiT (maps come from ``maps_dir``). Returns ``target``.
    """
    source, target = Path(source), Path(target)
    raw = read_ismrmrd(source, options)
    attrs = raw.attrs()
    attrs.update(
        prepared_by="lit_sampler.data.raw_prepare",
        prepared_source=str(source),
        prepared_options=json.dumps(options.settings()),
        prepared_format_version=FORMAT_VERSION,
    )
    maps = None
    if with_maps:
        maps, region = estimate_maps(raw, options, source)
        attrs["prepared_calibration_region"] = np.asarray(region, dtype=np.int64)
    datasets = {"ismrmrd_header": np.bytes_(raw.xml.encode())}
    if raw.whitening is not None:
        datasets["noise_covariance"] = raw.whitening.covariance.astype(np.complex64)
    write_volume(target, raw.kspace, sens_maps=maps, mask=raw.mask, attrs=attrs, datasets=datasets)
    print(describe_conversion(source, target, raw))
    return target


def describe_conversion(source: Path, target: Path, raw: RawVolume) -> str:
    """One log line: shape, oversampling, mask, whitening report, where it went."""
    slices, coils, height, width = raw.kspace.shape
    parts = [f"ISMRMRD {source.name}: {slices} slice(s), {coils} coils, {height}×{width}"]
    if raw.geometry.readout_oversampling != 1:
        parts.append(f"readout oversampling {raw.geometry.readout_oversampling:g}× removed")
    if raw.mask is not None:
        parts.append(f"undersampled: {int(raw.mask.sum())}/{width} lines acquired (kept as the mask)")
    if raw.count > 1:
        parts.append(f"{raw.count} acquisitions averaged per line")
    if raw.whitening is not None:
        w = raw.whitening
        parts.append(
            f"pre-whitened from {w.samples} noise samples/coil (noise std {w.noise_std.min():.3g}..{w.noise_std.max():.3g}, "
            f"max correlation {w.max_correlation:.2f}, condition {w.condition:.3g}; whitened noise std {w.scale:.3g}, "
            "images on the unwhitened scale)"
        )
    else:
        parts.append("no noise scan: not whitened, noise level unknown")
    parts.extend(raw.notes)
    return "; ".join(parts) + f" -> {target}"


def cache_key(source: Path, options: RawOptions, with_maps: bool) -> str:
    """Hex key of a source file's identity (path, size, mtime) and the conversion settings."""
    stat = source.stat()
    identity = {
        "path": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
        "options": options.settings(), "maps": with_maps, "version": FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def cached_path(source: Path, options: RawOptions, with_maps: bool) -> Path:
    """Where the prepared version of ``source`` lives in the cache."""
    root = Path(options.cache_dir) if options.cache_dir else default_cache_dir()
    return root / "ismrmrd" / f"{source.stem}-{cache_key(source, options, with_maps)}" / source.name


def prepared_from_cache(source, options: RawOptions = RawOptions(), with_maps: bool = True) -> Path:  # noqa: B008
    """The cached prepared file of ``source``, converting it first when absent."""
    source = Path(source)
    target = cached_path(source, options, with_maps)
    if target.is_file():
        log.info("ISMRMRD %s: using the cached conversion %s", source, target)
        return target
    return convert_ismrmrd(source, target, options, with_maps)


def resolve_raw_files(
    files: Sequence[Union[str, Path]],
    options: Optional[RawOptions] = None,
    with_maps: bool = True,
) -> list[Path]:
    """``files`` with every ISMRMRD file replaced by its prepared (cached) version."""
    options = options or RawOptions()
    return [prepared_from_cache(p, options, with_maps) if is_ismrmrd_file(p) else Path(p) for p in files]
