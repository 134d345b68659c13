#!/usr/bin/env bash
# GPU check (issue #25): runs the ktlab binaries built on a development machine (no build
# here) against this machine's own libtorch 2.11 (the `torch` of its python3; see
# DEVELOPERS.md), prints every figure as a `RESULT <name>: <value>` line, and ends with a
# summary table of them all. Sections, most important first (SECTIONS picks some):
#   stages        every stage kind on $DEVICE (tests/data/keys/fixture.toml: every kind and
#                 pretext task), then the quickstart, each from an empty store: wall time,
#                 exit code, the entries computed
#   agreement     the CPU against $DEVICE on the same inputs: `ktlab kmeans` from the same
#                 initial centroids (assignments >= 99.9 % the same, final inertia within
#                 1e-4 relative); the linear and kNN probe accuracies of one small
#                 experiment run on each (within 2 and 1 points); store keys by device class
#                 (`ktlab plan`); a training stage killed with SIGKILL after its first
#                 checkpoint resumes from it and ends as an uninterrupted run does
#   kmeans-speed  `ktlab kmeans --device $DEVICE` (the whole process, and per iteration from
#                 its log) against the same Lloyd iteration in PyTorch on the device
#                 (scripts/kmeans_torch.py), 10 iterations, at SIZES (NxDxK; the last is the
#                 paper's scale, N = 1,281,167, D = 256, K = 2,000), the first also on the CPU
#   train-speed   images/s of a training step, ktlab's bench (target/release/train_step)
#                 against PyTorch eager (benches/train_step.py), same network, batch and
#                 device, in fp32 and under bf16 and fp16 autocast; alternating (ktlab,
#                 PyTorch, ktlab, PyTorch), medians, ratio
# A check that fails prints FAIL and the script goes on to the next; it exits 0 with the
# summary (2 only for a wrong torch or an unknown section). With DEVICE=cpu the CPU-vs-device
# comparisons run the CPU against itself: a test of the script, with TINY=1 for small sizes.
# Everything is written under $WORK (a new temporary folder unless set); the log and the
# summary also go to $OUT when it is set ($OUT/gpu-check.log, $OUT/summary.txt).
#
#   scripts/gpu-check.sh                                  # everything (~5.5 minutes on one H200)
#   SECTIONS=stages,agreement scripts/gpu-check.sh
#   SECTIONS=kmeans-speed SIZES=50000x256x1000 scripts/gpu-check.sh
#   DEVICE=cpu TINY=1 PYTHON=.venv/bin/python scripts/gpu-check.sh   # a smoke test on a CPU (~2.5 min
#                                                                    # on 2 cores; QUICKSTART=1: +3 min)
#
# Estimated time on one H200 (~60 TFLOP/s fp32, ~700 bf16; 16 cores), from the CPU runs
# here (2 cores: fixture 50 s, quickstart 190 s, probe experiment 25 s) and the work each
# part does: stages ~60 s (small networks at 32 px: per-step launches, process start and
# CUDA context dominate); agreement ~60 s (k-means of 200,000 x 128 at K = 1,000 ~3 s per
# device; the probe experiment ~5 s on 16 cores; three runs of the 6-epoch training stage,
# ~1 s per epoch); kmeans-speed ~60 s (a paper-scale iteration is 2 N K D = 1.3 TFLOP,
# ~25 ms: generating the 1.3 GB matrix and loading it twice dominate); train-speed ~150 s
# (24 processes of ~4-6 s: start-up, CUDA context, cuDNN, 3 warm-up and 20 timed steps; a
# vgg16 step at batch 64 is 3.0 TFLOP, alexnet's at batch 256 0.5). In all ~5.5 minutes.
#
# Needs: target/release/ktlab and target/release/ktlab-engine beside it, and
# target/release/train_step (carried from the development machine; `ktlab` hands the
# commands that compute to the engine), python3 with torch 2.11 and numpy, an NVIDIA GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KTLAB:-target/release/ktlab}
TRAIN_BENCH=${TRAIN_BENCH:-target/release/train_step}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SECTIONS=${SECTIONS:-stages,agreement,kmeans-speed,train-speed}
if [ "${TINY:-0}" = 1 ]; then
  : "${QUICKSTART:=0}" "${AGREE_KMEANS:=5000x16x20}" "${PROBE_IMAGES:=400x400}" "${PROBE_EPOCHS:=1}"
  : "${RESUME_IMAGES:=1000}" "${SIZES:=2000x16x10,5000x32x50}" "${TRAIN_STEPS:=2}"
  : "${TRAIN_CONFIGS:=alexnet-small:0.5:32:16,vgg16-small:0.25:32:8}"
fi
QUICKSTART=${QUICKSTART:-1}                          # 0: the stages section without the quickstart
ITERATIONS=${ITERATIONS:-10}                         # Lloyd iterations of every k-means
AGREE_KMEANS=${AGREE_KMEANS:-200000x128x1000}        # NxDxK of the k-means agreement
PROBE_IMAGES=${PROBE_IMAGES:-5000x2000}              # train x test images of the probe agreement
PROBE_EPOCHS=${PROBE_EPOCHS:-3}                      # epochs of the model it probes
RESUME_IMAGES=${RESUME_IMAGES:-20000}                # images per epoch of the killed training stage
RESUME_EPOCHS=${RESUME_EPOCHS:-6}
SIZES=${SIZES:-50000x256x1000,200000x128x2000,1281167x256x2000}
TRAIN_CONFIGS=${TRAIN_CONFIGS:-alexnet:1:224:256,vgg16:1:224:64}   # arch:width:image size:batch
TRAIN_PRECISIONS=${TRAIN_PRECISIONS:-fp32,bf16,fp16}
TRAIN_ROUNDS=${TRAIN_ROUNDS:-2}
TRAIN_STEPS=${TRAIN_STEPS:-20}
WORK=${WORK:-$(mktemp -d)}
ALL_SECTIONS=(stages agreement kmeans-speed train-speed)
IFS=',' read -ra wanted <<< "$SECTIONS"
for s in "${wanted[@]}"; do
  case " ${ALL_SECTIONS[*]} " in
    *" $s "*) ;;
    *) echo "unknown section $s (expected some of: ${ALL_SECTIONS[*]})" >&2; exit 2 ;;
  esac
done
torch_lib=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
torch_version=$("$PYTHON" -c 'import torch; print(torch.__version__)')
case "$torch_version" in
  2.11.*) ;;
  *) echo "this machine's torch is $torch_version; ktlab is built for libtorch 2.11" >&2; exit 2 ;;
esac
# The binary's runpath names the development machine's libtorch; this one's comes first.
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$WORK" ${OUT:+"$OUT"}
LOG=${OUT:-$WORK}/gpu-check.log
SUMMARY=${OUT:-$WORK}/summary.txt
: > "$SUMMARY"

seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

section() { echo; echo "== $(date -u '+%F %T') $1"; }

# result NAME VALUE...: one figure, printed for grep and kept for the summary.
result() {
  local name=$1
  shift
  echo "RESULT $name: $*"
  printf '%s\t%s\n' "$name" "$*" >> "$SUMMARY"
}

# results PREFIX: each `name: value` line of a helper script (stdin) becomes RESULT PREFIX.name;
# RESULT lines already recorded pass through.
results() {
  local line
  while IFS= read -r line; do
    case "$line" in
      "RESULT "*) echo "$line" ;;
      *": "*) result "$1.${line%%: *}" "${line#*: }" ;;
      *) echo "$line" ;;
    esac
  done
}

# part NAME COMMAND...: one check, in a subshell that stops at its first failing command;
# its outcome and time become RESULT NAME, FAIL when it failed, and the script goes on.
part() {
  local name=$1 rc start
  shift
  echo "-- $name"
  start=$(date +%s%N)
  set +e
  (set -e; "$@")
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then
    result "$name" "ok ($(seconds "$start" "$(date +%s%N)") s)"
  else
    result "$name" "FAIL (exit $rc after $(seconds "$start" "$(date +%s%N)") s)"
  fi
}

# timed NAME COMMAND...: runs a command and records NAME.wall_s and NAME.exit; returns its
# exit code.
timed() {
  local name=$1 rc=0 start
  shift
  start=$(date +%s%N)
  "$@" || rc=$?
  result "$name.wall_s" "$(seconds "$start" "$(date +%s%N)")"
  result "$name.exit" "$rc"
  return "$rc"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# make_matrix N D K PATH: a seeded Gaussian mixture (K centres from N(0, 1)^D, unit noise).
make_matrix() {
  "$PYTHON" - "$@" <<'PY'
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
}

# The experiments of the agreement section, on a synthetic dataset of the sizes asked for.
write_experiments() {
  local probe_train probe_test
  IFS=x read -r probe_train probe_test <<< "$PROBE_IMAGES"
  cat > "$WORK/datasets.toml" <<EOF
[gpu]
format = "synthetic"
image_size = 32
seed = 0
splits = { train = $probe_train, test = $probe_test, resume = $RESUME_IMAGES }
EOF
  cat > "$WORK/probes.toml" <<EOF
name = "gpu-probes"
seed = 0

# Trained on the CPU on both sides (the stage's own device), so that both probe one model.
[stages.model]
kind = "train"
device = "cpu"
arch = "alexnet-small"
width = 0.5
data = "gpu:train"
labels = "truth"
epochs = $PROBE_EPOCHS
batch_size = 64

[stages.linear]
kind = "linear-probe"
model = "model"
layers = ["conv3", "conv5"]
train = "gpu:train"
test = "gpu:test"

[stages.knn]
kind = "knn-probe"
model = "model"
layers = ["conv3", "conv5"]
train = "gpu:train"
test = "gpu:test"
EOF
  cat > "$WORK/resume.toml" <<EOF
name = "gpu-resume"
seed = 0

[stages.model]
kind = "train"
arch = "alexnet-small"
width = 0.5
data = "gpu:resume"
labels = "truth"
epochs = $RESUME_EPOCHS
batch_size = 128
EOF
}

# The second side of a CPU-vs-device comparison: the device, or the CPU again.
other_side() { if [ "$DEVICE" = cpu ]; then echo cpu-again; else echo "$DEVICE"; fi; }

device_of() { if [ "$1" = cpu-again ]; then echo cpu; else echo "$1"; fi; }

machine() {
  section machine
  result machine.gpu "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo none)"
  result machine.cpus "$(nproc)"
  result machine.torch "$torch_version from $torch_lib"
  result machine.ktlab "$("$BIN" --version)"
  result machine.cuda_devices "$("$BIN" cuda-devices || echo '?')"
  result machine.device "$DEVICE"
  result machine.work "$WORK"
}

stages_fixture() {
  local dir=$WORK/stages rc=0
  timed stages.fixture "$BIN" --store "$dir/store" --results "$dir/results" --datasets datasets.toml \
    run tests/data/keys/fixture.toml --set device="$DEVICE" 2>&1 | tee "$dir.log" || rc=$?
  result stages.fixture.instances "$(grep -E '^[0-9]+ computed' "$dir.log" | tail -n 1)"
  result stages.fixture.entries "$(find "$dir/store" -mindepth 3 -maxdepth 3 -name manifest.json \
    | awk -F/ '{ print $(NF - 2) }' | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')"
  result "stages.fixture.keyed_$DEVICE" "$(grep -l "\"device\": \"$DEVICE\"" "$dir"/store/*/*/manifest.json | wc -l)" \
    "of $(find "$dir/store" -mindepth 3 -maxdepth 3 -name manifest.json | wc -l) entries"
  return "$rc"
}

stages_quickstart() {
  local dir=$WORK/quickstart rc=0
  timed stages.quickstart "$BIN" --store "$dir/store" --results "$dir/results" \
    run experiments/quickstart.toml --set device="$DEVICE" 2>&1 | tee "$dir.log" || rc=$?
  result stages.quickstart.instances "$(grep -E '^[0-9]+ computed' "$dir.log" | tail -n 1)"
  return "$rc"
}

agreement_kmeans() {
  local n d k side device data=$WORK/agree.npy
  IFS=x read -r n d k <<< "$AGREE_KMEANS"
  make_matrix "$n" "$d" "$k" "$data"
  # `--init random` draws the k initial rows on the host (init_random in
  # src/cluster/kmeans.rs: rand's index::sample from a ChaCha stream seeded by --seed), then
  # gathers them with index_select on the matrix's device: both runs start from the same
  # centroids, bit for bit (inertia.csv's row 0 then differs only by the rounding of the
  # distances to them).
  for side in cpu "$(other_side)"; do
    device=$(device_of "$side")
    timed "agreement.kmeans.$side" "$BIN" kmeans "$data" --k "$k" --iterations "$ITERATIONS" \
      --init random --seed 0 --device "$device" --out "$WORK/agree-$side"
  done
  "$PYTHON" scripts/compare_kmeans.py "$WORK/agree-cpu" "$WORK/agree-$(other_side)" | results agreement.kmeans
  rm -f "$data"
}

agreement_probes() {
  local side
  for side in cpu "$(other_side)"; do
    timed "agreement.probes.$side" "$BIN" --store "$WORK/probes-$side/store" --results "$WORK/probes-$side/results" \
      --datasets "$WORK/datasets.toml" run "$WORK/probes.toml" --set device="$(device_of "$side")"
  done
  # The model stage computes on the CPU on both sides (its `device`): one model, the same
  # key and the same bytes, probed on the CPU and on the device.
  result agreement.probes.same_model "$(cmp -s "$WORK"/probes-cpu/store/train/*/model.safetensors \
    "$WORK/probes-$(other_side)"/store/train/*/model.safetensors && echo yes || echo 'no: FAIL')"
  result agreement.probes.model_final_loss "$(tail -n 1 "$WORK"/probes-cpu/store/train/*/epochs.csv | cut -d, -f2) vs" \
    "$(tail -n 1 "$WORK/probes-$(other_side)"/store/train/*/epochs.csv | cut -d, -f2)"
  "$PYTHON" scripts/compare_results.py "$WORK/probes-cpu/results/gpu-probes/results.csv" \
    "$WORK/probes-$(other_side)/results/gpu-probes/results.csv" --tolerance linear=2 --tolerance knn=1 \
    | results agreement.probes
}

# Mixed precision on a training stage: the probe experiment's model trained on $DEVICE in
# fp32, then under bf16 and fp16 autocast (fp16 with loss scaling): final training loss and
# probe accuracies against fp32's (different trainings: a report, with a loose 5 points; on
# the CPU only bf16, as fp16 has few CPU kernels).
agreement_precision() {
  local precision ok=1 dir
  local precisions=(fp32 bf16 fp16)
  if [ "$DEVICE" = cpu ]; then precisions=(fp32 bf16); fi
  for precision in "${precisions[@]}"; do
    dir=$WORK/precision-$precision
    if ! timed "agreement.precision.$precision" "$BIN" --store "$dir/store" --results "$dir/results" \
      --datasets "$WORK/datasets.toml" run "$WORK/probes.toml" --set device="$DEVICE" \
      --set stages.model.device="$DEVICE" --set stages.model.precision="$precision"; then
      ok=0
      continue
    fi
    result "agreement.precision.$precision.final_loss" "$(tail -n 1 "$dir"/store/train/*/epochs.csv | cut -d, -f2)"
    if [ "$precision" != fp32 ]; then
      "$PYTHON" scripts/compare_results.py "$WORK/precision-fp32/results/gpu-probes/results.csv" \
        "$dir/results/gpu-probes/results.csv" --tolerance linear=5 --tolerance knn=5 \
        | results "agreement.precision.$precision" || ok=0
    fi
  done
  [ "$ok" = 1 ]
}

agreement_keys() {
  "$PYTHON" scripts/device_keys.py tests/data/keys/fixture.toml --ktlab "$BIN" --store "$WORK/keys-store" \
    | results agreement.keys
}

# A training stage killed with SIGKILL once its first checkpoint exists: the next run must
# say it resumes from it and end as an uninterrupted run in another store does (bit for bit
# on the CPU; on CUDA cuDNN may choose nondeterministic kernels: the final losses are shown).
agreement_resume() {
  local killed=$WORK/resume-killed whole=$WORK/resume-whole pid rc=0 ckpt= entry note same ok=1
  local run=("$BIN" --datasets "$WORK/datasets.toml" run "$WORK/resume.toml" --set device="$DEVICE")
  mkdir -p "$killed" "$whole"
  "${run[@]}" --store "$killed/store" --results "$killed/results" > "$killed/first.log" 2>&1 &
  pid=$!
  # The trainer writes <store>/checkpoints/<key>/epoch-NNNNN.safetensors at the end of every
  # epoch, by rename, so one that exists is whole (src/train/trainer.rs, src/store/entry.rs).
  while kill -0 "$pid" 2>/dev/null; do
    ckpt=$(compgen -G "$killed/store/checkpoints/*/epoch-*.safetensors" | head -n 1 || true)
    if [ -n "$ckpt" ]; then break; fi
    sleep 0.02
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  cat "$killed/first.log"
  if [ -z "$ckpt" ] || [ "$rc" != 137 ]; then
    echo "the first run ended (exit $rc) before it could be killed after a checkpoint: raise RESUME_IMAGES"
    return 1
  fi
  result agreement.resume.killed_after "$(basename "$ckpt")"
  entry=$(compgen -G "$killed/store/train/*/manifest.json" || true)
  if [ -n "$entry" ]; then
    result agreement.resume.entry_after_kill "FAIL: $entry"
    ok=0
  else
    result agreement.resume.entry_after_kill none
  fi
  timed agreement.resume.resumed "${run[@]}" --store "$killed/store" --results "$killed/results" 2>&1 | tee "$killed/second.log"
  note=$(grep -o 'resuming from the checkpoint of epoch [0-9]*' "$killed/second.log" || echo "FAIL: no resumption in its output")
  result agreement.resume.note "$note"
  case "$note" in FAIL*) ok=0 ;; esac
  timed agreement.resume.uninterrupted "${run[@]}" --store "$whole/store" --results "$whole/results" 2>&1 | tee "$whole/run.log"
  echo "epochs.csv, resumed | uninterrupted:"
  paste -d'|' "$killed"/store/train/*/epochs.csv "$whole"/store/train/*/epochs.csv
  result agreement.resume.final_loss "$(tail -n 1 "$killed"/store/train/*/epochs.csv | cut -d, -f2) resumed vs" \
    "$(tail -n 1 "$whole"/store/train/*/epochs.csv | cut -d, -f2) uninterrupted"
  if cmp -s "$killed"/store/train/*/model.safetensors "$whole"/store/train/*/model.safetensors; then
    same=yes
  elif [ "$DEVICE" = cpu ]; then
    same="no: FAIL (resumption is bitwise on the CPU)"
    ok=0
  else
    same=no
  fi
  result agreement.resume.same_model_bytes "$same"
  [ "$ok" = 1 ]
}

# The median of the intervals between consecutive `k-means iteration` events of a
# `-vv --log-format json` log of `ktlab kmeans`: one update and one assignment each, the
# device's queue drained by the convergence test that follows every assignment.
ktlab_iteration_median() {
  "$PYTHON" - "$1" <<'PY'
import json, statistics, sys
from datetime import datetime
events = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
t = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
     for e in events if e.get("fields", {}).get("message") == "k-means iteration"]
print(f"{statistics.median(b - a for a, b in zip(t, t[1:])):.4f}" if len(t) > 1 else "nan")
PY
}

kmeans_speed() {
  local size=$1 first=$2 n d k device out rc med med_ktlab med_torch start data=$WORK/x-$1.npy
  IFS=x read -r n d k <<< "$size"
  start=$(date +%s%N)
  make_matrix "$n" "$d" "$k" "$data"
  result "kmeans.$size.generate_s" "$(seconds "$start" "$(date +%s%N)")"
  local devices=("$DEVICE")
  if [ "$first" = 1 ] && [ "$DEVICE" != cpu ]; then devices+=(cpu); fi
  for device in "${devices[@]}"; do
    out=$WORK/kmeans-$size-$device
    rc=0
    timed "kmeans.$size.ktlab_$device" "$BIN" -vv --log-format json kmeans "$data" --k "$k" \
      --iterations "$ITERATIONS" --init random --seed 0 --device "$device" --out "$out" > "$out.txt" 2> "$out.jsonl" || rc=$?
    cat "$out.txt"
    if [ "$rc" != 0 ]; then tail -n 5 "$out.jsonl"; return 1; fi
    result "kmeans.$size.ktlab_$device.own_s" "$(sed -n 's/.*, \([0-9.]*\)s; wrote .*/\1/p' "$out.txt") (its printed time: loading, init and the iterations)"
    result "kmeans.$size.ktlab_$device.inertia" "$(tail -n 1 "$out/inertia.csv" | cut -d, -f2)"
    med=$(ktlab_iteration_median "$out.jsonl")
    result "kmeans.$size.ktlab_$device.iteration_median_s" "$med"
    if [ "$device" = "$DEVICE" ]; then med_ktlab=$med; fi
  done
  timed "kmeans.$size.torch_$DEVICE" "$PYTHON" scripts/kmeans_torch.py "$data" --k "$k" --iterations "$ITERATIONS" \
    --seed 0 --device "$DEVICE" > "$WORK/torch-$size.txt"
  results "kmeans.$size.torch_$DEVICE" < "$WORK/torch-$size.txt"
  med_torch=$(sed -n 's/^iteration_median_s: //p' "$WORK/torch-$size.txt")
  result "kmeans.$size.ktlab_over_torch" "$(ratio "$med_ktlab" "$med_torch") (per iteration, on $DEVICE)"
  rm -f "$data"
}

# train_speed ARCH:WIDTH:IMAGE:BATCH PRECISION: ktlab's and PyTorch's training step in turn,
# TRAIN_ROUNDS rounds, medians; both print their parameter count, which must agree.
train_speed() {
  local arch width image batch precision=$2 amp r text ok=1 name
  IFS=: read -r arch width image batch <<< "$1"
  name=train.$arch.$precision
  if [ "$precision" = fp32 ]; then amp=none; else amp=$precision; fi
  local common=(--arch "$arch" --width "$width" --image-size "$image" --batch "$batch" --device "$DEVICE"
    --threads "$(nproc)" --steps "$TRAIN_STEPS")
  local ktlab_rates=() torch_rates=() ktlab_params= torch_params=
  for ((r = 1; r <= TRAIN_ROUNDS; r++)); do
    if [ -x "$TRAIN_BENCH" ]; then
      if text=$("$TRAIN_BENCH" "${common[@]}" --precision "$precision" 2>&1); then
        ktlab_rates+=("$(sed -n 's/.* \([0-9.]*\) images\/s .*/\1/p' <<< "$text")")
        ktlab_params=$(sed -n 's/.*, \([0-9]*\) parameters).*/\1/p' <<< "$text")
      else
        ok=0
      fi
      echo "$text"
    fi
    if text=$("$PYTHON" benches/train_step.py "${common[@]}" --amp "$amp" 2>&1); then
      torch_rates+=("$(sed -n 's/.* \([0-9.]*\) images\/s .*/\1/p' <<< "$text")")
      torch_params=$(sed -n 's/.*, \([0-9]*\) parameters).*/\1/p' <<< "$text")
    else
      ok=0
    fi
    echo "$text"
  done
  if [ ! -x "$TRAIN_BENCH" ]; then
    result "$name.ktlab_ips" "FAIL: no $TRAIN_BENCH (cargo build --release --bench train_step, copied there)"
    ok=0
  elif [ "${#ktlab_rates[@]}" -gt 0 ]; then
    result "$name.ktlab_ips" "$(median "${ktlab_rates[@]}") (of ${ktlab_rates[*]})"
  fi
  if [ "${#torch_rates[@]}" -gt 0 ]; then
    result "$name.pytorch_ips" "$(median "${torch_rates[@]}") (of ${torch_rates[*]})"
  fi
  if [ "${#ktlab_rates[@]}" -gt 0 ] && [ "${#torch_rates[@]}" -gt 0 ]; then
    result "$name.ktlab_over_pytorch" "$(ratio "$(median "${ktlab_rates[@]}")" "$(median "${torch_rates[@]}")")"
    if [ "$ktlab_params" = "$torch_params" ]; then
      result "$name.parameters" "$ktlab_params in both"
    else
      result "$name.parameters" "FAIL: $ktlab_params in ktlab, $torch_params in PyTorch"
      ok=0
    fi
  fi
  [ "$ok" = 1 ]
}

section_stages() {
  part stages.fixture stages_fixture
  if [ "$QUICKSTART" = 1 ]; then part stages.quickstart stages_quickstart; fi
}

section_agreement() {
  write_experiments
  part agreement.kmeans agreement_kmeans
  part agreement.probes agreement_probes
  part agreement.precision agreement_precision
  part agreement.keys agreement_keys
  part agreement.resume agreement_resume
}

section_kmeans_speed() {
  local size first=1
  IFS=',' read -ra sizes <<< "$SIZES"
  for size in "${sizes[@]}"; do
    part "kmeans.$size" kmeans_speed "$size" "$first"
    first=0
  done
}

section_train_speed() {
  local config precision
  IFS=',' read -ra configs <<< "$TRAIN_CONFIGS"
  IFS=',' read -ra precisions <<< "$TRAIN_PRECISIONS"
  for config in "${configs[@]}"; do
    for precision in "${precisions[@]}"; do
      part "train.${config%%:*}.$precision" train_speed "$config" "$precision"
    done
  done
}

summary() {
  local width failed
  section summary
  width=$(cut -f1 "$SUMMARY" | awk '{ if (length($0) > w) w = length($0) } END { print w + 0 }')
  failed=$(cut -f2 "$SUMMARY" | grep -c FAIL || true)
  awk -F'\t' -v w="$width" '{ printf("%-" w "s  %s\n", $1, $2) }' "$SUMMARY" > "$WORK/summary.table"
  echo "$failed results with FAIL" >> "$WORK/summary.table"
  cp "$WORK/summary.table" "$SUMMARY"
  cat "$SUMMARY"
}

main() {
  local start s
  start=$(date +%s%N)
  machine
  for s in "${ALL_SECTIONS[@]}"; do
    case ",$SECTIONS," in
      *",$s,"*) section "$s"; "section_${s//-/_}" ;;
    esac
  done
  result total_wall_s "$(seconds "$start" "$(date +%s%N)")"
  summary
}

main 2>&1 | tee "$LOG"
