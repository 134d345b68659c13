#!/usr/bin/env python3
"""Input-pipeline throughput: images per second delivered at 224 px with ImageNet's random
resized crops from an image folder of JPEGs, `ktlab` beside PyTorch on the same files.

- ktlab: `benches/input_pipeline.rs`, a streamed split read by the training loop's batch
  producer (decode, random resized crop, resample, flip, normalise) on `--threads` threads.
- PyTorch: `torch.utils.data.DataLoader` over `torchvision.datasets.ImageFolder` with
  `RandomResizedCrop(224)`, `RandomHorizontalFlip()`, `ToTensor()` and `Normalize`,
  `--threads` worker processes, shuffled, the same batch size.
Both skip `--warmup` batches, then time `--batches` batches. The two alternate (ktlab,
PyTorch, ktlab, ...) for `--rounds` rounds; medians and their ratio. The section
`input-bench` of docs/BENCHMARKS.md is replaced with the results.

    python scripts/make_imagenet_like.py --out /tmp/inet --train 2000 --val 10 --classes 40
    cargo build --release --bench input_pipeline
    python scripts/bench_input.py /tmp/inet [--rounds 5] [--threads 2] [--batch 64] [--batches 20]
"""

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_kmeans import newest_bench, write_section
from bench_overhead import machine

ROOT = Path(__file__).resolve().parent.parent


def torch_rate(folder, threads, batch, batches, warmup, size):
    """PyTorch's images per second (run in this process's interpreter, a fresh process)."""
    code = f"""
import time, torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms
torch.set_num_threads(1)
t = transforms.Compose([transforms.RandomResizedCrop({size}), transforms.RandomHorizontalFlip(),
    transforms.ToTensor(), transforms.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])])
ds = datasets.ImageFolder({str(Path(folder) / 'train')!r}, transform=t)
dl = DataLoader(ds, batch_size={batch}, shuffle=True, num_workers={threads})
it = iter(dl)
for _ in range({warmup}):
    next(it)
start = time.perf_counter()
n = 0
for _ in range({batches}):
    x, y = next(it)
    n += x.shape[0]
s = time.perf_counter() - start
print(f"pytorch: {{n}} images in {{s:.2f}} s: {{n / s:.1f}} images/s")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"PyTorch run failed:\n{out.stderr}")
    return float(re.search(r"([0-9.]+) images/s", out.stdout).group(1))


def ktlab_rate(binary, folder, threads, batch, batches, warmup, size):
    cmd = [str(binary), str(folder), "--threads", str(threads), "--batch", str(batch), "--batches", str(batches)]
    cmd += ["--warmup", str(warmup), "--size", str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stderr}")
    return float(re.search(r"([0-9.]+) images/s", out.stdout).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", help="an image folder with a train split (scripts/make_imagenet_like.py)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    a = ap.parse_args()
    binary = newest_bench("input_pipeline")
    rates = {"ktlab": [], "pytorch": []}
    started = time.time()
    for r in range(a.rounds):
        rates["ktlab"].append(ktlab_rate(binary, a.folder, a.threads, a.batch, a.batches, a.warmup, a.size))
        rates["pytorch"].append(torch_rate(a.folder, a.threads, a.batch, a.batches, a.warmup, a.size))
        print(f"round {r + 1}: ktlab {rates['ktlab'][-1]:.1f}, PyTorch {rates['pytorch'][-1]:.1f} images/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    import torch
    import torchvision
    import PIL

    rows = "\n".join(
        f"| {name} | {med[key]:.1f} | {', '.join(f'{v:.1f}' for v in rates[key])} |"
        for name, key in [("ktlab (streamed split, batch producer)", "ktlab"), ("PyTorch DataLoader + torchvision ImageFolder", "pytorch")]
    )
    section = f"""## Input pipeline: images per second at {a.size} px, ktlab and PyTorch

`python scripts/bench_input.py {a.folder} --rounds {a.rounds} --threads {a.threads} --batch {a.batch} --batches {a.batches}`
({a.rounds} alternating rounds, {a.batches} batches of {a.batch} timed after {a.warmup}; {time.time() - started:.0f} s in all).
Both decode the same JPEGs (scripts/make_imagenet_like.py: about 500 x 375 px), cut a
random resized crop (scale 0.08-1, ratio 3/4-4/3), resample it to {a.size} px, flip with
probability 1/2 and normalise into a float batch, on {a.threads} threads (ktlab: the
training loop's producer and its thread pool) or {a.threads} worker processes (PyTorch
{torch.__version__}, torchvision {torchvision.__version__}, Pillow {PIL.__version__}).
Machine: {machine()}.

| pipeline | median images/s | rounds |
|:---|---:|:---|
{rows}

ktlab / PyTorch: **{med['ktlab'] / med['pytorch']:.2f}x** (medians)."""
    write_section(a.out, "input-bench", section)
    print(section)


if __name__ == "__main__":
    main()
