//! The interface a cluster scheduler offers the batch executor: submit one job that
//! waits for others, and ask what became of jobs. Slurm implements it (`slurm.rs`);
//! another scheduler needs only these two calls.
use std::collections::HashMap;
use std::path::PathBuf;

use thiserror::Error;

use crate::config::Resources;

/// One job: run `script` with `args` once every job in `after_ok` has succeeded;
/// cancelled by the scheduler if one of them fails.
#[derive(Clone, Debug)]
pub struct JobRequest {
    /// `ktlab:<experiment>:<variant>:<stage>`
    pub name: String,
    pub script: PathBuf,
    pub args: Vec<String>,
    pub after_ok: Vec<String>,
    pub resources: Resources,
    /// Scheduler options passed through as given (`[slurm] sbatch_args`).
    pub extra_args: Vec<String>,
    /// The log goes to `<log_dir>/<log_stem>-<job id>.log`.
    pub log_dir: PathBuf,
    pub log_stem: String,
    pub workdir: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Submitted {
    pub id: String,
    pub log: PathBuf,
}

/// What became of a job, in the scheduler-neutral words the executor needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for resources or for its dependencies.
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    /// Still going to do something: reuse it instead of submitting a second copy.
    pub fn is_alive(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus {
    pub state: JobState,
    /// The scheduler's own word (`PENDING`, `TIMEOUT`, ...).
    pub raw: String,
    /// Why it waits or ended (`Dependency`, `DependencyNeverSatisfied`, ...), if known.
    pub reason: String,
    pub exit_code: String,
    pub name: String,
}

/// Why the scheduler could not do what was asked.
#[derive(Debug, Error)]
pub enum SchedulerError {
    /// Its client commands cannot be run here (exit code 2: a usage problem).
    #[error("cannot run `{command}`: the {scheduler} executor needs {scheduler}'s client commands on PATH")]
    Unavailable {
        scheduler: &'static str,
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// Its client command runs but reports a failure (exit code 2).
    #[error("`{command}` failed: {stderr}")]
    Broken { command: String, stderr: String },
    #[error("cannot run {command}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {}", path.display())]
    LogDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} refused job {job}: {stderr}")]
    Refused { command: String, job: String, stderr: String },
    #[error("{command} printed no job id for {job}: {stdout:?} {stderr}")]
    NoJobId {
        command: String,
        job: String,
        stdout: String,
        stderr: String,
    },
    #[error("{command} failed: {stderr}")]
    Query { command: String, stderr: String },
}

impl SchedulerError {
    /// The scheduler cannot be used from here at all (not a failure of a job).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SchedulerError::Unavailable { .. } | SchedulerError::Broken { .. })
    }
}

pub trait Scheduler {
    /// Short name; also the folder under the store for its job records and logs.
    fn name(&self) -> &'static str;
    fn submit(&self, job: &JobRequest) -> Result<Submitted, SchedulerError>;
    /// The status of each job the scheduler still knows; unknown ids are left out.
    fn query(&self, ids: &[String]) -> Result<HashMap<String, JobStatus>, SchedulerError>;
}
