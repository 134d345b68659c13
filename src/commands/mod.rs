//! The commands behind the command line, one file each, and the dispatch from the parsed
//! command line; what they share is in `session`. Everything here is callable without a
//! process.
mod datasets;
#[cfg(feature = "torch")]
mod exec_stage;
mod gc;
#[cfg(feature = "torch")]
mod kmeans;
mod perms;
mod plan;
mod report;
#[cfg(feature = "torch")]
mod run;
mod session;
mod status;
#[cfg(feature = "torch")]
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::Error;
#[cfg(feature = "torch")]
use {crate::cli::ExecutorKind, crate::exec::Selection};

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
        Command::ExecStage { .. } | Command::Datasets { .. } | Command::Perms { .. } | Command::Kmeans(_) | Command::CudaDevices => None,
    }
}

/// Both binaries' `main`: parses the command line, runs it, prints the error with each of
/// its causes (`what: why: root cause`) and exits with its code.
pub fn main() -> ExitCode {
    use clap::Parser;
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Whether the command computes (and so needs the engine, which links libtorch).
fn computes(command: &Command) -> bool {
    matches!(
        command,
        Command::Run { .. } | Command::Verify { .. } | Command::ExecStage { .. } | Command::Kmeans(_) | Command::CudaDevices
    )
}

/// Runs the parsed command line; the exit code for the cases that are not errors. Built
/// without libtorch, the commands that compute are handed to the engine.
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    if !cfg!(feature = "torch") && computes(&cli.command) {
        return Ok(crate::engine::hand_over()?);
    }
    let mut session = Session::start(&cli.global, anchor(&cli.command))?;
    if matches!(cli.command, Command::ExecStage { .. }) {
        // A cluster job's log is where its epochs show.
        session.reporter.show_details();
    }
    run_here(session, cli.command)
}

fn run_here(session: Session, command: Command) -> Result<ExitCode, Error> {
    match command {
        #[cfg(feature = "torch")]
        Command::Run {
            exp,
            force,
            only,
            ignore_memory,
            batch,
        } => {
            let sel = Selection { force, only };
            match batch.executor {
                ExecutorKind::Local => run::run_local(&session, &exp, &sel, ignore_memory),
                ExecutorKind::Slurm => run::run_slurm(&session, &exp, &sel, &batch),
            }
        }
        Command::Status { exp, executor } => status::status(&session, &exp, executor),
        Command::Report { exp, executor } => report::report(&session, &exp, executor),
        #[cfg(feature = "torch")]
        Command::ExecStage { submission, key, force } => exec_stage::exec_stage(&session, &submission, &key, force),
        Command::Plan {
            exp,
            check_provenance,
            format,
        } => plan::plan(&session, &exp, check_provenance.as_deref(), format),
        Command::Explain { exp, cell: Some(cell), .. } => plan::explain_cell(&session, &exp, &cell),
        Command::Explain { exp, stage, variant, .. } => {
            plan::explain(&session, &exp, stage.as_deref().unwrap_or_default(), variant.as_deref())
        }
        #[cfg(feature = "torch")]
        Command::Verify { exp, stage, variant } => verify::verify(&session, &exp, &stage, variant.as_deref()),
        Command::Datasets { check, fingerprint } => datasets::datasets(&session, check, fingerprint),
        Command::Gc {
            dry_run,
            yes,
            forget,
            all_experiments,
            files,
        } => {
            let others = gc::Others {
                forget,
                all: all_experiments,
            };
            gc::gc(&session, dry_run, yes, &others, &files)
        }
        Command::Perms {
            count,
            min_hamming,
            seed,
            out,
        } => perms::perms(count, min_hamming, seed, &out),
        #[cfg(feature = "torch")]
        Command::Kmeans(args) => kmeans::kmeans(&args),
        #[cfg(feature = "torch")]
        Command::CudaDevices => {
            println!("{}", crate::device::cuda_device_count());
            Ok(ExitCode::SUCCESS)
        }
        // (Without libtorch, `run` has handed the commands `computes` names to the engine.)
        #[cfg(not(feature = "torch"))]
        _ => Ok(crate::engine::hand_over()?),
    }
}
