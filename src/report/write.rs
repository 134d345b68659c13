//! Every table of an experiment written beside results.csv as `<name>.csv`, `<name>.md`
//! and `<name>.tex`, with its plot (`<name>.svg`, `<name>.png`) where it has one;
//! `provenance.json` tracing each cell and decision to its stage instances; and the training curves
//! (`training_curves.svg`, `.png`) where the results have any.
use std::path::{Path, PathBuf};

use super::curves::{curves_figure, History};
use super::figure::Figure;
use super::results::write_atomic;
use super::table_plot::table_figure;
use super::{draw, table_csv, table_latex, table_markdown, table_specs, Decided, ResultRow, Table};
use crate::plan::{Plan, TRAINING_CURVES};

/// One table as written: its name, its files and its Markdown (to show).
#[derive(Clone, Debug)]
pub struct WrittenTable {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub markdown: String,
}

/// Writes the experiment's tables and their plots into `dir` (its results folder), and
/// provenance.json for them and the decisions (`decided`); `computed` is when the last of
/// its instances finished (RFC 3339), for provenance.json.
pub fn write_tables(
    plan: &Plan,
    rows: &[ResultRow],
    decided: &[Decided],
    dir: &Path,
    computed: Option<&str>,
) -> std::io::Result<Vec<WrittenTable>> {
    let mut out = Vec::new();
    let specs = table_specs(plan, rows);
    let tables: Vec<Table> = specs.iter().map(|s| Table::build(s, plan, rows)).collect();
    if !tables.is_empty() || !decided.is_empty() {
        let provenance =
            serde_json::to_string_pretty(&super::provenance(plan, &tables, decided, computed)).map_err(std::io::Error::other)?;
        write_atomic(&dir.join("provenance.json"), format!("{provenance}\n").as_bytes())?;
    }
    for (spec, t) in specs.iter().zip(&tables) {
        let csv = table_csv(t).map_err(std::io::Error::other)?;
        let markdown = table_markdown(t);
        let latex = table_latex(t);
        let mut files = Vec::new();
        for (ext, text) in [("csv", &csv), ("md", &markdown), ("tex", &latex)] {
            let path = dir.join(format!("{}.{ext}", t.name));
            write_atomic(&path, text.as_bytes())?;
            files.push(path);
        }
        if let Some(fig) = table_figure(spec, plan, rows) {
            files.extend(write_plot(&fig, dir, &t.name)?);
        }
        out.push(WrittenTable {
            name: t.name.clone(),
            files,
            markdown,
        });
    }
    Ok(out)
}

/// Writes `training_curves.svg` and `.png` into `dir` when there are histories; returns
/// the files written.
pub fn write_training_curves(plan: &Plan, histories: &[History], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    match curves_figure(&plan.experiment, histories) {
        Some(fig) => write_plot(&fig, dir, TRAINING_CURVES),
        None => Ok(Vec::new()),
    }
}

/// Writes each `(file name, bytes)` of [`super::curves::curve_files`] into `dir/curves/`
/// and removes the other `.csv` files there (curves of stages the experiment no longer
/// has); returns the files written.
pub fn write_curve_files(files: &[(String, Vec<u8>)], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let curves = dir.join(CURVES_DIR);
    if files.is_empty() && !curves.exists() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(&curves)?;
    let mut written = Vec::new();
    for (name, bytes) in files {
        let path = curves.join(name);
        write_atomic(&path, bytes)?;
        written.push(path);
    }
    for entry in std::fs::read_dir(&curves)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "csv") && !written.contains(&path) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(written)
}

/// The folder of a results folder that holds every training stage's `epochs.csv`.
pub const CURVES_DIR: &str = "curves";

/// `<name>.svg` and `<name>.png` of `fig`.
fn write_plot(fig: &Figure, dir: &Path, name: &str) -> std::io::Result<Vec<PathBuf>> {
    let svg = draw::svg(fig).map_err(std::io::Error::other)?;
    let png = draw::png(fig).map_err(std::io::Error::other)?;
    let mut files = Vec::new();
    for (ext, bytes) in [("svg", svg.as_bytes()), ("png", png.as_slice())] {
        let path = dir.join(format!("{name}.{ext}"));
        write_atomic(&path, bytes)?;
        files.push(path);
    }
    Ok(files)
}
