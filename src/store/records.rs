//! What each stage of an experiment was keyed on when it last ran, so that `plan` can say
//! *why* a stage is due ("parameter k changed from 4 to 8").
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::Store;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub key: String,
    pub key_input: serde_json::Value,
}

/// variant -> stage -> record, for one experiment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Records {
    pub stages: BTreeMap<String, BTreeMap<String, Record>>,
}

impl Records {
    pub fn load(store: &Store, experiment: &str) -> Records {
        std::fs::read(store.records_path(experiment))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The records of every experiment that ran on `store`, by experiment name.
    pub fn load_all(store: &Store) -> BTreeMap<String, Records> {
        let Ok(rd) = std::fs::read_dir(store.records_dir()) else {
            return BTreeMap::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let experiment = name.strip_suffix(".json")?.to_string();
                Some((experiment.clone(), Records::load(store, &experiment)))
            })
            .collect()
    }

    /// The keys recorded for every stage of every variant.
    pub fn keys(&self) -> impl Iterator<Item = super::Key> + '_ {
        self.stages
            .values()
            .flat_map(|s| s.values())
            .filter_map(|r| super::Key::parse(&r.key))
    }

    pub fn get(&self, variant: &str, stage: &str) -> Option<&Record> {
        self.stages.get(variant)?.get(stage)
    }

    /// Writes the records (temp file + rename, so readers never see half a file).
    pub fn save(&self, store: &Store, experiment: &str) -> std::io::Result<()> {
        let path = store.records_path(experiment);
        let dir = path.parent().unwrap_or(&store.root);
        std::fs::create_dir_all(dir)?;
        super::write_atomic(&path, &serde_json::to_vec_pretty(self).unwrap_or_default())
    }
}
