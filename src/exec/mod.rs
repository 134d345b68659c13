//! Executors run the plan's missing instances in dependency order; reporters show it.
mod batch;
mod events;
mod jobs;
mod local;
mod reporter;
mod runner;
mod scheduler;
mod slurm;
mod submission;
mod verify;

pub use events::Event;
pub use local::{LocalExecutor, RunSummary, Selection};
pub use reporter::Reporter;
pub use runner::{run_instance, InstanceOutcome};
pub use verify::{render_checks, verify_instance, ArtefactCheck, VerifyError};

pub use batch::{describe_end, job_name, now, BatchError, BatchExecutor, BatchOptions, Standing, SubmitSummary};
pub use jobs::{JobBook, JobRecord};
pub use local::selected_instances;
pub use scheduler::{JobRequest, JobState, JobStatus, Scheduler, SchedulerError, Submitted};
pub use slurm::Slurm;
pub use submission::{job_script, shell_quote, Submission, SubmissionError, SubmissionInfo};
