#!/usr/bin/env bash
# The CIFAR-10 study: runs the decisive files (05, 06, 07, 10) or the files given in order
# with `ktlab run`, results under results/<experiment name>/, and records in each results
# folder the command, the machine and the measured wall time (run.txt). The secondary
# evaluations (08, 09) run with `make cifar10-more`, the first suite (01-04, the historical
# record of the first design) with `make cifar10-first`.
#
#   make cifar10                                         # the decisive files: 05, 06, 07, 10
#   make cifar10-more                                    # the other evaluations: 08, 09
#   make cifar10-first                                   # the first suite, 01-04
#   scripts/cifar10.sh experiments/cifar10/02-main.toml  # one file
#
# Each file finishes within about an hour on 2 CPU cores from an empty store; a file
# whose stages are already in the store (shared pretext models) only computes the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KTLAB:-target/release/ktlab}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(experiments/cifar10/0[5-7]-*.toml experiments/cifar10/10-*.toml)
fi
for f in "${files[@]}"; do
  name=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$f" | head -n 1)
  cmd="$BIN run $f --results results"
  echo "== $cmd"
  start=$(date +%s%N)
  $cmd
  end=$(date +%s%N)
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  {
    # The documented command (README), not this machine's paths.
    case "$f" in
      */0[1-4]-*) echo "command: make cifar10-first (scripts/cifar10.sh $f: ktlab run $f --results results)" ;;
      */0[5-7]-* | */10-*) echo "command: make cifar10 (scripts/cifar10.sh $f: ktlab run $f --results results)" ;;
      */0[89]-*) echo "command: make cifar10-more (scripts/cifar10.sh $f: ktlab run $f --results results)" ;;
      *) echo "command: scripts/cifar10.sh $f (ktlab run $f --results results; not part of make cifar10)" ;;
    esac
    echo "ktlab: $($BIN --version)"
    echo "wall_seconds: $wall"
    echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
    echo "OMP_WAIT_POLICY: $OMP_WAIT_POLICY"
  } > "results/$name/run.txt"
  echo "== $f: ${wall}s"
done
