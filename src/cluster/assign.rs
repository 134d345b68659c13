//! Blocked nearest-centroid search: the one assignment routine shared by the
//! k-means loop and by callers that label new data with trained centroids.
//!
//! For each block of `block_rows` rows we compute `||c||² - 2 x·cᵀ` with one
//! matrix product (`||x||²` is constant per row, so it cannot change the
//! ranking) and take the two best centroids per row (min, mask, min). The
//! full `N x K` distance matrix is never materialised: peak extra memory is
//! one `block_rows x K` score matrix plus two `block_rows x d` gathers.
//!
//! The expanded formula loses precision to cancellation (error about
//! `1e-7 · (||x||² + ||c||²)` in f32), enough to rank two nearly coincident
//! centroids wrongly, which would leave one of them empty for ever. So the
//! two candidates are re-scored exactly as `||x - c||²` and the closer one
//! wins (lower index on an exact tie). The returned distance is that exact
//! value: non-negative, and exactly zero for a point equal to its centroid.
//!
//! On the CPU the same rule runs as the tiled kernel of `tile` (large score
//! tiles, one fused scan instead of min/mask/min sweeps, the exact distances
//! summed in Rust); its distances can differ from this path's in the last
//! bit, and so, for two candidates that close, can the label.

use tch::{Device, Kind, Tensor};

use super::error::ClusterError;
use super::tile::{abs_max, abs_max_and_nan, nearest_cpu};

/// Checks that `t` is a 2-D `f32` tensor and returns `(rows, cols)`.
pub(crate) fn check_matrix(t: &Tensor, what: &'static str) -> Result<(usize, usize), ClusterError> {
    let size = t.size();
    if size.len() != 2 {
        return Err(ClusterError::Shape {
            what,
            expected: "[n, d] (2-D)".to_string(),
            got: size,
        });
    }
    ensure_float(t, what)?;
    // Sizes reported by libtorch are never negative.
    Ok((size[0] as usize, size[1] as usize))
}

/// Errors unless `t` holds float32 values.
pub(crate) fn ensure_float(t: &Tensor, what: &'static str) -> Result<(), ClusterError> {
    let kind = t.f_kind()?;
    if kind != Kind::Float {
        return Err(ClusterError::Kind {
            what,
            expected: Kind::Float,
            got: kind,
        });
    }
    Ok(())
}

/// The largest magnitude a value of `[n, d]` points may have: beyond it a squared distance
/// between two points (at most `4 d max²`), or a squared norm, could overflow float32, which
/// gives infinite inertia and points on the wrong centroid without a word.
pub(crate) fn magnitude_limit(d: usize) -> f64 {
    (f64::from(f32::MAX) / (4.0 * d.max(1) as f64)).sqrt()
}

/// Fails with [`ClusterError::NonFinite`] if `t` contains NaN or infinity, and with
/// [`ClusterError::Magnitude`] if its values are so large that squared distances between its
/// rows would overflow float32 (see [`magnitude_limit`]). One pass over `t`.
pub(crate) fn check_finite(t: &Tensor, what: &'static str) -> Result<(), ClusterError> {
    if t.numel() == 0 {
        return Ok(());
    }
    let (amax, nan) = if t.device() == Device::Cpu && t.f_kind()? == Kind::Float && t.is_contiguous() {
        abs_max_and_nan(t)?
    } else {
        let amax = t.f_abs()?.f_max()?.f_double_value(&[])?;
        (amax, amax.is_nan())
    };
    if nan || !amax.is_finite() {
        let bad = t.f_isfinite()?.f_logical_not()?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        return Err(ClusterError::NonFinite {
            what,
            count: bad as usize,
            total: t.numel(),
        });
    }
    let d = t.size().last().map_or(1, |&d| d.max(1) as usize);
    let limit = magnitude_limit(d);
    if amax > limit {
        return Err(ClusterError::Magnitude {
            what,
            max_abs: amax,
            d,
            limit,
        });
    }
    Ok(())
}

/// Assigns each row of `x` (`[n, d]` f32) to its nearest row of `centroids`
/// (`[k, d]` f32, same device) by squared Euclidean distance.
///
/// Returns `(labels [n] i64, squared distances [n] f32)` on the device of `x`.
/// Work is done in row blocks of `block_rows` (>= 1); the result does not
/// depend on the block size up to floating-point rounding of the product.
/// Errors on shape, element-kind or device mismatches and non-finite values.
pub fn nearest(x: &Tensor, centroids: &Tensor, block_rows: usize) -> Result<(Tensor, Tensor), ClusterError> {
    let _no_grad = tch::no_grad_guard();
    check_args(x, centroids, block_rows)?;
    nearest_unchecked(x, centroids, block_rows)
}

/// The argument checks of [`nearest`].
fn check_args(x: &Tensor, centroids: &Tensor, block_rows: usize) -> Result<(), ClusterError> {
    let (_, d) = check_matrix(x, "points")?;
    let (k, dc) = check_matrix(centroids, "centroids")?;
    if dc != d {
        return Err(ClusterError::Shape {
            what: "centroids",
            expected: format!("[k, {d}] (same dimension as the points)"),
            got: centroids.size(),
        });
    }
    if k == 0 {
        return Err(ClusterError::ZeroK);
    }
    if block_rows == 0 {
        return Err(ClusterError::ZeroBlockRows);
    }
    if x.device() != centroids.device() {
        return Err(ClusterError::Device {
            what: "nearest",
            left: x.device(),
            right: centroids.device(),
        });
    }
    check_finite(x, "points")?;
    check_finite(centroids, "centroids")
}

/// [`nearest`] without argument checks, for callers that validated already
/// (2-D f32 on one device, equal `d`, `k >= 1`, `block_rows >= 1`, finite).
/// On the CPU this is the tiled kernel of `tile`; elsewhere a sequence of
/// libtorch ops per block. Both follow the same rule (see the module notes).
pub(crate) fn nearest_unchecked(x: &Tensor, centroids: &Tensor, block_rows: usize) -> Result<(Tensor, Tensor), ClusterError> {
    let n = x.size()[0] as usize;
    let device = x.device();
    if n == 0 {
        return Ok((
            Tensor::f_zeros([0], (Kind::Int64, device))?,
            Tensor::f_zeros([0], (Kind::Float, device))?,
        ));
    }
    if device == Device::Cpu {
        let x = x.f_contiguous()?;
        return nearest_cpu(&x, abs_max(&x)?, None, centroids, block_rows, None)?.tensors();
    }
    nearest_torch(x, centroids, block_rows)
}

/// The portable libtorch path of [`nearest`] forced on any device, with the
/// same checks: for benchmarks and tests that compare it with the CPU kernel.
#[doc(hidden)]
pub fn nearest_portable(x: &Tensor, centroids: &Tensor, block_rows: usize) -> Result<(Tensor, Tensor), ClusterError> {
    let _no_grad = tch::no_grad_guard();
    check_args(x, centroids, block_rows)?;
    if x.size()[0] == 0 {
        return nearest_unchecked(x, centroids, block_rows);
    }
    nearest_torch(x, centroids, block_rows)
}

/// The portable path of [`nearest_unchecked`] (any device, `n >= 1`): per
/// block one `addmm`, `min`, mask, `min`, and the exact re-scoring.
pub(crate) fn nearest_torch(x: &Tensor, centroids: &Tensor, block_rows: usize) -> Result<(Tensor, Tensor), ClusterError> {
    let n = x.size()[0] as usize;
    let k = centroids.size()[0];

    let centroids = centroids.f_contiguous()?;
    // ||c||² as a [k] row that broadcasts over the block, and -2 cᵀ as [d, k].
    let c_sq = centroids.f_mul(&centroids)?.f_sum_dim_intlist(1, false, Kind::Float)?;
    let neg2_ct = centroids.f_tr()?.f_mul_scalar(-2.0)?.f_contiguous()?;
    let exact = |xb: &Tensor, idx: &Tensor| -> Result<Tensor, ClusterError> {
        let diff = xb.f_sub(&centroids.f_index_select(0, idx)?)?;
        Ok(diff.f_mul(&diff)?.f_sum_dim_intlist(1, false, Kind::Float)?)
    };

    let mut labels = Vec::with_capacity(n.div_ceil(block_rows));
    let mut dists = Vec::with_capacity(n.div_ceil(block_rows));
    let mut start = 0usize;
    while start < n {
        let len = block_rows.min(n - start);
        let xb = x.f_narrow(0, start as i64, len as i64)?;
        // scores[i, j] = ||c_j||² - 2 x_i·c_j  (= ||x_i - c_j||² - ||x_i||²)
        let mut scores = c_sq.f_addmm(&xb, &neg2_ct)?;
        let (_, i1) = scores.f_min_dim(1, true)?;
        let i1 = i1.f_squeeze_dim(1)?;
        let d1 = exact(&xb, &i1)?;
        if k == 1 {
            labels.push(i1);
            dists.push(d1);
        } else {
            let _ = scores.f_scatter_value_(1, &i1.f_unsqueeze(1)?, f64::INFINITY)?;
            let (_, i2) = scores.f_min_dim(1, false)?;
            drop(scores);
            let d2 = exact(&xb, &i2)?;
            // Second candidate wins if strictly closer, or equally close
            // with a lower index.
            let take2 = d2
                .f_lt_tensor(&d1)?
                .f_logical_or(&d2.f_eq_tensor(&d1)?.f_logical_and(&i2.f_lt_tensor(&i1)?)?)?;
            labels.push(i2.f_where_self(&take2, &i1)?);
            dists.push(d2.f_where_self(&take2, &d1)?);
        }
        start += len;
    }
    Ok((Tensor::f_cat(&labels, 0)?, Tensor::f_cat(&dists, 0)?))
}

/// Copies a 1-D integer label tensor (e.g. `KMeansResult::assignments`) to a
/// host `Vec<i64>`, e.g. for the functions in `metrics`.
pub fn labels_to_vec(labels: &Tensor) -> Result<Vec<i64>, ClusterError> {
    let size = labels.size();
    if size.len() != 1 {
        return Err(ClusterError::Shape {
            what: "labels",
            expected: "[n] (1-D)".to_string(),
            got: size,
        });
    }
    let kind = labels.f_kind()?;
    if !matches!(kind, Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8) {
        return Err(ClusterError::Kind {
            what: "labels",
            expected: Kind::Int64,
            got: kind,
        });
    }
    let host = labels.f_to(tch::Device::Cpu)?.f_to_kind(Kind::Int64)?;
    Ok(Vec::<i64>::try_from(&host)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::testutil::{random_matrix, tensor_from_rows};
    use proptest::prelude::*;

    /// Full `n x k` distance matrix and argmin, computed the obvious way.
    fn naive(x: &[Vec<f32>], c: &[Vec<f32>]) -> Vec<(usize, f64, f64)> {
        x.iter()
            .map(|row| {
                let mut d: Vec<(usize, f64)> = c
                    .iter()
                    .enumerate()
                    .map(|(j, cj)| {
                        let s: f64 = row.iter().zip(cj).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
                        (j, s)
                    })
                    .collect();
                d.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                let second = if d.len() > 1 { d[1].1 } else { f64::INFINITY };
                (d[0].0, d[0].1, second)
            })
            .collect()
    }

    fn check_against_naive(n: usize, k: usize, d: usize, seed: u64, block: usize) {
        let xr = random_matrix(n, d, seed);
        let cr = random_matrix(k, d, seed ^ 0xABCD);
        let x = tensor_from_rows(&xr, Device::Cpu);
        let c = tensor_from_rows(&cr, Device::Cpu);
        let (labels, dists) = nearest(&x, &c, block).unwrap();
        assert_eq!(labels.size(), vec![n as i64]);
        assert_eq!(dists.size(), vec![n as i64]);
        let labels = labels_to_vec(&labels).unwrap();
        let dists = Vec::<f32>::try_from(&dists).unwrap();
        for (i, (best, dbest, dsecond)) in naive(&xr, &cr).into_iter().enumerate() {
            let tol = 1e-5 * (1.0 + dbest);
            assert!(
                (dists[i] as f64 - dbest).abs() <= tol,
                "row {i}: distance {} vs naive {dbest}",
                dists[i]
            );
            // Labels must match unless the two best centroids are tied to
            // within float rounding.
            if dsecond - dbest > tol {
                assert_eq!(labels[i] as usize, best, "row {i} (block {block})");
            }
        }
    }

    #[test]
    fn blocked_matches_naive_for_various_block_sizes() {
        let n = 53;
        for block in [1, 7, n, 10 * n] {
            check_against_naive(n, 9, 6, 11, block);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn blocked_matches_naive_random(n in 1usize..60, k in 1usize..12, d in 1usize..9,
                                        seed in any::<u64>(), which in 0usize..4) {
            let block = [1, 7, n, 10 * n][which];
            check_against_naive(n, k, d, seed, block);
        }
    }

    #[test]
    fn nearly_coincident_centroids_are_told_apart() {
        // The two centroids differ by ~6e-7; the expanded formula alone
        // cannot rank them in f32, the exact re-scoring can.
        let c = vec![vec![-0.603_721_56f32], vec![-0.603_720_96], vec![3.0]];
        let ct = tensor_from_rows(&c, Device::Cpu);
        let (labels, dists) = nearest(&ct, &ct, 2).unwrap();
        assert_eq!(labels_to_vec(&labels).unwrap(), vec![0, 1, 2]);
        assert_eq!(Vec::<f32>::try_from(&dists).unwrap(), vec![0.0; 3]);
        // Exact ties go to the lower index.
        let dup = tensor_from_rows(&[vec![1.0], vec![1.0], vec![0.0]], Device::Cpu);
        let x = tensor_from_rows(&[vec![1.0], vec![0.4]], Device::Cpu);
        let (labels, _) = nearest(&x, &dup, 8).unwrap();
        assert_eq!(labels_to_vec(&labels).unwrap(), vec![0, 2]);
    }

    #[test]
    fn non_finite_values_are_rejected() {
        let x = Tensor::from_slice(&[0f32, f32::NAN]).reshape([2, 1]);
        let c = Tensor::zeros([1, 1], (Kind::Float, Device::Cpu));
        assert!(matches!(nearest(&x, &c, 4), Err(ClusterError::NonFinite { count: 1, .. })));
    }

    #[test]
    fn point_equal_to_centroid_has_zero_distance() {
        let rows = vec![vec![1e3f32, -2e3, 5e2], vec![0.1, 0.2, 0.3]];
        let x = tensor_from_rows(&rows, Device::Cpu);
        let (labels, dists) = nearest(&x, &x, 4).unwrap();
        assert_eq!(labels_to_vec(&labels).unwrap(), vec![0, 1]);
        assert_eq!(Vec::<f32>::try_from(&dists).unwrap(), vec![0.0, 0.0]);
    }

    #[test]
    fn shape_errors() {
        let x = Tensor::zeros([4, 3], (Kind::Float, Device::Cpu));
        let c = Tensor::zeros([2, 5], (Kind::Float, Device::Cpu));
        let err = nearest(&x, &c, 4).unwrap_err();
        assert!(matches!(err, ClusterError::Shape { .. }), "{err}");
        let c = Tensor::zeros([2, 3], (Kind::Double, Device::Cpu));
        assert!(matches!(nearest(&x, &c, 4).unwrap_err(), ClusterError::Kind { .. }));
        let c = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        assert!(matches!(nearest(&x, &c, 0).unwrap_err(), ClusterError::ZeroBlockRows));
        let v = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        assert!(matches!(nearest(&v, &c, 4).unwrap_err(), ClusterError::Shape { .. }));
    }

    #[test]
    fn empty_input_gives_empty_output() {
        let x = Tensor::zeros([0, 3], (Kind::Float, Device::Cpu));
        let c = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let (l, d) = nearest(&x, &c, 4).unwrap();
        assert_eq!(l.size(), vec![0]);
        assert_eq!(d.size(), vec![0]);
    }
}
