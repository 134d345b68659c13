//! placeholder
use std::path::Path;
use super::{DataError, DatasetSpec};
#[derive(Clone, Copy, Debug)]
pub enum FingerprintMode { Metadata, Contents }
pub fn fingerprint(spec: &DatasetSpec, split: &str, _m: FingerprintMode, _c: Option<&Path>) -> Result<String, DataError> { Ok(format!("{}{split}", spec.name)) }
