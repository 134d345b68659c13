//! The commands behind the command line, one file each, and the dispatch from the parsed
//! command line; what they share is in `session`. Everything here is callable without a
//! process.
mod datasets;
mod exec_stage;
mod gc;
mod kmeans;
mod perms;
mod plan;
mod report;
mod run;
mod session;
mod status;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{Cli, Command, ExecutorKind};
use crate::exec::Selection;
use crate::Error;

pub use session::{check_stage_names, resolve_variant, run_exit_code, LoadedPlan, PlanOptions, Session};

/// The file whose project folder holds the default store and results: the experiment
/// (the first named, for `gc`); `None` for the current folder's project.
fn anchor(command: &Command) -> Option<&Path> {
    match command {
        Command::Run { exp, .. }
        | Command::Status { exp, .. }
        | Command::Report { exp, .. }
        | Command::Plan { exp, .. }
        | Command::Explain { exp, .. }
        | Command::Verify { exp, .. } => Some(&exp.file),
        Command::Gc { files, .. } => files.first().map(PathBuf::as_path),
        Command::ExecStage { .. } | Command::Datasets { .. } | Command::Perms { .. } | Command::Kmeans(_) => None,
    }
}

/// Runs the parsed command line; the exit code for the cases that are not errors.
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    let session = Session::start(&cli.global, anchor(&cli.command))?;
    match cli.command {
        Command::Run { exp, force, only, batch } => {
            let sel = Selection { force, only };
            match batch.executor {
                ExecutorKind::Local => run::run_local(&session, &exp, &sel),
                ExecutorKind::Slurm => run::run_slurm(&session, &exp, &sel, &batch),
            }
        }
        Command::Status { exp, executor } => status::status(&session, &exp, executor),
        Command::Report { exp, executor } => report::report(&session, &exp, executor),
        Command::ExecStage { submission, key, force } => exec_stage::exec_stage(&session, &submission, &key, force),
        Command::Plan { exp, check_provenance } => plan::plan(&session, &exp, check_provenance.as_deref()),
        Command::Explain { exp, cell: Some(cell), .. } => plan::explain_cell(&session, &exp, &cell),
        Command::Explain { exp, stage, variant, .. } => {
            plan::explain(&session, &exp, stage.as_deref().unwrap_or_default(), variant.as_deref())
        }
        Command::Verify { exp, stage, variant } => verify::verify(&session, &exp, &stage, variant.as_deref()),
        Command::Datasets { check, fingerprint } => datasets::datasets(&session, check, fingerprint),
        Command::Gc { dry_run, yes, files } => gc::gc(&session, dry_run, yes, &files),
        Command::Perms {
            count,
            min_hamming,
            seed,
            out,
        } => perms::perms(count, min_hamming, seed, &out),
        Command::Kmeans(args) => kmeans::kmeans(&args),
    }
}
