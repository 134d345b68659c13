//! `ktlab verify`: re-executes a cached stage instance in a scratch folder, outside the
//! store, and compares its artefacts byte for byte with the stored entry, so that users
//! can find stages whose outputs are not deterministic.
use std::path::Path;

use super::runner::{execute, resolve_inputs, InputProblem};
use crate::plan::Plan;
use crate::stages::StageError;
use crate::store::{sha256_file, EntryState, KeyLock, Store};

/// One artefact compared.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtefactCheck {
    pub name: String,
    /// (bytes, sha256) of the stored artefact; `None` when only the re-execution made it.
    pub stored: Option<(u64, String)>,
    /// (bytes, sha256) of the re-executed one; `None` when it did not make it.
    pub recomputed: Option<(u64, String)>,
}

impl ArtefactCheck {
    pub fn matches(&self) -> bool {
        self.stored.is_some() && self.stored == self.recomputed
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not cached, corrupt, or an input missing: nothing to compare against (exit 2).
    #[error("{0}")]
    Unavailable(String),
    /// The re-execution itself failed.
    #[error("re-executing failed: {0}")]
    Stage(#[from] StageError),
    #[error("{0}")]
    Io(String),
}

/// Re-executes instance `idx` in `scratch` and compares with its store entry. The entry
/// and the inputs are held under shared locks meanwhile (so `gc` leaves them alone);
/// nothing under the store is written.
pub fn verify_instance(plan: &Plan, idx: usize, store: &Store, scratch: &Path) -> Result<Vec<ArtefactCheck>, VerifyError> {
    let inst = &plan.instances[idx];
    let label = inst.label();
    let _entry_lock = KeyLock::acquire_shared(&store.lock_path(&inst.key)).map_err(|e| VerifyError::Io(e.to_string()))?;
    let manifest = match store.state(inst.kind, &inst.key, true) {
        EntryState::Valid(m) => m,
        EntryState::Missing => {
            return Err(VerifyError::Unavailable(format!(
                "{label} ({} {}) is not in the store: run the experiment first",
                inst.kind.name(),
                inst.key.short()
            )))
        }
        EntryState::Corrupt(why) => {
            return Err(VerifyError::Unavailable(format!(
                "the store entry of {label} is corrupt ({why}): `ktlab run` recomputes it"
            )))
        }
    };
    let (inputs, _input_locks) = resolve_inputs(plan, inst, store, true).map_err(|p| match p {
        InputProblem::Lock { error, .. } => VerifyError::Io(error),
        InputProblem::Missing { name, label } => VerifyError::Unavailable(format!(
            "input `{name}` ({label}) is not in the store (or is corrupt): run the experiment first"
        )),
    })?;
    let workdir = scratch.join("entry");
    let checkpoints = scratch.join("checkpoints");
    std::fs::create_dir_all(&workdir).map_err(|e| VerifyError::Io(format!("{}: {e}", workdir.display())))?;
    // Without the decoded-image cache: the images decoded afresh.
    let outcome = execute(inst, &inputs, &workdir, &checkpoints, None, None, &|_| {})?.outcome;

    let mut checks: Vec<ArtefactCheck> = manifest
        .artefacts
        .iter()
        .map(|(name, art)| ArtefactCheck {
            name: name.clone(),
            stored: Some((art.bytes, art.sha256.clone())),
            recomputed: None,
        })
        .collect();
    for entry in walkdir::WalkDir::new(&workdir).sort_by_file_name() {
        let entry = entry.map_err(|e| VerifyError::Io(e.to_string()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&workdir)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
        let sha = sha256_file(entry.path()).map_err(|e| VerifyError::Io(format!("{}: {e}", entry.path().display())))?;
        match checks.iter_mut().find(|c| c.name == rel) {
            Some(c) => c.recomputed = Some((bytes, sha)),
            None => checks.push(ArtefactCheck {
                name: rel,
                stored: None,
                recomputed: Some((bytes, sha)),
            }),
        }
    }
    checks.sort_by(|a, b| a.name.cmp(&b.name));
    // The result rows live in the manifest: compare them too.
    if !manifest.metrics.is_empty() || !outcome.metrics.is_empty() {
        let digest = |rows: &[crate::stages::MetricRow]| {
            let bytes = serde_json::to_vec(rows).unwrap_or_default();
            (bytes.len() as u64, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)))
        };
        checks.push(ArtefactCheck {
            name: "(metrics)".into(),
            stored: Some(digest(&manifest.metrics)),
            recomputed: Some(digest(&outcome.metrics)),
        });
    }
    Ok(checks)
}

/// The report `ktlab verify` prints: one line per artefact.
pub fn render_checks(label: &str, key: &str, checks: &[ArtefactCheck]) -> String {
    use std::fmt::Write;
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(8).max(8);
    let mut out = format!("{label} ({key}): re-executed in a scratch folder\n");
    let short = |x: &Option<(u64, String)>| match x {
        Some((bytes, sha)) => format!("{bytes:>10} B  {}", &sha[..sha.len().min(12)]),
        None => format!("{:>10}    {:<12}", "-", "absent"),
    };
    for c in checks {
        let verdict = if c.matches() { "same" } else { "DIFFERS" };
        let _ = writeln!(
            out,
            "  {:<width$}  stored {}  now {}  {verdict}",
            c.name,
            short(&c.stored),
            short(&c.recomputed)
        );
    }
    let differ = checks.iter().filter(|c| !c.matches()).count();
    let _ = if differ == 0 {
        writeln!(out, "all {} artefacts identical", checks.len())
    } else {
        writeln!(
            out,
            "{differ} of {} artefacts differ: this stage is not deterministic",
            checks.len()
        )
    };
    out
}
