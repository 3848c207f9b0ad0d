#!/usr/bin/env python
"""Throughput benchmark: the real ``predict`` path against a bare reference loop.

In one process, on the same random-weight network (saved to a temporary checkpoint, so the real
``checkpoint:`` loading path runs) and the same synthetic fastMRI-format data (phantoms written to a
temporary folder), it times

* ``bare``: the reference pipeline's loop (Aali/Tamir ``annealedLangevin.py``, REFERENCE.md §1.2):
  one slice and one SNR at a time, batch 1, fp32, eager, complex state, the network fed
  ``view_as_real(x).permute(0, 3, 1, 2)``, ``x ← x + α(s − g) + sqrt(αβ)·z`` written inline with
  :class:`~lit_sampler.physics.operators.MultiCoilMRI`, no Lightning. It uses the module's per-item noise
  streams, so on the same seeds it reproduces the module's samples (to rounding);
* the real path, ``Trainer.predict`` with :class:`~lit_sampler.lightning.LangevinSampler`,
  :class:`~lit_sampler.datamodules.FastMRIDataModule` and :class:`~lit_sampler.outputs.ReconstructionWriter`
  (data loading, chains, metrics, shards, volumes and figure all included in the wall time),
  for each configuration of the sweep: batch size (items per forward, items = slices × SNRs ×
  samples), precision, ``channels_last``, Trainer ``inference_mode``, ``batch_invariant``,
  ``compile`` (+ ``compile_mode``) and ``cuda_graph``.

Per configuration it reports image-evaluations per second (one image through the network once;
a slice at the reference settings costs (L − k)·T of them), items (slices) per second, ms per
image-evaluation, the fraction of the wall time spent inside the score network (measured by timing
every network call: exact on CPU; on GPU only with ``--instrument``, because the synchronisations
it needs perturb asynchronous execution; and estimated from standalone calls of the same shapes
on every device), achieved FLOP/s (FLOPs per image-evaluation counted with
``torch.utils.flop_counter`` on a meta-device copy), peak memory (RSS on CPU, sampled every 5 ms;
``max_memory_allocated`` on GPU), the speed-up over the bare loop and the seconds one slice would
take at the reference settings (``--reference-evals``, default (2311 − 1156)·3 = 3465, extrapolated
from the chain's time per image-evaluation). It then checks memory scaling (peak over batch sizes;
memory after each batch of a many-item run; ``--no-memory`` skips it) and, on GPU, that the chain
makes no host-device synchronisation (``torch.cuda.set_sync_debug_mode("error")``).

    python scripts/benchmark.py --quick                     # < 2 minutes on 2 CPU cores
    python scripts/benchmark.py --out bench/cpu             # the fuller CPU sweep
    python scripts/benchmark.py --preset reference --device cuda --peak-tflops 989   # see scripts/gpu_benchmark.sh

Writes ``benchmark.json`` and ``benchmark.md`` into ``--out``. See ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from lit_sampler.tools.benchmarks import PRESETS, benchmark_to_folder, default_configs, parse_config, setup_from_preset

# Setup fields settable from the command line (``--num-classes`` → ``num_classes``), with their types.
SETUP_OPTIONS = (("variant", str), ("ngf", int), ("size", int), ("coils", int), ("num-classes", int),
                 ("levels", int), ("steps-each", int), ("files", int), ("slices", int), ("samples", int),
                 ("step-size", float), ("cg-iterations", int), ("reference-evals", int),
                 ("peak-tflops", float), ("checkpoint", str), ("seed", int))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="model/data/chain preset (default: quick with --quick, else cpu)")
    parser.add_argument("--quick", action="store_true", help="short chains, fewer configurations: < 2 min on 2 CPU cores")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--config", action="append", default=None, metavar="NAME:KEY=VALUE,...",
                        help="run these configurations instead of the default sweep (repeatable; 'bare' = reference loop)")
    for name, kind in SETUP_OPTIONS:
        parser.add_argument(f"--{name}", type=kind, default=None)
    parser.add_argument("--snrs", nargs="+", default=None, help="SNRs in dB ('inf' = noiseless)")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip the memory scaling check (peak over batch sizes; memory over many items)")
    parser.add_argument("--memory-batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--memory-size", type=int, default=None,
                        help="image size of the memory check (default: 128 on CPU, where 48x48 working sets drown "
                             "in allocator noise; the benchmark size on GPU)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run each configuration this many times and keep the fastest (noisy machines)")
    parser.add_argument("--instrument", action="store_true", help="time every network call also on GPU (perturbs)")
    parser.add_argument("--deadline-s", type=float, default=None, help="skip configurations once this much time has passed")
    parser.add_argument("--out", type=Path, default=Path("benchmark_results"))
    args = parser.parse_args(argv)

    preset = args.preset or ("quick" if args.quick else "cpu")
    overrides = {key: getattr(args, key) for key in (name.replace("-", "_") for name, _ in SETUP_OPTIONS)}
    setup = setup_from_preset(preset, args.device, args.snrs, **overrides)
    configs = [parse_config(text) for text in args.config] if args.config else default_configs(setup, args.quick)
    memory_size = args.memory_size or (None if setup.device.startswith("cuda") else 96 if args.quick else 128)
    benchmark_to_folder(setup, configs, args.out, preset=preset, argv=sys.argv[1:] if argv is None else argv,
                        instrument=True if args.instrument else None,
                        memory_batch_sizes=args.memory_batch_sizes if args.memory else None,
                        memory_size=memory_size, deadline_s=args.deadline_s, repeats=args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
