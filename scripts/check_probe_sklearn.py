#!/usr/bin/env python3
"""The converged linear probe against scikit-learn on the same CIFAR-10 conv features.

Runs experiments/checks/probe-vs-sklearn.toml (a random-init alexnet-small's pooled conv3 and
conv5 features of the CIFAR-10 pool and test split, and the `lbfgs` linear probe with a fixed
weight decay), then fits scikit-learn's multinomial LogisticRegression(solver="lbfgs") on the
stored features, standardised with the training rows' mean and population std as the probe
does, with C = 1 / (weight_decay * n) (the same objective), and compares top-1 on the test
split. Pass criterion (the issue's): within 0.5 points per layer.

Usage (from the repository root, after `make build`):
    .venv/bin/python scripts/check_probe_sklearn.py [--store DIR] [--out docs/PEER_CHECKS.md]
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from bench_kmeans import write_section

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "checks" / "probe-vs-sklearn.toml"
WEIGHT_DECAY = 0.001
PEER_HEADER = "# Checks against peers\n\nEach section is written by the script it names.\n"


def stored_features(store):
    """(layer, dataset, split) -> (features [n, d], labels [n]) of every features entry."""
    out = {}
    for index in (store / "features").glob("*/index.json"):
        meta = json.loads(index.read_text())
        entry = index.parent
        x = np.load(entry / "features.npy").astype(np.float32)
        y = np.load(entry / "labels.npy")
        out[(meta.get("layer"), meta["dataset"], meta["split"])] = (x, y)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=str(ROOT / ".ktlab" / "store"))
    ap.add_argument("--results", default=str(ROOT / "target" / "checks"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "PEER_CHECKS.md"))
    args = ap.parse_args()
    store = Path(args.store)
    engine = ROOT / "target" / "release" / "ktlab"
    t = time.perf_counter()
    subprocess.run([engine, "run", EXPERIMENT, "--store", store, "--results", args.results], check=True)
    ktlab_s = time.perf_counter() - t
    rows = list(csv.DictReader(open(Path(args.results) / "probe-vs-sklearn" / "results.csv")))
    ours = {r["layer"]: float(r["value"]) for r in rows if r["stage"] == "probe" and r["metric"] == "top1"}
    feats = stored_features(store)
    lines = []
    worst = 0.0
    for layer in ["conv3", "conv5"]:
        xt, yt = feats[(layer, "c10", "pool")]
        xs, ys = feats[(layer, "cifar10", "test")]
        mean = xt.astype(np.float64).mean(0)
        std = np.maximum(xt.astype(np.float64).std(0), 1e-6)
        n = xt.shape[0]
        t = time.perf_counter()
        clf = LogisticRegression(C=1.0 / (WEIGHT_DECAY * n), solver="lbfgs", max_iter=5000, tol=1e-6)
        clf.fit((xt - mean) / std, yt)
        secs = time.perf_counter() - t
        theirs = float((clf.predict((xs - mean) / std) == ys).mean())
        gap = 100 * (ours[layer] - theirs)
        worst = max(worst, abs(gap))
        lines.append(
            f"| {layer} | {xt.shape[1]:,} | {ours[layer]:.4f} | {theirs:.4f} | {gap:+.2f} | {int(np.max(clf.n_iter_))} | {secs:.1f} |"
        )
        print(lines[-1], flush=True)
    verdict = "pass" if worst <= 0.5 else "FAIL"
    text = "\n".join(
        [
            "## Linear probe: ktlab (L-BFGS) against scikit-learn",
            "",
            f"`python scripts/check_probe_sklearn.py` ({time.strftime('%Y-%m-%d')}): a random-init `alexnet-small`"
            " (width 0.5)'s pooled conv3 and conv5 features of the 10,000-image CIFAR-10 pool (fit) and the",
            f"10,000 test images (score), weight decay {WEIGHT_DECAY} (scikit-learn: C = 1 / (weight_decay x n)),",
            "both standardised with the pool's mean and population std. ktlab's probe stage (features, probe)",
            f"took {ktlab_s:.0f} s in all; scikit-learn {sklearn.__version__}, `LogisticRegression(solver=\"lbfgs\", tol=1e-6)`.",
            "",
            "| layer | dims | ktlab top-1 | scikit-learn top-1 | difference (points) | scikit-learn iterations | scikit-learn s |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *lines,
            "",
            f"Criterion: within 0.5 points per layer: **{verdict}** (largest difference {worst:.2f} points).",
            "",
        ]
    )
    out = Path(args.out)
    write_section(out, "probe-sklearn", text.rstrip("\n"), header=PEER_HEADER)
    print(f"wrote {out}: {verdict}")
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
