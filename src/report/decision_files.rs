//! The decisions as written and shown: `decisions.md` (a table with the claim, the values,
//! the quantity with its spread, the thresholds and the outcome), `decisions.csv` (one row
//! per decision and layer compared, numbers exact) and the one line per decision that
//! `run` and `report` end with.
use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::decision::{Comparison, Decided, Outcome};
use super::results::write_atomic;
use crate::plan::{Plan, DECISIONS};

/// Decimals of a decision's numbers: 3, or as many as its thresholds are written with (at
/// most 6), so that a value is never rounded onto its threshold unseen.
fn decimals(d: &Decided) -> usize {
    let written = |x: f64| {
        let s = format!("{x}");
        s.split_once('.').map_or(0, |(_, f)| f.len())
    };
    let t = written(d.spec.pass).max(d.spec.fail.map_or(0, written));
    t.clamp(3, 6)
}

fn fmt(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}")
}

/// With its sign, as a difference.
fn signed(x: f64, decimals: usize) -> String {
    let s = fmt(x, decimals);
    if s.starts_with('-') {
        s
    } else {
        format!("+{s}")
    }
}

/// A quantity: a difference with its sign; a's own value without b.
fn quantity(d: &Decided, x: f64) -> String {
    if d.spec.b.is_some() {
        signed(x, decimals(d))
    } else {
        fmt(x, decimals(d))
    }
}

/// `Δ +0.034 at conv4, +0.041 at conv5`, `top1 0.834`, or what is missing.
fn values_text(d: &Decided) -> String {
    let shown: Vec<String> = d
        .comparisons
        .iter()
        .map(|c| {
            let value = c.cell().map_or_else(|| "?".to_string(), |cell| quantity(d, cell.mean));
            match c.layer() {
                l if l.is_empty() => value,
                l => format!("{value} at {l}"),
            }
        })
        .collect();
    let what = if d.spec.b.is_some() { "Δ" } else { d.spec.metric.as_str() };
    format!("{what} {}", shown.join(", "))
}

/// `decision G1: pass (Δ +0.034 at conv4, +0.041 at conv5 ≥ 0.02)`.
pub fn decision_line(d: &Decided) -> String {
    let name = &d.spec.name;
    let outcome = d.outcome.name();
    let pass = d.spec.pass;
    let values = values_text(d);
    if let Some(note) = &d.note {
        let own_missing = d.comparisons.iter().any(|c| c.cell().is_none());
        return if d.outcome == Outcome::Missing && own_missing {
            format!("decision {name}: missing ({note})")
        } else {
            format!("decision {name}: {outcome}: {note} ({values})")
        };
    }
    let detail = match (d.outcome, d.spec.fail) {
        (Outcome::Pass, _) => format!("{values} ≥ {pass}"),
        (Outcome::Fail, Some(fail)) => format!("{values} ≤ {fail}"),
        (Outcome::Fail, None) => format!("{values}; pass needs ≥ {pass}"),
        (_, Some(fail)) => format!("{values}; pass needs ≥ {pass}, fail ≤ {fail}"),
        (_, None) => values,
    };
    format!("decision {name}: {outcome} ({detail})")
}

/// `+0.034 ± 0.004 (+0.030..+0.038), n=3`, or `–` when a value is missing.
fn spread(d: &Decided, c: &Comparison) -> String {
    let (Some(cell), Some((min, max))) = (c.cell(), c.range()) else {
        return "–".into();
    };
    let dec = decimals(d);
    if cell.n > 1 {
        format!(
            "{} ± {} ({}..{}), n={}",
            quantity(d, cell.mean),
            fmt(cell.std, dec),
            quantity(d, min),
            quantity(d, max),
            cell.n
        )
    } else {
        format!("{}, n=1", quantity(d, cell.mean))
    }
}

/// Markdown special characters escaped, line breaks as spaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '|' | '*' | '_' | '`' | '\\') {
            out.push('\\');
        }
        out.push(if ch == '\n' { ' ' } else { ch });
    }
    out
}

/// The sentence under the table: what the numbers are.
pub const EXPLANATION: &str = "Stated in the experiment file before the run, evaluated from the stored metrics. \
The quantity is a's value minus b's (a's value where there is no b), one per seed, paired by seed; \
shown as mean ± std (min..max) over the n distinct pairs of stage instances. \
pass: the mean is at least `pass` at every layer compared; fail: at most `fail` at every layer \
(without `fail`, whatever does not pass); otherwise inconclusive. \
untestable: a decision it requires did not pass; missing: a value is not in the store.";

/// The header of the decisions table (`decisions.md`, index.html).
pub const HEADER: [&str; 12] = [
    "decision", "claim", "metric", "a", "b", "layer", "mean a", "mean b", "quantity", "pass", "fail", "outcome",
];

/// The decisions table as plain text: one row per decision and layer compared (the
/// decision's own columns on its first row only), cells under [`HEADER`].
pub fn table_rows(decided: &[Decided]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for d in decided {
        let dec = decimals(d);
        for (k, c) in d.comparisons.iter().enumerate() {
            let mean = |s: Option<&super::decision::Side>| s.and_then(|s| s.cell()).map_or_else(|| "–".to_string(), |c| fmt(c.mean, dec));
            let layer = match c.layer() {
                l if l.is_empty() => "–".to_string(),
                l => l,
            };
            let first = k == 0;
            let own = |s: String| if first { s } else { String::new() };
            out.push(vec![
                own(d.spec.name.clone()),
                own(d.spec.claim.clone()),
                own(d.spec.metric.clone()),
                own(d.spec.a.clone()),
                own(d.spec.b.clone().unwrap_or_else(|| "–".to_string())),
                layer,
                mean(Some(&c.a)),
                mean(c.b.as_ref()),
                spread(d, c),
                own(format!("≥ {}", d.spec.pass)),
                own(d.spec.fail.map_or_else(|| "–".to_string(), |f| format!("≤ {f}"))),
                own(d.outcome.name().to_string()),
            ]);
        }
    }
    out
}

/// `decisions.md`: the table, what its numbers are, and the notes.
pub fn decisions_markdown(experiment: &str, decided: &[Decided]) -> String {
    let mut out = format!(
        "# Decisions: {}

",
        escape(experiment)
    );
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    out.push_str(
        "|:---|:---|:---|:---|:---|:---|---:|---:|---:|---:|---:|:---|
",
    );
    for row in table_rows(decided) {
        let mut cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
        if let Some(outcome) = cells.last_mut().filter(|c| !c.is_empty()) {
            *outcome = format!("**{outcome}**");
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(out, "\n{EXPLANATION}");
    let notes = notes(decided);
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            let _ = writeln!(out, "- {}", escape(&n));
        }
    }
    out
}

/// What a reader needs beyond the table: why an outcome is what it is, and how the best
/// layers were chosen.
pub fn notes(decided: &[Decided]) -> Vec<String> {
    let mut out = Vec::new();
    for d in decided {
        if let Some(n) = &d.note {
            out.push(format!("{}: {}: {n}.", d.spec.name, d.outcome.name()));
        }
        for s in &d.selections {
            let dec = decimals(d);
            let means: Vec<String> = s
                .means
                .iter()
                .map(|(l, m)| format!("{l} {}", m.map_or_else(|| "?".to_string(), |m| fmt(m, dec))))
                .collect();
            let chosen = s.chosen.as_deref().unwrap_or("not chosen (a value is missing)");
            out.push(format!(
                "{}: {}'s layer {chosen}, the highest mean {} of {} over the seeds ({}).",
                d.spec.name,
                s.side,
                d.spec.metric,
                s.stage,
                means.join(", ")
            ));
        }
    }
    out
}

/// `decisions.csv`: one row per decision and layer compared; numbers exact, empty where
/// missing.
pub fn decisions_csv(decided: &[Decided]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "decision", "claim", "metric", "a", "b", "layer_a", "layer_b", "mean_a", "mean_b", "mean", "std", "min", "max", "n", "pass",
        "fail", "outcome", "note",
    ])?;
    let num = |x: Option<f64>| x.map(|x| format!("{x}")).unwrap_or_default();
    for d in decided {
        for c in &d.comparisons {
            let cell = c.cell();
            let range = c.range();
            w.write_record([
                d.spec.name.clone(),
                d.spec.claim.clone(),
                d.spec.metric.clone(),
                d.spec.a.clone(),
                d.spec.b.clone().unwrap_or_default(),
                c.a.layer.clone(),
                c.b.as_ref().map(|b| b.layer.clone()).unwrap_or_default(),
                num(c.a.cell().map(|c| c.mean)),
                num(c.b.as_ref().and_then(|b| b.cell()).map(|c| c.mean)),
                num(cell.as_ref().map(|c| c.mean)),
                num(cell.as_ref().map(|c| c.std)),
                num(range.map(|r| r.0)),
                num(range.map(|r| r.1)),
                cell.as_ref().map_or(0, |c| c.n).to_string(),
                format!("{}", d.spec.pass),
                num(d.spec.fail),
                d.outcome.name().to_string(),
                d.note.clone().unwrap_or_default(),
            ])?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Writes `decisions.md` and `decisions.csv` into `dir` when the plan has decisions;
/// returns the files written.
pub fn write_decisions(plan: &Plan, decided: &[Decided], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if decided.is_empty() {
        return Ok(Vec::new());
    }
    let md = dir.join(format!("{DECISIONS}.md"));
    write_atomic(&md, decisions_markdown(&plan.experiment, decided).as_bytes())?;
    let csv = dir.join(format!("{DECISIONS}.csv"));
    write_atomic(&csv, decisions_csv(decided).map_err(std::io::Error::other)?.as_bytes())?;
    Ok(vec![md, csv])
}
