//! Reading and writing the artefact files stages put in their work folders.
use std::path::Path;

use serde::de::DeserializeOwned;
use tch::Tensor;

use crate::stages::StageError;

/// Writes a row-major float32 matrix as `.npy` (numpy can load it).
pub fn write_matrix(path: &Path, rows: &[f32], n: usize, dim: usize) -> Result<(), StageError> {
    let t = Tensor::from_slice(rows).f_view([n as i64, dim as i64])?;
    write_tensor(path, &t)
}

pub fn write_tensor(path: &Path, t: &Tensor) -> Result<(), StageError> {
    t.to_device(tch::Device::Cpu)
        .contiguous()
        .write_npy(path)
        .map_err(StageError::Torch)
}

pub fn read_tensor(path: &Path) -> Result<Tensor, StageError> {
    Tensor::read_npy(path).map_err(|e| StageError::Failed(format!("{}: {e}", path.display())))
}

/// A float32 or float16 `[n, d]` matrix (a features stage's `features.npy`) as float32
/// on `device`. On the CPU a float32 file is used straight from its memory mapping, so
/// a matrix larger than memory can be clustered; elsewhere it is read and copied over.
pub fn read_matrix(path: &Path, device: tch::Device) -> Result<Tensor, StageError> {
    let failed = |e: crate::data::NpyError| StageError::Failed(e.to_string());
    let matrix = crate::data::NpyMatrix::open(path).map_err(failed)?;
    if device == tch::Device::Cpu {
        return matrix.into_mapped_tensor().map_err(failed);
    }
    Ok(matrix.to_tensor().map_err(failed)?.to_device(device))
}

pub fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), StageError> {
    let text = serde_json::to_vec_pretty(v).map_err(|e| StageError::Failed(e.to_string()))?;
    std::fs::write(path, text).map_err(StageError::io(path))
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StageError> {
    let bytes = std::fs::read(path).map_err(StageError::io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| StageError::Failed(format!("{}: {e}", path.display())))
}

pub fn write_text(path: &Path, text: &str) -> Result<(), StageError> {
    std::fs::write(path, text).map_err(StageError::io(path))
}
