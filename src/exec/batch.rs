//! The batch executor: hands the whole stage graph to a cluster scheduler as one job per
//! missing instance, each waiting (`afterok`) for the jobs of its inputs, so the
//! submitting process may exit. Scheduler-neutral: it speaks only `Scheduler`.
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use super::jobs::{JobBook, JobRecord};
use super::local::selected_instances;
use super::scheduler::{JobRequest, JobState, JobStatus, Scheduler, SchedulerError};
use super::submission::{Submission, SubmissionError};
use super::{Event, Reporter, RunSummary, Selection};
use crate::config::Resources;
use crate::plan::{Plan, StageInstance};
use crate::store::{EntryState, KeyLock, Store};

/// Why submitting or following the jobs stopped.
#[derive(Debug, Error)]
pub enum BatchError {
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Submission(#[from] SubmissionError),
    #[error("cannot lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the current folder (jobs start there)")]
    CurrentDir(#[source] std::io::Error),
    #[error("job {job} submitted, but its record cannot be written to {}", path.display())]
    Record {
        job: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The copy of the experiment under the submission does not plan.
    #[error("the submitted copy does not plan")]
    CopyDoesNotPlan(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The experiment changed between planning and copying it.
    #[error("{} changed while it was being submitted; run again", file.display())]
    Changed { file: PathBuf },
    #[error("the scheduler does not answer (the jobs go on; follow them with `ktlab status`)")]
    Unreachable(#[source] SchedulerError),
}

/// Executor-wide settings: defaults under each stage's own resources, and options
/// passed to the scheduler as given.
#[derive(Clone, Debug, Default)]
pub struct BatchOptions {
    pub defaults: Resources,
    pub extra_args: Vec<String>,
}

pub struct BatchExecutor<'a, S: Scheduler> {
    pub scheduler: &'a S,
    pub store: &'a Store,
    pub reporter: &'a Reporter,
    pub options: BatchOptions,
}

/// Where one instance stands.
// One per stage instance, a few hundred at most: boxing the job would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Standing {
    /// A valid entry is in the store.
    Cached,
    /// Not in the store; its last job, with the scheduler's word on it (`None`: the
    /// scheduler no longer knows it).
    Job(JobRecord, Option<JobStatus>),
    /// Not in the store and never submitted.
    Missing,
}

impl Standing {
    pub fn is_alive(&self) -> bool {
        matches!(self, Standing::Job(_, Some(s)) if s.state.is_alive())
    }
}

#[derive(Debug, Default)]
pub struct SubmitSummary {
    /// Instances already in the store.
    pub cached: Vec<usize>,
    /// Instances whose queued or running job was kept: (instance, job id).
    pub reused: Vec<(usize, String)>,
    pub submitted: Vec<(usize, String)>,
    pub submission: Option<PathBuf>,
}

pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `ktlab:<experiment>:<variant>:<stage>`; an instance shared by variants says `shared`.
pub fn job_name(plan: &Plan, inst: &StageInstance) -> String {
    let (variant, stage) = &inst.uses[0];
    let variant = if inst.uses.len() > 1 { "shared" } else { variant };
    format!("ktlab:{}:{variant}:{stage}", plan.experiment)
}

impl<S: Scheduler> BatchExecutor<'_, S> {
    fn book(&self) -> JobBook {
        JobBook::new(self.store, self.scheduler.name())
    }

    /// Where each instance in `indices` stands: a queued or running job first, then the
    /// store. The scheduler is asked before the store is looked at, so a job finishing
    /// in between reads as cached.
    pub fn standings(&self, plan: &Plan, indices: &[usize]) -> Result<HashMap<usize, Standing>, SchedulerError> {
        let book = self.book();
        let records: HashMap<usize, JobRecord> = indices
            .iter()
            .filter_map(|&i| book.get(&plan.instances[i].key).map(|r| (i, r)))
            .collect();
        let ids: Vec<String> = records.values().map(|r| r.id.clone()).collect();
        let statuses = self.scheduler.query(&ids)?;
        let mut out = HashMap::new();
        for &i in indices {
            let inst = &plan.instances[i];
            // A reused id naming another job means ours is gone.
            let job = records
                .get(&i)
                .map(|r| (r, statuses.get(&r.id).filter(|s| s.name == r.name).cloned()));
            let standing = match job {
                // Still at work (a forced recomputation, or about to find its entry).
                Some((r, Some(s))) if s.state.is_alive() => Standing::Job(r.clone(), Some(s)),
                _ if matches!(self.store.state(inst.kind, &inst.key, false), EntryState::Valid(_)) => Standing::Cached,
                Some((r, s)) => Standing::Job(r.clone(), s),
                None => Standing::Missing,
            };
            out.insert(i, standing);
        }
        Ok(out)
    }

    /// Submits a job for every selected instance that is neither in the store nor
    /// queued or running already. `snapshot` is called once, before the first job, and
    /// returns the submission (its plan must have the same keys as `plan`).
    pub fn submit(
        &self,
        plan: &Plan,
        sel: &Selection,
        snapshot: &mut dyn FnMut() -> Result<Submission, BatchError>,
    ) -> Result<SubmitSummary, BatchError> {
        // One submitter at a time per store: two would both see "not queued" and submit twice.
        let lock_path = self.store.submit_lock_path(self.scheduler.name());
        let _lock = KeyLock::acquire(&lock_path).map_err(|source| BatchError::Lock {
            path: lock_path.clone(),
            source,
        })?;
        let selected = selected_instances(plan, &sel.only);
        let forced: HashSet<usize> = (0..plan.instances.len())
            .filter(|&i| plan.instances[i].uses.iter().any(|(_, s)| sel.force.contains(s)))
            .collect();
        let order: Vec<usize> = (0..plan.instances.len()).filter(|i| selected.contains(i)).collect();
        let standings = self.standings(plan, &order)?;
        let mut summary = SubmitSummary::default();
        let mut job_of: HashMap<usize, String> = HashMap::new();
        let mut todo = Vec::new();
        for &i in &order {
            let inst = &plan.instances[i];
            match &standings[&i] {
                Standing::Cached if !forced.contains(&i) => {
                    summary.cached.push(i);
                    self.reporter.emit(Event::Cached {
                        label: inst.label(),
                        key: inst.key.hex(),
                    });
                }
                Standing::Job(r, Some(_)) if standings[&i].is_alive() => {
                    job_of.insert(i, r.id.clone());
                    summary.reused.push((i, r.id.clone()));
                    self.reporter.emit(Event::Submitted {
                        label: inst.label(),
                        job: r.id.clone(),
                        reused: true,
                    });
                }
                _ => todo.push(i),
            }
        }
        if todo.is_empty() {
            return Ok(summary);
        }
        let submission = snapshot()?;
        summary.submission = Some(submission.dir.clone());
        let book = self.book();
        let workdir = std::env::current_dir().map_err(BatchError::CurrentDir)?;
        for i in todo {
            let inst = &plan.instances[i];
            let (variant, stage) = &inst.uses[0];
            let variant = if inst.uses.len() > 1 { "shared" } else { variant.as_str() };
            let mut args = vec!["--key".to_string(), inst.key.hex()];
            if forced.contains(&i) {
                args.push("--force".into());
            }
            let request = JobRequest {
                name: job_name(plan, inst),
                script: submission.script_path(),
                args,
                after_ok: inst.deps().filter_map(|j| job_of.get(&j).cloned()).collect(),
                resources: inst.resources.or(&self.options.defaults),
                extra_args: self.options.extra_args.clone(),
                log_dir: self.store.job_logs_dir(self.scheduler.name(), &plan.experiment),
                log_stem: format!("{stage}-{variant}"),
                workdir: workdir.clone(),
            };
            let submitted = self.scheduler.submit(&request)?;
            let record = JobRecord {
                id: submitted.id.clone(),
                name: request.name.clone(),
                log: submitted.log,
                key: inst.key.hex(),
                experiment: plan.experiment.clone(),
                label: inst.label(),
                submission: submission.dir.clone(),
                submitted: now(),
            };
            book.put(&inst.key, &record).map_err(|source| BatchError::Record {
                job: submitted.id.clone(),
                path: book.record_path(&inst.key),
                source,
            })?;
            self.reporter.emit(Event::Submitted {
                label: inst.label(),
                job: submitted.id.clone(),
                reused: false,
            });
            job_of.insert(i, submitted.id.clone());
            summary.submitted.push((i, submitted.id));
        }
        Ok(summary)
    }

    /// Follows the selected instances until each is in the store or has failed,
    /// reporting progress; `poll` is the time between looks. Instances in `cached`
    /// count as cached, others that arrive as computed.
    pub fn wait(&self, plan: &Plan, sel: &Selection, cached: &[usize], poll: Duration) -> Result<RunSummary, BatchError> {
        let selected = selected_instances(plan, &sel.only);
        let mut pending: Vec<usize> = (0..plan.instances.len()).filter(|i| selected.contains(i)).collect();
        self.reporter.expect(pending.iter().filter(|i| !cached.contains(i)).count());
        let mut summary = RunSummary::default();
        let mut failed: HashSet<usize> = HashSet::new();
        let mut running: HashSet<usize> = HashSet::new();
        let mut first = true;
        // A busy controller may not answer a query; only a run of failures ends the wait.
        let mut misses = 0;
        while !pending.is_empty() {
            if !first {
                std::thread::sleep(poll);
            }
            let standings = match self.standings(plan, &pending) {
                Ok(s) => {
                    misses = 0;
                    s
                }
                Err(e) if misses < 10 => {
                    misses += 1;
                    tracing::warn!("cannot ask the scheduler ({}); trying again", crate::chain::error_chain(&e));
                    first = false;
                    continue;
                }
                Err(e) => return Err(BatchError::Unreachable(e)),
            };
            let mut still = Vec::new();
            for &i in &pending {
                let inst = &plan.instances[i];
                let label = inst.label();
                let fail = |why: String, input: bool, summary: &mut RunSummary, failed: &mut HashSet<usize>| {
                    self.reporter.emit(Event::Failed {
                        label: label.clone(),
                        kind: inst.kind.name(),
                        key: inst.key.hex(),
                        error: why.clone(),
                    });
                    summary.failed.push((label.clone(), why, input));
                    failed.insert(i);
                };
                match &standings[&i] {
                    Standing::Cached if cached.contains(&i) => {
                        summary.cached += 1;
                    }
                    Standing::Cached => {
                        summary.computed += 1;
                        let (seconds, text) = match self.store.state(inst.kind, &inst.key, false) {
                            EntryState::Valid(m) => (m.seconds, m.summary),
                            _ => (0.0, String::new()),
                        };
                        self.reporter.emit(Event::Finished {
                            label: label.clone(),
                            kind: inst.kind.name(),
                            key: inst.key.hex(),
                            seconds,
                            summary: text,
                        });
                    }
                    Standing::Missing => fail("not submitted".into(), false, &mut summary, &mut failed),
                    Standing::Job(r, status) => {
                        let input_failed = inst.deps().any(|j| failed.contains(&j));
                        match status.as_ref().map(|s| s.state) {
                            Some(JobState::Queued) => still.push(i),
                            Some(JobState::Running) => {
                                if running.insert(i) {
                                    self.reporter.emit(Event::Started {
                                        label: label.clone(),
                                        kind: inst.kind.name(),
                                        key: inst.key.hex(),
                                    });
                                }
                                still.push(i)
                            }
                            Some(JobState::Cancelled) if input_failed => {
                                let because = "an input failed; the scheduler cancelled its job".to_string();
                                self.reporter.emit(Event::Skipped {
                                    label: label.clone(),
                                    because,
                                });
                                summary.skipped.push(label.clone());
                                failed.insert(i);
                            }
                            _ => {
                                let input = status.as_ref().is_some_and(failed_on_input);
                                fail(describe_end(r, status.as_ref()), input, &mut summary, &mut failed)
                            }
                        }
                    }
                }
            }
            pending = still;
            first = false;
        }
        self.reporter.end();
        Ok(summary)
    }
}

/// A job whose `exec-stage` exited 2 (`<code>:<signal>` in the scheduler's words): its
/// stage failed on its input, which a run counts as a local run does.
pub fn failed_on_input(status: &JobStatus) -> bool {
    status.state == JobState::Failed && status.exit_code.split(':').next() == Some("2")
}

/// Why a job that left no entry ended, with its log.
pub fn describe_end(r: &JobRecord, status: Option<&JobStatus>) -> String {
    let what = match status {
        None => "is no longer known to the scheduler".to_string(),
        Some(s) => {
            let mut w = match s.state {
                JobState::Succeeded => "completed without publishing its entry".to_string(),
                _ => s.raw.to_lowercase(),
            };
            if !s.reason.is_empty() {
                w.push_str(&format!(" ({})", s.reason));
            }
            if !s.exit_code.is_empty() && s.exit_code != "0:0" {
                w.push_str(&format!(", exit code {}", s.exit_code));
            }
            w
        }
    };
    format!("job {} {what}; log: {}", r.id, r.log.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_exited_2_failed_on_its_input() {
        let status = |state, exit_code: &str| JobStatus {
            state,
            raw: String::new(),
            reason: String::new(),
            exit_code: exit_code.into(),
            name: String::new(),
        };
        assert!(failed_on_input(&status(JobState::Failed, "2:0")));
        assert!(!failed_on_input(&status(JobState::Failed, "1:0")));
        assert!(!failed_on_input(&status(JobState::Failed, "0:9")));
        assert!(!failed_on_input(&status(JobState::Cancelled, "2:0")));
    }
}
