//! Computes one stage instance into the store: lock, re-check, run in a work folder,
//! publish atomically. Shared by every executor (a Slurm job runs exactly this).
use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;

use super::{Event, Reporter};
use crate::chain::error_chain;
use crate::plan::{Plan, PlannedInput, StageInstance};
use crate::stages::{Input, Outcome, Params, RunCtx, StageError};
use crate::store::{EntryState, Manifest, Store};

pub enum InstanceOutcome {
    /// Someone else (another process) published it while we waited.
    Cached,
    Computed,
    Failed(StageError),
}

/// Computes instance `idx` unless a valid entry exists by the time its lock is held.
/// `force` recomputes even then. Inputs must already be published and verified.
pub fn run_instance(plan: &Plan, idx: usize, store: &Store, reporter: &Reporter, force: bool) -> InstanceOutcome {
    let inst = &plan.instances[idx];
    let label = inst.label();
    let key = inst.key;
    let lock = match crate::store::KeyLock::try_acquire(&store.lock_path(&key)) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => {
            reporter.emit(Event::Note {
                label: label.clone(),
                message: "another process is computing this stage; waiting for it".into(),
            });
            store.lock(&key).map_err(|e| error_chain(&e))
        }
        Err(e) => Err(e.to_string()),
    };
    let _lock = match lock {
        Ok(l) => l,
        Err(e) => return InstanceOutcome::Failed(StageError::Failed(format!("cannot lock the store entry: {e}"))),
    };
    match store.state(inst.kind, &key, true) {
        EntryState::Valid(_) if !force => return InstanceOutcome::Cached,
        EntryState::Corrupt(why) => {
            tracing::warn!(stage = %label, key = %key, "corrupt store entry: {why}; recomputing");
            reporter.emit(Event::Note {
                label: label.clone(),
                message: format!("store entry {} is corrupt ({why}); recomputing", key.short()),
            });
        }
        _ => {}
    }
    let (inputs, _input_locks) = match resolve_inputs(plan, inst, store, false) {
        Ok(v) => v,
        Err(InputProblem::Lock { name, error }) => {
            return InstanceOutcome::Failed(StageError::Failed(format!("cannot lock input `{name}`: {error}")))
        }
        Err(InputProblem::Missing { name, label }) => {
            return InstanceOutcome::Failed(StageError::Failed(format!(
                "input `{name}` ({label}) disappeared from the store while this stage was starting (a concurrent gc?); run again"
            )))
        }
    };
    // A dataset that changed since planning would be computed under a stale key.
    if let Err(e) = check_data_unchanged(inst, store) {
        reporter.emit(Event::Failed {
            label,
            error: e.to_string(),
        });
        return InstanceOutcome::Failed(e);
    }
    let pending = match store.pending(&key) {
        Ok(p) => p,
        Err(e) => return InstanceOutcome::Failed(StageError::Failed(error_chain(&e))),
    };
    reporter.emit(Event::Started {
        label: label.clone(),
        kind: inst.kind.name(),
        key: key.hex(),
    });
    let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let clock = Instant::now();
    let progress_label = label.clone();
    let progress = move |done: u64, total: u64| {
        reporter.emit(Event::Progress {
            label: progress_label.clone(),
            done,
            total,
        })
    };
    let note_label = label.clone();
    let note = move |message: String| {
        reporter.emit(Event::Note {
            label: note_label.clone(),
            message,
        })
    };
    if let tch::Device::Cuda(n) = inst.device {
        if let Err(e) = crate::device::DeviceSpec::Cuda(n).resolve() {
            let err = StageError::Input(e);
            reporter.emit(Event::Failed {
                label,
                error: err.to_string(),
            });
            return InstanceOutcome::Failed(err);
        }
    }
    let checkpoint_dir = store.checkpoint_dir(&key);
    tch::manual_seed((inst.seed & i64::MAX as u64) as i64);
    let ctx = RunCtx {
        device: inst.device,
        seed: inst.seed,
        workdir: &pending.dir,
        inputs: &inputs,
        progress: &progress,
        note: &note,
        checkpoint_dir: &checkpoint_dir,
    };
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| run_params(&inst.params, &ctx)))
        .unwrap_or_else(|p| Err(StageError::Failed(format!("internal error (panic): {}", panic_message(&p)))));
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            reporter.emit(Event::Failed {
                label,
                error: e.to_string(),
            });
            return InstanceOutcome::Failed(e);
        }
    };
    if let Err(e) = check_data_unchanged(inst, store) {
        reporter.emit(Event::Failed {
            label,
            error: e.to_string(),
        });
        return InstanceOutcome::Failed(e);
    }
    let seconds = clock.elapsed().as_secs_f64();
    let manifest = Manifest {
        key: key.hex(),
        kind: inst.kind.name().into(),
        key_input: inst.key_input.clone(),
        artefacts: Default::default(),
        metrics: outcome.metrics,
        summary: outcome.summary.clone(),
        started: format!("{started:.3}"),
        seconds,
        host: hostname(),
        ktlab_version: crate::plan::ktlab_version().into(),
        libtorch_version: crate::plan::libtorch_version().into(),
    };
    match store.publish(pending, inst.kind, &key, manifest) {
        Ok(_) => {
            let _ = std::fs::remove_dir_all(&checkpoint_dir);
            reporter.emit(Event::Finished {
                label,
                seconds,
                summary: outcome.summary,
            });
            InstanceOutcome::Computed
        }
        Err(e) => {
            let e = StageError::Failed(error_chain(&e));
            reporter.emit(Event::Failed {
                label,
                error: e.to_string(),
            });
            InstanceOutcome::Failed(e)
        }
    }
}

/// Fingerprints the instance's datasets again and compares with the plan's.
fn check_data_unchanged(inst: &crate::plan::StageInstance, store: &Store) -> Result<(), StageError> {
    let cache = store.fingerprints_dir();
    for input in inst.inputs.values() {
        if let PlannedInput::Data {
            spec,
            split,
            fingerprint,
            mode,
        } = input
        {
            let now = crate::data::fingerprint(spec, split, *mode, Some(&cache))?;
            if now != *fingerprint {
                return Err(StageError::Input(format!(
                    "dataset `{}:{split}` changed while ktlab was running (files added, removed or modified since planning); run again",
                    spec.name
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn run_params(params: &Params, ctx: &RunCtx) -> Result<Outcome, StageError> {
    match params {
        Params::Features(p) => p.run(ctx),
        Params::Kmeans(p) => p.run(ctx),
        Params::Assign(p) => p.run(ctx),
        Params::ClusterMetrics(p) => p.run(ctx),
        Params::Init(p) => p.run(ctx),
        Params::Pretext(p) => p.run(ctx),
        Params::Train(p) => p.run(ctx),
        Params::LinearProbe(p) => p.run(ctx),
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Why the inputs of an instance could not be had.
pub(crate) enum InputProblem {
    Lock { name: String, error: String },
    Missing { name: String, label: String },
}

/// The inputs of `inst`, every upstream entry held by a shared lock (so that a concurrent
/// `gc` cannot remove it) and checked to be in the store (`deep`: checksums too).
pub(crate) fn resolve_inputs(
    plan: &Plan,
    inst: &StageInstance,
    store: &Store,
    deep: bool,
) -> Result<(IndexMap<String, Input>, Vec<crate::store::KeyLock>), InputProblem> {
    let mut inputs = IndexMap::new();
    let mut locks = Vec::new();
    for (name, input) in &inst.inputs {
        let resolved = match input {
            PlannedInput::Stage(j) => {
                let up = &plan.instances[*j];
                let lock = crate::store::KeyLock::acquire_shared(&store.lock_path(&up.key)).map_err(|e| InputProblem::Lock {
                    name: name.clone(),
                    error: e.to_string(),
                })?;
                locks.push(lock);
                if !matches!(store.state(up.kind, &up.key, deep), EntryState::Valid(_)) {
                    return Err(InputProblem::Missing {
                        name: name.clone(),
                        label: up.label(),
                    });
                }
                Input::Stage {
                    kind: up.kind,
                    dir: store.entry_dir(up.kind, &up.key),
                }
            }
            PlannedInput::Data { spec, split, .. } => Input::Data {
                spec: spec.clone(),
                split: split.clone(),
            },
        };
        inputs.insert(name.clone(), resolved);
    }
    Ok((inputs, locks))
}
