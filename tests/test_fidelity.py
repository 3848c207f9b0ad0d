"""Reproducing the peers: csgm and fastMRI masks bit for bit, Jalal et al.'s chain knobs, outputs
that fastMRI's ``evaluate.py`` reads unchanged, evaluate's centre crop, single-coil data, SIGTERM.

The peers' masks are fixtures (``tests/data/peer_masks``, made by the script there from the
``fastmri`` package itself and from csgm's published algorithm).
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import write_phantom_file
from helpers import cli_env, main_in_process, predict_config, read_rows, write_tiny_checkpoint
from lit_sampler.data.transforms import MeasurementTransform
from lit_sampler.physics.masks import CsgmLineMask, EquispacedLineMask, RandomLineMask, VariableDensityMask, mask_generator

PEERS = np.load(Path(__file__).parent / "data" / "peer_masks" / "peer_masks.npz")
MASKS = {
    "random_4x": lambda: RandomLineMask([0.08], [4]),
    "random_8x": lambda: RandomLineMask([0.04], [8]),
    "random_mixed": lambda: RandomLineMask([0.08, 0.04], [4, 8]),
    "equispaced_4x": lambda: EquispacedLineMask([0.08], [4]),
    "equispaced_8x": lambda: EquispacedLineMask([0.04], [8]),
}


@pytest.mark.parametrize("case", sorted(MASKS))
def test_fastmri_masks_bit_identical_with_fastmri_seeding(case):
    checked = 0
    for key in PEERS.files:
        if not key.startswith(f"fastmri|{case}|"):
            continue
        _, _, fname, width = key.split("|")
        ours = MASKS[case]()((640, int(width)), np.random.RandomState(tuple(map(ord, fname))))
        np.testing.assert_array_equal(ours.numpy().reshape(-1), PEERS[key], err_msg=key)
        checked += 1
    assert checked == 15  # 3 file names × 5 widths


def test_mask_seed_fastmri_in_the_data_transform():
    fname, width = "file_brain_AXT2_200_2000019.h5", 396
    transform = MeasurementTransform(RandomLineMask([0.08, 0.04], [4, 8]), seed=123, mask_seed="fastmri")
    mask = transform.volume_mask(fname, (640, width))  # [1, H, W], every row the line mask
    np.testing.assert_array_equal(mask[0, 0].numpy(), PEERS[f"fastmri|random_mixed|{fname}|{width}"])
    # the run seed does not change fastMRI's masks; the default per-run seeding does change
    other = MeasurementTransform(RandomLineMask([0.08, 0.04], [4, 8]), seed=7, mask_seed="fastmri")
    assert torch.equal(other.volume_mask(fname, (640, width)), mask)
    ours = MeasurementTransform(RandomLineMask([0.08, 0.04], [4, 8]), seed=123)
    assert not torch.equal(ours.volume_mask(fname, (640, width)), mask)
    with pytest.raises(Exception, match="mask_seed must be one of"):
        MeasurementTransform(RandomLineMask([0.08], [4]), mask_seed="numpy")
    with pytest.raises(ValueError, match="reproduces fastMRI's line masks only"):
        VariableDensityMask([4], calib_size=4)((16, 16), np.random.RandomState(0))


@pytest.mark.parametrize("acceleration", [4, 8])
def test_csgm_equispaced_masks_bit_identical(acceleration):
    for width in (64, 320, 368, 384, 396):
        ours = CsgmLineMask(acceleration, "equispaced")((640, width), mask_generator(0, "x"))
        np.testing.assert_array_equal(ours.numpy().reshape(-1), PEERS[f"csgm|equispaced_{acceleration}x|{width}"])
    sample = CsgmLineMask(4, "equispaced").sample((384, 384), mask_generator(0, "x"))
    assert sample.num_low_frequencies == 30 and int(sample.mask.sum()) == 119  # their brain T2 setting


def test_csgm_random_masks_have_their_count_and_centre():
    for width, acceleration in ((384, 4), (320, 8), (64, 4)):
        mask = CsgmLineMask(acceleration, "random")
        center = mask.center_lines(width)
        for seed in range(5):
            drawn = mask((width, width), mask_generator(seed, "f.h5")).reshape(-1)
            assert int(drawn.sum()) == width // acceleration
            assert bool(drawn[center].all())
    assert len(CsgmLineMask(4).center_lines(384)) == 30 and len(CsgmLineMask(8).center_lines(384)) == 15
    with pytest.raises(ValueError, match="integer acceleration"):
        CsgmLineMask(2.5, "equispaced")


# ---------------------------------------------------------------------------------------- outputs
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A predict run over a subset of slices of a non-square multi-coil volume and a square one."""
    root = tmp_path_factory.mktemp("fidelity")
    write_phantom_file(root / "data" / "wide.h5", slices=4, coils=2, size=(24, 16))
    write_phantom_file(root / "data" / "square.h5", slices=3, coils=2, size=(16, 16), seed=1)
    checkpoint = write_tiny_checkpoint(root / "tiny.pt")
    config = predict_config(root, checkpoint, root / "data", root / "out", logger=False, slices="1:3",
                            num_samples=2, snr_range=[20])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main_in_process("predict", "--config", config) == 0
    finally:
        torch.set_num_threads(threads)
    return root / "out"


def center_crop(data: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """fastMRI's ``transforms.center_crop`` (raises on a crop larger than the image, as theirs)."""
    if not (0 < shape[0] <= data.shape[-2] and 0 < shape[1] <= data.shape[-1]):
        raise ValueError("Invalid shapes.")
    top, left = (data.shape[-2] - shape[0]) // 2, (data.shape[-1] - shape[1]) // 2
    return data[..., top:top + shape[0], left:left + shape[1]]


def evaluate_like_fastmri(target_dir: Path, predictions_dir: Path, recons_key: str = "reconstruction_rss"):
    """What fastMRI 0.3.0's ``evaluate.py`` does with the two folders (its loop, restated)."""
    from skimage.metrics import peak_signal_noise_ratio

    out = {}
    for tgt_file in sorted(target_dir.iterdir()):
        with h5py.File(tgt_file, "r") as target, h5py.File(predictions_dir / tgt_file.name, "r") as recons:
            target_array = target[recons_key][()]
            recons_array = recons["reconstruction"][()]
            crop = (target_array.shape[-1], target_array.shape[-1])
            target_array, recons_array = center_crop(target_array, crop), center_crop(recons_array, crop)
            assert target_array.shape == recons_array.shape
            out[tgt_file.name] = peak_signal_noise_ratio(target_array, recons_array, data_range=target_array.max())
            assert target.attrs["acquisition"] == "SYNTHETIC"
            assert target.attrs["acceleration"] == 3
    return out


def test_outputs_open_in_fastmri_evaluate_unchanged(run):
    scores = evaluate_like_fastmri(run / "targets", run / "reconstructions" / "snr_20dB")
    assert sorted(scores) == ["square.h5", "wide.h5"]
    rows = {r["fname"]: r for r in read_rows(run / "volume_metrics.csv")}
    for fname, value in scores.items():  # our volume PSNR is evaluate.py's number
        assert float(rows[fname]["recon_psnr"]) == pytest.approx(value, abs=1e-4)
    with h5py.File(run / "targets" / "wide.h5") as target, h5py.File(run / "reconstructions" / "snr_20dB" / "wide.h5") as rec:
        assert target["reconstruction_rss"].shape == rec["reconstruction"].shape == (2, 24, 16)  # slices 1, 2 only
        assert list(target["slice_num"][()]) == list(rec["slice_num"][()]) == [1, 2]
        mask = rec["mask"][()]
        assert mask.shape == (16,) and set(np.unique(mask)) <= {0.0, 1.0} and mask.sum() >= 2  # ≥ the centre


def test_volume_metrics_use_evaluates_centre_crop_on_non_square_images(run):
    from lit_sampler.evaluation.metrics import volume_metrics

    with h5py.File(run / "reconstructions" / "snr_20dB" / "wide.h5") as rec:
        target = torch.from_numpy(rec["target"][()]).double()
        recon = torch.from_numpy(rec["reconstruction"][()]).double()
    rows = {r["fname"]: r for r in read_rows(run / "volume_metrics.csv")}
    cropped = volume_metrics(target[:, 4:20], recon[:, 4:20])
    assert float(rows["wide.h5"]["recon_psnr"]) == pytest.approx(cropped["psnr"], abs=1e-4)
    assert not math.isclose(volume_metrics(target, recon)["psnr"], cropped["psnr"], abs_tol=1e-3)


def test_single_coil_end_to_end(tmp_path):
    """Single-coil fastMRI layout (kspace [S, H, W]): CG-SENSE equals the zero-filled least-squares
    solution (AᴴA is a projection) instead of blowing up, and the targets carry fastMRI's
    single-coil key."""
    write_phantom_file(tmp_path / "data" / "sc.h5", slices=2, single_coil=True, maps=None, size=(16, 16))
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    config = predict_config(tmp_path, checkpoint, tmp_path / "data", tmp_path / "out", logger=False, snr_range=[30],
                            num_samples=1, model={"cg_iterations": 10})
    assert main_in_process("predict", "--config", config) == 0
    rows = read_rows(tmp_path / "out" / "metrics.csv")
    for row in rows:
        assert float(row["cg_sense_psnr"]) == pytest.approx(float(row["zero_filled_psnr"]), abs=1e-3)
        assert float(row["cg_sense_nmse"]) < 1.0
    with h5py.File(tmp_path / "out" / "targets" / "sc.h5") as target:
        assert "reconstruction_esc" in target
    # target "auto" on single-coil data is the complex image (its magnitude is the RSS): the
    # zero-filled image keeps the phase a warm start needs
    from lit_sampler.datamodules import FastMRIDataModule

    module = FastMRIDataModule(str(tmp_path / "data"), snr_range=[None], batch_size=2)
    module.setup("predict")
    batch = next(iter(module.predict_dataloader()))
    assert batch.zero_filled.imag.abs().max() > 0.05 * batch.zero_filled.abs().max()
    assert batch.target.imag.abs().max() > 0


def test_cg_sense_stops_at_rounding_on_a_projection():
    from lit_sampler.sampling.baselines import cg_sense
    from lit_sampler.physics.operators import SingleCoilMRI

    mask = (torch.rand(1, 1, 1, 32, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    operator = SingleCoilMRI(mask)
    y = operator.forward(torch.randn(2, 32, 32, dtype=torch.complex64, generator=torch.Generator().manual_seed(1)))
    x = cg_sense(operator, y, iterations=30)
    torch.testing.assert_close(x, operator.adjoint(y), rtol=1e-5, atol=1e-5)


def test_sigterm_stops_at_a_batch_boundary_and_resumes(tmp_path):
    write_phantom_file(tmp_path / "data" / "a.h5", slices=4, coils=2, size=(16, 16))
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt", levels=5)
    config = predict_config(tmp_path, checkpoint, tmp_path / "data", tmp_path / "out", logger=False, batch_size=1,
                            num_samples=2, snr_range=[20], model={"steps_each": 60})
    items = tmp_path / "out" / "items"
    proc = subprocess.Popen([sys.executable, "-m", "lit_sampler", "predict", "--config", str(config)], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(items.rglob("*.pt")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "interrupted: stopped by SIGTERM" in stderr and "run the same command again to resume" in stderr
    finished = list(items.rglob("*.pt"))
    assert 1 <= len(finished) < 8 and not (tmp_path / "out" / "summary.csv").exists()
    assert not [p for p in items.rglob(".*") if ".tmp" in p.name]  # no half-written shard
    assert main_in_process("predict", "--config", config) == 0
    assert len(list(items.rglob("*.pt"))) == 8 and (tmp_path / "out" / "summary.csv").exists()
