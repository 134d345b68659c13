//! The job submitted for each stage key (`<store>/<scheduler>/jobs/<key>.json`), so that
//! `status` and a later `run` see jobs still queued or running and never submit twice.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::{Key, Store};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    /// The job name as submitted; a job id the scheduler reuses for another job
    /// (after a reinstall) does not match it.
    pub name: String,
    pub log: PathBuf,
    pub key: String,
    pub experiment: String,
    pub label: String,
    pub submission: PathBuf,
    /// Seconds since the Unix epoch.
    pub submitted: f64,
}

/// The job records of one scheduler in one store.
pub struct JobBook {
    dir: PathBuf,
}

impl JobBook {
    pub fn new(store: &Store, scheduler: &str) -> JobBook {
        JobBook {
            dir: store.jobs_dir(scheduler),
        }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// Where the record of `key` lives (for messages).
    pub fn record_path(&self, key: &Key) -> PathBuf {
        self.path(key)
    }

    /// The last job submitted for `key`; an unreadable record counts as none.
    pub fn get(&self, key: &Key) -> Option<JobRecord> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the record atomically (temp file + rename).
    pub fn put(&self, key: &Key, rec: &JobRecord) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        crate::store::write_atomic(&self.path(key), &serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?)
    }
}
