//! `ktlab verify FILE STAGE`: the command behind [`crate::exec::verify_instance`].
use std::process::ExitCode;

use crate::cli::ExperimentArgs;
use crate::exec::{render_checks, verify_instance, VerifyError};
use crate::run::{check_stage_names, load_plan, resolve_variant, Session};
use crate::Error;

/// Exit 0 when every artefact is identical, 1 when some differ (or re-executing failed),
/// 2 when the stage is not cached or the input is bad.
pub fn cmd_verify(session: &Session, exp: &ExperimentArgs, stage: &str, variant: Option<&str>) -> Result<ExitCode, Error> {
    let plan = load_plan(session, exp)?;
    let variant = resolve_variant(&plan, variant)?;
    check_stage_names(&plan, &[stage.to_string()], "verify")?;
    let idx = plan
        .variant(&variant)
        .and_then(|v| v.stages.get(stage).copied())
        .ok_or_else(|| Error::Usage(format!("no stage `{stage}` in variant `{variant}`")))?;
    let inst = &plan.instances[idx];
    let scratch = tempfile::Builder::new()
        .prefix("ktlab-verify.")
        .tempdir()
        .map_err(|e| Error::Other(format!("cannot create a scratch folder: {e}")))?;
    let checks = match verify_instance(&plan, idx, &session.store, scratch.path()) {
        Ok(c) => c,
        Err(VerifyError::Unavailable(m)) => return Err(Error::Usage(m)),
        Err(VerifyError::Stage(e)) if e.is_input_error() => return Err(Error::Usage(format!("{}: {e}", inst.label()))),
        Err(e) => return Err(Error::Other(format!("{}: {e}", inst.label()))),
    };
    print!("{}", render_checks(&inst.label(), &inst.key.short(), &checks));
    Ok(if checks.iter().all(|c| c.matches()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
