#!/usr/bin/env python3
"""Reference numbers for ktlab's k-means and clustering metrics (src/cluster).

Generates a fixed data set (600 points, 8-D, 6 overlapping Gaussian blobs,
float32), runs scikit-learn's Lloyd k-means from fixed initial centroids and
computes scikit-learn's NMI/ARI for fixed labelings, and writes everything to
tests/data/kmeans_reference.json. The Rust tests in src/cluster/kmeans.rs and
src/cluster/metrics.rs read that file; rerun this script only if you mean to
change the reference (the output is deterministic for a given scikit-learn).

Usage (from the repository root, with the project venv):
    .venv/bin/python tests/reference/kmeans_reference.py
"""

import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

SEED = 20180601
N, D, BLOBS = 600, 8, 6
MAX_ITER = 300

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "kmeans_reference.json"


def main() -> None:
    rng = np.random.default_rng(SEED)
    centres = rng.uniform(-4.0, 4.0, size=(BLOBS, D))
    blob = np.arange(N) % BLOBS
    x32 = (centres[blob] + rng.normal(0.0, 1.0, size=(N, D))).astype(np.float32)
    # A deliberately poor start: 6 points drawn from only 3 of the blobs, so
    # Lloyd needs several iterations to move centroids between blobs.
    pool = np.flatnonzero(blob < 3)
    init32 = x32[rng.choice(pool, size=BLOBS, replace=False)].copy()

    # scikit-learn in float64 on exactly the float32 values the Rust side reads.
    x = x32.astype(np.float64)
    init = init32.astype(np.float64)
    km = KMeans(
        n_clusters=BLOBS, init=init, n_init=1, max_iter=MAX_ITER, tol=0.0, algorithm="lloyd"
    ).fit(x)
    assert km.n_iter_ < MAX_ITER, "reference run must converge"

    # The comparison is only meaningful if, at every assignment step, no point
    # is (nearly) equidistant from two centroids and no cluster is empty:
    # replay Lloyd in numpy and check both, and that it ends where sklearn did.
    centers, prev, margin_min = init.copy(), None, np.inf
    for _ in range(MAX_ITER + 1):
        d2 = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
        two = np.sort(d2, axis=1)[:, :2]
        margin_min = min(margin_min, ((two[:, 1] - two[:, 0]) / (1.0 + two[:, 0])).min())
        labels = d2.argmin(1)
        assert np.all(np.bincount(labels, minlength=BLOBS) > 0), "empty cluster"
        if prev is not None and np.array_equal(labels, prev):
            break
        centers = np.stack([x[labels == j].mean(0) for j in range(BLOBS)])
        prev = labels
    # f32 distance rounding on the Rust side is ~1e-6 relative.
    assert margin_min > 1e-5, f"near-tie in the reference (margin {margin_min:.2e})"
    assert np.array_equal(labels, km.labels_)
    assert np.allclose(centers, km.cluster_centers_, rtol=0, atol=1e-12)
    margin = np.array([margin_min])

    metric_cases = []
    lab_rng = np.random.default_rng(SEED + 1)
    labelings = [
        (blob, km.labels_),
        (lab_rng.integers(0, 4, size=50), lab_rng.integers(0, 7, size=50)),
        (lab_rng.integers(0, 3, size=20), lab_rng.integers(0, 3, size=20)),
    ]
    for a, b in labelings:
        metric_cases.append(
            {
                "labels_true": [int(v) for v in a],
                "labels_pred": [int(v) for v in b],
                "nmi": float(normalized_mutual_info_score(a, b)),
                "ari": float(adjusted_rand_score(a, b)),
            }
        )

    out = {
        "generator": "tests/reference/kmeans_reference.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "seed": SEED,
        "max_iter": MAX_ITER,
        "n_iter": int(km.n_iter_),
        "points": x32.astype(np.float64).tolist(),
        "blob_ids": blob.tolist(),
        "init_centroids": init32.astype(np.float64).tolist(),
        "centroids": km.cluster_centers_.tolist(),
        "labels": km.labels_.astype(int).tolist(),
        "inertia": float(km.inertia_),
        "metrics": metric_cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out) + "\n")
    print(
        f"wrote {OUT}: n_iter={km.n_iter_} inertia={km.inertia_:.6f} "
        f"min margin over all steps={margin.min():.3e} nmi(blobs, labels)={metric_cases[0]['nmi']:.4f}"
    )


if __name__ == "__main__":
    main()
