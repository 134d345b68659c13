//! `provenance.json`: every cell of every table traced to the stage instances behind it
//! (kind, key, the variants and stage names that use it, its seed), with the versions and
//! the experiment file that produced them. `ktlab explain FILE --cell TABLE:ROW:COLUMN`
//! reads the same mapping.
use serde_json::{json, Value};

use super::{Decided, Table};
use crate::plan::{ktlab_version, libtorch_version, Plan};
use crate::store::{EntryState, Store};

/// When the last of the plan's instances in the store finished (its manifest's start plus
/// its seconds), as an RFC 3339 UTC time to the second: the date of a results folder, the
/// same every time the folder is rebuilt from the same store.
pub fn computed_at(plan: &Plan, store: &Store) -> Option<String> {
    let last = plan
        .instances
        .iter()
        .filter_map(|i| match store.state(i.kind, &i.key, false) {
            EntryState::Valid(m) => m.started.parse::<f64>().ok().map(|s| s + m.seconds),
            _ => None,
        })
        .filter(|t| t.is_finite())
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))))?;
    let at = time::OffsetDateTime::from_unix_timestamp(last.floor() as i64).ok()?;
    at.format(&time::format_description::well_known::Rfc3339).ok()
}

/// The instances a provenance.json names, each once: `kind/key` -> `stage [variant]` of
/// its first use, in the file's order.
pub fn provenance_instances(text: &str) -> Result<indexmap::IndexMap<String, String>, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let tables = json["tables"]
        .as_array()
        .ok_or_else(|| "no `tables` list: not a ktlab provenance.json".to_string())?;
    let mut named = indexmap::IndexMap::new();
    let cells = tables.iter().flat_map(|t| t["cells"].as_array().into_iter().flatten());
    let cell_instances = cells.map(|c| &c["instances"]);
    let decision_instances = json["decisions"].as_array().into_iter().flatten().flat_map(decision_lists);
    for list in cell_instances.chain(decision_instances) {
        for inst in list.as_array().into_iter().flatten() {
            let (Some(kind), Some(key)) = (inst["kind"].as_str(), inst["key"].as_str()) else {
                return Err("an instance without `kind` and `key`".into());
            };
            let used = &inst["uses"][0];
            let at = format!(
                "{} [{}]",
                used["stage"].as_str().unwrap_or("?"),
                used["variant"].as_str().unwrap_or("?")
            );
            named.entry(format!("{kind}/{key}")).or_insert(at);
        }
    }
    Ok(named)
}

/// The provenance document of an experiment's tables and decisions (`decisions` only
/// where it has any); `computed` is when the last of the plan's instances finished.
pub fn provenance(plan: &Plan, tables: &[Table], decided: &[Decided], computed: Option<&str>) -> Value {
    let mut doc = json!({
        "experiment": plan.experiment,
        "file": plan.file.file_name().map(|f| f.to_string_lossy().into_owned()),
        "ktlab": ktlab_version(),
        "libtorch": libtorch_version(),
        "computed": computed,
        "tables": tables.iter().map(|t| table_provenance(plan, t)).collect::<Vec<_>>(),
    });
    if !decided.is_empty() {
        doc["decisions"] = decided.iter().map(|d| decision_provenance(plan, d)).collect();
    }
    doc
}

/// One decision: its rule, outcome, and each comparison's quantity with the instances
/// (and values) of both sides; with `layers = "best"`, how each side's layer was chosen.
fn decision_provenance(plan: &Plan, d: &Decided) -> Value {
    let valued = |values: &[(usize, f64)]| {
        values
            .iter()
            .map(|&(i, value)| {
                let mut v = instance(plan, i);
                v["value"] = finite(value);
                v
            })
            .collect::<Vec<_>>()
    };
    let comparisons: Vec<Value> = d
        .comparisons
        .iter()
        .map(|c| {
            let cell = c.cell();
            let range = c.range();
            json!({
                "layer_a": c.a.layer,
                "layer_b": c.b.as_ref().map(|b| b.layer.clone()),
                "mean": cell.as_ref().map(|c| finite(c.mean)),
                "std": cell.as_ref().map(|c| finite(c.std)),
                "min": range.map(|r| finite(r.0)),
                "max": range.map(|r| finite(r.1)),
                "n": cell.as_ref().map_or(0, |c| c.n),
                "a": valued(&c.a.values),
                "b": c.b.as_ref().map(|b| valued(&b.values)),
            })
        })
        .collect();
    let selections: Vec<Value> = d
        .selections
        .iter()
        .map(|s| {
            json!({
                "side": s.side,
                "stage": s.stage,
                "chosen": s.chosen,
                "means": s.means.iter().map(|(l, m)| json!({ "layer": l, "mean": m.map(finite) })).collect::<Vec<_>>(),
                "instances": s.instances.iter().map(|&i| instance(plan, i)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "name": d.spec.name,
        "claim": d.spec.claim,
        "metric": d.spec.metric,
        "a": d.spec.a,
        "b": d.spec.b,
        "pass": d.spec.pass,
        "fail": d.spec.fail,
        "requires": d.spec.requires,
        "also": d.spec.also,
        "outcome": d.outcome.name(),
        "note": d.note,
        "comparisons": comparisons,
        "selections": selections,
    })
}

/// The `kind/key` of every instance a provenance decision names (both sides of each
/// comparison, the selecting stages), each once.
pub(super) fn decision_keys(decision: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for inst in decision_lists(decision).flat_map(|l| l.as_array().into_iter().flatten()) {
        if let (Some(kind), Some(key)) = (inst["kind"].as_str(), inst["key"].as_str()) {
            let k = format!("{kind}/{key}");
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

fn table_provenance(plan: &Plan, t: &Table) -> Value {
    let mut cells = Vec::new();
    for (ri, row) in t.rows.iter().enumerate() {
        for (ci, column) in t.columns.iter().enumerate() {
            let Some(cell) = &t.cells[ri][ci] else { continue };
            cells.push(json!({
                "row": row,
                "column": column,
                "mean": finite(cell.mean),
                "std": finite(cell.std),
                "n": cell.n,
                "instances": t.instances[ri][ci]
                    .iter()
                    .map(|&(i, value)| {
                        let mut v = instance(plan, i);
                        v["value"] = finite(value);
                        v
                    })
                    .collect::<Vec<_>>(),
            }));
        }
    }
    json!({ "name": t.name, "metric": t.metric, "cells": cells })
}

/// One stage instance: kind, full key, and where the experiment uses it.
pub fn instance(plan: &Plan, i: usize) -> Value {
    let inst = &plan.instances[i];
    let seeds: Vec<u64> = {
        let mut s: Vec<u64> = inst.uses.iter().filter_map(|(v, _)| plan.variant(v).and_then(|v| v.seed)).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    json!({
        "kind": inst.kind.name(),
        "key": inst.key.hex(),
        "uses": inst.uses.iter().map(|(v, s)| json!({ "variant": v, "stage": s })).collect::<Vec<_>>(),
        "seeds": seeds,
    })
}

/// JSON has no NaN: a missing std (one value) is null.
fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// The cell `row`/`column` of table `table`: its instances, or what the table offers.
pub fn find_cell<'a>(tables: &'a [Table], table: &str, row: &str, column: &str) -> Result<&'a [(usize, f64)], String> {
    let names = |v: &[String]| v.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
    let t = tables.iter().find(|t| t.name == table).ok_or_else(|| {
        format!(
            "no table `{table}` (tables: {})",
            names(&tables.iter().map(|t| t.name.clone()).collect::<Vec<_>>())
        )
    })?;
    let ri = t
        .row_position(row)
        .ok_or_else(|| format!("table `{table}` has no row `{row}` (rows: {})", names(&t.rows)))?;
    let ci = t
        .column_position(column)
        .ok_or_else(|| format!("table `{table}` has no column `{column}` (columns: {})", names(&t.columns)))?;
    if t.instances[ri][ci].is_empty() {
        return Err(format!("cell `{row}`, `{column}` of table `{table}` has no results in the store"));
    }
    Ok(&t.instances[ri][ci])
}

/// The instance lists a provenance decision names: both sides of each comparison, then the
/// selecting stages.
fn decision_lists(decision: &Value) -> impl Iterator<Item = &Value> {
    let comparisons = decision["comparisons"].as_array().into_iter().flatten();
    let sides = comparisons.flat_map(|c| [&c["a"], &c["b"]]);
    sides.chain(decision["selections"].as_array().into_iter().flatten().map(|s| &s["instances"]))
}
