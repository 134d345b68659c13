//! `ktlab kmeans INPUT.npy --k K ... --out DIR`: the `kmeans` stage's implementation on any
//! float32 or float16 matrix a user has (features from another framework included).
use std::process::ExitCode;
use std::time::Instant;

use crate::cli::KmeansArgs;
use crate::cluster::{self, KMeansAlgorithm, KMeansInit, KMeansParams};
use crate::device::DeviceSpec;
use crate::Error;

pub fn kmeans(args: &KmeansArgs) -> Result<ExitCode, Error> {
    let init = match args.init.as_str() {
        "kmeans++" => KMeansInit::KMeansPlusPlus,
        "random" => KMeansInit::Random,
        other => return Err(Error::Usage(format!("--init: expected `kmeans++` or `random`, found `{other}`"))),
    };
    let algorithm: KMeansAlgorithm = args.algorithm.parse().map_err(|e| Error::Usage(format!("--algorithm: {e}")))?;
    let device = args
        .device
        .parse::<DeviceSpec>()
        .and_then(DeviceSpec::resolve)
        .map_err(|e| Error::Usage(format!("--device: {e}")))?;
    if let Some(n) = args.threads {
        if n == 0 {
            return Err(Error::Usage("--threads: expected at least 1".into()));
        }
        tch::set_num_threads(n as i32);
    }
    let params = KMeansParams {
        iterations: args.iterations,
        pca: args.pca,
        l2_normalize: args.l2_normalize,
        init,
        seed: args.seed,
        ..KMeansParams::new(args.k)
    };
    let clock = Instant::now();
    // One step per centroid update; drawn on stderr when it is a terminal.
    let bar = indicatif::ProgressBar::new((params.restarts * params.iterations) as u64).with_style(
        indicatif::ProgressStyle::with_template("k-means {bar:30} {pos}/{len} updates, {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = |done: u64, _total: u64| bar.set_position(done);
    let summary = cluster::run_kmeans_file(&args.input, &params, algorithm, device.into(), &args.out, &progress);
    bar.finish_and_clear();
    let summary = summary?;
    let inertia = summary.result.inertia;
    if let Some(warning) = summary.result.empty_warning(args.k) {
        tracing::warn!("{}: {warning}", args.input.display());
    }
    println!(
        "k = {} on {} x {} ({}), {} iterations ({}), inertia {inertia:.6}, {:.2}s; wrote {}",
        args.k,
        summary.points,
        summary.dim,
        args.input.display(),
        summary.result.iterations_run,
        if summary.result.converged { "converged" } else { "not converged" },
        clock.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
