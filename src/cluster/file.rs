//! k-means of a `.npy` matrix from anywhere (features from another framework
//! included) into a folder, writing the same artefacts as the `kmeans` stage,
//! so that a `ktlab kmeans INPUT.npy` command is a thin wrapper around it.

use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use super::error::ClusterError;
use super::kmeans::{kmeans_observed, KMeansAlgorithm, KMeansParams, KMeansResult};
use crate::data::NpyMatrix;

/// File names written by [`run_kmeans_file`] (besides the preprocessing
/// files of [`super::Preprocess::save`]).
pub const CENTROIDS_FILE: &str = "centroids.npy";
pub const ASSIGNMENTS_FILE: &str = "assignments.npy";
pub const INERTIA_FILE: &str = "inertia.csv";

/// What [`run_kmeans_file`] did.
#[derive(Debug)]
pub struct KMeansFileSummary {
    /// Rows and columns of the input.
    pub points: usize,
    pub dim: usize,
    /// The clustering itself (tensors on the requested device).
    pub result: KMeansResult,
    /// Files written, in order.
    pub written: Vec<PathBuf>,
}

/// Clusters the rows of `input` (a float32 or float16 `[n, d]` `.npy`,
/// computed in float32; on the CPU a float32 file is used straight from its
/// memory mapping, without a copy in memory) on `device` with `params`, and
/// writes into `out_dir` (created if missing): `centroids.npy` (`[k, d']`
/// f32), `assignments.npy` (`[n]` i64), `inertia.csv` (`iteration,inertia`,
/// row 0 for the initial centroids) and the preprocessing files. The same
/// files and values as the `kmeans` stage for the same matrix and parameters.
/// Errors about the data name `input`. `progress(done, total)` follows the centroid
/// updates (see [`kmeans_observed`]).
pub fn run_kmeans_file(
    input: &Path,
    params: &KMeansParams,
    algorithm: KMeansAlgorithm,
    device: Device,
    out_dir: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<KMeansFileSummary, ClusterError> {
    let named = |source: ClusterError| ClusterError::Input {
        path: input.to_path_buf(),
        source: Box::new(source),
    };
    let matrix = NpyMatrix::open(input)?;
    let (points, dim) = (matrix.rows(), matrix.cols());
    // On the CPU, float32 data is clustered straight from the mapping.
    let x = if device == Device::Cpu {
        matrix.into_mapped_tensor()?
    } else {
        matrix.to_tensor()?.f_to(device)?
    };
    let result = kmeans_observed(&x, params, algorithm, progress).map_err(named)?;
    let io = |path: &Path, source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(out_dir).map_err(|e| io(out_dir, e))?;
    let mut written = Vec::new();
    let save = |name: &str, t: &Tensor, written: &mut Vec<PathBuf>| -> Result<(), ClusterError> {
        let path = out_dir.join(name);
        t.f_to(Device::Cpu)?.f_contiguous()?.write_npy(&path)?;
        written.push(path);
        Ok(())
    };
    save(CENTROIDS_FILE, &result.centroids, &mut written)?;
    save(ASSIGNMENTS_FILE, &result.assignments, &mut written)?;
    result.preprocess.save(out_dir)?;
    let mut csv = String::from("iteration,inertia\n");
    for (i, v) in result.inertia_history.iter().enumerate() {
        csv.push_str(&format!("{i},{v}\n"));
    }
    let path = out_dir.join(INERTIA_FILE);
    std::fs::write(&path, csv).map_err(|e| io(&path, e))?;
    written.push(path);
    Ok(KMeansFileSummary {
        points,
        dim,
        result,
        written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kmeans::kmeans;
    use crate::cluster::testutil::{blobs, tensor_from_rows};
    use tch::Kind;

    #[test]
    fn writes_what_kmeans_computes_and_reads_float16() {
        let dir = tempfile::tempdir().unwrap();
        let (rows, _) = blobs(300, 6, 4, 5.0, 0.5, 2);
        let x = tensor_from_rows(&rows, Device::Cpu);
        let input = dir.path().join("x.npy");
        x.write_npy(&input).unwrap();
        let p = KMeansParams {
            iterations: 15,
            seed: 3,
            ..KMeansParams::new(4)
        };
        let out = dir.path().join("out");
        let s = run_kmeans_file(&input, &p, KMeansAlgorithm::Bounded, Device::Cpu, &out, &|_, _| {}).unwrap();
        assert_eq!((s.points, s.dim), (300, 6));
        let direct = kmeans(&x, &p).unwrap();
        let c = Tensor::read_npy(out.join(CENTROIDS_FILE)).unwrap();
        assert!(c.equal(&direct.centroids));
        assert!(Tensor::read_npy(out.join(ASSIGNMENTS_FILE)).unwrap().equal(&direct.assignments));
        let csv = std::fs::read_to_string(out.join(INERTIA_FILE)).unwrap();
        assert_eq!(csv.lines().count(), direct.inertia_history.len() + 1);
        assert_eq!(csv.lines().nth(1).unwrap(), format!("0,{}", direct.inertia_history[0]));

        // float16 input is computed in float32: same as clustering the rounded values.
        let half = dir.path().join("h.npy");
        x.to_kind(Kind::Half).write_npy(&half).unwrap();
        let s = run_kmeans_file(&half, &p, KMeansAlgorithm::Lloyd, Device::Cpu, &dir.path().join("h"), &|_, _| {}).unwrap();
        let rounded = kmeans(&x.to_kind(Kind::Half).to_kind(Kind::Float), &p).unwrap();
        assert!(s.result.centroids.equal(&rounded.centroids));
    }

    #[test]
    fn bad_inputs_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let fails = |input: &Path, k: usize| {
            run_kmeans_file(
                input,
                &KMeansParams::new(k),
                KMeansAlgorithm::Lloyd,
                Device::Cpu,
                dir.path(),
                &|_, _| {},
            )
            .unwrap_err()
        };
        let nan = dir.path().join("nan.npy");
        let x = Tensor::ones([10, 3], (Kind::Float, Device::Cpu));
        let _ = x.get(4).get(1).fill_(f64::NAN);
        x.write_npy(&nan).unwrap();
        let e = fails(&nan, 2);
        assert_eq!(
            e.to_string(),
            format!("{}: points contains 1 non-finite values (NaN or infinity) out of 30", nan.display())
        );
        let ints = dir.path().join("ints.npy");
        Tensor::zeros([4, 2], (Kind::Int64, Device::Cpu)).write_npy(&ints).unwrap();
        let e = fails(&ints, 2);
        assert!(e.to_string().starts_with(&format!("{}: element type `<i8`", ints.display())), "{e}");
        let big_k = fails(&nan, 20);
        assert!(big_k.to_string().contains("nan.npy: k = 20 is larger"), "{big_k}");
    }
}
