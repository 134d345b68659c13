//! `ktlab gc`: removes the store entries that no experiment file references. With no
//! experiment file to keep entries for it refuses (it would empty the store); on a
//! terminal it lists what it will remove and asks first, unless `--yes`.
use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::{absolute, PlanOptions, Session};
use crate::cli::ExperimentArgs;
use crate::store::{GcReport, Key, Records};
use crate::Error;

/// Listed before asking; the rest are counted.
const SHOWN: usize = 20;

pub fn gc(session: &Session, dry_run: bool, yes: bool, files: &[PathBuf]) -> Result<ExitCode, Error> {
    let files: Vec<PathBuf> = if files.is_empty() {
        let dir = session.project.as_deref().unwrap_or(Path::new("")).join("experiments");
        let found = experiment_files(&dir);
        if found.is_empty() {
            return Err(Error::Usage(format!(
                "gc: no experiment file to keep entries for (none named, and no .toml file under {}): \
                 removing every entry of {} is refused; name the experiments whose entries to keep: `ktlab gc FILE...`",
                absolute(&dir).display(),
                absolute(&session.store.root).display()
            )));
        }
        found
    } else {
        files.to_vec()
    };
    let keep = kept_keys(session, &files)?;
    let store = &session.store;
    if !dry_run && !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let preview = crate::store::gc(store, &crate::stages::StageKind::names(), &keep, true)?;
        if preview.removed > 0 {
            eprint!("{}", removal_list(&preview, &store.root));
            let question = format!(
                "remove these {} entries ({} bytes) from {}? [y/N] ",
                preview.removed,
                preview.bytes,
                absolute(&store.root).display()
            );
            if !confirm(&question, &mut std::io::stdin().lock(), &mut std::io::stderr()) {
                println!("nothing removed");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    let report = crate::store::gc(store, &crate::stages::StageKind::names(), &keep, dry_run)?;
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

/// Every experiment file under `dir` (datasets files left out), in name order.
fn experiment_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "toml") && e.file_name() != "datasets.toml")
        .map(|e| e.into_path())
        .collect()
}

/// The keys of every instance the files plan; for a file whose data is not readable
/// here, also the keys it last ran with.
fn kept_keys(session: &Session, files: &[PathBuf]) -> Result<HashSet<Key>, Error> {
    let mut keep = HashSet::new();
    let options = PlanOptions {
        allow_unavailable: true,
        ..Default::default()
    };
    for f in files {
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
            if !session.reporter.is_quiet() {
                eprintln!(
                    "note: {} reads data not available here ({}); keeping the {} entries it last ran with",
                    f.display(),
                    loaded.unavailable.join("; "),
                    recorded.len()
                );
            }
            keep.extend(recorded);
        }
    }
    Ok(keep)
}

/// What a gc will remove, one path (relative to the store) a line, the first [`SHOWN`].
fn removal_list(report: &GcReport, root: &Path) -> String {
    let mut out = String::from("gc will remove:\n");
    for p in report.paths.iter().take(SHOWN) {
        out.push_str(&format!("  {}\n", p.strip_prefix(root).unwrap_or(p).display()));
    }
    if report.paths.len() > SHOWN {
        out.push_str(&format!("  ... and {} more\n", report.paths.len() - SHOWN));
    }
    out
}

/// Asks `question`; true only for an answer of `y` or `yes`.
fn confirm(question: &str, input: &mut impl BufRead, out: &mut impl Write) -> bool {
    let _ = write!(out, "{question}");
    let _ = out.flush();
    let mut answer = String::new();
    if input.read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_confirms() {
        let ask = |answer: &str| {
            let mut out = Vec::new();
            let yes = confirm("remove? [y/N] ", &mut answer.as_bytes(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), "remove? [y/N] ");
            yes
        };
        assert!(ask("y\n") && ask("YES\n") && ask(" yes "));
        assert!(!ask("\n") && !ask("n\n") && !ask("") && !ask("yep\n"));
    }

    #[test]
    fn the_list_shows_the_first_entries_and_counts_the_rest() {
        let root = Path::new("/st");
        let report = GcReport {
            removed: 22,
            paths: (0..22).map(|i| root.join("kmeans").join(format!("k{i}"))).collect(),
            ..Default::default()
        };
        let text = removal_list(&report, root);
        assert!(text.starts_with("gc will remove:\n  kmeans/k0\n"), "{text}");
        assert!(text.ends_with("  kmeans/k19\n  ... and 2 more\n"), "{text}");
    }
}
