//! Executors run the plan's missing instances in dependency order; reporters show it.
mod batch;
mod events;
#[cfg(feature = "torch")]
mod interrupt;
mod jobs;
mod local;
mod reporter;
#[cfg(feature = "torch")]
mod runner;
mod scheduler;
mod slurm;
mod submission;
mod tally;
#[cfg(feature = "torch")]
mod verify;

pub use events::Event;
#[cfg(feature = "torch")]
pub use interrupt::install as handle_interrupts;
#[cfg(feature = "torch")]
pub use local::LocalExecutor;
pub use local::{RunSummary, Selection};
pub use reporter::Reporter;
#[cfg(feature = "torch")]
pub use runner::{run_instance, InstanceOutcome};
pub use tally::human as human_duration;
#[cfg(feature = "torch")]
pub use verify::{render_checks, verify_instance, ArtefactCheck, VerifyError};

pub use batch::{describe_end, job_name, now, BatchError, BatchExecutor, BatchOptions, Standing, SubmitSummary};
pub use jobs::{JobBook, JobRecord};
pub use local::{selected_instances, to_compute};
pub use scheduler::{JobRequest, JobState, JobStatus, Scheduler, SchedulerError, Submitted};
pub use slurm::Slurm;
pub use submission::{job_script, shell_quote, Submission, SubmissionError, SubmissionInfo};
