#!/usr/bin/env python3
"""Compares two `ktlab kmeans --out` folders of the same matrix and parameters (CPU and
CUDA in scripts/gpu-check.sh): the share of points with the same assignment (criterion
>= 99.9 %) and the relative difference of the final inertia (criterion <= 1e-4), read from
assignments.npy and inertia.csv, and what explains a failure (the initial inertia, which is
the same when both started from the same centroids; the centroids' largest difference).
Prints `name: value` lines; exit 1 when a criterion fails.

    python scripts/compare_kmeans.py out-cpu out-cuda
"""
import argparse
import csv
from pathlib import Path

import numpy as np

MIN_SAME = 99.9
MAX_REL_INERTIA = 1e-4


def inertia(folder):
    """inertia.csv's values, row 0 being the initial centroids'."""
    with open(Path(folder) / "inertia.csv") as f:
        return [float(row["inertia"]) for row in csv.DictReader(f)]


def verdict(ok):
    return "PASS" if ok else "FAIL"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a", help="a `ktlab kmeans --out` folder")
    ap.add_argument("b", help="another, of the same matrix and parameters")
    args = ap.parse_args()
    la, lb = (np.load(Path(f) / "assignments.npy") for f in (args.a, args.b))
    ia, ib = inertia(args.a), inertia(args.b)
    ca, cb = (np.load(Path(f) / "centroids.npy") for f in (args.a, args.b))
    if la.shape != lb.shape or ca.shape != cb.shape:
        raise SystemExit(f"different shapes: assignments {la.shape} and {lb.shape}, centroids {ca.shape} and {cb.shape}")
    same = 100.0 * np.mean(la == lb)
    rel = abs(ia[-1] - ib[-1]) / max(abs(ia[-1]), abs(ib[-1]), 1e-300)
    rel0 = abs(ia[0] - ib[0]) / max(abs(ia[0]), abs(ib[0]), 1e-300)
    print(f"points: {la.shape[0]}")
    print(f"same_assignment_pct: {same:.4f} (>= {MIN_SAME}: {verdict(same >= MIN_SAME)})")
    print(f"inertia_rel_diff: {rel:.3g} (<= {MAX_REL_INERTIA:g}: {verdict(rel <= MAX_REL_INERTIA)})")
    print(f"inertia_initial_rel_diff: {rel0:.3g}")
    print(f"inertia_final: {ia[-1]:.10g} vs {ib[-1]:.10g}")
    print(f"iterations: {len(ia) - 1} vs {len(ib) - 1}")
    print(f"centroids_max_abs_diff: {np.max(np.abs(ca - cb)):.3g}")
    if same < MIN_SAME or rel > MAX_REL_INERTIA:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
