#!/usr/bin/env python3
"""The scalars of a TensorBoard run folder as TensorBoard itself reads them.

Reads the event files in FOLDER with TensorBoard's `EventAccumulator` (file version,
CRC checks, and the points of a killed attempt dropped at a resumed run's session start)
and prints one JSON object: each scalar tag with its [step, value, wall_time] points, in
step order. With --dashboard it reads them as `tensorboard --logdir` serves its scalar
dashboard without the Rust data server (`plugin_event_accumulator`, scalars as tensors,
which honours a session start only from a run's second one on). The Rust tests
`tensorboard::*` and `training::*killed*` run both to check ktlab's event files; they skip
where the `tensorboard` package is not installed (requirements.txt).

With --watch SECONDS it reads the folder again every SECONDS until --until-points of
`epoch/loss` are there (or --timeout seconds have passed), printing one line per read:
seconds since --t0 (a Unix time; default: its own start), the number of points of each
tag, the last epoch loss, and with --pid whether that process (the `ktlab run` writing
the folder) is still running. scripts/tensorboard_live.sh runs it so.

Usage (from the repository root, with the project venv):
    .venv/bin/python tests/reference/tensorboard_scalars.py FOLDER [--dashboard]
    .venv/bin/python tests/reference/tensorboard_scalars.py FOLDER --watch 1 --until-points 8 --pid PID
"""

import argparse
import json
import os
import sys
import time

from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util


def scalars(folder):
    acc = EventAccumulator(folder, size_guidance={"scalars": 0})
    acc.Reload()
    return {
        tag: [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)]
        for tag in sorted(acc.Tags()["scalars"])
    }


def dashboard_scalars(folder):
    acc = plugin_event_accumulator.EventAccumulator(folder, size_guidance={"tensors": 0})
    acc.Reload()
    return {
        tag: [[e.step, tensor_util.make_ndarray(e.tensor_proto).item(), e.wall_time] for e in acc.Tensors(tag)]
        for tag in sorted(acc.Tags()["tensors"])
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--watch", type=float, default=None)
    ap.add_argument("--until-points", type=int, default=None)
    ap.add_argument("--dashboard", action="store_true")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--t0", type=float, default=None)
    ap.add_argument("--pid", type=int, default=None)
    args = ap.parse_args()
    if args.watch is None:
        json.dump((dashboard_scalars if args.dashboard else scalars)(args.folder), sys.stdout)
        print()
        return
    start = time.time()
    t0 = start if args.t0 is None else args.t0
    while time.time() - start < args.timeout:
        if os.path.isdir(args.folder):
            s = scalars(args.folder)
            counts = ", ".join(f"{tag} {len(points)}" for tag, points in s.items())
            epochs = s.get("epoch/loss", [])
            last = f"; epoch/loss {epochs[-1][1]:.4f} at step {epochs[-1][0]}" if epochs else ""
            writer = ""
            if args.pid is not None:
                writer = "; ktlab running" if alive(args.pid) else "; ktlab ended"
            print(f"{time.time() - t0:6.1f} s: {counts or 'no scalars yet'}{last}{writer}", flush=True)
            if args.until_points is not None and len(epochs) >= args.until_points:
                return
        time.sleep(args.watch)
    sys.exit("timed out")


def alive(pid):
    """Whether process `pid` runs (a zombie, ended but not yet waited for, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    main()
