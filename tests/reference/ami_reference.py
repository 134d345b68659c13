#!/usr/bin/env python3
"""Reference values for ktlab's adjusted mutual information (src/cluster/metrics.rs, `ami`).

Draws labelings (random ones, where AMI is about 0 whatever k while NMI grows with k, and
structured ones; k below, at and above the number of classes; one with a single cluster),
computes scikit-learn's `adjusted_mutual_info_score` and `normalized_mutual_info_score`
(arithmetic normalisation), and writes tests/data/ami_reference.json, which the Rust test
`ami_matches_scikit_learn` reads. The output is deterministic.

Usage (from the repository root, with the project venv):
    .venv/bin/python tests/reference/ami_reference.py
"""

import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

SEED = 20180603
# (points, clusters k, classes c, fraction of points whose cluster follows the class)
CASES = [
    (2000, 10, 10, 0.0),
    (2000, 200, 10, 0.0),
    (1000, 7, 4, 0.5),
    (500, 3, 8, 0.8),
    (300, 1, 5, 0.0),
    (1200, 40, 10, 0.3),
]


def main():
    rng = np.random.default_rng(SEED)
    cases = []
    for n, k, c, follow in CASES:
        truth = rng.integers(0, c, n)
        pred = rng.integers(0, k, n)
        mask = rng.random(n) < follow
        pred[mask] = truth[mask] % k
        cases.append(
            {
                "truth": truth.tolist(),
                "pred": pred.tolist(),
                "ami": adjusted_mutual_info_score(truth, pred),
                "nmi": normalized_mutual_info_score(truth, pred),
            }
        )
    out = Path(__file__).resolve().parents[1] / "data" / "ami_reference.json"
    out.write_text(json.dumps({"scikit_learn": sklearn.__version__, "cases": cases}) + "\n")
    print(f"wrote {out} ({len(cases)} cases, scikit-learn {sklearn.__version__})")


if __name__ == "__main__":
    main()
