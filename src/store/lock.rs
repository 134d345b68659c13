//! A per-key advisory file lock: two processes needing the same entry compute it once.
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Held while computing (or deleting) one entry; released on drop, also when the
/// process dies, since the OS drops advisory locks with the file descriptor.
pub struct KeyLock {
    _file: File,
    pub path: PathBuf,
}

impl KeyLock {
    pub fn acquire(path: &Path) -> std::io::Result<KeyLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        file.lock()?;
        Ok(KeyLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// A shared lock: held by runs reading an entry, so that `gc` (which needs the lock
    /// exclusively) leaves it alone; any number of readers may hold it at once.
    pub fn acquire_shared(path: &Path) -> std::io::Result<KeyLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        file.lock_shared()?;
        Ok(KeyLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// Takes the lock only if nobody holds it.
    pub fn try_acquire(path: &Path) -> std::io::Result<Option<KeyLock>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(KeyLock {
                _file: file,
                path: path.to_path_buf(),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
