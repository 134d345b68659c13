#!/usr/bin/env python3
"""Compares one experiment's results.csv from two runs (CPU and CUDA in
scripts/gpu-check.sh): for every stage given a tolerance, each layer's top-1 in both runs
and their absolute difference in points against that stage's tolerance. Prints
`name: value` lines; exit 1 when a difference exceeds its tolerance or a row is missing.

    python scripts/compare_results.py cpu/results.csv cuda/results.csv --tolerance linear=2 --tolerance knn=1
"""
import argparse
import csv


def top1(path):
    """{(stage, layer): top-1} of a long-form results.csv."""
    with open(path) as f:
        return {(r["stage"], r["layer"]): float(r["value"]) for r in csv.DictReader(f) if r["metric"] == "top1"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a", help="results.csv of one run")
    ap.add_argument("b", help="results.csv of the other")
    ap.add_argument("--tolerance", action="append", required=True, metavar="STAGE=POINTS",
                    help="largest allowed |difference| of a stage's top-1, in points (repeatable)")
    args = ap.parse_args()
    tolerances = {s: float(p) for s, p in (t.split("=", 1) for t in args.tolerance)}
    a, b = top1(args.a), top1(args.b)
    failed = False
    for stage, tol in tolerances.items():
        layers = sorted({layer for s, layer in a.keys() | b.keys() if s == stage})
        if not layers:
            print(f"{stage}: no top-1 rows in either file: FAIL")
            failed = True
        for layer in layers:
            name = f"{stage}.{layer}.top1" if layer else f"{stage}.top1"
            if (stage, layer) not in a or (stage, layer) not in b:
                print(f"{name}: missing in {args.a if (stage, layer) not in a else args.b}: FAIL")
                failed = True
                continue
            va, vb = a[(stage, layer)], b[(stage, layer)]
            diff = 100.0 * abs(va - vb)
            ok = diff <= tol
            failed |= not ok
            print(f"{name}: {va:.4f} vs {vb:.4f}, |diff| {diff:.2f} points (<= {tol:g}: {'PASS' if ok else 'FAIL'})")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
