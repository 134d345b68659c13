//! The local executor: runs instances one after another in dependency order; a failed
//! stage stops its dependents, the others go on.
use std::collections::HashSet;

use crate::plan::Plan;
#[cfg(feature = "torch")]
use {
    super::{run_instance, Event, InstanceOutcome, Reporter},
    crate::store::{EntryState, Store},
};

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

#[cfg(feature = "torch")]
impl LocalExecutor<'_> {
    pub fn run(&self, plan: &Plan, sel: &Selection) -> RunSummary {
        let selected = selected_instances(plan, &sel.only);
        let forced: HashSet<usize> = (0..plan.instances.len())
            .filter(|&i| plan.instances[i].uses.iter().any(|(_, s)| sel.force.contains(s)))
            .collect();
        // CUDA before anything computes: libtorch fixes whether it has CUDA at its first
        // query of it, which a CPU instance's seeding makes.
        if plan.instances.iter().any(|i| matches!(i.device, crate::device::Device::Cuda(_))) {
            crate::device::cuda::load();
        }
        let mut status = vec![Status::Pending; plan.instances.len()];
        let mut summary = RunSummary::default();
        for i in 0..plan.instances.len() {
            if selected.contains(&i) {
                self.ensure(plan, i, false, &forced, &mut status, &mut summary);
            }
        }
        summary
    }

    /// Makes instance `i` available: cached (verified deeply if `deep`) or computed.
    fn ensure(&self, plan: &Plan, i: usize, deep: bool, forced: &HashSet<usize>, status: &mut [Status], summary: &mut RunSummary) -> bool {
        match status[i] {
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
                    if status[i] == Status::Pending {
                        summary.cached += 1;
                        self.reporter.emit(Event::Cached {
                            label,
                            key: inst.key.hex(),
                        });
                    }
                    status[i] = Status::Ready { deep };
                    return true;
                }
                EntryState::Corrupt(why) => {
                    tracing::warn!(stage = %label, "store entry {} is corrupt: {why}", inst.key.short());
                    if status[i] != Status::Pending {
                        summary.cached = summary.cached.saturating_sub(1);
                    }
                }
                EntryState::Missing => {}
            }
        }
        // Inputs must be present and intact before computing.
        let deps: Vec<usize> = inst.deps().collect();
        for j in deps {
            if !self.ensure(plan, j, true, forced, status, summary) {
                let because = format!("input `{}` failed", plan.instances[j].label());
                self.reporter.emit(Event::Skipped {
                    label: label.clone(),
                    because: because.clone(),
                });
                summary.skipped.push(label);
                status[i] = Status::Failed;
                return false;
            }
        }
        match run_instance(plan, i, self.store, self.reporter, force) {
            InstanceOutcome::Computed => {
                summary.computed += 1;
                status[i] = Status::Ready { deep: true };
                true
            }
            InstanceOutcome::Cached => {
                summary.cached += 1;
                self.reporter.emit(Event::Cached {
                    label,
                    key: inst.key.hex(),
                });
                status[i] = Status::Ready { deep: true };
                true
            }
            InstanceOutcome::Failed(e) => {
                summary.failed.push((label, e.to_string(), e.is_input_error()));
                status[i] = Status::Failed;
                false
            }
        }
    }
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
