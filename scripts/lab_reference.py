#!/usr/bin/env python3
"""Reference values for ktlab's CIE Lab conversion, ab bins and dense pretext losses
(src/pretext/lab.rs, src/pretext/colorization.rs, src/pretext/inpainting.rs).

Written independently of the Rust code: Lab in Python's own float64 arithmetic from the
standard's formulas (sRGB companding, the IEC 61966-2-1 matrix, the D65 white, CIE's f);
the in-gamut ab bins by converting all 2^24 8-bit colours with torch in float64 and
taking, per colour, the nearest multiple of 10 on each axis (centres -110..110); the
losses with explicit log-sum-exp and sums, no cross-entropy or MSE routine.

Prints the constants the Rust tests embed.

Usage (from the repository root, with the project venv):
    .venv/bin/python scripts/lab_reference.py
"""

import math

import torch

torch.set_default_dtype(torch.float64)

WHITE = (0.95047, 1.0, 1.08883)
M = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))


def linear(v):
    c = v / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def f(t):
    d = 6 / 29
    return t ** (1 / 3) if t > d**3 else t / (3 * d * d) + 4 / 29


def lab(rgb):
    c = [linear(v) for v in rgb]
    x, y, z = (sum(M[r][k] * c[k] for k in range(3)) / WHITE[r] for r in range(3))
    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def lab_torch(rgb):
    c = rgb / 255
    c = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = c @ torch.tensor(M).T / torch.tensor(WHITE)
    d = 6 / 29
    fx = torch.where(xyz > d**3, xyz.clamp_min(0) ** (1 / 3), xyz / (3 * d * d) + 4 / 29)
    return torch.stack([116 * fx[:, 1] - 16, 500 * (fx[:, 0] - fx[:, 1]), 200 * (fx[:, 1] - fx[:, 2])], 1)


def in_gamut_bins():
    side = 23
    hit = torch.zeros(side * side, dtype=torch.bool)
    g, b = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    for r in range(256):
        rgb = torch.stack([torch.full_like(g, r), g, b], -1).reshape(-1, 3)
        ab = lab_torch(rgb)[:, 1:]
        # Round half away from zero, as Rust's f32::round.
        v = (ab + 110) / 10
        idx = torch.sign(v) * torch.floor(v.abs() + 0.5)
        idx = idx.clamp(0, side - 1).long()
        hit[idx[:, 0] * side + idx[:, 1]] = True
    cells = hit.nonzero().flatten().tolist()
    return [((c // side) * 10.0 - 110, (c % side) * 10.0 - 110) for c in cells]


colours = [(200, 30, 90), (12, 180, 240), (250, 250, 10), (40, 40, 40), (90, 140, 60), (1, 2, 3)]
print("const LAB_REFERENCE: &[([u8; 3], [f32; 3])] = &[")
for c in colours:
    L, a, b = lab(c)
    print(f"    ({list(c)}, [{L:.5}, {a:.5}, {b:.5}]),")
print("];")

bins = in_gamut_bins()
print(f"const IN_GAMUT_BINS: usize = {len(bins)};")
centres = torch.tensor(bins)
Q = len(bins)

# Colourisation: a batch of 2 images, 2 x 2 output pixels, Q logits each.
B, H, W = 2, 2, 2
logits = torch.tensor(
    [[[[2 * math.sin(0.37 * q + 1.3 * h + 0.7 * w + 2.1 * n) for w in range(W)] for h in range(H)] for q in range(Q)] for n in range(B)]
)
ab_list = [(0, 0), (35, -20), (-60, 44), (4, 71), (-12, -3), (80, 67), (-85, 80), (19, -101)]
# Every other pixel's logits (in the order image, row, column) get 8 added at the bin nearest
# to its target; the Rust test does the same with its own quantisation.
ab = torch.tensor(ab_list, dtype=torch.float64).view(B, H, W, 2).permute(0, 3, 1, 2)
counts = [1 + (q * 7 % 13) for q in range(Q)]
total = sum(counts)
prior = []
for i in range(Q):
    s = 0.0
    for j in range(Q):
        d2 = (bins[i][0] - bins[j][0]) ** 2 + (bins[i][1] - bins[j][1]) ** 2
        s += counts[j] / total * math.exp(-d2 / (2 * 25))
    prior.append(s)
norm = sum(prior)
prior = [p / norm for p in prior]
raw = [1 / (0.5 * p + 0.5 / Q) for p in prior]
expectation = sum(w * p for w, p in zip(raw, prior))
weights = [w / expectation for w in raw]

loss = 0.0
hits = 0
for n in range(B):
    for h in range(H):
        for w in range(W):
            a_t, b_t = ab[n, 0, h, w].item(), ab[n, 1, h, w].item()
            d = [(c[0] - a_t) ** 2 + (c[1] - b_t) ** 2 for c in bins]
            q = min(range(Q), key=lambda k: (d[k], k))
            row = [logits[n, k, h, w].item() for k in range(Q)]
            # Every other pixel's logits peak at its own bin (as in the Rust test).
            if (n * H * W + h * W + w) % 2 == 0:
                row[q] += 8.0
            mx = max(row)
            lse = mx + math.log(sum(math.exp(v - mx) for v in row))
            loss += weights[q] * (lse - row[q])
            # Annealed mean (T = 0.38) of the bin centres.
            e = [math.exp((v - mx) / 0.38) for v in row]
            z = sum(e)
            pa = sum(ei * c[0] for ei, c in zip(e, bins)) / z
            pb = sum(ei * c[1] for ei, c in zip(e, bins)) / z
            hits += int(math.hypot(pa - a_t, pb - b_t) <= 10)
loss /= B * H * W
print(f"const COLOR_CLASS_LOSS: f64 = {loss:.12};")
print(f"const COLOR_HITS: f64 = {hits}.0;")

# Regression: outputs in units of 100 ab.
out = torch.tensor([[[[math.cos(0.9 * c + 0.4 * h - 0.3 * w + n) * 0.6 for w in range(W)] for h in range(H)] for c in range(2)] for n in range(B)])
reg = sum(((out[n, c, h, w].item() - ab[n, c, h, w].item() / 100) ** 2) for n in range(B) for c in range(2) for h in range(H) for w in range(W)) / (B * 2 * H * W)
print(f"const COLOR_REGRESSION_LOSS: f64 = {reg:.12};")

# Inpainting: 2 images of 4 x 4, the mask the centre 2 x 2 of the first and a corner
# block of the second; outside weight 0.1.
S = 4
img = [[[[((n * 31 + c * 7 + y * 5 + x * 3) % 17) / 16 for x in range(S)] for y in range(S)] for c in range(3)] for n in range(B)]
pred = [[[[0.5 + 0.4 * math.sin(n + c * 1.7 + y * 0.9 - x * 0.5) for x in range(S)] for y in range(S)] for c in range(3)] for n in range(B)]
masks = [[[1.0 if 1 <= y <= 2 and 1 <= x <= 2 else 0.0 for x in range(S)] for y in range(S)], [[1.0 if y < 2 and x < 2 else 0.0 for x in range(S)] for y in range(S)]]
ins, outs, nin, nout = 0.0, 0.0, 0, 0
psnr = 0.0
for n in range(B):
    sse, cnt = 0.0, 0
    for c in range(3):
        for y in range(S):
            for x in range(S):
                e = (pred[n][c][y][x] - img[n][c][y][x]) ** 2
                if masks[n][y][x] == 1.0:
                    ins += e
                    nin += 1
                    sse += e
                    cnt += 1
                else:
                    outs += e
                    nout += 1
    psnr += 10 * math.log10(1 / (sse / cnt))
print(f"const INPAINT_LOSS: f64 = {ins / nin + 0.1 * outs / nout:.12};")
print(f"const INPAINT_PSNR_SUM: f64 = {psnr:.12};")
