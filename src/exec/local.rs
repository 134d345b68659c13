//! The local executor: runs instances one after another in dependency order; a failed
//! stage stops its dependents, the others go on.
use std::collections::HashSet;

#[cfg(feature = "torch")]
use super::{run_instance, Event, InstanceOutcome, Reporter};
use crate::plan::Plan;
use crate::store::{EntryState, Store};

/// Which instances to consider and which to recompute.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Stage names to recompute even when cached.
    pub force: Vec<String>,
    /// Stage names to run (with what they need); empty = everything.
    pub only: Vec<String>,
}

#[derive(Debug, Default)]
pub struct RunSummary {
    pub computed: usize,
    pub cached: usize,
    /// (stage label, error, is an input error)
    pub failed: Vec<(String, String, bool)>,
    pub skipped: Vec<String>,
}

#[cfg(feature = "torch")]
pub struct LocalExecutor<'a> {
    pub store: &'a Store,
    pub reporter: &'a Reporter,
}

#[cfg(feature = "torch")]
#[derive(Clone, Copy, PartialEq)]
enum Status {
    Pending,
    /// Published and (if `deep`) re-verified in this run.
    Ready {
        deep: bool,
    },
    Failed,
}

/// Where a run stands: each instance's status, the summary so far, and which instances
/// the reporter's count of those to compute includes.
#[cfg(feature = "torch")]
struct Progress {
    status: Vec<Status>,
    summary: RunSummary,
    /// Counted among the instances to compute.
    counted: Vec<bool>,
}

#[cfg(feature = "torch")]
impl Progress {
    fn to_compute(&self) -> usize {
        self.counted.iter().filter(|c| **c).count()
    }
}

#[cfg(feature = "torch")]
impl LocalExecutor<'_> {
    pub fn run(&self, plan: &Plan, sel: &Selection) -> RunSummary {
        let selected = selected_instances(plan, &sel.only);
        let forced = forced_instances(plan, sel);
        // CUDA before anything computes: libtorch fixes whether it has CUDA at its first
        // query of it, which a CPU instance's seeding makes.
        if plan.instances.iter().any(|i| matches!(i.device, crate::device::Device::Cuda(_))) {
            crate::device::cuda::load();
        }
        let counted = to_compute(plan, self.store, sel);
        // The time left as `ktlab plan` estimates it.
        let history = crate::plan::History::load(self.store);
        let estimates = crate::plan::estimate_plan(plan, &counted, &history, crate::plan::threads_here());
        let by_label = plan
            .instances
            .iter()
            .zip(&estimates.instances)
            .filter_map(|(inst, e)| Some((inst.label(), e.as_ref()?.seconds)))
            .collect();
        self.reporter.expect_seconds(by_label);
        let mut progress = Progress {
            status: vec![Status::Pending; plan.instances.len()],
            summary: RunSummary::default(),
            counted,
        };
        self.reporter.expect(progress.to_compute());
        for i in 0..plan.instances.len() {
            if selected.contains(&i) {
                self.ensure(plan, i, false, &forced, &mut progress);
            }
        }
        self.reporter.end();
        progress.summary
    }

    /// Counts instance `i` among those computed (or not), telling the reporter when that
    /// changes the total.
    fn count(&self, progress: &mut Progress, i: usize, counted: bool) {
        if progress.counted[i] != counted {
            progress.counted[i] = counted;
            self.reporter.expect(progress.to_compute());
        }
    }

    /// Makes instance `i` available: cached (verified deeply if `deep`) or computed.
    fn ensure(&self, plan: &Plan, i: usize, deep: bool, forced: &HashSet<usize>, progress: &mut Progress) -> bool {
        match progress.status[i] {
            Status::Failed => return false,
            Status::Ready { deep: d } if d || !deep => return true,
            _ => {}
        }
        let inst = &plan.instances[i];
        let label = inst.label();
        let force = forced.contains(&i);
        if !force {
            match self.store.state(inst.kind, &inst.key, deep) {
                EntryState::Valid(_) => {
                    if progress.status[i] == Status::Pending {
                        progress.summary.cached += 1;
                        self.reporter.emit(Event::Cached {
                            label,
                            key: inst.key.hex(),
                        });
                    }
                    progress.status[i] = Status::Ready { deep };
                    return true;
                }
                EntryState::Corrupt(why) => {
                    tracing::warn!(stage = %label, "store entry {} is corrupt: {why}", inst.key.short());
                    if progress.status[i] != Status::Pending {
                        progress.summary.cached = progress.summary.cached.saturating_sub(1);
                    }
                }
                EntryState::Missing => {}
            }
        }
        // From here on it is computed (or skipped): one of the instances this run computes.
        self.count(progress, i, true);
        // Inputs must be present and intact before computing.
        let deps: Vec<usize> = inst.deps().collect();
        for j in deps {
            if !self.ensure(plan, j, true, forced, progress) {
                let because = format!("input `{}` failed", plan.instances[j].label());
                self.reporter.emit(Event::Skipped {
                    label: label.clone(),
                    because: because.clone(),
                });
                progress.summary.skipped.push(label);
                progress.status[i] = Status::Failed;
                return false;
            }
        }
        match run_instance(plan, i, self.store, self.reporter, force) {
            InstanceOutcome::Computed => {
                progress.summary.computed += 1;
                progress.status[i] = Status::Ready { deep: true };
                true
            }
            InstanceOutcome::Cached => {
                // Another process published it meanwhile: not computed here after all.
                self.count(progress, i, false);
                progress.summary.cached += 1;
                self.reporter.emit(Event::Cached {
                    label,
                    key: inst.key.hex(),
                });
                progress.status[i] = Status::Ready { deep: true };
                true
            }
            InstanceOutcome::Failed(e) => {
                progress.summary.failed.push((label, e.to_string(), e.is_input_error()));
                progress.status[i] = Status::Failed;
                false
            }
        }
    }
}

/// The instances of the stages named by `--force`.
fn forced_instances(plan: &Plan, sel: &Selection) -> HashSet<usize> {
    (0..plan.instances.len())
        .filter(|&i| plan.instances[i].uses.iter().any(|(_, s)| sel.force.contains(s)))
        .collect()
}

/// What a run with `sel` computes, as far as it knows before it starts: the selected
/// instances the store lacks, and those forced.
pub fn to_compute(plan: &Plan, store: &Store, sel: &Selection) -> Vec<bool> {
    let selected = selected_instances(plan, &sel.only);
    let forced = forced_instances(plan, sel);
    (0..plan.instances.len())
        .map(|i| {
            let inst = &plan.instances[i];
            selected.contains(&i) && (forced.contains(&i) || !matches!(store.state(inst.kind, &inst.key, false), EntryState::Valid(_)))
        })
        .collect()
}

/// With `only` empty, every instance; else the named stages' instances and all they need.
pub fn selected_instances(plan: &Plan, only: &[String]) -> HashSet<usize> {
    if only.is_empty() {
        return (0..plan.instances.len()).collect();
    }
    let mut out = HashSet::new();
    let mut stack: Vec<usize> = (0..plan.instances.len())
        .filter(|&i| plan.instances[i].uses.iter().any(|(_, s)| only.contains(s)))
        .collect();
    while let Some(i) = stack.pop() {
        if out.insert(i) {
            stack.extend(plan.instances[i].deps());
        }
    }
    out
}
