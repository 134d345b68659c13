#!/usr/bin/env python3
"""The PyTorch peer of `ktlab kmeans` for scripts/gpu-check.sh: the same Lloyd iteration
written in plain PyTorch on a device, timed per iteration.

Initial centroids: `k` distinct rows drawn with numpy's seeded generator (the kind of
start `ktlab kmeans --init random` makes; not its draw, which comes from its own ChaCha
stream: the time of an iteration does not depend on which rows). Each iteration assigns
every row to its nearest centroid (argmin of `||c||^2 - 2 x c^T`, the `||x||^2` term added
back for the inertia, in chunks of rows), then moves each centroid to the mean of its rows
(`index_add_` of the rows, in float32; an empty cluster keeps its centroid). float32
throughout, libtorch's default matmul precision (printed). Prints `name: value` lines:

    python scripts/kmeans_torch.py x.npy --k 2000 --iterations 10 --device cuda
"""
import argparse
import statistics
import time

import numpy as np
import torch


def assign(x, x_sq, c, chunk):
    """Nearest centroid of every row of `x` and its squared distance."""
    c_sq = (c * c).sum(1)
    labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    dists = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
    for s in range(0, x.shape[0], chunk):
        scores = torch.addmm(c_sq, x[s:s + chunk], c.T, alpha=-2.0)
        best, nearest = scores.min(1)
        labels[s:s + chunk] = nearest
        dists[s:s + chunk] = (best + x_sq[s:s + chunk]).clamp_min_(0.0)
    return labels, dists


def update(x, labels, c):
    """Means of the clusters; an empty cluster keeps its centroid."""
    sums = torch.zeros_like(c).index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=c.shape[0]).unsqueeze(1)
    return torch.where(counts > 0, sums / counts.clamp_min(1), c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input", help="float32 [n, d] .npy")
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--chunk", type=int, default=65536, help="rows per score matrix")
    a = ap.parse_args()
    device = torch.device(a.device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    t0 = time.perf_counter()
    x = torch.from_numpy(np.load(a.input).astype(np.float32, copy=False)).to(device)
    sync()
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(a.seed)
    idx = torch.from_numpy(np.sort(rng.choice(x.shape[0], size=a.k, replace=False))).to(device)
    c = x[idx].clone()
    x_sq = (x * x).sum(1)
    labels, dists = assign(x, x_sq, c, a.chunk)
    inertia = [dists.double().sum().item()]
    times = []
    for _ in range(a.iterations):
        sync()
        t = time.perf_counter()
        c = update(x, labels, c)
        labels, dists = assign(x, x_sq, c, a.chunk)
        sync()
        times.append(time.perf_counter() - t)
        inertia.append(dists.double().sum().item())
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'})")
    print(f"matmul_precision: {torch.get_float32_matmul_precision()}")
    print(f"points: {x.shape[0]} x {x.shape[1]}, k {a.k}, chunk {a.chunk}")
    print(f"load_s: {load_s:.3f}")
    print(f"iteration_median_s: {statistics.median(times):.4f}")
    print(f"iterations_total_s: {sum(times):.3f}")
    print(f"inertia_initial: {inertia[0]:.6g}")
    print(f"inertia_final: {inertia[-1]:.6g}")


if __name__ == "__main__":
    main()
