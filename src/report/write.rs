//! Every table of an experiment written beside results.csv as `<name>.csv`, `<name>.md`
//! and `<name>.tex`, and `provenance.json` tracing each cell to its stage instances.
use std::path::{Path, PathBuf};

use super::results::write_atomic;
use super::{table_csv, table_latex, table_markdown, tables, ResultRow};
use crate::plan::Plan;

/// One table as written: its name, its files and its Markdown (to show).
#[derive(Clone, Debug)]
pub struct WrittenTable {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub markdown: String,
}

/// Writes the experiment's tables into `dir` (its results folder).
pub fn write_tables(plan: &Plan, rows: &[ResultRow], dir: &Path) -> std::io::Result<Vec<WrittenTable>> {
    let mut out = Vec::new();
    let tables = tables(plan, rows);
    if !tables.is_empty() {
        let provenance = serde_json::to_string_pretty(&super::provenance(plan, &tables)).map_err(std::io::Error::other)?;
        write_atomic(&dir.join("provenance.json"), format!("{provenance}\n").as_bytes())?;
    }
    for t in &tables {
        let csv = table_csv(t).map_err(std::io::Error::other)?;
        let markdown = table_markdown(t);
        let latex = table_latex(t);
        let mut files = Vec::new();
        for (ext, text) in [("csv", &csv), ("md", &markdown), ("tex", &latex)] {
            let path = dir.join(format!("{}.{ext}", t.name));
            write_atomic(&path, text.as_bytes())?;
            files.push(path);
        }
        out.push(WrittenTable {
            name: t.name.clone(),
            files,
            markdown,
        });
    }
    Ok(out)
}
