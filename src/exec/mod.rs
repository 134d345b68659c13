//! Executors run the plan's missing instances in dependency order; reporters show it.
mod events;
mod local;
mod reporter;
mod runner;
mod verify;

pub use events::Event;
pub use local::{LocalExecutor, RunSummary, Selection};
pub use reporter::Reporter;
pub use runner::{run_instance, InstanceOutcome};
pub use verify::{render_checks, verify_instance, ArtefactCheck, VerifyError};
