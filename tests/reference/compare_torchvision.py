#!/usr/bin/env python3
"""Cross-checks ktlab's Rust networks against PyTorch/torchvision.

The Rust test `models::net::tests::full_size_weights_load_into_torchvision` writes, into DIR,
for each model NAME it exercises:

    NAME.safetensors   the VarStore (torchvision state_dict names, width 1.0, 3 channels)
    NAME.logits.npy    the logits the Rust code computed in eval mode, shape [1, 1000]
    input.npy          the input it used, shape [1, 3, 224, 224]

This script loads each weight file with `load_state_dict(strict=True)` into the matching
PyTorch model, recomputes the logits from the same deterministic input, and compares.

NAME is one of: vgg16, vgg16_bn, resnet18 (torchvision models), alexnet, alexnet_bn (the
Caffe-style AlexNet of ktlab, defined below with torchvision-style module indices).

Usage: compare_torchvision.py DIR [--rtol 1e-4]
Exit status: 0 all present models match; 1 a mismatch or a load failure; 2 usage error or
nothing to compare; 3 torch, torchvision, safetensors or numpy cannot be imported.
"""
import argparse
import os
import sys

try:
    import numpy as np
    import torch
    import torchvision
    from safetensors.torch import load_file
    from torch import nn
except ImportError as exc:  # pragma: no cover - depends on the environment
    print(f"missing dependency: {exc}", file=sys.stderr)
    sys.exit(3)

NUM_CLASSES = 1000
SIDE = 224


class SslAlexNet(nn.Module):
    """ktlab's `alexnet`: 96-256-384-384-256 convs, conv1 11x11/4 pad 2, optional BN."""

    def __init__(self, num_classes=NUM_CLASSES, batch_norm=False):
        super().__init__()
        layers = []

        def conv(c_in, c_out, kernel, stride, padding):
            layers.append(nn.Conv2d(c_in, c_out, kernel, stride, padding))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(inplace=True))

        conv(3, 96, 11, 4, 2)
        layers.append(nn.MaxPool2d(3, 2))
        conv(96, 256, 5, 1, 2)
        layers.append(nn.MaxPool2d(3, 2))
        conv(256, 384, 3, 1, 1)
        conv(384, 384, 3, 1, 1)
        conv(384, 256, 3, 1, 1)
        layers.append(nn.MaxPool2d(3, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


MODELS = {
    "vgg16": lambda: torchvision.models.vgg16(weights=None, num_classes=NUM_CLASSES),
    "vgg16_bn": lambda: torchvision.models.vgg16_bn(weights=None, num_classes=NUM_CLASSES),
    "resnet18": lambda: torchvision.models.resnet18(weights=None, num_classes=NUM_CLASSES),
    "alexnet": lambda: SslAlexNet(batch_norm=False),
    "alexnet_bn": lambda: SslAlexNet(batch_norm=True),
}


def reference_input():
    """The deterministic input the Rust test uses: sin(linspace(0, 100, n)) as [1, 3, 224, 224]."""
    n = 3 * SIDE * SIDE
    return torch.linspace(0.0, 100.0, n, dtype=torch.float32).sin().reshape(1, 3, SIDE, SIDE)


def compare(directory, name, x, rtol):
    """Returns True when `name`'s weights load strictly and reproduce the Rust logits."""
    model = MODELS[name]()
    state = load_file(os.path.join(directory, f"{name}.safetensors"))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        print(f"{name}: FAILED to load state dict:\n{exc}")
        return False
    model.eval()
    with torch.no_grad():
        ours = model(x).numpy()
    theirs = np.load(os.path.join(directory, f"{name}.logits.npy"))
    if ours.shape != theirs.shape:
        print(f"{name}: FAILED shape {theirs.shape} (rust) != {ours.shape} (torch)")
        return False
    scale = max(float(np.abs(ours).max()), 1e-12)
    rel = float(np.abs(ours - theirs).max()) / scale
    ok = bool(np.isfinite(theirs).all()) and rel <= rtol
    print(f"{name}: {'ok' if ok else 'FAILED'} max |diff| / max |logit| = {rel:.3e} (rtol {rtol:g})")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="directory written by the Rust test")
    parser.add_argument("--rtol", type=float, default=1e-4)
    args = parser.parse_args()

    torch.manual_seed(0)
    x = reference_input()
    input_path = os.path.join(args.dir, "input.npy")
    if os.path.exists(input_path):
        rust_x = np.load(input_path)
        if rust_x.shape != tuple(x.shape) or np.abs(rust_x - x.numpy()).max() > 1e-5:
            print("input.npy differs from the reference input; comparing on input.npy")
            x = torch.from_numpy(rust_x)

    present = [n for n in MODELS if os.path.exists(os.path.join(args.dir, f"{n}.safetensors"))]
    if not present:
        print(f"nothing to compare in {args.dir}", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    results = [compare(args.dir, name, x, args.rtol) for name in present]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
