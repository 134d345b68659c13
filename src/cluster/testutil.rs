//! Deterministic test data (random matrices, Gaussian blobs) shared by the
//! unit tests of the clustering layer; compiled only for tests.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// A standard normal sample via Box-Muller (keeps `rand_distr` out of the deps).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n x d` standard-normal matrix as rows.
pub fn random_matrix(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| (0..d).map(|_| normal(&mut rng) as f32).collect()).collect()
}

/// Rows to a `[n, d]` f32 tensor on `device`.
pub fn tensor_from_rows(rows: &[Vec<f32>], device: Device) -> Tensor {
    let d = rows.first().map_or(0, |r| r.len());
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_slice(&flat).reshape([rows.len() as i64, d as i64]).to_device(device)
}

/// `n` points in `d` dimensions around `blobs` centres drawn uniformly from
/// `[-spread, spread]^d`, unit-variance noise times `sigma`. Returns the
/// points (shuffled by construction: blob id is `i % blobs`) and blob ids.
pub fn blobs(n: usize, d: usize, blobs: usize, spread: f64, sigma: f64, seed: u64) -> (Vec<Vec<f32>>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<Vec<f64>> = (0..blobs)
        .map(|_| (0..d).map(|_| rng.gen_range(-spread..spread)).collect())
        .collect();
    let mut rows = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let b = i % blobs;
        rows.push(centres[b].iter().map(|c| (c + sigma * normal(&mut rng)) as f32).collect());
        ids.push(b);
    }
    (rows, ids)
}

/// Uniform `[0, 1)` f32 matrix as a tensor (no global torch RNG involved).
pub fn uniform_tensor(n: usize, d: usize, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let flat: Vec<f32> = (0..n * d).map(|_| rng.gen::<f32>()).collect();
    Tensor::from_slice(&flat).reshape([n as i64, d as i64])
}

/// Largest absolute element-wise difference of two tensors (any device).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_device(Device::Cpu) - b.to_device(Device::Cpu))
        .abs()
        .max()
        .to_kind(Kind::Double)
        .double_value(&[])
}
