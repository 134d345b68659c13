//! k-means on libtorch for turning features into pseudo-labels (Noroozi et al.
//! 2018 / DeepCluster): preprocessing, seeded k-means++ or random init, Lloyd
//! iterations with blocked assignment, empty-cluster re-seeding, restarts.
//!
//! Everything runs on the device of the input tensor. Randomness comes from
//! our own seeded ChaCha generator (never libtorch's global RNG), so a result
//! is a deterministic function of `(x, params)` on a given device.
//! All entry points run under `no_grad`, so features that still require
//! gradients can be passed directly; no autograd graph is built.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tch::{Device, Kind, Tensor};

use super::assign::{check_finite, check_matrix, nearest_unchecked};
use super::bounds::Bounds;
use super::error::ClusterError;
use super::preprocess::Preprocess;
use super::seeding::KMeansInit;
use super::tile::{abs_max, f32_view, nearest_cpu, sq_norms};

/// Default rows per distance block: a `4096 x k` f32 score matrix (16 MiB for
/// `k = 1000`) is small on any device.
pub const DEFAULT_BLOCK_ROWS: usize = 4096;

/// Parameters of [`kmeans`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    /// Number of clusters, `1 <= k <= n`.
    pub k: usize,
    /// Maximum number of Lloyd iterations (centroid updates), `>= 1`. Each
    /// iteration is followed by an assignment step; there is one extra
    /// assignment step with the initial centroids, as in scikit-learn's
    /// `max_iter`. Stops earlier when assignments no longer change.
    pub iterations: usize,
    /// Independent runs with derived seeds; the lowest final inertia wins.
    pub restarts: usize,
    /// PCA-whitening to this many dimensions first (`1..=d`), if set.
    pub pca: Option<usize>,
    /// L2-normalise rows (after PCA).
    pub l2_normalize: bool,
    /// Initialisation method.
    pub init: KMeansInit,
    /// Seed for all random choices.
    pub seed: u64,
    /// Rows per distance block (memory/speed trade-off only).
    pub block_rows: usize,
}

impl KMeansParams {
    /// Plain k-means with `k` clusters: 20 iterations, one run, k-means++,
    /// no preprocessing, seed 0.
    pub fn new(k: usize) -> KMeansParams {
        KMeansParams {
            k,
            iterations: 20,
            restarts: 1,
            pca: None,
            l2_normalize: false,
            init: KMeansInit::KMeansPlusPlus,
            seed: 0,
            block_rows: DEFAULT_BLOCK_ROWS,
        }
    }

    /// DeepCluster's settings: PCA-whitening to 256 dims, L2 normalisation,
    /// random init, 20 iterations, one run (needs inputs with `d >= 256`).
    pub fn deepcluster(k: usize) -> KMeansParams {
        KMeansParams {
            pca: Some(256),
            l2_normalize: true,
            init: KMeansInit::Random,
            ..KMeansParams::new(k)
        }
    }

    /// Checks everything that does not depend on the data.
    fn validate(&self) -> Result<(), ClusterError> {
        super::limits::check_counts(self.k, self.iterations, self.restarts)
            .map_err(|(key, message)| ClusterError::Param { key, message })?;
        if self.block_rows == 0 {
            return Err(ClusterError::ZeroBlockRows);
        }
        Ok(())
    }
}

/// How each assignment step finds the nearest centroids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KMeansAlgorithm {
    /// Lloyd's algorithm: every point against every centroid, every step.
    #[default]
    Lloyd,
    /// Lloyd with Yinyang-style triangle-inequality bounds (Ding et al.
    /// 2015) that skip the points whose centroid cannot change: the same
    /// labels, distances and centroids as [`KMeansAlgorithm::Lloyd`], with
    /// fewer distance computations once clusters settle. CPU only; on other
    /// devices it runs as `Lloyd`. Keeps `n x min(k / 10, 128)` f32 bounds.
    Bounded,
}

impl std::fmt::Display for KMeansAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KMeansAlgorithm::Lloyd => "lloyd",
            KMeansAlgorithm::Bounded => "bounded",
        })
    }
}

impl std::str::FromStr for KMeansAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lloyd" => Ok(KMeansAlgorithm::Lloyd),
            "bounded" => Ok(KMeansAlgorithm::Bounded),
            other => Err(format!("unknown k-means algorithm `{other}` (expected lloyd or bounded)")),
        }
    }
}

/// Options of [`lloyd_with`]: what [`lloyd`] takes as arguments, plus the
/// assignment algorithm.
#[derive(Debug, Clone, PartialEq)]
pub struct LloydOptions {
    /// Maximum number of centroid updates, `>= 1` (see [`lloyd`]).
    pub iterations: usize,
    /// Rows per distance block, `>= 1` (memory/speed trade-off only).
    pub block_rows: usize,
    /// How assignments are computed (the result does not depend on it).
    pub algorithm: KMeansAlgorithm,
}

impl Default for LloydOptions {
    /// 20 iterations, [`DEFAULT_BLOCK_ROWS`], the default algorithm.
    fn default() -> LloydOptions {
        LloydOptions {
            iterations: 20,
            block_rows: DEFAULT_BLOCK_ROWS,
            algorithm: KMeansAlgorithm::default(),
        }
    }
}

/// Output of [`kmeans`].
#[derive(Debug)]
pub struct KMeansResult {
    /// `[k, d']` f32 on the input's device, in the preprocessed space
    /// (apply [`KMeansResult::preprocess`] to new data before `nearest`).
    pub centroids: Tensor,
    /// The fitted preprocessing (PCA / L2).
    pub preprocess: Preprocess,
    /// `[n]` i64 cluster of each input row; equals
    /// `nearest(preprocess.apply(x), centroids)`.
    pub assignments: Tensor,
    /// Inertia after each assignment step of the best restart (first entry:
    /// initial centroids). Non-increasing up to float rounding.
    pub inertia_history: Vec<f64>,
    /// Final inertia of every restart, in order.
    pub restart_inertias: Vec<f64>,
    /// Final inertia of the best restart: sum of squared distances of the
    /// preprocessed points to their centroids, accumulated in f64.
    pub inertia: f64,
    /// Number of empty-cluster re-seeds in the best restart.
    pub reseeded: usize,
    /// Centroid updates run by the best restart (see [`LloydResult::iterations_run`]).
    pub iterations_run: usize,
    /// Whether the best restart stopped because assignments stopped changing.
    pub converged: bool,
    /// Clusters no point is assigned to (there are fewer distinct points than `k`), in order.
    pub empty_clusters: Vec<usize>,
}

impl KMeansResult {
    /// "3 of 4 clusters are empty (1, 2, 3): fewer distinct points than k", or nothing.
    pub fn empty_warning(&self, k: usize) -> Option<String> {
        if self.empty_clusters.is_empty() {
            return None;
        }
        let mut list: Vec<String> = self.empty_clusters.iter().take(20).map(usize::to_string).collect();
        if self.empty_clusters.len() > 20 {
            list.push("...".into());
        }
        Some(format!(
            "{} of {k} clusters are empty ({}): the points have fewer distinct values than k",
            self.empty_clusters.len(),
            list.join(", ")
        ))
    }
}

/// Output of [`lloyd`].
#[derive(Debug)]
pub struct LloydResult {
    /// `[k, d]` f32 final centroids.
    pub centroids: Tensor,
    /// `[n]` i64, equal to `nearest(x, centroids)`.
    pub assignments: Tensor,
    /// `[n]` f32 squared distance of each point to its centroid.
    pub distances: Tensor,
    /// Inertia after each assignment step (first entry: initial centroids).
    pub inertia_history: Vec<f64>,
    /// Final inertia (last entry of `inertia_history`).
    pub inertia: f64,
    /// Number of empty-cluster re-seeds.
    pub reseeded: usize,
    /// Number of centroid updates performed: at most `iterations`.
    pub iterations_run: usize,
    /// Whether the run stopped because assignments stopped changing.
    pub converged: bool,
}

/// Clusters the rows of `x` (`[n, d]` f32, any device) into `p.k` clusters.
///
/// Pipeline: optional PCA-whitening to `p.pca` dims, optional row L2
/// normalisation, then `p.restarts` runs of seeded init + [`lloyd`]; the run
/// with the lowest final inertia is returned. All points are used (no
/// subsampling).
pub fn kmeans(x: &Tensor, p: &KMeansParams) -> Result<KMeansResult, ClusterError> {
    kmeans_with(x, p, KMeansAlgorithm::default())
}

/// [`kmeans`] with a chosen assignment algorithm (the result does not depend
/// on it, only the time does).
pub fn kmeans_with(x: &Tensor, p: &KMeansParams, algorithm: KMeansAlgorithm) -> Result<KMeansResult, ClusterError> {
    kmeans_observed(x, p, algorithm, &|_, _| {})
}

/// [`kmeans_with`] that reports its progress: `progress(done, total)` after every
/// centroid update, `total` being `restarts x iterations` (a run that converges early
/// jumps to the end of its share).
pub fn kmeans_observed(
    x: &Tensor,
    p: &KMeansParams,
    algorithm: KMeansAlgorithm,
    progress: &dyn Fn(u64, u64),
) -> Result<KMeansResult, ClusterError> {
    let _no_grad = tch::no_grad_guard();
    p.validate()?;
    let (n, d) = check_matrix(x, "points")?;
    if n == 0 {
        return Err(ClusterError::NoPoints);
    }
    if d == 0 {
        return Err(ClusterError::Shape {
            what: "points",
            expected: "[n, d] with d >= 1".to_string(),
            got: x.size(),
        });
    }
    if p.k > n {
        return Err(ClusterError::KTooLarge { k: p.k, n });
    }
    if let Some(q) = p.pca {
        if q == 0 || q > d {
            return Err(ClusterError::InvalidPcaDims { pca: q, d });
        }
    }
    check_finite(x, "points")?;

    let preprocess = Preprocess::fit(x, p.pca, p.l2_normalize)?;
    let xp = preprocess.apply(x)?.f_contiguous()?;
    // (Without preprocessing these are the points just checked: a second pass would read a
    // memory-mapped matrix from disk again.)
    if p.pca.is_some() || p.l2_normalize {
        check_finite(&xp, "preprocessed points")?;
    }

    let mut best: Option<LloydResult> = None;
    let mut restart_inertias = Vec::with_capacity(p.restarts);
    for r in 0..p.restarts {
        // One ChaCha stream per restart: independent, reproducible, and the
        // first restart does not depend on how many restarts there are.
        let mut rng = ChaCha20Rng::seed_from_u64(p.seed);
        rng.set_stream(r as u64);
        let init = match p.init {
            KMeansInit::KMeansPlusPlus => init_kmeanspp(&xp, p.k, p.block_rows, &mut rng)?,
            KMeansInit::Random => init_random(&xp, p.k, &mut rng)?,
        };
        let total = (p.restarts * p.iterations) as u64;
        let done = (r * p.iterations) as u64;
        let on_update = |i: usize| progress(done + (i.min(p.iterations)) as u64, total);
        let run = run_lloyd(&xp, init, p.iterations, p.block_rows, algorithm, &on_update)?;
        on_update(p.iterations);
        restart_inertias.push(run.inertia);
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    let best = best.ok_or(ClusterError::ZeroRestarts)?;
    let counts = Vec::<i64>::try_from(&best.assignments.f_bincount(None::<Tensor>, p.k as i64)?.f_to(Device::Cpu)?)?;
    let empty_clusters = (0..p.k).filter(|&j| counts[j] == 0).collect();
    Ok(KMeansResult {
        centroids: best.centroids,
        preprocess,
        assignments: best.assignments,
        inertia_history: best.inertia_history,
        restart_inertias,
        inertia: best.inertia,
        reseeded: best.reseeded,
        iterations_run: best.iterations_run,
        converged: best.converged,
        empty_clusters,
    })
}

/// Lloyd's algorithm on `x` (`[n, d]` f32) from given initial centroids
/// (`[k, d]` f32, same device, `1 <= k <= n`), for at most `iterations`
/// centroid updates; it stops early when an update leaves all assignments
/// unchanged. If the budget runs out while the final assignment leaves a
/// cluster empty, it stays empty (never more updates than asked: the callers
/// warn, naming the empty clusters). No preprocessing is applied. Used by [`kmeans`]; public
/// so that results can be compared with other implementations from the same
/// starting point.
///
/// Empty clusters are re-seeded by splitting the largest cluster: the empty
/// centroid is set to the point of the largest cluster farthest from that
/// cluster's (updated) centroid, and that point is moved to the new cluster.
/// The objective of the re-seeded partition is at most that of the partition
/// before (the moved point now costs 0, and the remaining points of the
/// largest cluster are re-centred on their mean), so the inertia stays
/// non-increasing. faiss instead copies the centroid of a large cluster and
/// perturbs both copies symmetrically by a small relative epsilon; that can
/// raise the inertia for an iteration and, for duplicated points, leave
/// the two copies splitting nothing. We prefer the monotone variant, which
/// also makes "inertia never increases" a testable invariant.
pub fn lloyd(x: &Tensor, init_centroids: &Tensor, iterations: usize, block_rows: usize) -> Result<LloydResult, ClusterError> {
    let opts = LloydOptions {
        iterations,
        block_rows,
        algorithm: KMeansAlgorithm::default(),
    };
    lloyd_with(x, init_centroids, &opts)
}

/// [`lloyd`] with [`LloydOptions`] (the algorithm among them).
pub fn lloyd_with(x: &Tensor, init_centroids: &Tensor, opts: &LloydOptions) -> Result<LloydResult, ClusterError> {
    let LloydOptions {
        iterations,
        block_rows,
        algorithm,
    } = *opts;
    let _no_grad = tch::no_grad_guard();
    let (n, d) = check_matrix(x, "points")?;
    let (k, dc) = check_matrix(init_centroids, "initial centroids")?;
    if n == 0 {
        return Err(ClusterError::NoPoints);
    }
    if k == 0 {
        return Err(ClusterError::ZeroK);
    }
    if k > n {
        return Err(ClusterError::KTooLarge { k, n });
    }
    if dc != d {
        return Err(ClusterError::Shape {
            what: "initial centroids",
            expected: format!("[{k}, {d}]"),
            got: init_centroids.size(),
        });
    }
    if x.device() != init_centroids.device() {
        return Err(ClusterError::Device {
            what: "lloyd",
            left: x.device(),
            right: init_centroids.device(),
        });
    }
    if iterations == 0 {
        return Err(ClusterError::ZeroIterations);
    }
    if block_rows == 0 {
        return Err(ClusterError::ZeroBlockRows);
    }
    check_finite(x, "points")?;
    check_finite(init_centroids, "initial centroids")?;
    run_lloyd(
        &x.f_contiguous()?,
        init_centroids.f_detach_copy()?,
        iterations,
        block_rows,
        algorithm,
        &|_| {},
    )
}

/// The assignment step of [`run_lloyd`]: plain, or with carried bounds.
enum Assigner {
    /// Rows per block, and on the CPU what the kernel needs of the points, taken once:
    /// their largest absolute value and their squared norms.
    Plain(usize, Option<(f64, Vec<f32>)>),
    Bounded(Box<Bounds>),
}

impl Assigner {
    /// The first assignment, which also chooses how the next ones run.
    fn start(
        x: &Tensor,
        centroids: &Tensor,
        block_rows: usize,
        algorithm: KMeansAlgorithm,
    ) -> Result<(Assigner, Tensor, Tensor), ClusterError> {
        if algorithm == KMeansAlgorithm::Bounded && x.device() == Device::Cpu {
            let (b, labels, dists) = Bounds::start(x, centroids, block_rows)?;
            return Ok((Assigner::Bounded(Box::new(b)), labels, dists));
        }
        // On the CPU what the kernel needs of the points is taken once, before the first
        // assignment too (`nearest_unchecked` would take `abs_max` again).
        let stats = if x.device() == Device::Cpu {
            Some((abs_max(x)?, sq_norms(x)?))
        } else {
            None
        };
        let mut assigner = Assigner::Plain(block_rows, stats);
        let (labels, dists) = assigner.assign(x, centroids)?;
        Ok((assigner, labels, dists))
    }

    /// Points whose distances the last step computed (all of them unless bounded).
    fn reassigned(&self) -> Option<usize> {
        match self {
            Assigner::Plain(..) => None,
            Assigner::Bounded(b) => Some(b.last_reassigned),
        }
    }

    fn assign(&mut self, x: &Tensor, centroids: &Tensor) -> Result<(Tensor, Tensor), ClusterError> {
        match self {
            Assigner::Plain(block_rows, Some((x_amax, x_sq))) => {
                nearest_cpu(x, *x_amax, Some(x_sq), centroids, *block_rows, None)?.tensors()
            }
            Assigner::Plain(block_rows, None) => nearest_unchecked(x, centroids, *block_rows),
            Assigner::Bounded(b) => b.step(x, centroids),
        }
    }
}

/// Lloyd iterations without argument checks (callers validated).
fn run_lloyd(
    x: &Tensor,
    init: Tensor,
    iterations: usize,
    block_rows: usize,
    algorithm: KMeansAlgorithm,
    on_update: &dyn Fn(usize),
) -> Result<LloydResult, ClusterError> {
    let k = init.size()[0] as usize;
    let block_rows = device_block_rows(x.device(), k, block_rows);
    let mut centroids = init;
    let (mut assigner, mut labels, mut dists) = Assigner::start(x, &centroids, block_rows, algorithm)?;
    let mut history = vec![sum_f64(&dists)?];
    let mut reseeded = 0usize;
    let mut iterations_run = 0usize;
    let mut converged = false;
    for _ in 0..iterations {
        let started = std::time::Instant::now();
        let (new_centroids, reseeds) = update_centroids(x, &labels, k, block_rows)?;
        let updated = started.elapsed();
        reseeded += reseeds;
        iterations_run += 1;
        let (new_labels, new_dists) = assigner.assign(x, &new_centroids)?;
        on_update(iterations_run);
        tracing::debug!(
            iteration = iterations_run,
            update_s = updated.as_secs_f64(),
            assign_s = (started.elapsed() - updated).as_secs_f64(),
            reseeds,
            reassigned = assigner.reassigned(),
            "k-means iteration"
        );
        // Unchanged assignments (and no re-seed) mean the centroids are the
        // means of the current clusters: a fixed point.
        let unchanged = reseeds == 0 && new_labels.f_equal(&labels)?;
        centroids = new_centroids;
        labels = new_labels;
        dists = new_dists;
        history.push(sum_f64(&dists)?);
        if unchanged {
            converged = true;
            break;
        }
    }
    // Never more iterations than asked: a final assignment that leaves a cluster empty
    // (Lloyd can empty one in any step; re-seeding happens in the update) stays so, and
    // the callers name the empty clusters in a warning.
    let inertia = history.last().copied().unwrap_or(0.0);
    Ok(LloydResult {
        centroids,
        assignments: labels,
        distances: dists,
        inertia_history: history,
        inertia,
        reseeded,
        iterations_run,
        converged,
    })
}

/// Score elements (`rows x k` float32) of one block on a GPU: 256 MiB.
const CUDA_BLOCK_ELEMENTS: usize = 1 << 26;

/// Rows per block on `device`: `block_rows` on the CPU (blocks sized for its caches); on a
/// GPU as many rows as fill [`CUDA_BLOCK_ELEMENTS`] scores, so that a block is a few large
/// kernels rather than thousands of small launches per iteration (at the paper's scale,
/// 33,554 rows instead of 4,096: 39 blocks instead of 313). Each row's label and distance
/// do not depend on the block it is in.
fn device_block_rows(device: Device, k: usize, block_rows: usize) -> usize {
    match device {
        Device::Cpu => block_rows,
        _ => block_rows.max(CUDA_BLOCK_ELEMENTS / k.max(1)),
    }
}

/// Sum of a tensor accumulated in f64.
fn sum_f64(t: &Tensor) -> Result<f64, ClusterError> {
    Ok(t.f_sum(Kind::Double)?.f_double_value(&[])?)
}

/// Means of the clusters given by `labels` (sums accumulated in f64 on the
/// device, block by block), with empty clusters re-seeded as described on
/// [`lloyd`]. Returns `([k, d] f32, number of re-seeds)`.
fn update_centroids(x: &Tensor, labels: &Tensor, k: usize, block_rows: usize) -> Result<(Tensor, usize), ClusterError> {
    let device = x.device();
    let size = x.size();
    let (n, d) = (size[0] as usize, size[1]);
    let sums = if device == Device::Cpu {
        cluster_sums_cpu(x, labels, k)?
    } else {
        let mut sums = Tensor::f_zeros([k as i64, d], (Kind::Double, device))?;
        let mut start = 0usize;
        while start < n {
            let len = block_rows.min(n - start) as i64;
            let xb = x.f_narrow(0, start as i64, len)?.f_to_kind(Kind::Double)?;
            let lb = labels.f_narrow(0, start as i64, len)?;
            let _ = sums.f_index_add_(0, &lb, &xb)?;
            start += len as usize;
        }
        sums
    };
    let counts_t = labels.f_bincount(None::<Tensor>, k as i64)?;
    let denom = counts_t.f_clamp_min(1)?.f_to_kind(Kind::Double)?.f_unsqueeze(1)?;
    let centroids = sums.f_div(&denom)?;
    let mut counts = Vec::<i64>::try_from(&counts_t.f_to(Device::Cpu)?)?;
    let empties: Vec<usize> = (0..k).filter(|&j| counts[j] == 0).collect();
    if empties.is_empty() {
        return Ok((centroids.f_to_kind(Kind::Float)?, 0));
    }

    let mut labels = labels.f_detach_copy()?;
    let mut reseeds = 0usize;
    for j in empties {
        // Largest cluster, lowest index on ties. With k <= n and an empty
        // cluster, n points share at most k - 1 clusters, so it has >= 2.
        let Some((l, &count_l)) = counts.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))) else {
            break;
        };
        if count_l < 2 {
            break; // unreachable when k <= n; keep the centroid rather than fail
        }
        let members = labels.f_eq(l as i64)?.f_nonzero()?.f_squeeze_dim(1)?;
        let c_l = centroids.f_select(0, l as i64)?;
        let diff = x.f_index_select(0, &members)?.f_to_kind(Kind::Double)?.f_sub(&c_l)?;
        let far = diff
            .f_mul(&diff)?
            .f_sum_dim_intlist(1, false, Kind::Double)?
            .f_argmax(0, false)?
            .f_int64_value(&[])?;
        let p = members.f_int64_value(&[far])?;
        let xp = x.f_select(0, p)?.f_to_kind(Kind::Double)?;

        // Move point p from cluster l to cluster j.
        let mut sum_l = sums.f_select(0, l as i64)?;
        let _ = sum_l.f_sub_(&xp)?;
        counts[l] -= 1;
        counts[j] = 1;
        let new_c_l = sum_l.f_div_scalar(counts[l] as f64)?;
        centroids.f_select(0, l as i64)?.f_copy_(&new_c_l)?;
        sums.f_select(0, j as i64)?.f_copy_(&xp)?;
        centroids.f_select(0, j as i64)?.f_copy_(&xp)?;
        let p_idx = Tensor::f_from_slice(&[p])?.f_to(device)?;
        let _ = labels.f_index_fill_(0, &p_idx, j as i64)?;
        reseeds += 1;
    }
    Ok((centroids.f_to_kind(Kind::Float)?, reseeds))
}

/// Column blocks of [`cluster_sums_cpu`] are whole cache lines of f32.
const SUM_ALIGN: usize = 16;
/// Rows of a chunk of [`cluster_sums_cpu`] (each chunk is read once by all tasks).
const SUM_ROWS: usize = 8192;

/// Per-cluster sums of the rows of `x` (`[n, d]` contiguous f32 CPU, a
/// mapped file is fine) as a `[k, d]` f64 tensor: each value added in row
/// order in f64, as a sequential `index_add_` of the rows converted to f64
/// does, so the result is the same bit for bit and does not depend on the
/// number of threads; the parallelism is over blocks of columns within
/// chunks of rows, so `x` is read once, and nothing of its size is allocated.
/// One block per thread: each task reads a contiguous part of every row (a
/// stream the prefetcher follows; blocks of one cache line each made every
/// row a cache miss per block, measured 18 ms of 100 per iteration at
/// 50,000 x 256).
fn cluster_sums_cpu(x: &Tensor, labels: &Tensor, k: usize) -> Result<Tensor, ClusterError> {
    use rayon::prelude::*;
    let d = x.size()[1] as usize;
    let xv = f32_view(x)?;
    let labels = Vec::<i64>::try_from(labels)?;
    let width = d
        .div_ceil(rayon::current_num_threads().max(1))
        .next_multiple_of(SUM_ALIGN)
        .min(d.max(1));
    // One accumulator per block of columns; the rows go by in chunks (each read from
    // memory, or from a mapped file, once), every block adding its columns of a chunk.
    let mut blocks: Vec<(usize, Vec<f64>)> = (0..d.div_ceil(width))
        .map(|b| (b * width, vec![0f64; k * width.min(d - b * width)]))
        .collect();
    for (rows, labels) in xv.chunks(SUM_ROWS * d.max(1)).zip(labels.chunks(SUM_ROWS)) {
        blocks
            .par_iter_mut()
            .for_each(|(c0, acc)| add_columns(rows, labels, d, *c0, acc, k));
    }
    let mut sums = vec![0f64; k * d];
    for (c0, acc) in blocks {
        let w = acc.len() / k.max(1);
        for (j, src) in acc.chunks_exact(w.max(1)).enumerate().take(k) {
            sums[j * d + c0..j * d + c0 + w].copy_from_slice(src);
        }
    }
    Ok(Tensor::f_from_slice(&sums)?.f_view([k as i64, d as i64])?)
}

/// Adds columns `c0..c0 + w` of every row of `rows` (`d` wide) to the row of `acc`
/// (`[k, w]` f64) its label names, in row order: one add per value, so vector width
/// does not change a bit.
fn add_columns(rows: &[f32], labels: &[i64], d: usize, c0: usize, acc: &mut [f64], k: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { add_columns_avx2(rows, labels, d, c0, acc, k) };
        }
    }
    add_columns_plain(rows, labels, d, c0, acc, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_columns_avx2(rows: &[f32], labels: &[i64], d: usize, c0: usize, acc: &mut [f64], k: usize) {
    add_columns_plain(rows, labels, d, c0, acc, k)
}

#[inline(always)]
fn add_columns_plain(rows: &[f32], labels: &[i64], d: usize, c0: usize, acc: &mut [f64], k: usize) {
    let w = acc.len() / k.max(1);
    for (row, &l) in rows.chunks_exact(d).zip(labels) {
        let (dst, src) = (&mut acc[l as usize * w..(l as usize + 1) * w], &row[c0..c0 + w]);
        for (a, &v) in dst.iter_mut().zip(src) {
            *a += f64::from(v);
        }
    }
}

/// `k` distinct rows of `x` chosen uniformly.
fn init_random(x: &Tensor, k: usize, rng: &mut ChaCha20Rng) -> Result<Tensor, ClusterError> {
    let n = x.size()[0] as usize;
    let idx: Vec<i64> = sample(rng, n, k).into_iter().map(|i| i as i64).collect();
    let idx = Tensor::f_from_slice(&idx)?.f_to(x.device())?;
    Ok(x.f_index_select(0, &idx)?)
}

/// Squared distance of every row of `x` to the single point `c` (`[d]`) as
/// `||x||² - 2 x·c + ||c||²` (one matrix-vector product, no `n x d`
/// temporary), clamped at 0. Rounding can leave a tiny positive weight on
/// a point equal to `c`; callers zero the weights of chosen points exactly.
fn sq_dist_to(x: &Tensor, x_sq: &Tensor, c: &Tensor) -> Result<Tensor, ClusterError> {
    let c_sq = c.f_dot(c)?;
    Ok(x.f_mv(c)?.f_mul_scalar(-2.0)?.f_add(x_sq)?.f_add(&c_sq)?.f_clamp_min(0.0)?)
}

/// `||x_i||²` for every row, block by block (`[n]` f32).
fn row_sq_norms(x: &Tensor, block_rows: usize) -> Result<Tensor, ClusterError> {
    let n = x.size()[0] as usize;
    let mut out = Vec::with_capacity(n.div_ceil(block_rows));
    let mut start = 0usize;
    while start < n {
        let len = block_rows.min(n - start);
        let xb = x.f_narrow(0, start as i64, len as i64)?;
        out.push(xb.f_mul(&xb)?.f_sum_dim_intlist(1, false, Kind::Float)?);
        start += len;
    }
    Ok(Tensor::f_cat(&out, 0)?)
}

/// k-means++ seeding (D² sampling). The running minimum distance lives on the
/// device; each step draws `u ~ U[0, total)` from our RNG and finds the point
/// by binary search in the f64 cumulative sum, so only one scalar per step
/// crosses to the host.
fn init_kmeanspp(x: &Tensor, k: usize, block_rows: usize, rng: &mut ChaCha20Rng) -> Result<Tensor, ClusterError> {
    let n = x.size()[0] as usize;
    let device = x.device();
    let x_sq = row_sq_norms(x, block_rows)?;
    let first = rng.gen_range(0..n) as i64;
    let mut chosen = vec![first];
    let mut min_d = sq_dist_to(x, &x_sq, &x.f_select(0, first)?)?;
    while chosen.len() < k {
        // A chosen point has weight exactly 0, so it cannot be drawn again.
        let last = Tensor::f_from_slice(&chosen[chosen.len() - 1..])?.f_to(device)?;
        let _ = min_d.f_index_fill_(0, &last, 0.0)?;
        let cum = min_d.f_cumsum(0, Kind::Double)?;
        let total = cum.f_double_value(&[n as i64 - 1])?;
        let next = if total > 0.0 && total.is_finite() {
            let u = rng.gen::<f64>() * total;
            // First index whose cumulative weight exceeds u: has weight > 0.
            let i = Tensor::f_searchsorted_scalar(&cum, u, false, true, "right", None::<Tensor>)?
                .f_reshape([-1])?
                .f_int64_value(&[0])?;
            i.clamp(0, n as i64 - 1)
        } else {
            // Every point coincides with a chosen centroid (fewer distinct
            // points than k): take a not-yet-chosen index uniformly.
            let mut taken = vec![false; n];
            for &c in &chosen {
                taken[c as usize] = true;
            }
            let r = rng.gen_range(0..n - chosen.len());
            (0..n).filter(|&i| !taken[i]).nth(r).unwrap_or(0) as i64
        };
        chosen.push(next);
        let d_new = sq_dist_to(x, &x_sq, &x.f_select(0, next)?)?;
        min_d = min_d.f_minimum(&d_new)?;
    }
    let idx = Tensor::f_from_slice(&chosen)?.f_to(device)?;
    Ok(x.f_index_select(0, &idx)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_blocks_hold_a_quarter_gib_of_scores_and_cpu_blocks_are_kept() {
        assert_eq!(device_block_rows(Device::Cpu, 2000, 4096), 4096);
        assert_eq!(device_block_rows(Device::Cuda(0), 2000, 4096), 33_554);
        assert_eq!(device_block_rows(Device::Cuda(0), 100_000, 4096), 4096);
    }
    use crate::cluster::assign::{labels_to_vec, nearest};
    use crate::cluster::metrics::{ari, cluster_sizes, purity};
    use crate::cluster::testutil::{blobs, max_abs_diff, random_matrix, tensor_from_rows, uniform_tensor};
    use proptest::prelude::*;

    fn params(k: usize) -> KMeansParams {
        KMeansParams {
            iterations: 50,
            ..KMeansParams::new(k)
        }
    }

    fn assert_monotone(h: &[f64]) {
        for w in h.windows(2) {
            assert!(
                w[1] <= w[0] + 1e-6 * w[0].abs() + 1e-12,
                "inertia increased: {} -> {} in {h:?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn recovers_well_separated_blobs_exactly() {
        let (rows, ids) = blobs(500, 10, 5, 10.0, 0.5, 42);
        let x = tensor_from_rows(&rows, Device::Cpu);
        for init in [KMeansInit::KMeansPlusPlus, KMeansInit::Random] {
            let p = KMeansParams {
                restarts: 4,
                init,
                seed: 7,
                ..params(5)
            };
            let r = kmeans(&x, &p).unwrap();
            let labels = labels_to_vec(&r.assignments).unwrap();
            assert_eq!(ari(&ids, &labels).unwrap(), 1.0, "{init:?}");
            assert_eq!(purity(&ids, &labels).unwrap(), 1.0);
            assert_eq!(cluster_sizes(&labels, 5).unwrap(), vec![100; 5]);
            assert!(r.converged);
            assert_eq!(r.restart_inertias.len(), 4);
            let min = r.restart_inertias.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(r.inertia, min);
            assert_eq!(r.centroids.size(), vec![5, 10]);
            assert_monotone(&r.inertia_history);
        }
    }

    #[test]
    fn pca_and_l2_pipeline_is_consistent() {
        let (rows, ids) = blobs(400, 12, 4, 10.0, 0.3, 3);
        let x = tensor_from_rows(&rows, Device::Cpu);
        let p = KMeansParams {
            pca: Some(6),
            l2_normalize: true,
            restarts: 3,
            ..params(4)
        };
        let x = x.set_requires_grad(true);
        let r = kmeans(&x, &p).unwrap();
        assert!(!r.centroids.requires_grad());
        assert_eq!(r.centroids.size(), vec![4, 6]);
        let xp = r.preprocess.apply(&x).unwrap();
        let (labels, _) = nearest(&xp, &r.centroids, 64).unwrap();
        assert!(labels.equal(&r.assignments));
        let labels = labels_to_vec(&labels).unwrap();
        assert_eq!(ari(&ids, &labels).unwrap(), 1.0);
    }

    #[test]
    fn deterministic_and_independent_of_global_torch_rng() {
        let x = uniform_tensor(300, 5, 9);
        let p = KMeansParams {
            restarts: 2,
            seed: 123,
            ..KMeansParams::new(7)
        };
        tch::manual_seed(1);
        let a = kmeans(&x, &p).unwrap();
        tch::manual_seed(999);
        let _ = Tensor::randn([10], (Kind::Float, Device::Cpu));
        let b = kmeans(&x, &p).unwrap();
        assert!(a.centroids.equal(&b.centroids));
        assert!(a.assignments.equal(&b.assignments));
        assert_eq!(a.inertia_history, b.inertia_history);
        assert_eq!(a.restart_inertias, b.restart_inertias);
        // A different seed gives a different start.
        let c = kmeans(&x, &KMeansParams { seed: 124, ..p.clone() }).unwrap();
        assert_ne!(a.inertia_history[0], c.inertia_history[0]);
    }

    #[test]
    fn empty_cluster_is_reseeded_by_splitting_the_largest() {
        // Two tight groups; initial centroid 2 is far from everything, so
        // cluster 2 is empty after the first assignment.
        let rows = vec![
            vec![0.0f32, 0.0],
            vec![0.1, 0.0],
            vec![0.0, 0.1],
            vec![0.1, 0.1],
            vec![3.0, 0.0],
            vec![5.0, 5.0],
            vec![5.1, 5.0],
            vec![5.0, 5.1],
        ];
        let x = tensor_from_rows(&rows, Device::Cpu);
        let init = tensor_from_rows(&[vec![0.0, 0.0], vec![5.0, 5.0], vec![100.0, 100.0]], Device::Cpu);
        let r = lloyd(&x, &init, 10, 3).unwrap();
        assert!(r.reseeded >= 1);
        let labels = labels_to_vec(&r.assignments).unwrap();
        assert!(cluster_sizes(&labels, 3).unwrap().iter().all(|&s| s > 0), "{labels:?}");
        // The outlier (3, 0) is the farthest point of the largest cluster.
        assert_eq!(labels[4], 2);
        assert_monotone(&r.inertia_history);
        assert!(r.inertia < r.inertia_history[0]);
    }

    /// The CPU sums are those of a sequential f64 `index_add_`, bit for bit, whatever the
    /// number of threads (which sets the column blocks).
    #[test]
    fn cpu_cluster_sums_equal_index_add() {
        use crate::cluster::testutil::random_matrix;
        for (n, d, k) in [
            (1, 1, 1),
            (300, 5, 7),
            (2000, 40, 30),
            (513, 17, 513),
            (20_000, 19, 11),
            (9000, 256, 50),
            (700, 300, 9),
        ] {
            let rows = random_matrix(n, d, (n * d) as u64);
            let labels: Vec<i64> = (0..n).map(|i| ((i * 7919) % k) as i64).collect();
            let x = tensor_from_rows(&rows, Device::Cpu);
            let want = Tensor::zeros([k as i64, d as i64], (Kind::Double, Device::Cpu)).index_add(
                0,
                &Tensor::from_slice(&labels),
                &x.to_kind(Kind::Double),
            );
            let want: Vec<u64> = Vec::<f64>::try_from(want.reshape([-1]))
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            for threads in [1, 2, 3, 7] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let got: Vec<u64> = pool.install(|| {
                    let x = tensor_from_rows(&rows, Device::Cpu);
                    let sums = cluster_sums_cpu(&x, &Tensor::from_slice(&labels), k).unwrap();
                    Vec::<f64>::try_from(sums.reshape([-1]))
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                });
                assert!(got == want, "n={n} d={d} k={k}, {threads} threads");
            }
        }
    }

    #[test]
    fn error_messages_carry_the_numbers() {
        let x = uniform_tensor(10, 3, 1);
        let msg = |p: KMeansParams| kmeans(&x, &p).unwrap_err().to_string();
        assert_eq!(msg(KMeansParams::new(20)), "k = 20 is larger than the number of points (10)");
        assert_eq!(msg(KMeansParams::new(0)), "k: expected 1..=1000000 clusters, found 0");
        assert!(matches!(
            kmeans(
                &x,
                &KMeansParams {
                    iterations: 0,
                    ..KMeansParams::new(2)
                }
            ),
            Err(ClusterError::Param { key: "iterations", .. })
        ));
        assert!(matches!(
            kmeans(
                &x,
                &KMeansParams {
                    restarts: 0,
                    ..KMeansParams::new(2)
                }
            ),
            Err(ClusterError::Param { key: "restarts", .. })
        ));
        assert!(matches!(
            kmeans(
                &x,
                &KMeansParams {
                    block_rows: 0,
                    ..KMeansParams::new(2)
                }
            ),
            Err(ClusterError::ZeroBlockRows)
        ));
        assert_eq!(
            msg(KMeansParams {
                pca: Some(4),
                ..KMeansParams::new(2)
            }),
            "pca = 4 must be between 1 and the input dimension d = 3"
        );
        assert!(matches!(
            kmeans(
                &x,
                &KMeansParams {
                    pca: Some(0),
                    ..KMeansParams::new(2)
                }
            ),
            Err(ClusterError::InvalidPcaDims { pca: 0, d: 3 })
        ));
        let empty = Tensor::zeros([0, 3], (Kind::Float, Device::Cpu));
        assert!(matches!(kmeans(&empty, &KMeansParams::new(1)), Err(ClusterError::NoPoints)));
        let bad = uniform_tensor(10, 3, 1);
        let _ = bad.get(4).get(2).fill_(f64::INFINITY);
        let _ = bad.get(5).get(0).fill_(f64::NAN);
        assert_eq!(
            kmeans(&bad, &KMeansParams::new(2)).unwrap_err().to_string(),
            "points contains 2 non-finite values (NaN or infinity) out of 30"
        );
        // Finite values so large that squared distances overflow float32 (inertia `inf` and
        // points on the wrong centroid before this check) are refused, naming the limit.
        let huge = uniform_tensor(40, 2, 3) * 1e19;
        let err = kmeans(&huge, &KMeansParams::new(4)).unwrap_err();
        assert!(matches!(err, ClusterError::Magnitude { d: 2, .. }), "{err}");
        assert!(err.to_string().contains("would overflow float32"), "{err}");
        assert!(matches!(
            lloyd(&huge, &huge.narrow(0, 0, 4), 5, 8),
            Err(ClusterError::Magnitude { .. })
        ));
        let f64_input = uniform_tensor(10, 3, 1).to_kind(Kind::Double);
        assert!(matches!(kmeans(&f64_input, &KMeansParams::new(2)), Err(ClusterError::Kind { .. })));
        let init = uniform_tensor(2, 4, 1);
        assert!(matches!(lloyd(&x, &init, 5, 8), Err(ClusterError::Shape { .. })));
    }

    /// Just below the magnitude limit every point ends on its nearest centroid (checked in
    /// f64) and the inertia is finite and equals the sum of those distances.
    #[test]
    fn values_just_below_the_magnitude_limit_cluster_correctly() {
        let d = 8usize;
        let scale = 0.9 * super::super::assign::magnitude_limit(d);
        let x = uniform_tensor(300, d, 11) * scale; // values in [0, 0.9 limit)
        let r = kmeans(&x, &KMeansParams::new(5)).expect("below the limit");
        assert!(r.inertia.is_finite(), "inertia {}", r.inertia);
        let xd = x.to_kind(Kind::Double);
        let cd = r.centroids.to_kind(Kind::Double);
        let dist = (xd.unsqueeze(1) - cd.unsqueeze(0))
            .pow_tensor_scalar(2)
            .sum_dim_intlist(2, false, Kind::Double);
        let best = dist.argmin(1, false);
        let own = dist.gather(1, &r.assignments.unsqueeze(1), false).squeeze_dim(1);
        let min = dist.min_dim(1, false).0;
        // Ties aside, the assigned centroid is the nearest one, to float32 rounding.
        let worse = own.gt_tensor(&(&min * (1.0 + 1e-5))).sum(Kind::Int64).int64_value(&[]);
        assert_eq!(worse, 0, "points not on their nearest centroid (argmin {best:?})");
        let total = own.sum(Kind::Double).double_value(&[]);
        assert!(((r.inertia - total) / total).abs() < 1e-4, "inertia {} vs {total}", r.inertia);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        #[test]
        fn lloyd_invariants(n in 2usize..60, d in 1usize..5, k_frac in 0.0f64..1.0,
                            seed in any::<u64>(), random_init in any::<bool>(), block in 1usize..20) {
            let k = 1 + ((n - 1) as f64 * k_frac) as usize;
            let x = tensor_from_rows(&random_matrix(n, d, seed), Device::Cpu);
            let p = KMeansParams {
                iterations: 15,
                seed,
                block_rows: block,
                init: if random_init { KMeansInit::Random } else { KMeansInit::KMeansPlusPlus },
                ..KMeansParams::new(k)
            };
            let r = kmeans(&x, &p).unwrap();
            // inertia never increases
            assert_monotone(&r.inertia_history);
            prop_assert_eq!(r.inertia, *r.inertia_history.last().unwrap());
            prop_assert!(r.inertia_history.len() <= p.iterations + 1);
            prop_assert!(r.iterations_run <= p.iterations);
            // a converged run has every cluster non-empty (points are distinct with
            // probability 1, and a re-seed counts as a change); one out of budget may not
            let labels = labels_to_vec(&r.assignments).unwrap();
            let sizes = cluster_sizes(&labels, k).unwrap();
            prop_assert!(!r.converged || sizes.iter().all(|&s| s > 0), "sizes {:?}", sizes);
            // assignments are the nearest centroids
            let (near, _) = nearest(&x, &r.centroids, block).unwrap();
            prop_assert!(near.equal(&r.assignments));
            // same seed, same result
            let again = kmeans(&x, &p).unwrap();
            prop_assert!(again.centroids.equal(&r.centroids));
            prop_assert!(again.assignments.equal(&r.assignments));
            prop_assert_eq!(again.inertia_history, r.inertia_history);
        }

        #[test]
        fn reseeding_keeps_invariants(n in 3usize..40, d in 1usize..4, k_frac in 0.0f64..1.0,
                                      far in 1usize..4, seed in any::<u64>()) {
            // Start with `far` centroids far away from all data, so that
            // their clusters are empty and must be re-seeded.
            let k = 2 + ((n - 2) as f64 * k_frac) as usize;
            let far = far.min(k - 1);
            let rows = random_matrix(n, d, seed);
            let mut init: Vec<Vec<f32>> = rows[..k].to_vec();
            for (j, c) in init.iter_mut().take(far).enumerate() {
                c.iter_mut().for_each(|v| *v += 100.0 * (j + 1) as f32);
            }
            let x = tensor_from_rows(&rows, Device::Cpu);
            let init = tensor_from_rows(&init, Device::Cpu);
            let r = lloyd(&x, &init, 10, 5).unwrap();
            prop_assert!(r.reseeded >= far);
            assert_monotone(&r.inertia_history);
            let labels = labels_to_vec(&r.assignments).unwrap();
            let sizes = cluster_sizes(&labels, k).unwrap();
            prop_assert!(sizes.iter().all(|&s| s > 0), "sizes {:?}", sizes);
            let (near, _) = nearest(&x, &r.centroids, 5).unwrap();
            prop_assert!(near.equal(&r.assignments));
        }

        #[test]
        fn k_equal_n_gives_zero_inertia(n in 1usize..30, d in 1usize..4, seed in any::<u64>(),
                                        random_init in any::<bool>()) {
            let x = tensor_from_rows(&random_matrix(n, d, seed), Device::Cpu);
            let p = KMeansParams {
                seed,
                init: if random_init { KMeansInit::Random } else { KMeansInit::KMeansPlusPlus },
                ..KMeansParams::new(n)
            };
            let r = kmeans(&x, &p).unwrap();
            prop_assert_eq!(r.inertia, 0.0);
            let labels = labels_to_vec(&r.assignments).unwrap();
            prop_assert!(cluster_sizes(&labels, n).unwrap().iter().all(|&s| s == 1));
        }
    }

    /// Regression (found by `reseeding_keeps_invariants`): two points 6e-7
    /// apart, each re-seeded as a centroid, used to be ranked by the
    /// expanded distance alone, so one cluster stayed empty for ever.
    #[test]
    fn near_duplicate_points_keep_all_clusters_used() {
        let rows = random_matrix(27, 1, 11431817447207746222);
        let mut init: Vec<Vec<f32>> = rows[..24].to_vec();
        init[0][0] += 100.0;
        init[1][0] += 200.0;
        let x = tensor_from_rows(&rows, Device::Cpu);
        let r = lloyd(&x, &tensor_from_rows(&init, Device::Cpu), 10, 5).unwrap();
        let labels = labels_to_vec(&r.assignments).unwrap();
        let sizes = cluster_sizes(&labels, 24).unwrap();
        assert!(sizes.iter().all(|&s| s > 0), "sizes {sizes:?}");
        assert_monotone(&r.inertia_history);
    }

    #[test]
    fn duplicated_points_do_not_break_kmeanspp() {
        // 3 distinct points, each 4 times, k = 5 > number of distinct points.
        let mut rows = Vec::new();
        for _ in 0..4 {
            rows.extend([vec![0.0f32, 0.0], vec![1.0, 0.0], vec![0.0, 1.0]]);
        }
        let x = tensor_from_rows(&rows, Device::Cpu);
        let r = kmeans(&x, &KMeansParams::new(5)).unwrap();
        assert_eq!(r.inertia, 0.0);
        assert_monotone(&r.inertia_history);
    }

    /// Reads `tests/data/kmeans_reference.json` written by
    /// `tests/reference/kmeans_reference.py` (scikit-learn).
    fn reference() -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kmeans_reference.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn matrix(v: &serde_json::Value) -> Vec<Vec<f32>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
            .collect()
    }

    /// Tolerances against scikit-learn's `KMeans(init=array, n_init=1,
    /// algorithm="lloyd", tol=0)`, which runs in f64 on the same f32 values.
    #[test]
    fn lloyd_matches_scikit_learn() {
        let r = reference();
        let x = tensor_from_rows(&matrix(&r["points"]), Device::Cpu);
        let init = tensor_from_rows(&matrix(&r["init_centroids"]), Device::Cpu);
        let expected_c = tensor_from_rows(&matrix(&r["centroids"]), Device::Cpu);
        let expected_labels: Vec<i64> = r["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let expected_inertia = r["inertia"].as_f64().unwrap();
        let max_iter = r["max_iter"].as_u64().unwrap() as usize;

        let out = lloyd(&x, &init, max_iter, 100).unwrap();
        assert!(out.converged);
        assert_eq!(labels_to_vec(&out.assignments).unwrap(), expected_labels);
        let dc = max_abs_diff(&out.centroids, &expected_c);
        assert!(dc < 1e-4, "centroid max abs diff {dc}");
        let rel = (out.inertia - expected_inertia).abs() / expected_inertia;
        assert!(rel < 1e-4, "inertia {} vs sklearn {expected_inertia} (rel {rel})", out.inertia);
        eprintln!("vs scikit-learn: centroid max abs diff {dc:e}, inertia rel diff {rel:e}");
        if let Some(n_iter) = r["n_iter"].as_u64() {
            // sklearn also counts the update after which the labels were
            // confirmed unchanged; we stop before that (identical) update.
            assert_eq!(out.iterations_run as u64 + 1, n_iter);
        }
    }

    #[test]
    fn cuda_matches_cpu() {
        if crate::device::cuda_device_count() == 0 {
            crate::skip::skip_unavoidable("cuda_matches_cpu", "CUDA not available");
            return;
        }
        let device = Device::Cuda(0);
        let (rows, ids) = blobs(2000, 16, 8, 10.0, 0.5, 5);
        let x = tensor_from_rows(&rows, Device::Cpu);
        let p = KMeansParams {
            restarts: 2,
            pca: Some(8),
            l2_normalize: true,
            block_rows: 300,
            ..params(8)
        };
        let cpu = kmeans(&x, &p).unwrap();
        let gpu = kmeans(&x.to_device(device), &p).unwrap();
        assert_eq!(gpu.centroids.device(), device);
        assert_eq!(gpu.assignments.device(), device);
        let a = labels_to_vec(&cpu.assignments).unwrap();
        let b = labels_to_vec(&gpu.assignments).unwrap();
        assert_eq!(ari(&a, &b).unwrap(), 1.0);
        assert_eq!(ari(&ids, &b).unwrap(), 1.0);
        let rel = (cpu.inertia - gpu.inertia).abs() / cpu.inertia;
        assert!(rel < 1e-4, "cpu {} vs cuda {}", cpu.inertia, gpu.inertia);
        // Same start (host RNG) and same clusters: centroids agree closely.
        if a == b {
            assert!(max_abs_diff(&cpu.centroids, &gpu.centroids) < 1e-3);
        }
        // lloyd from identical starting centroids also agrees.
        let init = x.narrow(0, 0, 8);
        let lc = lloyd(&x, &init, 20, 512).unwrap();
        let lg = lloyd(&x.to_device(device), &init.to_device(device), 20, 512).unwrap();
        assert!(labels_to_vec(&lc.assignments).unwrap() == labels_to_vec(&lg.assignments).unwrap());
        assert!(max_abs_diff(&lc.centroids, &lg.centroids) < 1e-4);
    }

    /// CPU time (user + system) of this process so far, from /proc (Linux).
    fn cpu_seconds() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0) // USER_HZ is 100 on Linux
    }

    /// `cargo test --release -- --ignored --nocapture bench_kmeans`
    #[test]
    #[ignore = "benchmark; run explicitly in release mode"]
    fn bench_kmeans_50k_256_k100() {
        let x = uniform_tensor(50_000, 256, 1);
        let p = KMeansParams {
            iterations: 10,
            ..KMeansParams::new(100)
        };
        let threads = tch::get_num_threads();
        for t in [threads, 1] {
            tch::set_num_threads(t);
            for init in [KMeansInit::Random, KMeansInit::KMeansPlusPlus] {
                let (start, cpu0) = (std::time::Instant::now(), cpu_seconds());
                let r = kmeans(&x, &KMeansParams { init, ..p.clone() }).unwrap();
                let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a).unwrap_or(f64::NAN);
                eprintln!(
                    "kmeans 50000x256 k=100 iterations={} init={init:?} threads={t}: wall {:.2?}, cpu {cpu:.2}s (inertia {:.1})",
                    r.iterations_run,
                    start.elapsed(),
                    r.inertia,
                );
            }
        }
        tch::set_num_threads(threads);
    }
}
