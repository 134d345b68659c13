//! The `ktlab` binary: parse the command line, run, print the error chain.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ktlab::cli::Cli::parse();
    match ktlab::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The error and each of its causes: `what: why: root cause`.
            eprintln!("error: {}", ktlab::error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
