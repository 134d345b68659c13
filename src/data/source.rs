//! A split of a dataset as an indexable collection of labeled images.
use std::path::PathBuf;

use super::{DatasetSpec, Image};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("dataset `{dataset}` has no split `{split}` (available: {available})")]
    UnknownSplit { dataset: String, split: String, available: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: cannot decode image: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("dataset `{dataset}`: {message}")]
    Invalid { dataset: String, message: String },
}

/// An indexable split: image `i` and its label. Implementations are cheap to share
/// across threads; `load` may be called concurrently.
pub trait Source: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Class names, index = label.
    fn classes(&self) -> &[String];
    /// The true label of image `i`, if the split is labeled.
    fn label(&self, i: usize) -> Option<usize>;
    /// Decodes image `i` as RGB (at its native size).
    fn load(&self, i: usize) -> Result<Image, DataError>;
    /// A human-readable identity for image `i` (its path, or `synthetic:<split>:<i>`).
    fn describe(&self, i: usize) -> String;
}

/// Opens one split of a dataset.
pub fn open_split(spec: &DatasetSpec, split: &str) -> Result<Box<dyn Source>, DataError> {
    todo!("{spec:?} {split}")
}
pub fn splits_of(_spec: &DatasetSpec) -> Result<Vec<String>, DataError> { todo!() }
