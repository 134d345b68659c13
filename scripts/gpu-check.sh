#!/usr/bin/env bash
# GPU check: runs the ktlab binary built on a development machine (no build here) against
# this machine's own libtorch 2.11 (the `torch` of its python3; see DEVELOPERS.md), and
# prints the figures to record in docs/BENCHMARKS.md:
#   1. the quickstart on CUDA (`--set device=cuda`), from an empty store, with its wall time;
#   2. `ktlab kmeans --device cuda` on seeded Gaussian-mixture matrices (the benchmark's
#      sizes and the paper's scale, N = 1,281,167, D = 256, K = 2,000), 10 iterations, with
#      the whole-process wall time and the command's own clustering time, beside the same
#      command on the CPU for the smallest size.
#
#   scripts/gpu-check.sh                 # everything (about 5 minutes on one H200)
#   SIZES=50000x256x1000 scripts/gpu-check.sh
#   DEVICE=cpu QUICKSTART=0 SIZES=2000x16x10 scripts/gpu-check.sh   # a smoke test of the script
#
# Needs: target/release/ktlab and target/release/ktlab-engine beside it (carried from the
# development machine; `ktlab` hands the commands that compute to the engine), python3 with
# torch 2.11 and numpy, an NVIDIA GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KTLAB:-target/release/ktlab}
SIZES=${SIZES:-50000x256x1000,200000x128x2000,1281167x256x2000}
ITERATIONS=${ITERATIONS:-10}
DEVICE=${DEVICE:-cuda}
QUICKSTART=${QUICKSTART:-1}
WORK=${WORK:-$(mktemp -d)}
torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
torch_version=$(python3 -c 'import torch; print(torch.__version__)')
case "$torch_version" in
  2.11.*) ;;
  *) echo "this machine's torch is $torch_version; ktlab is built for libtorch 2.11" >&2; exit 2 ;;
esac
# The binary's runpath names the development machine's libtorch; this one's comes first.
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_WAIT_POLICY=PASSIVE
echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
echo "$(nproc) CPU cores; torch $torch_version from $torch_lib"
"$BIN" --version
echo "CUDA devices seen by the engine: $("$BIN" cuda-devices)"

seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

if [ "$QUICKSTART" = 1 ]; then
  echo "== quickstart on $DEVICE"
  start=$(date +%s%N)
  "$BIN" --store "$WORK/store" --results "$WORK/results" run experiments/quickstart.toml --set device="$DEVICE"
  end=$(date +%s%N)
  echo "quickstart on $DEVICE: $(seconds "$start" "$end") s wall from an empty store"
fi

echo "== k-means on $DEVICE ($ITERATIONS iterations, random init)"
IFS=',' read -ra sizes <<< "$SIZES"
first=1
for size in "${sizes[@]}"; do
  IFS='x' read -r n d k <<< "$size"
  data="$WORK/x-$size.npy"
  python3 - "$n" "$d" "$k" "$data" <<'PY'
import sys
import numpy as np
n, d, k, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
centres = rng.standard_normal((k, d), dtype=np.float32)
x = np.empty((n, d), dtype=np.float32)
for s in range(0, n, 100_000):
    e = min(n, s + 100_000)
    x[s:e] = centres[rng.integers(0, k, e - s)] + rng.standard_normal((e - s, d), dtype=np.float32)
np.save(path, x)
PY
  devices=("$DEVICE")
  if [ "$first" = 1 ] && [ "$DEVICE" != cpu ]; then devices=("$DEVICE" cpu); fi
  for device in "${devices[@]}"; do
    start=$(date +%s%N)
    "$BIN" kmeans "$data" --k "$k" --iterations "$ITERATIONS" --init random --seed 0 \
      --device "$device" --out "$WORK/out-$size-$device" | tail -n 2
    end=$(date +%s%N)
    echo "kmeans $size on $device: $(seconds "$start" "$end") s wall (whole process, loading included)"
  done
  first=0
  rm -f "$data"
done
