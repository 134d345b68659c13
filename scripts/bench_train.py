#!/usr/bin/env python3
"""Training speed: ktlab's training step beside the same network in PyTorch, and the
Jigsaw++ batch assembly against the training step that consumes it.

- `benches/train_step.rs` (ktlab, libtorch through tch) and `benches/train_step.py`
  (PyTorch) train `alexnet-small` and `vgg16-small` (width 0.5, batch norm, 32 px random
  images, SGD with momentum and weight decay) with the same batch size and thread count;
  each process warms up for 3 steps, then times `--steps` steps. The two alternate
  (ktlab, PyTorch, ktlab, ...) for `--rounds` rounds; medians; both print their parameter
  count, which must agree.
- `benches/pretext_batches.rs`: Jigsaw++ batches assembled on `--threads` threads (every
  tile cut, jittered, grayscaled, replaced and normalised) against the context-free
  network's training step on them, once per round.

The section `training-bench` of docs/BENCHMARKS.md is replaced with the results.

    python scripts/bench_train.py [--rounds 3] [--threads 2] [--batch 128] [--steps 20]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from bench_kmeans import blas_of, newest_bench, write_section
from bench_overhead import machine

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ["alexnet-small", "vgg16-small"]


def run(cmd):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stderr}")
    return out.stdout


def step_rate(text):
    m = re.search(r"([0-9.]+) images/s .*?(\d+) parameters", text)
    if not m:
        sys.exit(f"no images/s in: {text}")
    return float(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--pretext-batch", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    args = ap.parse_args()
    train_bin, pretext_bin = newest_bench("train_step"), newest_bench("pretext_batches")
    common = ["--batch", str(args.batch), "--width", str(args.width), "--threads", str(args.threads), "--steps", str(args.steps)]
    rates = {(arch, impl): [] for arch in ARCHS for impl in ("ktlab", "pytorch")}
    params = {}
    assembly, consume = [], {}
    for r in range(args.rounds):
        for arch in ARCHS:
            order = [("ktlab", [str(train_bin), "--arch", arch, *common]),
                     ("pytorch", [sys.executable, "benches/train_step.py", "--arch", arch, *common])]
            if r % 2:
                order.reverse()
            for impl, cmd in order:
                rate, count = step_rate(run(cmd))
                rates[(arch, impl)].append(rate)
                params.setdefault(arch, {})[impl] = count
                print(f"round {r} {arch} {impl}: {rate:.1f} images/s", flush=True)
        text = run([str(pretext_bin), "--batch", str(args.pretext_batch), "--threads", str(args.threads), "--steps", "10"])
        for line in text.splitlines():
            if m := re.match(r"assembly .*?([0-9.]+) samples/s", line):
                assembly.append(float(m.group(1)))
            elif m := re.match(r"training\s+(\S+) width (\S+) .*?([0-9.]+) samples/s", line):
                consume.setdefault(f"{m.group(1)} width {m.group(2)}", []).append(float(m.group(3)))
        print(f"round {r} pretext: {text.strip()}", flush=True)
    for arch in ARCHS:
        if params[arch]["ktlab"] != params[arch]["pytorch"]:
            sys.exit(f"{arch}: {params[arch]['ktlab']} parameters in ktlab, {params[arch]['pytorch']} in PyTorch")

    import torch
    med = {k: statistics.median(v) for k, v in rates.items()}
    lines = [
        "## Training speed: ktlab and PyTorch",
        "",
        f"Machine: {machine()}; libtorch {torch.__version__} under both (PyTorch from the project's venv, ktlab"
        " linked to the same library, so the same BLAS kernels: "
        + "; ".join(f"{l['lib']}, {l['kernel']}" for l in blas_of("ktlab", dict(os.environ)))
        + "). Each row is the median of "
        f"{args.rounds} alternating rounds (one process per measurement, 3 warm-up steps, then {args.steps} timed steps).",
        "",
        f"Reproduce: `make bench-train` (= `cargo build --release --bench train_step --bench pretext_batches`, then "
        f"`python scripts/bench_train.py --rounds {args.rounds} --threads {args.threads} --batch {args.batch}`).",
        "",
        f"Training step (forward, backward, SGD update), width {args.width}, batch norm, 32 px, batch {args.batch}, {args.threads} threads:",
        "",
        "| network | parameters | ktlab images/s | PyTorch images/s | ktlab / PyTorch |",
        "|---|---:|---:|---:|---:|",
    ]
    for arch in ARCHS:
        k, t = med[(arch, "ktlab")], med[(arch, "pytorch")]
        lines.append(f"| `{arch}` | {params[arch]['ktlab']:,} | {k:.1f} | {t:.1f} | {k / t:.2f} |")
    a = statistics.median(assembly)
    lines += [
        "",
        f"Jigsaw++ batches (9 tiles of 16 px, 701 permutations, up to 2 replaced tiles, grayscale 0.7, per-tile"
        f" normalisation; batch {args.pretext_batch}, {args.threads} threads) against the context-free network's"
        " training step on them, medians:",
        "",
        "| consumer | training samples/s | assembly samples/s | assembly / training |",
        "|---|---:|---:|---:|",
    ]
    for name, v in consume.items():
        c = statistics.median(v)
        lines.append(f"| `{name}` | {c:.0f} | {a:.0f} | {a / c:.0f}x |")
    lines += [
        "",
        "Assembly runs on its own producer thread during training, so a ratio above 1 means the step never waits"
        " for its batch (target: 5x).",
    ]
    write_section(args.out, "training-bench", "\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
