//! `ktlab status FILE`: one line per (variant, stage) with the instance's standing:
//! cached, or its cluster job and the job's state; then the TensorBoard folder of each
//! training instance that has one, and whether its training is finished, running or
//! interrupted.
use std::collections::HashSet;
use std::fmt::Write;
use std::process::ExitCode;

use super::session::{PlanOptions, Session};
use crate::cli::{ExecutorKind, ExperimentArgs};
use crate::exec::{describe_end, BatchExecutor, BatchOptions, JobBook, JobState, Scheduler, Slurm, Standing};
use crate::plan::{render_instances, render_table, Plan};
use crate::store::{EntryState, KeyLock, Store};
use crate::Error;

pub fn status(session: &Session, exp: &ExperimentArgs, executor: ExecutorKind) -> Result<ExitCode, Error> {
    let plan = session.load_plan(exp, PlanOptions::for_executor(executor))?.plan;
    let all: Vec<usize> = (0..plan.instances.len()).collect();
    let store = session.absolute_store();
    let scheduler = Slurm;
    let exec = BatchExecutor {
        scheduler: &scheduler,
        store: &store,
        reporter: &session.reporter,
        options: BatchOptions::default(),
    };
    // Without a reachable scheduler, show the records with their state unknown.
    let (standings, unknown) = match Slurm::detect().and_then(|_| exec.standings(&plan, &all)) {
        Ok(s) => (s, None),
        Err(e) => {
            let book = JobBook::new(&store, scheduler.name());
            let s = all
                .iter()
                .map(|&i| {
                    let inst = &plan.instances[i];
                    let st = if matches!(store.state(inst.kind, &inst.key, false), EntryState::Valid(_)) {
                        Standing::Cached
                    } else {
                        match book.get(&inst.key) {
                            Some(r) => Standing::Job(r, None),
                            None => Standing::Missing,
                        }
                    };
                    (i, st)
                })
                .collect();
            (s, Some(e))
        }
    };
    // In dependency order, so a cancelled job can say that an input failed.
    let mut described: Vec<(&'static str, String)> = Vec::with_capacity(all.len());
    let mut broken: HashSet<usize> = HashSet::new();
    for &i in &all {
        let inst = &plan.instances[i];
        let d = match &standings[&i] {
            Standing::Cached => ("cached", "cached".to_string()),
            Standing::Missing => ("missing", "missing: not submitted (`ktlab run` submits it)".to_string()),
            Standing::Job(r, None) if unknown.is_some() => ("unknown", format!("job {} (state unknown); log: {}", r.id, r.log.display())),
            Standing::Job(r, Some(s)) if s.state == JobState::Queued => {
                let why = if s.reason.is_empty() {
                    String::new()
                } else {
                    format!(", {}", s.reason)
                };
                ("queued", format!("queued: job {} ({}{why})", r.id, s.raw))
            }
            Standing::Job(r, Some(s)) if s.state == JobState::Running => {
                ("running", format!("running: job {}; log: {}", r.id, r.log.display()))
            }
            Standing::Job(r, Some(s)) if s.state == JobState::Cancelled && inst.deps().any(|j| broken.contains(&j)) => {
                broken.insert(i);
                ("cancelled", format!("cancelled: job {} (an input failed)", r.id))
            }
            Standing::Job(r, s) => {
                broken.insert(i);
                ("failed", format!("failed: {}", describe_end(r, s.as_ref())))
            }
        };
        described.push(d);
    }
    let mut out = render_instances(&plan, |i| described[i].1.clone());
    let count = |k: &str| described.iter().filter(|(c, _)| *c == k).count();
    let mut tally = format!("\n{} stage instances:", described.len());
    for k in ["cached", "queued", "running", "failed", "cancelled", "missing", "unknown"] {
        let n = count(k);
        if n > 0 || k == "cached" {
            let _ = write!(tally, " {n} {k},");
        }
    }
    tally.pop();
    out.push_str(&tally);
    out.push('\n');
    if let Some(e) = unknown {
        let _ = writeln!(out, "(job states unknown: {})", crate::error_chain(&e));
    }
    out.push_str(&tensorboard_folders(&plan, &store, |i| described[i].0));
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// The TensorBoard folder of every instance that has one, with its training's state:
/// finished (in the store), running (its job runs, or a process holds its key) or
/// interrupted (a run resumes it); empty when none has one.
fn tensorboard_folders(plan: &Plan, store: &Store, standing: impl Fn(usize) -> &'static str) -> String {
    let mut rows = vec![["stage".to_string(), "training".to_string(), "TensorBoard folder".to_string()]];
    for (i, inst) in plan.instances.iter().enumerate() {
        let dir = store.tensorboard_dir(inst.kind, &inst.key);
        if !dir.is_dir() {
            continue;
        }
        let state = match standing(i) {
            "cached" => "finished",
            "running" => "running",
            _ => match KeyLock::try_acquire(&store.lock_path(&inst.key)) {
                Ok(None) => "running",
                Ok(Some(_)) => "interrupted",
                Err(_) => "unknown",
            },
        };
        rows.push([inst.label(), state.to_string(), dir.display().to_string()]);
    }
    if rows.len() == 1 {
        return String::new();
    }
    format!(
        "\nTensorBoard event files (all runs: tensorboard --logdir {}):\n{}",
        store.tensorboard_root().display(),
        render_table(&rows)
    )
}
