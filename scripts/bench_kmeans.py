#!/usr/bin/env python3
"""k-means side by side: ktlab against faiss-cpu and scikit-learn, and the floor.

One run of `make bench-kmeans` (or `python scripts/bench_kmeans.py`) generates
the data (float32 `.npy`, seeded), then runs ktlab's k-means bench binary,
faiss-cpu and scikit-learn on the same points from the same initial centroids
with the same thread count, alternating (ktlab, faiss, sklearn, ktlab, ...),
each in its own process, and writes docs/BENCHMARKS.md's k-means section
from the medians.

Data: a Gaussian mixture, `k` centres drawn from N(0, 1)^d and unit-variance
noise around them (cluster structure like real features, overlapping enough
that points keep moving for several iterations). Initial centroids: `k`
distinct points drawn with the same seed, shared by all three.

Peers are run through this same script (`--peer faiss|sklearn`) so that the
thread settings are in place before numpy/faiss/sklearn load.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_note(load):
    """What the 1-minute load average before the runs says about the machine."""
    if load is None:
        return "The load before the runs was not recorded."
    cpus = os.cpu_count() or 1
    if load > 0.3 * cpus:
        return (f"**The machine was busy** (1-minute load average {load:.2f} on {cpus} CPUs before the runs):"
                " absolute times are noisy.")
    return f"The machine was otherwise idle (1-minute load average {load:.2f} on {cpus} CPUs before the runs)."


def newest_bench(name):
    """The newest bench binary `target/release/deps/<name>-*` (exits when there is none)."""
    cands = [p for p in (ROOT / "target" / "release" / "deps").glob(f"{name}-*") if p.suffix == "" and os.access(p, os.X_OK)]
    if not cands:
        sys.exit(f"no bench binary {name}: run `cargo build --release --bench {name}` first")
    return max(cands, key=lambda p: p.stat().st_mtime)


def write_section(out, name, section, header="# Benchmarks\n\n"):
    """Replaces the part of `out` between `<!-- name:begin -->` and `<!-- name:end -->`
    with `section` (appended, with its markers, when absent; a new file starts with `header`)."""
    out = Path(out)
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = out.read_text() if out.exists() else header
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_data(path_x, path_c, n, d, k, seed):
    import numpy as np

    if path_x.exists() and path_c.exists():
        return
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d), dtype=np.float32)
    x = np.empty((n, d), dtype=np.float32)
    step = 65536
    for s in range(0, n, step):
        e = min(n, s + step)
        which = rng.integers(0, k, size=e - s)
        x[s:e] = centres[which] + rng.standard_normal((e - s, d), dtype=np.float32)
    init = x[np.sort(rng.choice(n, size=k, replace=False))]
    path_x.parent.mkdir(parents=True, exist_ok=True)
    np.save(path_x, x)
    np.save(path_c, init)


def peer(args):
    """Runs one peer in this process and prints one JSON line."""
    t_start = time.perf_counter()
    import numpy as np

    x = np.load(args.input)
    init = np.load(args.init)
    load_s = time.perf_counter() - t_start
    n, d = x.shape
    k = init.shape[0]
    if args.peer == "faiss":
        import faiss

        faiss.omp_set_num_threads(args.threads)
        km = faiss.Kmeans(d, k, niter=args.iterations, seed=1, verbose=False, max_points_per_centroid=n, min_points_per_centroid=1)
        t = time.perf_counter()
        km.train(x, init_centroids=init)
        train_s = time.perf_counter() - t
        # obj[i] is the inertia of the assignment of iteration i (before its
        # update). The points' assignment to the final centroids (their labels,
        # the final inertia) is one more search, timed with the training: ktlab's
        # `lloyd_with` and scikit-learn's `fit` end with that assignment too.
        index = faiss.IndexFlatL2(d)
        index.add(km.centroids)
        dist, _ = index.search(x, 1)
        secs = time.perf_counter() - t
        inertia = float(dist.astype(np.float64).sum())
        iterations = len(km.obj)
        impl = f"faiss-{faiss.__version__}"
    else:
        import sklearn
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, init=init, n_init=1, algorithm="lloyd", max_iter=args.iterations, tol=0.0)
        t = time.perf_counter()
        km.fit(x)
        secs = time.perf_counter() - t
        inertia = float(km.inertia_)
        iterations = int(km.n_iter_)
        impl = f"sklearn-{sklearn.__version__}"
    print(
        json.dumps(
            {
                "impl": impl,
                "n": n,
                "d": d,
                "k": k,
                "threads": args.threads,
                "iterations": iterations,
                "seconds": secs,
                "per_iteration_s": secs / max(iterations, 1),
                "inertia": inertia,
                "load_s": load_s,
                "peak_rss_mb": peak_rss_mb(),
                **({"train_only_per_iteration_s": train_s / max(iterations, 1)} if args.peer == "faiss" else {}),
            }
        )
    )


# OpenBLAS kernels (its `OPENBLAS_CORETYPE` names) by what they need of the CPU, best first.
OPENBLAS_BEST = [("avx512f", "SkylakeX"), ("avx2", "Haswell")]


def cpu_flags():
    try:
        return set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return set()


def best_openblas_kernel():
    """The OpenBLAS kernel this CPU can run best (None: no better one than the default)."""
    flags = cpu_flags()
    return next((kernel for flag, kernel in OPENBLAS_BEST if flag in flags), None)


def blas_of(peer, env):
    """The BLAS libraries a peer's process loads and the kernel each selected, as
    threadpoolctl reports them (OpenBLAS's `architecture`); for ktlab, libtorch's oneMKL as
    it announces itself under `MKL_VERBOSE` (the bench binary links the same libtorch)."""
    if peer == "ktlab":
        code = "import torch; a = torch.ones(64, 64); a @ a"
        out = subprocess.run([sys.executable, "-c", code], env={**env, "MKL_VERBOSE": "1"}, capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith("MKL_VERBOSE") and "Product build" in l), "")
        isa = line.split(" for Intel(R) 64 architecture ", 1)[-1].split(" with support")[0].split(",")[0] if line else "unknown"
        version = " ".join(line.split()[1:4]) if line else "libtorch's BLAS"
        return [{"lib": version, "kernel": isa}]
    module = {"faiss": "faiss", "sklearn": "sklearn.cluster"}[peer]
    code = (
        f"import json, threadpoolctl, {module}; "
        "print(json.dumps([{'lib': i['internal_api'] + ' ' + str(i.get('version')), 'kernel': i.get('architecture')} "
        "for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return [{"lib": "unknown", "kernel": None, "error": out.stderr[-300:]}]
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_env_for(peer, env):
    """The environment that gives `peer` the best BLAS kernel this CPU supports, and what was
    checked: OpenBLAS builds that do not recognise a current CPU fall back to a slow generic
    kernel (OpenBLAS 0.3.15 in faiss-cpu reports "Prescott" on some avx512 machines); then
    `OPENBLAS_CORETYPE` names the right one. `comparable` is False when the peer still runs a
    kernel below the CPU's best (its ratio is then not a fair comparison)."""
    best = best_openblas_kernel()
    libs = blas_of(peer, env)
    forced = False
    openblas = [l for l in libs if str(l.get("lib", "")).startswith("openblas")]
    if best and any(l.get("kernel") != best for l in openblas):
        env = {**env, "OPENBLAS_CORETYPE": best}
        libs = blas_of(peer, env)
        openblas = [l for l in libs if str(l.get("lib", "")).startswith("openblas")]
        forced = True
    comparable = not best or all(l.get("kernel") == best for l in openblas)
    return env, {"peer": peer, "libs": libs, "forced": forced, "comparable": comparable, "best": best}


def run_one(cmd, env):
    """Runs `cmd`, returns (JSON lines it printed, whole wall seconds)."""
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return rows, wall


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, shell=True).stdout.strip()
        except OSError:
            return "?"

    model = sh("lscpu | sed -n 's/^Model name: *//p'")
    caches = sh("lscpu | grep -E '^(L1d|L2|L3) cache' | sed 's/  */ /g' | paste -sd ';'")
    flags = sh("grep -o -w -E 'avx2|avx512f|amx_tile' /proc/cpuinfo | sort -u | paste -sd ' '")
    mem = sh("free -g | awk '/^Mem:/ {print $2 \" GiB total, \" $7 \" GiB available\"}'")
    return f"{model}, {sh('nproc')} CPUs ({flags}); {caches}; {mem}; {platform.system()} {platform.release()}"


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", choices=["faiss", "sklearn"], help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--init", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="50000x256x1000,200000x128x2000", help="comma-separated NxDxK")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per size (medians are reported)")
    ap.add_argument("--peers", default="ktlab,faiss,sklearn")
    ap.add_argument("--algorithm", default="both", help="ktlab assignment: lloyd, bounded or both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=str(ROOT / "target" / "bench-kmeans"))
    ap.add_argument("--bench-bin", help="ktlab's k-means bench binary (default: newest target/release/deps/kmeans-*)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    ap.add_argument("--json", help="also write every measurement here")
    ap.add_argument("--no-floor", action="store_true", help="skip the matrix-product floor (slow at large sizes)")
    ap.add_argument("--section", default="kmeans-bench", help="name of the marked section of --out to replace")
    ap.add_argument("--title", default="k-means: ktlab, faiss-cpu, scikit-learn")
    ap.add_argument("--from-json", help="only write the Markdown from measurements saved with --json")
    args = ap.parse_args()
    if args.peer:
        return peer(args)
    args.load = None
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        args.blas = saved.get("blas", []) if isinstance(saved, dict) else []
        write_markdown(Path(args.out), saved["results"] if isinstance(saved, dict) else saved, args)
        return None
    args.load = os.getloadavg()[0]

    if args.bench_bin:
        bench = Path(args.bench_bin)
    else:
        bench = newest_bench("kmeans")
    env = dict(os.environ)
    t = str(args.threads)
    env.update(OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, RAYON_NUM_THREADS=t)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    peers = args.peers.split(",")
    peer_env, args.blas = {}, []
    for p in peers:
        peer_env[p], info = best_env_for(p, env)
        args.blas.append(info)
        print(json.dumps({"blas": info}), flush=True)
    results = []
    for size in args.sizes.split(","):
        n, d, k = (int(v) for v in size.lower().split("x"))
        data = Path(args.data_dir)
        px = data / f"x_{n}_{d}_{k}_s{args.seed}.npy"
        pc = data / f"init_{n}_{d}_{k}_s{args.seed}.npy"
        make_data(px, pc, n, d, k, args.seed)
        base = {"n": n, "d": d, "k": k}
        if not args.no_floor:
            rows, _ = run_one([bench, "--input", px, "--init", pc, "--threads", t, "--floor", "--iterations", "1", "--algorithm", "lloyd"], env)
            for r in rows:
                if r["impl"] in ("floor", "assign-step"):
                    results.append({**r, **base})
        algorithms = ["lloyd", "bounded"] if args.algorithm == "both" else [args.algorithm]
        runs = [("ktlab", a) for a in algorithms] if "ktlab" in peers else []
        runs = [r for p in peers for r in (runs if p == "ktlab" else [(p, None)])]
        for rnd in range(args.rounds):
            for p, algorithm in runs:
                if p == "ktlab":
                    cmd = [bench, "--input", px, "--init", pc, "--threads", t, "--iterations", str(args.iterations), "--algorithm", algorithm]
                else:
                    cmd = [sys.executable, __file__, "--peer", p, "--input", px, "--init", pc, "--threads", t, "--iterations", str(args.iterations)]
                rows, wall = run_one(cmd, peer_env[p])
                for r in rows:
                    r.update(base, round=rnd, wall_s=wall)
                    results.append(r)
                    print(json.dumps(r), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"blas": args.blas, "results": results}, indent=1))
    write_markdown(Path(args.out), results, args)
    return None


def blas_lines(blas):
    """One Markdown line per peer: its BLAS libraries and kernels, forced or not, comparable or not."""
    if not blas:
        return ["- not recorded (measurements saved before the check existed)"]
    lines = []
    for b in blas:
        libs = "; ".join(f"{l.get('lib')}: {l.get('kernel') or '?'}" for l in b["libs"]) or "none found"
        how = f" (set with `OPENBLAS_CORETYPE={b['best']}`)" if b.get("forced") else ""
        verdict = "" if b.get("comparable", True) else f" **not comparable: below the CPU's best kernel {b['best']}**"
        lines.append(f"- {b['peer']}: {libs}{how}{verdict}")
    return lines


def write_markdown(out, results, args):
    sizes = []
    for r in results:
        key = (r["n"], r["d"], r["k"])
        if key not in sizes:
            sizes.append(key)
    lines = [
        f"## {args.title}",
        "",
        f"Machine: {machine()}. {load_note(args.load)} Runs alternate between the implementations",
        f"and the table shows medians of {args.rounds} rounds each; compare the ratios.",
        "",
        "Reproduce: `cargo build --release --bench kmeans`, then",
        f"`python scripts/bench_kmeans.py --sizes {args.sizes} --iterations {args.iterations} --threads {args.threads}"
        f" --rounds {args.rounds} --peers {args.peers} --algorithm {args.algorithm}"
        + (" --no-floor" if args.no_floor else "")
        + (f" --section {args.section}" if args.section != "kmeans-bench" else "")
        + "`"
        + (" (what `make bench-kmeans` runs)." if args.section == "kmeans-bench" else "."),
        "",
        f"Data: Gaussian mixture (`k` centres ~ N(0, 1)^d, unit noise), float32 `.npy`, seed {args.seed}; the same",
        f"initial centroids (`k` data points) for all; {args.iterations} iterations; {args.threads} threads everywhere",
        "(`OMP_NUM_THREADS`, `faiss.omp_set_num_threads`, `tch::set_num_threads` + rayon). faiss runs with",
        "`max_points_per_centroid = n` (no subsampling). Seconds per iteration are measured inside each",
        "process around the call that clusters and assigns the points to the final centroids, divided by",
        "the iterations: every implementation does one assignment more than it updates (ktlab's",
        "`lloyd_with` assigns to the initial centroids first; scikit-learn's `fit` and faiss's `train`",
        "followed by the `search` of its flat index over the final centroids assign last; faiss's `train`",
        "alone is in the notes). The wall time is the whole process (start-up, loading the `.npy`,",
        "clustering). Final inertia: sum of squared distances of all points to the final centroids.",
        "",
        "BLAS kernels (checked before the runs; each peer is given the best kernel this CPU supports):",
        *blas_lines(getattr(args, "blas", [])),
        "",
        "| N | D | K | implementation | s / iteration | wall s | peak RSS MiB | final inertia | ratio to faiss | ratio to floor |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for n, d, k in sizes:
        rs = [r for r in results if (r["n"], r["d"], r["k"]) == (n, d, k)]
        floor = next((r for r in rs if r["impl"] == "floor"), None)
        floor_s = min(v for v in [floor.get("tiled_s"), floor.get("whole_s")] if v is not None) if floor else None
        step = next((r for r in rs if r["impl"] == "assign-step"), None)
        impls = []
        for r in rs:
            if r["impl"] not in ("floor", "assign-step") and r["impl"] not in impls:
                impls.append(r["impl"])
        med = {}
        for impl in impls:
            xs = [r for r in rs if r["impl"] == impl]
            med[impl] = {
                "per": statistics.median(r["per_iteration_s"] for r in xs),
                "wall": statistics.median(r["wall_s"] for r in xs),
                "inertia": statistics.median(r["inertia"] for r in xs),
                "rss": max(r.get("peak_rss_mb", 0.0) for r in xs),
            }
        faiss_key = next((i for i in impls if i.startswith("faiss")), None)
        unfair = {b["peer"] for b in getattr(args, "blas", []) if not b.get("comparable", True)}
        for impl in impls:
            m = med[impl]
            rf = m["per"] / med[faiss_key]["per"] if faiss_key else None
            if rf is not None and ({"faiss", impl.split("-")[0]} & unfair):
                rf = None  # a peer on a slower BLAS kernel than the CPU allows: not comparable
            rfl = m["per"] / floor_s if floor_s else None
            lines.append(
                f"| {n:,} | {d} | {k:,} | {impl} | {fmt(m['per'])} | {fmt(m['wall'], 2)} | {m['rss']:.0f} | {m['inertia']:.8g} | {fmt(rf, 2)} | {fmt(rfl, 2)} |"
            )
        if floor_s:
            gf = 2.0 * n * d * k / floor_s / 1e9
            lines.append(f"| {n:,} | {d} | {k:,} | floor: one N x K x D matrix product (libtorch `mm`) | {fmt(floor_s)} | | | | | 1.00 |")
            notes.append(f"- {n:,} x {d}, K = {k:,}: the floor runs at {gf:.0f} GFLOP/s.")
        if step:
            notes.append(
                f"- {n:,} x {d}, K = {k:,}: one assignment step took {step['portable_s']:.3f} s as the earlier"
                f" per-block libtorch sequence and {step['kernel_s']:.3f} s with the tiled CPU kernel"
                f" ({step['labels_differ']:,} of {n:,} labels differ; distances within a relative"
                f" {step['max_rel_gap']:.1e}: the kernel sums them in Rust, the sequence with libtorch's `sum`)."
            )
        if faiss_key:
            for impl in impls:
                if impl.startswith("ktlab"):
                    rel = (med[impl]["inertia"] - med[faiss_key]["inertia"]) / med[faiss_key]["inertia"]
                    notes.append(f"- {n:,} x {d}, K = {k:,}: {impl} final inertia vs faiss: {rel * 100:+.3f} %.")
            train_only = [r["train_only_per_iteration_s"] for r in rs if r["impl"] == faiss_key and "train_only_per_iteration_s" in r]
            if train_only:
                notes.append(
                    f"- {n:,} x {d}, K = {k:,}: faiss's `train` alone (without the final assignment) took "
                    f"{statistics.median(train_only):.3f} s per iteration."
                )
    lines += [""] + notes + [""]
    write_section(out, args.section, "\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
