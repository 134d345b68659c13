//! `ktlab plan` (every instance with its key and whether it is cached or why it runs)
//! and `ktlab explain` (everything that went into one key).
use std::path::Path;
use std::process::ExitCode;

use super::session::{instance_of, PlanOptions, Session};
use crate::cli::ExperimentArgs;
use crate::plan::{render_explain, render_plan, state_of, InstanceState};
use crate::store::Records;
use crate::Error;

pub fn plan(session: &Session, exp: &ExperimentArgs, provenance: Option<&Path>) -> Result<ExitCode, Error> {
    let options = PlanOptions {
        allow_unavailable: true,
        ..Default::default()
    };
    let loaded = session.load_plan(exp, options)?;
    session.announce_store();
    let plan = &loaded.plan;
    let records = Records::load(&session.store, &plan.experiment);
    let states: Vec<InstanceState> = plan.instances.iter().map(|i| state_of(plan, i, &session.store, &records)).collect();
    print!("{}", render_plan(plan, &states));
    if !loaded.unavailable.is_empty() {
        println!("\nnot available on this machine (the stages reading them cannot run here):");
        for u in &loaded.unavailable {
            println!("  {u}");
        }
    }
    match provenance {
        Some(path) => check_provenance(plan, path),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Compares the instances a provenance.json names with this plan's keys: the committed
/// results were computed from exactly these instances when every key is planned here.
fn check_provenance(plan: &crate::plan::Plan, path: &Path) -> Result<ExitCode, Error> {
    let bad = |message: String| Error::Usage(format!("{}: {message}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let named = crate::report::provenance_instances(&text).map_err(bad)?;
    let planned: std::collections::HashSet<String> = plan.instances.iter().map(|i| format!("{}/{}", i.kind, i.key)).collect();
    let differing: Vec<(&String, &String)> = named.iter().filter(|(k, _)| !planned.contains(*k)).collect();
    println!(
        "\nprovenance {}: {} of {} stage instances planned with the same key",
        path.display(),
        named.len() - differing.len(),
        named.len()
    );
    if differing.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    println!("not planned here (other data, parameters or ktlab version):");
    for (key, at) in &differing {
        let (kind, full) = key.split_once('/').unwrap_or(("", key.as_str()));
        println!("  {at}: {kind} {}", &full[..full.len().min(12)]);
    }
    Ok(ExitCode::from(1))
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
