//! One table of an experiment: the results of its stages aggregated into cells (mean,
//! standard deviation and count over seeds), with the best value of each column and the
//! reference values the table carries; the renderings (csv, markdown, latex) read only this.
use std::collections::{HashMap, HashSet};

use super::ResultRow;
use crate::plan::{short_key, Axis, Plan, Reference, TableSpec, NO_LAYER, RESERVED_NAMES};

/// Mean, sample standard deviation (0 for one value) and count of one cell's values.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Cell {
    pub fn of(values: &[f64]) -> Option<Cell> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Cell { mean, std, n })
    }
}

/// A table ready to render.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub name: String,
    pub metric: String,
    pub caption: Option<String>,
    /// Header of the row names (`stage`, `layer`, `k`).
    pub row_title: String,
    pub rows: Vec<String>,
    /// Column names as shown (`conv1`, `k=4`).
    pub columns: Vec<String>,
    /// Each column's value as written (`4` for `k=4`): where a plot puts it.
    pub column_values: Vec<String>,
    /// `cells[row][column]`
    pub cells: Vec<Vec<Option<Cell>>>,
    /// `references[row][column]`
    pub references: Vec<Vec<Option<Reference>>>,
    /// `instances[row][column]`: the stage instances (indices in `Plan::instances`)
    /// behind each cell with the value each gave, in the order of `rows` given to `build`.
    pub instances: Vec<Vec<Vec<(usize, f64)>>>,
}

impl Table {
    /// Aggregates `rows` (the long-form results) as `spec` asks; a value that several
    /// variants share (one stage instance) counts once per cell.
    pub fn build(spec: &TableSpec, plan: &Plan, rows: &[ResultRow]) -> Table {
        let mut row_names: Vec<String> = Vec::new();
        // The file position of each row's stage: rows of one stage stay together.
        let mut row_stage: Vec<usize> = Vec::new();
        let mut col_names: Vec<String> = Vec::new();
        let mut col_raw: Vec<String> = Vec::new();
        let mut values: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
        let mut sources: HashMap<(usize, usize), Vec<(usize, f64)>> = HashMap::new();
        let mut seen: HashSet<(usize, usize, usize, String)> = HashSet::new();
        let axes: Vec<&str> = [&spec.rows, &spec.columns]
            .into_iter()
            .filter_map(|a| match a {
                Axis::Key(k) => Some(k.as_str()),
                _ => None,
            })
            .collect();
        let split = split_stages(plan, &axes);
        for r in rows {
            if r.metric != spec.metric || (!spec.stages.is_empty() && !spec.stages.contains(&r.stage)) {
                continue;
            }
            let (row, _) = coordinate(&spec.rows, plan, r);
            let row = if split.contains(&r.stage) {
                with_other_values(row, plan, &r.swept, &axes)
            } else {
                row
            };
            let (col, raw) = coordinate(&spec.columns, plan, r);
            let ri = position_or_push(&mut row_names, row);
            if ri == row_stage.len() {
                row_stage.push(plan.labels.get_index_of(&r.stage).unwrap_or(usize::MAX));
            }
            let ci = position_or_push(&mut col_names, col);
            if ci == col_raw.len() {
                col_raw.push(raw);
            }
            if seen.insert((ri, ci, r.instance, r.layer.clone())) {
                values.entry((ri, ci)).or_default().push(r.value);
                sources.entry((ri, ci)).or_default().push((r.instance, r.value));
            }
        }
        // Reference rows and columns without results of ours still show.
        for rf in &spec.references {
            if position_or_push(&mut row_names, rf.row.clone()) == row_stage.len() {
                row_stage.push(usize::MAX);
            }
            if !col_names.contains(&rf.column) && !col_raw.contains(&rf.column) {
                col_names.push(rf.column.clone());
                col_raw.push(rf.column.clone());
            }
        }
        let mut order: Vec<usize> = (0..row_names.len()).collect();
        if spec.rows == Axis::Stage {
            order.sort_by_key(|&i| (row_stage[i], i));
        }
        let row_names: Vec<String> = order.iter().map(|&i| row_names[i].clone()).collect();
        let cells = order
            .iter()
            .map(|&ri| {
                (0..col_names.len())
                    .map(|ci| values.get(&(ri, ci)).and_then(|v| Cell::of(v)))
                    .collect()
            })
            .collect();
        let instances = order
            .iter()
            .map(|&ri| {
                (0..col_names.len())
                    .map(|ci| sources.get(&(ri, ci)).cloned().unwrap_or_default())
                    .collect()
            })
            .collect();
        let references = row_names
            .iter()
            .map(|row| {
                (0..col_names.len())
                    .map(|ci| {
                        spec.references
                            .iter()
                            .find(|rf| &rf.row == row && (rf.column == col_names[ci] || rf.column == col_raw[ci]))
                            .cloned()
                    })
                    .collect()
            })
            .collect();
        Table {
            name: spec.name.clone(),
            metric: spec.metric.clone(),
            caption: spec.caption.clone(),
            row_title: spec.rows.title(),
            rows: row_names,
            columns: col_names,
            column_values: col_raw,
            cells,
            references,
            instances,
        }
    }

    /// The column named `name`: as shown, or `-` for the column of values without a layer
    /// (named after the metric since; provenance files written before still say `-`).
    pub fn column_position(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .or_else(|| (name == NO_LAYER).then(|| self.column_values.iter().position(|v| v == NO_LAYER))?)
    }

    /// The row named `name`: as shown, or `-` for the row of values without a layer in a
    /// table with the layers on its rows.
    pub fn row_position(&self, name: &str) -> Option<usize> {
        self.rows.iter().position(|r| r == name).or_else(|| {
            (name == NO_LAYER && self.row_title == Axis::Layer.title()).then(|| self.rows.iter().position(|r| *r == self.metric))?
        })
    }

    /// Whether (row, column) holds the best (highest) mean of its column.
    pub fn is_best(&self, row: usize, column: usize) -> bool {
        let best = self
            .cells
            .iter()
            .filter_map(|r| r[column].as_ref().map(|c| c.mean))
            .fold(f64::NEG_INFINITY, f64::max);
        self.cells[row][column].as_ref().is_some_and(|c| c.mean == best)
    }

    /// The most common count of values per cell (the largest on a tie: a table of one
    /// seeded row and one fixed-seed row is over the seeds, and the fixed row says n=1).
    pub fn usual_n(&self) -> Option<usize> {
        let mut counts: Vec<(usize, usize)> = Vec::new();
        for c in self.cells.iter().flatten().flatten() {
            match counts.iter_mut().find(|(n, _)| *n == c.n) {
                Some((_, k)) => *k += 1,
                None => counts.push((c.n, 1)),
            }
        }
        counts.iter().max_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0))).map(|(n, _)| *n)
    }

    /// Whether cells have different counts (then a cell shows its count where it differs).
    pub fn counts_differ(&self) -> bool {
        let mut ns = self.cells.iter().flatten().flatten().map(|c| c.n);
        let first = ns.next();
        ns.any(|n| Some(n) != first)
    }

    /// The count to show in a cell: only where it is not the usual one.
    pub fn shown_n(&self, row: usize, column: usize) -> Option<usize> {
        let c = self.cells[row][column].as_ref()?;
        (self.counts_differ() && Some(c.n) != self.usual_n()).then_some(c.n)
    }

    pub fn has_reference(&self, column: usize) -> bool {
        self.references.iter().any(|r| r[column].is_some())
    }

    /// Decimals for this table: 1 for values of 10 and more (percentages), else 3.
    pub fn decimals(&self) -> usize {
        let big = self.cells.iter().flatten().flatten().any(|c| c.mean.abs() >= 10.0)
            || self.references.iter().flatten().flatten().any(|r| r.value.abs() >= 10.0);
        if big {
            1
        } else {
            3
        }
    }

    pub fn fmt(&self, x: f64) -> String {
        format!("{x:.*}", self.decimals())
    }

    /// Ours minus the reference, signed.
    pub fn fmt_delta(&self, ours: f64, reference: f64) -> String {
        let d = ours - reference;
        let s = format!("{d:.*}", self.decimals());
        if s.starts_with('-') {
            s
        } else {
            format!("+{s}")
        }
    }

    /// The distinct sources of the reference values, in order.
    pub fn sources(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.references.iter().flatten().flatten().filter_map(|r| r.source.clone()) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// The sentence under the table: what the cells are (the count most cells have; a
    /// cell whose count differs shows its own).
    pub fn note(&self) -> String {
        let differ = self.counts_differ();
        match self.usual_n() {
            None => "No results yet.".to_string(),
            Some(1) if !differ => "One run per cell; best per column in bold.".to_string(),
            Some(1) => "One run per cell, or mean ± std over n seeds where n is shown; best per column in bold.".to_string(),
            Some(n) if differ => {
                format!("Mean ± std over {n} seeds (n where it differs); best per column in bold.")
            }
            Some(n) => format!("Mean ± std over {n} seeds; best per column in bold."),
        }
    }
}

fn position_or_push(names: &mut Vec<String>, name: String) -> usize {
    match names.iter().position(|n| *n == name) {
        Some(i) => i,
        None => {
            names.push(name);
            names.len() - 1
        }
    }
}

/// A result's name on an axis (as shown) and its raw value (for references).
fn coordinate(axis: &Axis, plan: &Plan, r: &ResultRow) -> (String, String) {
    match axis {
        Axis::Stage => {
            let l = plan.labels.get(&r.stage).cloned().unwrap_or_else(|| r.stage.clone());
            (l.clone(), l)
        }
        // A value of no layer (a clustering's NMI, a classifier's own top-1) is named
        // after its metric; references may still name it `-`.
        Axis::Layer if r.layer.is_empty() => (r.metric.clone(), NO_LAYER.to_string()),
        Axis::Layer => (r.layer.clone(), r.layer.clone()),
        Axis::Key(k) => {
            let v = plan
                .swept_keys
                .iter()
                .position(|s| s == k)
                .and_then(|i| r.swept.get(i))
                .cloned()
                .unwrap_or_default();
            (format!("{}={v}", short_key(k)), v)
        }
        Axis::One => (r.metric.clone(), r.metric.clone()),
    }
}

/// `name (k=16)`: a row of a split stage named with its swept values that are not on the
/// table's axes (`swept` in `Plan::swept_keys` order); the name alone when there are none.
fn with_other_values(name: String, plan: &Plan, swept: &[String], axes: &[&str]) -> String {
    let rest = other_values(plan, swept, axes);
    if rest.is_empty() {
        name
    } else {
        format!("{name} ({})", rest.join(","))
    }
}

/// The swept values (`k=16`) that are not on the axes, in `Plan::swept_keys` order.
pub(super) fn other_values(plan: &Plan, swept: &[String], axes: &[&str]) -> Vec<String> {
    plan.swept_keys
        .iter()
        .zip(swept)
        .filter(|(k, _)| !axes.contains(&k.as_str()))
        .map(|(k, v)| format!("{}={v}", short_key(k)))
        .collect()
}

/// Stages whose instance differs between variants of one seed that agree on the axis
/// keys: their rows are named with the other swept values, not pooled.
pub(super) fn split_stages(plan: &Plan, axes: &[&str]) -> HashSet<String> {
    let mut seen: HashMap<(String, Option<u64>, Vec<String>), usize> = HashMap::new();
    let mut split = HashSet::new();
    for v in &plan.variants {
        let on_axes: Vec<String> = v
            .swept
            .iter()
            .filter(|(k, _)| axes.contains(&k.as_str()))
            .map(|(_, val)| val.clone())
            .collect();
        for (stage, &i) in &v.stages {
            let key = (stage.clone(), v.seed, on_axes.clone());
            match seen.get(&key) {
                Some(&j) if j != i => {
                    split.insert(stage.clone());
                }
                Some(_) => {}
                None => {
                    seen.insert(key, i);
                }
            }
        }
    }
    split
}

/// Without `[[tables]]`: one table per metric, rows the stages, columns the layers (or the
/// first swept key for a metric without layers).
pub fn default_tables(plan: &Plan, rows: &[ResultRow]) -> Vec<TableSpec> {
    let mut metrics: Vec<&str> = Vec::new();
    for r in rows {
        if !metrics.contains(&r.metric.as_str()) {
            metrics.push(&r.metric);
        }
    }
    metrics
        .into_iter()
        .map(|m| {
            let layered = rows.iter().any(|r| r.metric == m && !r.layer.is_empty());
            let columns = match (layered, plan.swept_keys.first()) {
                (true, _) => Axis::Layer,
                (false, Some(k)) => Axis::Key(k.clone()),
                (false, None) => Axis::One,
            };
            let name = if crate::config::check_name(m).is_ok() && !RESERVED_NAMES.contains(&m) {
                m.to_string()
            } else {
                format!(
                    "metric_{}",
                    m.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
                )
            };
            TableSpec {
                name,
                metric: m.to_string(),
                rows: Axis::Stage,
                columns,
                stages: Vec::new(),
                caption: None,
                references: Vec::new(),
            }
        })
        .collect()
}

/// The experiment's tables: those it names or, on the seed axis, the default ones (with a
/// single seed results.md already shows every value, and the results folder keeps its two
/// files).
pub fn table_specs(plan: &Plan, rows: &[ResultRow]) -> Vec<TableSpec> {
    match (plan.tables.is_empty(), plan.seed_axis) {
        (false, _) => plan.tables.clone(),
        (true, true) => default_tables(plan, rows),
        (true, false) => Vec::new(),
    }
}

/// Every table of [`table_specs`], built.
pub fn tables(plan: &Plan, rows: &[ResultRow]) -> Vec<Table> {
    table_specs(plan, rows).iter().map(|s| Table::build(s, plan, rows)).collect()
}
