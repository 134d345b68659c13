//! `ktlab verify FILE STAGE`: re-executes a cached instance in a scratch folder and
//! compares its artefacts with the stored ones.
use std::process::ExitCode;

use super::session::{instance_of, PlanOptions, Session};
use crate::cli::ExperimentArgs;
use crate::exec::{render_checks, verify_instance, VerifyError};
use crate::Error;

/// Exit 0 when every artefact is identical, 1 when some differ (or re-executing failed),
/// 2 when the stage is not cached or the input is bad.
pub fn verify(session: &Session, exp: &ExperimentArgs, stage: &str, variant: Option<&str>) -> Result<ExitCode, Error> {
    let plan = session.load_plan(exp, PlanOptions::default())?.plan;
    let (_, idx) = instance_of(&plan, stage, variant, "verify")?;
    let inst = &plan.instances[idx];
    let scratch = tempfile::Builder::new()
        .prefix("ktlab-verify.")
        .tempdir()
        .map_err(|source| Error::Io {
            what: "cannot create a scratch folder".into(),
            source,
        })?;
    let checks = match verify_instance(&plan, idx, &session.store, scratch.path()) {
        Ok(c) => c,
        // Its message names the stage already.
        Err(VerifyError::Unavailable(m)) => return Err(Error::Usage(m)),
        Err(source) => {
            return Err(Error::Verify {
                label: inst.label(),
                source,
            })
        }
    };
    print!("{}", render_checks(&inst.label(), &inst.key.short(), &checks));
    Ok(if checks.iter().all(|c| c.matches()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
