//! `ktlab report FILE`: the result tables from the store, without computing anything;
//! every instance must be there.
use std::process::ExitCode;

use super::session::{PlanOptions, Session};
use crate::cli::{ExecutorKind, ExperimentArgs};
use crate::Error;

pub fn report(session: &Session, exp: &ExperimentArgs, executor: ExecutorKind) -> Result<ExitCode, Error> {
    let plan = session.load_plan(exp, PlanOptions::for_executor(executor))?.plan;
    session.check_results_owner(&plan)?;
    let missing: Vec<String> = session.missing_instances(&plan).iter().map(|inst| inst.label()).collect();
    if !missing.is_empty() {
        return Err(Error::Other(format!(
            "{} stage instance(s) of {} are not in the store: {} (see `ktlab status {}`)",
            missing.len(),
            plan.experiment,
            missing.join(", "),
            exp.file.display()
        )));
    }
    session.save_records(&plan);
    session.write_tables(&plan)?;
    Ok(ExitCode::SUCCESS)
}
