"""One engine: an item reconstructed by ``python -m lit_sampler predict`` and by
``Sampler.reconstruct`` with the same measurement, knobs, seed and key is bit-identical — its
samples, posterior mean and std, zero-filled image, CG-SENSE, network calls and first level — and
``measure_slice`` gives the pipeline's measurement of a file's slice."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from conftest import write_phantom_file
from helpers import predict_config, run_cli, write_tiny_checkpoint
from lit_sampler import Sampler, measure_slice
from lit_sampler.api import cg_sense_recon, zero_filled_recon
from lit_sampler.physics.masks import RandomLineMask

# the knobs of the CLI run below (predict_config's step_size 1e-3, steps_each 1, noise_boost 2, plus a preset
# whose per-item warm start, zero-filled init and final denoise exercise the whole engine)
KNOBS = dict(preset="balanced", step_size=1e-3, steps_each=1, noise_boost=2.0)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("identity")
    data = write_phantom_file(root / "data" / "a.h5", slices=2, coils=3, size=(32, 32))
    checkpoint = write_tiny_checkpoint(root / "tiny.pt")
    config = predict_config(root, checkpoint, data, root / "out", logger=False,
                            model={"preset": "balanced"}, snr_range=[20, None], num_samples=2, batch_size=3)
    run_cli("predict", "--config", config, cwd=root, timeout=240)
    return {"data": data, "checkpoint": checkpoint, "out": root / "out"}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like the CLI's subprocess (OMP_NUM_THREADS=1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("snr_db, label", [(20.0, "snr_20dB"), (None, "snr_inf")])
def test_cli_item_and_reconstruct_are_bit_identical(cli_run, one_thread, snr_db, label):
    measured = measure_slice(cli_run["data"], 1, snr_db=snr_db, mask=RandomLineMask([0.1], [3]), seed=0)
    assert measured.key == f"a.h5|1|{label}"
    sampler = Sampler.from_checkpoint(cli_run["checkpoint"], device="cpu", **KNOBS)
    # numpy in (the Sampler converts): the measurement's own arrays, the pipeline's ν and seed key
    result = sampler.reconstruct(measured.kspace.numpy(), measured.mask.numpy(), measured.sens_maps.numpy(),
                                 noise_var=measured.noise_var, num_samples=2, seed=measured.seed, key=measured.key,
                                 progress=False)
    items = cli_run["out"] / "items" / label / "a.h5"
    shards = [torch.load(items / f"s0001_n00{n}.pt", weights_only=True) for n in range(2)]
    for n, shard in enumerate(shards):
        assert np.array_equal(result.samples[n], shard["reconstruction"].numpy()), f"sample {n} differs"
        assert result.nfe == shard["nfe"] and result.start_level == shard["start_level"]
    assert result.keys == [f"a.h5|1|{label}|0", f"a.h5|1|{label}|1"]
    assert not np.array_equal(result.samples[0], result.samples[1])  # two chains, two streams
    assert np.array_equal(result.zero_filled, shards[0]["zero_filled"].numpy())
    assert result.scale == shards[0]["scale"]
    with h5py.File(cli_run["out"] / "reconstructions" / label / "a.h5", "r") as volume:
        row = list(volume["slice_num"][()]).index(1)
        assert np.array_equal(result.mean, volume["reconstruction_complex"][row])
        assert np.array_equal(result.std, volume["std"][row])
    # the array baselines are the pipeline's too
    args = (measured.kspace, measured.mask, measured.sens_maps)
    assert torch.equal(zero_filled_recon(*args), shards[0]["zero_filled"])
    assert torch.equal(cg_sense_recon(*args, iterations=10), shards[0]["cg_sense"])


def test_measure_slice_is_the_data_modules_measurement(cli_run):
    from lit_sampler.datamodules import FastMRIDataModule

    datamodule = FastMRIDataModule(str(cli_run["data"]), snr_range=[20], mask=RandomLineMask([0.1], [3]), seed=4)
    (expected,) = datamodule.measurements(["a.h5|0|snr_20dB|0"])
    measured = measure_slice(cli_run["data"], 0, snr_db=20, mask=RandomLineMask([0.1], [3]), seed=4)
    scale = expected.scale
    assert torch.equal((measured.kspace / scale).to(torch.complex64), expected.kspace)
    assert torch.equal(measured.mask[None], expected.mask)
    assert measured.noise_var / scale**2 == expected.noise_var
    torch.testing.assert_close(measured.target / scale, expected.target)
    assert (measured.key, measured.seed) == ("a.h5|0|snr_20dB", 4)
