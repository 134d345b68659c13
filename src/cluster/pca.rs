//! PCA-whitening of features before k-means, as DeepCluster does with
//! `faiss.PCAMatrix(d, p, eigen_power=-0.5)`: it decorrelates the features and
//! gives every kept direction unit variance, so k-means is not dominated by a
//! few high-variance directions.

use tch::{Device, Kind, Tensor};

use super::assign::{check_finite, check_matrix};
use super::error::ClusterError;

/// Added to each eigenvalue before taking `λ^-1/2`, so that directions with
/// (near-)zero variance are not blown up to infinity.
pub const PCA_WHITEN_EPS: f64 = 1e-5;

/// Rows per block when accumulating the covariance and applying the map.
const PCA_BLOCK_ROWS: usize = 4096;

/// A fitted PCA-whitening map `y = (x - mean) · projection`.
#[derive(Debug)]
pub struct Pca {
    /// Per-feature mean, `[d]` f32.
    pub mean: Tensor,
    /// `[d, p]` f32: the top-`p` eigenvectors of the covariance (by decreasing
    /// eigenvalue) as columns, column `i` scaled by `(λ_i + eps)^-1/2`.
    /// Each eigenvector's sign is fixed so that its largest-magnitude
    /// component is positive (the first such component on exact ties).
    pub projection: Tensor,
}

impl Pca {
    /// Fits a whitening PCA to `dims` dimensions with [`PCA_WHITEN_EPS`].
    pub fn fit(x: &Tensor, dims: usize) -> Result<Pca, ClusterError> {
        Pca::fit_with_eps(x, dims, PCA_WHITEN_EPS)
    }

    /// Fits a whitening PCA of `x` (`[n, d]` f32, `n >= 1`) to `dims`
    /// dimensions. The covariance (normalised by `n`, like faiss) is
    /// accumulated in f64 over row blocks on the device of `x`, then
    /// decomposed with `linalg_eigh`.
    pub fn fit_with_eps(x: &Tensor, dims: usize, eps: f64) -> Result<Pca, ClusterError> {
        let _no_grad = tch::no_grad_guard();
        let (n, d) = check_matrix(x, "PCA input")?;
        if n == 0 {
            return Err(ClusterError::NoPoints);
        }
        if dims == 0 || dims > d {
            return Err(ClusterError::InvalidPcaDims { pca: dims, d });
        }
        check_finite(x, "PCA input")?;
        let device = x.device();
        // The mean in f64, by blocks: `mean_dim` with an f64 result would
        // convert all of `x` to f64 first (twice its size in memory).
        let mut sum = Tensor::f_zeros([d as i64], (Kind::Double, device))?;
        let mut start = 0usize;
        while start < n {
            let len = PCA_BLOCK_ROWS.min(n - start);
            let xb = x.f_narrow(0, start as i64, len as i64)?.f_to_kind(Kind::Double)?;
            sum = sum.f_add(&xb.f_sum_dim_intlist(0, false, Kind::Double)?)?;
            start += len;
        }
        let mean = sum.f_div_scalar(n as f64)?; // [d] f64

        let mut cov = Tensor::f_zeros([d as i64, d as i64], (Kind::Double, device))?;
        let mut start = 0usize;
        while start < n {
            let len = PCA_BLOCK_ROWS.min(n - start);
            let xb = x.f_narrow(0, start as i64, len as i64)?.f_to_kind(Kind::Double)?.f_sub(&mean)?;
            cov = cov.f_add(&xb.f_tr()?.f_mm(&xb)?)?;
            start += len;
        }
        let cov = cov.f_div_scalar(n as f64)?;
        // Symmetrise against rounding before eigh.
        let cov = cov.f_add(&cov.f_tr()?)?.f_mul_scalar(0.5)?;

        let (evals, evecs) = cov.f_linalg_eigh("L")?; // ascending eigenvalues
        let p = dims as i64;
        let d = d as i64;
        let evals = evals.f_narrow(0, d - p, p)?.f_flip([0])?.f_clamp_min(0.0)?;
        let evecs = evecs.f_narrow(1, d - p, p)?.f_flip([1])?;

        // Deterministic sign: largest-|.| component of each eigenvector > 0.
        let arg = evecs.f_abs()?.f_argmax(0, true)?; // [1, p]
        let pivot = evecs.f_gather(0, &arg, false)?; // [1, p]
        let sign = pivot.f_ge(0.0)?.f_to_kind(Kind::Double)?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
        let evecs = evecs.f_mul(&sign)?;

        let scale = evals.f_add_scalar(eps)?.f_pow_tensor_scalar(-0.5)?; // [p]
        let projection = evecs.f_mul(&scale.f_unsqueeze(0)?)?.f_to_kind(Kind::Float)?;
        Ok(Pca {
            mean: mean.f_to_kind(Kind::Float)?,
            projection,
        })
    }

    /// Input dimension `d`.
    pub fn input_dim(&self) -> usize {
        self.mean.size().first().copied().unwrap_or(0) as usize
    }

    /// Output dimension `p`.
    pub fn output_dim(&self) -> usize {
        self.projection.size().get(1).copied().unwrap_or(0) as usize
    }

    /// Checks internal consistency (used after loading from disk).
    pub(crate) fn validate(&self) -> Result<(), ClusterError> {
        let ms = self.mean.size();
        let ps = self.projection.size();
        if ms.len() != 1 {
            return Err(ClusterError::Shape {
                what: "PCA mean",
                expected: "[d]".to_string(),
                got: ms,
            });
        }
        if ps.len() != 2 || ps[0] != ms[0] || ps[1] < 1 || ps[1] > ps[0] {
            return Err(ClusterError::Shape {
                what: "PCA projection",
                expected: format!("[{}, p] with 1 <= p <= {}", ms[0], ms[0]),
                got: ps,
            });
        }
        for (t, what) in [(&self.mean, "PCA mean"), (&self.projection, "PCA projection")] {
            super::assign::ensure_float(t, what)?;
        }
        Ok(())
    }

    /// Moves the map to `device`.
    pub fn to_device(&self, device: Device) -> Result<Pca, ClusterError> {
        Ok(Pca {
            mean: self.mean.f_to(device)?,
            projection: self.projection.f_to(device)?,
        })
    }

    /// Applies the map to `x` (`[n, d]` f32) on the device of `x`, returning
    /// `[n, p]` f32. The map is moved to that device if needed.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor, ClusterError> {
        let _no_grad = tch::no_grad_guard();
        let (n, d) = check_matrix(x, "PCA input")?;
        if d != self.input_dim() {
            return Err(ClusterError::Shape {
                what: "PCA input",
                expected: format!("[n, {}]", self.input_dim()),
                got: x.size(),
            });
        }
        let device = x.device();
        let mean = self.mean.f_to(device)?;
        let proj = self.projection.f_to(device)?;
        if n == 0 {
            return Ok(Tensor::f_zeros([0, self.output_dim() as i64], (Kind::Float, device))?);
        }
        // Centre block by block (no n x d temporary), then project.
        let mut out = Vec::with_capacity(n.div_ceil(PCA_BLOCK_ROWS));
        let mut start = 0usize;
        while start < n {
            let len = PCA_BLOCK_ROWS.min(n - start);
            let xb = x.f_narrow(0, start as i64, len as i64)?.f_sub(&mean)?;
            out.push(xb.f_mm(&proj)?);
            start += len;
        }
        Ok(Tensor::f_cat(&out, 0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::testutil::{max_abs_diff, random_matrix, tensor_from_rows};

    /// Correlated data: random matrix times a fixed mixing matrix plus offset.
    fn correlated(n: usize, d: usize, seed: u64) -> Tensor {
        let z = tensor_from_rows(&random_matrix(n, d, seed), Device::Cpu);
        let mix = tensor_from_rows(&random_matrix(d, d, seed + 1), Device::Cpu);
        z.mm(&mix) + 3.0
    }

    #[test]
    fn whitened_output_has_identity_covariance() {
        let x = correlated(2000, 6, 1);
        let pca = Pca::fit(&x, 4).unwrap();
        assert_eq!(pca.output_dim(), 4);
        assert_eq!(pca.input_dim(), 6);
        let y = pca.apply(&x).unwrap().to_kind(Kind::Double);
        assert_eq!(y.size(), vec![2000, 4]);
        let mean = y.mean_dim(0, false, Kind::Double);
        assert!(max_abs_diff(&mean, &mean.zeros_like()) < 1e-4);
        let cov = y.tr().mm(&y) / 2000.0;
        let eye = Tensor::eye(4, (Kind::Double, Device::Cpu));
        let err = max_abs_diff(&cov, &eye);
        assert!(err < 1e-3, "covariance deviates from identity by {err}");
    }

    #[test]
    fn matches_numpy_style_reference_up_to_sign_convention() {
        // Compare with an independent f64 eigendecomposition.
        let x = correlated(500, 5, 7);
        let pca = Pca::fit(&x, 5).unwrap();
        let xd = x.to_kind(Kind::Double);
        let xc = &xd - xd.mean_dim(0, true, Kind::Double);
        let cov = xc.tr().mm(&xc) / 500.0;
        let (evals, _) = cov.linalg_eigh("L");
        // projectionᵀ cov projection = diag(λ / (λ + eps)) ≈ I
        let p = pca.projection.to_kind(Kind::Double);
        let m = p.tr().mm(&cov).mm(&p);
        let expected = (&evals / (&evals + PCA_WHITEN_EPS)).flip([0]).diag(0);
        assert!(max_abs_diff(&m, &expected) < 1e-4);
    }

    #[test]
    fn sign_is_deterministic_and_positive_on_largest_component() {
        let x = correlated(300, 4, 3);
        let a = Pca::fit(&x, 3).unwrap();
        let b = Pca::fit(&(-&x), 3).unwrap(); // negated data, same eigenvectors
        assert!(max_abs_diff(&a.projection, &b.projection) < 1e-4);
        let rows = Vec::<Vec<f32>>::try_from(&a.projection.tr()).unwrap();
        for col in rows {
            let big = col.iter().copied().fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
            assert!(big > 0.0, "largest component {big} should be positive");
        }
    }

    #[test]
    fn invalid_dims_are_rejected() {
        let x = correlated(10, 4, 1);
        let e = Pca::fit(&x, 5).unwrap_err();
        assert_eq!(e.to_string(), "pca = 5 must be between 1 and the input dimension d = 4");
        assert!(matches!(Pca::fit(&x, 0), Err(ClusterError::InvalidPcaDims { pca: 0, d: 4 })));
        let pca = Pca::fit(&x, 2).unwrap();
        let wrong = Tensor::zeros([3, 5], (Kind::Float, Device::Cpu));
        assert!(matches!(pca.apply(&wrong), Err(ClusterError::Shape { .. })));
    }

    #[test]
    fn non_finite_input_is_rejected() {
        let x = correlated(10, 3, 1);
        let _ = x.get(2).get(1).fill_(f64::NAN);
        assert!(matches!(Pca::fit(&x, 2), Err(ClusterError::NonFinite { count: 1, total: 30, .. })));
    }
}
