//! Events stages and executors emit; reporters render them.
use crate::stages::EpochFigures;

#[derive(Clone, Debug)]
pub enum Event {
    /// A stage instance starts computing.
    Started {
        label: String,
        kind: &'static str,
        key: String,
    },
    Progress {
        label: String,
        done: u64,
        total: u64,
    },
    /// A training epoch finished (its numbers, for the display and JSON logs).
    Epoch {
        label: String,
        figures: EpochFigures,
    },
    Cached {
        label: String,
        key: String,
    },
    /// Handed to a cluster scheduler as a job (`reused`: its job was already queued).
    Submitted {
        label: String,
        job: String,
        reused: bool,
    },
    /// Computed and published (`kind` and `key` name the instance; JSON logs leave them
    /// out, as they were given with `started`).
    Finished {
        label: String,
        kind: &'static str,
        key: String,
        seconds: f64,
        summary: String,
    },
    Failed {
        label: String,
        kind: &'static str,
        key: String,
        error: String,
    },
    /// Not run because an input failed.
    Skipped {
        label: String,
        because: String,
    },
    /// Something worth telling (a corrupt entry, a waited lock).
    Note {
        label: String,
        message: String,
    },
}
