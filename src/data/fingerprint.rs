//! Dataset fingerprints: a SHA-256 that changes whenever the data a split reads changes,
//! so that results computed from it can be cached and invalidated safely.
//!
//! * Synthetic splits hash their parameters and the generator version.
//! * File-based splits hash, for every file the split reads (in dataset order), its path
//!   relative to the split folder (image folder) or dataset root (CIFAR-10 binary) and
//!   either its size and modification time ([`FingerprintMode::Metadata`]: cheap, but
//!   changes on a mere `touch` or copy) or the SHA-256 of its bytes
//!   ([`FingerprintMode::Contents`]: stable across copies).
//!
//! Contents are the default identity everywhere (plans, runs, `ktlab datasets`): anyone
//! with the same files computes the same keys. Content hashes are cached in a directory,
//! keyed by path, size and modification time (nanoseconds), so re-fingerprinting
//! unchanged files costs one `stat` each. As with any such cache, a file rewritten with
//! the same size and an identical timestamp is not noticed: [`Cache::Refresh`] (the
//! command line's `--verify-data`) hashes every file again and rewrites the cache.
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cifar_binary::{self, META_FILE};
use super::image_folder::list_split;
use super::source::synthetic_split_len;
use super::synthetic::SYNTHETIC_VERSION;
use super::{DataError, DatasetFormat, DatasetSpec};

/// What a file-based fingerprint reads of every file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FingerprintMode {
    /// Size and modification time: no file is read, but a copy or a mere `touch`
    /// changes it, so keys are not portable between machines.
    Metadata,
    /// SHA-256 of the bytes (cached): portable keys.
    #[default]
    Contents,
}

impl FingerprintMode {
    pub fn name(self) -> &'static str {
        match self {
            FingerprintMode::Metadata => "metadata",
            FingerprintMode::Contents => "contents",
        }
    }

    /// The mode a name on the command line means.
    pub fn from_name(name: &str) -> Option<FingerprintMode> {
        [FingerprintMode::Contents, FingerprintMode::Metadata]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// How [`FingerprintMode::Contents`] uses its cache of content hashes.
#[derive(Clone, Copy, Debug)]
pub enum Cache<'a> {
    /// No cache: every file is hashed.
    None,
    /// Reuse the hashes of files whose size and modification time are unchanged.
    Use(&'a Path),
    /// Hash every file again and rewrite the cache with the results.
    Refresh(&'a Path),
}

impl<'a> Cache<'a> {
    fn dir(self) -> Option<&'a Path> {
        match self {
            Cache::None => None,
            Cache::Use(dir) | Cache::Refresh(dir) => Some(dir),
        }
    }
}

/// Version of the fingerprint encoding itself; bump if the hashed fields change.
const FINGERPRINT_VERSION: u32 = 1;
const CACHE_VERSION: u32 = 1;

/// The hex SHA-256 fingerprint of one split. `cache_dir` (created if missing) caches
/// content hashes; it is only used in [`FingerprintMode::Contents`].
pub fn fingerprint(spec: &DatasetSpec, split: &str, mode: FingerprintMode, cache_dir: Option<&Path>) -> Result<String, DataError> {
    fingerprint_with(spec, split, mode, cache_dir.map_or(Cache::None, Cache::Use))
}

/// [`fingerprint`] with the cache used as `cache` says.
pub fn fingerprint_with(spec: &DatasetSpec, split: &str, mode: FingerprintMode, cache: Cache) -> Result<String, DataError> {
    Ok(fingerprint_counted(spec, split, mode, cache)?.0)
}

/// The fingerprint and, where the fingerprint listed them anyway, the number of images
/// (so that a subset checks its range without listing its parent a second time).
fn fingerprint_counted(spec: &DatasetSpec, split: &str, mode: FingerprintMode, cache: Cache) -> Result<(String, Option<usize>), DataError> {
    let mut h = Sha256::new();
    h.update(b"ktlab-dataset-fingerprint\0");
    h.update(FINGERPRINT_VERSION.to_le_bytes());
    field(&mut h, spec.format.name().as_bytes());
    let (base, classes, files) = match &spec.format {
        DatasetFormat::Synthetic { image_size, seed, splits } => {
            // Fully determined by the parameters: the same in both modes.
            let len = synthetic_split_len(&spec.name, splits, split)?;
            h.update(SYNTHETIC_VERSION.to_le_bytes());
            h.update((*image_size as u64).to_le_bytes());
            h.update(seed.to_le_bytes());
            field(&mut h, split.as_bytes());
            h.update((len as u64).to_le_bytes());
            return Ok((hex::encode(h.finalize()), Some(len)));
        }
        DatasetFormat::Subset { of, seed, splits } => {
            // The parent split's fingerprint (same mode) and which of its images.
            let part = super::source::subset_split(&spec.name, splits, split)?;
            let (parent, count) = fingerprint_counted(of, &part.split, mode, cache)?;
            // The parent split must be large enough, before anything runs.
            let parent_len = match count {
                Some(n) => n,
                None => super::open_split(of, &part.split)?.len(),
            };
            super::subset::subset_indices(&spec.name, split, parent_len, *seed, part)?;
            h.update(super::SUBSET_VERSION.to_le_bytes());
            field(&mut h, parent.as_bytes());
            h.update(seed.to_le_bytes());
            h.update((part.skip as u64).to_le_bytes());
            h.update((part.take as u64).to_le_bytes());
            return Ok((hex::encode(h.finalize()), Some(part.take)));
        }
        DatasetFormat::ImageFolder { root } => {
            let listing = list_split(&spec.name, root, split)?;
            (listing.split_dir, listing.classes, listing.files)
        }
        DatasetFormat::Cifar10Binary { root } => {
            let mut files: Vec<PathBuf> = cifar_binary::split_files(&spec.name, split)?.iter().map(PathBuf::from).collect();
            // The class names come from the meta file when it exists.
            let meta = root.join(META_FILE);
            match fs::metadata(&meta) {
                Ok(_) => files.push(PathBuf::from(META_FILE)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&meta, e)),
            }
            (root.clone(), Vec::new(), files)
        }
    };
    field(&mut h, mode.name().as_bytes());
    field(&mut h, split.as_bytes());
    h.update((classes.len() as u64).to_le_bytes());
    for class in &classes {
        field(&mut h, class.as_bytes());
    }
    h.update((files.len() as u64).to_le_bytes());

    let stats = stat_all(&base, &files)?;
    match mode {
        FingerprintMode::Metadata => {
            for (rel, stat) in files.iter().zip(&stats) {
                field(&mut h, rel.as_os_str().as_encoded_bytes());
                h.update(stat.size.to_le_bytes());
                h.update(stat.mtime_ns.to_le_bytes());
            }
        }
        FingerprintMode::Contents => {
            let digests = content_hashes(spec.format.name(), split, &base, &files, &stats, cache)?;
            for (rel, digest) in files.iter().zip(&digests) {
                field(&mut h, rel.as_os_str().as_encoded_bytes());
                h.update(digest);
            }
        }
    }
    // An image folder's files are its images; binary batches hold many images per file.
    let count = matches!(spec.format, DatasetFormat::ImageFolder { .. }).then_some(files.len());
    Ok((hex::encode(h.finalize()), count))
}

/// Hashes a length-prefixed byte string, so that consecutive fields cannot run together.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn io_error(path: &Path, e: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime_ns: i64,
}

fn stat_all(base: &Path, files: &[PathBuf]) -> Result<Vec<Stat>, DataError> {
    files
        .par_iter()
        .map(|rel| {
            let path = base.join(rel);
            let meta = fs::metadata(&path).map_err(|e| io_error(&path, e))?;
            if !meta.is_file() {
                return Err(DataError::Io {
                    path,
                    message: "not a regular file".to_string(),
                });
            }
            let modified = meta.modified().map_err(|e| io_error(&path, e))?;
            Ok(Stat {
                size: meta.len(),
                mtime_ns: unix_nanos(modified),
            })
        })
        .collect()
}

/// Nanoseconds since the Unix epoch (negative before it), saturating.
fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

fn hash_file(path: &Path) -> Result<[u8; 32], DataError> {
    let mut file = fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path, e)),
        }
    }
    Ok(h.finalize().into())
}

/// The on-disk content-hash cache of one split: relative path -> (size, mtime, hash).
#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    /// The folder the paths are relative to, for humans.
    base: String,
    entries: IndexMap<String, CacheEntry>,
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
struct CacheEntry {
    size: u64,
    mtime_ns: i64,
    sha256: String,
}

/// One cache file per (format, absolute base folder, split).
fn cache_path(cache_dir: &Path, format: &str, base: &Path, split: &str) -> PathBuf {
    let mut h = Sha256::new();
    h.update(b"ktlab-content-hash-cache\0");
    field(&mut h, format.as_bytes());
    field(&mut h, base.as_os_str().as_encoded_bytes());
    field(&mut h, split.as_bytes());
    let key = hex::encode(&h.finalize()[..16]);
    cache_dir.join(format!("{format}-{split}-{key}.json"))
}

/// Reads the cache; a missing, unparsable or outdated file is an empty cache.
fn read_cache(path: &Path) -> Result<IndexMap<String, CacheEntry>, DataError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(IndexMap::new()),
        Err(e) => return Err(io_error(path, e)),
    };
    Ok(match serde_json::from_slice::<CacheFile>(&bytes) {
        Ok(cache) if cache.version == CACHE_VERSION => cache.entries,
        _ => IndexMap::new(),
    })
}

/// Writes `cache` to `path` atomically: a temporary file in the same folder, renamed.
fn write_cache(path: &Path, cache: &CacheFile) -> Result<(), DataError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let nanos = unix_nanos(SystemTime::now());
    let tmp = path.with_extension(format!("json.tmp-{}-{nanos}", std::process::id()));
    let result = (|| {
        let file = fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
        let mut out = BufWriter::new(file);
        serde_json::to_writer(&mut out, cache).map_err(|e| DataError::Io {
            path: tmp.clone(),
            message: e.to_string(),
        })?;
        out.flush().map_err(|e| io_error(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_error(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// SHA-256 of every file, in parallel, reusing cached hashes of unchanged files and
/// updating the cache when anything changed.
fn content_hashes(
    format: &str,
    split: &str,
    base: &Path,
    files: &[PathBuf],
    stats: &[Stat],
    cache: Cache,
) -> Result<Vec<[u8; 32]>, DataError> {
    let cache_file = cache.dir().map(|dir| cache_path(dir, format, base, split));
    let cached = match (&cache_file, cache) {
        (Some(path), Cache::Use(_)) => read_cache(path)?,
        _ => IndexMap::new(),
    };
    let lookup = |rel: &Path, stat: &Stat| -> Option<[u8; 32]> {
        let entry = cached.get(rel.to_str()?)?;
        if entry.size != stat.size || entry.mtime_ns != stat.mtime_ns {
            return None;
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&entry.sha256, &mut digest).ok()?;
        Some(digest)
    };
    let results: Vec<([u8; 32], bool)> = files
        .par_iter()
        .zip(stats)
        .map(|(rel, stat)| match lookup(rel, stat) {
            Some(digest) => Ok((digest, true)),
            None => hash_file(&base.join(rel)).map(|d| (d, false)),
        })
        .collect::<Result<_, _>>()?;

    if let Some(path) = cache_file {
        // Every current file found unchanged and nothing else in the cache: it is exact.
        let cacheable = files.iter().filter(|rel| rel.to_str().is_some()).count();
        let up_to_date = results.iter().all(|r| r.1) && cached.len() == cacheable;
        if !up_to_date {
            let entries = files
                .iter()
                .zip(stats)
                .zip(&results)
                .filter_map(|((rel, stat), (digest, _))| {
                    let entry = CacheEntry {
                        size: stat.size,
                        mtime_ns: stat.mtime_ns,
                        sha256: hex::encode(digest),
                    };
                    Some((rel.to_str()?.to_string(), entry))
                })
                .collect();
            let cache = CacheFile {
                version: CACHE_VERSION,
                base: base.display().to_string(),
                entries,
            };
            write_cache(&path, &cache)?;
        }
    }
    Ok(results.into_iter().map(|r| r.0).collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::image_folder::tests::write_image;
    use super::*;

    fn synthetic(size: usize, seed: u64, train: usize) -> DatasetSpec {
        DatasetSpec {
            name: "s".to_string(),
            format: DatasetFormat::Synthetic {
                image_size: size,
                seed,
                splits: IndexMap::from([("train".to_string(), train), ("test".to_string(), 10)]),
            },
        }
    }

    fn folder(root: &Path) -> DatasetSpec {
        DatasetSpec {
            name: "f".to_string(),
            format: DatasetFormat::ImageFolder { root: root.to_path_buf() },
        }
    }

    fn fp(spec: &DatasetSpec, mode: FingerprintMode, cache: Option<&Path>) -> String {
        fingerprint(spec, "train", mode, cache).unwrap()
    }

    fn set_mtime(path: &Path, secs: u64) {
        let file = fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
    }

    #[test]
    fn synthetic_depends_on_every_parameter() {
        use FingerprintMode::*;
        let base = fp(&synthetic(32, 1, 100), Metadata, None);
        assert_eq!(base.len(), 64);
        assert_eq!(base, fp(&synthetic(32, 1, 100), Contents, None));
        assert_ne!(base, fp(&synthetic(16, 1, 100), Metadata, None));
        assert_ne!(base, fp(&synthetic(32, 2, 100), Metadata, None));
        assert_ne!(base, fp(&synthetic(32, 1, 101), Metadata, None));
        let test = fingerprint(&synthetic(32, 1, 100), "test", Metadata, None).unwrap();
        assert_ne!(base, test);
        // The size of another split does not matter.
        assert_eq!(test, fingerprint(&synthetic(32, 1, 5), "test", Metadata, None).unwrap());
        let err = fingerprint(&synthetic(32, 1, 5), "val", Metadata, None).err().unwrap();
        assert!(matches!(err, DataError::UnknownSplit { .. }));
    }

    fn dataset() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (k, path) in ["train/a/0.png", "train/a/1.png", "train/b/0.png", "test/a/0.png"]
            .iter()
            .enumerate()
        {
            let path = dir.path().join(path);
            write_image(&path, 4, 4, k as u8);
            set_mtime(&path, 1_000_000 + k as u64);
        }
        dir
    }

    #[test]
    fn metadata_mode_tracks_names_sizes_and_times() {
        use FingerprintMode::*;
        let dir = dataset();
        let spec = folder(dir.path());
        let base = fp(&spec, Metadata, None);
        assert_eq!(base, fp(&spec, Metadata, None));
        assert_ne!(base, fingerprint(&spec, "test", Metadata, None).unwrap());
        assert_ne!(base, fp(&spec, Contents, None));

        let file = dir.path().join("train/a/1.png");
        set_mtime(&file, 5);
        let touched = fp(&spec, Metadata, None);
        assert_ne!(base, touched);
        fs::rename(&file, dir.path().join("train/a/2.png")).unwrap();
        let renamed = fp(&spec, Metadata, None);
        assert_ne!(touched, renamed);
        // A new class folder changes it too.
        write_image(&dir.path().join("train/c/0.png"), 4, 4, 0);
        assert_ne!(renamed, fp(&spec, Metadata, None));
        let err = fingerprint(&spec, "nope", Metadata, None).err().unwrap();
        assert!(matches!(err, DataError::UnknownSplit { .. }));
    }

    #[test]
    fn contents_mode_ignores_times_and_follows_bytes() {
        use FingerprintMode::*;
        let dir = dataset();
        let spec = folder(dir.path());
        let base = fp(&spec, Contents, None);
        let file = dir.path().join("train/b/0.png");
        set_mtime(&file, 42);
        assert_eq!(base, fp(&spec, Contents, None));

        // Same size and time, different bytes: only contents mode without a cache sees it.
        let before = fp(&spec, Metadata, None);
        let mut bytes = fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&file, &bytes).unwrap();
        set_mtime(&file, 42);
        assert_eq!(before, fp(&spec, Metadata, None));
        assert_ne!(base, fp(&spec, Contents, None));
    }

    #[test]
    fn contents_cache_is_created_reused_and_refreshed() {
        use FingerprintMode::*;
        let dir = dataset();
        let spec = folder(dir.path());
        let store = tempfile::tempdir().unwrap();
        let cache_dir = store.path().join("fingerprints/nested");
        let uncached = fp(&spec, Contents, None);
        assert_eq!(uncached, fp(&spec, Contents, Some(&cache_dir)));
        let files: Vec<_> = fs::read_dir(&cache_dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let cache_file = &files[0];
        assert_eq!(uncached, fp(&spec, Contents, Some(&cache_dir)));

        // The cache is really used: a doctored entry shows up in the result.
        let text = fs::read_to_string(cache_file).unwrap();
        let real = hex::encode(hash_file(&dir.path().join("train/a/0.png")).unwrap());
        fs::write(cache_file, text.replace(&real, &"0".repeat(64))).unwrap();
        assert_ne!(uncached, fp(&spec, Contents, Some(&cache_dir)));

        // A changed time invalidates the entry.
        set_mtime(&dir.path().join("train/a/0.png"), 7);
        assert_eq!(uncached, fp(&spec, Contents, Some(&cache_dir)));
        assert!(fs::read_to_string(cache_file).unwrap().contains(&real));

        // A corrupt cache is rebuilt; the result is unaffected.
        fs::write(cache_file, "{ not json").unwrap();
        assert_eq!(uncached, fp(&spec, Contents, Some(&cache_dir)));
        assert!(serde_json::from_slice::<CacheFile>(&fs::read(cache_file).unwrap()).is_ok());
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(&cache_dir).unwrap().count(), 1);
    }

    #[test]
    fn cache_dir_that_cannot_be_created_is_an_error() {
        let dir = dataset();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "x").unwrap();
        let err = fingerprint(&folder(dir.path()), "train", FingerprintMode::Contents, Some(&blocker.join("sub")))
            .err()
            .unwrap();
        assert!(matches!(err, DataError::Io { .. }), "{err}");
    }

    #[test]
    fn cifar_binary_includes_meta_file() {
        use FingerprintMode::*;
        let dir = tempfile::tempdir().unwrap();
        super::super::cifar_binary::tests::write_fake(dir.path(), 2);
        let spec = DatasetSpec {
            name: "c".to_string(),
            format: DatasetFormat::Cifar10Binary {
                root: dir.path().to_path_buf(),
            },
        };
        let plain = fp(&spec, Contents, None);
        fs::write(dir.path().join(META_FILE), "x\n").unwrap();
        assert_ne!(plain, fp(&spec, Contents, None));
        assert_ne!(plain, fingerprint(&spec, "test", Contents, None).unwrap());
        assert!(fp(&spec, Metadata, None).len() == 64);
        let err = fingerprint(&spec, "val", Metadata, None).err().unwrap();
        assert!(matches!(err, DataError::UnknownSplit { .. }));
        fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
        let err = fingerprint(&spec, "train", Metadata, None).err().unwrap();
        assert!(err.to_string().contains("data_batch_4.bin"), "{err}");
    }

    #[test]
    fn real_cifar10_fingerprints() {
        use FingerprintMode::*;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/cifar10");
        if !root.is_dir() {
            crate::skip::skip("real_cifar10_fingerprints", &format!("{} is absent", root.display()));
            return;
        }
        let spec = folder(&root);
        let store = tempfile::tempdir().unwrap();
        let timed = |mode, cache: Option<&Path>| {
            let t = std::time::Instant::now();
            let fp = fingerprint(&spec, "train", mode, cache).unwrap();
            eprintln!("cifar10 train {mode:?} cache={}: {:?}", cache.is_some(), t.elapsed());
            fp
        };
        let meta = timed(Metadata, None);
        assert_eq!(meta, timed(Metadata, None));
        let cold = timed(Contents, Some(store.path()));
        let warm = timed(Contents, Some(store.path()));
        assert_eq!(cold, warm);
        assert_ne!(meta, cold);
    }
}
