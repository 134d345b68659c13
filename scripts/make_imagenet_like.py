#!/usr/bin/env python3
"""Generates an ImageNet-like image folder: JPEGs of about ImageNet's sizes (sides drawn
around 500 x 375, landscape and portrait), a few dozen classes, in the image-folder layout
`<out>/<split>/<class>/<index>.jpg` that ktlab reads (`format = "image-folder"`). No
downloaded data: what the memory and throughput benchmarks of large splits decode, and
what tests of the streaming input read in a small size.

Each class has its own look, so that a network can learn the classes: a background
gradient between two colours of the class's palette, a texture of stripes at the class's
frequency and angle, and a few filled shapes of the class's kind (ellipses, rectangles,
triangles) in the class's colours, all jittered per image. Image `i` of a split depends
only on (seed, split, i): folders are reproducible and can be made in parallel.

    .venv/bin/python scripts/make_imagenet_like.py --out /tmp/inet-5k --train 5000 --val 500
"""
import argparse
import hashlib
import math
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image, ImageDraw

# ImageNet's training images: mean side about 400 x 350 px, most 500 x 375 or 375 x 500
# (the photo-sharing sites' resized uploads); the sides here are drawn around those.
LONG_SIDES = (500, 500, 500, 480, 450, 400, 640)
ASPECTS = (0.75, 0.75, 0.75, 0.667, 0.8, 1.0)


def rng_for(seed, split, index):
    digest = hashlib.sha256(f"{seed}/{split}/{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def class_look(seed, c):
    """The fixed look of class `c`: palette, stripe frequency and angle, shape kind."""
    r = rng_for(seed, "class", c)
    return {
        "palette": r.integers(0, 256, size=(3, 3)),
        "freq": r.uniform(0.01, 0.08),
        "angle": r.uniform(0, math.pi),
        "shape": int(r.integers(0, 3)),
    }


def image(seed, split, index, classes):
    r = rng_for(seed, split, index)
    c = int(r.integers(0, classes))
    look = class_look(seed, c)
    long_side = int(r.choice(LONG_SIDES))
    short = int(round(long_side * float(r.choice(ASPECTS))))
    w, h = (long_side, short) if r.random() < 0.7 else (short, long_side)
    pal = look["palette"].astype(np.float32) + r.normal(0, 12, size=(3, 3))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx / w * math.cos(r.uniform(0, 6.3)) + yy / h * math.sin(r.uniform(0, 6.3)) + 1) / 2
    img = pal[0] * (1 - t[..., None]) + pal[1] * t[..., None]
    a = look["angle"] + r.normal(0, 0.1)
    stripes = np.sin((xx * math.cos(a) + yy * math.sin(a)) * look["freq"] * 2 * math.pi)
    img += 25 * stripes[..., None]
    img += r.normal(0, 6, size=img.shape)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(r.integers(1, 4))):
        size = r.uniform(0.15, 0.4) * min(w, h)
        cx, cy = r.uniform(size, w - size), r.uniform(size, h - size)
        colour = tuple(int(v) for v in np.clip(pal[2] + r.normal(0, 15, 3), 0, 255))
        box = [cx - size, cy - size * r.uniform(0.6, 1.0), cx + size, cy + size * r.uniform(0.6, 1.0)]
        if look["shape"] == 0:
            draw.ellipse(box, fill=colour)
        elif look["shape"] == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(box[0], box[3]), (box[2], box[3]), (cx, box[1])], fill=colour)
    return c, pil


def write(job):
    out, seed, split, index, classes, quality = job
    c, pil = image(seed, split, index, classes)
    path = os.path.join(out, split, f"class{c:03d}", f"{index:07d}.jpg")
    pil.save(path, quality=quality)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder to create (its splits as subfolders)")
    ap.add_argument("--train", type=int, default=5000, help="images of the train split")
    ap.add_argument("--val", type=int, default=0, help="images of the val split")
    ap.add_argument("--classes", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality (ImageNet's files: about 90)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    jobs = []
    for split, n in (("train", args.train), ("val", args.val)):
        for c in range(args.classes):
            os.makedirs(os.path.join(args.out, split, f"class{c:03d}"), exist_ok=True)
        jobs += [(args.out, args.seed, split, i, args.classes, args.quality) for i in range(n)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for done, _ in enumerate(pool.map(write, jobs, chunksize=64), 1):
            if done % 5000 == 0:
                print(f"{done} of {len(jobs)} images", flush=True)
    print(f"{len(jobs)} images in {args.out}")


if __name__ == "__main__":
    main()
