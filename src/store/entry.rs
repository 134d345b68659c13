//! Store entries: lookup with verification, and publication of a finished work folder
//! by one atomic rename.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Artefact, Key, KeyLock, Manifest};

/// A store operation that failed, with the path and the operating system's reason.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store {}", path.display())]
    Walk {
        path: PathBuf,
        #[source]
        source: walkdir::Error,
    },
    #[error("store {}: cannot encode the manifest", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the store needs of a stage kind: the name of its folder (`<store>/<kind>/<key>`).
pub trait KindName: Copy {
    fn kind_name(&self) -> &str;
}

impl KindName for &str {
    fn kind_name(&self) -> &str {
        self
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pub root: PathBuf,
}

#[derive(Debug)]
pub enum EntryState {
    Missing,
    Valid(Box<Manifest>),
    /// Present but not to be trusted; the reason says why.
    Corrupt(String),
}

/// A work folder for an entry being computed. Dropped without `publish`, it is removed.
pub struct PendingEntry {
    pub dir: PathBuf,
    published: bool,
}

impl Drop for PendingEntry {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn entry_dir(&self, kind: impl KindName, key: &Key) -> PathBuf {
        self.root.join(kind.kind_name()).join(key.hex())
    }

    pub fn lock_path(&self, key: &Key) -> PathBuf {
        self.root.join("locks").join(format!("{}.lock", key.hex()))
    }

    /// Checkpoints of a training stage in progress: keyed, so a re-run resumes them.
    pub fn checkpoint_dir(&self, key: &Key) -> PathBuf {
        self.checkpoints_dir().join(key.hex())
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn lock(&self, key: &Key) -> Result<KeyLock, StoreError> {
        let p = self.lock_path(key);
        KeyLock::acquire(&p).map_err(io_err(&p))
    }

    /// The manifests of every valid entry of `kind` (checked cheaply, as [`Store::state`]
    /// without `deep`), in key order: the store's history of a kind.
    pub fn manifests(&self, kind: impl KindName) -> Vec<Manifest> {
        let Ok(dir) = std::fs::read_dir(self.root.join(kind.kind_name())) else {
            return Vec::new();
        };
        let mut keys: Vec<Key> = dir
            .filter_map(Result::ok)
            .filter_map(|e| Key::parse(e.file_name().to_str()?))
            .collect();
        keys.sort_by_key(|k| k.hex());
        keys.iter()
            .filter_map(|k| match self.state(kind, k, false) {
                EntryState::Valid(m) => Some(*m),
                _ => None,
            })
            .collect()
    }

    /// The state of an entry. `deep` re-hashes every artefact; otherwise only the
    /// manifest and the artefacts' sizes are checked.
    pub fn state(&self, kind: impl KindName, key: &Key, deep: bool) -> EntryState {
        let dir = self.entry_dir(kind, key);
        if !dir.exists() {
            return EntryState::Missing;
        }
        let manifest: Manifest = match std::fs::read(dir.join("manifest.json"))
            .map_err(|e| e.to_string())
            .and_then(|b| check_manifest_digest(&dir, &b).map(|_| b))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => return EntryState::Corrupt(format!("manifest.json: {e}")),
        };
        if manifest.key != key.hex() {
            return EntryState::Corrupt(format!("manifest names key {} instead", manifest.key));
        }
        for (name, art) in &manifest.artefacts {
            let path = dir.join(name);
            match std::fs::metadata(&path) {
                Ok(m) if m.len() == art.bytes => {}
                Ok(m) => return EntryState::Corrupt(format!("{name}: {} bytes, manifest says {}", m.len(), art.bytes)),
                Err(e) => return EntryState::Corrupt(format!("{name}: {e}")),
            }
            if deep {
                match sha256_file(&path) {
                    Ok(h) if h == art.sha256 => {}
                    Ok(_) => return EntryState::Corrupt(format!("{name}: checksum mismatch")),
                    Err(e) => return EntryState::Corrupt(format!("{name}: {e}")),
                }
            }
        }
        EntryState::Valid(Box::new(manifest))
    }

    /// Creates a fresh work folder for computing `key`.
    pub fn pending(&self, key: &Key) -> Result<PendingEntry, StoreError> {
        let tmp = self.tmp_dir();
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let dir = super::new_folder(&tmp, &format!("{}.", key.hex())).map_err(io_err(&tmp))?;
        Ok(PendingEntry { dir, published: false })
    }

    /// Checksums the work folder, writes the manifest, syncs, and renames the folder
    /// into place. Any existing (corrupt) entry is moved aside first.
    pub fn publish(
        &self,
        mut pending: PendingEntry,
        kind: impl KindName,
        key: &Key,
        mut manifest: Manifest,
    ) -> Result<PathBuf, StoreError> {
        let mut artefacts = BTreeMap::new();
        for entry in walkdir::WalkDir::new(&pending.dir).sort_by_file_name() {
            let entry = entry.map_err(|source| StoreError::Walk {
                path: pending.dir.clone(),
                source,
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(&pending.dir)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .into_owned();
            if rel == "manifest.json" || rel == MANIFEST_DIGEST {
                continue;
            }
            let bytes = entry
                .metadata()
                .map_err(|source| StoreError::Walk {
                    path: entry.path().to_path_buf(),
                    source,
                })?
                .len();
            let sha256 = sha256_file(entry.path()).map_err(io_err(entry.path()))?;
            sync_file(entry.path()).map_err(io_err(entry.path()))?;
            artefacts.insert(rel, Artefact { sha256, bytes });
        }
        manifest.artefacts = artefacts;
        let mpath = pending.dir.join("manifest.json");
        let text = serde_json::to_vec_pretty(&manifest).map_err(|source| StoreError::Encode {
            path: mpath.clone(),
            source,
        })?;
        let digest = hex::encode(Sha256::digest(&text));
        std::fs::write(&mpath, text).map_err(io_err(&mpath))?;
        sync_file(&mpath).map_err(io_err(&mpath))?;
        // The manifest carries the metrics the report reads: it is checksummed too.
        let dpath = pending.dir.join(MANIFEST_DIGEST);
        std::fs::write(&dpath, format!("{digest}\n")).map_err(io_err(&dpath))?;
        sync_file(&dpath).map_err(io_err(&dpath))?;
        sync_dir(&pending.dir);
        let dest = self.entry_dir(kind, key);
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        if dest.exists() {
            self.discard(&dest)?;
        }
        std::fs::rename(&pending.dir, &dest).map_err(io_err(&dest))?;
        sync_dir(&parent);
        pending.published = true;
        Ok(dest)
    }

    /// Moves an entry out of the way (atomically), then deletes it.
    pub fn discard(&self, dir: &Path) -> Result<(), StoreError> {
        let tmp = self.tmp_dir();
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let trash = tmp.join(format!("discard.{name}.{}", std::process::id()));
        std::fs::rename(dir, &trash).map_err(io_err(dir))?;
        // Out of the way is what matters; a concurrent gc may be removing the trash too.
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!("cannot remove {}: {e}", trash.display());
        }
        Ok(())
    }
}

/// Beside `manifest.json`: the SHA-256 of its bytes, so that a damaged manifest (and
/// with it a damaged metric) is detected even when no artefact is re-hashed.
pub const MANIFEST_DIGEST: &str = "manifest.sha256";

fn check_manifest_digest(dir: &Path, manifest: &[u8]) -> Result<(), String> {
    let stored = std::fs::read_to_string(dir.join(MANIFEST_DIGEST)).map_err(|e| format!("{MANIFEST_DIGEST}: {e}"))?;
    if stored.trim() == hex::encode(Sha256::digest(manifest)) {
        Ok(())
    } else {
        Err("checksum mismatch".to_string())
    }
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

fn sync_dir(path: &Path) {
    if let Ok(d) = std::fs::File::open(path) {
        let _ = d.sync_all();
    }
}
