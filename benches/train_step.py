#!/usr/bin/env python3
"""PyTorch peer of benches/train_step.rs: images per second of a training step (forward,
backward, SGD with momentum and weight decay) of ktlab's alexnet, vgg16, alexnet-small or
vgg16-small on random data, with the same architecture, batch size, image size, device,
precision and thread count. scripts/bench_train.py (`make bench-train`) runs both in turn
on the CPU, scripts/gpu-check.sh on a GPU.

    python benches/train_step.py --arch alexnet --width 1 --image-size 224 --batch 256 \\
        --device cuda --amp bf16
"""
import argparse
import math
import time

import torch
import torch.nn as nn


def scaled(nominal: int, width: float) -> int:
    """A layer's channel count at `width`, rounded as ktlab's `layers::scaled` (half away
    from zero)."""
    c = math.floor(nominal * width + 0.5)
    if c < 1:
        raise SystemExit(f"width {width} leaves no channels of {nominal}")
    return c


def conv_bn_relu(cin: int, cout: int, k: int, s: int, p: int) -> list:
    """ktlab's `conv_bn_relu` with batch norm: a biased conv, BN, ReLU."""
    return [nn.Conv2d(cin, cout, k, s, p), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def alexnet(width: float, small: bool, classes: int = 10) -> nn.Module:
    """ktlab's alexnet / alexnet-small (batch_norm = true; src/models/alexnet.rs): conv1
    11x11/4 pad 2 (small: 5x5/2), conv2 5x5, conv3-5 3x3, 3x3/2 max-pools after conv1, conv2
    and conv5 (small: padding 1), adaptive pool to 6x6 (small: 2x2), fc6/fc7 of 4096*width
    with dropout 0.5 before each."""
    c = [scaled(n, width) for n in (96, 256, 384, 384, 256)]
    h = scaled(4096, width)
    pad = 1 if small else 0
    features = nn.Sequential(
        *conv_bn_relu(3, c[0], *((5, 2, 2) if small else (11, 4, 2))), nn.MaxPool2d(3, 2, pad),
        *conv_bn_relu(c[0], c[1], 5, 1, 2), nn.MaxPool2d(3, 2, pad),
        *conv_bn_relu(c[1], c[2], 3, 1, 1),
        *conv_bn_relu(c[2], c[3], 3, 1, 1),
        *conv_bn_relu(c[3], c[4], 3, 1, 1), nn.MaxPool2d(3, 2, pad),
        nn.AdaptiveAvgPool2d(2 if small else 6), nn.Flatten(),
    )
    pooled = 4 if small else 36
    classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(c[4] * pooled, h), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(h, h), nn.ReLU(inplace=True),
        nn.Linear(h, classes),
    )
    return nn.Sequential(features, classifier)


def vgg16(width: float, small: bool, classes: int = 10) -> nn.Module:
    """ktlab's vgg16 / vgg16-small (batch_norm = true; src/models/vgg.rs): five blocks of
    3x3 convs (2x64, 2x128, 3x256, 3x512, 3x512 times width) with BN and ReLU, a 2x2
    max-pool after every block (small: not after conv5), adaptive pool to 7x7 (small: 1x1),
    a classifier of 4096*width hidden units (small: 512*width) with dropout 0.5 after fc6
    and fc7."""
    layers = []
    cin = 3
    for b, (n, cout) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]):
        cout = scaled(cout, width)
        for _ in range(n):
            layers += conv_bn_relu(cin, cout, 3, 1, 1)
            cin = cout
        if b < 4 or not small:
            layers.append(nn.MaxPool2d(2, 2))
    pooled = 1 if small else 7
    h = scaled(512 if small else 4096, width)
    features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(pooled), nn.Flatten())
    classifier = nn.Sequential(
        nn.Linear(cin * pooled * pooled, h), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(h, h), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(h, classes),
    )
    return nn.Sequential(features, classifier)


ARCHS = {
    "alexnet": lambda w: alexnet(w, small=False),
    "alexnet-small": lambda w: alexnet(w, small=True),
    "vgg16": lambda w: vgg16(w, small=False),
    "vgg16-small": lambda w: vgg16(w, small=True),
}
AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=list(ARCHS), default="alexnet-small")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--image-size", type=int, help="default: 32 for -small archs, 224 otherwise")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--amp", choices=list(AMP), default="none",
                    help="autocast dtype around forward and loss (fp16: with a GradScaler)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    image = a.image_size or (32 if a.arch.endswith("-small") else 224)
    device = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ARCHS[a.arch](a.width).to(device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    dtype = AMP[a.amp]
    scaler = torch.amp.GradScaler(device.type, enabled=a.amp == "fp16")
    x = torch.randn(a.batch, 3, image, image, device=device)
    y = torch.randint(0, 10, (a.batch,), device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(3):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    secs = time.perf_counter() - t
    print(f"pytorch {a.arch} width {a.width} {image} px batch {a.batch} {a.device} {a.amp} threads {a.threads}: "
          f"{a.batch * a.steps / secs:.1f} images/s ({a.steps} steps in {secs:.2f}s, "
          f"{sum(p.numel() for p in model.parameters())} parameters)")


if __name__ == "__main__":
    main()
