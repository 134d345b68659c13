//! `results/<experiment>/results.csv` (long form, a stable contract) and `results.md`.
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::plan::Plan;
use crate::store::{EntryState, Store};

/// One row of the long-form table.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    /// The variant without its seed (`Variant::group`).
    pub variant: String,
    /// Values of the swept keys, in `Plan::swept_keys` order.
    pub swept: Vec<String>,
    /// The seed, on the seed axis (`seeds = [...]`).
    pub seed: Option<u64>,
    pub stage: String,
    /// The stage instance (index in `Plan::instances`) the value comes from: variants
    /// sharing an instance give one value, not several.
    pub instance: usize,
    pub layer: String,
    pub metric: String,
    pub value: f64,
}

/// Rows of every variant's stages that are in the store, in file order.
pub fn collect_rows(plan: &Plan, store: &Store) -> Vec<ResultRow> {
    let mut rows = Vec::new();
    for v in &plan.variants {
        for (stage, &i) in &v.stages {
            let inst = &plan.instances[i];
            if let EntryState::Valid(m) = store.state(inst.kind, &inst.key, false) {
                for r in &m.metrics {
                    rows.push(ResultRow {
                        variant: v.group.clone(),
                        swept: v.swept.iter().map(|(_, val)| val.clone()).collect(),
                        seed: v.seed,
                        stage: stage.clone(),
                        instance: i,
                        layer: r.layer.clone(),
                        metric: r.metric.clone(),
                        value: r.value,
                    });
                }
            }
        }
    }
    rows
}

/// The first line of the copy of the experiment file kept in its results folder, with the
/// file's path relative to that folder (so a committed folder names no machine's paths).
const COPIED_FROM: &str = "# ktlab: results of ";

/// `target` as a path relative to the folder `base` (both made absolute), e.g.
/// `../../experiments/a.toml`; `target` itself (absolute) where they share no root.
fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let (Ok(target), Ok(base)) = (std::path::absolute(target), std::path::absolute(base)) else {
        return target.to_path_buf();
    };
    let (t, b): (Vec<_>, Vec<_>) = (target.components().collect(), base.components().collect());
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return target;
    }
    let mut rel: PathBuf = b[common..].iter().map(|_| std::path::Component::ParentDir).collect();
    rel.extend(&t[common..]);
    rel
}

/// Another experiment file that wrote `results_root/<name>/`: one that still exists, is
/// not `plan.file` and has the same name. Two files with one name would otherwise
/// overwrite each other's results without a word.
pub fn results_owner_conflict(plan: &Plan, results_root: &Path) -> Option<PathBuf> {
    let folder = results_root.join(&plan.experiment);
    let copy = std::fs::read_to_string(folder.join("experiment.toml")).ok()?;
    // Relative to the folder (absolute in folders written before).
    let owner = folder.join(copy.lines().next()?.strip_prefix(COPIED_FROM)?);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let still_that_experiment = std::fs::read_to_string(&owner).is_ok_and(|text| {
        text.lines()
            .any(|l| l.trim_start().starts_with("name") && l.contains(&format!("\"{}\"", plan.experiment)))
    });
    (owner.exists() && !same(&owner, &plan.file) && still_that_experiment).then_some(owner)
}

/// Writes results.csv and results.md, and a copy of the experiment file, into `dir`
/// (the new contents of the results folder, see [`super::StagedFolder`]); returns the
/// Markdown table.
pub fn write_results(plan: &Plan, rows: &[ResultRow], dir: &Path) -> std::io::Result<String> {
    if let Ok(text) = std::fs::read_to_string(&plan.file) {
        // `dir` is staged beside the results folder: the path is relative to the folder.
        let folder = dir.parent().map_or_else(|| dir.to_path_buf(), |p| p.join(&plan.experiment));
        let source = relative_to(&plan.file, &folder);
        write_atomic(
            &dir.join("experiment.toml"),
            format!("{COPIED_FROM}{}\n{text}", source.display()).as_bytes(),
        )?;
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["variant".to_string()];
    header.extend(plan.swept_keys.iter().cloned());
    if plan.seed_axis {
        header.push("seed".into());
    }
    header.extend(["stage", "layer", "metric", "value"].map(String::from));
    w.write_record(&header).map_err(std::io::Error::other)?;
    for r in rows {
        let mut rec = vec![r.variant.clone()];
        rec.extend(r.swept.iter().cloned());
        if plan.seed_axis {
            rec.push(r.seed.map(|s| s.to_string()).unwrap_or_default());
        }
        rec.extend([r.stage.clone(), r.layer.clone(), r.metric.clone(), format_value(r.value)]);
        w.write_record(&rec).map_err(std::io::Error::other)?;
    }
    let csv_bytes = w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomic(&dir.join("results.csv"), &csv_bytes)?;
    let md = markdown(plan, rows);
    write_atomic(&dir.join("results.md"), md.as_bytes())?;
    Ok(md)
}

/// Shortest representation that reads back to the same f64: stable and exact.
fn format_value(v: f64) -> String {
    format!("{v}")
}

/// One row per (variant, stage, layer), one column per metric.
fn markdown(plan: &Plan, rows: &[ResultRow]) -> String {
    let mut metrics: Vec<&str> = Vec::new();
    for r in rows {
        if !metrics.contains(&r.metric.as_str()) {
            metrics.push(&r.metric);
        }
    }
    let mut groups: Vec<(&ResultRow, Vec<Option<f64>>)> = Vec::new();
    for r in rows {
        let pos = groups
            .iter()
            .position(|(g, _)| g.variant == r.variant && g.seed == r.seed && g.stage == r.stage && g.layer == r.layer);
        let idx = match pos {
            Some(p) => p,
            None => {
                groups.push((r, vec![None; metrics.len()]));
                groups.len() - 1
            }
        };
        if let Some(m) = metrics.iter().position(|m| *m == r.metric) {
            groups[idx].1[m] = Some(r.value);
        }
    }
    let mut out = format!("# {}\n\n", plan.experiment);
    let mut head: Vec<String> = vec!["variant".into()];
    head.extend(plan.swept_keys.iter().cloned());
    if plan.seed_axis {
        head.push("seed".into());
    }
    head.extend(["stage".into(), "layer".into()]);
    head.extend(metrics.iter().map(|m| m.to_string()));
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", head.iter().map(|_| "---|").collect::<String>());
    for (g, vals) in &groups {
        let mut cells = vec![g.variant.clone()];
        cells.extend(g.swept.iter().cloned());
        if plan.seed_axis {
            cells.push(g.seed.map(|s| s.to_string()).unwrap_or_default());
        }
        cells.push(g.stage.clone());
        cells.push(if g.layer.is_empty() { "-".into() } else { g.layer.clone() });
        cells.extend(vals.iter().map(|v| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())));
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    if groups.is_empty() {
        out.push_str("\n(no metrics yet)\n");
    }
    out
}

pub(super) use crate::store::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_relative_to_a_folder() {
        let rel = relative_to(Path::new("/p/experiments/a.toml"), Path::new("/p/results/small"));
        assert_eq!(rel, PathBuf::from("../../experiments/a.toml"));
        assert_eq!(relative_to(Path::new("/p/a.toml"), Path::new("/p")), PathBuf::from("a.toml"));
    }
}
