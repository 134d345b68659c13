#!/usr/bin/env python3
"""Reference fits for ktlab's converged linear probe (src/eval/linear_probe.rs, L-BFGS).

ktlab's probe standardises the features (mean and population std of the training rows) and
minimises mean cross-entropy + (weight_decay / 2) * ||W||^2 (bias not penalised) with L-BFGS
from zero. scikit-learn's multinomial `LogisticRegression(solver="lbfgs")` minimises
C * sum cross-entropy + ||W||^2 / 2, the same problem for C = 1 / (weight_decay * n). This
script draws small problems (some separable, some noisy, classes of unequal size), fits
scikit-learn to a tight tolerance on the standardised features, and writes
tests/data/logistic_reference.json with the data, the test points and scikit-learn's
predicted probabilities on them, which the Rust test
`lbfgs_probe_matches_scikit_learn_logistic_regression` reads. The output is deterministic.

Usage (from the repository root, with the project venv):
    .venv/bin/python tests/reference/logistic_reference.py
"""

import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

SEED = 20181805
# (training points, test points, dimensions, classes, class separation, weight decay)
CASES = [
    (200, 50, 6, 3, 2.0, 1e-2),
    (300, 60, 12, 5, 0.7, 1e-3),
    (150, 40, 20, 4, 0.3, 1e-1),
]


def main():
    rng = np.random.default_rng(SEED)
    cases = []
    for n, m, d, c, sep, wd in CASES:
        centres = rng.standard_normal((c, d)) * sep
        weights = np.linspace(1.0, 2.0, c)
        y = rng.choice(c, size=n + m, p=weights / weights.sum())
        x = (centres[y] + rng.standard_normal((n + m, d)) * rng.uniform(0.5, 3.0, d)).astype(np.float32)
        xt, yt, xs = x[:n], y[:n], x[n:]
        mean = xt.astype(np.float64).mean(0)
        std = np.maximum(xt.astype(np.float64).std(0), 1e-6)
        clf = LogisticRegression(C=1.0 / (wd * n), solver="lbfgs", tol=1e-12, max_iter=100000)
        clf.fit((xt - mean) / std, yt)
        proba = clf.predict_proba((xs - mean) / std)
        cases.append(
            {
                "n": n,
                "d": d,
                "classes": c,
                "weight_decay": wd,
                "x": xt.ravel().tolist(),
                "y": yt.tolist(),
                "test": xs.ravel().tolist(),
                "proba": proba.ravel().tolist(),
            }
        )
    out = Path(__file__).resolve().parents[1] / "data" / "logistic_reference.json"
    out.write_text(json.dumps({"scikit_learn": sklearn.__version__, "cases": cases}) + "\n")
    print(f"wrote {out} ({len(cases)} cases, scikit-learn {sklearn.__version__})")


if __name__ == "__main__":
    main()
