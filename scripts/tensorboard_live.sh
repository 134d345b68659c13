#!/usr/bin/env bash
# Live training curves, measured: runs a small training experiment (a Jigsaw++ pretext stage on
# the synthetic shapes: vgg16-small at width 0.25, 2,000 images, 6 epochs of 57 steps) in a
# scratch project and, beside it, reads the stage's TensorBoard folder with TensorBoard's own
# reader (EventAccumulator, through tests/reference/tensorboard_scalars.py) every second. Each
# line says what the reader saw (points per scalar, the last epoch's loss) and whether ktlab was
# still running; the README's "Live training curves" quotes a run of it.
# Needs the release build (`make build`) and the venv with `tensorboard` (requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${KTLAB_BIN:-target/release/ktlab}
py=${PYTHON:-.venv/bin/python}
epochs=6
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/datasets.toml" <<'EOF'
[shapes]
format = "synthetic"
image_size = 32
seed = 0
splits = { unlabeled = 2000, train = 1000, test = 1000 }
EOF
cat > "$work/live.toml" <<EOF
name = "live"
seed = 7

[stages.jigsaw]
kind = "pretext"
task = "jigsaw++"
arch = "vgg16-small"
width = 0.25
data = "shapes:unlabeled"
permutations = 10
tile_size = 19
epochs = $epochs
batch_size = 32
optimizer = "adam"
lr = 0.001
EOF
t0=$(date +%s.%N)
"$bin" run "$work/live.toml" --store "$work/store" --results "$work/results" >"$work/run.log" 2>&1 &
pid=$!
until dir=$(compgen -G "$work/store/tensorboard/pretext/*"); do
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$work/run.log"
        exit 1
    fi
    sleep 0.1
done
echo "event folder: ${dir#"$work"/}"
"$py" tests/reference/tensorboard_scalars.py "$dir" --watch 1 --until-points "$epochs" --pid "$pid" --t0 "$t0"
status=0
wait "$pid" || status=$?
echo "ktlab run exited ($status) at $(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }') s"
grep -E "epoch [0-9]+/|computed" "$work/run.log" | tail -n 3
exit "$status"
