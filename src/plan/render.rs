//! Text renderings of a plan (`ktlab plan`, whose instance table `ktlab status` shares) and of
//! one key (`ktlab explain`).
use std::fmt::Write;

use super::{human_bytes, largest, machine_memory, InstanceState, Memory, Plan, PlanEstimate};
use crate::store::canonical_json;

/// One line per (variant, stage): variant, stage, kind, short key, the estimated time of
/// each instance that runs and where it comes from, state, its estimated peak memory; then
/// the counts, the total time, the critical path (each instance its own cluster job) and
/// the largest peak against this machine's memory.
pub fn render_plan(plan: &Plan, states: &[InstanceState], estimates: &PlanEstimate, memory: &[Option<Memory>]) -> String {
    let mut out = render_instances(plan, |i| match &estimates.instances[i] {
        Some(e) => {
            let memory = memory[i]
                .as_ref()
                .map_or(String::new(), |m| format!(", ~{}", human_bytes(m.total())));
            format!(
                "~{} ({}), {}{memory}",
                human_seconds(e.seconds),
                e.source.describe(),
                states[i].describe()
            )
        }
        None => states[i].describe(),
    });
    let due = states.iter().filter(|s| matches!(s, InstanceState::Due(_))).count();
    let _ = writeln!(
        out,
        "\n{} stage instances: {} cached, {} to run",
        states.len(),
        states.len() - due,
        due
    );
    if due > 0 {
        let _ = writeln!(
            out,
            "estimated: ~{} one after another (local), ~{} along the critical path (slurm, each instance its own job)",
            human_seconds(estimates.total_seconds),
            human_seconds(estimates.critical_path_seconds)
        );
        if let Some((i, m)) = largest(memory) {
            let (variant, stage) = &plan.instances[i].uses[0];
            let machine = machine_memory().map_or(String::new(), |b| format!("; this machine has {}", human_bytes(b)));
            let _ = writeln!(
                out,
                "peak memory: ~{} ({stage}[{variant}]: {}){machine}",
                human_bytes(m.total()),
                m.parts()
            );
        }
    }
    out
}

/// `0.4s`, `12s`, `3m 05s`, `2h 03m`: an estimate's precision.
pub fn human_seconds(s: f64) -> String {
    let s = s.max(0.0);
    if s < 10.0 {
        return format!("{s:.1}s");
    }
    let whole = s.round() as u64;
    if whole < 60 {
        format!("{whole}s")
    } else if whole < 3600 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h {:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// The instance table of `plan` and `status`: one line per (variant, stage) with the
/// variant, stage, kind and short key in aligned columns, then `state(instance)` (with
/// ` (shared)` where variants share the instance).
pub fn render_instances(plan: &Plan, state: impl Fn(usize) -> String) -> String {
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
                format!("{}{shared}", state(i)),
            ]);
        }
    }
    render_table(&rows)
}

/// Rows as aligned columns, two spaces apart; the last column is not padded.
pub fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N.saturating_sub(1))
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, w) in widths.iter().enumerate() {
            let _ = write!(out, "{:<w$}  ", r[c]);
        }
        if let Some(last) = r.last() {
            out.push_str(last);
        }
        out.push('\n');
    }
    out
}

/// Everything that went into the key of one stage instance.
pub fn render_explain(plan: &Plan, variant: &str, stage: &str) -> Option<String> {
    let v = plan.variant(variant)?;
    let inst = &plan.instances[*v.stages.get(stage)?];
    let mut out = String::new();
    let _ = writeln!(out, "stage:    {stage} ({})", inst.kind.name());
    let _ = writeln!(out, "variant:  {variant}");
    let _ = writeln!(out, "key:      {}", inst.key.hex());
    let _ = writeln!(out, "entry:    {}/{}", inst.kind.name(), inst.key.hex());
    let _ = writeln!(
        out,
        "shared by: {}",
        inst.uses.iter().map(|(v, s)| format!("{s}[{v}]")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(out, "key input (SHA-256 of this canonical JSON):");
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&canonical_json(&inst.key_input)).unwrap_or_default())
            .unwrap_or_default();
    let _ = writeln!(out, "{pretty}");
    Some(out)
}
