//! Whether an instance is cached, and if not, why it will run.
use serde_json::Value;

use super::{Plan, StageInstance};
use crate::store::{EntryState, Records, Store};

#[derive(Clone, Debug, PartialEq)]
pub enum InstanceState {
    Cached,
    /// Will run, with the reasons ("new", "parameter k changed from 4 to 8", ...).
    Due(Vec<String>),
}

impl InstanceState {
    pub fn describe(&self) -> String {
        match self {
            InstanceState::Cached => "cached".into(),
            InstanceState::Due(r) => format!("will run: {}", r.join("; ")),
        }
    }
}

/// The state of an instance, explained against what its stage was keyed on last time.
pub fn state_of(plan: &Plan, inst: &StageInstance, store: &Store, records: &Records) -> InstanceState {
    match store.state(inst.kind, &inst.key, false) {
        EntryState::Valid(_) => InstanceState::Cached,
        EntryState::Corrupt(why) => InstanceState::Due(vec![format!("store entry is corrupt ({why})")]),
        EntryState::Missing => {
            let (variant, stage) = &inst.uses[0];
            let Some(prev) = records.get(variant, stage) else {
                return InstanceState::Due(vec!["new".into()]);
            };
            if prev.key == inst.key.hex() {
                return InstanceState::Due(vec!["missing from the store".into()]);
            }
            let mut reasons = Vec::new();
            diff_params(&prev.key_input["params"], &inst.key_input["params"], "", &mut reasons);
            let (old_in, new_in) = (&prev.key_input["inputs"], &inst.key_input["inputs"]);
            if let Value::Object(m) = new_in {
                for (k, v) in m {
                    if old_in.get(k) != Some(v) {
                        reasons.push(match v.get("dataset") {
                            Some(d) => format!(
                                "dataset {}:{} changed",
                                d.as_str().unwrap_or("?"),
                                v["split"].as_str().unwrap_or("?")
                            ),
                            None => format!("upstream {} changed", upstream_name(plan, inst, k)),
                        });
                    }
                }
            }
            for field in ["kind", "version", "ktlab", "libtorch", "device", "seed"] {
                if prev.key_input.get(field) != inst.key_input.get(field) {
                    reasons.push(format!(
                        "{field} changed from {} to {}",
                        show(prev.key_input.get(field)),
                        show(inst.key_input.get(field))
                    ));
                }
            }
            if reasons.is_empty() {
                reasons.push("key changed".into());
            }
            InstanceState::Due(reasons)
        }
    }
}

fn upstream_name(plan: &Plan, inst: &StageInstance, input: &str) -> String {
    match inst.inputs.get(input) {
        Some(super::PlannedInput::Stage(i)) => {
            let (_, s) = &plan.instances[*i].uses[0];
            s.clone()
        }
        _ => input.to_string(),
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn diff_params(old: &Value, new: &Value, prefix: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                diff_params(a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null), &p, out);
            }
        }
        (a, b) if a != b => out.push(format!("parameter {prefix} changed from {} to {}", show(Some(a)), show(Some(b)))),
        _ => {}
    }
}
