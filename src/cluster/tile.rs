//! The CPU assignment kernel: a tile of `||c||² - 2 x·cᵀ` scores from one
//! matrix product into a reused buffer, then one fused pass over the tile
//! that finds the two best centroids of every row (and, for the bounded
//! algorithm, the best score of every centroid group).
//!
//! It computes exactly what the portable libtorch path in `assign` computes:
//! the same `addmm` per row, the same lowest-index tie rule of `min`, and the
//! same exact re-scoring of the two candidates with the same libtorch ops, so
//! labels and distances are bit-identical; only the order of the work (tile
//! size, no full `min`/`scatter`/`min` sweeps over a 16 MiB score matrix,
//! no per-block allocations) changes.

use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use super::error::ClusterError;

/// Bytes of score tile to aim for. Large, so that the per-tile work outside
/// the matrix product (about 20 small libtorch calls of the exact re-scoring,
/// and the hand-off between MKL's threads and rayon's) is paid rarely: on the
/// 2-core benchmark machine, idle, 50,000 x 256 points and K = 1,000 took
/// 0.405 s per iteration with 1 MiB tiles (262 rows, sized for L2), 0.243 s
/// with 8 MiB and 0.220 s with 32 MiB (the 4,096-row block), with identical
/// labels and inertia: the product's rows do not depend on the tile.
const TILE_BYTES: usize = 1 << 25;
/// Fewer rows than this and the matrix product loses efficiency.
const MIN_TILE_ROWS: usize = 64;
/// Rows read at a time when finding the largest absolute value of the data.
const AMAX_ROWS: usize = 65_536;
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
    /// `[n]` i64 labels.
    pub labels: Tensor,
    /// `[n]` f32 exact squared distances to the label's centroid.
    pub dists: Tensor,
    /// With groups: `n x groups.count` row-major best score (`||c||² - 2 x·c`,
    /// without `||x||²`) per group over the centroids other than the best
    /// scored one. Rows whose label is not the best scored centroid (the exact
    /// re-scoring preferred the runner-up) hold `-inf`, a bound that never
    /// lets the row be skipped.
    pub group_scores: Vec<f32>,
}

/// Read-only view of a contiguous CPU f32 tensor.
fn f32_view(t: &Tensor) -> Result<&[f32], ClusterError> {
    let n = t.numel();
    if t.device() != Device::Cpu || t.f_kind()? != Kind::Float || !t.is_contiguous() {
        return Err(ClusterError::Torch(tch::TchError::Kind(
            "score tile must be a contiguous CPU f32 tensor".into(),
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

/// Lanes of the vectorised top-2 scan.
const LANES: usize = 16;

/// Best and second best index of one row of finite scores (lowest index on
/// ties, as libtorch's `min`): `(i1, i2)`; `i2 == i1` when `k == 1`.
#[inline]
fn top2(row: &[f32]) -> (usize, usize) {
    if row.len() < 2 * LANES {
        return top2_scalar(row);
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { top2_avx2(row) };
        }
    }
    top2_lanes(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn top2_avx2(row: &[f32]) -> (usize, usize) {
    top2_lanes(row)
}

/// `top2` over `LANES` independent lanes (element `j` goes to lane
/// `j % LANES`; branch-free selects, so the compiler vectorises it), then
/// the exact top two of the lanes' top twos and the remainder, compared as
/// `(score, index)` pairs, which is the lowest-index rule.
#[inline(always)]
fn top2_lanes(row: &[f32]) -> (usize, usize) {
    let mut b1 = [f32::INFINITY; LANES];
    let mut b2 = [f32::INFINITY; LANES];
    let mut i1 = [0u32; LANES];
    let mut i2 = [0u32; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        let base = (c * LANES) as u32;
        for l in 0..LANES {
            let v = chunk[l];
            let j = base + l as u32;
            let lt1 = v < b1[l];
            let lt2 = v < b2[l];
            b2[l] = if lt1 {
                b1[l]
            } else if lt2 {
                v
            } else {
                b2[l]
            };
            i2[l] = if lt1 {
                i1[l]
            } else if lt2 {
                j
            } else {
                i2[l]
            };
            b1[l] = if lt1 { v } else { b1[l] };
            i1[l] = if lt1 { j } else { i1[l] };
        }
    }
    let before = |a: (f32, usize), b: (f32, usize)| a.0 < b.0 || (a.0 == b.0 && a.1 < b.1);
    let mut best = (f32::INFINITY, usize::MAX);
    let mut second = (f32::INFINITY, usize::MAX);
    let offer = |c: (f32, usize), best: &mut (f32, usize), second: &mut (f32, usize)| {
        if before(c, *best) {
            *second = *best;
            *best = c;
        } else if before(c, *second) {
            *second = c;
        }
    };
    for l in 0..LANES {
        offer((b1[l], i1[l] as usize), &mut best, &mut second);
        offer((b2[l], i2[l] as usize), &mut best, &mut second);
    }
    let start = row.len() - rest.len();
    for (j, &v) in rest.iter().enumerate() {
        offer((v, start + j), &mut best, &mut second);
    }
    if !best.0.is_finite() || !second.0.is_finite() {
        return top2_nan_aware(row);
    }
    (best.1, second.1)
}

/// The scalar form of `top2`, for short rows.
fn top2_scalar(row: &[f32]) -> (usize, usize) {
    let (mut b1, mut i1) = (f32::INFINITY, 0usize);
    let (mut b2, mut i2) = (f32::INFINITY, usize::MAX);
    for (j, &v) in row.iter().enumerate() {
        if v < b2 {
            if v < b1 {
                (b2, i2) = (b1, i1);
                (b1, i1) = (v, j);
            } else {
                (b2, i2) = (v, j);
            }
        }
    }
    if i2 == usize::MAX || !b1.is_finite() || !b2.is_finite() {
        // Infinite scores or k == 1: the general rule.
        return top2_nan_aware(row);
    }
    (i1, i2)
}

/// `top2` for any scores, with libtorch's NaN propagation: a NaN is smaller
/// than anything (used when scores may overflow).
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

/// Nearest centroid of every row of `x` (`[n, d]` f32 CPU, contiguous) among
/// `centroids` (`[k, d]` f32 CPU), `n >= 1`, `k >= 1`, finite values. Works in
/// tiles of at most `block_rows` rows. With `groups`, also returns the best
/// score per centroid group (see [`TileAssignment::group_scores`]).
pub(crate) fn nearest_cpu(
    x: &Tensor,
    centroids: &Tensor,
    block_rows: usize,
    groups: Option<Groups>,
) -> Result<TileAssignment, ClusterError> {
    let n = x.size()[0] as usize;
    let k = centroids.size()[0] as usize;
    let centroids = centroids.f_contiguous()?;
    // ||c||² as a [k] row that broadcasts over the tile, and -2 cᵀ as [d, k].
    let c_sq = centroids.f_mul(&centroids)?.f_sum_dim_intlist(1, false, Kind::Float)?;
    let neg2_ct = centroids.f_tr()?.f_mul_scalar(-2.0)?.f_contiguous()?;
    let exact = |xb: &Tensor, idx: &Tensor| -> Result<Tensor, ClusterError> {
        let diff = xb.f_sub(&centroids.f_index_select(0, idx)?)?;
        Ok(diff.f_mul(&diff)?.f_sum_dim_intlist(1, false, Kind::Float)?)
    };

    // Scores cannot overflow f32 (so the fast finite scan is exact) when
    // d · max|c| · (2 max|x| + max|c|) stays far below f32::MAX.
    // (By blocks of rows: no temporary as large as `x`, which may be a mapped file.)
    let amax = |t: &Tensor| -> Result<f64, ClusterError> {
        let rows = t.size()[0];
        let mut m = 0f64;
        let mut s = 0;
        while s < rows {
            let len = (AMAX_ROWS as i64).min(rows - s);
            m = m.max(t.f_narrow(0, s, len)?.f_abs()?.f_max()?.f_double_value(&[])?);
            s += len;
        }
        Ok(m)
    };
    let d = x.size()[1] as f64;
    let cmax = amax(&centroids)?;
    let finite = d * cmax * (2.0 * amax(x)? + cmax) < 1e36;
    let rows = tile_rows(k, block_rows);
    let tile = Tensor::f_empty([rows as i64, k as i64], (Kind::Float, Device::Cpu))?;
    let labels = Tensor::f_empty([n as i64], (Kind::Int64, Device::Cpu))?;
    let dists = Tensor::f_empty([n as i64], (Kind::Float, Device::Cpu))?;
    let g = groups.map_or(0, |g| g.count);
    let mut group_scores = vec![0f32; if groups.is_some() { n * g } else { 0 }];
    let mut i1 = vec![0i64; rows];
    let mut i2 = vec![0i64; rows];

    let mut start = 0usize;
    while start < n {
        let len = rows.min(n - start);
        let xb = x.f_narrow(0, start as i64, len as i64)?;
        let scores = tile.f_narrow(0, 0, len as i64)?;
        // scores[i, j] = ||c_j||² - 2 x_i·c_j  (= ||x_i - c_j||² - ||x_i||²)
        let _ = c_sq.f_addmm_out(&scores, &xb, &neg2_ct)?;
        let view = f32_view(&scores)?;
        let gs = &mut group_scores[start * g..(start + len) * g];
        scan(view, k, groups, finite, &mut i1[..len], &mut i2[..len], gs);

        let t1 = Tensor::f_from_slice(&i1[..len])?;
        let d1 = exact(&xb, &t1)?;
        let (lab, dist) = if k == 1 {
            (t1, d1)
        } else {
            let t2 = Tensor::f_from_slice(&i2[..len])?;
            let d2 = exact(&xb, &t2)?;
            // Second candidate wins if strictly closer, or equally close
            // with a lower index.
            let take2 = d2
                .f_lt_tensor(&d1)?
                .f_logical_or(&d2.f_eq_tensor(&d1)?.f_logical_and(&t2.f_lt_tensor(&t1)?)?)?;
            if groups.is_some() {
                let flags = Vec::<bool>::try_from(&take2)?;
                for (r, _) in flags.iter().enumerate().filter(|(_, &f)| f) {
                    gs[r * g..(r + 1) * g].fill(f32::NEG_INFINITY);
                }
            }
            (t2.f_where_self(&take2, &t1)?, d2.f_where_self(&take2, &d1)?)
        };
        labels.f_narrow(0, start as i64, len as i64)?.f_copy_(&lab)?;
        dists.f_narrow(0, start as i64, len as i64)?.f_copy_(&dist)?;
        start += len;
    }
    Ok(TileAssignment {
        labels,
        dists,
        group_scores,
    })
}

/// First row, best and second indices, and group scores of one scan task.
type ScanTask<'a> = (usize, &'a mut [i64], &'a mut [i64], &'a mut [f32]);

/// The fused pass over one tile of `len` rows: best two indices per row and,
/// with groups, the best score per group excluding the row's best index.
fn scan(view: &[f32], k: usize, groups: Option<Groups>, finite: bool, i1: &mut [i64], i2: &mut [i64], gs: &mut [f32]) {
    let g = groups.map_or(0, |g| g.count);
    let len = i1.len();
    // One task per SCAN_ROWS rows; each task writes its own disjoint slices.
    let mut tasks: Vec<ScanTask> = Vec::with_capacity(len.div_ceil(SCAN_ROWS));
    let mut gs_rest = gs;
    for (c, (a, b)) in i1.chunks_mut(SCAN_ROWS).zip(i2.chunks_mut(SCAN_ROWS)).enumerate() {
        let (head, tail) = std::mem::take(&mut gs_rest).split_at_mut(a.len() * g);
        gs_rest = tail;
        tasks.push((c * SCAN_ROWS, a, b, head));
    }
    tasks.into_par_iter().for_each(|(first, a, b, s)| {
        for r in 0..a.len() {
            let row = &view[(first + r) * k..(first + r + 1) * k];
            let (best, second) = if finite { top2(row) } else { top2_nan_aware(row) };
            a[r] = best as i64;
            b[r] = second as i64;
            if let Some(groups) = groups {
                group_mins(row, groups, best, &mut s[r * g..(r + 1) * g]);
            }
        }
    });
}

/// Best score per group of one row, skipping centroid `best`.
fn group_mins(row: &[f32], groups: Groups, best: usize, out: &mut [f32]) {
    for (o, chunk) in out.iter_mut().zip(row.chunks(groups.size)) {
        *o = chunk.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    }
    let q = best / groups.size;
    let base = q * groups.size;
    out[q] = row[base..(base + groups.size).min(row.len())]
        .iter()
        .enumerate()
        .filter(|(j, _)| base + j != best)
        .fold(f32::INFINITY, |m, (_, &v)| m.min(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top2_follows_lowest_index_on_ties() {
        assert_eq!(top2(&[3.0, 1.0, 1.0, 0.5]), (3, 1));
        assert_eq!(top2(&[1.0, 1.0, 1.0]), (0, 1));
        assert_eq!(top2(&[2.0]), (0, 0));
        assert_eq!(top2(&[0.0, f32::INFINITY, f32::INFINITY]), (0, 1));
        // The lane-wise scan agrees with the scalar one, ties included.
        let mut rng = 12345u64;
        for len in [32usize, 33, 47, 100, 1000, 2001] {
            for _ in 0..50 {
                let row: Vec<f32> = (0..len)
                    .map(|_| {
                        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        ((rng >> 40) % 64) as f32 // many exact ties
                    })
                    .collect();
                assert_eq!(top2_lanes(&row), top2_scalar(&row), "len {len}");
                assert_eq!(top2(&row), top2_scalar(&row), "len {len}");
            }
        }
        assert_eq!(top2_nan_aware(&[f32::NAN, 1.0, 0.0]), (0, 2));
        assert_eq!(top2_nan_aware(&[3.0, 1.0, 1.0, 0.5]), (3, 1));
    }

    /// The kernel and the portable libtorch sequence agree bit for bit.
    #[test]
    fn kernel_matches_portable_path_exactly() {
        use crate::cluster::assign::nearest_torch;
        use crate::cluster::testutil::{random_matrix, tensor_from_rows};
        for (n, k, d, block) in [
            (1, 1, 1, 1),
            (50, 7, 3, 4),
            (700, 300, 17, 4096),
            (1000, 5000, 8, 333),
            (257, 64, 64, 64),
        ] {
            let x = tensor_from_rows(&random_matrix(n, d, n as u64), Device::Cpu);
            let c = tensor_from_rows(&random_matrix(k, d, k as u64 + 1), Device::Cpu);
            let r = nearest_cpu(&x, &c, block, Some(Groups::new(k, 7))).unwrap();
            let (l, dist) = nearest_torch(&x, &c, block).unwrap();
            assert!(r.labels.equal(&l), "labels n={n} k={k} d={d}");
            assert!(r.dists.equal(&dist), "distances n={n} k={k} d={d}");
            // Group scores: the best score per group over the non-best centroids.
            let g = Groups::new(k, 7);
            let scores =
                Vec::<Vec<f32>>::try_from(&(c.square().sum_dim_intlist(1, false, Kind::Float).unsqueeze(0) - x.mm(&c.tr()) * 2.0)).unwrap();
            for (i, row) in scores.iter().enumerate().take(20) {
                let best = top2(row).0;
                for q in 0..g.count {
                    let want = (q * g.size..((q + 1) * g.size).min(k))
                        .filter(|&j| j != best)
                        .map(|j| row[j])
                        .fold(f32::INFINITY, f32::min);
                    let got = r.group_scores[i * g.count + q];
                    assert!(
                        got == f32::NEG_INFINITY || got == want || (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "row {i} group {q}: {got} vs {want}"
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
