"""The product end to end: `python -m lit_sampler predict|fit --config …` in a subprocess."""

import h5py
import pytest
import torch
import yaml

from helpers import predict_config, read_rows, run_cli
from lit_sampler.models import NCSNv2


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    network = NCSNv2(in_channels=2, ngf=4, sigma_begin=3.0, sigma_end=0.05, num_classes=5)
    path = tmp_path / "tiny.pt"
    torch.save(network.state_dict(), path)
    return path


def test_predict_end_to_end_and_resume(tmp_path, phantom_file, tiny_checkpoint):
    data = tmp_path / "data"
    phantom_file(data / "a.h5", slices=2, coils=3, size=(20, 20))
    phantom_file(data / "b.h5", slices=1, coils=3, size=(20, 20))
    out = tmp_path / "out"
    config = predict_config(tmp_path, tiny_checkpoint, data, out)
    first = run_cli("predict", "--config", config, cwd=tmp_path)
    # the chain's setup, knob by knob and where each came from; no Lightning advertisements
    assert ("sampler: Langevin, 5 of 5 levels, 5 network calls per item; from the config: steps_each=1, noise_boost=2; "
            "defaults: sampler=langevin, sigma_offset=0, levels=all, init=reference, final_denoise=false"
            ) in first.stdout.splitlines()
    assert "💡" not in first.stdout + first.stderr and "litlogger" not in first.stdout + first.stderr

    # the per-SNR table is printed; the volumes are fastMRI-style files
    assert "recon" in first.stdout and "zero_filled" in first.stdout and "cg_sense" in first.stdout
    with h5py.File(out / "reconstructions" / "snr_20dB" / "a.h5") as f:
        assert f["reconstruction"].shape == (2, 20, 20) and f["reconstruction"].dtype == "float32"
        assert f["reconstruction_complex"].dtype == "complex64" and f["std"].shape == (2, 20, 20)
        assert f["samples"].shape == (2, 2, 20, 20)
        assert list(f["slice_num"][()]) == [0, 1] and f.attrs["snr_db"] == 20.0
        assert f.attrs["sampler.steps_each"] == 1 and f.attrs["sampler.noise_boost"] == 2.0
        torch.testing.assert_close(torch.from_numpy(f["reconstruction"][()]),
                                   torch.from_numpy(f["reconstruction_complex"][()]).abs())
    assert (out / "reconstructions" / "snr_inf" / "b.h5").exists()
    rows = read_rows(out / "metrics.csv")
    assert len(rows) == 3 * 2 * 2  # slices × SNRs × samples
    assert {row["status"] for row in rows} == {"ok"}
    assert {"recon_psnr", "zero_filled_ssim", "cg_sense_nmse"} <= set(rows[0])
    summary = read_rows(out / "summary.csv")
    assert [row["snr"] for row in summary] == ["snr_inf", "snr_20dB"] and summary[0]["items"] == "6"
    assert {"volume_recon_psnr", "volume_zero_filled_ssim"} <= set(summary[0])
    assert len(read_rows(out / "volume_metrics.csv")) == 4
    assert (out / "figure.png").stat().st_size > 1000
    assert list((tmp_path / "logs" / "run").glob("version_0/events.out.tfevents.*"))
    before = {p: p.read_bytes() for p in (out / "reconstructions").rglob("*.h5")}

    # the same command again: nothing is recomputed, nothing changes, the saved config is no obstacle
    second = run_cli("predict", "--config", config, cwd=tmp_path)
    assert "resuming in" in second.stdout and "12 finished items are kept" in second.stdout
    for path, content in before.items():
        with h5py.File(path) as new, h5py.File(__import__("io").BytesIO(content)) as old:
            assert (new["reconstruction"][()] == old["reconstruction"][()]).all()
    assert read_rows(out / "summary.csv") == summary


def test_print_config_and_bad_option(tmp_path, phantom_file, tiny_checkpoint):
    phantom_file(tmp_path / "data" / "a.h5", slices=1, coils=2, size=(16, 16))
    config = predict_config(tmp_path, tiny_checkpoint, tmp_path / "data", tmp_path / "out")
    printed = run_cli("predict", "--config", config, "--print_config", cwd=tmp_path)
    parsed = yaml.safe_load(printed.stdout)
    assert parsed["model"]["init_args"]["steps_each"] == 1
    # an unset preset knob stays null (the preset's value, or its plain default, fills it in)
    assert parsed["model"]["init_args"]["sigma_offset"] is None and parsed["return_predictions"] is False  # the writer keeps the results, not RAM
    bad = run_cli("predict", "--config", config, "--model.init_args.steps_eahc", "3", cwd=tmp_path, check=False)
    assert bad.returncode != 0 and "steps_eahc" in bad.stderr


def test_fit_then_predict_with_the_trained_checkpoint(tmp_path, phantom_file):
    data = tmp_path / "train"
    for i in range(3):
        phantom_file(data / f"t{i}.h5", slices=4, coils=2, size=(16, 16), seed=i)
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "max_steps": 4, "enable_progress_bar": False, "log_every_n_steps": 1,
                    "default_root_dir": str(tmp_path / "fit"),
                    "logger": {"class_path": "pytorch_lightning.loggers.TensorBoardLogger",
                               "init_args": {"save_dir": str(tmp_path / "fit"), "name": "train"}}},
        "model": {"class_path": "lit_sampler.lightning.ScoreMatching",
                  "init_args": {"ngf": 4, "num_classes": 6, "sigma_end": 0.05, "lr": 1e-3}},
        "data": {"class_path": "lit_sampler.datamodules.TrainingDataModule",
                 "init_args": {"data_path": str(data), "target": "mvue", "batch_size": 4, "val_fraction": 0.34}},
    }
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(config))
    fit = run_cli("fit", "--config", tmp_path / "fit.yaml", cwd=tmp_path)
    assert "💡" not in fit.stdout + fit.stderr and "litmodels" not in fit.stdout + fit.stderr  # (Lightning's tips)
    checkpoint = next((tmp_path / "fit" / "train" / "version_0" / "checkpoints").glob("*.ckpt"))
    predict = predict_config(tmp_path, checkpoint, data / "t0.h5", tmp_path / "out", slices=[0])
    result = run_cli("predict", "--config", predict, cwd=tmp_path)
    assert "recon" in result.stdout
    assert len(read_rows(tmp_path / "out" / "metrics.csv")) == 2 * 2

    # training resumes from its checkpoint (--ckpt_path): optimizer, EMA and step counter continue
    run_cli("fit", "--config", tmp_path / "fit.yaml", "--trainer.max_steps", "6", "--ckpt_path", checkpoint, cwd=tmp_path)
    resumed = next((tmp_path / "fit" / "train" / "version_1" / "checkpoints").glob("*.ckpt"))
    state = torch.load(resumed, map_location="cpu", weights_only=False)
    assert state["global_step"] == 6
    first = torch.load(checkpoint, map_location="cpu", weights_only=False)
    torch.testing.assert_close(state["state_dict"]["score_model.sigmas"], first["state_dict"]["score_model.sigmas"])
