//! Counts that must be positive (epochs, clusters, batch size), refused where they are read:
//! `k = 0` reads "expected a positive whole number, found 0", not a panic or a run of nothing.
use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A whole number of at least 1. Serializes as the plain number, so a key computed over
/// a `usize` field stays the same when the field becomes a `PositiveCount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PositiveCount(NonZeroUsize);

const EXPECTED: &str = "a positive whole number";

impl PositiveCount {
    /// `None` for 0.
    pub fn new(n: usize) -> Option<PositiveCount> {
        NonZeroUsize::new(n).map(PositiveCount)
    }

    pub fn get(self) -> usize {
        self.0.get()
    }
}

impl From<NonZeroUsize> for PositiveCount {
    fn from(n: NonZeroUsize) -> Self {
        PositiveCount(n)
    }
}

impl From<PositiveCount> for usize {
    fn from(n: PositiveCount) -> usize {
        n.get()
    }
}

impl fmt::Display for PositiveCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for PositiveCount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let found = || format!("expected {EXPECTED}, found {s}");
        let n: i128 = s.trim().parse().map_err(|_| found())?;
        usize::try_from(n).ok().and_then(PositiveCount::new).ok_or_else(found)
    }
}

impl Serialize for PositiveCount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get() as u64)
    }
}

impl<'de> Deserialize<'de> for PositiveCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = PositiveCount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PositiveCount, E> {
        usize::try_from(v)
            .ok()
            .and_then(PositiveCount::new)
            .ok_or_else(|| E::custom(format!("expected {EXPECTED}, found {v}")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PositiveCount, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("expected {EXPECTED}, found {v}"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<PositiveCount, E> {
        Err(E::custom(format!("expected {EXPECTED}, found {v}")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<PositiveCount, E> {
        Err(E::custom(format!("expected {EXPECTED}, found {v}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PositiveCount, E> {
        Err(E::invalid_type(Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Node, SourceFile};

    #[derive(Debug, Deserialize, Serialize)]
    struct Stage {
        k: PositiveCount,
    }

    fn decode(value: &str) -> Result<usize, String> {
        let root = Node::parse(SourceFile::inline("e.toml", format!("[s]\nk = {value}\n"))).expect("TOML");
        let stage = root.lookup("s").expect("s");
        stage.decode::<Stage>("s").map(|s| s.k.get()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_positive_count_reads_whole_numbers_from_one() {
        assert_eq!(decode("1"), Ok(1));
        assert_eq!(decode("16"), Ok(16));
        assert_eq!(
            decode("0"),
            Err("e.toml:2:5: `s.k`: expected a positive whole number, found 0".into())
        );
        assert_eq!(
            decode("-4"),
            Err("e.toml:2:5: `s.k`: expected a positive whole number, found -4".into())
        );
        assert_eq!(
            decode("2.5"),
            Err("e.toml:2:5: `s.k`: expected a positive whole number, found 2.5".into())
        );
        assert_eq!(
            decode("\"four\""),
            Err("e.toml:2:5: `s.k`: invalid type: string \"four\", expected a positive whole number".into())
        );
    }

    #[test]
    fn a_positive_count_serializes_as_the_plain_number() {
        let s = Stage {
            k: PositiveCount::new(8).expect("8 > 0"),
        };
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"k":8}"#);
        assert_eq!("3".parse::<PositiveCount>().map(PositiveCount::get), Ok(3));
        assert_eq!(
            "0".parse::<PositiveCount>(),
            Err("expected a positive whole number, found 0".to_string())
        );
        assert!(PositiveCount::new(0).is_none());
    }
}
