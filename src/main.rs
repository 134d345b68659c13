//! The `ktlab` binary: parse the command line, run, print the error chain.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ktlab::cli::Cli::parse();
    match ktlab::run::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(e.exit_code())
        }
    }
}
