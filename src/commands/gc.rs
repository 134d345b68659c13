//! `ktlab gc`: removes the store entries that no experiment file references. With no
//! experiment file to keep entries for it refuses (it would empty the store); on a
//! terminal it lists what it will remove and asks first, unless `--yes`. Entries the
//! store's records say another experiment used are kept unless that experiment is named
//! (`--forget NAME`) or `--all-experiments` is given; listings name each entry's
//! experiments.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::session::{absolute, PlanOptions, Session};
use crate::cli::ExperimentArgs;
use crate::store::{GcReport, Key, Records, Store};
use crate::Error;

/// Listed before asking; the rest are counted.
const SHOWN: usize = 20;

/// Whose recorded entries, besides those no experiment used, gc may remove.
#[derive(Clone, Debug, Default)]
pub struct Others {
    /// Experiments (by name) whose recorded entries may go.
    pub forget: Vec<String>,
    /// Every other experiment's.
    pub all: bool,
}

pub fn gc(session: &Session, dry_run: bool, yes: bool, others: &Others, files: &[PathBuf]) -> Result<ExitCode, Error> {
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
    let (keep, named) = kept_keys(session, &files)?;
    let store = &session.store;
    let records = Records::load_all(store);
    for name in &others.forget {
        if !records.contains_key(name) {
            let recorded: Vec<&str> = records.keys().map(String::as_str).collect();
            return Err(Error::Usage(format!(
                "gc --forget {name}: the store has no records of an experiment named `{name}` (recorded: {})",
                if recorded.is_empty() {
                    "none".to_string()
                } else {
                    recorded.join(", ")
                }
            )));
        }
    }
    let owners = owners(&records);
    let spare: HashMap<Key, Vec<String>> = if others.all {
        HashMap::new()
    } else {
        owners
            .iter()
            .filter_map(|(key, who)| {
                let other: Vec<String> = who
                    .iter()
                    .filter(|e| !named.contains(*e) && !others.forget.contains(e))
                    .cloned()
                    .collect();
                (!other.is_empty()).then_some((*key, other))
            })
            .collect()
    };
    let kinds = crate::stages::StageKind::names();
    if !dry_run && !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let preview = crate::store::gc(store, &kinds, &keep, &spare, true)?;
        if preview.removed > 0 {
            eprint!("{}", removal_list(&preview, store, &owners));
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
    let report = crate::store::gc(store, &kinds, &keep, &spare, dry_run)?;
    if dry_run && report.removed > 0 && !session.reporter.is_quiet() {
        print!("{}", removal_list(&report, store, &owners));
    }
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
    if let Some(line) = spared_line(&report) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Each recorded key with the experiments that recorded it.
fn owners(records: &BTreeMap<String, Records>) -> HashMap<Key, Vec<String>> {
    let mut owners: HashMap<Key, Vec<String>> = HashMap::new();
    for (experiment, r) in records {
        for key in r.keys() {
            let who = owners.entry(key).or_default();
            if !who.contains(experiment) {
                who.push(experiment.clone());
            }
        }
    }
    owners
}

/// "kept 3 entries other experiments used: a (2), b (1); ..." (none when none were).
fn spared_line(report: &GcReport) -> Option<String> {
    if report.spared.is_empty() {
        return None;
    }
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, who) in &report.spared {
        for e in who {
            *per.entry(e).or_default() += 1;
        }
    }
    let each: Vec<String> = per.iter().map(|(e, n)| format!("{e} ({n})")).collect();
    Some(format!(
        "kept {} entries other experiments used: {}; `--forget NAME` or `--all-experiments` removes them",
        report.spared.len(),
        each.join(", ")
    ))
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
/// here, also the keys it last ran with. With the files' experiment names.
fn kept_keys(session: &Session, files: &[PathBuf]) -> Result<(HashSet<Key>, HashSet<String>), Error> {
    let mut keep = HashSet::new();
    let mut named = HashSet::new();
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
        named.insert(plan.experiment.clone());
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
    Ok((keep, named))
}

/// What a gc will remove, one path (relative to the store) a line with the experiments
/// recorded to have used it, the first [`SHOWN`].
fn removal_list(report: &GcReport, store: &Store, owners: &HashMap<Key, Vec<String>>) -> String {
    let root = &store.root;
    let mut out = String::from("gc will remove:\n");
    for p in report.paths.iter().take(SHOWN) {
        let key = p
            .file_name()
            .and_then(|n| n.to_string_lossy().split('.').next().and_then(Key::parse));
        let whose = if p.starts_with(store.tmp_dir()) {
            "a work folder left by an interrupted run".to_string()
        } else if p.starts_with(store.checkpoints_dir()) {
            "checkpoints of an unfinished training".to_string()
        } else if p.starts_with(store.tensorboard_root()) {
            "TensorBoard event files of a training".to_string()
        } else {
            match key.and_then(|k| owners.get(&k)) {
                Some(who) => format!("used by {}", who.join(", ")),
                None => "no experiment recorded it".to_string(),
            }
        };
        out.push_str(&format!("  {} ({whose})\n", p.strip_prefix(root).unwrap_or(p).display()));
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
        let store = Store::new("/st");
        let key = |i: u8| Key::parse(&format!("{i:02x}").repeat(32)).unwrap();
        let mut paths: Vec<PathBuf> = (0..22).map(|i| store.root.join("kmeans").join(key(i).hex())).collect();
        paths[1] = store.tmp_dir().join(format!("{}.x1Yz2a", key(1).hex()));
        paths[2] = store.tensorboard_dir("train", &key(2));
        let report = GcReport {
            removed: 22,
            paths,
            ..Default::default()
        };
        let owners = HashMap::from([(key(0), vec!["a".to_string(), "b".to_string()])]);
        let text = removal_list(&report, &store, &owners);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "gc will remove:");
        assert_eq!(lines[1], format!("  kmeans/{} (used by a, b)", key(0).hex()));
        assert_eq!(
            lines[2],
            format!("  tmp/{}.x1Yz2a (a work folder left by an interrupted run)", key(1).hex())
        );
        assert_eq!(
            lines[3],
            format!("  tensorboard/train/{} (TensorBoard event files of a training)", key(2).hex())
        );
        assert_eq!(lines[20], format!("  kmeans/{} (no experiment recorded it)", key(19).hex()));
        assert_eq!(lines[21], "  ... and 2 more");
        assert_eq!(lines.len(), 22);
    }
}
