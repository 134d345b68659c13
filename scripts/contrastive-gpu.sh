#!/usr/bin/env bash
# task = "contrastive" on a GPU (issue #22): the binaries built on a development machine
# (target/release/ktlab-engine, and target/release/pretext_batches copied from
# target/release/deps/) against this machine's libtorch (the `torch` of its python3), as
# scripts/gpu-check.sh runs them. Two parts, each printing `RESULT <name>: <value>` lines:
#   run     a contrastive stage on the synthetic shapes (alexnet-small, width 0.5, 2,000
#           images, 10 epochs, batch 256) on $DEVICE in fp32 and bf16, its model read by
#           features -> k-means, a linear and a kNN probe; the same on the CPU for the
#           held-out retrieval and the probes' accuracies side by side
#   bench   contrastive batch assembly on the host (2 and 16 threads) against alexnet-small's
#           contrastive training step on the device (batch 256, widths 0.5 and 1)
# Everything is written under $WORK (a new temporary folder unless set); the log also goes
# to $OUT when it is set.
#
#   scripts/contrastive-gpu.sh            # ~2 minutes on one H200 (16 cores)
#   DEVICE=cpu EPOCHS=1 SKIP_BENCH=1 scripts/contrastive-gpu.sh   # a smoke test on a CPU
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
ENGINE=${ENGINE:-$ROOT/target/release/ktlab-engine}
BENCH=${BENCH:-$ROOT/target/release/pretext_batches}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK" || exit 2
torch_lib=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log() { echo "$@"; [ -n "${OUT:-}" ] && echo "$@" >> "$OUT/contrastive-gpu.log"; true; }
cd "$WORK" || exit 2
cat > datasets.toml <<'T'
[shapes]
format = "synthetic"
image_size = 32
seed = 0
splits = { unlabeled = 2000, train = 1000, test = 1000 }
T
experiment() { # name device precision
  cat <<T
name = "$1"
seed = 7
device = "$2"
[stages.pretext]
kind = "pretext"
task = "contrastive"
arch = "alexnet-small"
width = 0.5
data = "shapes:unlabeled"
epochs = ${EPOCHS:-10}
batch_size = 256
optimizer = "adam"
lr = 0.001
precision = "$3"
[stages.feat]
kind = "features"
model = "pretext"
layer = "conv5"
data = "shapes:train"
[stages.clusters]
kind = "kmeans"
features = "feat"
k = 10
[stages.probe]
kind = "linear-probe"
model = "pretext"
layers = ["conv3", "conv5"]
train = "shapes:train"
test = "shapes:test"
[stages.knn]
kind = "knn-probe"
model = "pretext"
layers = ["conv5"]
train = "shapes:train"
test = "shapes:test"
T
}
for run in "gpu-fp32 $DEVICE fp32" "gpu-bf16 $DEVICE bf16" "cpu-fp32 cpu fp32"; do
  set -- $run
  experiment "$1" "$2" "$3" > "$1.toml"
  start=$(date +%s.%N)
  "$ENGINE" --store store --results results run "$1.toml" > "$1.log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  log "$(grep -E 'done pretext|FAIL|error' "$1.log" | head -3)"
  log "RESULT $1 exit: $rc"
  log "RESULT $1 wall s: $(awk "BEGIN { printf \"%.1f\", $end - $start }")"
  [ -f "results/$1/results.csv" ] && while IFS=, read -r _ stage layer metric value; do
    [ "$stage" = stage ] || log "RESULT $1 $stage ${layer:--} $metric: $value"
  done < "results/$1/results.csv"
done
[ "${SKIP_BENCH:-0}" = 1 ] && exit 0
for threads in 2 16; do
  log "$("$BENCH" --task contrastive --cuda --threads "$threads" --batch 256 --steps 20 2>&1)"
done
