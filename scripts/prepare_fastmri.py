#!/usr/bin/env python
"""Turn raw fastMRI multi-coil files into the sampling layout: ESPIRiT maps + cropped k-space.

For every file of IN_DIR (``*.h5``) and every selected slice:

1. ESPIRiT maps (``lit_sampler.data.espirit``, Uecker et al. 2014; one map set, like BART's
   ``ecalib -m1``) from the **full** k-space, as Jalal et al. did with BART before cropping;
2. the geometry of ``lit_sampler.data.geometry`` (``--crop csgm``: drop padding lines, crop the
   phase-encode axis in k-space and the readout in image space; maps through the same route);
3. written to OUT_DIR/<same name>: ``kspace`` ``[slices, coils, h, w]`` complex64, ``sens_maps``
   (same shape), the cropped ``mask`` if the file had one, ``ismrmrd_header`` copied, the file's
   attributes preserved, plus ``prepared_*`` attributes recording what was done.
   (``reconstruction_rss`` is not copied: its 320×320 image-domain crop is another geometry.)

Writes are atomic (a temporary file renamed when complete); existing outputs are skipped unless ``--overwrite``.

    python scripts/prepare_fastmri.py raw/brain_val prepared/brain_val --image-size 384 384
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from lit_sampler.data.espirit import add_espirit_arguments, espirit_maps
from lit_sampler.data.fastmri import inspect_volume, read_slice
from lit_sampler.data.fastmri_write import write_volume
from lit_sampler.data.geometry import Geometry, as_size
from lit_sampler.data.ismrmrd_header import is_ismrmrd_file
from lit_sampler.data.selection import find_h5_files, select_slices
from lit_sampler.errors import DataError


def parse_slices(text):
    """``all`` / ``middle`` / ``a:b`` / ``3,4,5`` → a :func:`select_slices` spec."""
    if text is None:
        return None
    if "," in text or text.strip().isdigit():
        return [int(t) for t in text.split(",") if t.strip()]
    return text


def prepare_file(path: Path, out_dir: Path, geometry: Geometry, slices, espirit_kwargs: dict, progress=None) -> Path:
    """Prepare one raw file (see the module docstring); returns the written path."""
    if is_ismrmrd_file(path):
        raise DataError(f"{path}: is an ISMRMRD raw data file; convert it with scripts/prepare_ismrmrd.py")
    volume = inspect_volume(path)
    if not volume.multicoil:
        raise DataError(f"{path}: dataset 'kspace' is single-coil {volume.kspace_shape}; maps need multi-coil data")
    geometry.check_fits(volume.height, volume.width, str(path))
    chosen = select_slices(volume, slices)
    kspace_out, maps_out, mask_out = [], [], None
    for slice_num in chosen:
        raw = read_slice(volume, slice_num, read_maps=False)
        maps = espirit_maps(raw.kspace, **espirit_kwargs)
        undersampled = False
        if raw.file_mask is not None:
            full = torch.broadcast_to(raw.file_mask, raw.kspace.shape[-2:])
            undersampled = not bool((raw.kspace * (1 - full)).abs().amax() > 0)
        kspace, maps, mask = geometry.apply(
            raw.kspace, maps, raw.file_mask, f"{path}: slice {slice_num}", drop_padding=not undersampled
        )
        kspace_out.append(kspace.to(torch.complex64))
        maps_out.append(maps.to(torch.complex64))
        mask_out = mask
        if progress is not None:
            progress(1)
    with h5py.File(path, "r") as f:
        attrs = {k: v for k, v in f.attrs.items()}
        extra = {}
        if "ismrmrd_header" in f:
            extra["ismrmrd_header"] = f["ismrmrd_header"][()]
    attrs.update(
        prepared_by="lit_sampler scripts/prepare_fastmri.py",
        prepared_crop=geometry.crop,
        prepared_image_size=json.dumps(None if geometry.image_size is None else list(geometry.image_size)),
        prepared_source_shape=json.dumps(volume.kspace_shape),
        prepared_source_slices=json.dumps(chosen),
        prepared_espirit=json.dumps(espirit_kwargs),
    )
    if mask_out is not None:
        mask_out = mask_out[0] if mask_out.shape[0] == 1 else mask_out
    return write_volume(
        out_dir / path.name,
        torch.stack(kspace_out),
        sens_maps=torch.stack(maps_out),
        mask=None if mask_out is None else np.asarray(mask_out),
        attrs=attrs,
        datasets=extra,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("in_dir", type=Path, help="folder of raw fastMRI multi-coil .h5 files (or one file)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--image-size", type=int, nargs="+", default=None, help="H W (or N); default: keep")
    parser.add_argument("--crop", choices=("csgm", "image"), default="csgm")
    parser.add_argument("--slices", default=None, help="all | middle | a:b | 3,4,5 (default all)")
    add_espirit_arguments(parser)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    image_size = None
    if args.image_size is not None:
        if len(args.image_size) not in (1, 2):
            parser.error("--image-size takes N or H W")
        image_size = as_size(tuple(args.image_size) if len(args.image_size) == 2 else args.image_size[0])
    geometry = Geometry(image_size, args.crop)
    slices = parse_slices(args.slices)
    espirit_kwargs = dict(
        calib_width=args.calib_width, kernel_width=args.kernel_width, thresh=args.thresh, crop=args.eig_crop
    )
    try:
        files = find_h5_files(args.in_dir)
        todo = [p for p in files if args.overwrite or not (args.out_dir / p.name).exists()]
        raw = [p for p in todo if is_ismrmrd_file(p)]
        if raw:
            raise DataError(f"{raw[0]}: is an ISMRMRD raw data file; convert it with scripts/prepare_ismrmrd.py")
        total = sum(len(select_slices(inspect_volume(p), slices)) for p in todo)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    skipped = len(files) - len(todo)
    if skipped:
        print(f"skipping {skipped} file(s) already in {args.out_dir} (use --overwrite)")
    from tqdm import tqdm

    start = time.time()
    with tqdm(total=total, unit="slice", desc="ESPIRiT + crop") as bar:
        for path in todo:
            bar.set_postfix_str(path.name)
            try:
                out = prepare_file(path, args.out_dir, geometry, slices, espirit_kwargs, bar.update)
            except DataError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            tqdm.write(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    print(f"prepared {len(todo)} file(s), {total} slice(s) in {time.time() - start:.1f} s -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
