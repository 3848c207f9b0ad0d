"""``lit_sampler frontier``: the quality-per-network-call grid, end to end on a tiny network, and
its analysis (Pareto front, cheapest schedule within a tolerance)."""

from __future__ import annotations

import math

import pytest
import yaml

from conftest import write_phantom_file
from helpers import main_in_process, predict_config, read_rows, write_tiny_checkpoint
from lit_sampler.evaluation.calibration import write_calibration
from lit_sampler.tools.frontier import cheapest_within, mark_pareto


def test_frontier_runs_end_to_end(tmp_path, capsys):
    write_phantom_file(tmp_path / "val" / "v.h5", slices=1, coils=2, size=(16, 16))
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt", levels=8)
    config = predict_config(tmp_path, checkpoint, tmp_path / "val", tmp_path / "unused", logger=False, num_samples=1,
                            snr_range=[20, 5])
    # the user's predict config with its calibration file: it holds for one schedule, the grid drops it
    calibration = tmp_path / "calibration.json"
    write_calibration(calibration, {"snr_20dB": {0.9: 2.0}, "snr_5dB": {0.9: 2.0}}, {"snr_20dB": 20, "snr_5dB": 20},
                      {"num_samples": 8, "preset": "quick"}, "elsewhere")
    document = yaml.safe_load(config.read_text())
    document["trainer"]["callbacks"][0]["init_args"]["calibration"] = str(calibration)
    config.write_text(yaml.safe_dump(document))
    out = tmp_path / "frontier"
    assert main_in_process("frontier", "--config", config, "--grid", "quick", "--out", out) == 0
    rows = read_rows(out / "frontier.csv")
    assert {r["schedule"] for r in rows} == {"warm_f2_d16", "dds_cold_n10_etainf", "dds_warm_f4_d4.5_etainf",
                                             "dds_warm_f4_d12_etainf"}
    assert {float(r["snr_db"]) for r in rows} == {20.0, 5.0}
    cold = [r for r in rows if r["schedule"] == "dds_cold_n10_etainf"]
    assert all(float(r["nfe"]) == 8.0 for r in cold)  # 10 levels asked of 8: every level once, no Tweedie step
    # one network call and (5 + 1) normal operators (+ Aᴴy once) per level
    assert all(float(r["operator_applications"]) == 2 * 6 * 8 + 1 for r in cold)
    assert all(float(r["nfe"]) <= 9.0 for r in rows)
    assert {"psnr_mean", "psnr_std", "ssim_mean", "nmse_mean", "wall_s", "pareto", "zero_filled_psnr"} <= set(rows[0])
    assert any(r["pareto"] == "True" for r in rows)
    assert (out / "frontier.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "cheapest within 0.5 dB" in printed and "frontier in" in printed
    # the expected cost, before the first run
    assert printed.index("expected: about") < printed.index("[frontier 1/4]")
    assert "dds_cold_n10_etainf         8.0 calls per item" in printed


def test_frontier_rejects_unknown_schedules(tmp_path, capsys):
    write_phantom_file(tmp_path / "val" / "v.h5", slices=1, coils=2, size=(16, 16))
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    config = predict_config(tmp_path, checkpoint, tmp_path / "val", tmp_path / "unused", logger=False)
    assert main_in_process("frontier", "--config", config, "--schedules", "warp_speed") == 2
    assert "unknown schedule(s) ['warp_speed']" in capsys.readouterr().err


def test_pareto_and_cheapest_within():
    rows = [{"schedule": name, "snr_db": 20.0, "nfe": nfe, "psnr_mean": psnr}
            for name, nfe, psnr in (("full", 600, 33.5), ("mid", 100, 33.4), ("bad", 200, 33.0), ("cheap", 25, 33.1))]
    mark_pareto(rows)
    assert [r["pareto"] for r in rows] == [True, True, False, True]
    assert cheapest_within(rows, 0.5)["schedule"] == "cheap"
    best = cheapest_within(rows, 0.2)
    assert best["schedule"] == "mid" and best["speedup"] == pytest.approx(6.0)
    assert math.isclose(cheapest_within(rows, 0.0)["nfe"], 600)


def test_a_candidate_fixes_its_whole_schedule_whatever_the_config_sets():
    """Knobs given in the config win over a preset, so a candidate resets the preset knobs it does
    not name: each runs its own schedule on any config (the reference recipe keeps the config's
    sigma_offset, as the ``reference`` preset does)."""
    from lit_sampler.tools.frontier import GRIDS, resolve_overrides
    from lit_sampler.sampling.presets import resolve_schedule
    from lit_sampler.sampling.schedules import geometric_sigmas

    sigmas = geometric_sigmas(3.0, 0.05, 12).tolist()
    config = {"preset": "balanced", "steps_each": 2, "sigma_offset": 1, "levels": 4, "init": "cg_sense", "final_denoise": False,
              "start_factor": 4.0, "noise_boost": 1.0}
    grid = {c.name: c for c in GRIDS["full"]}
    reference = resolve_schedule(sigmas, **(config | resolve_overrides(grid["reference"].overrides, sigmas)))
    assert (reference.preset, reference.levels, set(reference.steps), reference.init, reference.final_denoise) == (
        "reference", list(range(1, 12)), {3}, "reference", False)
    assert reference.sources["sigma_offset"] == "config"
    cold = resolve_schedule(sigmas, **(config | resolve_overrides(grid["cold_T1"].overrides, sigmas)))
    assert (cold.preset, cold.levels, set(cold.steps), cold.init, cold.final_denoise, cold.auto_start) == (
        None, list(range(12)), {1}, "noise", True, False)
    warm = resolve_schedule(sigmas, **(config | resolve_overrides(grid["warm_f2_d8"].overrides, sigmas)))
    assert warm.auto_start and warm.start_factor == 2.0 and warm.init == "zero_filled" and set(warm.steps) == {1}
