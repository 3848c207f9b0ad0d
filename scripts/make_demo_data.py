#!/usr/bin/env python
"""Write a small synthetic multi-coil dataset in fastMRI layout (demo config and tests).

Each file is one random phantom volume (``lit_sampler.data.phantoms``: Shepp–Logan-like ellipsoid
anatomy with smooth random phase, cut into slices) seen by smooth coil maps (Biot–Savart-like
falloff, smooth phase, ``Σ_c |S_c|² = 1``); fully sampled k-space ``F₂(S_c x)`` (+ optional noise).

Layout (``DIR/val`` and ``DIR/train``): ``kspace`` complex64 ``[slices, coils, H, W]``
(single-coil files: ``[slices, H, W]``), ``sens_maps`` like the k-space (multi-coil only),
``reconstruction_rss`` float32 ``[slices, H, W]`` (validation files; training files only with
``--train-rss``), attrs ``max``, ``norm``, ``acquisition="SYNTHETIC"``,
``patient_id``. The training split is single-coil by default (``--train-coils 0``): a score model
trains on the complex images (``target: mvue``), which single-coil files give exactly at a quarter of
the storage of 4-coil files with maps.

    python scripts/make_demo_data.py --out data/demo
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


from lit_sampler.data.fastmri import write_volume
from lit_sampler.data.geometry import rss
from lit_sampler.data.phantoms import demo_volume
from lit_sampler.seeding import seeded_generator


def write_split(
    out: Path, split: str, files: int, slices: int, size, coils: int, noise: float, seed: int, with_rss: bool = True
) -> list[Path]:
    written = []
    height, width = size
    for index in range(files):
        generator = seeded_generator(seed, "demo", split, index)
        volume = demo_volume(
            generator, slices, height, width, coils=max(coils, 1), single_coil=coils == 0, noise_std=noise
        )
        kspace = volume.kspace if coils else volume.kspace[:, None]
        target = rss(kspace)
        path = write_volume(
            out / split / f"demo_{split}_{index:03d}.h5",
            volume.kspace,
            sens_maps=volume.maps,
            reconstruction_rss=target if with_rss else None,
            attrs={
                "max": float(target.max()),
                "norm": float(target.norm()),
                "acquisition": "SYNTHETIC",
                "patient_id": f"demo-{split}-{index:03d}",
            },
        )
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output folder (gets val/ and train/)")
    parser.add_argument("--size", type=int, nargs="+", default=[48], help="image size: N or H W (default 48)")
    parser.add_argument("--coils", type=int, default=4, help="coils of the validation files (default 4)")
    parser.add_argument("--val-files", type=int, default=4)
    parser.add_argument("--val-slices", type=int, default=4)
    parser.add_argument("--train-files", type=int, default=64)
    parser.add_argument("--train-slices", type=int, default=32)
    parser.add_argument("--train-coils", type=int, default=0, help="0 = single-coil training files (default)")
    parser.add_argument(
        "--train-rss", action="store_true", help="also store reconstruction_rss in training files (+50%% size)"
    )
    parser.add_argument("--noise", type=float, default=0.0, help="k-space noise std per real/imag part")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if len(args.size) not in (1, 2) or min(args.size) < 8:
        parser.error("--size takes N or H W, each >= 8")
    size = (args.size[0], args.size[-1])
    start = time.time()
    total = 0
    for split, files, slices, coils in (
        ("val", args.val_files, args.val_slices, args.coils),
        ("train", args.train_files, args.train_slices, args.train_coils),
    ):
        if files <= 0:
            continue
        with_rss = split == "val" or args.train_rss
        paths = write_split(args.out, split, files, slices, size, coils, args.noise, args.seed, with_rss)
        nbytes = sum(p.stat().st_size for p in paths)
        total += nbytes
        layout = f"{coils} coils + sens_maps" if coils else "single-coil"
        print(
            f"{split}: {len(paths)} files x {slices} slices = {len(paths) * slices} slices, "
            f"{size[0]}x{size[1]}, {layout}, {nbytes / 1e6:.2f} MB -> {args.out / split}"
        )
    print(f"total {total / 1e6:.2f} MB in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
