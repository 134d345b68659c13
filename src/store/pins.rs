//! Pins: a run declares every key of its plan before it looks at the store, so that a
//! concurrent `gc` leaves alone the entries the run holds or is about to use.
//!
//! A run writes `<store>/pins/<pid>.<random>` (the keys, one per line) and holds an
//! exclusive lock on it until it ends; the OS drops the lock if the run dies, which marks
//! the file stale. Registration and `gc` exclude each other through `<store>/locks/gc.lock`
//! (runs take it shared, briefly; `gc` exclusively, for its whole scan and deletion), so a
//! run is either registered before `gc` reads the pins or waits until `gc` is done.
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use super::{Key, KeyLock, Store, StoreError};

/// Held for the whole run; dropping it removes the pin file.
pub struct Pins {
    file: Option<File>,
    path: PathBuf,
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        self.file.take();
    }
}

use super::entry::io_err as io;

impl Store {
    pub fn pins_dir(&self) -> PathBuf {
        self.root.join("pins")
    }

    pub fn gc_lock_path(&self) -> PathBuf {
        self.root.join("locks").join("gc.lock")
    }

    /// Pins `keys` for as long as the returned value lives. Waits while a `gc` runs.
    pub fn pin(&self, keys: impl IntoIterator<Item = Key>) -> Result<Pins, StoreError> {
        let gc_path = self.gc_lock_path();
        let _gc = KeyLock::acquire_shared(&gc_path).map_err(io(&gc_path))?;
        let dir = self.pins_dir();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let (file, path) = tempfile::Builder::new()
            .prefix(&format!("{}.", std::process::id()))
            .tempfile_in(&dir)
            .map_err(io(&dir))?
            .keep()
            .map_err(|e| StoreError::Io {
                path: dir.clone(),
                source: e.error,
            })?;
        let pins = Pins { file: Some(file), path };
        let mut f = pins.file.as_ref().ok_or_else(|| StoreError::Io {
            path: pins.path.clone(),
            source: std::io::Error::other("pin file vanished"),
        })?;
        f.lock().map_err(io(&pins.path))?;
        let mut text = String::new();
        for k in keys {
            text.push_str(&k.hex());
            text.push('\n');
        }
        f.write_all(text.as_bytes()).map_err(io(&pins.path))?;
        Ok(pins)
    }
}

/// The exclusive gc lock: no run registers pins while it is held.
pub(crate) fn lock_for_gc(store: &Store) -> Result<KeyLock, StoreError> {
    let p = store.gc_lock_path();
    KeyLock::acquire(&p).map_err(io(&p))
}

/// Keys pinned by live runs; pin files of dead runs are removed. Call under [`lock_for_gc`].
pub(crate) fn pinned_keys(store: &Store) -> Result<HashSet<Key>, StoreError> {
    let mut keys = HashSet::new();
    let Ok(rd) = std::fs::read_dir(store.pins_dir()) else {
        return Ok(keys);
    };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(f) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        match f.try_lock() {
            Ok(()) => {
                // Nobody holds it: the run is gone.
                let _ = std::fs::remove_file(&path);
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                keys.extend(text.lines().filter_map(Key::parse));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_live_while_held_and_stale_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let a = Key::of(&serde_json::json!({"a": 1}));
        let b = Key::of(&serde_json::json!({"b": 2}));
        let pins = store.pin([a, b]).unwrap();
        {
            let _gc = lock_for_gc(&store).unwrap();
            assert_eq!(pinned_keys(&store).unwrap(), HashSet::from([a, b]));
        }
        drop(pins);
        assert!(pinned_keys(&store).unwrap().is_empty());
        // A pin file nobody holds (its run was killed) is stale: ignored and removed.
        std::fs::write(store.pins_dir().join("123.dead"), format!("{}\n", a.hex())).unwrap();
        assert!(pinned_keys(&store).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(store.pins_dir()).unwrap().count(), 0);
    }
}
