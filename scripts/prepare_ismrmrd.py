#!/usr/bin/env python
"""Convert ISMRMRD raw data (Cartesian 2-D multi-coil) into the prepared fastMRI-style layout.

For every ISMRMRD file of IN (a folder's ``*.h5``, a glob, or one file; recognised by content:
a group ``dataset`` holding ``xml`` and ``data``), writes OUT_DIR/<same name> with ``kspace``
``[slices, coils, H, W]`` (lines gridded by ``kspace_encode_step_1``/``slice``, averages combined,
noise pre-whitened from the noise scan, readout oversampling removed), ESPIRiT ``sens_maps`` from
the calibration lines, the acquired-line ``mask`` when undersampled, the ``ismrmrd_header``, the
``noise_covariance`` and attributes (voxel size, whitening report, ``prepared_*``). This is the
conversion the data module applies on its own when ``data_path`` holds ISMRMRD files
(``lit_sampler.data.raw_prepare``); use the script to prepare once, e.g. for BART maps or sharing.
Needs the ``ismrmrd`` extra (``pip install 'lit_sampler[ismrmrd]'``).

    python scripts/prepare_ismrmrd.py raw/ prepared/ --average mean --calib-width 24
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lit_sampler.data.espirit import add_espirit_arguments
from lit_sampler.data.ismrmrd_header import is_ismrmrd_file
from lit_sampler.data.ismrmrd_raw import RawOptions
from lit_sampler.data.raw_prepare import convert_ismrmrd
from lit_sampler.data.selection import find_h5_files
from lit_sampler.errors import DataError


def _selection(text: str):
    return "mean" if text == "mean" else int(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="folder of ISMRMRD .h5 files, a glob, or one file")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--average", type=_selection, default="mean", help="'mean' or the average index to keep")
    parser.add_argument("--repetition", type=_selection, default="mean", help="'mean' or the repetition index to keep")
    parser.add_argument("--contrast", type=int, default=None, help="contrast (echo) index to keep")
    parser.add_argument("--no-whiten", action="store_true", help="do not pre-whiten with the noise scan")
    parser.add_argument("--no-maps", action="store_true", help="skip ESPIRiT (maps come from elsewhere, e.g. BART)")
    add_espirit_arguments(parser)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    options = RawOptions(
        average=args.average, repetition=args.repetition, contrast=args.contrast, whiten=not args.no_whiten,
        calib_width=args.calib_width, kernel_width=args.kernel_width, thresh=args.thresh, eig_crop=args.eig_crop,
    )
    try:
        files = find_h5_files(args.source)
        raw = [p for p in files if is_ismrmrd_file(p)]
        if not raw:
            raise DataError(f"{args.source}: none of {len(files)} file(s) is an ISMRMRD file (group 'dataset' with 'xml' and 'data')")
        todo = [p for p in raw if args.overwrite or not (args.out_dir / p.name).exists()]
        if len(raw) > len(todo):
            print(f"skipping {len(raw) - len(todo)} file(s) already in {args.out_dir} (use --overwrite)")
        for path in todo:
            convert_ismrmrd(path, args.out_dir / path.name, options, with_maps=not args.no_maps)
    except (DataError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"converted {len(todo)} file(s) -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
