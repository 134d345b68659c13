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

/// A result row's layer on a table's layer axis when it has none, as a reference may
/// name it (tables show the metric's name there).
pub const NO_LAYER: &str = "-";

/// The name of the training curves' plot files in the results folder.
pub const TRAINING_CURVES: &str = "training_curves";

/// The name of the decisions' files in the results folder (`decisions.md`, `.csv`).
pub const DECISIONS: &str = "decisions";

/// Names a table may not take: the other files of the results folder (the long-form
/// results, the training curves and the decisions).
pub const RESERVED_NAMES: &[&str] = &["results", "provenance", TRAINING_CURVES, DECISIONS];

/// What a table may know of one stage at planning.
#[derive(Clone, Debug)]
pub struct TableStage {
    pub kind: StageKind,
    /// Its `label`, or its name.
    pub label: String,
    /// The metrics its result rows carry (with its parameters, in any variant).
    pub metrics: Vec<&'static str>,
    /// The layers of its result rows ([`NO_LAYER`] for rows without one).
    pub layers: Vec<String>,
}

/// Checks every `[[tables]]` entry against the stages (by name) and the swept keys (with
/// their values as written); all errors at once, each at its file, line and key.
pub fn validate_tables(
    raw: &[RawTable],
    stages: &IndexMap<String, TableStage>,
    swept: &[(String, Vec<String>)],
) -> Result<Vec<TableSpec>, PlanError> {
    let swept_keys: Vec<String> = swept.iter().map(|(k, _)| k.clone()).collect();
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
        let candidates: Vec<(&String, &TableStage)> = stages.iter().filter(|(n, _)| selected.is_empty() || selected.contains(n)).collect();
        // The stages whose values enter the table: those reporting its metric.
        let feeding: Vec<(&String, &TableStage)> = candidates
            .iter()
            .copied()
            .filter(|(_, s)| s.metrics.contains(&t.metric.as_str()))
            .collect();
        // The metric must be one that a selected stage reports, with its parameters.
        let mut known: Vec<&str> = candidates.iter().flat_map(|(_, s)| s.metrics.iter().copied()).collect();
        known.sort_unstable();
        known.dedup();
        if feeding.is_empty() {
            let could: Vec<&str> = candidates
                .iter()
                .filter(|(_, s)| s.kind.metrics().contains(&t.metric.as_str()))
                .map(|(n, _)| n.as_str())
                .collect();
            let hint = if !could.is_empty() {
                Some(format!(
                    "{} would with other parameters",
                    could.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ))
            } else {
                did_you_mean(&t.metric, known.iter().copied())
                    .or_else(|| (!known.is_empty()).then(|| format!("the stages report: {}", known.join(", "))))
            };
            let whose = if selected.is_empty() {
                "no stage"
            } else {
                "none of the selected stages"
            };
            let with = if could.is_empty() { "" } else { " with its parameters" };
            errors.push(t.error("metric", format!("{whose} reports the metric `{}`{with}", t.metric), hint));
        } else {
            // A listed stage that gives the table nothing is a mistake in the list.
            for (n, s) in &candidates {
                if !selected.is_empty() && !s.metrics.contains(&t.metric.as_str()) {
                    let what = if s.kind.metrics().contains(&t.metric.as_str()) {
                        " with its parameters"
                    } else {
                        ""
                    };
                    errors.push(t.error(
                        "stages",
                        format!("stage `{n}` does not report the metric `{}`{what}", t.metric),
                        None,
                    ));
                }
            }
        }
        // Two stages in one row (or one cell) would be averaged together.
        let on_stage_axis = rows.as_ref() == Some(&Axis::Stage) || columns.as_ref() == Some(&Axis::Stage);
        if on_stage_axis {
            for (k, (b, sb)) in feeding.iter().enumerate() {
                if let Some((a, _)) = feeding[..k].iter().find(|(_, sa)| sa.label == sb.label) {
                    errors.push(t.error(
                        "metric",
                        format!(
                            "two stages of table `{}` share the label `{}`: `{a}` and `{b}` (their values would be averaged into one row)",
                            t.name, sb.label
                        ),
                        Some("give each stage its own `label`, or list one of them in `stages`".into()),
                    ));
                }
            }
        } else if rows.is_some() && columns.is_some() && feeding.len() > 1 {
            errors.push(t.error(
                "metric",
                format!(
                    "stages {} all report `{}` and table `{}` has no `stage` axis: their values would be averaged into one cell",
                    feeding.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                    t.metric,
                    t.name
                ),
                Some("list one of them in `stages`, or put `stage` on the rows or columns".into()),
            ));
        }
        // References name rows and columns that exist, one reference per cell.
        let mut cells: Vec<(String, String, usize)> = Vec::new();
        for (j, r) in t.reference.iter().enumerate() {
            if !r.value.is_finite() {
                errors.push(t.reference_error(j, "value", "expected a finite number", None));
            }
            let mut cell = Vec::new();
            for (key, axis, value) in [("row", &rows, &r.row), ("column", &columns, &r.column)] {
                let Some(axis) = axis else { continue };
                match axis_value(axis, value, &feeding, swept, &t.metric) {
                    Ok(v) => cell.push(v),
                    Err((message, offered)) => {
                        let hint = did_you_mean(value, offered.iter().map(String::as_str)).or_else(|| {
                            (!offered.is_empty()).then(|| {
                                format!(
                                    "the table's {key}s: {}",
                                    offered.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")
                                )
                            })
                        });
                        errors.push(t.reference_error(j, key, message, hint));
                    }
                }
            }
            if let [row, column] = &cell[..] {
                match cells.iter().find(|(r, c, _)| r == row && c == column) {
                    Some((_, _, first)) => errors.push(t.reference_error(
                        j,
                        "row",
                        format!(
                            "a second reference for the cell `{}`, `{}` (the first is `{}.reference[{first}]`)",
                            r.row, r.column, t.path
                        ),
                        None,
                    )),
                    None => cells.push((row.clone(), column.clone(), j)),
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

/// A reference's row or column on `axis`, as one name per cell (`4` for `k=4` and `4`),
/// or why the table has no such row or column and the names it has.
fn axis_value(
    axis: &Axis,
    value: &str,
    feeding: &[(&String, &TableStage)],
    swept: &[(String, Vec<String>)],
    metric: &str,
) -> Result<String, (String, Vec<String>)> {
    match axis {
        Axis::Stage => {
            let labels: Vec<String> = feeding.iter().map(|(_, s)| s.label.clone()).collect();
            if labels.iter().any(|l| value == l || value.starts_with(&format!("{l} ("))) {
                Ok(value.to_string())
            } else {
                Err((format!("no stage labelled `{value}`"), labels))
            }
        }
        Axis::Layer => {
            let mut layers: Vec<String> = Vec::new();
            for l in feeding.iter().flat_map(|(_, s)| &s.layers) {
                if !layers.contains(l) {
                    layers.push(l.clone());
                }
            }
            // The values of no layer are shown under the metric's name: either names them.
            let value = if value == metric && layers.iter().any(|l| l == NO_LAYER) {
                NO_LAYER
            } else {
                value
            };
            if layers.iter().any(|l| l == value) {
                Ok(value.to_string())
            } else {
                let shown = layers
                    .into_iter()
                    .map(|l| if l == NO_LAYER { metric.to_string() } else { l })
                    .collect();
                Err((format!("no layer `{value}` among the table's stages"), shown))
            }
        }
        Axis::Key(k) => {
            let values = swept.iter().find(|(s, _)| s == k).map(|(_, v)| v.as_slice()).unwrap_or_default();
            let short = format!("{}=", short_key(k));
            let raw = value.strip_prefix(&short).unwrap_or(value);
            if values.iter().any(|v| v == raw) {
                Ok(raw.to_string())
            } else {
                let named = values.iter().map(|v| format!("{short}{v}")).collect();
                Err((format!("no value `{value}` of the swept key `{k}`"), named))
            }
        }
        Axis::One => {
            if value == metric {
                Ok(value.to_string())
            } else {
                Err((
                    format!("the table has one row or column, `{metric}`, not `{value}`"),
                    vec![metric.to_string()],
                ))
            }
        }
    }
}
