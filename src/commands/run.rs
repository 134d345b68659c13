//! `ktlab run`: compute what the store lacks, here (local executor) or as cluster jobs
//! (`--executor slurm`, with `--wait` to follow them), then write the result tables.
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::session::{absolute, check_stage_names, PlanOptions, Session};
use crate::cli::{BatchArgs, ExecutorKind, ExperimentArgs};
use crate::config::Resources;
use crate::exec::{
    job_script, BatchError, BatchExecutor, BatchOptions, LocalExecutor, Scheduler, Selection, Slurm, Submission, SubmissionInfo,
};
use crate::plan::Plan;
use crate::Error;

/// `ktlab run FILE`: every missing instance in this process, in dependency order.
pub fn run_local(session: &Session, exp: &ExperimentArgs, sel: &Selection, ignore_memory: bool) -> Result<ExitCode, Error> {
    // Ctrl-C and SIGTERM say what was interrupted and how to resume.
    crate::exec::handle_interrupts(resume_command());
    let plan = session.load_plan(exp, PlanOptions::for_executor(ExecutorKind::Local))?.plan;
    session.check_results_owner(&plan)?;
    check_stage_names(&plan, &sel.force, "--force")?;
    check_stage_names(&plan, &sel.only, "--only")?;
    if !ignore_memory {
        check_memory(session, &plan, sel)?;
    }
    session.announce_store();
    // Pinned before the store is looked at: a concurrent gc leaves these entries alone.
    let _pins = session.store.pin(plan.instances.iter().map(|i| i.key))?;
    // Work folders of killed runs (their keys' locks are free): nobody resumes them.
    let stale = crate::store::remove_stale_work_folders(&session.store);
    if stale > 0 {
        tracing::info!("removed {stale} work folder(s) left by interrupted runs");
    }
    let executor = LocalExecutor {
        store: &session.store,
        reporter: &session.reporter,
    };
    let summary = executor.run(&plan, sel);
    session.finish_run(&plan, &summary)
}

/// Refuses a run whose largest due instance would not fit in this machine's memory by the
/// plan's estimate (`--ignore-memory` proceeds), naming it and what its estimate holds; a
/// stage on a GPU counts only what it holds here (its activations are the device's).
fn check_memory(session: &Session, plan: &Plan, sel: &Selection) -> Result<(), Error> {
    let Some(machine) = crate::plan::machine_memory() else {
        return Ok(());
    };
    let due = crate::exec::to_compute(plan, &session.store, sel);
    let memory = crate::plan::memory_plan(
        plan,
        &due,
        &crate::plan::cost_facts(plan, crate::plan::threads_here()),
        crate::data::decode_budget()?,
    );
    // A GPU stage's activations and training state are the device's, not this machine's.
    let on_gpu: Vec<bool> = plan
        .instances
        .iter()
        .map(|inst| matches!(inst.device, crate::device::Device::Cuda(_)))
        .collect();
    match crate::plan::largest_on_host(&memory, &on_gpu) {
        Some((i, m, need)) if need > machine => {
            let inst = &plan.instances[i];
            let (variant, stage) = &inst.uses[0];
            let gib = crate::plan::human_bytes;
            // A full-batch probe has a remedy that keeps the split.
            let lbfgs = inst.kind.name() == "linear-probe" && inst.key_input["params"]["solver"].as_str() != Some("adam");
            let hint = if lbfgs {
                ", or give it `solver = \"adam\"` (L-BFGS fits the training features at once; Adam reads them a batch at a time)"
            } else {
                ""
            };
            Err(Error::Usage(format!(
                "stage `{stage}` ({variant}) would need about {} at its peak ({}) and this machine has {}: \
                 run it where there is more memory, on smaller splits{hint}, or pass --ignore-memory to try anyway",
                gib(need),
                m.parts(),
                gib(machine)
            )))
        }
        _ => Ok(()),
    }
}

/// This command line as the user would type it again (`ktlab run exp.toml --only f`).
fn resume_command() -> String {
    let plain = |a: &str| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "_./=:,@+-".contains(c));
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| if plain(&a) { a } else { crate::exec::shell_quote(&a) })
        .collect();
    format!("ktlab {}", args.join(" "))
}

/// Seconds between looks at the queue with `--wait` (`KTLAB_POLL_SECONDS`, default 2).
fn poll_interval() -> Duration {
    let secs = std::env::var("KTLAB_POLL_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

/// `ktlab run FILE --executor slurm [--wait]`: one job per missing instance.
pub fn run_slurm(session: &Session, exp: &ExperimentArgs, sel: &Selection, args: &BatchArgs) -> Result<ExitCode, Error> {
    let loaded = session.load_plan(exp, PlanOptions::for_executor(ExecutorKind::Slurm))?;
    let (plan, datasets) = (&loaded.plan, &loaded.datasets);
    session.check_results_owner(plan)?;
    check_stage_names(plan, &sel.force, "--force")?;
    check_stage_names(plan, &sel.only, "--only")?;
    for (flag, v) in [("--partition", &args.partition), ("--account", &args.account), ("--qos", &args.qos)] {
        if v.as_ref().is_some_and(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            return Err(Error::Usage(format!("{flag}: expected a name without spaces")));
        }
    }
    let scheduler = Slurm::detect().map_err(|source| Error::Executor { executor: "slurm", source })?;
    let store = session.absolute_store();
    session.announce_store();
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
    let ktlab = std::env::current_exe().map_err(|source| Error::Io {
        what: "cannot find the ktlab binary".into(),
        source,
    })?;
    let mut snapshot = || -> Result<Submission, BatchError> {
        let info = SubmissionInfo {
            experiment: plan.experiment.clone(),
            experiment_file: absolute(&exp.file),
            datasets_base: datasets.file.as_deref().and_then(Path::parent).map(absolute),
            set: exp.set.clone(),
            fingerprint: exp.fingerprint.mode,
            created: crate::exec::now(),
        };
        let root = store.submissions_dir(scheduler.name());
        let sub = Submission::create(&root, info, datasets.file.as_deref(), |dir| {
            job_script(&ktlab, &store.root, dir, &plan.slurm.setup)
        })?;
        // Jobs plan from the copies: they must agree with what is being submitted.
        let copied = session
            .submission_plan(&sub)
            .map_err(|e| BatchError::CopyDoesNotPlan(Box::new(e)))?;
        let keys = |p: &Plan| p.instances.iter().map(|i| i.key).collect::<Vec<_>>();
        if keys(&copied) != keys(plan) {
            return Err(BatchError::Changed { file: exp.file.clone() });
        }
        Ok(sub)
    };
    let summary = exec.submit(plan, sel, &mut snapshot)?;
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
    let run = exec.wait(plan, sel, &summary.cached, poll_interval())?;
    session.finish_run(plan, &run)
}
