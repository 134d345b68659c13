//! The CPU assignment kernel: a tile of `x·(-2cᵀ)` products from one matrix
//! product into a reused buffer, then one fused pass over the tile. Per row
//! it finds the smallest expanded score `||c_j||² - 2 x·c_j` (the squared
//! distance less `||x||²`), takes as candidates every centroid whose score is
//! within the rounding margin of that minimum (usually one), re-scores the
//! candidates exactly as `||x - c||²` and keeps the closest (lowest index on
//! ties). For the bounded algorithm it also keeps the best score of every
//! centroid group.
//!
//! The margin is [`score_gamma`]`(d) · 2 (||x|| + max ||c||)²`, above the
//! worst-case f32 error of the difference of two expanded scores, so a
//! centroid outside it cannot be closer than the best-scored one and the
//! label is that of the exact nearest centroid among all `k`, up to the
//! rounding of the exact distances ([`sq_dist`]: f32 differences and squares
//! in 16 lanes, the lanes added in f64). Nothing else runs per tile: the
//! matrix product and one parallel pass. Scores that could overflow f32
//! (data near `1e18`) take a slower path with the same rule.

use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use super::error::ClusterError;

/// Bytes of score tile to aim for. Large, so that the per-tile work outside
/// the matrix product (the hand-off between MKL's threads and rayon's; until
/// kmeans stage version 2 also about 20 small libtorch calls of the exact
/// re-scoring) is paid rarely: on the
/// 2-core benchmark machine, idle, 50,000 x 256 points and K = 1,000 took
/// 0.405 s per iteration with 1 MiB tiles (262 rows, sized for L2), 0.243 s
/// with 8 MiB and 0.220 s with 32 MiB (the 4,096-row block), with identical
/// labels and inertia: the product's rows do not depend on the tile.
const TILE_BYTES: usize = 1 << 25;
/// Fewer rows than this and the matrix product loses efficiency.
const MIN_TILE_ROWS: usize = 64;
/// Rows of the tile scanned by one task.
const SCAN_ROWS: usize = 16;

/// Tile rows for `k` centroids, at most `block_rows`.
pub(crate) fn tile_rows(k: usize, block_rows: usize) -> usize {
    (TILE_BYTES / (4 * k.max(1))).max(MIN_TILE_ROWS).min(block_rows).max(1)
}

/// Contiguous centroid groups for the bounded algorithm: group `g` holds the
/// centroids `g * size .. min((g + 1) * size, k)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Groups {
    pub size: usize,
    pub count: usize,
}

impl Groups {
    pub(crate) fn new(k: usize, count: usize) -> Groups {
        let count = count.clamp(1, k.max(1));
        let size = k.div_ceil(count);
        Groups {
            size,
            count: k.div_ceil(size),
        }
    }
}

/// Output of [`nearest_cpu`].
pub(crate) struct TileAssignment {
    /// `[n]` labels.
    pub labels: Vec<i64>,
    /// `[n]` exact squared distances to the label's centroid ([`sq_dist`]).
    pub dists: Vec<f32>,
    /// With groups: `n x groups.count` row-major best score (`||c||² - 2 x·c`,
    /// without `||x||²`) per group over the centroids other than the row's
    /// label.
    pub group_scores: Vec<f32>,
}

impl TileAssignment {
    /// Labels and distances as `[n]` i64 and f32 CPU tensors.
    pub(crate) fn tensors(&self) -> Result<(Tensor, Tensor), ClusterError> {
        Ok((Tensor::f_from_slice(&self.labels)?, Tensor::f_from_slice(&self.dists)?))
    }
}

/// Read-only view of a contiguous CPU f32 tensor.
pub(crate) fn f32_view(t: &Tensor) -> Result<&[f32], ClusterError> {
    let n = t.numel();
    if t.device() != Device::Cpu || t.f_kind()? != Kind::Float || !t.is_contiguous() {
        return Err(ClusterError::Torch(tch::TchError::Kind(
            "the CPU assignment kernel needs contiguous CPU f32 tensors".into(),
        )));
    }
    if n == 0 {
        return Ok(&[]);
    }
    // SAFETY: the tensor is a contiguous CPU f32 tensor of `n` elements that
    // this module allocated and owns; it is neither resized nor written while
    // the returned slice (tied to the borrow of `t`) is alive.
    Ok(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, n) })
}

/// Lanes of the vectorised row passes.
const LANES: usize = 16;

/// Relative error bound of an expanded f32 score in `d` dimensions: the
/// difference of two scores of a row is within `2 γ (||x|| + max ||c||)²` of
/// the difference of the true squared distances. `γ = 4 (d + 8) 2⁻²⁴`,
/// several times the worst case of a `d`-term f32 dot product and the
/// additions around it. The bounded algorithm's bounds use it too.
pub(crate) fn score_gamma(d: usize) -> f64 {
    4.0 * (d as f64 + 8.0) * f64::from(f32::EPSILON) / 2.0
}

/// Largest absolute value of a contiguous CPU f32 tensor, in parallel
/// chunks of its memory (no temporary; a mapped file is fine).
pub(crate) fn abs_max(t: &Tensor) -> Result<f64, ClusterError> {
    let v = f32_view(t)?;
    Ok(f64::from(
        v.par_chunks(1 << 16)
            .map(|c| c.iter().fold(0f32, |m, &x| m.max(x.abs())))
            .reduce(|| 0f32, f32::max),
    ))
}

/// Largest absolute value of a contiguous CPU f32 tensor and whether it holds a NaN, in one
/// parallel pass (no temporary; a mapped file is fine). An infinity shows as an infinite
/// maximum.
pub(crate) fn abs_max_and_nan(t: &Tensor) -> Result<(f64, bool), ClusterError> {
    let v = f32_view(t)?;
    let (m, nan) = v
        .par_chunks(1 << 16)
        .map(|c| c.iter().fold((0f32, false), |(m, nan), &x| (m.max(x.abs()), nan | x.is_nan())))
        .reduce(|| (0f32, false), |a, b| (a.0.max(b.0), a.1 | b.1));
    Ok((f64::from(m), nan))
}

/// `min_j (p[j] + q[j])` (the smallest score of a row).
#[inline]
fn row_min(p: &[f32], q: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if p.len() >= LANES && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { row_min_avx2(p, q) };
        }
    }
    row_min_lanes(p, q)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn row_min_avx2(p: &[f32], q: &[f32]) -> f32 {
    row_min_lanes(p, q)
}

#[inline(always)]
fn row_min_lanes(p: &[f32], q: &[f32]) -> f32 {
    let mut m = [f32::INFINITY; LANES];
    let (pc, qc) = (p.chunks_exact(LANES), q.chunks_exact(LANES));
    let (pr, qr) = (pc.remainder(), qc.remainder());
    for (a, b) in pc.zip(qc) {
        for l in 0..LANES {
            let v = a[l] + b[l];
            m[l] = if v < m[l] { v } else { m[l] };
        }
    }
    let mut best = m.iter().copied().fold(f32::INFINITY, f32::min);
    for (a, b) in pr.iter().zip(qr) {
        best = best.min(a + b);
    }
    best
}

/// Pushes onto `out` every `j` with `p[j] + q[j] <= thr`, in index order;
/// blocks of `LANES` with no such entry are passed over in one vector test.
#[inline]
fn indices_within(p: &[f32], q: &[f32], thr: f32, out: &mut Vec<u32>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { indices_within_avx2(p, q, thr, out) };
        }
    }
    indices_within_lanes(p, q, thr, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn indices_within_avx2(p: &[f32], q: &[f32], thr: f32, out: &mut Vec<u32>) {
    indices_within_lanes(p, q, thr, out)
}

#[inline(always)]
fn indices_within_lanes(p: &[f32], q: &[f32], thr: f32, out: &mut Vec<u32>) {
    let (pc, qc) = (p.chunks_exact(LANES), q.chunks_exact(LANES));
    let tail = p.len() - pc.remainder().len();
    for (c, (a, b)) in pc.zip(qc).enumerate() {
        let mut any = false;
        for l in 0..LANES {
            any |= a[l] + b[l] <= thr;
        }
        if any {
            for l in 0..LANES {
                if a[l] + b[l] <= thr {
                    out.push((c * LANES + l) as u32);
                }
            }
        }
    }
    for j in tail..p.len() {
        if p[j] + q[j] <= thr {
            out.push(j as u32);
        }
    }
}

/// [`sq_norm`] of every row of `x` (`[n, d]` f32 CPU contiguous), in parallel: what
/// [`nearest_cpu`] takes per row, kept by callers that assign the same points again.
pub(crate) fn sq_norms(x: &Tensor) -> Result<Vec<f32>, ClusterError> {
    let d = x.size()[1] as usize;
    Ok(f32_view(x)?.par_chunks(d.max(1)).map(sq_norm).collect())
}

/// `||x||²`: squares in f32 over 16 lanes, the lanes added in f64.
#[inline]
pub(crate) fn sq_norm(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if x.len() >= LANES && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { sq_norm_avx2(x) };
        }
    }
    sq_norm_lanes(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sq_norm_avx2(x: &[f32]) -> f32 {
    sq_norm_lanes(x)
}

#[inline(always)]
fn sq_norm_lanes(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let xs = x.chunks_exact(LANES);
    let rest = xs.remainder();
    for a in xs {
        for l in 0..LANES {
            acc[l] += a[l] * a[l];
        }
    }
    let mut sum: f64 = acc.iter().map(|&v| f64::from(v)).sum();
    for &a in rest {
        sum += f64::from(a) * f64::from(a);
    }
    sum as f32
}

/// Best and second best index of a row of scores with libtorch's NaN rule
/// (a NaN is smaller than anything; lowest index on ties); `(i1, i1)` when
/// the row has one entry. The rule of the overflow path.
fn top2_nan_aware(row: &[f32]) -> (usize, usize) {
    let less = |a: f32, b: f32| a.is_nan() && !b.is_nan() || a < b;
    let mut i1 = 0usize;
    for j in 1..row.len() {
        if less(row[j], row[i1]) {
            i1 = j;
        }
    }
    let mut i2 = usize::MAX;
    for j in 0..row.len() {
        if j != i1 && (i2 == usize::MAX || less(row[j], row[i2])) {
            i2 = j;
        }
    }
    (i1, if i2 == usize::MAX { i1 } else { i2 })
}

/// `||x - c||²` for two rows of equal length: differences and squares in
/// f32 over 16 independent lanes (vectorised), the lanes and the remainder
/// added in f64. Its rounding error is far below the gap the expanded scores
/// can resolve; it is what the CPU path reports as a distance and what the
/// inertia sums.
#[inline]
pub(crate) fn sq_dist(x: &[f32], c: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if x.len() >= LANES && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { sq_dist_avx2(x, c) };
        }
    }
    sq_dist_lanes(x, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sq_dist_avx2(x: &[f32], c: &[f32]) -> f32 {
    sq_dist_lanes(x, c)
}

#[inline(always)]
fn sq_dist_lanes(x: &[f32], c: &[f32]) -> f32 {
    debug_assert_eq!(x.len(), c.len());
    let mut acc = [0f32; LANES];
    let xs = x.chunks_exact(LANES);
    let cs = c.chunks_exact(LANES);
    let (xr, cr) = (xs.remainder(), cs.remainder());
    for (a, b) in xs.zip(cs) {
        for l in 0..LANES {
            let t = a[l] - b[l];
            acc[l] += t * t;
        }
    }
    let mut sum: f64 = acc.iter().map(|&v| f64::from(v)).sum();
    for (a, b) in xr.iter().zip(cr) {
        let t = f64::from(a - b);
        sum += t * t;
    }
    sum as f32
}

/// Nearest centroid of every row of `x` (`[n, d]` f32 CPU, contiguous; a
/// memory-mapped file is fine) among `centroids` (`[k, d]` f32 CPU),
/// `n >= 1`, `k >= 1`, finite values; `x_amax` is [`abs_max`] of `x` (or a
/// larger value: callers clustering the same points keep it), `x_sq` its rows'
/// [`sq_norms`] where the caller keeps them (else each is taken in the pass;
/// the same values either way). Works in tiles
/// of at most `block_rows` rows. With `groups`, also returns the best score
/// per centroid group (see [`TileAssignment::group_scores`]).
pub(crate) fn nearest_cpu(
    x: &Tensor,
    x_amax: f64,
    x_sq: Option<&[f32]>,
    centroids: &Tensor,
    block_rows: usize,
    groups: Option<Groups>,
) -> Result<TileAssignment, ClusterError> {
    let n = x.size()[0] as usize;
    let d = x.size()[1] as usize;
    let k = centroids.size()[0] as usize;
    let centroids = centroids.f_contiguous()?;
    // -2 cᵀ as [d, k]; ||c||² in Rust, added in the pass over the tile.
    let neg2_ct = centroids.f_tr()?.f_mul_scalar(-2.0)?.f_contiguous()?;
    let cv = f32_view(&centroids)?;
    let c_sq: Vec<f32> = cv.chunks_exact(d).map(sq_norm).collect();
    let r_max = c_sq.iter().fold(0f32, |m, &v| m.max(v)).sqrt();
    // Scores cannot overflow f32 (so the fast pass is exact) when
    // d · max|c| · (2 max|x| + max|c|) stays far below f32::MAX.
    let cmax = abs_max(&centroids)?;
    let pass = Pass {
        c: cv,
        c_sq: &c_sq,
        k,
        d,
        groups,
        finite: d as f64 * cmax * (2.0 * x_amax + cmax) < 1e36,
        gamma2: 2.0 * score_gamma(d),
        r_max: f64::from(r_max),
    };
    let rows = tile_rows(k, block_rows);
    let tile = Tensor::f_empty([rows as i64, k as i64], (Kind::Float, Device::Cpu))?;
    let g = groups.map_or(0, |g| g.count);
    let mut out = TileAssignment {
        labels: vec![0; n],
        dists: vec![0.0; n],
        group_scores: vec![0f32; if groups.is_some() { n * g } else { 0 }],
    };
    let xv = f32_view(x)?;

    let mut start = 0usize;
    while start < n {
        let len = rows.min(n - start);
        let xb = x.f_narrow(0, start as i64, len as i64)?;
        let products = tile.f_narrow(0, 0, len as i64)?;
        // products[i, j] = -2 x_i·c_j
        let _ = xb.f_mm_out(&products, &neg2_ct)?;
        let span = start..start + len;
        let tile_out = Rows {
            x: &xv[span.start * d..span.end * d],
            x_sq: x_sq.map(|s| &s[span.clone()]),
            labels: &mut out.labels[span.clone()],
            dists: &mut out.dists[span.clone()],
            group_scores: &mut out.group_scores[span.start * g..span.end * g],
        };
        pass.run(f32_view(&products)?, tile_out);
        start += len;
    }
    Ok(out)
}

/// One tile's (or one task's) rows: their points and where their results go.
struct Rows<'a> {
    x: &'a [f32],
    /// `||x||²` of the rows, where the caller keeps them.
    x_sq: Option<&'a [f32]>,
    labels: &'a mut [i64],
    dists: &'a mut [f32],
    group_scores: &'a mut [f32],
}

impl<'a> Rows<'a> {
    /// Splits off the first `len` rows.
    fn split(self, len: usize, d: usize, g: usize) -> (Rows<'a>, Rows<'a>) {
        let (x1, x2) = self.x.split_at(len * d);
        let (s1, s2) = match self.x_sq {
            Some(s) => {
                let (a, b) = s.split_at(len);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let (l1, l2) = self.labels.split_at_mut(len);
        let (d1, d2) = self.dists.split_at_mut(len);
        let (g1, g2) = self.group_scores.split_at_mut(len * g);
        (
            Rows {
                x: x1,
                x_sq: s1,
                labels: l1,
                dists: d1,
                group_scores: g1,
            },
            Rows {
                x: x2,
                x_sq: s2,
                labels: l2,
                dists: d2,
                group_scores: g2,
            },
        )
    }
}

/// What the pass over a tile needs besides the tile.
struct Pass<'a> {
    /// `[k, d]` centroids, row-major.
    c: &'a [f32],
    /// `||c_j||²`.
    c_sq: &'a [f32],
    k: usize,
    d: usize,
    groups: Option<Groups>,
    /// Whether no score can overflow (the fast path).
    finite: bool,
    /// `2 γ`: the margin is `2 γ (||x|| + r_max)²`.
    gamma2: f64,
    /// `max_j ||c_j||`.
    r_max: f64,
}

impl Pass<'_> {
    fn centroid(&self, j: usize) -> &[f32] {
        &self.c[j * self.d..(j + 1) * self.d]
    }

    /// The rows of one tile, `SCAN_ROWS` per task; each task writes its
    /// own disjoint slices.
    fn run(&self, products: &[f32], rows: Rows) {
        let (k, d) = (self.k, self.d);
        let g = self.groups.map_or(0, |g| g.count);
        let mut tasks: Vec<(usize, Rows)> = Vec::with_capacity(rows.labels.len().div_ceil(SCAN_ROWS));
        let mut rest = rows;
        let mut first = 0;
        while !rest.labels.is_empty() {
            let len = SCAN_ROWS.min(rest.labels.len());
            let (head, tail) = rest.split(len, d, g);
            tasks.push((first, head));
            rest = tail;
            first += len;
        }
        tasks.into_par_iter().for_each(|(first, t)| {
            let mut scores = Vec::new();
            let mut candidates = Vec::new();
            for r in 0..t.labels.len() {
                let p = &products[(first + r) * k..(first + r + 1) * k];
                let x = &t.x[r * d..(r + 1) * d];
                let (label, dist) = if self.finite {
                    let x_sq = t.x_sq.map_or_else(|| sq_norm(x), |s| s[r]);
                    self.nearest(p, x, x_sq, &mut candidates)
                } else {
                    self.nearest_overflowing(p, x, &mut scores)
                };
                t.labels[r] = label as i64;
                t.dists[r] = dist;
                if let Some(groups) = self.groups {
                    self.group_mins(p, groups, label, &mut t.group_scores[r * g..(r + 1) * g]);
                }
            }
        });
    }

    /// The exact nearest of the candidates within the margin of the best
    /// score: `(label, exact squared distance)`.
    #[inline]
    fn nearest(&self, p: &[f32], x: &[f32], x_sq: f32, candidates: &mut Vec<u32>) -> (usize, f32) {
        let m = row_min(p, self.c_sq);
        let x_norm = f64::from(x_sq).sqrt();
        let margin = self.gamma2 * (x_norm * (1.0 + 1e-4) + self.r_max).powi(2);
        let thr = (f64::from(m) + margin) as f32;
        candidates.clear();
        indices_within(p, self.c_sq, thr, candidates);
        let mut best = (usize::MAX, f32::INFINITY);
        for &j in candidates.iter() {
            let e = sq_dist(x, self.centroid(j as usize));
            if best.0 == usize::MAX || e < best.1 {
                best = (j as usize, e);
            }
        }
        best
    }

    /// The rule of the portable path for rows whose scores may overflow:
    /// the two best scores (NaN first), re-scored exactly.
    fn nearest_overflowing(&self, p: &[f32], x: &[f32], scores: &mut Vec<f32>) -> (usize, f32) {
        scores.clear();
        scores.extend(p.iter().zip(self.c_sq).map(|(a, b)| a + b));
        let (i1, i2) = top2_nan_aware(scores);
        let d1 = sq_dist(x, self.centroid(i1));
        let d2 = sq_dist(x, self.centroid(i2));
        if d2 < d1 || (d2 == d1 && i2 < i1) {
            (i2, d2)
        } else {
            (i1, d1)
        }
    }

    /// Best score per group of one row, skipping the row's own centroid.
    fn group_mins(&self, p: &[f32], groups: Groups, own: usize, out: &mut [f32]) {
        let size = groups.size;
        for (q, o) in out.iter_mut().enumerate() {
            let lo = q * size;
            let hi = (lo + size).min(self.k);
            *o = (lo..hi)
                .filter(|&j| j != own)
                .fold(f32::INFINITY, |m, j| m.min(p[j] + self.c_sq[j]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_passes_agree_with_plain_loops() {
        let mut rng = 12345u64;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((rng >> 40) % 64) as f32 - 20.0 // many exact ties
        };
        for len in [1usize, 15, 16, 17, 33, 100, 1000, 2001] {
            for _ in 0..20 {
                let p: Vec<f32> = (0..len).map(|_| next()).collect();
                let q: Vec<f32> = (0..len).map(|_| next()).collect();
                let plain = p.iter().zip(&q).map(|(a, b)| a + b).fold(f32::INFINITY, f32::min);
                assert_eq!(row_min(&p, &q), plain, "len {len}");
                let thr = plain + 3.0;
                let mut got = Vec::new();
                indices_within(&p, &q, thr, &mut got);
                let want: Vec<u32> = (0..len as u32).filter(|&j| p[j as usize] + q[j as usize] <= thr).collect();
                assert_eq!(got, want, "len {len}");
                let x: Vec<f32> = (0..len).map(|_| next()).collect();
                let exact: f64 = x.iter().zip(&p).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum();
                assert_eq!(sq_dist(&x, &p), exact as f32, "len {len}"); // small integers: exact
                let norm: f64 = x.iter().map(|a| f64::from(*a).powi(2)).sum();
                assert_eq!(sq_norm(&x), norm as f32, "len {len}");
            }
        }
        assert_eq!(top2_nan_aware(&[f32::NAN, 1.0, 0.0]), (0, 2));
        assert_eq!(top2_nan_aware(&[3.0, 1.0, 1.0, 0.5]), (3, 1));
        assert_eq!(top2_nan_aware(&[2.0]), (0, 0));
        let t = Tensor::from_slice(&[1.0f32, -7.5, 3.0]);
        assert_eq!(abs_max(&t).unwrap(), 7.5);
    }

    /// The kernel's label is the exact nearest centroid of all `k`, up to
    /// the rounding of the exact distances; the portable libtorch sequence
    /// agrees with it but for near ties.
    #[test]
    fn kernel_finds_the_exact_nearest_centroid() {
        use crate::cluster::assign::nearest_torch;
        use crate::cluster::testutil::{random_matrix, tensor_from_rows};
        for (n, k, d, block) in [
            (1, 1, 1, 1),
            (50, 7, 3, 4),
            (700, 300, 17, 4096),
            (1000, 5000, 8, 333),
            (257, 64, 64, 64),
            (300, 40, 300, 128),
        ] {
            let x = tensor_from_rows(&random_matrix(n, d, n as u64), Device::Cpu);
            let c = tensor_from_rows(&random_matrix(k, d, k as u64 + 1), Device::Cpu);
            let g = Groups::new(k, 7);
            let r = nearest_cpu(&x, abs_max(&x).unwrap(), None, &c, block, Some(g)).unwrap();
            // The squared norms kept by the caller give the same result.
            let kept = nearest_cpu(&x, abs_max(&x).unwrap(), Some(&sq_norms(&x).unwrap()), &c, block, Some(g)).unwrap();
            assert_eq!(
                (&kept.labels, &kept.dists, &kept.group_scores),
                (&r.labels, &r.dists, &r.group_scores)
            );
            let (l, dist) = nearest_torch(&x, &c, block).unwrap();
            let (l, dist) = (Vec::<i64>::try_from(&l).unwrap(), Vec::<f32>::try_from(&dist).unwrap());
            let xs = Vec::<Vec<f32>>::try_from(&x).unwrap();
            let cs = Vec::<Vec<f32>>::try_from(&c).unwrap();
            let exact =
                |i: usize, j: usize| -> f64 { xs[i].iter().zip(&cs[j]).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum() };
            for i in 0..n {
                let label = r.labels[i] as usize;
                let want = exact(i, label);
                let nearest = (0..k).map(|j| exact(i, j)).fold(f64::INFINITY, f64::min);
                assert!(
                    want <= nearest * (1.0 + 1e-6) + 1e-30,
                    "row {i}: {want} vs nearest {nearest} (n={n} k={k} d={d})"
                );
                assert!(
                    (f64::from(r.dists[i]) - want).abs() <= 1e-6 * want.max(1e-30),
                    "row {i}: {} vs {want}",
                    r.dists[i]
                );
                if r.labels[i] == l[i] {
                    assert!(
                        (r.dists[i] - dist[i]).abs() <= 1e-5 * dist[i].max(1e-30),
                        "row {i}: {} vs {}",
                        r.dists[i],
                        dist[i]
                    );
                } else {
                    assert!(
                        (exact(i, l[i] as usize) - want).abs() <= 1e-5 * want,
                        "row {i}: label {} vs {}",
                        r.labels[i],
                        l[i]
                    );
                }
                // Group scores: the best score per group over the centroids but the label.
                for q in 0..g.count {
                    let lo = q * g.size;
                    let want = (lo..(lo + g.size).min(k))
                        .filter(|&j| j != label)
                        .map(|j| exact(i, j) - xs[i].iter().map(|v| f64::from(*v).powi(2)).sum::<f64>())
                        .fold(f64::INFINITY, f64::min);
                    let got = f64::from(r.group_scores[i * g.count + q]);
                    // Within the error bound the bounded algorithm relies on.
                    let x_norm = xs[i].iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
                    let r_max = cs
                        .iter()
                        .map(|c| c.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt())
                        .fold(0.0, f64::max);
                    let bound = score_gamma(d) * (x_norm + r_max).powi(2);
                    assert!(
                        got == want || (got - want).abs() <= bound,
                        "row {i} group {q}: {got} vs {want} (bound {bound})"
                    );
                }
            }
        }
    }

    #[test]
    fn groups_cover_all_centroids() {
        assert_eq!(Groups::new(10, 3), Groups { size: 4, count: 3 });
        assert_eq!(Groups::new(10, 4), Groups { size: 3, count: 4 });
        assert_eq!(Groups::new(5, 9), Groups { size: 1, count: 5 });
        assert_eq!(Groups::new(7, 0), Groups { size: 7, count: 1 });
    }

    #[test]
    fn tile_rows_follow_the_tile_size_and_the_block() {
        assert_eq!(tile_rows(1000, 4096), 4096);
        assert_eq!(tile_rows(10_000, 4096), 838);
        assert_eq!(tile_rows(1, 4096), 4096);
        assert_eq!(tile_rows(1_000_000, 4096), MIN_TILE_ROWS);
        assert_eq!(tile_rows(1000, 7), 7);
    }
}
