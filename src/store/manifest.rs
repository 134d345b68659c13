//! `manifest.json`: what went into a key, what came out (with checksums), and when.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Artefact {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub key: String,
    pub kind: String,
    /// The canonical key input: everything that went into the key.
    pub key_input: serde_json::Value,
    pub artefacts: BTreeMap<String, Artefact>,
    /// Result rows the stage produced.
    #[serde(default)]
    pub metrics: Vec<MetricRow>,
    pub summary: String,
    pub started: String,
    pub seconds: f64,
    pub host: String,
    pub ktlab_version: String,
    pub libtorch_version: String,
}

/// One result-table row a stage produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub layer: String,
    pub metric: String,
    pub value: f64,
}
