//! `ktlab report FILE`: the result tables and decisions from the store, without computing
//! anything; every instance must be there (else it prints the decisions as far as the store
//! allows, fails, exit 1, and leaves the results folder as it was: a folder is only ever
//! rewritten complete, as one unit).
use std::process::ExitCode;

use super::session::{PlanOptions, Session};
use crate::cli::{ExecutorKind, ExperimentArgs};
use crate::Error;

pub fn report(session: &Session, exp: &ExperimentArgs, executor: ExecutorKind) -> Result<ExitCode, Error> {
    let plan = session.load_plan(exp, PlanOptions::for_executor(executor))?.plan;
    session.check_results_owner(&plan)?;
    let missing: Vec<String> = session.missing_instances(&plan).iter().map(|inst| inst.label()).collect();
    if !missing.is_empty() {
        // The decisions still say what they can: those lacking a value are "missing".
        session.show_decisions(&plan, None);
        return Err(Error::Other(format!(
            "{} stage instance(s) of {} are not in the store: {} (see `ktlab status {}`); {} not rewritten",
            missing.len(),
            plan.experiment,
            missing.join(", "),
            exp.file.display(),
            session.results.join(&plan.experiment).display()
        )));
    }
    session.save_records(&plan);
    if let Some(written) = session.write_tables(&plan, "run the experiment to complete it")? {
        session.show_tables(&written);
        session.show_decisions(&plan, Some(&written));
        if !session.reporter.is_quiet() {
            println!("{}", written.location());
        }
    }
    Ok(ExitCode::SUCCESS)
}
