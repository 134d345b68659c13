//! A results folder replaced as one unit: its new contents are written into a hidden
//! folder beside it (`.<name>.new-XXXXXX`) and switched in with one rename, so that a
//! reader sees the old folder or the new one, never a mix, and a writer killed at any
//! moment leaves one of them complete; the next writer removes what a killed one left.
//!
//! Files in the folder that ktlab does not write (a `run.txt` a script put there, notes)
//! are carried into the new folder. ktlab's own files are not carried: results.csv,
//! results.md, experiment.toml, provenance.json, decisions.md and .csv, the training curves, `curves/`,
//! tensorboard.txt, index.html, and the `<table>.csv/.md/.tex/.svg/.png` files of the tables the old
//! provenance.json names (a table the experiment no longer has goes with the old folder).
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::html::INDEX_HTML;
use super::tensorboard::TENSORBOARD_LIST;
use super::write::CURVES_DIR;
use crate::plan::TRAINING_CURVES;

/// Infix of the folder being written, and (where the two folders cannot be exchanged
/// in one step) of the old folder moved aside.
const NEW: &str = ".new-";
const OLD: &str = ".old-";

/// The new contents of `<root>/<name>/`, written beside it until [`StagedFolder::commit`].
/// Holds an exclusive lock on `root` (released by the OS if the process dies), so that
/// one writer at a time stages and switches, and a writer that takes the lock knows every
/// leftover it finds is a killed writer's. Dropped without commit, the staging folder is
/// removed and the folder stays as it was.
pub struct StagedFolder {
    /// The results folder as the user names it (`<root>/<name>`).
    shown: PathBuf,
    /// Where it really is: beside a folder that `<root>/<name>` links to, if it does.
    root: PathBuf,
    name: String,
    staging: PathBuf,
    _lock: File,
    committed: bool,
}

impl StagedFolder {
    /// Locks `root`, removes the leftovers of killed writers of `name` (putting back an
    /// old folder a killed writer had moved aside) and opens a fresh staging folder.
    pub fn begin(root: &Path, name: &str) -> io::Result<StagedFolder> {
        std::fs::create_dir_all(root)?;
        let shown = root.join(name);
        // A results folder that is a link to a folder elsewhere: that folder is replaced.
        let linked = std::fs::symlink_metadata(&shown).is_ok_and(|m| m.file_type().is_symlink());
        let real = if linked { std::fs::canonicalize(&shown).ok() } else { None };
        let (root, name) = match real.as_deref().and_then(|r| Some((r.parent()?, r.file_name()?.to_str()?))) {
            Some((r, n)) => (r.to_path_buf(), n.to_string()),
            None => (root.to_path_buf(), name.to_string()),
        };
        let (root, name) = (root.as_path(), name.as_str());
        let lock = File::open(root)?;
        // A filesystem without locks on folders: still one unit, only two writers of one
        // folder at once could remove each other's staging folder.
        if let Err(e) = lock.lock() {
            tracing::warn!("cannot lock {} ({e}); writing without the lock", root.display());
        }
        remove_leftovers(root, name)?;
        let staging = crate::store::new_folder(root, &format!(".{name}{NEW}"))?;
        Ok(StagedFolder {
            shown,
            root: root.to_path_buf(),
            name: name.to_string(),
            staging,
            _lock: lock,
            committed: false,
        })
    }

    /// Where to write the new contents.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The results folder itself (`<root>/<name>`).
    pub fn dir(&self) -> PathBuf {
        self.shown.clone()
    }

    /// The folder replaced: `dir()`, or the folder it links to.
    fn real_dir(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    /// `p`, written under the staging folder, as it is named once committed.
    pub fn final_path(&self, p: &Path) -> PathBuf {
        match p.strip_prefix(&self.staging) {
            Ok(rel) => self.dir().join(rel),
            Err(_) => p.to_path_buf(),
        }
    }

    /// Carries the old folder's foreign files over, then switches the staging folder in
    /// (one exchange of the two names where the filesystem offers it) and removes the old
    /// contents. Returns the results folder.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let dir = self.real_dir();
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {
                carry_foreign_files(&dir, &self.staging)?;
                sync_tree(&self.staging);
                if exchange(&self.staging, &dir)? {
                    // The staging name now holds the old contents.
                    self.committed = true;
                    remove_quietly(&self.staging);
                } else {
                    let old = self.root.join(format!(".{}{OLD}{}", self.name, suffix(&self.staging)));
                    std::fs::rename(&dir, &old)?;
                    if let Err(e) = std::fs::rename(&self.staging, &dir) {
                        let _ = std::fs::rename(&old, &dir);
                        return Err(e);
                    }
                    self.committed = true;
                    remove_quietly(&old);
                }
            }
            _ => {
                sync_tree(&self.staging);
                std::fs::rename(&self.staging, &dir)?;
                self.committed = true;
            }
        }
        if let Ok(d) = File::open(&self.root) {
            let _ = d.sync_all();
        }
        Ok(self.dir())
    }
}

impl Drop for StagedFolder {
    fn drop(&mut self) {
        if !self.committed {
            remove_quietly(&self.staging);
        }
    }
}

/// The random part of a staging folder's name (`.<name>.new-<suffix>`).
fn suffix(staging: &Path) -> String {
    let name = staging.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.rsplit(NEW).next().unwrap_or_default().to_string()
}

/// A leftover of a writer of `name`: `.<name>.new-XXXXXX` or `.<name>.old-XXXXXX`.
fn leftover_kind(file_name: &str, name: &str) -> Option<&'static str> {
    let rest = file_name.strip_prefix('.')?.strip_prefix(name)?;
    [NEW, OLD].into_iter().find(|infix| {
        rest.strip_prefix(infix)
            .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
    })
}

/// Removes the staging and moved-aside folders of killed writers of `name`. A writer
/// killed between moving the old folder aside and renaming the new one in left no
/// folder at all: the old one is put back first.
fn remove_leftovers(root: &Path, name: &str) -> io::Result<()> {
    let mut new = Vec::new();
    let mut old = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        match leftover_kind(&file_name, name) {
            Some(NEW) => new.push(entry.path()),
            Some(_) => old.push(entry.path()),
            None => {}
        }
    }
    let dir = root.join(name);
    if std::fs::symlink_metadata(&dir).is_err() {
        if let Some(back) = old.pop() {
            std::fs::rename(&back, &dir)?;
        }
    }
    for p in new.iter().chain(&old) {
        tracing::info!("removing {} (left by an interrupted write)", p.display());
        remove_quietly(p);
    }
    Ok(())
}

/// Swaps the two folders' names in one step (Linux `renameat2(RENAME_EXCHANGE)`); false
/// where the system or filesystem cannot, and the caller falls back on two renames.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are NUL-terminated paths that live across the call.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::ENOTSUP) => Ok(false),
        _ => Err(err),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<bool> {
    Ok(false)
}

/// The names ktlab writes into a results folder, given the tables of its provenance.json.
fn written_by_ktlab(file_name: &str, tables: &[String]) -> bool {
    const FIXED: &[&str] = &[
        "results.csv",
        "results.md",
        "experiment.toml",
        "provenance.json",
        "decisions.md",
        "decisions.csv",
        CURVES_DIR,
        TENSORBOARD_LIST,
        INDEX_HTML,
    ];
    if FIXED.contains(&file_name) || file_name.starts_with(".tmp") {
        return true;
    }
    match file_name.rsplit_once('.') {
        Some((stem, ext)) if ["csv", "md", "tex", "svg", "png"].contains(&ext) => {
            stem == TRAINING_CURVES || tables.iter().any(|t| t == stem)
        }
        _ => false,
    }
}

/// Table names listed in a results folder's provenance.json (none if it has none).
fn provenance_tables(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("provenance.json")) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    json["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(String::from))
        .collect()
}

/// Copies into `to` every entry of `from` that ktlab does not write and `to` lacks
/// (hard links where possible: nothing is duplicated on disk).
fn carry_foreign_files(from: &Path, to: &Path) -> io::Result<()> {
    let tables = provenance_tables(from);
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let target = to.join(entry.file_name());
        if written_by_ktlab(&file_name, &tables) || std::fs::symlink_metadata(&target).is_ok() {
            continue;
        }
        copy_tree(&entry.path(), &target)?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.is_dir() {
        std::fs::create_dir(to)?;
        std::fs::set_permissions(to, meta.permissions())?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if meta.file_type().is_symlink() {
        #[cfg(unix)]
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
    } else if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)?;
    }
    Ok(())
}

/// Flushes the new folder's files before it is switched in: after a crash of the
/// machine, the folder under the results name is complete too.
fn sync_tree(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if let Ok(f) = File::open(entry.path()) {
            let _ = f.sync_all();
        }
    }
}

fn remove_quietly(p: &Path) {
    if let Err(e) = std::fs::remove_dir_all(p) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", p.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = walkdir::WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .flatten()
            .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn leftovers_are_recognised_by_name_only() {
        assert_eq!(leftover_kind(".exp.new-a1B2c3", "exp"), Some(NEW));
        assert_eq!(leftover_kind(".exp.old-a1B2c3", "exp"), Some(OLD));
        assert_eq!(leftover_kind(".exp.new-", "exp"), None);
        assert_eq!(leftover_kind(".exp2.new-abcdef", "exp"), None);
        assert_eq!(leftover_kind("exp.new-abcdef", "exp"), None);
        assert_eq!(leftover_kind(".exp.new-ab/cd", "exp"), None);
    }

    #[test]
    fn ktlab_files_are_replaced_and_foreign_ones_carried() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("exp");
        write(&dir.join("results.csv"), "old");
        write(&dir.join("gone_table.csv"), "old table");
        write(&dir.join("gone_table.png"), "old plot");
        write(&dir.join("provenance.json"), r#"{"tables": [{"name": "gone_table"}]}"#);
        write(&dir.join("curves/train.csv"), "old curve");
        write(&dir.join("tensorboard.txt"), "old event folders");
        write(&dir.join("run.txt"), "wall_seconds: 12");
        write(&dir.join("notes/a.md"), "mine");
        write(&dir.join(".tmpAbC123"), "half a file");
        let staged = StagedFolder::begin(root.path(), "exp").unwrap();
        write(&staged.path().join("results.csv"), "new");
        write(&staged.path().join("t.csv"), "new table");
        assert_eq!(staged.final_path(&staged.path().join("t.csv")), dir.join("t.csv"));
        // Until the commit, the old folder is untouched.
        assert_eq!(std::fs::read_to_string(dir.join("results.csv")).unwrap(), "old");
        assert_eq!(staged.commit().unwrap(), dir);
        assert_eq!(listing(&dir), ["notes", "notes/a.md", "results.csv", "run.txt", "t.csv"]);
        assert_eq!(std::fs::read_to_string(dir.join("results.csv")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(dir.join("run.txt")).unwrap(), "wall_seconds: 12");
        let hidden: Vec<String> = listing(root.path()).into_iter().filter(|n| n.starts_with('.')).collect();
        assert!(hidden.is_empty(), "{hidden:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_results_folder_that_links_elsewhere_is_replaced_there() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let real = elsewhere.path().join("big-disk-exp");
        write(&real.join("results.csv"), "old");
        std::os::unix::fs::symlink(&real, root.path().join("exp")).unwrap();
        let staged = StagedFolder::begin(root.path(), "exp").unwrap();
        write(&staged.path().join("results.csv"), "new");
        assert_eq!(staged.commit().unwrap(), root.path().join("exp"));
        assert!(std::fs::symlink_metadata(root.path().join("exp")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(real.join("results.csv")).unwrap(), "new");
        assert_eq!(listing(elsewhere.path()), ["big-disk-exp", "big-disk-exp/results.csv"]);
    }

    #[test]
    fn a_dropped_write_leaves_the_folder_and_the_next_cleans_up_killed_ones() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("exp");
        write(&dir.join("results.csv"), "old");
        {
            let staged = StagedFolder::begin(root.path(), "exp").unwrap();
            write(&staged.path().join("results.csv"), "never");
        }
        assert_eq!(listing(root.path()), ["exp", "exp/results.csv"]);
        // A killed writer's staging folder, and one killed after moving the old folder
        // aside (no folder under the name): the old one comes back, the rest goes.
        write(&root.path().join(".exp.new-Xy12ab/results.csv"), "half");
        std::fs::rename(&dir, root.path().join(".exp.old-Qw34er")).unwrap();
        write(&root.path().join(".other.new-abcdef/x"), "another experiment's");
        let staged = StagedFolder::begin(root.path(), "exp").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("results.csv")).unwrap(), "old");
        let names: Vec<String> = listing(root.path()).into_iter().filter(|n| !n.contains('/')).collect();
        let staging = staged.path().file_name().unwrap().to_string_lossy().into_owned();
        let mut expected = vec![".other.new-abcdef".to_string(), staging, "exp".into()];
        expected.sort();
        assert_eq!(names, expected);
    }
}
