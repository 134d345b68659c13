//! `provenance.json`: every cell of every table traced to the stage instances behind it
//! (kind, key, the variants and stage names that use it, its seed), with the versions and
//! the experiment file that produced them. `ktlab explain FILE --cell TABLE:ROW:COLUMN`
//! reads the same mapping.
use serde_json::{json, Value};

use super::Table;
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
    for cell in tables.iter().flat_map(|t| t["cells"].as_array().into_iter().flatten()) {
        for inst in cell["instances"].as_array().into_iter().flatten() {
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

/// The provenance document of an experiment's tables; `computed` is when the last of
/// the plan's instances finished.
pub fn provenance(plan: &Plan, tables: &[Table], computed: Option<&str>) -> Value {
    json!({
        "experiment": plan.experiment,
        "file": plan.file.file_name().map(|f| f.to_string_lossy().into_owned()),
        "ktlab": ktlab_version(),
        "libtorch": libtorch_version(),
        "computed": computed,
        "tables": tables.iter().map(|t| table_provenance(plan, t)).collect::<Vec<_>>(),
    })
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
