"""DataModules: items, resume exclusion, batching by shape, determinism, prior, training, YAML."""

from __future__ import annotations

import re

import pytest
import torch

from lit_sampler.data import DataError
from lit_sampler.datamodules import FastMRIDataModule, PriorDataModule, TrainingDataModule
from lit_sampler.physics.fft import complex_to_channels
from lit_sampler.physics.masks import RandomLineMask


def collect(dm):
    """item_key -> (batch index, position) over one pass of predict_dataloader."""
    seen = {}
    for b, batch in enumerate(dm.predict_dataloader()):
        for i, key in enumerate(batch.item_key):
            assert key not in seen, f"{key} served twice"
            seen[key] = (b, batch, i)
    return seen


@pytest.fixture
def mixed_dir(tmp_path, phantom_file):
    """Different shapes: two 4-coil 24×20, one 2-coil 24×20, one single-coil 17×19."""
    folder = tmp_path / "mixed"
    phantom_file(folder / "a.h5", slices=3, coils=4, size=(24, 20))
    phantom_file(folder / "b.h5", slices=2, coils=2, size=(24, 20))
    phantom_file(folder / "c.h5", slices=2, coils=4, size=(24, 20))
    phantom_file(folder / "d.h5", slices=2, size=(17, 19), single_coil=True)
    return folder


def test_items_order_and_count(multicoil_dir):
    dm = FastMRIDataModule(str(multicoil_dir), snr_range=[None, 20, 5.0], num_samples=2)
    dm.setup()
    assert len(dm.items) == (3 + 2) * 3 * 2 == len(dm)
    assert dm.items[:4] == ["a.h5|0|snr_inf|0", "a.h5|0|snr_inf|1", "a.h5|0|snr_20dB|0", "a.h5|0|snr_20dB|1"]
    assert dm.items[-1] == "b.h5|1|snr_5dB|1"
    info = dm.describe()
    assert (info["files"], info["slices"], info["items"], info["shapes"]) == (2, 5, 30, [(4, 32, 32)])


def test_batches_group_by_shape_and_cover_every_item_once(mixed_dir):
    dm = FastMRIDataModule(str(mixed_dir), snr_range=[None, 10.0], batch_size=3)
    dm.setup()
    seen = collect(dm)
    assert set(seen) == set(dm.items) and len(seen) == 2 * (3 + 2 + 2 + 2)
    shapes = {}
    for key, (b, batch, i) in seen.items():
        shapes.setdefault(b, set()).add(tuple(batch.kspace.shape[1:]))
    assert all(len(s) == 1 for s in shapes.values())
    assert sorted({next(iter(s)) for s in shapes.values()}) == [(1, 17, 19), (2, 24, 20), (4, 24, 20)]
    batch = seen["d.h5|1|snr_10dB|0"][1]
    assert batch.image_shape.tolist() == [[2, 17, 19]] * len(batch.item_key)
    assert batch.sens_maps.shape[1:] == (1, 17, 19)


def test_items_do_not_depend_on_batch_size(mixed_dir):
    common = dict(snr_range=[None, 10.0], num_samples=2, image_size=None)
    one = collect(FastMRIDataModule(str(mixed_dir), batch_size=1, **common))
    five = collect(FastMRIDataModule(str(mixed_dir), batch_size=5, **common))
    assert set(one) == set(five)
    for key in one:
        (_, b1, i1), (_, b5, i5) = one[key], five[key]
        for field in ("kspace", "mask", "sens_maps", "target", "zero_filled", "scale", "noise_var"):
            torch.testing.assert_close(getattr(b1, field)[i1], getattr(b5, field)[i5])


def test_batch_fields(multicoil_dir):
    dm = FastMRIDataModule(str(multicoil_dir), snr_range=[20.0], num_samples=2, batch_size=4)
    batch = next(iter(dm.predict_dataloader()))
    assert batch.kspace.shape == (4, 4, 32, 32) and batch.mask.shape == (4, 1, 32, 32)
    assert batch.target.shape == (4, 32, 32) and batch.has_target.dtype == torch.bool
    for key in ("scale", "noise_var", "snr_db"):
        assert getattr(batch, key).shape == (4,) and getattr(batch, key).dtype == torch.float32
    assert batch.slice_num.tolist() == [0, 0, 1, 1] and batch.sample_idx.tolist() == [0, 1, 0, 1]
    assert batch.seed.tolist() == [0] * 4 and batch.image_shape.tolist() == [[2, 32, 32]] * 4
    assert batch.fname == ["a.h5"] * 4
    assert batch.item_key[1] == "a.h5|0|snr_20dB|1"


def test_exclude_items_before_and_after_setup(multicoil_dir):
    done = {"a.h5|0|snr_inf|0", "b.h5|1|snr_inf|0", "not-an-item"}
    before = FastMRIDataModule(str(multicoil_dir))
    before.exclude_items(done)
    before.setup()
    after = FastMRIDataModule(str(multicoil_dir))
    after.setup()
    assert after.exclude_items(done) == 2
    assert before.items == after.items == ["a.h5|1|snr_inf|0", "a.h5|2|snr_inf|0", "b.h5|0|snr_inf|0"]
    assert set(collect(after)) == set(after.items)
    assert after.describe()["items"] == 5 and after.describe()["remaining"] == 3
    assert len(after.item_keys()) == 5


def test_padding_batches_when_fewer_batches_than_ranks(multicoil_dir):
    dm = FastMRIDataModule(str(multicoil_dir), batch_size=8)
    dm.setup()
    dm.trainer = type("FakeTrainer", (), {"world_size": 3})()
    batches = list(dm.predict_dataloader())
    assert [len(b.item_key) for b in batches] == [5, 0, 0]
    assert batches[1].is_padding and len(batches[1]) == 0 and not batches[0].is_padding


def test_everything_excluded_gives_an_empty_loader(multicoil_dir):
    dm = FastMRIDataModule(str(multicoil_dir))
    dm.setup()
    dm.exclude_items(dm.items)
    assert len(dm.predict_dataloader()) == 0


def test_prior_datamodule():
    dm = PriorDataModule(image_size=(16, 12), channels=2, num_samples=5, batch_size=2, seed=7)
    dm.setup()
    assert dm.image_shape() == (2, 16, 12)
    assert dm.items == [f"prior|0|snr_inf|{k}" for k in range(5)]
    dm.exclude_items({"prior|0|snr_inf|1"})
    batches = list(dm.predict_dataloader())
    assert [b.item_key for b in batches] == [
        ["prior|0|snr_inf|0", "prior|0|snr_inf|2"],
        ["prior|0|snr_inf|3", "prior|0|snr_inf|4"],
    ]
    assert batches[0].image_shape.tolist() == [[2, 16, 12]] * 2 and batches[0].seed.tolist() == [7, 7]
    assert dm.item_keys() == [f"prior|0|snr_inf|{k}" for k in range(5)]  # all, finished or not
    assert batches[1].sample_idx.tolist() == [3, 4] and torch.isinf(batches[0].snr_db).all()
    assert batches[0].fname == ["prior", "prior"]


# -------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("single_coil", [False, True])
def test_training_images_match_the_sampler_normalisation(tmp_path, phantom_file, single_coil):
    folder = tmp_path / "t"
    for name in ("a.h5", "b.h5"):
        phantom_file(folder / name, slices=2, coils=3, size=(21, 24), single_coil=single_coil)
    options = dict(image_size=(16, 20), mask=RandomLineMask([0.1], [3]), seed=3, target="mvue")
    train = TrainingDataModule(str(folder), **options, batch_size=2)
    train.setup()
    sampler = FastMRIDataModule(str(folder), **options, snr_range=[None])
    sampler.setup()
    assert train.image_shape() == (2, 16, 20) and len(train.train_dataset) == 4
    items = dict(zip(sampler.items, sampler.measurements(sampler.items)))
    for index in range(4):
        loaded = train.train_dataset.load(index)
        item = items[f"{loaded['fname']}|{loaded['slice_num']}|snr_inf|0"]
        assert loaded["scale"] == item.scale
        expected = complex_to_channels(item.target[None, None])[0]
        torch.testing.assert_close(loaded["image"], expected, rtol=0, atol=0)
        torch.testing.assert_close(train.train_dataset[index], expected, rtol=0, atol=0)  # cached path
    batch = next(iter(train.train_dataloader()))
    assert batch.shape == (2, 2, 16, 20) and batch.dtype == torch.float32
    assert train.all_images().shape == (4, 2, 16, 20)
    assert train.all_images(max_items=2).shape == (2, 2, 16, 20)


def test_training_lazy_equals_cached_and_flips(tmp_path, phantom_file):
    path = phantom_file(tmp_path / "a.h5", slices=3, coils=2, size=(16, 16))
    cached = TrainingDataModule(str(path), cache=True)
    lazy = TrainingDataModule(str(path), cache=False, augment_flips=True)
    cached.setup(), lazy.setup()
    torch.testing.assert_close(cached.all_images(), lazy.all_images())
    image = cached.train_dataset[0]
    torch.manual_seed(0)
    flipped = [lazy.train_dataset[0] for _ in range(16)]
    variants = [image, image.flip(-1), image.flip(-2), image.flip(-1, -2)]
    assert all(any(torch.equal(f, v) for v in variants) for f in flipped)
    assert len({tuple(f.flatten()[:3].tolist()) for f in flipped}) > 1


def test_training_val_split_by_volume(tmp_path, phantom_file):
    folder = tmp_path / "t"
    for i in range(4):
        phantom_file(folder / f"v{i}.h5", slices=2, coils=2, size=(16, 16))
    dm = TrainingDataModule(str(folder), val_fraction=0.25, batch_size=4)
    dm.setup()
    train_files = {dm.train_dataset.volumes[f].fname for f, _ in dm.train_dataset.refs}
    val_files = {dm.val_dataset.volumes[f].fname for f, _ in dm.val_dataset.refs}
    assert len(val_files) == 1 and len(train_files) == 3 and not train_files & val_files
    assert len(dm.val_dataset) == 2 and next(iter(dm.val_dataloader())).shape == (2, 2, 16, 16)
    separate = TrainingDataModule(str(folder / "v0.h5"), val_path=str(folder / "v1.h5"))
    separate.setup()
    assert len(separate.train_dataset) == len(separate.val_dataset) == 2
    no_val = TrainingDataModule(str(folder / "v0.h5"))
    no_val.setup()
    assert no_val.val_dataloader() == []
    with pytest.raises(DataError, match=re.escape("val_fraction=0.5 of 1 file(s) leaves no training file")):
        TrainingDataModule(str(folder / "v0.h5"), val_fraction=0.5).setup()


def test_training_needs_one_shape(tmp_path, phantom_file):
    folder = tmp_path / "t"
    phantom_file(folder / "a.h5", slices=1, coils=2, size=(16, 16))
    phantom_file(folder / "b.h5", slices=1, coils=2, size=(16, 18))
    with pytest.raises(DataError, match=re.escape("training images must share one shape, found [(16, 16), (16, 18)]")):
        TrainingDataModule(str(folder)).setup()
    dm = TrainingDataModule(str(folder), image_size=16)
    dm.setup()
    assert dm.all_images().shape == (2, 2, 16, 16)


# ------------------------------------------------------------------------------------ configuration


def test_jsonargparse_builds_the_datamodule_from_yaml(multicoil_dir, tmp_path):
    from jsonargparse import ActionConfigFile, ArgumentParser

    config = tmp_path / "data.yaml"
    config.write_text(
        f"""
data:
  data_path: {multicoil_dir}
  slices: "1:3"
  image_size: [24, 20]
  snr_range: [.inf, 20, 10]
  mask:
    class_path: lit_sampler.physics.masks.RandomLineMask
    init_args:
      center_fractions: [0.08]
      accelerations: [4]
"""
    )
    parser = ArgumentParser()
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(FastMRIDataModule, "data")
    cfg = parser.parse_args(["--config", str(config)])
    dm = parser.instantiate(cfg).data
    assert isinstance(dm.transform.mask_fn, RandomLineMask) and dm.transform.mask_fn.accelerations == [4.0]
    assert dm.source.slices == "1:3" and dm.source.geometry.image_size == (24, 20)
    dm.setup()
    assert dm.items[0] == "a.h5|1|snr_inf|0" and len(dm.items) == (2 + 1) * 3
    cfg = parser.parse_object({"data": {"data_path": str(multicoil_dir), "snr_range": ["inf", 5]}})
    assert parser.instantiate(cfg).data.snr_levels == [None, 5.0]
