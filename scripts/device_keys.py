#!/usr/bin/env python3
"""Checks that store keys differ by device class as designed, for scripts/gpu-check.sh:
plans one experiment with `--set device=cpu` and `--set device=cuda` (`ktlab plan` lists
every stage instance; `ktlab explain` gives each one's full key and key input) and
compares each instance's two keys. As designed: the two key inputs differ only in the
`device` field (present exactly for the kinds whose numbers may depend on it) and in the
keys of their inputs, so an instance's key differs when it computes on the device or reads
something that did; every other instance keeps its key. Planning needs no GPU. Prints
`name: value` lines; exit 1 when an instance breaks the rule.

    python scripts/device_keys.py tests/data/keys/fixture.toml [--ktlab target/release/ktlab] [--store DIR]
"""
import argparse
import copy
import json
import subprocess


def ktlab(args, cmd):
    out = subprocess.run([args.ktlab, "--store", args.store, *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"ktlab {' '.join(cmd)} exited {out.returncode}:\n{out.stderr}")
    return out.stdout


def instances(args, device):
    """(variant, stage) of every row of `ktlab plan`'s table."""
    text = ktlab(args, ["plan", args.file, "--set", f"device={device}"])
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["variant", "stage"]) + 1
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        variant, stage = line.split()[:2]
        rows.append((variant, stage))
    return rows


def key_input(args, device, variant, stage):
    """(full key, key input JSON) of one instance, from `ktlab explain`."""
    text = ktlab(args, ["explain", args.file, stage, "--variant", variant, "--set", f"device={device}"])
    key = next(line.split()[1] for line in text.splitlines() if line.startswith("key:"))
    body = text[text.index("{", text.index("key input")):]
    return key, json.JSONDecoder().raw_decode(body)[0]


def without_device(ki):
    """The key input without what the device class may change: `device`, input keys."""
    ki = copy.deepcopy(ki)
    ki.pop("device", None)
    for value in ki.get("inputs", {}).values():
        if isinstance(value, dict):
            value.pop("key", None)
    return ki


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file", help="experiment file")
    ap.add_argument("--ktlab", default="target/release/ktlab")
    ap.add_argument("--store", default=".ktlab/store", help="store to plan against (only read)")
    args = ap.parse_args()
    rows = instances(args, "cpu")
    if rows != instances(args, "cuda"):
        raise SystemExit("the two plans list different stage instances")
    differ, on_device, kept, broken = 0, 0, [], []
    for variant, stage in rows:
        kc, ic = key_input(args, "cpu", variant, stage)
        kg, ig = key_input(args, "cuda", variant, stage)
        differ += kc != kg
        has_device = "device" in ic
        on_device += has_device
        if kc == kg:
            kept.append(f"{stage}({ic['kind']})")
        devices = (ic.get("device"), ig.get("device"))
        if without_device(ic) != without_device(ig) or devices not in ((None, None), ("cpu", "cuda")):
            broken.append(f"{stage}[{variant}]: the key inputs differ in more than the device class")
    print(f"instances: {len(rows)}")
    print(f"keys_differ: {differ}/{len(rows)}")
    print(f"device_dependent: {on_device} (key input names the device class)")
    print(f"differ_through_inputs: {differ - on_device}")
    print(f"same_key: {', '.join(kept) or 'none'}")
    print(f"as_designed: {'PASS' if not broken else 'FAIL: ' + '; '.join(broken)}")
    if broken:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
