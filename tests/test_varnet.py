"""fastMRI's E2E-VarNet as a baseline and its supervised training (tiny networks, seconds)."""

import re

import pytest
import torch

fastmri_models = pytest.importorskip("fastmri.models")  # the `varnet` extra; .ci/run installs it

from lit_sampler.datamodules.supervised import SupervisedDataModule, simulate_measurement  # noqa: E402
from lit_sampler.errors import CheckpointError  # noqa: E402
from lit_sampler.lightning.supervised import VarNetTraining  # noqa: E402
from lit_sampler.models.varnet import (  # noqa: E402
    VarNetBaseline, center_lines, infer_architecture, load_varnet, varnet_inputs,
)
from lit_sampler.physics.masks import RandomLineMask, VariableDensityMask  # noqa: E402
from tests.helpers import predict_config, read_rows, run_cli, write_tiny_checkpoint  # noqa: E402

TINY = dict(num_cascades=2, chans=4, pools=2, sens_chans=2, sens_pools=2)


def tiny_varnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return fastmri_models.VarNet(**TINY).eval()


def measurement(mask: torch.Tensor, coils: int = 4, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    kspace = torch.randn(2, coils, size, size, dtype=torch.complex64, generator=generator)
    return kspace * mask, mask


def test_both_checkpoint_formats_load_and_architecture_is_inferred(tmp_path):
    network = tiny_varnet()
    published = tmp_path / "state_dict.pt"  # fastMRI's published weights are a bare state dict
    torch.save(network.state_dict(), published)
    assert infer_architecture(network.state_dict()) == TINY
    loaded, architecture = load_varnet(published)
    assert architecture == TINY
    for key, value in network.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    lightning = tmp_path / "lightning.ckpt"  # a Lightning checkpoint: weights under `varnet.`, hyper-parameters
    torch.save({"state_dict": {f"varnet.{k}": v for k, v in network.state_dict().items()},
                "hyper_parameters": TINY}, lightning)
    assert load_varnet(lightning)[1] == TINY


def test_a_state_dict_of_another_shape_names_the_key(tmp_path):
    path = tmp_path / "vn.pt"
    torch.save(tiny_varnet().state_dict(), path)
    with pytest.raises(CheckpointError, match=re.escape(
        f"{path}: parameter 'cascades.0.model.unet.down_sample_layers.0.layers.0.weight' has shape [4, 2, 3, 3] "
        "in the file but VarNet with num_cascades=2, chans=6, pools=2, sens_chans=2, sens_pools=2 needs [6, 2, 3, 3]"
    )):
        load_varnet(path, chans=6)
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="no VarNet parameters"):
        load_varnet(path)


def test_center_lines_is_the_symmetric_fully_sampled_block():
    mask = torch.zeros(1, 16)
    mask[0, 6:11] = 1  # centre 8, block 6..10
    assert center_lines(mask) == 5
    mask[0, 11] = 1  # one more on the right: still symmetric 5
    assert center_lines(mask) == 5
    square = torch.zeros(16, 16)
    square[5:12, 5:12] = 1
    square[8, :3] = 1  # points on the centre row outside the block do not count
    assert center_lines(square) == 7


@pytest.mark.parametrize("kind", ["lines", "2d"])
def test_baseline_equals_calling_fastmri_varnet_directly(tmp_path, kind):
    size = 32
    if kind == "lines":
        line = RandomLineMask([0.125], [3])((size, size), torch.Generator().manual_seed(0))
        mask = torch.broadcast_to(line, (size, size))[None, None].expand(2, 1, size, size).clone()
    else:
        pattern = VariableDensityMask([3], calib_size=8)((size, size), torch.Generator().manual_seed(0))
        mask = pattern[None, None].expand(2, 1, size, size).clone()
    kspace, mask = measurement(mask)
    network = tiny_varnet()
    path = tmp_path / "vn.pt"
    torch.save(network.state_dict(), path)
    baseline = VarNetBaseline(str(path))
    masked = torch.view_as_real(kspace).contiguous()
    if kind == "lines":
        vn_mask = mask[:, :, :1, :, None].bool()  # [B, 1, 1, W, 1]
    else:
        vn_mask = mask[..., None].bool()  # [B, 1, H, W, 1]
    width = center_lines(mask[0, 0])
    assert width >= 3
    assert varnet_inputs(kspace, mask)[1].shape == vn_mask.shape
    with torch.no_grad():
        expected = network(masked, vn_mask, width)
    assert torch.equal(baseline(kspace, mask), expected)


def test_simulated_measurement_follows_the_posterior_normalisation():
    from lit_sampler.data.fastmri import VolumeInfo  # noqa: F401  (type of PreparedSlice.volume)
    from lit_sampler.data.slice_loader import PreparedSlice

    generator = torch.Generator().manual_seed(0)
    image = torch.randn(32, 32, dtype=torch.complex64, generator=generator)
    from lit_sampler.physics.fft import fft2c

    data = PreparedSlice(volume=type("V", (), {"fname": "x.h5", "path": "x.h5"})(), slice_num=0,
                         kspace=fft2c(image)[None], maps=None, file_mask=None, undersampled=False)
    m = simulate_measurement(data, RandomLineMask([0.125], [4]), 20.0, 4, torch.Generator().manual_seed(3))
    assert m.kspace.shape == (4, 32, 32) and m.sens_maps.shape == (4, 32, 32)
    # unit-RSS coils: the target is the image itself, on the scale of the noisy zero-filled image
    assert torch.allclose(m.target * m.scale, image, atol=1e-4)
    assert m.zero_filled.abs().flatten().quantile(0.99).item() == pytest.approx(1.0, rel=1e-4)
    assert torch.all(m.kspace[:, :, m.mask[0, 0] == 0] == 0)


def test_training_runs_and_its_checkpoint_loads_in_the_baseline(tmp_path, multicoil_dir, phantom_file):
    import pytorch_lightning as pl

    train = tmp_path / "train"
    phantom_file(train / "t.h5", slices=4, coils=1, size=(32, 32), single_coil=True, maps=None)
    data = SupervisedDataModule(str(train), val_path=str(multicoil_dir), snr_range=[20, 5], coils=4, batch_size=2,
                                mask=RandomLineMask([0.125], [3]))
    model = VarNetTraining(**TINY, lr=1e-3)
    trainer = pl.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_progress_bar=False,
                         default_root_dir=str(tmp_path), enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=1, val_check_interval=3, check_val_every_n_epoch=None)
    trainer.fit(model, datamodule=data)
    path = tmp_path / "vn.ckpt"
    trainer.save_checkpoint(path)
    baseline = VarNetBaseline(str(path))
    assert baseline.architecture == TINY
    batch = next(iter(data.val_dataloader()))
    with torch.no_grad():
        assert torch.equal(baseline(batch.kspace, batch.mask), model.eval()(batch))


def test_predict_reports_the_varnet_baseline(tmp_path, multicoil_dir):
    path = tmp_path / "vn.pt"
    torch.save(tiny_varnet().state_dict(), path)
    out = tmp_path / "out"
    config = predict_config(tmp_path, write_tiny_checkpoint(tmp_path / "ckpt.pt"), multicoil_dir / "a.h5", out,
                            model={"varnet": {"class_path": "lit_sampler.models.varnet.VarNetBaseline",
                                              "init_args": {"checkpoint": str(path)}}}, snr_range=[20], num_samples=1)
    run_cli("predict", "--config", config, cwd=tmp_path)
    summary = read_rows(out / "summary.csv")
    assert float(summary[0]["varnet_psnr"]) > 0
    import h5py

    with h5py.File(next((out / "reconstructions").rglob("a.h5")), "r") as handle:
        assert handle["varnet"].shape == handle["reconstruction"].shape
