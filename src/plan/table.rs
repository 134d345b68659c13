//! The tables an experiment asks for, validated against its stages and sweep: what each
//! row and column is, which stages feed it, and the reference values it carries.
use indexmap::IndexMap;

use crate::config::{check_name, did_you_mean, RawTable};
use crate::stages::StageKind;

use super::PlanError;

/// What the rows or the columns of a table stand for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Axis {
    /// One per stage label (the stage name where it has no `label`).
    Stage,
    /// One per probed layer.
    Layer,
    /// One per value of a swept key (`stages.clusters.k`).
    Key(String),
    /// A single row or column (a metric with neither layer nor sweep).
    One,
}

impl Axis {
    /// The header of the row names, or the prefix of the column names.
    pub fn title(&self) -> String {
        match self {
            Axis::Stage => "stage".into(),
            Axis::Layer => "layer".into(),
            Axis::Key(k) => short_key(k).to_string(),
            Axis::One => String::new(),
        }
    }
}

/// The last segment of a key path: `k` for `stages.clusters.k`.
pub fn short_key(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// A published value for one cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    pub row: String,
    pub column: String,
    pub value: f64,
    pub source: Option<String>,
}

/// One table to write as `<name>.csv`, `<name>.md` and `<name>.tex`.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSpec {
    pub name: String,
    pub metric: String,
    pub rows: Axis,
    pub columns: Axis,
    /// Stage names whose rows enter the table; empty for every stage.
    pub stages: Vec<String>,
    pub caption: Option<String>,
    pub references: Vec<Reference>,
}

/// The name of the training curves' plot files in the results folder.
pub const TRAINING_CURVES: &str = "training_curves";

/// Names a table may not take: the other files of the results folder (the long-form
/// results and the training curves).
pub const RESERVED_NAMES: &[&str] = &["results", "provenance", TRAINING_CURVES];

/// Checks every `[[tables]]` entry against the stages (name -> kind, label) and the swept
/// keys; all errors at once, each at its file, line and key.
pub fn validate_tables(
    raw: &[RawTable],
    stages: &IndexMap<String, (StageKind, String)>,
    swept_keys: &[String],
) -> Result<Vec<TableSpec>, PlanError> {
    let mut errors = super::error::Errors::default();
    let mut out = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let before = errors.len();
        if let Err(m) = check_name(&t.name) {
            errors.push(t.error("name", m, None));
        } else if RESERVED_NAMES.contains(&t.name.as_str()) {
            errors.push(t.error("name", format!("`{}` is the name of a results file: choose another", t.name), None));
        } else if raw[..i].iter().any(|u| u.name == t.name) {
            errors.push(t.error("name", format!("a table named `{}` is defined twice", t.name), None));
        }
        let axis = |key: &str, value: &str| -> Result<Axis, PlanError> {
            match value {
                "stage" => Ok(Axis::Stage),
                "layer" => Ok(Axis::Layer),
                k if swept_keys.iter().any(|s| s == k) => Ok(Axis::Key(k.to_string())),
                k => {
                    let names = ["stage", "layer"].into_iter().chain(swept_keys.iter().map(String::as_str));
                    let hint = did_you_mean(k, names.clone()).or_else(|| {
                        Some(format!(
                            "expected one of: {}",
                            names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                        ))
                    });
                    let why = if k.starts_with("stages.") { " (not a swept key)" } else { "" };
                    Err(t.error(key, format!("unknown {key} `{k}`{why}"), hint).into())
                }
            }
        };
        let rows = errors.take(axis("rows", &t.rows));
        let columns = errors.take(axis("columns", &t.columns));
        if let (Some(r), Some(c)) = (&rows, &columns) {
            if r == c {
                errors.push(t.error("columns", format!("rows and columns are both `{}`", t.columns), None));
            }
        }
        let mut selected = Vec::new();
        for s in t.stages.iter().flatten() {
            if stages.contains_key(s) {
                selected.push(s.clone());
            } else {
                let hint = did_you_mean(s, stages.keys().map(String::as_str));
                errors.push(t.error("stages", format!("no stage named `{s}`"), hint));
            }
        }
        if t.stages.as_ref().is_some_and(|s| s.is_empty()) {
            errors.push(t.error("stages", "expected at least one stage (or no `stages` for all)", None));
        }
        // The metric must be one that a selected stage reports.
        let candidates: Vec<StageKind> = stages
            .iter()
            .filter(|(n, _)| selected.is_empty() || selected.contains(n))
            .map(|(_, (k, _))| *k)
            .collect();
        let mut known: Vec<&str> = candidates.iter().flat_map(|k| k.metrics()).copied().collect();
        known.sort_unstable();
        known.dedup();
        if !known.contains(&t.metric.as_str()) {
            let hint = did_you_mean(&t.metric, known.iter().copied())
                .or_else(|| (!known.is_empty()).then(|| format!("the stages report: {}", known.join(", "))));
            let whose = if selected.is_empty() {
                "no stage"
            } else {
                "none of the selected stages"
            };
            errors.push(t.error("metric", format!("{whose} reports the metric `{}`", t.metric), hint));
        }
        // References name rows and columns that can exist.
        for (j, r) in t.reference.iter().enumerate() {
            if !r.value.is_finite() {
                errors.push(t.reference_error(j, "value", "expected a finite number", None));
            }
            let labels: Vec<&str> = stages
                .iter()
                .filter(|(n, _)| selected.is_empty() || selected.contains(n))
                .map(|(_, (_, l))| l.as_str())
                .collect();
            for (key, axis, value) in [("row", &rows, &r.row), ("column", &columns, &r.column)] {
                if axis.as_ref() == Some(&Axis::Stage) && !labels.iter().any(|l| value == l || value.starts_with(&format!("{l} ("))) {
                    let hint = did_you_mean(value, labels.iter().copied());
                    errors.push(t.reference_error(j, key, format!("no stage labelled `{value}`"), hint));
                }
            }
        }
        if errors.len() == before {
            if let (Some(rows), Some(columns)) = (rows, columns) {
                out.push(TableSpec {
                    name: t.name.clone(),
                    metric: t.metric.clone(),
                    rows,
                    columns,
                    stages: selected,
                    caption: t.caption.clone(),
                    references: t
                        .reference
                        .iter()
                        .map(|r| Reference {
                            row: r.row.clone(),
                            column: r.column.clone(),
                            value: r.value,
                            source: r.source.clone(),
                        })
                        .collect(),
                });
            }
        }
    }
    errors.finish()?;
    Ok(out)
}
