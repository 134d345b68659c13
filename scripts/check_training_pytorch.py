#!/usr/bin/env python3
"""The training stack against PyTorch: the same supervised recipe in ktlab and in plain PyTorch.

The recipe (experiments/checks/supervised-vs-pytorch.toml, the CIFAR-10 suite's `supervised`
stage for 10 epochs): `alexnet-small` at width 0.5 with batch norm, trained from scratch on the
10,000-image CIFAR-10 pool with its true labels, SGD (lr 0.05, momentum 0.9, weight decay 5e-4
on every parameter), batches of 128, a cosine schedule per epoch, random translation by up to 4
pixels and horizontal flips; scored top-1 on the 10,000 CIFAR-10 test images. Three seeds each,
alternating (ktlab seed 0, PyTorch seed 0, ktlab seed 1, ...), 2 threads each.

The PyTorch side is written from the recipe and from ktlab's code (each detail says where it is
in ktlab):
  - images: the same 10,000 and 10,000 images and labels, exported by ktlab's `features` stages
    with model = "pixels" and size = 32 (the image itself at 32 px, divided by 255; checked
    here to be whole multiples of 1/255), then normalised as ktlab's batches do:
    (x / 255 - 0.5) / 0.25 per channel (src/train/batches.rs, MEAN and STD);
  - augmentation (ImageSet::write_normalised): a shift dx, dy drawn uniformly from -4..=4 each,
    pixels shifted in from outside the image are 0 *after* normalisation (the mean grey, not
    black as torchvision's RandomCrop(padding=4) would give), a horizontal flip with
    probability 0.5; test images unaugmented;
  - the network: benches/train_step.py's `alexnet_small` (ktlab's alexnet-small in PyTorch,
    imported), initialised as src/models/layers.rs does: convs He-normal (fan-out, ReLU gain)
    with zero bias, linears PyTorch's default, BatchNorm weight 1, bias 0, eps 1e-5,
    momentum 0.1; dropout 0.5 before fc6 and fc7;
  - training (src/train/trainer.rs, optim.rs, schedule.rs): every epoch a fresh shuffle cut
    into batches of 128 (the last one, of 16 images, kept), mean cross-entropy, SGD with
    momentum (buffer = gradient on the first step, then momentum * buffer + gradient) and
    coupled weight decay on every trainable parameter (biases and BatchNorm included), the
    learning rate set per epoch to lr * (1 + cos(pi * epoch / epochs)) / 2 for epoch 0..9
    (PyTorch's CosineAnnealingLR(T_max = epochs) stepped per epoch: the last epoch runs at
    2.4% of lr, not 0);
  - scoring (src/stages/supervised.rs, score_classifier): evaluation mode (BatchNorm's running
    statistics, no dropout), top-1 of the argmax.

Verdict (the issue's rule): the two means agree when |mean_ktlab - mean_pytorch| <=
2 * max(std_ktlab, std_pytorch), the std over the three seeds (n - 1 in the denominator).

Usage (from the repository root, after `make build`; about 35 minutes on 2 cores, six runs of 5 to 7):
    .venv/bin/python scripts/check_training_pytorch.py [--store DIR] [--out docs/PEER_CHECKS.md]
"""

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "checks" / "supervised-vs-pytorch.toml"
NAME = "supervised-vs-pytorch"
sys.path.insert(0, str(ROOT / "benches"))
from train_step import alexnet_small  # noqa: E402  (ktlab's alexnet-small in PyTorch)
from bench_kmeans import write_section  # noqa: E402  (scripts/ is this script's folder)
from check_probe_sklearn import PEER_HEADER  # noqa: E402

SEEDS = [0, 1, 2]
THREADS = 2
# The recipe: the values written out in the experiment file.
WIDTH, EPOCHS, BATCH, LR, MOMENTUM, WEIGHT_DECAY, PAD = 0.5, 10, 128, 0.05, 0.9, 5e-4, 4
MEAN, STD = 0.5, 0.25
EVAL_BATCH = 256


def ktlab(args, store, results, experiment=EXPERIMENT):
    """Runs `ktlab run EXPERIMENT ARGS` with 2 threads; (wall time in seconds, stdout)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), RAYON_NUM_THREADS=str(THREADS), OMP_WAIT_POLICY="PASSIVE")
    cmd = [str(ROOT / "target" / "release" / "ktlab"), "run", str(experiment), "--store", str(store), "--results", str(results)]
    t = time.perf_counter()
    done = subprocess.run(cmd + args, check=True, env=env, stdout=subprocess.PIPE, text=True)
    print(done.stdout, end="", flush=True)
    return time.perf_counter() - t, done.stdout


def one_seed(folder, seed):
    """A copy of the experiment with `seeds = [seed]` (the same stage instances, the same keys:
    the experiment's name and file are in no key), beside a copy of its datasets.toml with the
    dataset root made absolute, so that ktlab can run one seed at a time."""
    folder = Path(folder) / f"seed-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    here = EXPERIMENT.parent
    datasets = (here / "datasets.toml").read_text()
    root_line = next(line for line in datasets.splitlines() if line.startswith("root = "))
    relative = root_line.split('"')[1]
    datasets = datasets.replace(root_line, f'root = "{(here / relative).resolve()}"')
    (folder / "datasets.toml").write_text(datasets)
    text = EXPERIMENT.read_text()
    assert "\nseeds = [0, 1, 2]\n" in text
    (folder / EXPERIMENT.name).write_text(text.replace("\nseeds = [0, 1, 2]\n", f"\nseeds = [{seed}]\n"))
    return folder / EXPERIMENT.name


def entries(store, kind):
    """(manifest, folder) of every entry of `kind` in the store."""
    out = []
    for m in (Path(store) / kind).glob("*/manifest.json"):
        out.append((json.loads(m.read_text()), m.parent))
    return out


def pixels(store, dataset, split):
    """The `features` entry of model = "pixels" of dataset:split: uint8 images [n, 3, 32, 32]
    and int64 labels [n], checked to be the images themselves."""
    for _, entry in entries(store, "features"):
        index = json.loads((entry / "index.json").read_text())
        if index.get("dataset") != dataset or index.get("split") != split or index.get("dim") != 3 * 32 * 32:
            continue
        if "layer" in index or "source" in index:
            continue
        x = np.load(entry / "features.npy")
        y = np.load(entry / "labels.npy")
        scaled = x.astype(np.float64) * 255.0
        whole = np.rint(scaled)
        worst = float(np.abs(scaled - whole).max())
        assert worst < 1e-3, f"{entry}: pixels are not whole multiples of 1/255 (off by {worst})"
        assert whole.min() >= 0 and whole.max() <= 255
        assert x.shape[0] == y.shape[0] == index["count"], (x.shape, y.shape, index)
        return whole.astype(np.uint8).reshape(-1, 3, 32, 32), y.astype(np.int64), entry
    raise SystemExit(f"no pixels entry of {dataset}:{split} under {store}/features")


def init_like_ktlab(model):
    """src/models/layers.rs: convs KaimingFanOut (He normal, fan-out, ReLU gain; zero bias),
    linears TorchDefault (PyTorch's own reset), BatchNorm weight 1, bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            assert m.momentum == 0.1 and m.eps == 1e-5
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            m.reset_parameters()


def normalise(u8):
    """uint8 [n, 3, s, s] -> float32 as ktlab's batches: (x / 255 - 0.5) / 0.25."""
    return (torch.from_numpy(u8).float() / 255.0 - MEAN) / STD


def augment(x, rng):
    """ktlab's training augmentation of a normalised batch [b, 3, s, s]: shift by dx, dy in
    -PAD..=PAD (zeros shifted in), then a horizontal flip with probability 0.5."""
    b, _, s, _ = x.shape
    padded = F.pad(x, (PAD, PAD, PAD, PAD))  # [b, 3, s + 2 PAD, s + 2 PAD], 0 = the mean grey
    d = rng.integers(-PAD, PAD + 1, size=(b, 2))
    flip = rng.random(b) < 0.5
    out = torch.empty_like(x)
    for i in range(b):
        dy, dx = PAD + int(d[i, 0]), PAD + int(d[i, 1])
        crop = padded[i, :, dy : dy + s, dx : dx + s]
        out[i] = crop.flip(2) if flip[i] else crop
    return out


def cosine(epoch):
    return LR * 0.5 * (1.0 + math.cos(math.pi * epoch / EPOCHS))


def pytorch_run(seed, train, test):
    """The recipe in PyTorch: (test top-1, last epoch's train loss and accuracy, seconds)."""
    (xtr, ytr), (xte, yte) = train, test
    t = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = alexnet_small(WIDTH, classes=10)
    init_like_ktlab(model)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    xtr, ytr = normalise(xtr), torch.from_numpy(ytr)
    n = xtr.shape[0]
    for epoch in range(EPOCHS):
        for g in opt.param_groups:
            g["lr"] = cosine(epoch)
        model.train()
        order = torch.from_numpy(rng.permutation(n))
        loss_sum, right = 0.0, 0
        for b in range(0, n, BATCH):
            idx = order[b : b + BATCH]
            x, y = augment(xtr[idx], rng), ytr[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            right += int((logits.argmax(1) == y).sum())
        print(f"  pytorch seed {seed} epoch {epoch + 1}: loss {loss_sum / n:.4f}, accuracy {right / n:.4f}", flush=True)
    model.eval()
    xte, yte = normalise(xte), torch.from_numpy(yte)
    hits = 0
    with torch.no_grad():
        for b in range(0, xte.shape[0], EVAL_BATCH):
            hits += int((model(xte[b : b + EVAL_BATCH]).argmax(1) == yte[b : b + EVAL_BATCH]).sum())
    return hits / xte.shape[0], loss_sum / n, right / n, time.perf_counter() - t


def ktlab_result(results, store, seed):
    """(test top-1, last epoch's train loss and accuracy, the train stage's seconds) of seed:
    results.csv's row, checked against the store entry it came from."""
    rows = list(csv.DictReader(open(Path(results) / NAME / "results.csv")))
    top1 = [float(r["value"]) for r in rows if r["stage"] == "supervised" and r["metric"] == "test_top1" and r.get("seed") == str(seed)]
    assert len(top1) == 1, rows
    found = [
        (m, e)
        for m, e in entries(store, "train")
        if m["key_input"].get("seed") == seed and any(r["metric"] == "test_top1" for r in m.get("metrics", []))
    ]
    assert len(found) == 1, [e for _, e in found]
    manifest, entry = found[0]
    assert [r["value"] for r in manifest["metrics"] if r["metric"] == "test_top1"] == top1, (manifest["metrics"], top1)
    last = list(csv.DictReader(open(entry / "epochs.csv")))[-1]
    assert int(last["epoch"]) == EPOCHS, last
    return top1[0], float(last["loss"]), float(last["accuracy"]), float(manifest["seconds"])


def summary(values):
    return statistics.mean(values), statistics.stdev(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="/tmp/ktlab-check-training/store")
    ap.add_argument("--results", default="/tmp/ktlab-check-training/results")
    ap.add_argument("--out", default=str(ROOT / "docs" / "PEER_CHECKS.md"))
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    store, results = Path(args.store), Path(args.results)
    load = os.getloadavg()[0]

    export_s, _ = ktlab(["--only", "pool_pixels", "--only", "test_pixels"], store, results)
    xtr, ytr, _ = pixels(store, "c10", "pool")
    xte, yte, _ = pixels(store, "cifar10", "test")
    assert xtr.shape == (10000, 3, 32, 32) and xte.shape == (10000, 3, 32, 32), (xtr.shape, xte.shape)
    print(f"pixels: pool {xtr.shape} (labels {np.bincount(ytr).tolist()}), test {xte.shape}", flush=True)

    ours, theirs = {}, {}
    for seed in SEEDS:
        per_seed = one_seed(results.parent / "experiments", seed)
        wall, _ = ktlab(["--only", "supervised"], store, results / f"seed-{seed}", per_seed)
        top1, loss, acc, train_s = ktlab_result(results / f"seed-{seed}", store, seed)
        ours[seed] = (top1, loss, acc, wall, train_s)
        print(f"ktlab seed {seed}: test top-1 {top1:.4f} (train loss {loss:.4f}, accuracy {acc:.4f}), {wall:.0f} s", flush=True)
        top1, loss, acc, secs = pytorch_run(seed, (xtr, ytr), (xte, yte))
        theirs[seed] = (top1, loss, acc, secs, secs)
        print(f"pytorch seed {seed}: test top-1 {top1:.4f} (train loss {loss:.4f}, accuracy {acc:.4f}), {secs:.0f} s", flush=True)
    # The whole experiment once more: every instance cached (the per-seed copies planned the
    # same keys), results.csv with all three seeds.
    _, stdout = ktlab([], store, results)
    assert "0 computed" in stdout, stdout
    rows = list(csv.DictReader(open(results / NAME / "results.csv")))
    for seed in SEEDS:
        assert [float(r["value"]) for r in rows if r["metric"] == "test_top1" and r["seed"] == str(seed)] == [ours[seed][0]], rows

    m_k, s_k = summary([ours[s][0] for s in SEEDS])
    m_p, s_p = summary([theirs[s][0] for s in SEEDS])
    diff, bound = m_k - m_p, 2 * max(s_k, s_p)
    verdict = "within the seeds' spread" if abs(diff) <= bound else "OUTSIDE the seeds' spread"
    rows = [
        f"| {s} | {ours[s][0]:.4f} | {theirs[s][0]:.4f} | {ours[s][1]:.3f} / {ours[s][2]:.3f} | "
        f"{theirs[s][1]:.3f} / {theirs[s][2]:.3f} | {ours[s][3]:.0f} ({ours[s][4]:.0f}) | {theirs[s][3]:.0f} |"
        for s in SEEDS
    ]
    text = "\n".join(
        [
            "## Training stack: ktlab against PyTorch (supervised alexnet-small on CIFAR-10)",
            "",
            f"`python scripts/check_training_pytorch.py` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__},"
            f" {THREADS} threads each, load average {load:.1f} at the start): the recipe of",
            "`experiments/checks/supervised-vs-pytorch.toml` (the CIFAR-10 suite's supervised stage, 10 epochs):",
            "`alexnet-small` width 0.5 with batch norm, trained from scratch on the 10,000-image CIFAR-10 pool",
            "with its true labels (SGD, lr 0.05, momentum 0.9, weight decay 5e-4 on every parameter, batches of",
            "128, cosine schedule per epoch, shifts of up to 4 pixels and horizontal flips) and scored top-1",
            "on the 10,000 test images; in PyTorch written from the recipe and from ktlab's code (the same",
            "images through ktlab's `pixels` features, the same normalisation, shift padding, initialisation,",
            "schedule and evaluation mode: the script's docstring lists each detail and where ktlab has it).",
            "Three seeds each, run alternately.",
            "",
            "Rule, fixed before the runs: the means agree when |mean ktlab - mean PyTorch| <=",
            "2 x max(std ktlab, std PyTorch), the std over the three seeds (n - 1).",
            "",
            "| seed | ktlab test top-1 | PyTorch test top-1 | ktlab last epoch loss / accuracy |"
            " PyTorch last epoch loss / accuracy | ktlab s (training stage) | PyTorch s |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            f"| mean ± std | {m_k:.4f} ± {s_k:.4f} | {m_p:.4f} ± {s_p:.4f} | | | | |",
            "",
            f"Difference of the means (ktlab - PyTorch): {100 * diff:+.2f} points; bound 2 x max std ="
            f" {100 * bound:.2f} points: **{verdict}**.",
            "ktlab's seconds are the whole `ktlab run` of one seed (planning, decoding the 20,000 PNGs,"
            " training, scoring), the training stage's own in brackets; PyTorch's are training and scoring"
            " on images already in memory. The last epoch's loss and accuracy are on the augmented"
            " training batches, in training mode, in both. The seconds depend on what else the machine"
            " runs (it was shared with other builds): compare them only between runs under the same load.",
            f"Exporting the pixels once (two `features` stages): {export_s:.0f} s.",
            "",
        ]
    )
    out = Path(args.out)
    write_section(out, "train-pytorch", text.rstrip("\n"), header=PEER_HEADER)
    print(f"wrote {out}: {verdict} (difference {100 * diff:+.2f} points, bound {100 * bound:.2f})")
    return 0 if abs(diff) <= bound else 1


if __name__ == "__main__":
    sys.exit(main())
