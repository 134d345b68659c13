#!/usr/bin/env python3
"""Reference values for ktlab's NT-Xent loss and in-batch retrieval (src/pretext/contrastive.rs).

The loss is written out view by view with explicit sums (SimCLR, Chen et al. 2020, eq. 1):
for the 2b views z_k (the first views of the b images, then their second views), each
L2-normalised, l(i, j) = -log(exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k) / t)),
and the loss is the mean of l over every view and its positive (the other view of its
image). No cross-entropy routine is used, so the Rust test checks ktlab's masked
cross-entropy against an independent formulation. Retrieval top-1 counts the images whose
first view's most similar second view is their own.

The projections are the test's fixed values: for n = img * D + d, the first view's
((n * 37 % 23) - 11) / 7, the second view's that plus ((n * 13 % 7) - 3) / 1.5. Prints the constants the Rust test
`nt_xent_matches_the_reference` embeds.

Usage (from the repository root, with the project venv):
    .venv/bin/python tests/reference/nt_xent_reference.py
"""

import torch

torch.set_default_dtype(torch.float64)

B, D = 3, 4
first = torch.tensor([((n * 37 % 23) - 11) / 7 for n in range(B * D)]).view(B, D)
second = first + torch.tensor([((n * 13 % 7) - 3) / 1.5 for n in range(B * D)]).view(B, D)
z = torch.stack([first, second], 1)


def nt_xent(z, t):
    views = [z[i, 0] for i in range(B)] + [z[i, 1] for i in range(B)]
    views = [v / v.norm() for v in views]
    n = len(views)
    total = 0.0
    for i in range(n):
        pos = (i + B) % n
        sims = [float(views[i] @ views[k]) / t for k in range(n)]
        denominator = sum(torch.exp(torch.tensor(sims[k])) for k in range(n) if k != i)
        total += -float(torch.log(torch.exp(torch.tensor(sims[pos])) / denominator))
    return total / n


def retrieved(z):
    first = [z[i, 0] / z[i, 0].norm() for i in range(B)]
    second = [z[i, 1] / z[i, 1].norm() for i in range(B)]
    found = 0
    for i in range(B):
        sims = [float(first[i] @ second[j]) for j in range(B)]
        found += int(max(range(B), key=lambda j: sims[j]) == i)
    return found


pairs = ", ".join(f"({t}, {nt_xent(z, t):.12})" for t in (0.1, 0.5, 1.0))
print(f"const NT_XENT_REFERENCE: [(f64, f64); 3] = [{pairs}];")
print(f"const NT_XENT_RETRIEVED: f64 = {float(retrieved(z))};")
