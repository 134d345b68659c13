#!/usr/bin/env python3
"""Reference numbers for ktlab's clustering accuracy (src/cluster/metrics.rs).

Clustering accuracy is the fraction of points whose cluster is matched to their
class by the best one-to-one matching of clusters to classes, as IIC and SCAN
report it: scipy's `linear_sum_assignment` maximising the contingency table
(rectangular when there are fewer or more clusters than classes; unmatched
clusters count as wrong). This script draws random labelings with k < c, k = c
and k > c (some with structure, so the matching is not trivial), computes the
accuracy with scipy, and writes tests/data/clustering_accuracy_reference.json,
which the Rust test `accuracy_matches_scipy_linear_sum_assignment` reads. Rerun it
only if you mean to change the reference (the output is deterministic).

Usage (from the repository root, with the project venv):
    .venv/bin/python tests/reference/clustering_accuracy_reference.py
"""

import json
from pathlib import Path

import numpy as np
import scipy
from scipy.optimize import linear_sum_assignment

SEED = 20180602
# (points, clusters k, classes c, fraction of points whose cluster follows the class)
CASES = [
    (40, 3, 5, 0.0),
    (300, 4, 10, 0.6),
    (200, 6, 6, 0.0),
    (500, 10, 10, 0.7),
    (37, 2, 2, 0.3),
    (120, 9, 4, 0.5),
    (400, 25, 10, 0.8),
    (60, 12, 3, 0.0),
    (1000, 50, 20, 0.4),
]

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "clustering_accuracy_reference.json"


def accuracy(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    k = int(labels_pred.max()) + 1
    c = int(labels_true.max()) + 1
    table = np.zeros((k, c), dtype=np.int64)
    np.add.at(table, (labels_pred, labels_true), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum()) / len(labels_true)


def main() -> None:
    rng = np.random.default_rng(SEED)
    cases = []
    for n, k, c, follow in CASES:
        labels_true = rng.integers(0, c, size=n)
        labels_pred = rng.integers(0, k, size=n)
        # A random map from classes to clusters, followed by a part of the points.
        class_to_cluster = rng.integers(0, k, size=c)
        mask = rng.random(n) < follow
        labels_pred[mask] = class_to_cluster[labels_true[mask]]
        cases.append(
            {
                "clusters": k,
                "classes": c,
                "labels_true": [int(v) for v in labels_true],
                "labels_pred": [int(v) for v in labels_pred],
                "accuracy": accuracy(labels_true, labels_pred),
            }
        )
    out = {
        "generator": "tests/reference/clustering_accuracy_reference.py",
        "scipy_version": scipy.__version__,
        "numpy_version": np.__version__,
        "seed": SEED,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out) + "\n")
    summary = ", ".join(f"k={c['clusters']} c={c['classes']}: {c['accuracy']:.4f}" for c in cases)
    print(f"wrote {OUT}: {summary}")


if __name__ == "__main__":
    main()
