//! `ktlab plan` (every instance with its key and whether it is cached or why it runs)
//! and `ktlab explain` (everything that went into one key).
use std::path::Path;
use std::process::ExitCode;

use super::session::{instance_of, PlanOptions, Session};
use crate::cli::{ExperimentArgs, PlanFormat};
use crate::plan::{
    estimate_plan, memory_plan, render_explain, render_plan, state_of, threads_here, History, InstanceState, Memory, PlanEstimate,
};
use crate::store::Records;
use crate::Error;

pub fn plan(session: &Session, exp: &ExperimentArgs, provenance: Option<&Path>, format: PlanFormat) -> Result<ExitCode, Error> {
    let options = PlanOptions {
        allow_unavailable: true,
        ..Default::default()
    };
    let loaded = session.load_plan(exp, options)?;
    session.announce_store();
    let plan = &loaded.plan;
    let records = Records::load(&session.store, &plan.experiment);
    let states: Vec<InstanceState> = plan.instances.iter().map(|i| state_of(plan, i, &session.store, &records)).collect();
    let due: Vec<bool> = states.iter().map(|s| matches!(s, InstanceState::Due(_))).collect();
    let estimates = estimate_plan(plan, &due, &History::load(&session.store), threads_here());
    let memory = memory_plan(plan, &due, &estimates.facts, crate::data::decode_budget()?);
    if format == PlanFormat::Json {
        let text = serde_json::to_string_pretty(&plan_json(plan, &states, &estimates, &memory)).map_err(|e| Error::Usage(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", render_plan(plan, &states, &estimates, &memory));
    }
    if !loaded.unavailable.is_empty() && format == PlanFormat::Text {
        println!("\nnot available on this machine (the stages reading them cannot run here):");
        for u in &loaded.unavailable {
            println!("  {u}");
        }
    }
    match provenance {
        Some(path) => check_provenance(plan, &session.store, path),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `plan --format json`: each instance (the stages it serves, kind, key, state, reasons;
/// for one that runs `estimated_seconds`, `source` and `work`) and the totals.
fn plan_json(plan: &crate::plan::Plan, states: &[InstanceState], estimates: &PlanEstimate, memory: &[Option<Memory>]) -> serde_json::Value {
    let instances: Vec<serde_json::Value> = plan
        .instances
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            let uses: Vec<serde_json::Value> = inst
                .uses
                .iter()
                .map(|(v, s)| serde_json::json!({"variant": v, "stage": s}))
                .collect();
            let mut v = serde_json::json!({
                "uses": uses,
                "kind": inst.kind.name(),
                "key": inst.key.hex(),
                "device": inst.device.class(),
            });
            match (&states[i], &estimates.instances[i]) {
                (InstanceState::Due(reasons), Some(e)) => {
                    v["state"] = "due".into();
                    v["reasons"] = serde_json::json!(reasons);
                    v["estimated_seconds"] = serde_json::json!(e.seconds);
                    v["source"] = serde_json::json!(e.source);
                    let f = &estimates.facts[i];
                    v["work"] = serde_json::json!(crate::plan::work(inst.kind.name(), &inst.key_input["params"], f));
                    v["images"] = serde_json::json!(f.images);
                    v["macs_per_image"] = serde_json::json!(f.macs_per_image);
                    if let Some(m) = &memory[i] {
                        v["estimated_memory_bytes"] = serde_json::json!(m.total());
                        v["memory"] = serde_json::json!(m);
                    }
                }
                _ => v["state"] = "cached".into(),
            }
            v
        })
        .collect();
    let due = estimates.instances.iter().flatten().count();
    serde_json::json!({
        "experiment": plan.experiment,
        "threads": threads_here(),
        "instances": instances,
        "total": {
            "instances": plan.instances.len(),
            "to_run": due,
            "estimated_seconds": estimates.total_seconds,
            "critical_path_seconds": estimates.critical_path_seconds,
        },
    })
}

/// Compares a provenance.json with this plan: the same experiment, the same tables and
/// cells, each cell's instances planned with the same keys, and the recorded values equal
/// to the store's where its entries are there (keys only where they are not).
fn check_provenance(plan: &crate::plan::Plan, store: &crate::store::Store, path: &Path) -> Result<ExitCode, Error> {
    let bad = |message: String| Error::Usage(format!("{}: {message}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let check = crate::report::check_provenance(plan, store, &text).map_err(bad)?;
    println!(
        "\nprovenance {}: {} of {} stage instances planned with the same key",
        path.display(),
        check.planned,
        check.named
    );
    if !check.not_planned.is_empty() {
        println!("not planned here (other data, parameters or ktlab version):");
        for at in &check.not_planned {
            println!("  {at}");
        }
    }
    let cells = check.values_checked + check.values_unchecked;
    if check.values_unchecked == 0 && cells > 0 {
        println!("recorded values: all {cells} cells checked against the store");
    } else if cells > 0 {
        println!(
            "recorded values: {} of {cells} cells checked against the store; the other {} not checked (their entries are not in the store: keys only)",
            check.values_checked, check.values_unchecked
        );
    }
    if check.problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    const SHOWN: usize = 20;
    let mut lines: Vec<String> = check.problems.iter().take(SHOWN).map(|p| format!("  {p}")).collect();
    if check.problems.len() > SHOWN {
        lines.push(format!("  ... and {} more", check.problems.len() - SHOWN));
    }
    Err(bad(format!(
        "does not match this plan ({} problem(s)):\n{}",
        check.problems.len(),
        lines.join("\n")
    )))
}

pub fn explain(session: &Session, exp: &ExperimentArgs, stage: &str, variant: Option<&str>) -> Result<ExitCode, Error> {
    let plan = session.load_plan(exp, PlanOptions::default())?.plan;
    let (variant, _) = instance_of(&plan, stage, variant, "explain")?;
    let text = render_explain(&plan, &variant, stage).ok_or_else(|| Error::Usage(format!("no stage `{stage}` in variant `{variant}`")))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `explain --cell TABLE:ROW:COLUMN`: the instances behind one table cell, each with its
/// key input. Rows may hold `:` (labels do); table names and columns do not.
pub fn explain_cell(session: &Session, exp: &ExperimentArgs, cell: &str) -> Result<ExitCode, Error> {
    let parsed = cell
        .split_once(':')
        .and_then(|(table, rest)| rest.rsplit_once(':').map(|(row, column)| (table, row, column)));
    let Some((table, row, column)) = parsed else {
        return Err(Error::Usage(format!("--cell `{cell}`: expected TABLE:ROW:COLUMN")));
    };
    let plan = session.load_plan(exp, PlanOptions::default())?.plan;
    let rows = crate::report::collect_rows(&plan, &session.store);
    let tables = crate::report::tables(&plan, &rows);
    let instances = crate::report::find_cell(&tables, table, row, column).map_err(Error::Usage)?;
    println!("cell:     {table} / {row} / {column}: {} value(s)", instances.len());
    for &(i, value) in instances {
        let inst = &plan.instances[i];
        let (variant, stage) = &inst.uses[0];
        println!("\nvalue:    {value}");
        print!("{}", render_explain(&plan, variant, stage).unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}
