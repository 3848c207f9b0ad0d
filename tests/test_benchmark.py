"""lit_sampler.tools.benchmarks on a tiny configuration, and the fast-path switches it measures.

No timing thresholds: only that the report has its fields with sane values, that the bare
reference loop and the module agree on the same seeds, and that the fast path's logic (CUDA-graph
static-buffer step, no host syncs in the chain) holds on CPU.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

import lit_sampler.api.engine as engine_file
import lit_sampler.lightning.module as module_file
from lit_sampler.models import NCSNv2
from lit_sampler.physics.operators import MultiCoilMRI
from lit_sampler.sampling.langevin import GaussianDataConsistency, _static_chain, annealed_langevin, chain_plan
from lit_sampler.tools import benchmarks

@pytest.fixture(scope="module")
def bench():
    return benchmarks


def tiny_setup(bench, **overrides):
    values = dict(variant="NCSNv2", ngf=4, size=16, coils=2, num_classes=6, sigma_begin=2.0, sigma_end=0.05,
                  levels=2, steps_each=2, files=1, slices=2, snrs=[None, 20.0], samples=1, step_size=1e-3)
    return bench.Setup(**{**values, **overrides})


def test_report_has_every_field_with_sane_values(bench, tmp_path):
    setup = tiny_setup(bench)
    configs = [bench.parse_config(text) for text in (
        "bare:items=2", "b1:batch_size=1", "b4_cl:batch_size=4,channels_last=1,batch_invariant=0",
        "b4_no_im:batch_size=4,inference_mode=0", "fp16:batch_size=2,precision=16-mixed",
        "graph:batch_size=4,cuda_graph=1",
    )]
    report = bench.run_benchmark(setup, configs, tmp_path, memory_batch_sizes=[1, 2], log=lambda *a: None)

    assert report["flops_per_image_eval"] > 0
    rows = {row["name"]: row for row in report["results"]}
    assert "fp16" in rows and rows["fp16"]["skipped"] and rows["graph"]["skipped"]  # GPU-only on a CPU
    done = [row for row in report["results"] if not row.get("skipped")]
    assert [row["name"] for row in done] == ["bare", "b1", "b4_cl", "b4_no_im"]
    for row in done:
        assert row["image_evals"] == row["items"] * 2 * 2  # items × levels × steps
        assert row["image_evals_per_s"] > 0 and row["items_per_s"] > 0 and row["ms_per_image_eval"] > 0
        assert 0 < row["frac_in_network"] <= 1 and 0 < row["frac_in_network_standalone"] <= 1
        assert row["achieved_flops_per_s"] > 0 and row["peak_mem_bytes"] > 0
        assert row["speedup_vs_bare"] > 0 and row["s_per_slice_at_reference"] > 0
        assert row["chain_s"] <= row["wall_s"] + 1e-9
    assert rows["bare"]["items"] == 2 and rows["bare"]["network_calls"] == 2 * 4  # batch 1: one call per image
    assert rows["b1"]["network_calls"] == 4 * 4 and rows["b4_cl"]["network_calls"] == 4  # one batch of 4
    assert rows["bare"]["speedup_vs_bare"] == pytest.approx(1.0)

    memory = report["memory"]
    assert memory["batch_sizes"] == [1, 2] and all(v > 0 for v in memory["peak_delta_bytes"])
    assert len(memory["many_items"]["live_after_batch_bytes"]) == 8
    assert {"outside_network_fraction", "best_batched_onednn", "memory_flat_over_items"} <= set(report["budget"])

    markdown = bench.to_markdown(report)
    assert "| configuration |" in markdown and "`b4_cl`" in markdown and "skipped" in markdown


def test_bare_loop_and_module_agree_on_the_same_seeds(bench, tmp_path):
    setup = tiny_setup(bench, levels=3)
    prepared = bench.prepare(setup, tmp_path)
    row = bench.run_predict(prepared, bench.RunConfig("module", batch_size=4), instrument=True)
    shards = {}
    for path in Path(row["output_dir"]).glob("items/*/*/*.pt"):
        shard = torch.load(path, weights_only=True)
        shards[shard["item_key"]] = shard["reconstruction"]
    _, bare = bench.run_bare(prepared, bench.RunConfig("bare", kind="bare"), instrument=False)
    assert set(bare) == set(shards) and len(bare) == 4
    for key, image in bare.items():
        # same measurements, initial state and noise streams; the module runs the real layout and
        # (batch_invariant) convolutions without oneDNN, so agreement is to rounding
        torch.testing.assert_close(image, shards[key], rtol=1e-4, atol=1e-5 * float(shards[key].abs().max()))


def test_config_parsing(bench):
    cfg = bench.parse_config("x:batch_size=8,precision=bf16-mixed,channels_last=1,compile=true,compile_mode=max-autotune")
    assert (cfg.batch_size, cfg.precision, cfg.channels_last, cfg.compile, cfg.compile_mode) == (8, "bf16-mixed", True, True, "max-autotune")
    assert bench.parse_config("bare").kind == "bare"
    with pytest.raises(ValueError, match="unknown configuration key"):
        bench.parse_config("x:batchsize=3")
    names = [c.name for c in bench.default_configs(tiny_setup(bench), quick=True)]
    assert names[0] == "bare" and any("batched" in n for n in names) and any("bf16" in n for n in names)


# ---------------------------------------------------------------------------------------------- fast path
def _problem(batch=3, size=16):
    torch.manual_seed(0)
    net = NCSNv2(in_channels=2, ngf=4, sigma_begin=2.0, sigma_end=0.05, num_classes=6).eval().requires_grad_(False)
    sens = torch.randn(batch, 3, size, size, dtype=torch.complex64)
    mask = (torch.rand(batch, 1, 1, size) > 0.5).float()
    operator = MultiCoilMRI(sens, mask)
    y = operator.forward(torch.randn(batch, size, size, dtype=torch.complex64))
    dc = GaussianDataConsistency(operator, y, torch.full((batch,), 0.1))
    return net, dc, torch.randn(batch, 2, size, size)


def test_graphed_step_logic_equals_the_eager_chain():
    """The CUDA-graph path's static buffers (labels, σ, α, noise refilled in place), run eagerly."""
    net, dc, x0 = _problem()
    generators = lambda: [torch.Generator().manual_seed(i) for i in range(3)]  # noqa: E731
    kwargs = dict(step_size=1e-3, steps_each=2, sigma_offset=1, noise_boost=1.0, data_consistency=dc)
    eager_levels, static_levels = [], []
    eager = annealed_langevin(net, x0, net.sigmas, generator=generators(), callback=eager_levels.append, **kwargs)
    with torch.no_grad():
        values = net.sigmas.tolist()
        plan = chain_plan(len(values), values, kwargs["step_size"], kwargs["steps_each"], kwargs["sigma_offset"])
        static = _static_chain(net, x0, values, plan, noise_boost=1.0, data_consistency=dc, generator=generators(),
                               callback=static_levels.append, capture=False)
    torch.testing.assert_close(static, eager, rtol=1e-5, atol=1e-6)
    assert [i["level"] for i in static_levels] == [i["level"] for i in eager_levels] == [1, 2, 3, 4, 5]
    for a, b in zip(static_levels, eager_levels):
        torch.testing.assert_close(a["x"], b["x"], rtol=1e-5, atol=1e-6)
    assert not torch.equal(static_levels[0]["x"], static_levels[1]["x"])  # callbacks get copies, not the buffer


def test_cuda_graph_needs_a_cuda_device(tmp_path):
    net, dc, x0 = _problem()
    with pytest.raises(ValueError, match="CUDA device"):
        annealed_langevin(net, x0, net.sigmas, step_size=1e-3, steps_each=1, cuda_graph=True)
    module = module_file.LangevinSampler(score_model=net, step_size=1e-3, cuda_graph=True)
    with pytest.raises(ValueError, match="cuda_graph: true needs a CUDA device"):
        module.on_predict_start()
    with pytest.raises(ValueError, match="nest CUDA graphs"):
        module_file.LangevinSampler(score_model=net, cuda_graph=True, compile=True, compile_mode="reduce-overhead")


@contextlib.contextmanager
def host_syncs_forbidden():
    """Every Python-level way to pull a tensor value to the host raises (what would be a GPU sync)."""
    names = ["item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"]
    saved = {name: getattr(torch.Tensor, name) for name in names}

    def forbid(name):
        def raiser(self, *args, **kwargs):
            raise AssertionError(f"host sync inside the chain: Tensor.{name}")
        return raiser

    try:
        for name in names:
            setattr(torch.Tensor, name, forbid(name))
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


@pytest.mark.parametrize("rule", ["gaussian", "norm_matched"])
def test_the_chain_never_syncs_with_the_host(bench, tmp_path, monkeypatch, rule):
    """Score, data consistency, noise, update, the divergence/oracle tracker and progress listeners
    run without ``.item()``, ``.tolist()``, ``float(tensor)`` or branching on tensor values."""
    prepared = bench.prepare(tiny_setup(bench), tmp_path)
    calls = []
    original = engine_file.annealed_langevin  # the module runs the chain through the engine

    def guarded(score, x, sigmas, **kwargs):
        levels = sigmas.tolist()  # the one read of the schedule, before the chain starts
        with host_syncs_forbidden():
            out = original(score, x, levels, **kwargs)
        calls.append(out.shape)
        return out

    monkeypatch.setattr(engine_file, "annealed_langevin", guarded)
    module = module_file.LangevinSampler(checkpoint=str(prepared.checkpoint), step_size=1e-3, steps_each=2,
                                         sigma_offset=3, data_consistency=rule, track_best_nrmse=True,
                                         final_denoise=True, channels_last=True)
    from lit_sampler.lightning.progress import LangevinProgressBar

    bar = LangevinProgressBar(level_refresh_seconds=0.0)
    bar._levels_bar = type("Bar", (), {"update": lambda *a: None, "set_postfix_str": lambda *a, **k: None})()
    module.add_level_listener(bar._on_level)
    dm = bench.datamodule(prepared, batch_size=4)
    for batch in dm.predict_dataloader():
        out = module.predict_step(batch, 0)
        assert out.diverged_level == [-1] * 4
    assert calls == [torch.Size([4, 2, 16, 16])]
