//! Yinyang-style bounds (Ding et al., ICML 2015) that let an assignment step
//! skip the points whose centroid provably cannot change, with results
//! identical to the full Lloyd assignment.
//!
//! Centroids are split into contiguous groups. For every point we keep, per
//! group, a lower bound on its distance to the group's centroids (other than
//! its own); after an update each bound drops by the largest move of a
//! centroid in its group (triangle inequality). The upper bound is the exact
//! distance to the point's (moved) centroid, which the inertia needs anyway.
//! A point is re-assigned only when the gap between the two is not larger
//! than what floating-point rounding of the scores could blur: a margin of
//! `γ (||x|| + max ||c||)²` with `γ = 4 (d + 8) 2⁻²⁴`, several times the
//! worst-case error of the expanded `||c||² - 2 x·c` in f32. A skipped point
//! is therefore one that the full assignment would give the same label, and
//! the re-assigned points run through the same kernel as the full step, so
//! labels, distances and centroids are bit-identical to Lloyd's.
//!
//! This is the CPU path; on other devices the bounded algorithm runs the
//! plain assignment.

use rayon::prelude::*;
use tch::{Kind, Tensor};

use super::error::ClusterError;
use super::tile::{abs_max, f32_view, nearest_cpu, score_gamma, sq_dist, Groups, TileAssignment};

/// Centroids per group (Ding et al. use `k / 10` groups).
const GROUP_SIZE: usize = 10;
/// At most this many groups, which bounds the `n x groups` bound matrix.
const MAX_GROUPS: usize = 128;

/// The bounds carried from one assignment step to the next.
pub(crate) struct Bounds {
    groups: Groups,
    /// `[n]` current labels (host copy).
    labels: Vec<i64>,
    /// `n x groups.count` lower bounds on distances (not squared).
    lower: Vec<f32>,
    /// Upper bounds on the distance of each point to its centroid.
    upper: Vec<f64>,
    /// `||x_i||` per point.
    x_norm: Vec<f64>,
    /// Centroids the bounds refer to.
    centroids: Tensor,
    /// Relative rounding margin.
    gamma: f64,
    /// Largest absolute value of the points.
    x_amax: f64,
    block_rows: usize,
    /// Points re-assigned in the last step (for statistics).
    pub last_reassigned: usize,
}

/// Exact squared distances `||x_i - c_{labels_i}||²` as the assignment
/// kernel computes them ([`sq_dist`]), rows in parallel.
fn exact_all(x: &Tensor, centroids: &Tensor, labels: &[i64]) -> Result<Vec<f32>, ClusterError> {
    let d = x.size()[1] as usize;
    let (xv, cv) = (f32_view(x)?, f32_view(centroids)?);
    Ok(labels
        .par_iter()
        .enumerate()
        .map(|(i, &l)| {
            let l = l as usize;
            sq_dist(&xv[i * d..(i + 1) * d], &cv[l * d..(l + 1) * d])
        })
        .collect())
}

/// Largest row norm of `c` (`[k, d]`), in f64.
fn max_norm(c: &Tensor) -> Result<f64, ClusterError> {
    Ok(c.f_to_kind(Kind::Double)?
        .f_square()?
        .f_sum_dim_intlist(1, false, Kind::Double)?
        .f_max()?
        .f_double_value(&[])?
        .sqrt())
}

/// `v` rounded down to f32.
fn down(v: f64) -> f32 {
    let f = v as f32;
    if f as f64 > v {
        f.next_down()
    } else {
        f
    }
}

impl Bounds {
    /// Runs the full first assignment of `x` (`[n, d]` f32 CPU contiguous,
    /// `n >= 1`) to `centroids` and sets up the bounds. Returns the bounds
    /// and `(labels, squared distances)` as the plain assignment would.
    pub(crate) fn start(x: &Tensor, centroids: &Tensor, block_rows: usize) -> Result<(Bounds, Tensor, Tensor), ClusterError> {
        let size = x.size();
        let (n, d) = (size[0] as usize, size[1] as usize);
        let k = centroids.size()[0] as usize;
        let groups = Groups::new(k, k.div_ceil(GROUP_SIZE).min(MAX_GROUPS));
        let x_amax = abs_max(x)?;
        // ||x_i|| in f64, block by block (no f64 copy of the whole matrix).
        let mut x_norm = Vec::with_capacity(n);
        let mut s = 0usize;
        while s < n {
            let len = block_rows.min(n - s);
            let xb = x.f_narrow(0, s as i64, len as i64)?.f_to_kind(Kind::Double)?;
            x_norm.extend(Vec::<f64>::try_from(
                &xb.f_square()?.f_sum_dim_intlist(1, false, Kind::Double)?.f_sqrt()?,
            )?);
            s += len;
        }
        let mut b = Bounds {
            groups,
            labels: vec![0; n],
            lower: vec![0.0; n * groups.count],
            upper: vec![f64::INFINITY; n],
            x_norm,
            centroids: centroids.f_detach_copy()?,
            gamma: score_gamma(d),
            x_amax,
            block_rows,
            last_reassigned: n,
        };
        let all: Vec<usize> = (0..n).collect();
        let r = nearest_cpu(x, x_amax, None, centroids, block_rows, Some(groups))?;
        b.absorb(&all, &r, max_norm(centroids)?)?;
        let (labels, dists) = r.tensors()?;
        Ok((b, labels, dists))
    }

    /// Stores labels and lower bounds for the rows `rows` of a kernel result.
    fn absorb(&mut self, rows: &[usize], r: &TileAssignment, r_max: f64) -> Result<(), ClusterError> {
        let g = self.groups.count;
        for (local, &i) in rows.iter().enumerate() {
            self.labels[i] = r.labels[local];
            self.upper[i] = (f64::from(r.dists[local]) * (1.0 + self.gamma)).sqrt();
            let xn = self.x_norm[i];
            let xsq = xn * xn;
            let err = self.gamma * (xn + r_max).powi(2);
            for q in 0..g {
                let s = f64::from(r.group_scores[local * g + q]);
                // A true squared distance is at least score + ||x||² - err.
                let lo = s + xsq - err;
                self.lower[i * g + q] = if lo > 0.0 { down(lo.sqrt()) } else { 0.0 };
            }
        }
        Ok(())
    }

    /// The assignment of `x` to `centroids` (`[k, d]` f32 CPU), equal to the
    /// plain one, re-assigning only the points the bounds cannot settle.
    pub(crate) fn step(&mut self, x: &Tensor, centroids: &Tensor) -> Result<(Tensor, Tensor), ClusterError> {
        let centroids = centroids.f_contiguous()?;
        let g = self.groups.count;
        // Largest move of a centroid per group, rounded up generously.
        let moved = Vec::<f64>::try_from(
            &centroids
                .f_to_kind(Kind::Double)?
                .f_sub(&self.centroids.f_to_kind(Kind::Double)?)?
                .f_square()?
                .f_sum_dim_intlist(1, false, Kind::Double)?
                .f_sqrt()?,
        )?;
        let drift: Vec<f64> = moved
            .chunks(self.groups.size)
            .map(|c| c.iter().copied().fold(0.0, f64::max) * (1.0 + 1e-9) + 1e-30)
            .collect();
        let r_max = max_norm(&centroids)?;
        let gamma = self.gamma;
        let x_norm = &self.x_norm;
        let labels = &self.labels;
        // Whether the bounds cannot settle point i, given an upper bound u
        // on its distance to its own centroid and the smallest lower bound.
        let unsettled = |i: usize, u: f64, lmin: f64| {
            let (u2, l2) = (u * u, lmin * lmin);
            l2 - u2 <= 2.0 * gamma * (x_norm[i] + r_max).powi(2) + gamma * (l2 + u2)
        };
        // Move the bounds with the centroids; test with the loose upper bound.
        let mut lmin = vec![0f64; labels.len()];
        let loose: usize = self
            .lower
            .par_chunks_mut(g)
            .zip(self.upper.par_iter_mut())
            .zip(lmin.par_iter_mut())
            .enumerate()
            .map(|(i, ((lo, u), m))| {
                let mut least = f64::INFINITY;
                for (l, dq) in lo.iter_mut().zip(&drift) {
                    let v = f64::from(*l) - dq;
                    *l = if v > 0.0 { down(v) } else { 0.0 };
                    least = least.min(f64::from(*l));
                }
                *u += moved[labels[i] as usize] * (1.0 + 1e-9);
                *m = least;
                usize::from(unsettled(i, *u, least))
            })
            .sum();
        self.centroids = centroids.f_detach_copy()?;
        let n = labels.len();
        if loose * 2 > n {
            // Most points need a new search anyway: one full step.
            let all: Vec<usize> = (0..n).collect();
            let r = nearest_cpu(x, self.x_amax, None, &centroids, self.block_rows, Some(self.groups))?;
            self.absorb(&all, &r, r_max)?;
            self.last_reassigned = n;
            return r.tensors();
        }

        // Exact distance of every point to its own (moved) centroid: the
        // inertia needs it, and it is the tightest upper bound.
        let mut dists = exact_all(x, &centroids, &self.labels)?;
        let rows: Vec<usize> = (0..n)
            .filter(|&i| {
                let u = (f64::from(dists[i]) * (1.0 + gamma)).sqrt();
                unsettled(i, u, lmin[i])
            })
            .collect();
        for (i, &d) in dists.iter().enumerate() {
            self.upper[i] = (f64::from(d) * (1.0 + gamma)).sqrt();
        }
        self.last_reassigned = rows.len();
        if !rows.is_empty() {
            let idx = Tensor::f_from_slice(&rows.iter().map(|&i| i as i64).collect::<Vec<_>>())?;
            let xs = x.f_index_select(0, &idx)?;
            let r = nearest_cpu(&xs, self.x_amax, None, &centroids, self.block_rows, Some(self.groups))?;
            self.absorb(&rows, &r, r_max)?;
            for (local, &i) in rows.iter().enumerate() {
                dists[i] = r.dists[local];
            }
        }
        Ok((Tensor::f_from_slice(&self.labels)?, Tensor::f_from_slice(&dists)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kmeans::{lloyd_with, KMeansAlgorithm, LloydOptions};
    use crate::cluster::testutil::{blobs, random_matrix, tensor_from_rows};
    use proptest::prelude::*;
    use tch::Device;

    fn both(x: &Tensor, init: &Tensor, iterations: usize, block_rows: usize) {
        let run = |algorithm| {
            let opts = LloydOptions {
                iterations,
                block_rows,
                algorithm,
            };
            lloyd_with(x, init, &opts).unwrap()
        };
        let a = run(KMeansAlgorithm::Lloyd);
        let b = run(KMeansAlgorithm::Bounded);
        assert!(a.assignments.equal(&b.assignments), "labels differ");
        assert!(a.centroids.equal(&b.centroids), "centroids differ");
        assert!(a.distances.equal(&b.distances), "distances differ");
        assert_eq!(a.inertia_history, b.inertia_history);
        assert_eq!(
            (a.iterations_run, a.converged, a.reseeded),
            (b.iterations_run, b.converged, b.reseeded)
        );
    }

    #[test]
    fn bounded_equals_lloyd_on_clustered_data_for_several_seeds() {
        for seed in 0..5u64 {
            // Overlapping blobs: points keep moving for a while, and the
            // bounds settle most of them in later steps.
            let (rows, _) = blobs(3000, 16, 40, 3.0, 1.0, seed);
            let x = tensor_from_rows(&rows, Device::Cpu);
            let init = tensor_from_rows(&rows[..60], Device::Cpu);
            both(&x, &init, 25, [4096, 97][seed as usize % 2]);
        }
    }

    #[test]
    fn bounds_skip_settled_points_and_keep_labels() {
        let (rows, _) = blobs(2000, 8, 20, 10.0, 0.5, 3);
        let x = tensor_from_rows(&rows, Device::Cpu);
        let init = tensor_from_rows(&rows[..20], Device::Cpu);
        let (mut b, labels, _) = Bounds::start(&x, &init, 256).unwrap();
        assert_eq!(b.last_reassigned, 2000);
        // Same centroids again: every point is settled by its bounds.
        let (again, dists) = b.step(&x, &init).unwrap();
        assert_eq!(b.last_reassigned, 0);
        assert!(again.equal(&labels));
        let (plain_labels, plain_dists) = crate::cluster::nearest(&x, &init, 256).unwrap();
        assert!(again.equal(&plain_labels));
        assert!(dists.equal(&plain_dists));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        #[test]
        fn bounded_equals_lloyd_random(n in 2usize..300, d in 1usize..6, k_frac in 0.0f64..0.5,
                                       seed in any::<u64>(), block in 1usize..64) {
            let k = 1 + ((n - 1) as f64 * k_frac) as usize;
            let rows = random_matrix(n, d, seed);
            let x = tensor_from_rows(&rows, Device::Cpu);
            let init = tensor_from_rows(&rows[..k], Device::Cpu);
            both(&x, &init, 12, block);
        }
    }
}
