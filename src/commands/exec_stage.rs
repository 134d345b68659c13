//! `ktlab exec-stage --submission DIR --key KEY` (hidden): what a cluster job runs, one
//! stage instance of a submission.
use std::path::Path;
use std::process::ExitCode;

use super::session::Session;
use crate::exec::{run_instance, InstanceOutcome, Submission};
use crate::stages::StageKind;
use crate::store::{EntryState, Key};
use crate::Error;

/// Exits 0 at once when the entry exists; non-zero when the stage fails (2 for bad
/// input, as a local run), so the scheduler cancels the dependent jobs.
pub fn exec_stage(session: &Session, submission: &Path, key: &str, force: bool) -> Result<ExitCode, Error> {
    let parsed = Key::parse(key).ok_or_else(|| Error::Usage(format!("--key {key}: expected a 64-digit hex key")))?;
    // Before planning (which fingerprints datasets): a finished entry ends the job at once.
    if !force {
        if let Some(kind) = StageKind::ALL
            .iter()
            .find(|k| matches!(session.store.state(**k, &parsed, false), EntryState::Valid(_)))
        {
            eprintln!("{} {}: already in the store", kind.name(), parsed.short());
            return Ok(ExitCode::SUCCESS);
        }
    }
    let sub = Submission::load(submission)?;
    let plan = session.submission_plan(&sub)?;
    let Some(i) = plan.instances.iter().position(|x| x.key.hex() == key) else {
        return Err(Error::Other(format!(
            "no stage instance of {} has key {key} here: its datasets or ktlab changed since submission",
            sub.info.experiment_file.display()
        )));
    };
    let inst = &plan.instances[i];
    let label = inst.label();
    // Pinned: a concurrent gc leaves this entry and its inputs alone.
    let _pins = session
        .store
        .pin(std::iter::once(inst.key).chain(inst.deps().map(|j| plan.instances[j].key)))?;
    if let crate::device::Device::Cuda(n) = inst.device {
        let count = crate::device::cuda_device_count();
        if n >= count {
            return Err(Error::Other(format!(
                "{label} runs on cuda:{n}, but this node has {count} CUDA device(s): ask for GPUs with `gpus` in [stages.{}.resources] or [slurm]",
                inst.uses[0].1
            )));
        }
    }
    for j in inst.deps() {
        let up = &plan.instances[j];
        if let s @ (EntryState::Missing | EntryState::Corrupt(_)) = session.store.state(up.kind, &up.key, true) {
            let why = match s {
                EntryState::Corrupt(w) => format!("is corrupt ({w})"),
                _ => "is missing".into(),
            };
            return Err(Error::Other(format!("{label}: input `{}` {why}; run again", up.label())));
        }
    }
    match run_instance(&plan, i, &session.store, &session.reporter, force) {
        InstanceOutcome::Computed | InstanceOutcome::Cached => Ok(ExitCode::SUCCESS),
        InstanceOutcome::Failed(source) => Err(Error::Stage { label, source }),
    }
}
