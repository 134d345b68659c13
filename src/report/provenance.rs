//! `provenance.json`: every cell of every table traced to the stage instances behind it
//! (kind, key, the variants and stage names that use it, its seed), with the versions and
//! the experiment file that produced them. `ktlab explain FILE --cell TABLE:ROW:COLUMN`
//! reads the same mapping.
use serde_json::{json, Value};

use super::Table;
use crate::plan::{ktlab_version, libtorch_version, Plan};

/// The provenance document of an experiment's tables.
pub fn provenance(plan: &Plan, tables: &[Table]) -> Value {
    json!({
        "experiment": plan.experiment,
        "file": plan.file.file_name().map(|f| f.to_string_lossy().into_owned()),
        "ktlab": ktlab_version(),
        "libtorch": libtorch_version(),
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
        .rows
        .iter()
        .position(|r| r == row)
        .ok_or_else(|| format!("table `{table}` has no row `{row}` (rows: {})", names(&t.rows)))?;
    let ci = t
        .columns
        .iter()
        .position(|c| c == column)
        .ok_or_else(|| format!("table `{table}` has no column `{column}` (columns: {})", names(&t.columns)))?;
    if t.instances[ri][ci].is_empty() {
        return Err(format!("cell `{row}`, `{column}` of table `{table}` has no results in the store"));
    }
    Ok(&t.instances[ri][ci])
}
