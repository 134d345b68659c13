//! One error type for the clustering layer, so that callers can tell bad user
//! data (wrong `k`, NaNs, mismatched shapes) apart from libtorch failures.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong in `crate::cluster`.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// `k == 0`.
    #[error("k must be at least 1 (got k = 0)")]
    ZeroK,
    /// More clusters than points.
    #[error("k = {k} is larger than the number of points ({n})")]
    KTooLarge { k: usize, n: usize },
    /// An empty data set.
    #[error("cannot cluster an empty data set (n = 0 points)")]
    NoPoints,
    /// NaN or infinity in the input.
    #[error("{what} contains {count} non-finite values (NaN or infinity) out of {total}")]
    NonFinite { what: &'static str, count: usize, total: usize },
    /// Values so large that squared distances would overflow float32.
    #[error(
        "{what}: values up to {max_abs:.3e} in magnitude; in {d} dimensions squared distances would overflow \
         float32 (largest magnitude that fits: {limit:.3e}); scale the features down"
    )]
    Magnitude {
        what: &'static str,
        max_abs: f64,
        d: usize,
        limit: f64,
    },
    /// PCA target dimension outside `1..=d`.
    #[error("pca = {pca} must be between 1 and the input dimension d = {d}")]
    InvalidPcaDims { pca: usize, d: usize },
    /// `iterations == 0`.
    #[error("iterations must be at least 1 (got 0)")]
    ZeroIterations,
    /// A count (`k`, `iterations`, `restarts`) outside its bounds (`cluster::check_counts`).
    #[error("{key}: {message}")]
    Param { key: &'static str, message: String },
    /// `restarts == 0`.
    #[error("restarts must be at least 1 (got 0)")]
    ZeroRestarts,
    /// `block_rows == 0`.
    #[error("block_rows must be at least 1 (got 0)")]
    ZeroBlockRows,
    /// A tensor has the wrong shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        what: &'static str,
        expected: String,
        got: Vec<i64>,
    },
    /// A tensor has the wrong element type.
    #[error("{what}: expected element kind {expected:?}, got {got:?}")]
    Kind {
        what: &'static str,
        expected: tch::Kind,
        got: tch::Kind,
    },
    /// Two tensors live on different devices.
    #[error("{what}: tensors are on different devices ({left:?} vs {right:?})")]
    Device {
        what: &'static str,
        left: tch::Device,
        right: tch::Device,
    },
    /// A cluster label outside `0..k`.
    #[error("label {label} at position {index} is outside 0..{k}")]
    LabelOutOfRange { label: i64, index: usize, k: usize },
    /// Two label sequences of different length were compared.
    #[error("label sequences differ in length: {left} vs {right}")]
    LengthMismatch { left: usize, right: usize },
    /// Saved preprocessing artefacts are incomplete or inconsistent.
    #[error("preprocessing artefacts in {dir}: {reason}")]
    Artefact { dir: PathBuf, reason: String },
    /// File-system failure while saving or loading artefacts.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A problem with the data of an input file, named.
    #[error("{}: {source}", path.display())]
    Input { path: PathBuf, source: Box<ClusterError> },
    /// An unreadable or malformed `.npy` input.
    #[error(transparent)]
    Npy(#[from] crate::data::NpyError),
    /// A libtorch operation failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
