//! The validated plan: deduplicated stage instances with their keys.
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::data::DatasetSpec;
use crate::stages::{Params, StageKind};
use crate::store::Key;

/// A resolved input of an instance.
#[derive(Clone, Debug)]
pub enum PlannedInput {
    /// Index of the upstream instance in `Plan::instances`.
    Stage(usize),
    Data {
        spec: DatasetSpec,
        split: String,
        fingerprint: String,
        /// How `fingerprint` was taken, so the runner can take it again.
        mode: crate::data::FingerprintMode,
    },
}

/// One stage to compute once, possibly shared by several variants.
#[derive(Clone, Debug)]
pub struct StageInstance {
    pub kind: StageKind,
    pub params: Params,
    pub inputs: IndexMap<String, PlannedInput>,
    pub key: Key,
    pub key_input: serde_json::Value,
    pub device: crate::device::Device,
    /// Every random number of the instance comes from this (`crate::seed`).
    pub seed: u64,
    /// The seed the experiment file states for the stage (keyed where the stage is
    /// stochastic): what must be the same across stages is drawn from it.
    pub stated_seed: u64,
    /// What a scheduler is asked for (of the first variant using it); not in the key.
    pub resources: crate::config::Resources,
    /// (variant, stage name) pairs this instance serves.
    pub uses: Vec<(String, String)>,
}

impl StageInstance {
    pub fn deps(&self) -> impl Iterator<Item = usize> + '_ {
        self.inputs.values().filter_map(|i| match i {
            PlannedInput::Stage(j) => Some(*j),
            PlannedInput::Data { .. } => None,
        })
    }

    /// `stage` or `stage[variant]` for messages.
    pub fn label(&self) -> String {
        let (v, s) = &self.uses[0];
        if self.uses.len() > 1 || v == "default" {
            s.clone()
        } else {
            format!("{s}[{v}]")
        }
    }
}

#[derive(Clone, Debug)]
pub struct Variant {
    /// Unique: the group with `seed=N` appended on the seed axis.
    pub name: String,
    /// The variant without its seed (what tables show; `default` without a sweep).
    pub group: String,
    /// Its seed when the experiment lists `seeds`.
    pub seed: Option<u64>,
    /// (key path, value as written)
    pub swept: Vec<(String, String)>,
    /// stage name -> instance index, in file order
    pub stages: IndexMap<String, usize>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub experiment: String,
    pub file: PathBuf,
    /// The user's swept keys (the seed axis is not among them).
    pub swept_keys: Vec<String>,
    /// Whether the experiment lists `seeds` (results then have a `seed` column).
    pub seed_axis: bool,
    /// Stage name -> its label in tables (the name where the file gives none), file order.
    pub labels: IndexMap<String, String>,
    /// `[[tables]]`, validated (empty: the report writes a default table per metric).
    pub tables: Vec<super::TableSpec>,
    /// `[[decisions]]`, validated, in the file's order.
    pub decisions: Vec<super::DecisionSpec>,
    pub variants: Vec<Variant>,
    /// In dependency order: every instance comes after its inputs.
    pub instances: Vec<StageInstance>,
    /// The experiment's `[slurm]` section (of the first variant).
    pub slurm: crate::config::SlurmSection,
}

impl Plan {
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }
}
