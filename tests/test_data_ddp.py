"""Two-process DDP prediction (CPU, gloo) through a real Lightning Trainer: every item is served
to exactly one rank, none twice, none dropped, with an item count that does not divide by 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import BasePredictionWriter
    from lit_sampler.datamodules import FastMRIDataModule


    class KeysModule(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))  # DDP needs a parameter

        def predict_step(self, batch, batch_idx):
            if batch.is_padding:
                return None  # a rank that would otherwise get no batch
            return list(batch.item_key)


    class KeyWriter(BasePredictionWriter):
        def __init__(self, out):
            super().__init__(write_interval="batch")
            self.out, self.keys, self.indices = out, [], []

        def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
            self.padding = getattr(self, "padding", 0) + (prediction is None)
            self.keys.extend(prediction or [])
            self.indices.append(batch_indices)

        def on_predict_epoch_end(self, trainer, pl_module):
            with open(f"{self.out}/rank{trainer.global_rank}.json", "w") as f:
                json.dump({"world": trainer.world_size, "keys": self.keys, "batch_indices": self.indices,
                           "padding": getattr(self, "padding", 0)}, f)


    if __name__ == "__main__":
        data, out, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
        dm = FastMRIDataModule(data, snr_range=[None, 10.0, 5.0], batch_size=batch_size)
        trainer = pl.Trainer(
            accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[KeyWriter(out)],
        )
        trainer.predict(KeysModule(), datamodule=dm, return_predictions=False)
    """
)


def run_ddp(tmp_path: Path, data: Path, batch_size: int, timeout: float = 150):
    script = tmp_path / "ddp_predict.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"out_bs{batch_size}"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for var in ("MASTER_PORT", "MASTER_ADDR", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK"):
        env.pop(var, None)  # Lightning then picks a free port and launches its own ranks
    proc = subprocess.run(
        [sys.executable, str(script), str(data), str(out), str(batch_size)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )
    results = {p.name: json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))}
    return proc, results


@pytest.fixture
def odd_data(tmp_path, phantom_file):
    folder = tmp_path / "data"
    phantom_file(folder / "a.h5", slices=3, coils=2, size=(16, 16))
    phantom_file(folder / "b.h5", slices=2, coils=2, size=(16, 16))
    phantom_file(folder / "c.h5", slices=2, size=(15, 15), single_coil=True)  # another shape group
    return folder


def test_ddp_predict_serves_each_item_exactly_once(tmp_path, odd_data):
    from lit_sampler.datamodules import FastMRIDataModule

    dm = FastMRIDataModule(str(odd_data), snr_range=[None, 10.0, 5.0], batch_size=2)
    dm.setup()
    expected = set(dm.items)
    # 21 items (odd) in 11 batches (odd: the ranks get 6 and 5 batches, the last of a shape group short)
    assert len(expected) == 21 and len(dm.predict_batches()) == 11
    proc, results = run_ddp(tmp_path, odd_data, batch_size=2)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert sorted(results) == ["rank0.json", "rank1.json"]
    keys0, keys1 = results["rank0.json"]["keys"], results["rank1.json"]["keys"]
    assert results["rank0.json"]["world"] == 2
    assert len(keys0) + len(keys1) == len(expected)
    assert set(keys0) | set(keys1) == expected and not set(keys0) & set(keys1)
    # Lightning strides whole batches over ranks: rank r gets batches r, r + 2, ...
    batches = dm.predict_batches()
    assert keys0 == [k for b in batches[0::2] for k in b]
    assert keys1 == [k for b in batches[1::2] for k in b]
    assert results["rank1.json"]["batch_indices"] == [[1], [3], [5], [7], [9]]


def test_ddp_with_fewer_batches_than_ranks_pads_the_idle_rank(tmp_path, phantom_file):
    """Lightning's UnrepeatedDistributedSampler asserts that every rank gets at least one batch
    (pytorch_lightning/overrides/distributed.py; without padding, rank 1 dies with that
    AssertionError and rank 0 with a gloo "Connection closed by peer"). The DataModule pads the
    batch list with a {"padding": True} batch, so the idle rank runs one empty step."""
    folder = tmp_path / "one"
    phantom_file(folder / "a.h5", slices=1, coils=2, size=(16, 16))
    proc, results = run_ddp(tmp_path, folder, batch_size=8)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert results["rank0.json"]["keys"] == ["a.h5|0|snr_inf|0", "a.h5|0|snr_10dB|0", "a.h5|0|snr_5dB|0"]
    assert results["rank1.json"]["keys"] == [] and results["rank1.json"]["padding"] == 1
