#!/usr/bin/env python
"""Write the demo's multi-coil datasets in fastMRI layout.

``--source anatomy`` (default): real brain anatomy, see :mod:`lit_sampler.data.anatomy` and
``demo/README.md``. Needs the ``data`` extra (nibabel, nilearn's and dipy's wheels, which ship the
MNI152 2009 template and one real T1 slice of another subject). Writes under ``--out``:

* ``train/``: single-coil complex images of the training slabs (three orientations, T1, T2-like
  and randomly weighted tissue contrasts, whole-head views and random zoomed partial-FOV views,
  smooth random phase), for ``fit``;
* ``val/``: 8-coil acquisitions of the validation slabs (centre slice of each slab, both contrasts,
  whole-head and zoomed views), coil maps by our ESPIRiT from the 24×24 calibration centre only, for tuning
  (CS λ, presets, ``frontier``);
* ``test/``: the same for the test slabs (whole-head views);
* ``test_other/``: dipy's T1 slice of another subject: one whole-head view and four zoomed
  partial-FOV views, reported separately.

``--source phantom``: random Shepp–Logan-like phantoms (the tests' small data). Each file is one random phantom volume (``lit_sampler.data.phantoms``: Shepp–Logan-like ellipsoid
anatomy with smooth random phase, cut into slices) seen by smooth coil maps (Biot–Savart-like
falloff, smooth phase, ``Σ_c |S_c|² = 1``); fully sampled k-space ``F₂(S_c x)`` (+ optional noise).

Layout (``DIR/val`` and ``DIR/train``): ``kspace`` complex64 ``[slices, coils, H, W]``
(single-coil files: ``[slices, H, W]``), ``sens_maps`` like the k-space (multi-coil only),
``reconstruction_rss`` float32 ``[slices, H, W]`` (validation files; training files only with
``--train-rss``), attrs ``max``, ``norm``, ``acquisition="SYNTHETIC"``,
``patient_id``. The training split is single-coil by default (``--train-coils 0``): a score model
trains on the complex images (``target: mvue``), which single-coil files give exactly at a quarter of
the storage of 4-coil files with maps.

    python scripts/make_demo_data.py --out demo/data                    # anatomy
    python scripts/make_demo_data.py --source phantom --out /tmp/phantoms
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch


from lit_sampler.data import anatomy
from lit_sampler.data.espirit import espirit_maps
from lit_sampler.data.fastmri_write import write_volume
from lit_sampler.data.phantoms import demo_volume
from lit_sampler.physics.coils import rss
from lit_sampler.seeding import seeded_generator


# ---------------------------------------------------------------------------------------- anatomy
MNI_FILES = {name: f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz" for name in ("t1", "gm", "wm")}
FOV_MM = 200  # whole-head field of view on the 1 mm grid (the brain spans ≤ 172 mm)
# maps from a fully sampled 24×24 calibration block (as a calibration prescan gives; fastMRI brains
# use 24–26 lines), kernel 6, no eigenvalue crop (BART -c0, as Jalal et al.): docs/data.md has the
# measured model residuals (5 centre lines alone left a 4–20 % mismatch at 64²)
ESPIRIT = dict(calib_width=24, kernel_width=6, thresh=0.005, crop=0.0)


def package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"error: the anatomy demo data needs the '{package}' wheel (pip install -e '.[data]'), not installed"
        )
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if not path.exists():
        raise SystemExit(f"error: {path} not found in the installed '{package}' package")
    return path


def load_mni() -> dict[str, np.ndarray]:
    try:
        import nibabel
    except ImportError:
        raise SystemExit("error: reading the MNI152 template needs nibabel (pip install -e '.[data]')") from None
    folder = package_file("nilearn", "datasets", "data")
    return {name: np.asarray(nibabel.load(folder / fname).dataobj, dtype=np.float64) for name, fname in MNI_FILES.items()}


def calibration_maps(kspace: torch.Tensor) -> torch.Tensor:
    """ESPIRiT maps ``[coils, H, W]`` from the centre calibration block only (never the simulation's)."""
    return espirit_maps(kspace, **ESPIRIT)


def zoom_views(image: np.ndarray, count: int, rng: np.random.Generator, sides=(90, 190)) -> list[np.ndarray]:
    """``count`` random square partial-FOV views centred inside the brain's bounding box."""
    r0, r1, c0, c1 = anatomy.bounding_box(image)
    views = []
    for _ in range(count):
        side = int(rng.integers(sides[0], sides[1] + 1))
        centre = (rng.uniform(r0 + 0.2 * (r1 - r0), r1 - 0.2 * (r1 - r0)), rng.uniform(c0 + 0.2 * (c1 - c0), c1 - 0.2 * (c1 - c0)))
        views.append(anatomy.view(image, side, centre))
    return views


def fixed_zoom_views(image: np.ndarray, side: int) -> list[np.ndarray]:
    """Four partial-FOV views of ``side`` mm centred on the quadrant centres of the brain's box."""
    r0, r1, c0, c1 = anatomy.bounding_box(image)
    return [
        anatomy.view(image, side, (r0 + fy * (r1 - r0), c0 + fx * (c1 - c0)))
        for fy, fx in ((0.35, 0.35), (0.35, 0.65), (0.65, 0.35), (0.65, 0.65))
    ]


def multicoil_file(path: Path, views, size: int, coils: int, seed: int, acquisition: str, patient: str):
    kspace, maps = [], []
    for index, image in enumerate(views):
        acq = anatomy.simulate(image, size, coils, seeded_generator(seed, "anatomy", path.name, index))
        kspace.append(acq.kspace)
        maps.append(calibration_maps(acq.kspace))
    kspace = torch.stack(kspace)
    target = rss(kspace)
    return write_volume(
        path,
        kspace,
        sens_maps=torch.stack(maps),
        reconstruction_rss=target,
        attrs={"max": float(target.max()), "norm": float(target.norm()), "acquisition": acquisition, "patient_id": patient},
    )


def single_coil_file(path: Path, views, size: int, seed: int, acquisition: str) -> Path:
    kspace = torch.stack(
        [anatomy.simulate(v, size, 0, seeded_generator(seed, "anatomy", path.name, i)).kspace for i, v in enumerate(views)]
    )
    return write_volume(path, kspace, attrs={"acquisition": acquisition, "patient_id": "MNI152-2009a"})


def calibration_files(args, orientation: str, positions, contrasts, rng: np.random.Generator) -> list[Path]:
    """The calibration split: every ``calib_step``-th slice of the validation slabs other than their
    centres (the validation files), whole head and one partial-FOV view each, both contrasts, so the
    error bars are calibrated on validation anatomy (never test) with enough slices for a
    finite-sample guarantee up to 99 % (conformal risk control needs ≥ 99; docs/uncertainty.md)."""
    centres = set(anatomy.slab_centres(positions))
    chosen = [p for p in sorted(positions) if p not in centres][:: args.calib_step]
    files = []
    for contrast, volume in contrasts.items():
        views = []
        for p in chosen:
            whole = anatomy.view(anatomy.oriented_slice(volume, orientation, p), FOV_MM)
            views.append(whole)
            views.append(fixed_zoom_views(whole, int(rng.integers(100, 150)))[int(rng.integers(4))])
        path = args.out / "calib" / f"brain_calib_{orientation}_{contrast}.h5"
        acquisition = f"MNI152_{orientation.upper()}_{contrast.upper()}"
        files.append(multicoil_file(path, views, args.size[0], args.coils, args.seed, acquisition, "MNI152-2009a"))
    return files


def write_anatomy(args) -> list[tuple[str, list[Path]]]:
    mni = load_mni()
    contrasts = {c: anatomy.tissue_contrast(mni["t1"], mni["gm"], mni["wm"], c) for c in ("t1", "t2")}
    rng = np.random.default_rng(args.seed)
    size, coils = args.size[0], args.coils
    written: dict[str, list[Path]] = {"train": [], "val": [], "calib": [], "test": [], "test_other": []}
    calib_rng = np.random.default_rng((args.seed, 1))  # (its own stream: val and test stay bit for bit)
    for orientation in anatomy.ORIENTATIONS:
        split = anatomy.slab_split(anatomy.brain_positions(mni["t1"], orientation), args.slab, args.gap)
        views = []  # (drawn even with --skip-train, so val/test are the same either way)
        for position in split["train"]:
            whole = {c: anatomy.view(anatomy.oriented_slice(v, orientation, position), FOV_MM) for c, v in contrasts.items()}
            weights = (rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0))
            mixed = anatomy.tissue_contrast(mni["t1"], mni["gm"], mni["wm"], "t2", weights)
            whole["mix"] = anatomy.view(anatomy.oriented_slice(mixed, orientation, position), FOV_MM)
            views.extend(whole.values())
            for _ in range(args.train_views):
                source = whole[("t1", "t2", "mix")[int(rng.integers(3))]]
                views.extend(zoom_views(source, 1, rng))
        if not args.skip_train:
            path = args.out / "train" / f"brain_train_{orientation}.h5"
            written["train"].append(single_coil_file(path, views, size, args.seed, f"MNI152_{orientation.upper()}"))
        for name in ("val", "test"):
            centres = anatomy.slab_centres(split[name])
            for contrast, volume in contrasts.items():
                views = [anatomy.view(anatomy.oriented_slice(volume, orientation, p), FOV_MM) for p in centres]
                if name == "val":  # tuning must also see partial-FOV data
                    views.append(fixed_zoom_views(views[len(views) // 2], 112)[int(rng.integers(4))])
                path = args.out / name / f"brain_{name}_{orientation}_{contrast}.h5"
                acquisition = f"MNI152_{orientation.upper()}_{contrast.upper()}"
                written[name].append(multicoil_file(path, views, size, coils, args.seed, acquisition, "MNI152-2009a"))
        if args.calib_step:
            written["calib"] += calibration_files(args, orientation, split["val"], contrasts, calib_rng)
    other = np.load(package_file("dipy", "data", "files", "t1_coronal_slice.npy")).astype(np.float64)
    other = anatomy.view(other / other.max(), FOV_MM)
    views = [other] + fixed_zoom_views(other, 112)
    path = args.out / "test_other" / "other_subject_coronal_t1.h5"
    written["test_other"].append(multicoil_file(path, views, size, coils, args.seed, "DIPY_CORONAL_T1", "dipy-t1"))
    return list(written.items())


# ---------------------------------------------------------------------------------------- phantoms

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


def slice_count(path: Path) -> int:
    with h5py.File(path, "r") as handle:
        return int(handle["kspace"].shape[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output folder (gets train/, val/, ...)")
    parser.add_argument("--source", choices=("anatomy", "phantom"), default="anatomy")
    parser.add_argument("--size", type=int, nargs="+", default=None, help="image size: N or H W (anatomy: N, default 64; phantom: 48)")
    parser.add_argument("--coils", type=int, default=None, help="coils of the val/test files (anatomy 8, phantom 4)")
    parser.add_argument("--seed", type=int, default=0)
    anat = parser.add_argument_group("anatomy")
    anat.add_argument("--slab", type=int, default=10, help="slices per slab of the position split (default 10)")
    anat.add_argument("--gap", type=int, default=4, help="slices dropped between splits (default 4)")
    anat.add_argument("--train-views", type=int, default=5, help="random zoomed views per training position")
    anat.add_argument("--skip-train", action="store_true", help="write val/ and test sets only (the same files as a full run)")
    anat.add_argument("--calib-step", type=int, default=2,
                      help="calib/: every N-th non-centre slice of the validation slabs (0: no calib/ split)")
    phantom = parser.add_argument_group("phantom")
    phantom.add_argument("--val-files", type=int, default=4)
    phantom.add_argument("--val-slices", type=int, default=4)
    phantom.add_argument("--train-files", type=int, default=64)
    phantom.add_argument("--train-slices", type=int, default=32)
    phantom.add_argument("--train-coils", type=int, default=0, help="0 = single-coil training files (default)")
    phantom.add_argument(
        "--train-rss", action="store_true", help="also store reconstruction_rss in training files (+50%% size)"
    )
    phantom.add_argument("--noise", type=float, default=0.0, help="k-space noise std per real/imag part")
    args = parser.parse_args(argv)
    anatomical = args.source == "anatomy"
    args.size = args.size or ([64] if anatomical else [48])
    args.coils = args.coils if args.coils is not None else (8 if anatomical else 4)
    if len(args.size) not in (1, 2) or min(args.size) < 8:
        parser.error("--size takes N or H W, each >= 8")
    if anatomical and len(args.size) != 1:
        parser.error("--source anatomy makes square images: --size takes one N")
    size = (args.size[0], args.size[-1])
    start = time.time()
    if anatomical:
        splits = write_anatomy(args)
    else:
        splits = []
        for split, files, slices, coils in (
            ("val", args.val_files, args.val_slices, args.coils),
            ("train", args.train_files, args.train_slices, args.train_coils),
        ):
            if files > 0:
                with_rss = split == "val" or args.train_rss
                splits.append((split, write_split(args.out, split, files, slices, size, coils, args.noise, args.seed, with_rss)))
    total = 0
    for split, paths in splits:
        if not paths:
            continue
        nbytes = sum(p.stat().st_size for p in paths)
        total += nbytes
        slices = sum(slice_count(p) for p in paths)
        print(f"{split}: {len(paths)} files, {slices} slices, {nbytes / 1e6:.2f} MB -> {paths[0].parent}")
    print(f"total {total / 1e6:.2f} MB in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
