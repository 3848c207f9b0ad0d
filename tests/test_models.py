"""NCSNv2 networks (Song & Ermon 2020): original names and shapes, exact outputs against the
original implementation (fixtures in tests/data/ncsnv2_reference), odd sizes, parameter counts,
YAML class_path construction."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lit_sampler.models import VARIANTS, NCSNv2, NCSNv2Deepest
from lit_sampler.models.layers import mean_pool2x2

REFERENCE = Path(__file__).parent / "data" / "ncsnv2_reference"
SIGMAS = dict(sigma_begin=50.0, sigma_end=0.01, num_classes=10)


def close(actual, expected, rtol=1e-5):
    """Relative to the output's scale: elementwise relative error is meaningless near zero."""
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * expected.abs().max().item())


def original_state(name):
    states = torch.load(REFERENCE / f"{name}_list.pth", weights_only=True)
    return {k.removeprefix("module."): v for k, v in states[0].items()}, states[4]


# Exact counts from REFERENCE.md §3 (2 channels unless noted).
PARAMETER_COUNTS = {
    ("NCSNv2", 32, 2): 1_859_554,
    ("NCSNv2", 64, 2): 7_428_034,
    ("NCSNv2", 128, 2): 29_691_778,
    ("NCSNv2", 128, 3): 29_694_083,
    ("NCSNv2Deeper", 32, 2): 5_221_218,
    ("NCSNv2Deeper", 64, 2): 20_868_802,
    ("NCSNv2Deeper", 128, 2): 83_443_074,
    ("NCSNv2Deeper", 128, 3): 83_445_379,
    ("NCSNv2Deepest", 32, 2): 5_890_082,
    ("NCSNv2Deepest", 64, 2): 23_541_826,
    ("NCSNv2Deepest", 128, 2): 94_130_306,
    ("NCSNv2Deepest", 128, 3): 94_132_611,
}


@pytest.mark.parametrize("key", list(PARAMETER_COUNTS), ids=lambda k: f"{k[0]}-ngf{k[1]}-c{k[2]}")
def test_parameter_counts(key):
    name, ngf, channels = key
    with torch.device("meta"):  # no memory, no init: 94 M parameters in milliseconds
        model = VARIANTS[name](in_channels=channels, ngf=ngf, num_classes=2311, sigma_begin=348.0, sigma_end=0.01)
    assert sum(p.numel() for p in model.parameters()) == PARAMETER_COUNTS[key]
    assert model.sigmas.shape == (2311,)


def test_deepest_headline_sizes():
    counts = {}
    for ngf in (32, 128):
        with torch.device("meta"):
            model = NCSNv2Deepest(in_channels=2, ngf=ngf, **SIGMAS)
        counts[ngf] = sum(p.numel() for p in model.parameters())
    assert round(counts[32] / 1e6, 2) == 5.89 and round(counts[128] / 1e6, 2) == 94.13


@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_keys_and_shapes_equal_the_original(name):
    reference, _ = original_state(name)
    ours = VARIANTS[name](in_channels=2, ngf=3, **SIGMAS).state_dict()
    assert list(ours) == list(reference)  # same names, same order
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}


@pytest.mark.parametrize("name", VARIANTS)
def test_characteristic_names_and_shapes(name):
    ngf, c = 4, 3
    state = VARIANTS[name](in_channels=c, ngf=ngf, **SIGMAS).state_dict()
    assert state["sigmas"].shape == (10,)
    assert state["begin_conv.weight"].shape == (ngf, c, 3, 3)
    assert state["end_conv.weight"].shape == (c, ngf, 3, 3)
    assert {"normalizer.alpha", "normalizer.gamma", "normalizer.beta"} <= set(state)
    # Downsampling block: conv-mean-pool conv2 and 1×1 conv-mean-pool shortcut.
    assert state["res2.0.conv2.conv.weight"].shape == (2 * ngf, ngf, 3, 3)
    assert state["res2.0.shortcut.conv.weight"].shape == (2 * ngf, ngf, 1, 1)
    assert "res1.0.shortcut.weight" not in state and "res2.1.shortcut.weight" not in state
    assert "refine1.msf.convs.0.weight" not in state  # the first refine block has one input
    assert state["refine2.msf.convs.1.bias"].shape[0] in (2 * ngf, 4 * ngf)
    assert "refine1.adapt_convs.0.2_2_conv.weight" in state
    assert "refine1.adapt_convs.0.1_1_conv.bias" not in state  # RCU convs have no bias
    has = lambda prefix: any(k.startswith(prefix) for k in state)  # noqa: E731
    last = {"NCSNv2": "refine4", "NCSNv2Deeper": "refine5", "NCSNv2Deepest": "refine5"}[name]
    assert f"{last}.output_convs.3_2_conv.weight" in state  # the last block has three output RCUs
    assert has("res31.") == has("refine31.") == (name == "NCSNv2Deepest")
    assert has("res5.") == (name != "NCSNv2")
    if name == "NCSNv2":  # res4 is dilated: 3×3 dilated shortcut, no pooling
        assert state["res4.0.shortcut.weight"].shape == (2 * ngf, 2 * ngf, 3, 3)
    else:
        assert state["res5.0.shortcut.weight"].shape == (4 * ngf, 4 * ngf, 3, 3)
        assert state["res4.0.conv2.weight"].shape == (4 * ngf, 2 * ngf, 3, 3)


@pytest.mark.parametrize("name", VARIANTS)
def test_outputs_equal_the_original(name):
    raw, ema = original_state(name)
    reference = torch.load(REFERENCE / f"{name}_outputs.pt", weights_only=True)
    model = VARIANTS[name](in_channels=2, ngf=3, num_classes=10, sigmas=[1.0] * 10).eval()
    model.load_state_dict(raw, strict=True)
    with torch.no_grad():
        close(model(reference["x"], reference["labels"]), reference["raw"])
        model.load_state_dict({**raw, **ema}, strict=True)
        close(model(reference["x"], reference["labels"]), reference["ema"])


def test_odd_size_equals_the_csgm_fork():
    raw, _ = original_state("NCSNv2Deepest")
    reference = torch.load(REFERENCE / "NCSNv2Deepest_outputs.pt", weights_only=True)
    model = NCSNv2Deepest(in_channels=2, ngf=3, sigmas=[1.0] * 10).eval()
    model.load_state_dict(raw)
    with torch.no_grad():
        out = model(reference["x_odd"], reference["labels"])
    assert out.shape == reference["x_odd"].shape == (2, 2, 19, 21)
    close(out, reference["raw_odd"])


@pytest.mark.parametrize("name", VARIANTS)
def test_odd_sizes_keep_the_input_shape(name):
    model = VARIANTS[name](in_channels=2, ngf=4, **SIGMAS).eval()
    x = torch.rand(1, 2, 33, 35)
    with torch.no_grad():
        out = model(x, torch.tensor([3]))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_mean_pool_matches_avg_pool_with_floor():
    x = torch.randn(2, 3, 9, 12)
    close(mean_pool2x2(x), F.avg_pool2d(x, 2))
    even = torch.randn(1, 1, 4, 6)
    expected = (even[..., ::2, ::2] + even[..., 1::2, ::2] + even[..., ::2, 1::2] + even[..., 1::2, 1::2]) / 4.0
    assert torch.equal(mean_pool2x2(even), expected)


def test_input_map_and_sigma_division():
    torch.manual_seed(0)
    mapped = NCSNv2(in_channels=2, ngf=4, **SIGMAS).eval()
    plain = NCSNv2(in_channels=2, ngf=4, input_map=False, **SIGMAS).eval()
    plain.load_state_dict(mapped.state_dict())
    x, labels = torch.rand(2, 2, 16, 16), torch.tensor([0, 9])
    with torch.no_grad():
        close(mapped(x, labels), plain(2 * x - 1, labels))
        # The level enters only through the division by σ: s·σ is the same for every label.
        unscaled = mapped(x, labels) * mapped.sigmas[labels].view(-1, 1, 1, 1)
        other = mapped(x, torch.tensor([4, 4])) * mapped.sigmas[4]
    close(unscaled, other)


def test_constructor_sigmas():
    model = NCSNv2(in_channels=2, ngf=4, sigmas=[3.0, 2.0, 1.0])
    assert model.num_classes == 3 and model.sigmas.dtype == torch.float32
    geometric = NCSNv2(in_channels=2, ngf=4, **SIGMAS).sigmas
    assert geometric.shape == (10,) and geometric[0] == pytest.approx(50.0) and geometric[-1] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="sigma_begin, sigma_end and num_classes"):
        NCSNv2(in_channels=2, ngf=4)
    with pytest.raises(ValueError, match="disagrees"):
        NCSNv2(in_channels=2, ngf=4, sigmas=[2.0, 1.0], num_classes=3)
    with pytest.raises(ValueError, match="not both"):
        NCSNv2(in_channels=2, ngf=4, sigmas=[2.0, 1.0], sigma_begin=2.0, sigma_end=1.0)


@pytest.mark.parametrize(
    "init_args",
    [
        {"in_channels": 2, "ngf": 4, "sigma_begin": 50.0, "sigma_end": 0.01, "num_classes": 10},
        {"in_channels": 3, "ngf": 4, "sigmas": [1.0, 0.5, 0.1], "input_map": False},
    ],
)
def test_class_path_construction(init_args):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--model", type=torch.nn.Module)
    config = parser.parse_object({"model": {"class_path": "lit_sampler.models.NCSNv2Deepest", "init_args": init_args}})
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in 4.49
    model = instantiate(config).model
    assert isinstance(model, NCSNv2Deepest)
    assert model.in_channels == init_args["in_channels"] and model.ngf == 4
    assert model.input_map == init_args.get("input_map", True)
    with torch.no_grad():
        out = model(torch.rand(1, init_args["in_channels"], 16, 16), torch.tensor([1]))
    assert out.shape == (1, init_args["in_channels"], 16, 16)
