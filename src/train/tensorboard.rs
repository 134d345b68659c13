//! TensorBoard event files, so that a training run's curves can be watched while it runs:
//! TFRecord framing (length, masked CRC-32C of the length, data, masked CRC-32C of the
//! data) of `Event` protocol buffers (wall time, step, and a file version, scalars or a
//! session start), written and flushed one event at a time; and a strict reader of them.
//!
//! Only the fields ktlab writes are encoded, by hand: `Event` {1 wall_time, 2 step,
//! 3 file_version, 5 summary, 7 session_log}, `Summary` {1 value}, `Summary.Value` {1 tag,
//! 2 simple_value}, `SessionLog` {1 status, 3 msg} (TensorBoard's `event.proto` and
//! `summary.proto`). The reader skips every other field.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The first event of every file: TensorBoard honours `SessionLog` starts from version 2 on.
pub const FILE_VERSION: &str = "brain.Event:2";

/// What TensorBoard looks for in the name of an event file.
const NAME_PREFIX: &str = "events.out.tfevents.";

/// `SessionLog.status` START: a training (re)starts at this event's step.
const SESSION_START: u64 = 1;

/// One event of an event file.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    pub step: i64,
    pub what: What,
}

#[derive(Clone, Debug, PartialEq)]
pub enum What {
    /// The file's format (`brain.Event:2`): its first event.
    FileVersion(String),
    /// Scalars by tag.
    Scalars(Vec<(String, f32)>),
    /// A training starts at `step` (`SessionLog` START): the points at `step` and after,
    /// written before it, are out of date. TensorBoard drops them (its scalar dashboard's
    /// reader from the second start of a run on, `EventAccumulator` from the first).
    Start { message: String },
    /// Anything else (read, never written).
    Other,
}

/// Bytes that are not a valid event file: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("byte {offset}: {what}")]
pub struct FormatError {
    pub offset: usize,
    pub what: String,
}

/// An event file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventFileError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Format { path: PathBuf, source: FormatError },
}

impl Event {
    /// The event as `Event` protocol-buffer bytes (fields at their default left out).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.wall_time != 0.0 {
            tag(&mut out, 1, FIXED64);
            out.extend_from_slice(&self.wall_time.to_le_bytes());
        }
        if self.step != 0 {
            tag(&mut out, 2, VARINT);
            varint(&mut out, self.step as u64);
        }
        match &self.what {
            What::FileVersion(v) => bytes_field(&mut out, 3, v.as_bytes()),
            What::Scalars(values) => {
                let mut summary = Vec::new();
                for (name, value) in values {
                    let mut v = Vec::new();
                    bytes_field(&mut v, 1, name.as_bytes());
                    tag(&mut v, 2, FIXED32);
                    v.extend_from_slice(&value.to_le_bytes());
                    bytes_field(&mut summary, 1, &v);
                }
                bytes_field(&mut out, 5, &summary);
            }
            What::Start { message } => {
                let mut log = Vec::new();
                tag(&mut log, 1, VARINT);
                varint(&mut log, SESSION_START);
                if !message.is_empty() {
                    bytes_field(&mut log, 3, message.as_bytes());
                }
                bytes_field(&mut out, 7, &log);
            }
            What::Other => {}
        }
        out
    }

    /// An `Event` from its protocol-buffer bytes.
    pub fn decode(bytes: &[u8]) -> Result<Event, FormatError> {
        let mut event = Event {
            wall_time: 0.0,
            step: 0,
            what: What::Other,
        };
        for field in Fields::new(bytes) {
            match field? {
                (1, Value::Fixed64(b)) => event.wall_time = f64::from_le_bytes(b),
                (2, Value::Varint(v)) => event.step = v as i64,
                (3, Value::Bytes(b)) => event.what = What::FileVersion(utf8(b)?),
                (5, Value::Bytes(b)) => event.what = What::Scalars(decode_summary(b)?),
                (7, Value::Bytes(b)) => {
                    let (mut status, mut message) = (0, String::new());
                    for field in Fields::new(b) {
                        match field? {
                            (1, Value::Varint(v)) => status = v,
                            (3, Value::Bytes(m)) => message = utf8(m)?,
                            _ => {}
                        }
                    }
                    if status == SESSION_START {
                        event.what = What::Start { message };
                    }
                }
                _ => {}
            }
        }
        Ok(event)
    }
}

/// `Summary.value`s that carry a `simple_value`, as (tag, value).
fn decode_summary(bytes: &[u8]) -> Result<Vec<(String, f32)>, FormatError> {
    let mut values = Vec::new();
    for field in Fields::new(bytes) {
        if let (1, Value::Bytes(v)) = field? {
            let (mut name, mut value) = (String::new(), None);
            for f in Fields::new(v) {
                match f? {
                    (1, Value::Bytes(t)) => name = utf8(t)?,
                    (2, Value::Fixed32(b)) => value = Some(f32::from_le_bytes(b)),
                    _ => {}
                }
            }
            if let Some(value) = value {
                values.push((name, value));
            }
        }
    }
    Ok(values)
}

fn utf8(b: &[u8]) -> Result<String, FormatError> {
    String::from_utf8(b.to_vec()).map_err(|e| FormatError {
        offset: e.utf8_error().valid_up_to(),
        what: "a string that is not UTF-8".into(),
    })
}

// Protocol-buffer wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const BYTES: u8 = 2;
const FIXED32: u8 = 5;

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    tag(out, field, BYTES);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A field's value, by wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
}

/// The (field number, value) pairs of one message, in order.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Fields<'a> {
        Fields { bytes, at: 0 }
    }

    fn error(&mut self, what: &str) -> FormatError {
        let offset = self.at;
        self.at = self.bytes.len();
        FormatError { offset, what: what.into() }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len())?;
        let b = &self.bytes[self.at..end];
        self.at = end;
        Some(b)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let Some(key) = self.varint() else {
            return Some(Err(self.error("a truncated field key")));
        };
        let field = key >> 3;
        let value = match (key & 7) as u8 {
            VARINT => self.varint().map(Value::Varint),
            FIXED64 => self.take(8).and_then(|b| b.try_into().ok()).map(Value::Fixed64),
            BYTES => match self.varint().and_then(|n| usize::try_from(n).ok()) {
                Some(n) => self.take(n).map(Value::Bytes),
                None => None,
            },
            FIXED32 => self.take(4).and_then(|b| b.try_into().ok()).map(Value::Fixed32),
            other => return Some(Err(self.error(&format!("wire type {other} of field {field}")))),
        };
        Some(
            value
                .map(|v| (field, v))
                .ok_or_else(|| self.error(&format!("field {field} is truncated"))),
        )
    }
}

/// CRC-32C of `data`, masked as TFRecord stores it (rotated right by 15 bits, plus a
/// constant), so that a CRC of data holding CRCs stays a good checksum.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: the length (u64, little-endian), its masked CRC, the data, its masked CRC.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The records of a TFRecord file, every CRC checked. A file that ends inside a record
/// is an error (a reader of a live file may retry it later).
pub fn records(bytes: &[u8]) -> Result<Vec<&[u8]>, FormatError> {
    let mut out = Vec::new();
    let mut at = 0;
    let fail = |offset: usize, what: &str| FormatError { offset, what: what.into() };
    while at < bytes.len() {
        let header = bytes.get(at..at + 12).ok_or_else(|| fail(at, "a truncated record header"))?;
        let (len, len_crc) = header.split_at(8);
        if masked_crc(len).to_le_bytes() != len_crc {
            return Err(fail(at, "the CRC of the record length does not match"));
        }
        let n = u64::from_le_bytes(len.try_into().unwrap_or_default());
        let start = at + 12;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .and_then(|e| e.checked_add(4))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| fail(at, &format!("a record of {n} bytes runs past the end of the file")))?;
        let (data, crc) = bytes[start..end].split_at(end - start - 4);
        if masked_crc(data).to_le_bytes() != crc {
            return Err(fail(at, "the CRC of the record data does not match"));
        }
        out.push(data);
        at = end;
    }
    Ok(out)
}

/// Every event of one event file, in order.
pub fn read_events(path: &Path) -> Result<Vec<Event>, EventFileError> {
    let bytes = std::fs::read(path).map_err(|source| EventFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |source| EventFileError::Format {
        path: path.to_path_buf(),
        source,
    };
    records(&bytes)
        .map_err(format)?
        .into_iter()
        .map(|r| Event::decode(r).map_err(format))
        .collect()
}

/// The event files in `dir`, in the order TensorBoard reads them (by name).
pub fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(NAME_PREFIX))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// An event file being written: every event is written in one piece and flushed, so that
/// TensorBoard sees it at once.
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

impl EventWriter {
    /// Opens a new event file in `dir` (created if needed) and writes its file version.
    /// With `fresh`, the event files already there are removed first (a run starting over);
    /// otherwise they stay, and the new file's name sorts after theirs:
    /// `events.out.tfevents.<seconds>.<n>.<host>`, `n` one more than the files there.
    pub fn create(dir: &Path, fresh: bool) -> io::Result<EventWriter> {
        std::fs::create_dir_all(dir)?;
        let earlier = event_files(dir);
        if fresh {
            for f in &earlier {
                std::fs::remove_file(f)?;
            }
        }
        let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let host = if host.is_empty() { "localhost".to_string() } else { host };
        let mut n = if fresh { 1 } else { earlier.len() + 1 };
        let (file, path) = loop {
            let path = dir.join(format!("{NAME_PREFIX}{seconds:010}.{n:04}.{host}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e),
            }
        };
        let mut writer = EventWriter { file, path };
        writer.write(&Event {
            wall_time: now(),
            step: 0,
            what: What::FileVersion(FILE_VERSION.into()),
        })?;
        Ok(writer)
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Scalars at `step`, in one event.
    pub fn scalars(&mut self, step: i64, values: &[(&str, f64)]) -> io::Result<()> {
        self.write(&Event {
            wall_time: now(),
            step,
            what: What::Scalars(values.iter().map(|(t, v)| (t.to_string(), *v as f32)).collect()),
        })
    }

    /// A training starting at `step`: TensorBoard drops what earlier files hold at `step`
    /// and after.
    pub fn start(&mut self, step: i64, message: &str) -> io::Result<()> {
        self.write(&Event {
            wall_time: now(),
            step,
            what: What::Start { message: message.into() },
        })
    }

    fn write(&mut self, event: &Event) -> io::Result<()> {
        self.file.write_all(&frame(&event.encode()))?;
        self.file.flush()
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Bytes from TensorBoard's own Python classes (`event_pb2.Event(...).SerializeToString()`,
    /// `RecordWriter`), tensorboard 2.21.0.
    #[test]
    fn encoding_matches_tensorboards_own_bytes() {
        let scalar = Event {
            wall_time: 1.5,
            step: 3,
            what: What::Scalars(vec![("a/b".into(), 0.25)]),
        };
        assert_eq!(hex(&scalar.encode()), "09000000000000f83f10032a0c0a0a0a03612f62150000803e");
        let start = Event {
            wall_time: 2.0,
            step: 7,
            what: What::Start { message: String::new() },
        };
        assert_eq!(hex(&start.encode()), "09000000000000004010073a020801");
        let version = Event {
            wall_time: 0.0,
            step: 0,
            what: What::FileVersion(FILE_VERSION.into()),
        };
        assert_eq!(hex(&version.encode()), "1a0d627261696e2e4576656e743a32");
        assert_eq!(hex(&frame(b"hello")), "0500000000000000eab2043e68656c6c6fbb1f1c19");
        for e in [scalar, start, version] {
            assert_eq!(Event::decode(&e.encode()).unwrap(), e);
        }
    }

    #[test]
    fn the_crc_is_crc32c_masked() {
        // CRC-32C's check value (RFC 3720), masked.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xe306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn every_damaged_byte_of_a_record_is_caught() {
        let good = [frame(b"first"), frame(b"second record")].concat();
        assert_eq!(records(&good).unwrap(), [&b"first"[..], b"second record"]);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(records(&bad).is_err(), "byte {i} flipped went unnoticed");
        }
        for cut in 1..good.len() {
            if cut == frame(b"first").len() {
                continue;
            }
            let e = records(&good[..cut]).unwrap_err();
            assert!(e.what.contains("truncated") || e.what.contains("past the end"), "{cut}: {e}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&[0xffu8; 3][..], &[0x0b], &[0x0a, 0x05, 1], &[0x09, 1, 2]] {
            assert!(Event::decode(bytes).is_err(), "{bytes:?}");
        }
        assert!(records(&[0xff; 40]).is_err());
    }

    #[test]
    fn a_writer_appends_flushed_events_and_a_fresh_one_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = EventWriter::create(dir.path(), true).unwrap();
        first.scalars(10, &[("epoch/loss", 2.5), ("epoch/lr", 0.1)]).unwrap();
        // Read while the writer is open: nothing is left in a buffer.
        let events = read_events(first.path()).unwrap();
        assert_eq!(events[0].what, What::FileVersion(FILE_VERSION.into()));
        assert_eq!(events[1].step, 10);
        assert_eq!(
            events[1].what,
            What::Scalars(vec![("epoch/loss".into(), 2.5), ("epoch/lr".into(), 0.1)])
        );
        assert!(events[1].wall_time > 1.6e9);
        let mut second = EventWriter::create(dir.path(), false).unwrap();
        second.start(11, "resumed").unwrap();
        let files = event_files(dir.path());
        assert_eq!(files, [first.path().to_path_buf(), second.path().to_path_buf()]);
        assert_eq!(
            read_events(second.path()).unwrap()[1].what,
            What::Start { message: "resumed".into() }
        );
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let third = EventWriter::create(dir.path(), true).unwrap();
        assert_eq!(event_files(dir.path()), [third.path().to_path_buf()]);
        assert!(dir.path().join("notes.txt").exists(), "only event files are removed");
    }
}
