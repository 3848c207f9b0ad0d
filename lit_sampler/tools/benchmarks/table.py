"""Derived numbers of a row (rates, fractions, speed-up over the bare loop), the budget checks
and the markdown table that is printed and written to ``benchmark.md``."""

from __future__ import annotations

import json
from typing import Any, Optional

from .workload import Prepared


def derive(row: dict, prepared: Prepared, bare: Optional[dict]) -> dict:
    """``row`` with its rates, network fractions, FLOP/s and speed-up over ``bare`` added (in place)."""
    s = prepared.setup
    flops = prepared.flops_per_image_eval
    evals, wall = row["image_evals"], row["wall_s"]
    row["image_evals_per_s"] = evals / wall
    row["items_per_s"] = row["items"] / wall
    row["ms_per_image_eval"] = 1e3 * wall / evals
    row["chain_ms_per_image_eval"] = 1e3 * row["chain_s"] / evals
    row["s_per_slice_at_reference"] = row["chain_ms_per_image_eval"] * s.reference_evals / 1e3
    row["flops_per_image_eval"] = flops
    row["achieved_flops_per_s"] = flops * evals / wall
    row["chain_flops_per_s"] = flops * evals / row["chain_s"]
    if s.peak_tflops:
        row["fraction_of_peak"] = row["chain_flops_per_s"] / (s.peak_tflops * 1e12)
    net = row["network_s"]
    row["frac_in_network"] = None if net is None else min(net / wall, 1.0)
    row["frac_in_network_of_chain"] = None if net is None else min(net / row["chain_s"], 1.0)
    row["frac_in_network_standalone"] = min(row["network_standalone_s"] / wall, 1.0)
    row["fixed_s"] = wall - row["chain_s"]  # setup, data loading, shards, volumes, figure
    reference = bare if bare is not None else (row if row["kind"] == "bare" else None)
    if reference is not None:
        row["speedup_vs_bare"] = reference["ms_per_image_eval"] / row["ms_per_image_eval"]
        row["speedup_vs_bare_chain"] = reference["chain_ms_per_image_eval"] / row["chain_ms_per_image_eval"]
    return row


def budget(rows: list[dict], memory: Optional[dict]) -> dict:
    """The pass/fail checks: time outside the network, batched vs bare, memory linear and flat."""
    done = [r for r in rows if not r.get("skipped")]
    bare = next((r for r in done if r["kind"] == "bare"), None)
    predict = [r for r in done if r["kind"] == "predict" and r["precision"] in ("32-true", "32")]
    out: dict[str, Any] = {}
    timed = [r for r in predict if r.get("frac_in_network") is not None]
    if timed:
        out["outside_network_fraction"] = {r["name"]: 1 - r["frac_in_network"] for r in timed}
        out["outside_network_fraction_of_chain"] = {r["name"]: 1 - r["frac_in_network_of_chain"] for r in timed}
        out["outside_network_below_10pct"] = all(v < 0.10 for v in out["outside_network_fraction"].values())
    if bare and predict:
        batched = [r for r in predict if r["batch_size"] > 1]
        for label, subset in (("batch_invariant", [r for r in batched if r["batch_invariant"]]),
                              ("onednn", [r for r in batched if not r["batch_invariant"]])):
            if subset:
                best = min(subset, key=lambda r: r["ms_per_image_eval"])
                out[f"best_batched_{label}"] = dict(name=best["name"], ms_per_image_eval=best["ms_per_image_eval"],
                                                    bare_ms_per_image_eval=bare["ms_per_image_eval"],
                                                    at_least_as_fast_as_bare=best["ms_per_image_eval"] <= bare["ms_per_image_eval"])
    if memory and "error" not in memory:
        out["memory_linear_in_batch"] = memory["linear_in_batch"]
        out["memory_flat_over_items"] = memory["flat_over_items"]
    return out


def _fmt(value, spec: str = ".3g", scale: float = 1.0) -> str:
    if value is None:
        return "–"
    return format(value * scale, spec)


def to_markdown(report: dict) -> str:
    """The setup line, the table (one row a configuration) and the notes of ``benchmark.md``."""
    setup = report["setup"]
    meta = report["meta"]
    lines = [
        f"Setup: {setup['variant']} ngf {setup['ngf']}, {setup['size']}×{setup['size']}, {setup['coils']} coils, "
        f"{setup['num_classes']} levels of which the last {setup['levels']} × T = {setup['steps_each']} timed; "
        f"{setup['items']} items ({setup['files']} files × {setup['slices']} slices × {len(setup['snrs'])} SNRs × "
        f"{setup['samples']} samples); {report['flops_per_image_eval'] / 1e9:.3g} GFLOP per image-evaluation; "
        f"device {meta['device_name']}, torch {meta['torch']}, {meta['threads']} threads, load average "
        f"{meta['loadavg_start']:.2f} → {meta['loadavg_end']:.2f}"
        + (f"; fastest of {meta['repeats']} runs per configuration." if meta.get("repeats", 1) > 1 else "."),
        "",
        "| configuration | items | img-evals/s | items/s | ms/img-eval | chain ms/img-eval | in network | "
        f"GFLOP/s | peak mem (MB) | speed-up vs bare (wall / chain) | s/slice @ {setup['reference_evals']} evals |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if r.get("skipped"):
            lines.append(f"| `{r['name']}` {r['description']} | skipped: {r['skipped']} | | | | | | | | | |")
            continue
        frac = r["frac_in_network"]
        frac_text = f"{frac:.0%}" if frac is not None else f"≈{r['frac_in_network_standalone']:.0%}*"
        mem = r["peak_mem_bytes"] / 2**20
        lines.append(
            f"| `{r['name']}` {r['description']} | {r['items']} | {_fmt(r['image_evals_per_s'])} | "
            f"{_fmt(r['items_per_s'])} | {_fmt(r['ms_per_image_eval'])} | {_fmt(r['chain_ms_per_image_eval'])} | "
            f"{frac_text} | {_fmt(r['achieved_flops_per_s'], '.3g', 1e-9)} | {mem:.0f} | "
            f"{_fmt(r.get('speedup_vs_bare'), '.2f')}× / {_fmt(r.get('speedup_vs_bare_chain'), '.2f')}× | "
            f"{_fmt(r['s_per_slice_at_reference'], '.3g')} |"
        )
    lines += [
        "",
        "*ms/img-eval*: wall time of the whole run (data loading, chains, writing, assembly) per image-evaluation; "
        "*chain*: time inside `predict_step` only (the bare loop: its loop). *in network*: time inside the "
        "score-network calls / wall time; ≈…* = estimated from standalone calls of the same shapes (no per-call "
        "timing). *GFLOP/s*: network FLOPs / wall time. *s/slice*: chain ms/img-eval × the reference's "
        "evaluations per slice (one slice at one SNR).",
    ]
    peak = [r for r in report["results"] if r.get("fraction_of_peak") is not None]
    if peak:
        best = max(peak, key=lambda r: r["fraction_of_peak"])
        lines.append(f"\nBest fraction of the {setup['peak_tflops']} TFLOP/s peak: {best['fraction_of_peak']:.1%} "
                     f"(`{best['name']}`, chain time).")
    if report.get("memory") and "error" in report["memory"]:
        lines += ["", f"Memory check failed: {report['memory']['error']}"]
    elif report.get("memory"):
        m = report["memory"]
        lines += [
            "",
            f"Memory at {m['size']}×{m['size']} ({m['metric']}): batch sizes {m['batch_sizes']} → "
            f"{', '.join(f'{v / 2**20:.1f}' for v in m['peak_delta_bytes'])} MB; fit "
            f"{m['fit_intercept_bytes'] / 2**20:.1f} MB + {m['fit_bytes_per_item'] / 2**20:.2f} MB/item "
            f"(worst residual {m['fit_worst_relative_residual']:.0%}). {m['many_items']['items']} items in batches of "
            f"{m['many_items']['batch_size']}: memory after each batch "
            f"{', '.join(f'{v / 2**20:.1f}' for v in m['many_items']['live_after_batch_bytes'])} MB "
            f"(growth after the first batch {m['many_items']['growth_after_first_batch_bytes'] / 2**20:.2f} MB; RSS "
            f"{', '.join(f'{v / 2**20:.0f}' for v in m['many_items']['rss_after_batch_bytes'])} MB).",
        ]
    if report.get("budget"):
        lines += ["", "Budget checks: " + json.dumps(report["budget"], default=lambda v: round(v, 4))]
    return "\n".join(lines) + "\n"
