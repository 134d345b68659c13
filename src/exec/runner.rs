//! Computes one stage instance into the store: lock, re-check, run in a work folder,
//! publish atomically. Shared by every executor (a Slurm job runs exactly this).
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;

use super::{Event, Reporter};
use crate::chain::error_chain;
use crate::plan::{Plan, PlannedInput, StageInstance};
use crate::stages::{EpochFigures, Input, Outcome, RunCtx, StageError};
use crate::store::{EntryState, KeyLock, Manifest, PendingEntry, Store};

pub enum InstanceOutcome {
    /// Someone else (another process) published it while we waited.
    Cached,
    Computed,
    Failed(StageError),
}

/// Computes instance `idx` unless a valid entry exists by the time its lock is held.
/// `force` recomputes even then. Inputs must already be published and verified.
///
/// Three steps: [`prepare`] (lock, inputs, work folder), [`execute`] (seeding, context,
/// panic guard; shared with `verify`), [`publish`]. This is the one place that reports
/// started, finished and failed, so every failure shows on the display and in JSON logs.
pub fn run_instance(plan: &Plan, idx: usize, store: &Store, reporter: &Reporter, force: bool) -> InstanceOutcome {
    let inst = &plan.instances[idx];
    let label = inst.label();
    let result = prepare(plan, inst, store, reporter, force).and_then(|prepared| {
        let Some(prepared) = prepared else {
            return Ok(None);
        };
        // Ctrl-C from here on names this instance and removes its work folder.
        let _running = super::interrupt::track(&label, &prepared.pending.dir, &store.checkpoint_dir(&inst.key));
        reporter.emit(Event::Started {
            label: label.clone(),
            kind: inst.kind.name(),
            key: inst.key.hex(),
        });
        let executed = execute(
            inst,
            &prepared.inputs,
            &prepared.pending.dir,
            &store.checkpoint_dir(&inst.key),
            Some(&store.tensorboard_dir(inst.kind, &inst.key)),
            Some(&store.decoded_dir()),
            &|e| reporter.emit(e.into_event(&label)),
        )?;
        publish(plan, idx, store, prepared, executed).map(Some)
    });
    match result {
        Ok(None) => InstanceOutcome::Cached,
        Ok(Some(executed)) => {
            reporter.emit(Event::Finished {
                label,
                kind: inst.kind.name(),
                key: inst.key.hex(),
                seconds: executed.seconds,
                summary: executed.outcome.summary,
            });
            InstanceOutcome::Computed
        }
        Err(e) => {
            reporter.emit(Event::Failed {
                label,
                kind: inst.kind.name(),
                key: inst.key.hex(),
                error: e.to_string(),
            });
            InstanceOutcome::Failed(e)
        }
    }
}

/// What [`prepare`] holds for the later steps: the entry's lock, the inputs (each held
/// by a shared lock) and the work folder.
struct Prepared {
    _lock: KeyLock,
    inputs: IndexMap<String, Input>,
    _input_locks: Vec<KeyLock>,
    pending: PendingEntry,
}

/// Locks the entry (waiting for another process computing it), returns `None` when a
/// valid entry exists by then (and not `force`), else resolves the inputs, re-checks the
/// datasets and opens a work folder.
fn prepare(plan: &Plan, inst: &StageInstance, store: &Store, reporter: &Reporter, force: bool) -> Result<Option<Prepared>, StageError> {
    let label = inst.label();
    let key = inst.key;
    let cannot_lock = |e: &dyn std::error::Error| StageError::Failed(format!("cannot lock the store entry: {}", error_chain(e)));
    let lock = match KeyLock::try_acquire(&store.lock_path(&key)).map_err(|e| cannot_lock(&e))? {
        Some(l) => l,
        None => {
            reporter.emit(Event::Note {
                label: label.clone(),
                message: "another process is computing this stage; waiting for it".into(),
            });
            store.lock(&key).map_err(|e| cannot_lock(&e))?
        }
    };
    match store.state(inst.kind, &key, true) {
        EntryState::Valid(_) if !force => return Ok(None),
        EntryState::Corrupt(why) => {
            tracing::warn!(stage = %label, key = %key, "corrupt store entry: {why}; recomputing");
            reporter.emit(Event::Note {
                label: label.clone(),
                message: format!("store entry {} is corrupt ({why}); recomputing", key.short()),
            });
        }
        _ => {}
    }
    let (inputs, input_locks) = resolve_inputs(plan, inst, store, false).map_err(|p| match p {
        InputProblem::Lock { name, error } => StageError::Failed(format!("cannot lock input `{name}`: {error}")),
        InputProblem::Missing { name, label } => StageError::Failed(format!(
            "input `{name}` ({label}) disappeared from the store while this stage was starting (a concurrent gc?); run again"
        )),
    })?;
    // A dataset that changed since planning would be computed under a stale key.
    check_data_unchanged(inst, store)?;
    let pending = store.pending(&key).map_err(|e| StageError::Failed(error_chain(&e)))?;
    Ok(Some(Prepared {
        _lock: lock,
        inputs,
        _input_locks: input_locks,
        pending,
    }))
}

/// What a stage reports while it runs.
pub(crate) enum StageEvent {
    Progress(u64, u64),
    Note(String),
    Epoch(EpochFigures),
}

impl StageEvent {
    fn into_event(self, label: &str) -> Event {
        let label = label.to_string();
        match self {
            StageEvent::Progress(done, total) => Event::Progress { label, done, total },
            StageEvent::Note(message) => Event::Note { label, message },
            StageEvent::Epoch(figures) => Event::Epoch { label, figures },
        }
    }
}

/// A stage's outcome and how long it took.
pub(crate) struct Executed {
    pub outcome: Outcome,
    pub seconds: f64,
    /// Seconds since the epoch when it started.
    pub started: f64,
}

/// Runs the stage of `inst` into `workdir`: checks its device, seeds libtorch from the
/// instance's seed, and turns a panic into a failure. Nothing here touches the store
/// beyond the checkpoint and TensorBoard folders given.
pub(crate) fn execute(
    inst: &StageInstance,
    inputs: &IndexMap<String, Input>,
    workdir: &Path,
    checkpoint_dir: &Path,
    tensorboard_dir: Option<&Path>,
    decoded_dir: Option<&Path>,
    events: &(dyn Fn(StageEvent) + Sync),
) -> Result<Executed, StageError> {
    if let crate::device::Device::Cuda(n) = inst.device {
        crate::device::DeviceSpec::Cuda(n).resolve().map_err(StageError::Input)?;
    }
    let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let clock = Instant::now();
    tch::manual_seed(crate::seed::torch(crate::seed::stream(inst.seed, "libtorch")));
    let ctx = RunCtx {
        device: inst.device.into(),
        seed: inst.seed,
        stated_seed: inst.stated_seed,
        workdir,
        inputs,
        progress: &|done, total| events(StageEvent::Progress(done, total)),
        note: &|message| events(StageEvent::Note(message)),
        epoch: &|figures| events(StageEvent::Epoch(figures)),
        checkpoint_dir,
        tensorboard_dir,
        decoded_dir,
    };
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| inst.params.run(&ctx)))
        .unwrap_or_else(|p| Err(StageError::Failed(format!("internal error (panic): {}", panic_message(&p)))))?;
    Ok(Executed {
        outcome,
        seconds: clock.elapsed().as_secs_f64(),
        started,
    })
}

/// Re-checks the datasets, then publishes the work folder as the entry (atomically) and
/// removes the stage's checkpoints.
fn publish(plan: &Plan, idx: usize, store: &Store, prepared: Prepared, executed: Executed) -> Result<Executed, StageError> {
    let inst = &plan.instances[idx];
    check_data_unchanged(inst, store)?;
    let manifest = Manifest {
        key: inst.key.hex(),
        kind: inst.kind.name().into(),
        key_input: inst.key_input.clone(),
        artefacts: Default::default(),
        metrics: executed.outcome.metrics.clone(),
        summary: executed.outcome.summary.clone(),
        started: format!("{:.3}", executed.started),
        seconds: executed.seconds,
        host: hostname(),
        ktlab_version: crate::plan::ktlab_version().into(),
        libtorch_version: crate::plan::libtorch_version().into(),
        cost: Some(crate::plan::cost_facts_of(plan, idx, crate::plan::threads_here())),
    };
    store
        .publish(prepared.pending, inst.kind, &inst.key, manifest)
        .map_err(|e| StageError::Failed(error_chain(&e)))?;
    let _ = std::fs::remove_dir_all(store.checkpoint_dir(&inst.key));
    Ok(executed)
}

/// Fingerprints the instance's datasets again and compares with the plan's.
fn check_data_unchanged(inst: &StageInstance, store: &Store) -> Result<(), StageError> {
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
            PlannedInput::Data {
                spec, split, fingerprint, ..
            } => Input::Data {
                spec: spec.clone(),
                split: split.clone(),
                fingerprint: fingerprint.clone(),
            },
        };
        inputs.insert(name.clone(), resolved);
    }
    Ok((inputs, locks))
}
