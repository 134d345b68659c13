#!/usr/bin/env python3
"""Peak memory of the stages that read images, as their split grows: a `pretext` stage
(Jigsaw++ on `alexnet`, 256 px), a `train` stage (`alexnet` on true labels, 224 px) and a
`linear-probe` (conv5 of a random-init `alexnet` of width 0.25, 224 px, Adam), each on
image folders of ImageNet-like JPEGs (scripts/make_imagenet_like.py) of growing size, with
one or more `ktlab` binaries (today's and an earlier one, for comparison).

Each run is `ktlab run exp.toml --only <stage>` in a fresh project folder; the script
samples the process's resident memory every 0.25 s (VmHWM, the kernel's peak, and the
largest anonymous memory seen, RssAnon) and stops the run with Ctrl-C once the peak has
stopped growing: no growth above 1 % for `--plateau` seconds after at least `--min`
seconds (decoding a split up front grows memory until the last image; a streamed split
reaches its peak within the first batches), or at `--max` seconds, all counted from the
stage's start (after planning, which fingerprints the split). A whole epoch of the
training stages on 2 cores takes hours; the peak comes long before its end. The probe runs
to its end (its features are read first, then fitted and scored: the peak may come in
either part); its features go to files whose pages the kernel keeps as cache and counts
in VmHWM, so its anonymous memory is shown too. The table (MiB) goes to the section
`memory-bench` of docs/BENCHMARKS.md.

    python scripts/bench_memory.py --folder 5k=/data/inet5k --folder 20k=/data/inet20k \\
        --binary "streamed=target/release/ktlab" --env streamed:KTLAB_DECODE_BUDGET=0 \\
        --binary "before=/path/to/older/ktlab"
"""

import argparse
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench_kmeans import write_section
from bench_overhead import machine

ROOT = Path(__file__).resolve().parent.parent

STAGES = {
    "pretext": """[stages.pretext]
kind = "pretext"
task = "jigsaw++"
arch = "alexnet"
data = "inet:train"
epochs = 1
batch_size = 64
held_out = 0
""",
    "train": """[stages.train]
kind = "train"
arch = "alexnet"
data = "inet:train"
labels = "truth"
epochs = 1
batch_size = 64
crop_padding = 0
""",
    "probe": """[stages.random]
kind = "init"
arch = "alexnet"
width = 0.25
[stages.probe]
kind = "linear-probe"
model = "random"
layers = ["conv5"]
solver = "adam"
epochs = 1
train = "inet:train"
test = "inet:val"
""",
}
WHAT = {
    "pretext": "pretext: Jigsaw++, `alexnet`, 256 px",
    "train": "train: `alexnet`, true labels, 224 px",
    "probe": "linear-probe: conv5 of a random-init `alexnet` (width 0.25), 224 px, Adam",
}


def status_kib(pid, field):
    """A `/proc/<pid>/status` field in KiB (VmHWM: the peak resident memory; RssAnon: the
    anonymous memory now)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def measure(binary, env, folder, stage, a):
    """(peak MiB, seconds run, how it ended, peak anonymous MiB) of one stage in a fresh
    project."""
    with tempfile.TemporaryDirectory(dir=a.scratch) as d:
        d = Path(d)
        (d / "datasets.toml").write_text(f'[inet]\nformat = "image-folder"\nroot = "{folder}"\n')
        (d / "exp.toml").write_text(f'name = "mem"\n{STAGES[stage]}')
        if stage == "probe":
            subprocess.run([binary, "run", "exp.toml", "--only", "random"], cwd=d, env=env, capture_output=True, check=True)
        cmd = [binary, "--log-format", "json", "run", "exp.toml", "--only", stage, "--ignore-memory"]
        p = subprocess.Popen(cmd, cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # The stage starts once planning (which fingerprints the split) is done: its
        # "started" event; the plateau is looked for from then on.
        started = []
        errors = []

        def watch():
            for line in p.stderr:
                if '"event":"started"' in line and f'"stage":"{stage}"' in line:
                    started.append(time.time())
                errors.append(line)

        threading.Thread(target=watch, daemon=True).start()
        start = time.time()
        # `since`: when the peak last rose above `anchor`, its value then, by more than 1 %.
        best, anchor, since, anon = 0, 0, start, 0
        ended = "stopped at its plateau"
        while p.poll() is None:
            now = time.time()
            kib = status_kib(p.pid, "VmHWM")
            anon = max(anon, status_kib(p.pid, "RssAnon") or 0)
            if kib is not None:
                best = max(best, kib)
                if kib > anchor * 1.01:
                    anchor, since = kib, now
            if stage != "probe" and started and now - started[0] >= a.min and now - since >= a.plateau:
                break
            if now - start >= a.max:
                ended = f"stopped at {a.max} s"
                break
            time.sleep(0.25)
        else:
            ended = "finished"
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        elif p.returncode == -signal.SIGKILL:
            ended = "killed by the kernel: out of memory"
        elif p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} in {d} exited {p.returncode}:\n{''.join(errors)}")
        return best / 1024, time.time() - start, ended, anon / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", action="append", required=True, help="NAME=PATH of an image folder with train and val splits")
    ap.add_argument("--binary", action="append", required=True, help="NAME=PATH of a ktlab binary")
    ap.add_argument("--env", action="append", default=[], help="NAME:VAR=VALUE for the runs of one binary")
    ap.add_argument("--stage", action="append", choices=list(STAGES), help="stages to run (default: all)")
    ap.add_argument("--min", type=float, default=60.0)
    ap.add_argument("--plateau", type=float, default=45.0)
    ap.add_argument("--max", type=float, default=1200.0)
    ap.add_argument("--scratch", default=None)
    ap.add_argument("--record", default=None, help="a JSON file of the measurements made; those in it are not made again")
    ap.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    a = ap.parse_args()
    folders = [f.split("=", 1) for f in a.folder]
    binaries = [b.split("=", 1) for b in a.binary]
    envs = {name: dict(os.environ, OMP_WAIT_POLICY="PASSIVE") for name, _ in binaries}
    for e in a.env:
        name, kv = e.split(":", 1)
        var, value = kv.split("=", 1)
        envs[name][var] = value
    stages = a.stage or list(STAGES)
    # Measurements already made (--record): kept, so that an interrupted series resumes.
    record = Path(a.record) if a.record else None
    done = json.loads(record.read_text()) if record and record.exists() else {}
    results = {}
    started = time.time()
    for stage in stages:
        for fname, folder in folders:
            for bname, binary in binaries:
                name = f"{stage}|{fname}|{bname}"
                if name not in done:
                    done[name] = measure(binary, envs[bname], folder, stage, a)
                    if record:
                        record.write_text(json.dumps(done, indent=1))
                mib, secs, ended, anon = (list(done[name]) + [None])[:4]
                results[(stage, fname, bname)] = (mib, secs, ended, anon)
                print(f"{stage} {fname} {bname}: {mib:.0f} MiB peak, {anon or 0:.0f} anonymous ({ended}, {secs:.0f} s)", flush=True)
    header = "| stage | binary | " + " | ".join(f for f, _ in folders) + " | largest / smallest |"
    lines = [header, "|:---|:---|" + "---:|" * (len(folders) + 1)]
    for stage in stages:
        for bname, _ in binaries:
            vals = [results[(stage, f, bname)][0] for f, _ in folders]
            cells = []
            for f, _ in folders:
                mib, _, ended, anon = results[(stage, f, bname)]
                cell = f"{mib:,.0f}"
                if stage == "probe" and anon is not None:
                    cell += f" ({anon:,.0f} anonymous)"
                cells.append(cell + (" (killed: out of memory)" if ended.startswith("killed") else ""))
            ratio = vals[-1] / vals[0]
            anons = [results[(stage, f, bname)][3] for f, _ in folders]
            if stage == "probe" and all(anons):
                # The probe's own memory: its features' file pages are cache.
                ratio = anons[-1] / anons[0]
            lines.append(f"| {WHAT[stage]} | {bname} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    envs_text = "; ".join(a.env) or "none"
    section = f"""## Peak memory as the split grows

`python scripts/bench_memory.py {' '.join('--folder ' + f for f in a.folder)} {' '.join('--binary ' + b for b in a.binary)} {' '.join('--env ' + e for e in a.env)}`
({time.time() - started:.0f} s in all; environment per binary: {envs_text}). Peak resident
memory (MiB, the kernel's VmHWM) of one stage run on image folders of ImageNet-like JPEGs
(about 500 x 375 px, 40 classes), each training run stopped once its peak had stopped growing
(no growth above 1 % for {a.plateau:.0f} s, at least {a.min:.0f} s after the stage started; at most {a.max:.0f} s), the probe run to its end
(features of the training split and of the 2,000 validation images, one epoch of Adam, the
score; in brackets its largest anonymous memory: its features are files, paged by the kernel
and counted in the peak resident memory as cache; its last column compares the anonymous
peaks). Machine: {machine()}.

{chr(10).join(lines)}"""
    write_section(a.out, "memory-bench", section)
    print(section)


if __name__ == "__main__":
    main()
