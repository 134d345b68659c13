//! NumPy `.npy` files as users have them: a strict header parser,
//! `NpyMatrix`, a memory-mapped 2-D float32/float16 matrix that yields row
//! blocks as float32 tensors, so a matrix larger than memory can be streamed,
//! and `NpyWriter`, which writes one block of rows at a time.
//!
//! Supported: format versions 1.0-3.0, C order, little-endian `f4`, `f2`,
//! `f8`, `i4`, `i8`, `u1`, `i1`, `b1`. Every malformed file is an error
//! naming it, never a panic.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor};
use thiserror::Error;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Element types of `.npy` data (little-endian only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    F16,
    F32,
    F64,
    I8,
    U8,
    Bool,
    I32,
    I64,
}

impl NpyDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyDtype::I8 | NpyDtype::U8 | NpyDtype::Bool => 1,
            NpyDtype::F16 => 2,
            NpyDtype::F32 | NpyDtype::I32 => 4,
            NpyDtype::F64 | NpyDtype::I64 => 8,
        }
    }

    /// The numpy `descr` string.
    pub fn descr(self) -> &'static str {
        match self {
            NpyDtype::F16 => "<f2",
            NpyDtype::F32 => "<f4",
            NpyDtype::F64 => "<f8",
            NpyDtype::I8 => "|i1",
            NpyDtype::U8 => "|u1",
            NpyDtype::Bool => "|b1",
            NpyDtype::I32 => "<i4",
            NpyDtype::I64 => "<i8",
        }
    }

    /// The largest magnitude this type stores finitely: float16's 65,504 for `F16`,
    /// float32's largest otherwise (what a float32 value can exceed).
    pub fn largest(self) -> f32 {
        match self {
            NpyDtype::F16 => f32::from(half::f16::MAX),
            _ => f32::MAX,
        }
    }

    #[cfg(feature = "torch")]
    fn kind(self) -> Kind {
        match self {
            NpyDtype::F16 => Kind::Half,
            NpyDtype::F32 => Kind::Float,
            NpyDtype::F64 => Kind::Double,
            NpyDtype::I8 => Kind::Int8,
            NpyDtype::U8 => Kind::Uint8,
            NpyDtype::Bool => Kind::Bool,
            NpyDtype::I32 => Kind::Int,
            NpyDtype::I64 => Kind::Int64,
        }
    }

    fn from_descr(descr: &str) -> Option<NpyDtype> {
        Some(match descr {
            "<f2" => NpyDtype::F16,
            "<f4" => NpyDtype::F32,
            "<f8" => NpyDtype::F64,
            "|i1" | "<i1" => NpyDtype::I8,
            "|u1" | "<u1" => NpyDtype::U8,
            "|b1" => NpyDtype::Bool,
            "<i4" => NpyDtype::I32,
            "<i8" => NpyDtype::I64,
            _ => return None,
        })
    }
}

/// What can be wrong with a `.npy` file.
#[derive(Debug, Error)]
pub enum NpyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a .npy file ({reason})", path.display())]
    Header { path: PathBuf, reason: String },
    #[error("{}: element type `{descr}` is not supported here (expected {expected})", path.display())]
    Dtype {
        path: PathBuf,
        descr: String,
        expected: &'static str,
    },
    #[error("{}: shape {shape:?} is not {expected}", path.display())]
    Shape {
        path: PathBuf,
        shape: Vec<usize>,
        expected: String,
    },
    #[error("{}: truncated: {actual} bytes, the header promises {expected}", path.display())]
    Truncated { path: PathBuf, actual: u64, expected: u64 },
    #[error("{}: {extra} trailing bytes after the {expected} bytes the header promises", path.display())]
    Trailing { path: PathBuf, expected: u64, extra: u64 },
    #[error("{}: rows {start}..{end} are outside the {rows} rows of the matrix", path.display())]
    RowRange {
        path: PathBuf,
        start: usize,
        end: usize,
        rows: usize,
    },
    #[error("{}: {written} rows written, the header promises {rows}", path.display())]
    RowCount { path: PathBuf, written: usize, rows: usize },
    #[cfg(feature = "torch")]
    #[error("{}: {source}", path.display())]
    Torch {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    pub dtype: NpyDtype,
    pub shape: Vec<usize>,
    /// Byte offset of the data from the start of the file.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bytes of data the header promises.
    pub fn data_bytes(&self) -> u64 {
        self.numel() as u64 * self.dtype.size() as u64
    }

    /// Parses the header at the start of `bytes` (the whole file or at least
    /// its header); `path` names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<NpyHeader, NpyError> {
        let bad = |reason: String| NpyError::Header {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err(bad("missing the \\x93NUMPY magic".into()));
        }
        let (len, start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
            2 | 3 => {
                if bytes.len() < 12 {
                    return Err(bad("header length missing".into()));
                }
                (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
            }
            v => return Err(bad(format!("unsupported format version {v}.{}", bytes[7]))),
        };
        let end = start.checked_add(len).ok_or_else(|| bad("header length overflows".into()))?;
        if bytes.len() < end {
            return Err(NpyError::Truncated {
                path: path.to_path_buf(),
                actual: bytes.len() as u64,
                expected: end as u64,
            });
        }
        let text = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header is not text".into()))?;
        let descr = dict_value(text, "descr").ok_or_else(|| bad(format!("no 'descr' in header {text:?}")))?;
        let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"').to_string();
        let fortran = dict_value(text, "fortran_order").ok_or_else(|| bad(format!("no 'fortran_order' in header {text:?}")))?;
        if fortran.trim() != "False" {
            return Err(bad("Fortran-ordered arrays are not supported (save with C order)".into()));
        }
        let shape_text = dict_value(text, "shape").ok_or_else(|| bad(format!("no 'shape' in header {text:?}")))?;
        let inner = shape_text
            .trim()
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| bad(format!("shape {shape_text:?} is not a tuple")))?;
        let shape = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<usize>()
                    .map_err(|_| bad(format!("shape {shape_text:?} has a bad dimension `{s}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dtype = NpyDtype::from_descr(&descr).ok_or_else(|| NpyError::Dtype {
            path: path.to_path_buf(),
            descr: descr.clone(),
            expected: "a little-endian numeric type",
        })?;
        shape
            .iter()
            .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
        Ok(NpyHeader {
            dtype,
            shape,
            data_offset: end,
        })
    }

    /// Checks that `file_len` bytes hold exactly the header and its data.
    pub fn check_length(&self, file_len: u64, path: &Path) -> Result<(), NpyError> {
        let expected = self.data_offset as u64 + self.data_bytes();
        if file_len < expected {
            return Err(NpyError::Truncated {
                path: path.to_path_buf(),
                actual: file_len,
                expected,
            });
        }
        if file_len > expected {
            return Err(NpyError::Trailing {
                path: path.to_path_buf(),
                expected,
                extra: file_len - expected,
            });
        }
        Ok(())
    }
}

/// The text of `key`'s value in a Python dict literal (up to the next top-level comma).
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(&format!("'{key}'")).or_else(|| text.find(&format!("\"{key}\"")))?;
    let rest = &text[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?;
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    Some(rest)
}

#[cfg(feature = "torch")]
/// Reads a whole `.npy` file into a CPU tensor of its own element type,
/// checking header and length. `path` names the file in every error.
pub fn read_npy(path: &Path) -> Result<(NpyHeader, Tensor), NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let header = NpyHeader::parse(&bytes, path)?;
    header.check_length(bytes.len() as u64, path)?;
    let shape: Vec<i64> = header.shape.iter().map(|&d| d as i64).collect();
    let t = Tensor::f_from_data_size(&bytes[header.data_offset..], &shape, header.dtype.kind()).map_err(|source| NpyError::Torch {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((header, t))
}

/// A 2-D float32 or float16 `.npy` matrix, memory-mapped: only the row blocks
/// asked for are read, and they come back as float32 tensors.
#[derive(Debug)]
pub struct NpyMatrix {
    path: PathBuf,
    /// A private copy-on-write mapping: writes through it never reach the file (read as
    /// tensors, so not by a build without libtorch).
    #[cfg_attr(not(feature = "torch"), allow(dead_code))]
    map: MmapMut,
    header: NpyHeader,
}

impl NpyMatrix {
    /// Opens and checks `path`: a `.npy` header, shape `[rows, cols]`,
    /// element type `<f4` or `<f2`, and exactly the promised number of bytes.
    pub fn open(path: &Path) -> Result<NpyMatrix, NpyError> {
        let io = |source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: a private copy-on-write map; like numpy's memmap we accept
        // that a concurrent writer of the file could change the values we read.
        // `MAP_NORESERVE`: no swap is reserved for pages we might copy, so a file
        // larger than memory plus swap maps too (without it Linux refuses the map).
        let map = unsafe { MmapOptions::new().no_reserve_swap().map_copy(&file) }.map_err(io)?;
        let header = NpyHeader::parse(&map, path)?;
        if !matches!(header.dtype, NpyDtype::F32 | NpyDtype::F16) {
            return Err(NpyError::Dtype {
                path: path.to_path_buf(),
                descr: header.dtype.descr().to_string(),
                expected: "float32 (<f4) or float16 (<f2)",
            });
        }
        if header.shape.len() != 2 {
            return Err(NpyError::Shape {
                path: path.to_path_buf(),
                shape: header.shape.clone(),
                expected: "2-D [rows, columns]".into(),
            });
        }
        header.check_length(map.len() as u64, path)?;
        Ok(NpyMatrix {
            path: path.to_path_buf(),
            map,
            header,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rows(&self) -> usize {
        self.header.shape[0]
    }

    pub fn cols(&self) -> usize {
        self.header.shape[1]
    }

    pub fn dtype(&self) -> NpyDtype {
        self.header.dtype
    }

    #[cfg(feature = "torch")]
    /// Rows `start..start + len` as a `[len, cols]` float32 CPU tensor
    /// (float16 files are converted).
    pub fn block(&self, start: usize, len: usize) -> Result<Tensor, NpyError> {
        let end = start.checked_add(len).filter(|&e| e <= self.rows()).ok_or(NpyError::RowRange {
            path: self.path.clone(),
            start,
            end: start.saturating_add(len),
            rows: self.rows(),
        })?;
        let row_bytes = self.cols() * self.header.dtype.size();
        let from = self.header.data_offset + start * row_bytes;
        let bytes = &self.map[from..self.header.data_offset + end * row_bytes];
        let torch = |source| NpyError::Torch {
            path: self.path.clone(),
            source,
        };
        let t = Tensor::f_from_data_size(bytes, &[len as i64, self.cols() as i64], self.header.dtype.kind()).map_err(torch)?;
        if self.header.dtype == NpyDtype::F32 {
            Ok(t)
        } else {
            t.f_to_kind(Kind::Float).map_err(torch)
        }
    }

    #[cfg(feature = "torch")]
    /// The whole matrix as a float32 tensor (a copy in memory).
    pub fn to_tensor(&self) -> Result<Tensor, NpyError> {
        self.block(0, self.rows())
    }

    #[cfg(feature = "torch")]
    /// The whole float32 or float16 matrix as a CPU tensor of its own type over a mapping of
    /// the file that libtorch owns (`at::from_file`): freed with the last tensor that views
    /// it, paged in as it is read and dropped again under memory pressure (a shared,
    /// file-backed mapping: it reserves no memory, so a file larger than memory maps).
    /// Writes to the tensor would reach the file: for files the caller owns (a stage's
    /// scratch features), read only. A float16 matrix stays float16 (half the pages): its
    /// readers convert what they read.
    pub fn file_tensor(&self) -> Result<Tensor, NpyError> {
        let (offset, dtype) = (self.header.data_offset, self.header.dtype);
        let size = dtype.size();
        if !matches!(dtype, NpyDtype::F32 | NpyDtype::F16) || !offset.is_multiple_of(size) || self.rows() == 0 || self.cols() == 0 {
            return self.to_tensor();
        }
        let torch = |source| NpyError::Torch {
            path: self.path.clone(),
            source,
        };
        let name = self.path.to_str().ok_or_else(|| NpyError::Io {
            path: self.path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path is not UTF-8"),
        })?;
        // `check_length` in `open`: the file is the header plus exactly rows x cols values.
        let values = (self.map.len() / size) as i64;
        let all = Tensor::f_from_file(name, true, values, (dtype.kind(), tch::Device::Cpu)).map_err(torch)?;
        let n = (self.rows() * self.cols()) as i64;
        all.f_narrow(0, (offset / size) as i64, n)
            .and_then(|t| t.f_view([self.rows() as i64, self.cols() as i64]))
            .map_err(torch)
    }

    #[cfg(feature = "torch")]
    /// The whole matrix as a float32 CPU tensor without reading it into
    /// memory: a float32 file becomes a tensor over the mapping itself, which
    /// the OS pages in as it is read and may drop again under memory pressure
    /// (so a matrix larger than RAM can be streamed through). The mapping is
    /// private and copy-on-write (writes to the tensor never reach the file)
    /// and stays mapped for the rest of the process, since tensors cannot
    /// hold it alive. Float16 files are converted into memory instead.
    pub fn into_mapped_tensor(self) -> Result<Tensor, NpyError> {
        let offset = self.header.data_offset;
        if self.header.dtype != NpyDtype::F32 || !offset.is_multiple_of(4) || self.rows() == 0 {
            return self.to_tensor();
        }
        let map: &'static mut MmapMut = Box::leak(Box::new(self.map));
        let size = [self.header.shape[0] as i64, self.header.shape[1] as i64];
        // SAFETY: the mapping is leaked, so it outlives the tensor; it holds
        // header plus rows x cols little-endian f32 (checked by `open`), from a
        // 4-byte aligned offset of a page-aligned base.
        unsafe { Tensor::f_from_blob(map.as_ptr().add(offset), &size, &[], Kind::Float, tch::Device::Cpu) }
            .map_err(|source| NpyError::Torch { path: self.path, source })
    }
}

/// Writes a 2-D float32 or float16 `[rows, cols]` `.npy` block by block, so
/// that no more than a block need be in memory. The header is the one
/// `tch`'s `write_npy` writes (format 1.0, the same dictionary text and
/// padding), so a matrix written either way has the same bytes.
#[derive(Debug)]
pub struct NpyWriter {
    path: PathBuf,
    out: BufWriter<File>,
    dtype: NpyDtype,
    rows: usize,
    cols: usize,
    written: usize,
}

impl NpyWriter {
    /// Creates `path` (replacing it) for a `[rows, cols]` matrix of `dtype`
    /// (`F32` or `F16`) and writes the header.
    pub fn create(path: &Path, rows: usize, cols: usize, dtype: NpyDtype) -> Result<NpyWriter, NpyError> {
        if !matches!(dtype, NpyDtype::F32 | NpyDtype::F16) {
            return Err(NpyError::Dtype {
                path: path.to_path_buf(),
                descr: dtype.descr().to_string(),
                expected: "float32 (<f4) or float16 (<f2)",
            });
        }
        let io = |source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(io)?);
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows},{cols},), }}",
            dtype.descr()
        );
        let pad = 16 - (MAGIC.len() + 5 + header.len()) % 16;
        header.extend(std::iter::repeat_n(' ', pad % 16));
        header.push('\n');
        out.write_all(MAGIC).map_err(io)?;
        out.write_all(&[1, 0]).map_err(io)?;
        out.write_all(&(header.len() as u16).to_le_bytes()).map_err(io)?;
        out.write_all(header.as_bytes()).map_err(io)?;
        Ok(NpyWriter {
            path: path.to_path_buf(),
            out,
            dtype,
            rows,
            cols,
            written: 0,
        })
    }

    /// Appends whole rows (`values.len()` a multiple of `cols`), converted to
    /// the file's element type (float16: rounded to nearest).
    pub fn write_rows(&mut self, values: &[f32]) -> Result<(), NpyError> {
        let n = values.len().checked_div(self.cols).unwrap_or(0);
        if n * self.cols != values.len() || self.written + n > self.rows {
            return Err(NpyError::RowCount {
                path: self.path.clone(),
                written: self.written + values.len().div_ceil(self.cols.max(1)),
                rows: self.rows,
            });
        }
        let io = |source| NpyError::Io {
            path: self.path.clone(),
            source,
        };
        let mut buf = Vec::with_capacity(values.len() * self.dtype.size());
        match self.dtype {
            NpyDtype::F16 => values
                .iter()
                .for_each(|v| buf.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())),
            _ => values.iter().for_each(|v| buf.extend_from_slice(&v.to_le_bytes())),
        }
        self.out.write_all(&buf).map_err(io)?;
        self.written += n;
        Ok(())
    }

    /// Rows written so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// Flushes the file; an error unless every promised row was written.
    pub fn finish(mut self) -> Result<(), NpyError> {
        if self.written != self.rows {
            return Err(NpyError::RowCount {
                path: self.path,
                written: self.written,
                rows: self.rows,
            });
        }
        let path = self.path.clone();
        self.out.flush().map_err(|source| NpyError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([1u8, 0]);
        out.extend((h.len() as u16).to_le_bytes());
        out.extend(h.as_bytes());
        out.extend(data);
        out
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_what_tch_writes_and_blocks_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        let x = Tensor::arange(60, (Kind::Float, tch::Device::Cpu)).reshape([12, 5]) * 0.5;
        x.write_npy(&p).unwrap();
        let m = NpyMatrix::open(&p).unwrap();
        assert_eq!((m.rows(), m.cols(), m.dtype()), (12, 5, NpyDtype::F32));
        let e = m.block(10, 3).unwrap_err().to_string();
        assert!(e.contains("rows 10..13 are outside the 12 rows"), "{e}");
        assert!(m.to_tensor().unwrap().equal(&x));
        assert!(m.block(3, 4).unwrap().equal(&x.narrow(0, 3, 4)));
        assert_eq!(m.block(0, 0).unwrap().size(), vec![0, 5]);
        let mapped = m.into_mapped_tensor().unwrap();
        assert!(mapped.equal(&x));
        // Copy-on-write: writing to the tensor leaves the file alone.
        let _ = mapped.get(0).fill_(7.0);
        assert!(NpyMatrix::open(&p).unwrap().to_tensor().unwrap().equal(&x));
    }

    /// A file-backed tensor has the matrix's values, outlives the `NpyMatrix` and the file's
    /// name (libtorch holds the mapping), and reads rows without a copy of the whole.
    #[test]
    fn file_tensor_views_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let x = Tensor::randn([1000, 257], (Kind::Float, tch::Device::Cpu));
        let p = dir.path().join("f.npy");
        let mut w = NpyWriter::create(&p, 1000, 257, NpyDtype::F32).unwrap();
        w.write_rows(&Vec::<f32>::try_from(&x.flatten(0, -1)).unwrap()).unwrap();
        w.finish().unwrap();
        let t = NpyMatrix::open(&p).unwrap().file_tensor().unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(t.size(), [1000, 257]);
        assert!(t.equal(&x));
        let idx = Tensor::from_slice(&[999i64, 0, 5]);
        assert!(t.index_select(0, &idx).equal(&x.index_select(0, &idx)));
        // The same reductions to the last bit (the probes' standardisation reads such files).
        let dim = Some([0i64].as_slice());
        assert!(t.mean_dim(dim, true, Kind::Float).equal(&x.mean_dim(dim, true, Kind::Float)));
        assert!(t.std_dim(dim, false, true).equal(&x.std_dim(dim, false, true)));
    }

    /// A float16 file's tensor is float16 over the file (half the pages): the halves
    /// written, read back without conversion; `largest` is the range the writer can keep.
    #[test]
    fn a_float16_file_tensor_is_float16_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let x = Tensor::randn([300, 33], (Kind::Float, tch::Device::Cpu)) * 1000.0;
        let p = dir.path().join("h.npy");
        let mut w = NpyWriter::create(&p, 300, 33, NpyDtype::F16).unwrap();
        w.write_rows(&Vec::<f32>::try_from(&x.flatten(0, -1)).unwrap()).unwrap();
        w.finish().unwrap();
        let m = NpyMatrix::open(&p).unwrap();
        let t = m.file_tensor().unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!((t.size(), t.kind()), (vec![300, 33], Kind::Half));
        assert!(t.equal(&x.to_kind(Kind::Half)));
        assert!(m
            .block(5, 7)
            .unwrap()
            .equal(&x.to_kind(Kind::Half).to_kind(Kind::Float).narrow(0, 5, 7)));
        assert_eq!(NpyDtype::F16.largest(), 65504.0);
        assert_eq!(NpyDtype::F32.largest(), f32::MAX);
    }

    #[test]
    fn writer_writes_what_tch_writes_block_by_block() {
        let dir = tempfile::tempdir().unwrap();
        for (rows, cols) in [(1usize, 1usize), (7, 3), (2000, 2048), (5, 100_000), (0, 4)] {
            let x = Tensor::randn([rows as i64, cols as i64], (Kind::Float, tch::Device::Cpu));
            for (dtype, kind) in [(NpyDtype::F32, Kind::Float), (NpyDtype::F16, Kind::Half)] {
                let want = dir.path().join("tch.npy");
                x.to_kind(kind).write_npy(&want).unwrap();
                let got = dir.path().join("ours.npy");
                let mut w = NpyWriter::create(&got, rows, cols, dtype).unwrap();
                let values = Vec::<f32>::try_from(&x.flatten(0, -1)).unwrap();
                for block in values.chunks(3 * cols.max(1)) {
                    w.write_rows(block).unwrap();
                }
                assert_eq!(w.written(), rows);
                w.finish().unwrap();
                assert!(
                    std::fs::read(&want).unwrap() == std::fs::read(&got).unwrap(),
                    "{rows} x {cols} {dtype:?}"
                );
            }
        }
        // Too few or too many rows, a partial row, an element type it does not write.
        let p = dir.path().join("short.npy");
        let mut w = NpyWriter::create(&p, 2, 3, NpyDtype::F32).unwrap();
        w.write_rows(&[0.0; 3]).unwrap();
        assert!(w.write_rows(&[0.0; 2]).is_err());
        assert_eq!(
            w.finish().unwrap_err().to_string(),
            format!("{}: 1 rows written, the header promises 2", p.display())
        );
        let mut w = NpyWriter::create(&p, 1, 3, NpyDtype::F32).unwrap();
        assert!(w.write_rows(&[0.0; 6]).is_err());
        assert!(NpyWriter::create(&p, 1, 3, NpyDtype::I64)
            .unwrap_err()
            .to_string()
            .contains("element type `<i8`"));
    }

    #[test]
    fn float16_is_read_as_float32() {
        let dir = tempfile::tempdir().unwrap();
        let vals = [1.0f32, -2.5, 0.125, 65504.0];
        let half = Tensor::from_slice(&vals).to_kind(Kind::Half);
        let mut raw = vec![0u8; 8];
        half.copy_data_u8(&mut raw, 4);
        let p = write(&dir, "h.npy", &npy_bytes("<f2", "(2, 2)", &raw));
        let m = NpyMatrix::open(&p).unwrap();
        assert_eq!(m.dtype(), NpyDtype::F16);
        let t = m.to_tensor().unwrap();
        assert_eq!(t.kind(), Kind::Float);
        assert_eq!(Vec::<f32>::try_from(&t.reshape([-1])).unwrap(), vals.to_vec());
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f32s: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "magic.npy",
                b"not numpy at all".to_vec(),
                "not a .npy file (missing the \\x93NUMPY magic)",
            ),
            (
                "dtype.npy",
                npy_bytes("<i8", "(3, 2)", &[0u8; 48]),
                "element type `<i8` is not supported here",
            ),
            ("bigendian.npy", npy_bytes(">f4", "(3, 2)", &f32s), "element type `>f4`"),
            ("shape.npy", npy_bytes("<f4", "(6,)", &f32s), "shape [6] is not 2-D"),
            ("short.npy", npy_bytes("<f4", "(4, 2)", &f32s), "truncated: "),
            ("long.npy", npy_bytes("<f4", "(2, 2)", &f32s), "8 trailing bytes"),
            ("fortran.npy", npy_bytes("<f4", "(3, 2)", &f32s), ""),
        ];
        for (name, bytes, want) in cases {
            let mut bytes = bytes;
            if name == "fortran.npy" {
                let at = bytes.windows(5).position(|w| w == b"False").unwrap();
                bytes[at..at + 5].copy_from_slice(b"True ");
            }
            let p = write(&dir, name, &bytes);
            let e = NpyMatrix::open(&p).unwrap_err().to_string();
            assert!(e.starts_with(&p.display().to_string()), "{e}");
            let want = if name == "fortran.npy" { "Fortran-ordered" } else { want };
            assert!(e.contains(want), "{name}: {e}");
        }
        let missing = dir.path().join("absent.npy");
        assert!(NpyMatrix::open(&missing).unwrap_err().to_string().contains("absent.npy"));
    }

    #[test]
    fn read_npy_keeps_integer_types() {
        let dir = tempfile::tempdir().unwrap();
        let ints: Vec<u8> = (0..6i32).flat_map(|i| i.to_le_bytes()).collect();
        let p = write(&dir, "i.npy", &npy_bytes("<i4", "(2, 3)", &ints));
        let (h, t) = read_npy(&p).unwrap();
        assert_eq!(h.dtype, NpyDtype::I32);
        assert_eq!(h.shape, vec![2, 3]);
        assert_eq!(t.kind(), Kind::Int);
        assert_eq!(Vec::<i32>::try_from(&t.reshape([-1])).unwrap(), vec![0, 1, 2, 3, 4, 5]);
    }
}
