#!/usr/bin/env python3
"""k-means of a matrix larger than memory: `ktlab kmeans` on a float32 `.npy` bigger than
the machine's available RAM, read from its memory mapping, optionally inside a memory
cgroup whose limit is a fraction of the data (so the bound on resident memory is shown,
not assumed).

The matrix (a Gaussian mixture, `--k` centres ~ N(0, 1)^d plus unit noise, written a block
at a time) goes to `--data-dir`; the page cache is dropped before the run when allowed.
Reported: data size, available memory, the cgroup limit, whole-process wall time, peak
RSS (wait4), the cgroup's peak usage and whether it ever hit its limit, the inertia per
iteration. The section `kmeans-large` of docs/BENCHMARKS.md is replaced.

    python scripts/bench_large.py [--gib 34] [--limit-gib 6] [--d 256] [--k 100] [--iterations 2]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench_kmeans import write_section
from bench_overhead import machine

ROOT = Path(__file__).resolve().parent.parent
CGROUP = Path("/sys/fs/cgroup/memory/ktlab-bench-large")


def meminfo(key):
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def write_matrix(path, n, d, k, seed):
    """A float32 [n, d] .npy, 1M rows at a time."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d), dtype=np.float32)
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    step = 1 << 20
    for s in range(0, n, step):
        e = min(n, s + step)
        block = rng.standard_normal((e - s, d), dtype=np.float32)
        block += centres[rng.integers(0, k, e - s)]
        x[s:e] = block
    x.flush()
    del x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, help="data size in GiB (default 1.5x the available memory)")
    ap.add_argument("--limit-gib", type=float, default=6.0, help="memory cgroup limit (0: none)")
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=str(ROOT / "target" / "bench-large"))
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "ktlab"))
    ap.add_argument("--keep", action="store_true", help="keep the matrix afterwards")
    ap.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    a = ap.parse_args()
    avail = meminfo("MemAvailable")
    total = meminfo("MemTotal")
    gib = a.gib or 1.5 * avail / 2**30
    n = int(gib * 2**30 / (4 * a.d))
    data = Path(a.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"x_{n}_{a.d}.npy"
    for old in data.glob("x_*.npy"):
        if old != path:
            old.unlink()  # an earlier size: never keep two
    free = os.statvfs(data).f_bavail * os.statvfs(data).f_frsize
    if not path.exists() and free < n * a.d * 4 + (2 << 30):
        sys.exit(f"{data}: {free / 2**30:.1f} GiB free, the matrix needs {n * a.d * 4 / 2**30:.1f} GiB and 2 GiB to spare")
    if not path.exists():
        t = time.perf_counter()
        write_matrix(path, n, a.d, a.k, 0)
        print(f"wrote {path} ({path.stat().st_size / 2**30:.1f} GiB) in {time.perf_counter() - t:.0f} s", flush=True)
    size = path.stat().st_size
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        dropped = True
    except OSError:
        dropped = False
    limit = int(a.limit_gib * 2**30) if a.limit_gib > 0 else 0
    use_cgroup = False
    if limit:
        try:
            CGROUP.mkdir(exist_ok=True)
            (CGROUP / "memory.limit_in_bytes").write_text(str(limit))
            (CGROUP / "memory.max_usage_in_bytes").write_text("0")
            use_cgroup = True
        except OSError as e:
            print(f"no memory cgroup ({e}); running without a limit", flush=True)

    def enter():
        if use_cgroup:
            (CGROUP / "cgroup.procs").write_text(str(os.getpid()))

    out_dir = data / "out"
    cmd = [a.bin, "kmeans", str(path), "--k", str(a.k), "--iterations", str(a.iterations), "--init", "random",
           "--threads", str(a.threads), "--device", "cpu", "--out", str(out_dir)]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, preexec_fn=enter, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    stdout, stderr = proc.stdout.read().decode(), proc.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    peak_cg = int((CGROUP / "memory.max_usage_in_bytes").read_text()) if use_cgroup else 0
    failcnt = int((CGROUP / "memory.failcnt").read_text()) if use_cgroup else 0
    if code != 0:
        sys.exit(f"{' '.join(cmd)} exited {code}:\n{stdout}\n{stderr}")
    inertia = (out_dir / "inertia.csv").read_text().strip().splitlines()[1:]
    if not a.keep:
        path.unlink()
    rss = usage.ru_maxrss * 1024
    history = ", ".join(f"{float(line.split(',')[1]):.6g}" for line in inertia)
    limit_text = f"{limit / 2**30:.1f}" if use_cgroup else "none"
    lines = [
        "## k-means of a matrix larger than memory",
        "",
        f"Machine: {machine()}, {total / 2**30:.1f} GiB of memory, {avail / 2**30:.1f} GiB available before the run.",
        "",
        f"Reproduce: `cargo build --release`, then `python scripts/bench_large.py --gib {gib:.1f} --limit-gib {a.limit_gib:g}"
        f" --d {a.d} --k {a.k} --iterations {a.iterations}` (as root for the memory cgroup and to drop the page cache).",
        "",
        f"Data: {n:,} x {a.d} float32 (`.npy`, {size / 2**30:.1f} GiB = {size / avail:.2f}x the available memory), a Gaussian"
        f" mixture of {a.k} centres; `ktlab kmeans --k {a.k} --iterations {a.iterations} --init random --threads {a.threads}`"
        f" reads it from its memory mapping{' after dropping the page cache' if dropped else ''}"
        + (f", inside a memory cgroup limited to {limit / 2**30:.1f} GiB ({size / limit:.1f}x less than the data;"
           " the cgroup counts the mapped file's pages in the page cache too)" if use_cgroup else "")
        + ".",
        "",
        "| data GiB | memory limit GiB | wall s | peak RSS GiB | cgroup peak GiB | reclaims at the limit | inertia per iteration |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {size / 2**30:.1f} | {limit_text} | {wall:.0f} | {rss / 2**30:.2f} | {peak_cg / 2**30:.2f} | {failcnt:,} | {history} |",
        "",
        "Resident memory stays below the limit: the kernel drops clean pages of the mapping that were read"
        " and reads them again in the next pass. Beyond the mapped pages the process holds libtorch, the"
        " centroids, one score tile and, per point, its label and distance (a few bytes per row against"
        f" the {4 * a.d} bytes of a row of data). Each Lloyd iteration reads the file twice (the update, then"
        " the assignment).",
    ]
    write_section(a.out, "kmeans-large", "\n".join(lines))
    print("\n".join(lines))
    print(stdout)


if __name__ == "__main__":
    main()
