//! `ktlab plan --check-provenance`: a provenance.json compared with what this plan would
//! write: the experiment's name, every table and cell, the instance keys behind each cell,
//! and the recorded values against the store's entries where they exist.
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{provenance_instances, table_specs, ResultRow, Table};
use crate::plan::Plan;
use crate::store::{EntryState, Store};

/// Relative tolerance of a recorded mean or std (recomputed here in another order).
const TOLERANCE: f64 = 1e-12;

/// What the check found.
#[derive(Debug, Default)]
pub struct ProvenanceCheck {
    /// Distinct stage instances the file names.
    pub named: usize,
    /// Of those, the ones planned here with the same key.
    pub planned: usize,
    /// The ones not planned here: `stage [variant]: kind short-key`.
    pub not_planned: Vec<String>,
    /// Cells whose recorded values were compared with the store (every entry there).
    pub values_checked: usize,
    /// Cells whose values were not compared (an entry is not in the store); keys only.
    pub values_unchecked: usize,
    /// Everything that does not match, one line each (empty: the file is this plan's).
    pub problems: Vec<String>,
}

/// Checks `text` (a provenance.json) against `plan` and the entries of `store`; an error
/// for a document that is not a ktlab provenance.json at all.
pub fn check_provenance(plan: &Plan, store: &Store, text: &str) -> Result<ProvenanceCheck, String> {
    let named = provenance_instances(text)?;
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut check = ProvenanceCheck {
        named: named.len(),
        ..Default::default()
    };
    let keys: HashSet<String> = plan.instances.iter().map(|i| format!("{}/{}", i.kind, i.key)).collect();
    for (key, at) in &named {
        if keys.contains(key) {
            check.planned += 1;
        } else {
            let (kind, full) = key.split_once('/').unwrap_or(("", key.as_str()));
            check.not_planned.push(format!("{at}: {kind} {}", &full[..full.len().min(12)]));
        }
    }
    match doc["experiment"].as_str() {
        Some(name) if name == plan.experiment => {}
        Some(name) => {
            check
                .problems
                .push(format!("it is the provenance of experiment `{name}`, not of `{}`", plan.experiment));
            return Ok(check);
        }
        None => {
            check.problems.push("it names no experiment".to_string());
            return Ok(check);
        }
    }
    let file_tables = doc["tables"].as_array().map(Vec::as_slice).unwrap_or_default();
    let cell_count: usize = file_tables.iter().map(|t| t["cells"].as_array().map_or(0, Vec::len)).sum();
    let decision_count = doc["decisions"].as_array().map_or(0, Vec::len);
    if cell_count == 0 && decision_count == 0 && plan.decisions.is_empty() {
        check.problems.push("it has no cells: nothing to check".to_string());
        return Ok(check);
    }

    let (rows, present) = planned_rows(plan, store);
    let tables: Vec<Table> = table_specs(plan, &rows).iter().map(|s| Table::build(s, plan, &rows)).collect();
    // Cells by table name and position: a file may name a cell the old way (`-`).
    let mut seen: HashSet<(String, usize, usize)> = HashSet::new();
    for ft in file_tables {
        let name = ft["name"].as_str().unwrap_or("?");
        let Some(t) = tables.iter().find(|t| t.name == name) else {
            let names: Vec<String> = tables.iter().map(|t| format!("`{}`", t.name)).collect();
            check.problems.push(format!(
                "table `{name}` is not one this plan writes (it writes {})",
                names.join(", ")
            ));
            continue;
        };
        if ft["metric"].as_str() != Some(t.metric.as_str()) {
            check.problems.push(format!(
                "table `{name}`: metric `{}`, planned `{}`",
                ft["metric"].as_str().unwrap_or("?"),
                t.metric
            ));
        }
        for cell in ft["cells"].as_array().into_iter().flatten() {
            let (row, column) = (cell["row"].as_str().unwrap_or("?"), cell["column"].as_str().unwrap_or("?"));
            let at = format!("table `{name}`, cell `{row}`, `{column}`");
            let position = t.row_position(row).zip(t.column_position(column));
            let Some((ri, ci)) = position.filter(|&(ri, ci)| !t.instances[ri][ci].is_empty()) else {
                check.problems.push(format!("{at}: not a cell this plan gives"));
                continue;
            };
            if !seen.insert((name.to_string(), ri, ci)) {
                check.problems.push(format!("{at}: listed twice"));
                continue;
            }
            check_cell(plan, &at, cell, &t.instances[ri][ci], &present, &mut check);
        }
    }
    // Cells the plan gives that the file does not list.
    for t in &tables {
        for (ri, row) in t.rows.iter().enumerate() {
            for (ci, column) in t.columns.iter().enumerate() {
                if !t.instances[ri][ci].is_empty() && !seen.contains(&(t.name.clone(), ri, ci)) {
                    check.problems.push(format!(
                        "table `{}`, cell `{row}`, `{column}`: planned here, missing from the file",
                        t.name
                    ));
                }
            }
        }
    }
    check_decisions(plan, &rows, &present, &doc, &mut check);
    Ok(check)
}

/// The file's decisions against the plan's: the same rules, each with the instances the
/// plan reads for it (keys), and where all of them are in the store the same outcome and
/// quantities.
fn check_decisions(plan: &Plan, rows: &[ResultRow], present: &HashSet<usize>, doc: &Value, check: &mut ProvenanceCheck) {
    let decided = super::decide(plan, rows);
    let recorded = doc["decisions"].as_array().map(Vec::as_slice).unwrap_or_default();
    let key_of = |i: usize| format!("{}/{}", plan.instances[i].kind, plan.instances[i].key);
    let short = |k: &str| {
        let (kind, full) = k.split_once('/').unwrap_or(("", k));
        format!("{kind} {}", &full[..full.len().min(12)])
    };
    for fd in recorded {
        let name = fd["name"].as_str().unwrap_or("?");
        let at = format!("decision `{name}`");
        let Some(d) = decided.iter().find(|d| d.spec.name == name) else {
            let names: Vec<String> = decided.iter().map(|d| format!("`{}`", d.spec.name)).collect();
            let makes = if names.is_empty() {
                "it makes none".to_string()
            } else {
                format!("it makes {}", names.join(", "))
            };
            check.problems.push(format!("{at} is not one this plan makes ({makes})"));
            continue;
        };
        let rule = [
            ("metric", serde_json::json!(d.spec.metric)),
            ("a", serde_json::json!(d.spec.a)),
            ("b", serde_json::json!(d.spec.b)),
            ("pass", serde_json::json!(d.spec.pass)),
            ("fail", serde_json::json!(d.spec.fail)),
            ("requires", serde_json::json!(d.spec.requires)),
            ("also", serde_json::json!(d.spec.also)),
        ];
        let differs: Vec<String> = rule
            .iter()
            .filter(|(k, v)| &fd[*k] != v)
            .map(|(k, v)| format!("`{k}` {}, planned {v}", fd[*k]))
            .collect();
        if !differs.is_empty() {
            check.problems.push(format!("{at}: another rule ({})", differs.join("; ")));
            continue;
        }
        // The instances the plan reads for it: every seed's of each stage it names.
        let mut planned: Vec<usize> = Vec::new();
        for stage in d.spec.stages() {
            for v in &plan.variants {
                if let Some(&i) = v.stages.get(stage) {
                    if !planned.contains(&i) {
                        planned.push(i);
                    }
                }
            }
        }
        let planned_keys: Vec<String> = planned.iter().map(|&i| key_of(i)).collect();
        let recorded_keys = super::provenance::decision_keys(fd);
        let extra: Vec<String> = recorded_keys
            .iter()
            .filter(|k| !planned_keys.contains(k))
            .map(|k| short(k))
            .collect();
        let missing: Vec<String> = planned_keys
            .iter()
            .filter(|k| !recorded_keys.contains(k))
            .map(|k| short(k))
            .collect();
        if let Some(problem) = other_instances(&at, &extra, &missing) {
            check.problems.push(problem);
            continue;
        }
        if !planned.iter().all(|i| present.contains(i)) {
            check.values_unchecked += 1;
            continue;
        }
        check.values_checked += 1;
        if fd["outcome"].as_str() != Some(d.outcome.name()) {
            check.problems.push(format!(
                "{at}: outcome {}, from the store's values {}",
                fd["outcome"],
                d.outcome.name()
            ));
        }
        let comparisons = fd["comparisons"].as_array().map(Vec::as_slice).unwrap_or_default();
        if comparisons.len() != d.comparisons.len() {
            check.problems.push(format!(
                "{at}: {} comparison(s) recorded, {} from the store's values",
                comparisons.len(),
                d.comparisons.len()
            ));
            continue;
        }
        for (fc, c) in comparisons.iter().zip(&d.comparisons) {
            let layer = c.layer();
            let where_ = if layer.is_empty() { String::new() } else { format!(" at {layer}") };
            let layers = (fc["layer_a"].as_str(), fc["layer_b"].as_str());
            if layers != (Some(c.a.layer.as_str()), c.b.as_ref().map(|b| b.layer.as_str())) {
                check.problems.push(format!(
                    "{at}: layers {} and {} recorded, {} from the store's values",
                    fc["layer_a"], fc["layer_b"], layer
                ));
                continue;
            }
            if let Some(cell) = c.cell() {
                for (what, stored) in [("mean", cell.mean), ("std", cell.std)] {
                    if !same(fc[what].as_f64(), stored) {
                        check
                            .problems
                            .push(format!("{at}{where_}: {what} {}, from the store's values {stored}", fc[what]));
                    }
                }
            }
        }
    }
    for d in &decided {
        if !recorded.iter().any(|fd| fd["name"].as_str() == Some(d.spec.name.as_str())) {
            check
                .problems
                .push(format!("decision `{}`: planned here, missing from the file", d.spec.name));
        }
    }
}

/// One cell of the file against the planned instances (with the store's values where
/// `present`).
fn check_cell(plan: &Plan, at: &str, cell: &Value, planned: &[(usize, f64)], present: &HashSet<usize>, check: &mut ProvenanceCheck) {
    let recorded: Vec<(String, Option<f64>)> = cell["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let key = format!("{}/{}", i["kind"].as_str().unwrap_or("?"), i["key"].as_str().unwrap_or("?"));
            (key, i["value"].as_f64())
        })
        .collect();
    let planned_keys: Vec<String> = planned
        .iter()
        .map(|&(i, _)| format!("{}/{}", plan.instances[i].kind, plan.instances[i].key))
        .collect();
    let short = |k: &str| {
        let (kind, full) = k.split_once('/').unwrap_or(("", k));
        format!("{kind} {}", &full[..full.len().min(12)])
    };
    let extra: Vec<String> = recorded
        .iter()
        .filter(|(k, _)| !planned_keys.contains(k))
        .map(|(k, _)| short(k))
        .collect();
    let missing: Vec<String> = planned_keys
        .iter()
        .filter(|k| !recorded.iter().any(|(r, _)| r == *k))
        .map(|k| short(k))
        .collect();
    if let Some(problem) = other_instances(at, &extra, &missing) {
        check.problems.push(problem);
        return;
    }
    let n = cell["n"].as_u64();
    if n != Some(planned.len() as u64) || recorded.len() != planned.len() {
        check.problems.push(format!(
            "{at}: n = {}, with {} instance(s) recorded and {} planned",
            n.map_or("?".to_string(), |n| n.to_string()),
            recorded.len(),
            planned.len()
        ));
        return;
    }
    if !planned.iter().all(|(i, _)| present.contains(i)) {
        check.values_unchecked += 1;
        return;
    }
    check.values_checked += 1;
    for (&(i, stored), key) in planned.iter().zip(&planned_keys) {
        let value = recorded.iter().find(|(k, _)| k == key).and_then(|(_, v)| *v);
        if !same(value, stored) {
            let (variant, stage) = &plan.instances[i].uses[0];
            check.problems.push(format!(
                "{at}: {stage} [{variant}] records {}, the store has {stored}",
                value.map_or("no value".to_string(), |v| v.to_string())
            ));
        }
    }
    let values: Vec<f64> = planned.iter().map(|&(_, v)| v).collect();
    if let Some(c) = super::Cell::of(&values) {
        for (what, stored) in [("mean", c.mean), ("std", c.std)] {
            let recorded = cell[what].as_f64();
            if !same(recorded, stored) {
                check.problems.push(format!(
                    "{at}: {what} {}, from the store's values {stored}",
                    recorded.map_or("null".to_string(), |v| v.to_string())
                ));
            }
        }
    }
}

/// A recorded value (null for a non-finite one) against the store's, to a relative
/// tolerance.
fn same(recorded: Option<f64>, stored: f64) -> bool {
    match recorded {
        None => !stored.is_finite(),
        Some(r) => (r - stored).abs() <= TOLERANCE * stored.abs().max(1.0),
    }
}

/// The long-form rows this plan's tables come from: the store's where an instance's
/// entry is there (those instances are returned too), else one per metric and layer its
/// parameters promise (value NaN), so that the cells are known without computing.
pub fn planned_rows(plan: &Plan, store: &Store) -> (Vec<ResultRow>, HashSet<usize>) {
    let mut rows = Vec::new();
    let mut present = HashSet::new();
    let mut stored: HashMap<usize, Vec<(String, String, f64)>> = HashMap::new();
    for v in &plan.variants {
        for (stage, &i) in &v.stages {
            let inst = &plan.instances[i];
            let results = stored.entry(i).or_insert_with(|| match store.state(inst.kind, &inst.key, false) {
                EntryState::Valid(m) => {
                    present.insert(i);
                    m.metrics.iter().map(|r| (r.layer.clone(), r.metric.clone(), r.value)).collect()
                }
                _ => {
                    let layers: Vec<String> = match inst.params.networks().reads {
                        Some(reads) => reads.layers.iter().map(|l| l.to_string()).collect(),
                        None => vec![String::new()],
                    };
                    let metrics = inst.params.metrics();
                    layers
                        .iter()
                        .flat_map(|l| metrics.iter().map(move |m| (l.clone(), m.to_string(), f64::NAN)))
                        .collect()
                }
            });
            for (layer, metric, value) in results.iter() {
                rows.push(ResultRow {
                    variant: v.group.clone(),
                    swept: v.swept.iter().map(|(_, val)| val.clone()).collect(),
                    seed: v.seed,
                    stage: stage.clone(),
                    instance: i,
                    layer: layer.clone(),
                    metric: metric.clone(),
                    value: *value,
                });
            }
        }
    }
    (rows, present)
}

/// The problem of a recorded place whose instances differ from the planned ones: those
/// recorded but `extra` (not planned here) and those planned but `missing`; `None` when
/// both are empty.
fn other_instances(at: &str, extra: &[String], missing: &[String]) -> Option<String> {
    let mut why = Vec::new();
    if !extra.is_empty() {
        why.push(format!("not planned here: {}", extra.join(", ")));
    }
    if !missing.is_empty() {
        why.push(format!("planned here but not recorded: {}", missing.join(", ")));
    }
    (!why.is_empty()).then(|| format!("{at}: other instances ({})", why.join("; ")))
}
