#!/usr/bin/env python3
"""Runner overhead: what ktlab costs around the computing itself.

Each case is a whole `ktlab` process, run `--rounds` times in turn with the other cases
(case A, case B, ..., A, B, ...); the table shows the median wall time and the median peak
resident memory (from wait4's rusage). Cases:

- `ktlab --version`: start-up of a command that computes nothing;
- `ktlab plan` of the quickstart (2 seeds, 45 instances) and of the quickstart swept over
  500 cluster counts of its arm A x 2 seeds (1,000 variants);
- a fully cached re-run of the quickstart (its store filled first if it is empty);
- `ktlab datasets` on CIFAR-10 (../shared/datasets/cifar10, 60,000 files): the content
  fingerprint from an empty hash cache once (cold), then on re-runs (warm), beside
  `--fingerprint metadata` (sizes and times only).

`ktlab` is the front end (no libtorch; it hands the commands that compute to `ktlab-engine`);
the start-up and planning cases also run on `ktlab-engine` itself (libtorch loaded, as every
command was before the split), in the same rounds.

The section `runner-overhead` of docs/BENCHMARKS.md is replaced with the results.

    python scripts/bench_overhead.py [--rounds 5] [--bin target/release/ktlab]
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_kmeans import write_section

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd, cwd, env):
    """Wall seconds and peak RSS (MiB) of one process; fails loudly on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(map(str, cmd))} exited {code}:\n{err}")
    return wall, usage.ru_maxrss / 1024.0


def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "ktlab"))
    ap.add_argument("--cifar", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    args = ap.parse_args()
    ktlab = str(Path(args.bin).resolve())
    engine = str(Path(ktlab).with_name("ktlab-engine"))
    if not Path(engine).is_file():
        sys.exit(f"{engine} is missing: `make build` builds both binaries")
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    work = Path(tempfile.mkdtemp(prefix="ktlab-overhead-"))
    quickstart = ROOT / "experiments" / "quickstart.toml"
    text = quickstart.read_text()
    if "[stages.kt_clusters]" not in text or "[sweep]" in text:
        sys.exit(f"{quickstart}: expected a `kt_clusters` stage and no `[sweep]` to add one to")
    swept = text + f'\n[sweep]\n"stages.kt_clusters.k" = {list(range(2, 502))}\n'
    shutil.copy(ROOT / "datasets.toml", work / "datasets.toml")
    (work / "thousand.toml").write_text(swept)
    g = ["--store", str(work / "store"), "--results", str(work / "results")]

    # The quickstart, in its own store, computed once so that re-runs are fully cached.
    qs_store = work / "qs-store"
    qs = [ktlab, "--store", str(qs_store), "--results", str(work / "qs-results"), "run", str(ROOT / "experiments" / "quickstart.toml")]
    print("filling the quickstart's store (one full run) ...", flush=True)
    fill, _ = timed(qs, ROOT, env)
    print(f"  {fill:.1f} s", flush=True)

    cases = []
    for name, bin_ in [("ktlab", ktlab), ("ktlab-engine", engine)]:
        cases += [
            (f"`{name} --version`", [bin_, "--version"], work),
            (f"`{name} plan` of the quickstart (2 seeds, 45 instances)", [bin_, *g, "plan", str(quickstart)], work),
            (f"`{name} plan` of the quickstart over 500 k x 2 seeds (1,000 variants)", [bin_, *g, "plan", "thousand.toml"], work),
        ]
    cases.append(("fully cached re-run of the quickstart (`ktlab run`, 45 instances)", qs, ROOT))
    cifar = Path(args.cifar)
    cold = None
    if (cifar / "train").is_dir():
        ds = work / "cifar-datasets.toml"
        ds.write_text(f'[cifar10]\nformat = "image-folder"\nroot = "{cifar.resolve()}"\n')
        fp_store = work / "fp-store"
        base = [ktlab, "--store", str(fp_store), "datasets", "--datasets", str(ds)]
        cold, cold_rss = timed(base, work, env)
        cases += [
            ("CIFAR-10 fingerprint, 60,000 files, contents, warm hash cache (`ktlab datasets`)", base, work),
            ("CIFAR-10 fingerprint, 60,000 files, `--fingerprint metadata`", base + ["--fingerprint", "metadata"], work),
        ]
    else:
        print(f"skipped the CIFAR-10 fingerprint: {cifar} is absent", flush=True)

    results = {name: [] for name, _, _ in cases}
    for r in range(args.rounds):
        for name, cmd, cwd in cases:
            results[name].append(timed(cmd, cwd, env))
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    lines = [
        "## Runner overhead",
        "",
        f"Machine: {machine()}. Each row is a whole `ktlab` process; the cases alternate, "
        f"{args.rounds} rounds, medians. Peak RSS from `wait4`.",
        "",
        "Reproduce: `make build`, then `python scripts/bench_overhead.py "
        f"--rounds {args.rounds}` (needs ../shared/datasets/cifar10 for the fingerprint rows).",
        "",
        "| case | wall s (median) | min .. max | peak RSS MiB |",
        "|---|---:|---:|---:|",
    ]
    for name, _, _ in cases:
        walls = [w for w, _ in results[name]]
        rss = statistics.median(m for _, m in results[name])
        lines.append(f"| {name} | {statistics.median(walls):.3f} | {min(walls):.3f} .. {max(walls):.3f} | {rss:.0f} |")
    if cold is not None:
        lines.append(f"| CIFAR-10 fingerprint, contents, empty hash cache (once; files in the page cache) | {cold:.3f} | | {cold_rss:.0f} |")
    lines += ["", f"Filling the quickstart's store (one full run, not a median): {fill:.1f} s.", ""]
    section = "\n".join(lines)
    write_section(args.out, "runner-overhead", section)
    print(section)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
