//! Garbage collection: removes entries that no given plan references, and none that
//! another experiment is recorded to have used, unless asked to; with an entry go its
//! TensorBoard event files.
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::{Key, KeyLock, Store, StoreError};

#[derive(Debug, Default)]
pub struct GcReport {
    pub removed: usize,
    pub kept: usize,
    /// Entries skipped because a run holds their lock.
    pub busy: usize,
    pub bytes: u64,
    /// What was removed (or, in a dry run, would be), in the order of removal.
    pub paths: Vec<PathBuf>,
    /// Entries kept because another experiment used them, with those experiments.
    pub spared: Vec<(PathBuf, Vec<String>)>,
}

/// Removes every entry of the `kinds` folders (and every stale work folder) whose key is
/// not in `keep` nor in `spare` (keys other experiments used, with their names: kept and
/// listed in [`GcReport::spared`]). An entry whose lock is held (a run is computing or
/// reading it) or that a live run has pinned (it is about to use it) is left alone.
pub fn gc(
    store: &Store,
    kinds: &[&str],
    keep: &HashSet<Key>,
    spare: &HashMap<Key, Vec<String>>,
    dry_run: bool,
) -> Result<GcReport, StoreError> {
    let mut report = GcReport::default();
    // No run registers its pins while this is held; live runs' keys are left alone.
    let _gc = super::pins::lock_for_gc(store)?;
    let pinned = super::pins::pinned_keys(store)?;
    let mut candidates = Vec::new();
    for kind in kinds {
        let dir = store.root.join(kind);
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            match Key::parse(&name) {
                Some(k) if keep.contains(&k) => report.kept += 1,
                Some(k) => match spare.get(&k) {
                    Some(who) => report.spared.push((e.path(), who.clone())),
                    None => candidates.push((Some(k), e.path())),
                },
                None => {}
            }
        }
    }
    // Work folders of killed runs, and checkpoints of trainings nobody will resume.
    if let Ok(rd) = std::fs::read_dir(store.tmp_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let key = name.split('.').next().and_then(Key::parse);
            candidates.push((key, e.path()));
        }
    }
    if let Ok(rd) = std::fs::read_dir(store.checkpoints_dir()) {
        for e in rd.flatten() {
            match Key::parse(&e.file_name().to_string_lossy()) {
                Some(k) if keep.contains(&k) => {}
                key => candidates.push((key, e.path())),
            }
        }
    }
    // Decoded-image caches: any run re-creates one it needs (a stage that has one mapped
    // keeps reading it after its file is removed).
    if let Ok(rd) = std::fs::read_dir(store.decoded_dir()) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "u8") {
                candidates.push((None, e.path()));
            }
        }
    }
    // TensorBoard event files go with their entry, and with a training nobody will resume.
    for kind in kinds {
        let Ok(rd) = std::fs::read_dir(store.tensorboard_root().join(kind)) else {
            continue;
        };
        for e in rd.flatten() {
            match Key::parse(&e.file_name().to_string_lossy()) {
                Some(k) if keep.contains(&k) || spare.contains_key(&k) => {}
                key => candidates.push((key, e.path())),
            }
        }
    }
    for (key, path) in candidates {
        if key.is_some_and(|k| pinned.contains(&k)) {
            report.busy += 1;
            continue;
        }
        let _lock = match key {
            Some(k) => match KeyLock::try_acquire(&store.lock_path(&k)) {
                Ok(Some(l)) => Some(l),
                Ok(None) => {
                    report.busy += 1;
                    continue;
                }
                Err(source) => {
                    return Err(StoreError::Io {
                        path: store.lock_path(&k),
                        source,
                    })
                }
            },
            None => None,
        };
        // A published entry may have appeared for a kept key while we waited. A work
        // folder whose key's lock is free is a killed run's, kept key or not.
        let work = path.starts_with(store.tmp_dir());
        if !work && key.is_some_and(|k| keep.contains(&k)) {
            continue;
        }
        report.bytes += dir_size(&path);
        report.removed += 1;
        report.paths.push(path.clone());
        if !dry_run {
            if path.starts_with(store.decoded_dir()) {
                let _ = std::fs::remove_file(&path);
            } else if [store.tmp_dir(), store.checkpoints_dir(), store.tensorboard_root()]
                .iter()
                .any(|d| path.starts_with(d))
            {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                store.discard(&path)?;
            }
        }
    }
    Ok(report)
}

/// Removes the work folders under `<store>/tmp` whose key's lock is free: a run that is
/// computing a key holds its lock, so these are what killed runs left. Returns how many.
pub fn remove_stale_work_folders(store: &Store) -> usize {
    let Ok(rd) = std::fs::read_dir(store.tmp_dir()) else { return 0 };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(key) = name.split('.').next().and_then(Key::parse) else {
            continue;
        };
        if let Ok(Some(_lock)) = KeyLock::try_acquire(&store.lock_path(&key)) {
            if std::fs::remove_dir_all(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

fn dir_size(path: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
