"""Checkpoint loading: every format against the original network's outputs, EMA vs raw selection,
inference and overrides, safe reading, and one clear error per kind of bad file."""

import gzip
import importlib.util
import json
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from lit_sampler.models import (
    VARIANTS,
    CheckpointError,
    NCSNv2,
    describe_checkpoint,
    load_score_model,
)

REFERENCE = Path(__file__).parent / "data" / "ncsnv2_reference"


def close(actual, expected, rtol=1e-5):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * expected.abs().max().item())


def reference(name):
    return torch.load(REFERENCE / f"{name}_outputs.pt", weights_only=True)


def run(model, ref, x_key="x"):
    with torch.no_grad():
        return model(ref[x_key], ref["labels"])


def original_list(name="NCSNv2"):
    return torch.load(REFERENCE / f"{name}_list.pth", weights_only=True)


def unprefixed(state):
    return {k.removeprefix("module."): v for k, v in state.items()}


# --------------------------------------------------------------------------- original formats


@pytest.mark.parametrize("name", VARIANTS)
def test_ncsnv2_list_ema_by_default_raw_on_request(name):
    ref = reference(name)
    assert not torch.allclose(ref["ema"], ref["raw"])  # the fixture's EMA really differs
    ema = load_score_model(REFERENCE / f"{name}_list.pth")
    raw = load_score_model(REFERENCE / f"{name}_list.pth", use_ema=False)
    for model in (ema, raw):
        assert type(model) is VARIANTS[name] and not model.training
        assert (model.ngf, model.in_channels, model.num_classes, model.input_map) == (3, 2, 10, True)
    close(run(ema, ref), ref["ema"])
    close(run(raw, ref), ref["raw"])
    if "x_odd" in ref:  # odd size against Jalal et al.'s AvgPool fork
        close(run(raw, ref, "x_odd"), ref["raw_odd"])


def test_aali_dict_loads_without_dotmap_and_maps_cuda_to_cpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "dotmap", None)  # importing dotmap now fails, even if installed
    path = REFERENCE / "aali_NCSNv2.pt"
    with pytest.raises(RuntimeError, match="CUDA"):  # the fixture's tensors are tagged cuda:0
        torch.load(path, weights_only=False)
    ref = reference("NCSNv2")
    close(run(load_score_model(path), ref), ref["ema"])
    raw = load_score_model(path, use_ema=False)
    close(run(raw, ref), ref["raw"])
    assert raw.sigmas.device.type == "cpu" and raw.sigmas[0].item() == pytest.approx(50.0)


def test_weights_only_is_used_where_the_format_allows(monkeypatch):
    calls = []
    original_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_score_model(REFERENCE / "NCSNv2_list.pth")
    load_score_model(REFERENCE / "aali_NCSNv2.pt")  # DotMap is read as a plain mapping
    assert calls == [True, True]


def test_bare_state_dicts_with_and_without_prefix(tmp_path):
    states = original_list("NCSNv2Deeper")
    ref = reference("NCSNv2Deeper")
    for name, state in {"prefixed.pt": states[0], "plain.pt": unprefixed(states[0])}.items():
        torch.save(state, tmp_path / name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a bare state dict has no EMA: no warning about it
            model = load_score_model(tmp_path / name)
        close(run(model, ref), ref["raw"])


def test_lightning_checkpoint_layout(tmp_path):
    states = original_list("NCSNv2")
    raw = unprefixed(states[0])
    ema = {**raw, **states[4]}
    state_dict = {f"score_model.{k}": v for k, v in raw.items()}
    state_dict.update({f"ema_model.{k}": v for k, v in ema.items()})
    checkpoint = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": state_dict,
        "hyper_parameters": {"variant": "NCSNv2", "ngf": 3, "in_channels": 2, "sigma_begin": 50.0},
        "optimizer_states": [],
    }
    torch.save(checkpoint, tmp_path / "fit.ckpt")
    ref = reference("NCSNv2")
    close(run(load_score_model(tmp_path / "fit.ckpt"), ref), ref["ema"])
    close(run(load_score_model(tmp_path / "fit.ckpt", use_ema=False), ref), ref["raw"])
    info = describe_checkpoint(tmp_path / "fit.ckpt")
    assert (info.format, info.epoch, info.step, info.has_ema) == ("lightning", 3, 120, True)
    assert info.extra == {"pytorch-lightning_version": "2.6.0"}

    # input_map saved in the hyper-parameters is honoured; an override wins over it.
    checkpoint["hyper_parameters"] = {"score_model": {"init_args": {"input_map": False}}}
    torch.save(checkpoint, tmp_path / "unmapped.ckpt")
    assert load_score_model(tmp_path / "unmapped.ckpt").input_map is False
    assert load_score_model(tmp_path / "unmapped.ckpt", input_map=True).input_map is True


_side_effects = []


def _record_call(*args):
    _side_effects.append(args)
    return args


class _Hostile:
    """Unpickling this would call _record_call: the loader must not let it."""

    def __reduce__(self):
        return (_record_call, ("code from the checkpoint ran",))


class _ConfigObject:
    def __init__(self):
        self.data = {"rescaled": True}


def test_foreign_objects_are_inert_placeholders(tmp_path):
    states = original_list("NCSNv2")
    checkpoint = {
        "model_state": states[0],
        "ema_state": states[4],
        "diffuser": _Hostile(),  # Aali's early files pickle the whole module here
        "config": _ConfigObject(),
        "loss": __import__("numpy").array([0.5, 0.25]),
    }
    torch.save(checkpoint, tmp_path / "foreign.pt")
    model = load_score_model(tmp_path / "foreign.pt")
    assert _side_effects == []
    # The pickled config's attributes are still read: rescaled=True turns the 2x − 1 map off.
    assert model.input_map is False
    ref = reference("NCSNv2")
    with torch.no_grad():
        close(model(2 * ref["x"] - 1, ref["labels"]), ref["ema"])


def test_restricted_reader_after_a_refused_weights_only_load(tmp_path, monkeypatch):
    """Without torch's global scan (torch < 2.5) the weights-only load is tried first, then the
    restricted reader takes over."""
    monkeypatch.delattr(torch.serialization, "get_unsafe_globals_in_checkpoint", raising=False)
    states = original_list("NCSNv2")
    torch.save({"model_state": states[0], "ema_state": states[4], "diffuser": _Hostile()}, tmp_path / "f.pt")
    calls = []
    original_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = load_score_model(tmp_path / "f.pt")
    assert calls == [True, False] and _side_effects == []
    close(run(model, reference("NCSNv2")), reference("NCSNv2")["ema"])


# --------------------------------------------------------------------------- EMA and sigmas


def test_list_without_ema_warns_and_uses_raw(tmp_path):
    states = original_list("NCSNv2")
    torch.save(states[:4], tmp_path / "no_ema.pth")
    with pytest.warns(UserWarning, match="no EMA weights"):
        model = load_score_model(tmp_path / "no_ema.pth")
    close(run(model, reference("NCSNv2")), reference("NCSNv2")["raw"])
    assert describe_checkpoint(tmp_path / "no_ema.pth").has_ema is False


def test_sigmas_from_config_when_the_state_has_none(tmp_path):
    states = original_list("NCSNv2")
    shadow = states[4]  # Aali 2023-05: model_state is the EMA shadow, parameters only
    config = {"model": {"sigma_begin": 50.0, "sigma_end": 0.01, "num_classes": 10, "depth": "low"}}
    torch.save({"model_state": shadow, "config": config}, tmp_path / "shadow.pt")
    with pytest.warns(UserWarning, match="no EMA"):
        model = load_score_model(tmp_path / "shadow.pt")
    close(run(model, reference("NCSNv2")), reference("NCSNv2")["ema"])
    assert describe_checkpoint(tmp_path / "shadow.pt").sigmas_source == "config"

    torch.save(shadow, tmp_path / "bare_shadow.pt")
    with pytest.raises(CheckpointError, match="no noise levels.*pass sigmas"):
        load_score_model(tmp_path / "bare_shadow.pt")
    model = load_score_model(tmp_path / "bare_shadow.pt", sigma_begin=50.0, sigma_end=0.01, num_classes=10)
    close(run(model, reference("NCSNv2")), reference("NCSNv2")["ema"])
    assert describe_checkpoint(tmp_path / "bare_shadow.pt").num_classes is None


def test_overrides():
    path = REFERENCE / "NCSNv2_list.pth"
    assert load_score_model(path, num_classes=10).num_classes == 10
    with pytest.raises(CheckpointError, match="num_classes=12 disagrees with the 10 noise levels"):
        load_score_model(path, num_classes=12)
    with pytest.warns(UserWarning, match="replace"):
        model = load_score_model(path, sigmas=[5.0, 1.0, 0.5])
    assert model.sigmas.tolist() == [5.0, 1.0, 0.5]
    assert load_score_model(path, input_map=False).input_map is False
    assert type(load_score_model(path, variant="low", ngf=3, in_channels=2)) is NCSNv2


def test_wrong_variant_or_width_is_explained():
    path = REFERENCE / "NCSNv2Deepest_list.pth"
    with pytest.raises(CheckpointError) as error:
        load_score_model(path, variant="NCSNv2Deeper")
    message = str(error.value)
    assert "NCSNv2Deepest_list.pth" in message and "unexpected keys: res31" in message
    assert "suggest NCSNv2Deepest(ngf=3, in_channels=2)" in message and "fits exactly" in message
    with pytest.raises(CheckpointError, match=r"shape mismatches: begin_conv.weight expected \[4, 2, 3, 3\] found \[3, 2, 3, 3\]"):
        load_score_model(path, ngf=4)
    with pytest.raises(CheckpointError, match="unknown NCSNv2 variant"):
        load_score_model(path, variant="NCSNv3")


def test_state_dict_that_fits_no_variant(tmp_path):
    state = unprefixed(original_list("NCSNv2")[0])
    del state["res1.0.conv1.weight"]
    state["res1.0.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match=r"broken.pt.*does not fit NCSNv2\(ngf=3, in_channels=2\).*missing keys: res1.0.conv1.weight.*unexpected keys: res1.0.extra.weight"):
        load_score_model(tmp_path / "broken.pt")
    torch.save(torch.nn.Linear(3, 4).state_dict(), tmp_path / "linear.pt")
    with pytest.raises(CheckpointError, match="no 4-D 'begin_conv.weight'.*not an NCSNv2 network"):
        load_score_model(tmp_path / "linear.pt")


# --------------------------------------------------------------------------- unreadable files


def test_files_that_are_not_checkpoints(tmp_path):
    cases = {
        "missing.pt": (None, "no such file"),
        "empty.pt": (b"", "empty file"),
        "notes.txt": (b"hello, these are notes\n", "not a PyTorch checkpoint"),
        "checkpoint.tar.gz": (gzip.compress(b"x" * 100), "gzip-compressed.*unpack it first"),
    }
    for name, (content, message) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=message):
            load_score_model(tmp_path / name)
    torch.save({"foo": 1, "bar": [2]}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"unrecognised checkpoint layout with top-level keys \['bar', 'foo'\]"):
        load_score_model(tmp_path / "other.pt")


def test_truncated_files(tmp_path):
    data = (REFERENCE / "NCSNv2_list.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pth: truncated or corrupted"):
        load_score_model(tmp_path / "cut.pth")
    # The pre-1.6 (non-zip) torch.save format, cut short.
    torch.save(original_list("NCSNv2"), tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    close(run(load_score_model(tmp_path / "legacy.pth"), reference("NCSNv2")), reference("NCSNv2")["ema"])
    legacy = (tmp_path / "legacy.pth").read_bytes()
    (tmp_path / "legacy_cut.pth").write_bytes(legacy[: len(legacy) // 2])
    with pytest.raises(CheckpointError, match="legacy_cut.pth: could not be read.*truncated or corrupted"):
        load_score_model(tmp_path / "legacy_cut.pth")


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


# --------------------------------------------------------------------------- describe / script


def _inspect_main():
    spec = importlib.util.spec_from_file_location("inspect_checkpoint", Path(__file__).parents[1] / "scripts" / "inspect_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_describe_and_inspect_script(capsys, tmp_path):
    info = describe_checkpoint(REFERENCE / "NCSNv2Deepest_list.pth")
    assert (info.format, info.variant, info.ngf, info.in_channels, info.num_classes) == ("ncsnv2-list", "NCSNv2Deepest", 3, 2, 10)
    assert info.num_parameters == sum(p.numel() for p in load_score_model(REFERENCE / "NCSNv2Deepest_list.pth").parameters())
    assert info.has_ema and info.weights == "ema" and (info.epoch, info.step) == (7, 1234)
    assert info.sigma_max == pytest.approx(50.0) and info.sigma_min == pytest.approx(0.01)

    main = _inspect_main()
    assert main([str(REFERENCE / "aali_NCSNv2.pt"), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["variant"] == "NCSNv2" and facts["has_ema"] is True and facts["format"] == "model_state-dict"
    assert main([str(REFERENCE / "NCSNv2Deepest_list.pth")]) == 0
    text = capsys.readouterr().out
    assert "NCSNv2Deepest" in text and "52,556" in text and "EMA weights   yes" in text and "σ from 50 down to 0.01" in text
    (tmp_path / "bad.pt").write_bytes(b"nope")
    assert main([str(tmp_path / "bad.pt")]) == 1
    assert "not a PyTorch checkpoint" in capsys.readouterr().err


def test_returned_model_is_plain_float32_on_cpu():
    model = load_score_model(REFERENCE / "NCSNv2_list.pth")
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 and not p.is_meta for p in model.parameters())
    assert isinstance(model.state_dict(), OrderedDict)
