//! Jigsaw permutation sets (Noroozi & Favaro 2016): the pretext task's class labels are permutations of the 3x3 tiles, chosen greedily to be far apart in Hamming distance.
//!
//! Generation is a greedy maximal-minimum-Hamming selection over the *full* space of all
//! 9! = 362,880 permutations (no random candidate pool): starting from a uniformly random
//! permutation, each step adds the permutation whose minimum Hamming distance to the already
//! chosen set is largest, ties broken uniformly at random by a ChaCha8 RNG seeded from `seed`.
//! Permutations are packed into 4-bit nibbles of a `u64` so a distance costs a few ALU ops;
//! 1,000 permutations take on the order of a second in release builds.
//!
//! On disk we use the layout of the official `permutations_*.bin` files: little-endian `i32`
//! header `[N, 9]` followed by `N x 9` little-endian `i32` *one-based* tile indices. In memory
//! tiles are zero-based.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Number of jigsaw tiles (3x3 grid).
pub const TILES: usize = 9;

/// At most this many tiles of a Jigsaw++ sample come from another image: one tile at least
/// stays the image's own (the `pretext` stage and `JigsawConfig::check` share the bound).
pub const MAX_REPLACED: usize = TILES - 1;

/// A permutation of the tiles: entry `i` is the zero-based index of the tile placed at position `i`.
pub type Permutation = [u8; TILES];

/// 9! — the number of distinct permutations of the tiles.
pub const ALL_PERMUTATIONS: usize = 362_880;

const HEADER_BYTES: usize = 8;
const ROW_BYTES: usize = TILES * 4;

#[derive(Debug, thiserror::Error)]
pub enum PermutationError {
    #[error("permutation count must be at least 1, got 0")]
    ZeroCount,
    #[error("requested {count} permutations but only {max} (9!) distinct permutations of {TILES} tiles exist")]
    CountTooLarge { count: usize, max: usize },
    #[error("minimum Hamming distance {min_hamming} is impossible: permutations of {TILES} tiles differ in at most {TILES} positions")]
    MinHammingTooLarge { min_hamming: usize },
    #[error(
        "cannot find {count} permutations with pairwise minimum Hamming distance {min_hamming}: \
         greedy selection found only {found} (next best candidate was at distance {best})"
    )]
    Unreachable {
        count: usize,
        min_hamming: usize,
        found: usize,
        best: usize,
    },
    #[error("permutation set has {actual} entries, expected {expected}")]
    CountMismatch { expected: usize, actual: usize },
    #[error("entry {index} ({values:?}) is not a permutation of 0..{TILES}")]
    InvalidPermutation { index: usize, values: Permutation },
    #[error("entries {first} and {second} are the same permutation {values:?}")]
    Duplicate { first: usize, second: usize, values: Permutation },
    #[error("entries {first} and {second} are at Hamming distance {actual}, below the required minimum {required}")]
    DistanceTooSmall {
        first: usize,
        second: usize,
        actual: usize,
        required: usize,
    },
    #[error("I/O error on permutation file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("permutation file {} is truncated: {actual} bytes, expected {expected}", path.display())]
    Truncated { path: PathBuf, actual: usize, expected: usize },
    #[error("permutation file {} has header [{rows}, {cols}], expected [N >= 1, {TILES}]", path.display())]
    BadHeader { path: PathBuf, rows: i32, cols: i32 },
    #[error("permutation file {} has {extra} trailing bytes after {expected} expected bytes", path.display())]
    TrailingBytes { path: PathBuf, expected: usize, extra: usize },
    #[error("permutation file {} row {row} column {col}: value {value} is outside 1..={TILES}", path.display())]
    ValueOutOfRange { path: PathBuf, row: usize, col: usize, value: i32 },
    #[error("permutation file {} row {row} (one-based values {values:?}) is not a permutation of 1..={TILES}", path.display())]
    NotAPermutation { path: PathBuf, row: usize, values: Vec<i32> },
    #[error("permutation file {} rows {first} and {second} are the same permutation", path.display())]
    DuplicateInFile { path: PathBuf, first: usize, second: usize },
    #[error("permutation file {}: {source}", path.display())]
    Npy {
        path: PathBuf,
        #[source]
        source: crate::data::NpyError,
    },
    #[error("permutation file {} holds `{descr}` values, expected int32 or int64", path.display())]
    NpyDtype { path: PathBuf, descr: String },
    #[error("permutation file {} has shape {shape:?}, expected [N >= 1, {TILES}]", path.display())]
    NpyShape { path: PathBuf, shape: Vec<usize> },
    #[error(
        "permutation file {} row {row} column {col}: value {value} is outside {range} (the table's {base}-based tile indices)",
        path.display()
    )]
    NpyValueOutOfRange {
        path: PathBuf,
        row: usize,
        col: usize,
        value: i64,
        base: u8,
        range: &'static str,
    },
    #[error("permutation file {} row {row} ({values:?}) is not a permutation of the {TILES} tiles", path.display())]
    NpyNotAPermutation { path: PathBuf, row: usize, values: Vec<i64> },
}

/// An ordered set of distinct tile permutations; index `i` is jigsaw class `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermutationSet {
    perms: Vec<Permutation>,
}

/// Number of positions in which two permutations differ.
pub fn hamming(a: &Permutation, b: &Permutation) -> usize {
    a.iter().zip(b.iter()).filter(|(x, y)| x != y).count()
}

fn pack(p: &Permutation) -> u64 {
    p.iter().enumerate().fold(0u64, |acc, (i, &v)| acc | (u64::from(v) << (4 * i)))
}

/// Hamming distance of two nibble-packed permutations.
#[inline]
fn packed_hamming(a: u64, b: u64) -> u8 {
    const LOW_BITS: u64 = 0x1_1111_1111; // bit 0 of each of the 9 nibbles
    let x = a ^ b;
    ((x | (x >> 1) | (x >> 2) | (x >> 3)) & LOW_BITS).count_ones() as u8
}

fn is_permutation(p: &Permutation) -> bool {
    let mut seen = [false; TILES];
    for &v in p {
        let v = v as usize;
        if v >= TILES || seen[v] {
            return false;
        }
        seen[v] = true;
    }
    true
}

/// All 9! permutations in lexicographic order.
fn all_permutations() -> Vec<Permutation> {
    let mut out = Vec::with_capacity(ALL_PERMUTATIONS);
    let mut p: Permutation = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    loop {
        out.push(p);
        // next lexicographic permutation
        let Some(i) = (0..TILES - 1).rev().find(|&i| p[i] < p[i + 1]) else {
            break;
        };
        let j = (i + 1..TILES).rev().find(|&j| p[j] > p[i]).unwrap_or(i + 1);
        p.swap(i, j);
        p[i + 1..].reverse();
    }
    out
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PermutationError + '_ {
    move |source| PermutationError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl PermutationSet {
    /// Greedy maximal-minimum-Hamming selection (Noroozi & Favaro 2016) over all 9! permutations.
    ///
    /// Starts from a uniformly random permutation, then repeatedly adds the permutation whose
    /// minimum Hamming distance to the chosen set is largest, ties broken uniformly at random.
    /// Deterministic given `seed` (ChaCha8). Fails as soon as the best remaining candidate is
    /// closer than `min_hamming` to the chosen set, so impossible requests return quickly.
    pub fn generate(count: usize, min_hamming: usize, seed: u64) -> Result<PermutationSet, PermutationError> {
        if count == 0 {
            return Err(PermutationError::ZeroCount);
        }
        if count > ALL_PERMUTATIONS {
            return Err(PermutationError::CountTooLarge {
                count,
                max: ALL_PERMUTATIONS,
            });
        }
        if min_hamming > TILES {
            return Err(PermutationError::MinHammingTooLarge { min_hamming });
        }
        let all = all_permutations();
        let codes: Vec<u64> = all.iter().map(pack).collect();
        // Minimum distance of each candidate to the chosen set (0 once chosen).
        let mut mind = vec![u8::MAX; codes.len()];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut chosen = Vec::with_capacity(count);
        let mut next = rng.gen_range(0..codes.len());
        loop {
            chosen.push(next);
            if chosen.len() == count {
                break;
            }
            let c = codes[next];
            let mut best = 0u8;
            for (code, d) in codes.iter().zip(mind.iter_mut()) {
                let v = (*d).min(packed_hamming(*code, c));
                *d = v;
                best = best.max(v);
            }
            // best == 0 means every permutation is chosen (cannot happen for count <= 9!).
            if best == 0 || usize::from(best) < min_hamming {
                return Err(PermutationError::Unreachable {
                    count,
                    min_hamming,
                    found: chosen.len(),
                    best: usize::from(best),
                });
            }
            let ties = mind.iter().filter(|&&d| d == best).count();
            let k = rng.gen_range(0..ties);
            next = mind
                .iter()
                .enumerate()
                .filter(|(_, &d)| d == best)
                .nth(k)
                .map(|(i, _)| i)
                .unwrap_or(0);
        }
        Ok(PermutationSet {
            perms: chosen.into_iter().map(|i| all[i]).collect(),
        })
    }

    /// Builds a set from explicit permutations, checking each is a permutation and none repeats.
    pub fn from_perms(perms: Vec<Permutation>) -> Result<PermutationSet, PermutationError> {
        let set = PermutationSet { perms };
        set.check_entries()?;
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.perms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.perms.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Permutation> {
        self.perms.get(i)
    }

    pub fn as_slice(&self) -> &[Permutation] {
        &self.perms
    }

    /// Minimum pairwise Hamming distance. By convention a set with fewer than two entries
    /// returns `TILES` (9), the largest possible distance, so it satisfies any requirement.
    pub fn min_hamming(&self) -> usize {
        self.closest_pair().map_or(TILES, |(_, _, d)| d)
    }

    fn closest_pair(&self) -> Option<(usize, usize, usize)> {
        let codes: Vec<u64> = self.perms.iter().map(pack).collect();
        let mut best: Option<(usize, usize, usize)> = None;
        for i in 0..codes.len() {
            for j in i + 1..codes.len() {
                let d = usize::from(packed_hamming(codes[i], codes[j]));
                if best.is_none_or(|(_, _, b)| d < b) {
                    best = Some((i, j, d));
                }
            }
        }
        best
    }

    fn check_entries(&self) -> Result<(), PermutationError> {
        let mut seen: HashMap<Permutation, usize> = HashMap::with_capacity(self.perms.len());
        for (index, p) in self.perms.iter().enumerate() {
            if !is_permutation(p) {
                return Err(PermutationError::InvalidPermutation { index, values: *p });
            }
            if let Some(&first) = seen.get(p) {
                return Err(PermutationError::Duplicate {
                    first,
                    second: index,
                    values: *p,
                });
            }
            seen.insert(*p, index);
        }
        Ok(())
    }

    /// Validates: exactly `count` entries, each a permutation of 0..9, no duplicates, and
    /// minimum pairwise Hamming distance at least `min_hamming`.
    pub fn validate(&self, count: usize, min_hamming: usize) -> Result<(), PermutationError> {
        if self.perms.len() != count {
            return Err(PermutationError::CountMismatch {
                expected: count,
                actual: self.perms.len(),
            });
        }
        self.check_entries()?;
        if let Some((first, second, actual)) = self.closest_pair() {
            if actual < min_hamming {
                return Err(PermutationError::DistanceTooSmall {
                    first,
                    second,
                    actual,
                    required: min_hamming,
                });
            }
        }
        Ok(())
    }

    /// Encodes in the official layout: LE `i32` header `[N, 9]`, then `N x 9` one-based LE `i32`.
    pub fn to_bin_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.perms.len() * ROW_BYTES);
        // N <= 9! always fits in i32.
        out.extend_from_slice(&(self.perms.len() as i32).to_le_bytes());
        out.extend_from_slice(&(TILES as i32).to_le_bytes());
        for p in &self.perms {
            for &v in p {
                out.extend_from_slice(&(i32::from(v) + 1).to_le_bytes());
            }
        }
        out
    }

    /// Writes the official `.bin` layout atomically (temp file in the same directory, then rename).
    pub fn write_bin(&self, path: &Path) -> Result<(), PermutationError> {
        let bytes = self.to_bin_bytes();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "permutations".to_string());
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&bytes).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            drop(f);
            fs::rename(&tmp, path).map_err(io_err(path))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Reads a permutation file in either layout, told apart by its first bytes: a NumPy `.npy`
    /// table (see [`PermutationSet::read_npy`]) or the official `.bin` layout, which rejects
    /// truncated files, a header other than `[N>=1, 9]`, values outside 1..=9, rows that are not
    /// permutations, duplicate rows and trailing bytes. (A `.bin` file cannot start with the
    /// `.npy` magic: its first word would be a count above 9!.)
    pub fn read_bin(path: &Path) -> Result<PermutationSet, PermutationError> {
        let bytes = fs::read(path).map_err(io_err(path))?;
        if bytes.starts_with(b"\x93NUMPY") {
            return Self::from_npy_bytes(&bytes, path);
        }
        Self::from_bin_bytes(&bytes, path)
    }

    /// Reads a permutation file in either layout (the same as [`PermutationSet::read_bin`]).
    pub fn read(path: &Path) -> Result<PermutationSet, PermutationError> {
        Self::read_bin(path)
    }

    /// Reads a NumPy `.npy` table as the PyTorch Jigsaw ports keep it: int32 or int64, shape
    /// `[N, 9]`, C order, zero-based (`0..=8`) or one-based (`1..=9`) tile indices, told apart by
    /// the smallest value. Rejects other element types and shapes, truncated files, values
    /// outside the range, rows that are not permutations and duplicate rows, naming the file.
    pub fn read_npy(path: &Path) -> Result<PermutationSet, PermutationError> {
        let bytes = fs::read(path).map_err(io_err(path))?;
        Self::from_npy_bytes(&bytes, path)
    }

    fn from_npy_bytes(bytes: &[u8], path: &Path) -> Result<PermutationSet, PermutationError> {
        use crate::data::{NpyDtype, NpyHeader};
        let npy = |source| PermutationError::Npy {
            path: path.to_path_buf(),
            source,
        };
        let header = NpyHeader::parse(bytes, path).map_err(npy)?;
        let width = match header.dtype {
            NpyDtype::I32 => 4,
            NpyDtype::I64 => 8,
            other => {
                return Err(PermutationError::NpyDtype {
                    path: path.to_path_buf(),
                    descr: other.descr().to_string(),
                })
            }
        };
        if header.shape.len() != 2 || header.shape[1] != TILES || header.shape[0] == 0 || header.shape[0] > ALL_PERMUTATIONS {
            return Err(PermutationError::NpyShape {
                path: path.to_path_buf(),
                shape: header.shape.clone(),
            });
        }
        header.check_length(bytes.len() as u64, path).map_err(npy)?;
        let data = &bytes[header.data_offset..];
        let values: Vec<i64> = data
            .chunks_exact(width)
            .map(|w| {
                if width == 4 {
                    i64::from(i32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                } else {
                    i64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]])
                }
            })
            .collect();
        let (base, range) = if values.iter().min() == Some(&0) {
            (0, "0..=8")
        } else {
            (1, "1..=9")
        };
        let n = header.shape[0];
        let mut perms = Vec::with_capacity(n);
        let mut seen: HashMap<Permutation, usize> = HashMap::with_capacity(n);
        for (row, vals) in values.chunks_exact(TILES).enumerate() {
            let mut p: Permutation = [0; TILES];
            for (col, (&v, slot)) in vals.iter().zip(p.iter_mut()).enumerate() {
                let z = v - i64::from(base);
                if !(0..TILES as i64).contains(&z) {
                    return Err(PermutationError::NpyValueOutOfRange {
                        path: path.to_path_buf(),
                        row,
                        col,
                        value: v,
                        base,
                        range,
                    });
                }
                *slot = z as u8;
            }
            if !is_permutation(&p) {
                return Err(PermutationError::NpyNotAPermutation {
                    path: path.to_path_buf(),
                    row,
                    values: vals.to_vec(),
                });
            }
            if let Some(&first) = seen.get(&p) {
                return Err(PermutationError::DuplicateInFile {
                    path: path.to_path_buf(),
                    first,
                    second: row,
                });
            }
            seen.insert(p, row);
            perms.push(p);
        }
        Ok(PermutationSet { perms })
    }

    fn from_bin_bytes(bytes: &[u8], path: &Path) -> Result<PermutationSet, PermutationError> {
        let word = |i: usize| -> i32 {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[i * 4..i * 4 + 4]);
            i32::from_le_bytes(w)
        };
        if bytes.len() < HEADER_BYTES {
            return Err(PermutationError::Truncated {
                path: path.to_path_buf(),
                actual: bytes.len(),
                expected: HEADER_BYTES,
            });
        }
        let (rows, cols) = (word(0), word(1));
        if rows < 1 || cols != TILES as i32 || rows as usize > ALL_PERMUTATIONS {
            return Err(PermutationError::BadHeader {
                path: path.to_path_buf(),
                rows,
                cols,
            });
        }
        let n = rows as usize;
        let expected = HEADER_BYTES + n * ROW_BYTES;
        if bytes.len() < expected {
            return Err(PermutationError::Truncated {
                path: path.to_path_buf(),
                actual: bytes.len(),
                expected,
            });
        }
        if bytes.len() > expected {
            return Err(PermutationError::TrailingBytes {
                path: path.to_path_buf(),
                expected,
                extra: bytes.len() - expected,
            });
        }
        let mut perms = Vec::with_capacity(n);
        let mut seen: HashMap<Permutation, usize> = HashMap::with_capacity(n);
        for row in 0..n {
            let values: Vec<i32> = (0..TILES).map(|col| word(2 + row * TILES + col)).collect();
            let mut p: Permutation = [0; TILES];
            for (col, (&v, slot)) in values.iter().zip(p.iter_mut()).enumerate() {
                if !(1..=TILES as i32).contains(&v) {
                    return Err(PermutationError::ValueOutOfRange {
                        path: path.to_path_buf(),
                        row,
                        col,
                        value: v,
                    });
                }
                *slot = (v - 1) as u8;
            }
            if !is_permutation(&p) {
                return Err(PermutationError::NotAPermutation {
                    path: path.to_path_buf(),
                    row,
                    values,
                });
            }
            if let Some(&first) = seen.get(&p) {
                return Err(PermutationError::DuplicateInFile {
                    path: path.to_path_buf(),
                    first,
                    second: row,
                });
            }
            seen.insert(p, row);
            perms.push(p);
        }
        Ok(PermutationSet { perms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn set_of(perms: Vec<Permutation>) -> PermutationSet {
        PermutationSet::from_perms(perms).expect("valid test permutations")
    }

    fn encode_raw(header: [i32; 2], values: &[i32]) -> Vec<u8> {
        header.iter().chain(values.iter()).flat_map(|v| v.to_le_bytes()).collect()
    }

    fn write_raw(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, bytes).expect("write test file");
        p
    }

    /// A `.npy` table of `rows` (already in the file's base) with element type `descr`.
    fn npy_table(descr: &str, shape: &str, values: &[i64]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((h.len() as u16).to_le_bytes());
        out.extend(h.as_bytes());
        for &v in values {
            match descr {
                "<i4" => out.extend((v as i32).to_le_bytes()),
                "<f4" => out.extend((v as f32).to_le_bytes()),
                _ => out.extend(v.to_le_bytes()),
            }
        }
        out
    }

    fn sample_rows() -> Vec<Permutation> {
        vec![
            [0, 1, 2, 3, 4, 5, 6, 7, 8],
            [8, 7, 6, 5, 4, 3, 2, 1, 0],
            [1, 2, 3, 4, 5, 6, 7, 8, 0],
        ]
    }

    fn flat(rows: &[Permutation], base: i64) -> Vec<i64> {
        rows.iter().flatten().map(|&v| i64::from(v) + base).collect()
    }

    #[test]
    fn npy_tables_zero_or_one_based_int32_or_int64() {
        let dir = tempfile::tempdir().unwrap();
        let want = set_of(sample_rows());
        for (descr, base) in [("<i8", 0), ("<i8", 1), ("<i4", 0), ("<i4", 1)] {
            let p = write_raw(
                dir.path(),
                &format!("t{descr}{base}.npy").replace('<', ""),
                &npy_table(descr, "(3, 9)", &flat(&sample_rows(), base)),
            );
            assert_eq!(PermutationSet::read_npy(&p).unwrap(), want, "{descr} base {base}");
            // read_bin / read tell the layout from the file's first bytes.
            assert_eq!(PermutationSet::read_bin(&p).unwrap(), want);
            assert_eq!(PermutationSet::read(&p).unwrap(), want);
        }
        let bin = dir.path().join("t.bin");
        want.write_bin(&bin).unwrap();
        assert_eq!(PermutationSet::read(&bin).unwrap(), want);
    }

    #[test]
    fn bad_npy_tables_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = flat(&sample_rows(), 0);
        let mut out_of_range = good.clone();
        out_of_range[10] = 9; // zero-based table (min 0) with a 9
        let mut not_perm = flat(&sample_rows(), 1);
        not_perm[9] = 1; // row 1 becomes [1, 8, 7, ...] with 1 twice
        let mut dup = good.clone();
        dup[18..27].copy_from_slice(&good[0..9]);
        let full = npy_table("<i8", "(3, 9)", &good);
        let cases: Vec<(&str, Vec<u8>, String)> = vec![
            (
                "float.npy",
                npy_table("<f4", "(3, 9)", &good),
                "holds `<f4` values, expected int32 or int64".into(),
            ),
            (
                "wide.npy",
                npy_table("<i8", "(3, 8)", &good[..24]),
                "has shape [3, 8], expected [N >= 1, 9]".into(),
            ),
            (
                "flat.npy",
                npy_table("<i8", "(27,)", &good),
                "has shape [27], expected [N >= 1, 9]".into(),
            ),
            ("empty.npy", npy_table("<i8", "(0, 9)", &[]), "has shape [0, 9]".into()),
            ("short.npy", full[..full.len() - 8].to_vec(), "truncated".into()),
            (
                "range.npy",
                npy_table("<i8", "(3, 9)", &out_of_range),
                "row 1 column 1: value 9 is outside 0..=8 (the table's 0-based".into(),
            ),
            (
                "negative.npy",
                npy_table("<i4", "(3, 9)", &[-1; 27]),
                "value -1 is outside 1..=9".into(),
            ),
            (
                "notperm.npy",
                npy_table("<i8", "(3, 9)", &not_perm),
                "row 1 ([1, 8, 7, 6, 5, 4, 3, 2, 1]) is not a permutation".into(),
            ),
            (
                "dup.npy",
                npy_table("<i8", "(3, 9)", &dup),
                "rows 0 and 2 are the same permutation".into(),
            ),
            ("header.npy", b"\x93NUMPY\x01\x00\xff".to_vec(), "not a .npy file".into()),
        ];
        for (name, bytes, want) in cases {
            let p = write_raw(dir.path(), name, &bytes);
            let e = PermutationSet::read(&p).unwrap_err().to_string();
            assert!(e.contains(&p.display().to_string()), "{name}: {e}");
            assert!(e.contains(&want), "{name}: {e}");
        }
    }

    /// The published tables in ../shared/datasets/jigsaw-permutations (see its README).
    #[test]
    fn published_tables_load_with_their_documented_counts_and_distances() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/jigsaw-permutations");
        if !root.is_dir() {
            crate::skip::skip("published_tables_load", &format!("{} is absent", root.display()));
            return;
        }
        for (file, count, min_hamming) in [
            ("permutations_701.bin", 701, 3),
            ("permutations_100_max.bin", 100, 2),
            ("permutations_1000.npy", 1000, 2),
        ] {
            let set = PermutationSet::read(&root.join(file)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(set.len(), count, "{file}");
            assert!(set.as_slice().iter().all(is_permutation), "{file}");
            set.validate(count, min_hamming).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(set.min_hamming(), min_hamming, "{file}");
        }
        // The .npy table is zero-based int64, as the README says.
        let bytes = fs::read(root.join("permutations_1000.npy")).unwrap();
        let header = crate::data::NpyHeader::parse(&bytes, &root).unwrap();
        assert_eq!((header.dtype, header.shape), (crate::data::NpyDtype::I64, vec![1000, 9]));
    }

    #[test]
    fn hamming_basics() {
        let id: Permutation = [0, 1, 2, 3, 4, 5, 6, 7, 8];
        let sw: Permutation = [1, 0, 2, 3, 4, 5, 6, 7, 8];
        let rot: Permutation = [1, 2, 3, 4, 5, 6, 7, 8, 0];
        assert_eq!(hamming(&id, &id), 0);
        assert_eq!(hamming(&id, &sw), 2);
        assert_eq!(hamming(&id, &rot), 9);
        for (a, b) in [(id, sw), (id, rot), (sw, rot)] {
            assert_eq!(usize::from(packed_hamming(pack(&a), pack(&b))), hamming(&a, &b));
        }
    }

    #[test]
    fn all_permutations_is_complete() {
        let all = all_permutations();
        assert_eq!(all.len(), ALL_PERMUTATIONS);
        assert!(all.iter().all(is_permutation));
        assert!(all.windows(2).all(|w| w[0] < w[1]), "strictly lexicographic, hence distinct");
    }

    fn check_generated(count: usize, min_hamming: usize) -> usize {
        let t = Instant::now();
        let set = PermutationSet::generate(count, min_hamming, 1).expect("generate");
        let elapsed = t.elapsed();
        set.validate(count, min_hamming).expect("validate");
        assert_eq!(set.len(), count);
        let d = set.min_hamming();
        assert!(d >= min_hamming);
        eprintln!("generate({count}, {min_hamming}): {elapsed:?}, achieved min Hamming {d}");
        d
    }

    #[test]
    fn generate_100_min_3() {
        let d = check_generated(100, 3);
        // Greedy over all 9! reaches well above 3 for 100 classes.
        assert!(d >= 6, "achieved only {d}");
    }

    #[test]
    fn generate_701_min_3() {
        let d = check_generated(701, 3);
        assert!(d >= 5, "achieved only {d}");
    }

    #[test]
    fn generate_is_deterministic() {
        let a = PermutationSet::generate(50, 3, 7).expect("a");
        let b = PermutationSet::generate(50, 3, 7).expect("b");
        let c = PermutationSet::generate(50, 3, 8).expect("c");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn generate_rejects_bad_arguments() {
        assert!(matches!(PermutationSet::generate(0, 3, 0), Err(PermutationError::ZeroCount)));
        assert!(matches!(
            PermutationSet::generate(ALL_PERMUTATIONS + 1, 0, 0),
            Err(PermutationError::CountTooLarge { .. })
        ));
        assert!(matches!(
            PermutationSet::generate(10, 10, 0),
            Err(PermutationError::MinHammingTooLarge { min_hamming: 10 })
        ));
    }

    #[test]
    fn impossible_request_fails_fast() {
        let t = Instant::now();
        let err = PermutationSet::generate(1000, 9, 0).expect_err("1000 permutations at distance 9 is impossible");
        let elapsed = t.elapsed();
        eprintln!("generate(1000, 9) error after {elapsed:?}: {err}");
        assert!(elapsed.as_secs_f64() < 10.0, "took {elapsed:?}");
        match err {
            PermutationError::Unreachable {
                count,
                min_hamming,
                found,
                best,
            } => {
                assert_eq!((count, min_hamming), (1000, 9));
                // At most 9 permutations can pairwise differ in all 9 positions.
                assert!((1..=TILES).contains(&found), "found {found}");
                assert!(best < 9);
            }
            other => panic!("unexpected error {other}"),
        }
        let msg = err_msg(PermutationSet::generate(1000, 9, 0));
        assert!(msg.contains("1000") && msg.contains('9'), "{msg}");
    }

    fn err_msg<T: std::fmt::Debug>(r: Result<T, PermutationError>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn min_hamming_and_validate() {
        let single = set_of(vec![[0, 1, 2, 3, 4, 5, 6, 7, 8]]);
        assert_eq!(single.min_hamming(), TILES);
        single.validate(1, 9).expect("single permutation meets any distance");
        let pair = set_of(vec![[0, 1, 2, 3, 4, 5, 6, 7, 8], [1, 0, 2, 3, 4, 5, 6, 7, 8]]);
        assert_eq!(pair.min_hamming(), 2);
        pair.validate(2, 2).expect("distance 2");
        assert!(matches!(
            pair.validate(2, 3),
            Err(PermutationError::DistanceTooSmall {
                actual: 2,
                required: 3,
                ..
            })
        ));
        assert!(matches!(
            pair.validate(3, 2),
            Err(PermutationError::CountMismatch { expected: 3, actual: 2 })
        ));
        let bad = PermutationSet {
            perms: vec![[0, 0, 2, 3, 4, 5, 6, 7, 8]],
        };
        assert!(matches!(
            bad.validate(1, 0),
            Err(PermutationError::InvalidPermutation { index: 0, .. })
        ));
        let dup = PermutationSet {
            perms: vec![[0, 1, 2, 3, 4, 5, 6, 7, 8]; 2],
        };
        assert!(matches!(
            dup.validate(2, 0),
            Err(PermutationError::Duplicate { first: 0, second: 1, .. })
        ));
        assert!(PermutationSet::from_perms(vec![[9, 1, 2, 3, 4, 5, 6, 7, 8]]).is_err());
    }

    #[test]
    fn bin_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let set = PermutationSet::generate(100, 3, 42).expect("generate");
        let path = dir.path().join("permutations_100.bin");
        set.write_bin(&path).expect("write");
        let back = PermutationSet::read_bin(&path).expect("read");
        assert_eq!(set, back);
        // Only the final file remains (temp file renamed away).
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("permutations_100.bin")]);
    }

    #[test]
    fn bin_byte_layout_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let set = set_of(vec![[0, 1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1, 0]]);
        let path = dir.path().join("two.bin");
        set.write_bin(&path).expect("write");
        let bytes = fs::read(&path).expect("read bytes");
        let mut expected: Vec<u8> = vec![2, 0, 0, 0, 9, 0, 0, 0];
        for v in (1..=9).chain((1..=9).rev()) {
            expected.extend_from_slice(&[v, 0, 0, 0]);
        }
        assert_eq!(bytes.len(), 8 + 2 * 9 * 4);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn read_bin_rejects_malformed_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ident: Vec<i32> = (1..=9).collect();
        let rev: Vec<i32> = (1..=9).rev().collect();
        let two: Vec<i32> = ident.iter().chain(rev.iter()).copied().collect();

        let check = |name: &str, bytes: Vec<u8>, pred: &dyn Fn(&PermutationError) -> bool| {
            let p = write_raw(d, name, &bytes);
            let err = PermutationSet::read_bin(&p).expect_err(name);
            assert!(pred(&err), "{name}: unexpected error {err:?}");
            assert!(err.to_string().contains(name), "{name}: message does not name the file: {err}");
        };

        // Sanity: the well-formed file reads.
        let ok = write_raw(d, "ok.bin", &encode_raw([2, 9], &two));
        assert_eq!(PermutationSet::read_bin(&ok).expect("ok").len(), 2);

        check("empty.bin", vec![], &|e| {
            matches!(
                e,
                PermutationError::Truncated {
                    actual: 0,
                    expected: 8,
                    ..
                }
            )
        });
        check("short_header.bin", vec![2, 0, 0, 0, 9], &|e| {
            matches!(e, PermutationError::Truncated { actual: 5, .. })
        });
        let mut trunc = encode_raw([2, 9], &two);
        trunc.truncate(trunc.len() - 3);
        check("truncated.bin", trunc, &|e| {
            matches!(
                e,
                PermutationError::Truncated {
                    expected: 80,
                    actual: 77,
                    ..
                }
            )
        });
        check("cols.bin", encode_raw([2, 8], &two), &|e| {
            matches!(e, PermutationError::BadHeader { rows: 2, cols: 8, .. })
        });
        check("zero_rows.bin", encode_raw([0, 9], &[]), &|e| {
            matches!(e, PermutationError::BadHeader { rows: 0, .. })
        });
        check("neg_rows.bin", encode_raw([-1, 9], &two), &|e| {
            matches!(e, PermutationError::BadHeader { rows: -1, .. })
        });
        check("huge_rows.bin", encode_raw([i32::MAX, 9], &two), &|e| {
            matches!(e, PermutationError::BadHeader { .. })
        });
        let mut zero_based = two.clone();
        zero_based[3] = 0;
        check("range_low.bin", encode_raw([2, 9], &zero_based), &|e| {
            matches!(
                e,
                PermutationError::ValueOutOfRange {
                    row: 0,
                    col: 3,
                    value: 0,
                    ..
                }
            )
        });
        let mut high = two.clone();
        high[10] = 10;
        check("range_high.bin", encode_raw([2, 9], &high), &|e| {
            matches!(
                e,
                PermutationError::ValueOutOfRange {
                    row: 1,
                    col: 1,
                    value: 10,
                    ..
                }
            )
        });
        let mut repeated = two.clone();
        repeated[1] = 1;
        check("not_perm.bin", encode_raw([2, 9], &repeated), &|e| {
            matches!(e, PermutationError::NotAPermutation { row: 0, .. })
        });
        let dup: Vec<i32> = ident.iter().chain(ident.iter()).copied().collect();
        check("dup.bin", encode_raw([2, 9], &dup), &|e| {
            matches!(e, PermutationError::DuplicateInFile { first: 0, second: 1, .. })
        });
        let mut trailing = encode_raw([2, 9], &two);
        trailing.push(0);
        check("trailing.bin", trailing, &|e| {
            matches!(
                e,
                PermutationError::TrailingBytes {
                    expected: 80,
                    extra: 1,
                    ..
                }
            )
        });

        let missing = d.join("missing.bin");
        assert!(matches!(PermutationSet::read_bin(&missing), Err(PermutationError::Io { .. })));
    }
}
