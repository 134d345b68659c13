//! `ktlab gc`: removes the store entries that no experiment file references.
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use super::session::{PlanOptions, Session};
use crate::cli::ExperimentArgs;
use crate::store::{Key, Records};
use crate::Error;

pub fn gc(session: &Session, dry_run: bool, files: &[PathBuf]) -> Result<ExitCode, Error> {
    let files: Vec<PathBuf> = if files.is_empty() {
        walkdir::WalkDir::new("experiments")
            .sort_by_file_name()
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "toml") && e.file_name() != "datasets.toml")
            .map(|e| e.into_path())
            .collect()
    } else {
        files.to_vec()
    };
    let mut keep = HashSet::new();
    let options = PlanOptions {
        allow_unavailable: true,
        ..Default::default()
    };
    for f in &files {
        let exp = ExperimentArgs {
            file: f.clone(),
            ..Default::default()
        };
        let loaded = session.load_plan(&exp, options)?;
        let plan = &loaded.plan;
        keep.extend(plan.instances.iter().map(|i| i.key));
        if !loaded.unavailable.is_empty() {
            // Its keys cannot be computed without the data: keep what it last ran with.
            let records = Records::load(&session.store, &plan.experiment);
            let recorded: Vec<Key> = records
                .stages
                .values()
                .flat_map(|stages| stages.values())
                .filter_map(|r| Key::parse(&r.key))
                .collect();
            eprintln!(
                "note: {} reads data not available here ({}); keeping the {} entries it last ran with",
                f.display(),
                loaded.unavailable.join("; "),
                recorded.len()
            );
            keep.extend(recorded);
        }
    }
    let report = crate::store::gc(&session.store, &keep, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    println!(
        "{verb} {} entries ({} bytes freed{}), kept {} referenced by {} experiment file(s){}",
        report.removed,
        report.bytes,
        if dry_run { " if run" } else { "" },
        report.kept,
        files.len(),
        if report.busy > 0 {
            format!(", skipped {} in use", report.busy)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
