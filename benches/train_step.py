#!/usr/bin/env python3
"""PyTorch peer of benches/train_step.rs: images per second of an alexnet-small or
vgg16-small training step (forward, backward, SGD with momentum and weight decay) on random
32 px data, with the same architecture, batch size and thread count.
scripts/bench_train.py (`make bench-train`) runs both in turn."""
import argparse
import time

import torch
import torch.nn as nn


def alexnet_small(width: float, classes: int = 10) -> nn.Module:
    """ktlab's alexnet-small (batch_norm = true): conv1 5x5/2, conv2 5x5, conv3-5 3x3,
    3x3/2 max-pools (padding 1) after conv1, conv2 and conv5, adaptive pool to 2x2,
    fc6/fc7 of 4096*width with dropout 0.5."""
    c = [max(1, round(n * width)) for n in (96, 256, 384, 384, 256)]
    h = max(1, round(4096 * width))

    def block(cin, cout, k, s, p):
        return [nn.Conv2d(cin, cout, k, s, p), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    features = nn.Sequential(
        *block(3, c[0], 5, 2, 2), nn.MaxPool2d(3, 2, 1),
        *block(c[0], c[1], 5, 1, 2), nn.MaxPool2d(3, 2, 1),
        *block(c[1], c[2], 3, 1, 1),
        *block(c[2], c[3], 3, 1, 1),
        *block(c[3], c[4], 3, 1, 1), nn.MaxPool2d(3, 2, 1),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(),
    )
    classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(c[4] * 4, h), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(h, h), nn.ReLU(inplace=True),
        nn.Linear(h, classes),
    )
    return nn.Sequential(features, classifier)


def vgg16_small(width: float, classes: int = 10) -> nn.Module:
    """ktlab's vgg16-small (batch_norm = true): VGG-16's five blocks of 3x3 convs (2x64,
    2x128, 3x256, 3x512, 3x512 times width) with BN and ReLU, a 2x2 max-pool after blocks
    1-4 (conv5 unpooled), adaptive pool to 1x1, classifier of 512*width hidden units."""
    layers = []
    cin = 3
    for b, (n, cout) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]):
        cout = max(1, round(cout * width))
        for _ in range(n):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        if b < 4:
            layers.append(nn.MaxPool2d(2, 2))
    h = max(1, round(512 * width))
    features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    classifier = nn.Sequential(
        nn.Linear(cin, h), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(h, h), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(h, classes),
    )
    return nn.Sequential(features, classifier)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["alexnet-small", "vgg16-small"], default="alexnet-small")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = (alexnet_small if a.arch == "alexnet-small" else vgg16_small)(a.width)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    secs = time.perf_counter() - t
    print(f"pytorch {a.arch} width {a.width} batch {a.batch} threads {a.threads}: "
          f"{a.batch * a.steps / secs:.1f} images/s ({a.steps} steps in {secs:.2f}s, "
          f"{sum(p.numel() for p in model.parameters())} parameters)")


if __name__ == "__main__":
    main()
