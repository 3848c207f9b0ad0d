#!/usr/bin/env python
"""Choose the compressed-sensing baselines' λ on validation data and print the ``cs_lambdas`` block.

Takes a ``predict`` config (its data, mask and SNRs; point ``--data.init_args.data_path`` at the
validation split) and any further CLI overrides, runs sigpy's L1-wavelet and TV solvers over a λ
grid on every item, and keeps per SNR the λ with the best mean PSNR. Writes a JSON record of every
PSNR tried (``--out``). The tests check that the choice never depends on test data.

    python scripts/tune_baselines.py --config configs/demo.yaml --data.init_args.data_path=demo/data/val \\
        --out docs/tuning/cs_lambdas_4x.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lit_sampler.cli import build_cli
from lit_sampler.evaluation.tuning import DEFAULT_GRID, tune_cs_lambdas


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="JSON record of the search")
    parser.add_argument("--grid", type=float, nargs="+", default=list(DEFAULT_GRID), help="λ values to try")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=["l1_wavelet", "total_variation"])
    options, rest = parser.parse_known_args(argv)
    cli = build_cli(rest + ["--trainer.logger=false"], run=False)
    datamodule = cli.datamodule
    datamodule.setup("predict")
    record = tune_cs_lambdas(datamodule.predict_dataloader(), options.methods, options.grid, options.iterations)
    print(f"tuned on {len(record['items'])} items of {len(record['files'])} files")
    print("cs_lambdas:")
    for method, by_snr in record["cs_lambdas"].items():
        inner = ", ".join(f'"{k}": {v:g}' for k, v in sorted(by_snr.items()))
        print(f"  {method}: {{{inner}}}")
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(record, indent=1, sort_keys=True))
        print(f"record in {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
