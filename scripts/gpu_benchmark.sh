#!/usr/bin/env bash
# The GPU benchmark of docs/benchmarks.md in one prepared run (written for one H200; any CUDA GPU works).
#
# The reference architecture: NCSNv2Deepest, ngf 128, 2 channels, 384×384, 2311 geometric levels
# σ 232 → 0.0066, random weights (timing does not depend on them), 16-coil synthetic phantoms with
# in-file maps, 4× equispaced mask, SNRs {∞, 30, 20, 10} dB × 4 slices = 16 items. The full chain of
# configs/fastmri.yaml (levels 1156 … 2310, T = 3) is too long to time: the script times the LAST 20
# levels × T = 3 and extrapolates, per slice (one slice at one SNR):
#
#     s/slice = (chain seconds / image-evaluations timed) × (2311 − 1156) × 3      [3465 evaluations]
#
# "chain seconds" is the time inside predict_step (the whole Langevin chain of a batch, data consistency
# and per-level tracking included; the per-run data loading, shard writing and volume assembly are left
# out because at 20 levels they would be counted 58 times too often). The bare loop is timed on 1 item.
#
# Configurations (in this order; a configuration that would start after DEADLINE_S seconds is skipped):
#   bare                  the reference loop: one slice and one SNR at a time, fp32 (TF32 convolutions and
#                         cudnn.benchmark on, as the reference sets them), eager
#   fp32_b16              the real path, 16 items per forward, fp32, channels-first
#   bf16_b16              + bf16-mixed autocast (network only; FFTs, data consistency, update in fp32)
#   bf16_b16_cl           + channels_last (the module's default)
#   fp16_b16_cl           16-mixed instead of bf16
#   bf16_b8_cl            8 items per forward (batch-size scaling)
#   bf16_b16_cl_graph     + cuda_graph: one whole Langevin step captured and replayed (UNTESTED on hardware
#                         before this run: if it fails, the error is in the log and the other rows stand)
#   bf16_b16_cl_compile   + torch.compile (default mode; the compilation is timed separately as warmup_s)
#   bf16_b16_cl_compile_ro  + torch.compile mode reduce-overhead (inductor's CUDA graphs of the network)
# Before them (so that a long compilation cannot crowd them out): the chain's host-sync check
# (set_sync_debug_mode("error") inside the chain) and the memory check (max_memory_allocated for batch
# sizes 1, 2, 4, 8 at one level; memory after each of 8 batches of 2 items).
#
# Expected wall time on an H200: ~1 min set-up (phantoms, 94 M-parameter network, checkpoint), ~2 min for
# the eager configurations, 1–3 min per torch.compile configuration: DEADLINE_S=240 and the hard
# `timeout` below keep it under 8 minutes; rows finished before a time-out are in benchmark.partial.json.
#
# Setting up the GPU machine (nothing is downloaded there; carry the wheels along):
#   # here, once:  pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#   #                -d wheels/ torch pytorch-lightning torchmetrics h5py numpy matplotlib jsonargparse \
#   #                tensorboard scipy typing_extensions   (torch: the CUDA 12 build from download.pytorch.org)
#   python -m venv /tmp/venv && . /tmp/venv/bin/activate
#   pip install --no-index --find-links wheels/ torch pytorch-lightning torchmetrics h5py numpy matplotlib \
#       jsonargparse tensorboard
#   pip install --no-index --no-deps --no-build-isolation -e .
#   OUT=/tmp/gpu_bench bash scripts/gpu_benchmark.sh          # results: $OUT/benchmark.{json,md}, $OUT/log.txt
#
# Environment knobs: OUT (results folder), PYTHON, PEAK_TFLOPS (dense bf16 peak used for the "fraction of
# peak" column; default 989 = H200/H100 SXM; H200 NVL: 835, A100: 312), DEADLINE_S, TIMEOUT_S, and for a
# smoke test of this script without a GPU: DEVICE=cpu EXTRA_ARGS="--ngf 8 --size 32 --coils 2 --slices 1
# --num-classes 20 --levels 1 --steps-each 1" DEADLINE_S=30 (GPU-only rows are then reported as skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_benchmark_results}
PYTHON=${PYTHON:-python}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
DEADLINE_S=${DEADLINE_S:-240}
TIMEOUT_S=${TIMEOUT_S:-420}
DEVICE=${DEVICE:-cuda}
EXTRA_ARGS=${EXTRA_ARGS:-}
mkdir -p "$OUT"

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
"$PYTHON" -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'lightning', pl.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA DEVICE')" \
    | tee "$OUT/env.txt"

export PYTHONUNBUFFERED=1
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/inductor_cache}
timeout --signal=INT --kill-after=20 "$TIMEOUT_S" "$PYTHON" scripts/benchmark.py \
    --preset reference --device "$DEVICE" --slices 4 --peak-tflops "$PEAK_TFLOPS" --deadline-s "$DEADLINE_S" \
    --config bare:items=1 \
    --config fp32_b16:batch_size=16,channels_last=0 \
    --config bf16_b16:batch_size=16,precision=bf16-mixed,channels_last=0 \
    --config bf16_b16_cl:batch_size=16,precision=bf16-mixed,channels_last=1 \
    --config fp16_b16_cl:batch_size=16,precision=16-mixed,channels_last=1 \
    --config bf16_b8_cl:batch_size=8,precision=bf16-mixed,channels_last=1 \
    --config bf16_b16_cl_graph:batch_size=16,precision=bf16-mixed,channels_last=1,cuda_graph=1 \
    --config bf16_b16_cl_compile:batch_size=16,precision=bf16-mixed,channels_last=1,compile=1 \
    --config bf16_b16_cl_compile_ro:batch_size=16,precision=bf16-mixed,channels_last=1,compile=1,compile_mode=reduce-overhead \
    --memory-batch-sizes 1 2 4 8 \
    --out "$OUT" $EXTRA_ARGS 2>&1 | tee "$OUT/log.txt"
