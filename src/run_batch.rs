//! The commands around cluster executors: `run --executor slurm`, `status`, `report`,
//! and the hidden `exec-stage` each job runs.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{BatchArgs, ExecutorKind, ExperimentArgs};
use crate::config::{self, load_datasets_based, Datasets, Override, Resources};
use crate::exec::{
    describe_end, job_script, BatchExecutor, BatchOptions, JobBook, JobState, RunSummary, Scheduler, Selection, Slurm, Standing,
    Submission, SubmissionInfo,
};
use crate::plan::{build_plan, DevicePolicy, Plan, PlanEnv};
use crate::run::{check_stage_names, datasets_for, save_records, Session};
use crate::stages::StageKind;
use crate::store::{EntryState, Key, Store};
use crate::Error;

/// Seconds between looks at the queue with `--wait` (`KTLAB_POLL_SECONDS`, default 2).
fn poll_interval() -> Duration {
    let secs = std::env::var("KTLAB_POLL_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn policy(executor: ExecutorKind) -> DevicePolicy {
    match executor {
        ExecutorKind::Local => DevicePolicy::Probe,
        ExecutorKind::Slurm => DevicePolicy::Declared,
    }
}

/// Reads, validates and keys an experiment with the given datasets and device policy.
pub fn plan_with(session: &Session, exp: &ExperimentArgs, datasets: &Datasets, devices: DevicePolicy) -> Result<Plan, Error> {
    let overrides = exp.set.iter().map(|s| s.parse::<Override>()).collect::<Result<Vec<_>, _>>()?;
    let variants = config::load_experiment(&exp.file, &overrides)?;
    let cache_dir = session.store.root.join("fingerprints");
    let mut env = PlanEnv::new(datasets, exp.verify_data, &cache_dir);
    env.devices = devices;
    Ok(build_plan(variants, &mut env)?)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A session whose store path is absolute: jobs run elsewhere.
fn absolute_store(session: &Session) -> Store {
    Store::new(absolute(&session.store.root))
}

/// The experiment, datasets and `--set` values of a submission, as its jobs see them.
fn submission_plan(session: &Session, sub: &Submission) -> Result<Plan, Error> {
    let exp = ExperimentArgs {
        file: sub.experiment_path(),
        set: sub.info.set.clone(),
        verify_data: sub.info.verify_data,
    };
    let datasets = match sub.datasets_path() {
        Some(p) => load_datasets_based(&p, sub.info.datasets_base.as_deref())?,
        None => Datasets::default(),
    };
    plan_with(session, &exp, &datasets, DevicePolicy::Declared)
}

/// `ktlab run FILE --executor slurm [--wait]`
pub fn cmd_run_batch(session: &Session, exp: &ExperimentArgs, sel: &Selection, args: &BatchArgs) -> Result<ExitCode, Error> {
    let datasets = datasets_for(&session.settings, Some(&exp.file))?;
    let plan = plan_with(session, exp, &datasets, DevicePolicy::Declared)?;
    check_stage_names(&plan, &sel.force, "--force")?;
    check_stage_names(&plan, &sel.only, "--only")?;
    for (flag, v) in [("--partition", &args.partition), ("--account", &args.account), ("--qos", &args.qos)] {
        if v.as_ref().is_some_and(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            return Err(Error::Usage(format!("{flag}: expected a name without spaces")));
        }
    }
    let scheduler = Slurm::detect().map_err(|e| Error::Usage(format!("--executor slurm: {e}")))?;
    let store = absolute_store(session);
    let cli_defaults = Resources {
        partition: args.partition.clone(),
        account: args.account.clone(),
        qos: args.qos.clone(),
        ..Default::default()
    };
    let exec = BatchExecutor {
        scheduler: &scheduler,
        store: &store,
        reporter: &session.reporter,
        options: BatchOptions {
            defaults: cli_defaults.or(&plan.slurm.defaults),
            extra_args: plan.slurm.sbatch_args.clone(),
        },
    };
    let ktlab = std::env::current_exe().map_err(|e| Error::Other(format!("cannot find the ktlab binary: {e}")))?;
    let mut snapshot = || -> Result<Submission, String> {
        let info = SubmissionInfo {
            experiment: plan.experiment.clone(),
            experiment_file: absolute(&exp.file),
            datasets_base: datasets.file.as_deref().and_then(Path::parent).map(absolute),
            set: exp.set.clone(),
            verify_data: exp.verify_data,
            created: crate::exec::now(),
        };
        let root = store.root.join(scheduler.name()).join("submissions");
        let sub = Submission::create(&root, info, datasets.file.as_deref(), |dir| {
            job_script(&ktlab, &store.root, dir, &plan.slurm.setup)
        })
        .map_err(|e| format!("cannot write the submission under {}: {e}", root.display()))?;
        // Jobs plan from the copies: they must agree with what is being submitted.
        let copied = submission_plan(session, &sub).map_err(|e| format!("the submitted copy does not plan: {e}"))?;
        let keys = |p: &Plan| p.instances.iter().map(|i| i.key).collect::<Vec<_>>();
        if keys(&copied) != keys(&plan) {
            return Err(format!("{} changed while it was being submitted; run again", exp.file.display()));
        }
        Ok(sub)
    };
    let summary = exec.submit(&plan, sel, &mut snapshot).map_err(Error::Other)?;
    let quiet = session.reporter.is_quiet();
    let all_cached = summary.submitted.is_empty() && summary.reused.is_empty();
    if !quiet {
        println!(
            "{} job(s) submitted, {} already queued, {} cached",
            summary.submitted.len(),
            summary.reused.len(),
            summary.cached.len()
        );
        if let Some(dir) = &summary.submission {
            println!("submission: {}", dir.display());
        }
    }
    if !args.wait && !all_cached {
        if !quiet {
            let file = exp.file.display();
            println!("follow with `ktlab status {file} --executor slurm`; tables with `ktlab report {file} --executor slurm`");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let run = exec.wait(&plan, sel, &summary.cached, poll_interval()).map_err(Error::Other)?;
    save_records(session, &plan);
    write_tables(session, &plan)?;
    Ok(finish(session, &run))
}

fn write_tables(session: &Session, plan: &Plan) -> Result<PathBuf, Error> {
    let rows = crate::report::collect_rows(plan, &session.store);
    let (dir, md) = crate::report::write_results(plan, &rows, &session.settings.results)
        .map_err(|e| Error::Other(format!("writing results under {}: {e}", session.settings.results.display())))?;
    if !session.reporter.is_quiet() {
        println!("{md}");
        println!("results: {}", dir.join("results.csv").display());
    }
    Ok(dir)
}

fn finish(session: &Session, summary: &RunSummary) -> ExitCode {
    if !session.reporter.is_quiet() {
        println!(
            "{} computed, {} cached, {} failed, {} skipped",
            summary.computed,
            summary.cached,
            summary.failed.len(),
            summary.skipped.len()
        );
    }
    if summary.failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {} stage(s) failed:", summary.failed.len());
    for (label, err, _) in &summary.failed {
        eprintln!("  {label}: {err}");
    }
    for label in &summary.skipped {
        eprintln!("  {label}: not run (an input failed)");
    }
    ExitCode::from(1)
}

/// `ktlab status FILE`: one line per (variant, stage) with the instance's standing.
pub fn cmd_status(session: &Session, exp: &ExperimentArgs, executor: ExecutorKind) -> Result<ExitCode, Error> {
    let datasets = datasets_for(&session.settings, Some(&exp.file))?;
    let plan = plan_with(session, exp, &datasets, policy(executor))?;
    let all: Vec<usize> = (0..plan.instances.len()).collect();
    let store = absolute_store(session);
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
            let book = JobBook::new(&store.root, scheduler.name());
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
    let mut rows = vec![["variant".to_string(), "stage".into(), "kind".into(), "key".into(), "state".into()]];
    for v in &plan.variants {
        for (stage, &i) in &v.stages {
            let inst = &plan.instances[i];
            let shared = if inst.uses.len() > 1 { " (shared)" } else { "" };
            rows.push([
                v.name.clone(),
                stage.clone(),
                inst.kind.name().into(),
                inst.key.short(),
                format!("{}{shared}", described[i].1),
            ]);
        }
    }
    let widths: Vec<usize> = (0..4).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        for (c, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", r[c]));
        }
        out.push_str(&r[4]);
        out.push('\n');
    }
    let count = |k: &str| described.iter().filter(|(c, _)| *c == k).count();
    let mut tally = format!("\n{} stage instances:", described.len());
    for k in ["cached", "queued", "running", "failed", "cancelled", "missing", "unknown"] {
        let n = count(k);
        if n > 0 || k == "cached" {
            tally.push_str(&format!(" {n} {k},"));
        }
    }
    tally.pop();
    out.push_str(&tally);
    out.push('\n');
    if let Some(e) = unknown {
        out.push_str(&format!("(job states unknown: {e})\n"));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// `ktlab report FILE`: the result tables from the store; every entry must be there.
pub fn cmd_report(session: &Session, exp: &ExperimentArgs, executor: ExecutorKind) -> Result<ExitCode, Error> {
    let datasets = datasets_for(&session.settings, Some(&exp.file))?;
    let plan = plan_with(session, exp, &datasets, policy(executor))?;
    let missing: Vec<String> = plan
        .instances
        .iter()
        .filter(|inst| !matches!(session.store.state(inst.kind, &inst.key, false), EntryState::Valid(_)))
        .map(|inst| inst.label())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Other(format!(
            "{} stage instance(s) of {} are not in the store: {} (see `ktlab status {}`)",
            missing.len(),
            plan.experiment,
            missing.join(", "),
            exp.file.display()
        )));
    }
    save_records(session, &plan);
    write_tables(session, &plan)?;
    Ok(ExitCode::SUCCESS)
}

/// `ktlab exec-stage --submission DIR --key KEY`: what a job runs. Exits 0 at once when
/// the entry exists; non-zero when the stage fails, so the scheduler cancels dependents.
pub fn cmd_exec_stage(session: &Session, submission: &Path, key: &str, force: bool) -> Result<ExitCode, Error> {
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
    let sub = Submission::load(submission).map_err(|e| Error::Usage(format!("not a submission folder: {e}")))?;
    let plan = submission_plan(session, &sub)?;
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
    if let tch::Device::Cuda(n) = inst.device {
        let count = if tch::Cuda::is_available() {
            tch::Cuda::device_count() as usize
        } else {
            0
        };
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
    match crate::exec::run_instance(&plan, i, &session.store, &session.reporter, force) {
        crate::exec::InstanceOutcome::Computed | crate::exec::InstanceOutcome::Cached => Ok(ExitCode::SUCCESS),
        crate::exec::InstanceOutcome::Failed(e) => {
            eprintln!("error: {label}: {e}");
            Ok(ExitCode::from(if e.is_input_error() { 2 } else { 1 }))
        }
    }
}
