//! Seconds per Lloyd iteration of ktlab's k-means, and the floor it is measured
//! against: the `N x K x D` matrix product alone. Reads a float32/float16 `.npy`
//! matrix (and optionally initial centroids) or draws uniform random data, so
//! that `scripts/bench_kmeans.py` can time faiss-cpu and scikit-learn on the same
//! inputs. Prints one JSON object per measurement on stdout.
//!
//! `cargo bench --bench kmeans -- --n 50000 --d 256 --k 1000 --iterations 10 --threads 2`
//! `cargo bench --bench kmeans -- --input x.npy --init c.npy --k 1000 --algorithm both --floor`
use std::path::{Path, PathBuf};
use std::time::Instant;

use ktlab::cluster::{lloyd_with, nearest, nearest_portable, KMeansAlgorithm, LloydOptions, DEFAULT_BLOCK_ROWS};
use ktlab::data::NpyMatrix;
use tch::{Device, Kind, Tensor};

struct Args {
    input: Option<PathBuf>,
    init: Option<PathBuf>,
    n: i64,
    d: i64,
    k: i64,
    iterations: usize,
    threads: usize,
    algorithms: Vec<KMeansAlgorithm>,
    floor: bool,
    repeat: usize,
    seed: i64,
}

fn parse() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut a = Args {
        input: None,
        init: None,
        n: 50_000,
        d: 256,
        k: 1000,
        iterations: 10,
        threads: 2,
        algorithms: vec![KMeansAlgorithm::Lloyd],
        floor: false,
        repeat: 1,
        seed: 0,
    };
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--floor" {
            a.floor = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<i64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--input" => a.input = Some(value.into()),
            "--init" => a.init = Some(value.into()),
            "--n" => a.n = num(&value)?,
            "--d" => a.d = num(&value)?,
            "--k" => a.k = num(&value)?,
            "--iterations" => a.iterations = num(&value)? as usize,
            "--threads" => a.threads = num(&value)? as usize,
            "--repeat" => a.repeat = num(&value)? as usize,
            "--seed" => a.seed = num(&value)?,
            "--algorithm" => {
                a.algorithms = match value.as_str() {
                    "both" => vec![KMeansAlgorithm::Lloyd, KMeansAlgorithm::Bounded],
                    other => vec![other.parse::<KMeansAlgorithm>()?],
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn read(path: &Path) -> Result<Tensor, String> {
    let m = NpyMatrix::open(path).map_err(|e| e.to_string())?;
    m.to_tensor().map_err(|e| e.to_string())
}

/// Seconds of one `N x K x D` product, as the assignment step runs it (row
/// tiles into a reused buffer) and as one call; the faster is the floor.
fn floor(x: &Tensor, c: &Tensor) -> (f64, f64) {
    let _g = tch::no_grad_guard();
    let (n, k) = (x.size()[0], c.size()[0]);
    let ct = c.tr().contiguous();
    let rows = (1i64 << 18) / k.max(1);
    let rows = rows.clamp(64, 4096);
    let tile = Tensor::empty([rows, k], (Kind::Float, Device::Cpu));
    let mut best_tiled = f64::INFINITY;
    let mut best_whole = f64::INFINITY;
    let whole_fits = n * k <= 600_000_000 / 4;
    for _ in 0..3 {
        let t = Instant::now();
        let mut s = 0;
        while s < n {
            let len = rows.min(n - s);
            let _ = x.narrow(0, s, len).mm_out(&tile.narrow(0, 0, len), &ct);
            s += len;
        }
        best_tiled = best_tiled.min(t.elapsed().as_secs_f64());
        if whole_fits {
            let t = Instant::now();
            let out = x.mm(&ct);
            drop(out);
            best_whole = best_whole.min(t.elapsed().as_secs_f64());
        }
    }
    (best_tiled, best_whole)
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kmeans bench: {e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("KTLAB_LOG"))
        .with_writer(std::io::stderr)
        .init();
    tch::set_num_threads(a.threads as i32);
    let _ = rayon::ThreadPoolBuilder::new().num_threads(a.threads).build_global();
    let t_load = Instant::now();
    let x = match &a.input {
        Some(p) => read(p).unwrap_or_else(|e| {
            eprintln!("kmeans bench: {e}");
            std::process::exit(2)
        }),
        None => {
            tch::manual_seed(a.seed);
            Tensor::rand([a.n, a.d], (Kind::Float, Device::Cpu))
        }
    };
    let load_s = t_load.elapsed().as_secs_f64();
    let (n, d) = (x.size()[0], x.size()[1]);
    let init = match &a.init {
        Some(p) => read(p).unwrap_or_else(|e| {
            eprintln!("kmeans bench: {e}");
            std::process::exit(2)
        }),
        None => x.narrow(0, 0, a.k).copy(),
    };
    let k = init.size()[0];
    if a.floor {
        let (tiled, whole) = floor(&x, &init);
        let flops = 2.0 * (n * k * d) as f64;
        println!(
            "{{\"impl\": \"floor\", \"n\": {n}, \"d\": {d}, \"k\": {k}, \"threads\": {}, \"tiled_s\": {tiled:.6}, \"whole_s\": {}, \"gflops\": {:.1}}}",
            a.threads,
            if whole.is_finite() { format!("{whole:.6}") } else { "null".into() },
            flops / tiled.min(whole) / 1e9
        );
    }
    if a.floor {
        // One assignment step, the portable libtorch sequence (what every
        // device ran before the CPU kernel) against the CPU kernel.
        let time = |f: &dyn Fn() -> (Tensor, Tensor)| {
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    let r = f();
                    (t.elapsed().as_secs_f64(), r)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .unwrap_or((f64::NAN, (Tensor::new(), Tensor::new())))
        };
        let (portable, (lp, dp)) = time(&|| nearest_portable(&x, &init, DEFAULT_BLOCK_ROWS).expect("assignment"));
        let (kernel, (lk, dk)) = time(&|| nearest(&x, &init, DEFAULT_BLOCK_ROWS).expect("assignment"));
        // The two paths sum the exact distances differently: count the
        // labels that differ and the largest relative gap of the distances.
        let differ = lp.ne_tensor(&lk).sum(tch::Kind::Int64).int64_value(&[]);
        let gap = (&dp - &dk).abs().divide(&dp.clamp_min(1e-30)).max().double_value(&[]);
        println!(
            "{{\"impl\": \"assign-step\", \"n\": {n}, \"d\": {d}, \"k\": {k}, \"threads\": {}, \"portable_s\": {portable:.6}, \"kernel_s\": {kernel:.6}, \"labels_differ\": {differ}, \"max_rel_gap\": {gap:e}}}",
            a.threads
        );
    }
    for _ in 0..a.repeat {
        for &algorithm in &a.algorithms {
            let opts = LloydOptions {
                iterations: a.iterations,
                algorithm,
                ..LloydOptions::default()
            };
            let t = Instant::now();
            let r = lloyd_with(&x, &init, &opts).unwrap_or_else(|e| {
                eprintln!("kmeans bench: {e}");
                std::process::exit(1)
            });
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{{\"impl\": \"ktlab-{algorithm}\", \"n\": {n}, \"d\": {d}, \"k\": {k}, \"threads\": {}, \"iterations\": {}, \"seconds\": {secs:.6}, \"per_iteration_s\": {:.6}, \"inertia\": {}, \"load_s\": {load_s:.3}, \"peak_rss_mb\": {:.1}}}",
                a.threads,
                r.iterations_run,
                secs / r.iterations_run.max(1) as f64,
                r.inertia,
                peak_rss_mb(),
            );
        }
    }
}
