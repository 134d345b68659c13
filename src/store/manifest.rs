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
    /// What the stage's cost scales with, for time estimates of other instances (not in
    /// the key); absent in entries written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostFacts>,
}

/// What a stage instance's run time scales with, as planning resolves it: the images it
/// reads (an epoch's worth, of every input split), the multiply-accumulates of one image
/// through the network it runs (none for stages without one), and where it ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostFacts {
    pub images: Option<f64>,
    pub macs_per_image: Option<f64>,
    /// The device class (`cpu`, `cuda`).
    pub device: String,
    /// libtorch's intra-op threads.
    pub threads: usize,
}

/// One result-table row a stage produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub layer: String,
    pub metric: String,
    pub value: f64,
}
