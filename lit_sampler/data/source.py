"""The source settings that the posterior and the training data modules share: :class:`FastMRISource`.

One record builds the geometry, the slice loader and the measurement transform, and finds and
checks the files, so that a prior is trained on exactly the images (and normalisation) the sampler
will see for the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence, Union

from ..errors import DataError
from .fastmri import VolumeInfo, inspect_volume
from .geometry import CropMode, Geometry, ImageSize, as_size
from .ismrmrd_raw import RawOptions
from .measured_noise import check_measured_data
from .raw_prepare import resolve_raw_files
from .selection import SliceSpec, find_h5_files, select_all_slices
from .slice_loader import SliceLoader
from .transforms import MaskFunc, MeasurementTransform, resolve_target

TargetKind = Literal["auto", "mvue", "rss", "none"]
DataPath = Union[str, list[str]]


@dataclass
class FastMRISource:
    """Where the slices come from and how a slice becomes a measurement (see :class:`FastMRIDataModule`
    for the meaning of each field)."""

    data_path: DataPath
    maps_dir: Optional[str] = None
    maps_key: Optional[str] = None
    slices: SliceSpec = None
    image_size: ImageSize = None
    crop: CropMode = "csgm"
    target: TargetKind = "auto"
    mask: Optional[MaskFunc] = None
    seed: int = 0
    scale_percentile: float = 99.0
    use_file_mask: bool = True
    mask_seed: Literal["run", "fastmri"] = "run"
    raw: Optional[RawOptions] = None
    geometry: Geometry = field(init=False)
    transform: MeasurementTransform = field(init=False)
    loader: SliceLoader = field(init=False)

    def __post_init__(self) -> None:
        self.seed = int(self.seed)
        self.geometry = Geometry(as_size(self.image_size), self.crop)
        self.transform = MeasurementTransform(self.mask, self.seed, self.scale_percentile, self.target, self.mask_seed)
        self.loader = SliceLoader(self.geometry, use_file_mask=self.use_file_mask)

    def files(self, data_path: Optional[DataPath] = None) -> list:
        """The files of ``data_path`` (default: this source's); ISMRMRD raw files (recognised by
        content) are replaced by their cached, prepared version, converted on first use (with a
        ``maps_dir`` their maps come from there, so the conversion skips ESPIRiT)."""
        files = find_h5_files(self.data_path if data_path is None else data_path)
        return resolve_raw_files(files, self.raw, with_maps=self.maps_dir is None)

    def volumes_and_slices(
        self, data_path: Optional[DataPath] = None, require_maps: bool = True,
        snr_levels: Sequence[Optional[float]] = (None,),
    ) -> tuple[list[VolumeInfo], list[list[int]]]:
        """The files of ``data_path`` (default: this source's), checked against the geometry, the
        target and (for data with measured noise) the SNR levels (metadata only), and the slices
        selected in each."""
        volumes = [inspect_volume(path, maps_dir=self.maps_dir, maps_key=self.maps_key) for path in self.files(data_path)]
        for volume in volumes:
            self.geometry.check_fits(volume.height, volume.width, volume.path)
            check_measured_data(volume, snr_levels, self.use_file_mask)
            if self.use_file_mask and volume.mask_shape is not None:
                self.geometry.check_mask_croppable(len(volume.mask_shape) == 2, (volume.height, volume.width), volume.path)
            resolve_target(volume, self.target, require_maps=require_maps)
        return volumes, select_all_slices(volumes, self.slices)

    def output_shape(self, volume: VolumeInfo) -> tuple[int, int]:
        return self.geometry.output_shape(volume.height, volume.width)


def check_count(name: str, value: int) -> int:
    """``value`` as an int, or a :class:`DataError` when it is not a positive count."""
    if int(value) < 1:
        raise DataError(f"{name} must be >= 1, got {value}")
    return int(value)
