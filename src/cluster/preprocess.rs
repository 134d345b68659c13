//! The feature preprocessing applied before k-means (optional PCA-whitening,
//! then optional row L2 normalisation), kept as one value so that exactly the
//! same transform can be saved as `.npy` artefacts and re-applied later to
//! new features before `nearest`.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::assign::check_matrix;
use super::error::ClusterError;
use super::pca::Pca;

/// File name of the PCA mean inside an artefact directory.
pub const PCA_MEAN_FILE: &str = "pca_mean.npy";
/// File name of the PCA projection inside an artefact directory.
pub const PCA_PROJECTION_FILE: &str = "pca_projection.npy";
/// File name of the L2 flag (`[1]` i64, 0 or 1) inside an artefact directory.
pub const L2_NORMALIZE_FILE: &str = "l2_normalize.npy";

/// Rows whose norm is below this are divided by it instead of their norm
/// (DeepCluster would produce NaN for an all-zero row; we keep it zero).
const L2_MIN_NORM: f64 = 1e-12;
/// Rows per block when computing the row norms.
const L2_BLOCK_ROWS: usize = 65_536;

/// Preprocessing pipeline: `x -> pca(x) -> x / ||x||` (each step optional).
#[derive(Debug)]
pub struct Preprocess {
    /// PCA-whitening, if any.
    pub pca: Option<Pca>,
    /// Whether rows are L2-normalised (after PCA).
    pub l2_normalize: bool,
}

impl Preprocess {
    /// The identity transform.
    pub fn identity() -> Preprocess {
        Preprocess {
            pca: None,
            l2_normalize: false,
        }
    }

    /// Fits the pipeline on `x` (`[n, d]` f32): PCA to `pca` dims if given.
    pub fn fit(x: &Tensor, pca: Option<usize>, l2_normalize: bool) -> Result<Preprocess, ClusterError> {
        let pca = match pca {
            Some(p) => Some(Pca::fit(x, p)?),
            None => None,
        };
        Ok(Preprocess { pca, l2_normalize })
    }

    /// The input dimension the pipeline was fitted on, if it fixes one (PCA);
    /// `None` for L2-only or identity pipelines, which accept any dimension.
    pub fn input_dim(&self) -> Option<usize> {
        self.pca.as_ref().map(Pca::input_dim)
    }

    /// Output dimension for inputs of dimension `input_dim`.
    pub fn output_dim(&self, input_dim: usize) -> usize {
        self.pca.as_ref().map_or(input_dim, Pca::output_dim)
    }

    /// Applies the pipeline to `x` (`[n, d]` f32) on the device of `x`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor, ClusterError> {
        let _no_grad = tch::no_grad_guard();
        check_matrix(x, "preprocess input")?;
        let (y, owned) = match &self.pca {
            Some(pca) => (pca.apply(x)?, true),
            None => (x.shallow_clone(), false),
        };
        if !self.l2_normalize {
            return Ok(y);
        }
        // Row norms by blocks (no temporary of the size of `y`), then one
        // division: in place when `y` is the PCA output, else into a copy.
        let n = y.size()[0];
        let mut parts = Vec::with_capacity((n as usize).div_ceil(L2_BLOCK_ROWS));
        let mut start = 0i64;
        while start < n {
            let len = (L2_BLOCK_ROWS as i64).min(n - start);
            let yb = y.f_narrow(0, start, len)?;
            parts.push(yb.f_mul(&yb)?.f_sum_dim_intlist(1, true, Kind::Float)?);
            start += len;
        }
        let norms = if parts.is_empty() {
            Tensor::f_zeros([0, 1], (Kind::Float, y.device()))?
        } else {
            Tensor::f_cat(&parts, 0)?
        };
        let norms = norms.f_sqrt()?.f_clamp_min(L2_MIN_NORM)?;
        if owned {
            let mut y = y;
            let _ = y.f_div_(&norms)?;
            Ok(y)
        } else {
            Ok(y.f_div(&norms)?)
        }
    }

    /// The state as named tensors (on CPU): `pca_mean`, `pca_projection` (only
    /// with PCA) and `l2_normalize` (`[1]` i64).
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>, ClusterError> {
        let mut out = Vec::with_capacity(3);
        if let Some(pca) = &self.pca {
            out.push(("pca_mean".to_string(), pca.mean.f_to(Device::Cpu)?.f_contiguous()?));
            out.push(("pca_projection".to_string(), pca.projection.f_to(Device::Cpu)?.f_contiguous()?));
        }
        out.push(("l2_normalize".to_string(), Tensor::from_slice(&[i64::from(self.l2_normalize)])));
        Ok(out)
    }

    /// Inverse of [`Preprocess::tensors`]. Both PCA tensors or neither must be
    /// present; `l2_normalize` is required. `origin` names the source in errors.
    pub fn from_tensors(tensors: &[(String, Tensor)], origin: &Path) -> Result<Preprocess, ClusterError> {
        let get = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        let artefact = |reason: String| ClusterError::Artefact {
            dir: origin.to_path_buf(),
            reason,
        };
        let pca = match (get("pca_mean"), get("pca_projection")) {
            (Some(m), Some(p)) => {
                let pca = Pca {
                    mean: m.shallow_clone(),
                    projection: p.shallow_clone(),
                };
                pca.validate()?;
                Some(pca)
            }
            (None, None) => None,
            (Some(_), None) => return Err(artefact("pca_mean present but pca_projection missing".into())),
            (None, Some(_)) => return Err(artefact("pca_projection present but pca_mean missing".into())),
        };
        let flag = get("l2_normalize").ok_or_else(|| artefact("l2_normalize missing".into()))?;
        if flag.numel() != 1 {
            return Err(artefact(format!("l2_normalize must hold one value, has {}", flag.numel())));
        }
        let l2_normalize = match flag.f_to_kind(Kind::Int64)?.f_reshape([1])?.f_int64_value(&[0])? {
            0 => false,
            1 => true,
            v => return Err(artefact(format!("l2_normalize must be 0 or 1, got {v}"))),
        };
        Ok(Preprocess { pca, l2_normalize })
    }

    /// Writes [`PCA_MEAN_FILE`], [`PCA_PROJECTION_FILE`] (only with PCA) and
    /// [`L2_NORMALIZE_FILE`] into `dir` (created if missing). Stale PCA files
    /// from an earlier save are removed when there is no PCA, because their
    /// absence is what encodes "no PCA".
    pub fn save(&self, dir: &Path) -> Result<(), ClusterError> {
        let io = |path: &Path, source| ClusterError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        if self.pca.is_none() {
            for f in [PCA_MEAN_FILE, PCA_PROJECTION_FILE] {
                let path = dir.join(f);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&path, e)),
                }
            }
        }
        for (name, t) in self.tensors()? {
            t.write_npy(dir.join(format!("{name}.npy")))?;
        }
        Ok(())
    }

    /// Reads what [`Preprocess::save`] wrote; tensors are loaded on CPU
    /// ([`Preprocess::apply`] moves them to the input's device).
    pub fn load(dir: &Path) -> Result<Preprocess, ClusterError> {
        let mut tensors = Vec::new();
        for (name, file) in [
            ("pca_mean", PCA_MEAN_FILE),
            ("pca_projection", PCA_PROJECTION_FILE),
            ("l2_normalize", L2_NORMALIZE_FILE),
        ] {
            let path = dir.join(file);
            if path.exists() {
                tensors.push((name.to_string(), Tensor::read_npy(&path)?));
            }
        }
        Preprocess::from_tensors(&tensors, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::testutil::{max_abs_diff, random_matrix, tensor_from_rows};

    fn data() -> Tensor {
        tensor_from_rows(&random_matrix(200, 6, 5), Device::Cpu) * 4.0 + 1.0
    }

    #[test]
    fn l2_rows_have_unit_norm_and_zero_rows_stay_zero() {
        let x = data();
        let _ = x.get(3).zero_();
        let p = Preprocess {
            pca: None,
            l2_normalize: true,
        };
        let y = p.apply(&x).unwrap();
        let norms = Vec::<f32>::try_from(&y.square().sum_dim_intlist(1, false, Kind::Float)).unwrap();
        for (i, v) in norms.iter().enumerate() {
            if i == 3 {
                assert_eq!(*v, 0.0);
            } else {
                assert!((v - 1.0).abs() < 1e-5, "row {i}: {v}");
            }
        }
    }

    #[test]
    fn save_load_roundtrip_with_and_without_pca() {
        let dir = std::env::temp_dir().join(format!("ktlab-preprocess-{}", std::process::id()));
        let x = data();
        let p = Preprocess::fit(&x, Some(3), true).unwrap();
        p.save(&dir).unwrap();
        assert!(dir.join(PCA_MEAN_FILE).exists());
        let q = Preprocess::load(&dir).unwrap();
        assert!(q.l2_normalize);
        assert_eq!(q.input_dim(), Some(6));
        assert_eq!(q.output_dim(6), 3);
        assert_eq!(max_abs_diff(&p.apply(&x).unwrap(), &q.apply(&x).unwrap()), 0.0);

        let none = Preprocess::identity();
        none.save(&dir).unwrap();
        assert!(!dir.join(PCA_MEAN_FILE).exists(), "stale PCA files must be removed");
        let q = Preprocess::load(&dir).unwrap();
        assert!(q.pca.is_none());
        assert_eq!(q.input_dim(), None);
        assert!(!q.l2_normalize);
        assert_eq!(max_abs_diff(&q.apply(&x).unwrap(), &x), 0.0);

        // Half a PCA is an error, naming the directory.
        Tensor::from_slice(&[0f32; 6]).write_npy(dir.join(PCA_MEAN_FILE)).unwrap();
        let e = Preprocess::load(&dir).unwrap_err();
        assert!(e.to_string().contains("pca_projection missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(Preprocess::load(&dir), Err(ClusterError::Artefact { .. })));
    }

    #[test]
    fn wrong_input_dimension_is_an_error() {
        let p = Preprocess::fit(&data(), Some(2), false).unwrap();
        let y = Tensor::zeros([4, 5], (Kind::Float, Device::Cpu));
        assert!(matches!(p.apply(&y), Err(ClusterError::Shape { .. })));
    }
}
