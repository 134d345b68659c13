//! Keys: SHA-256 of the canonical JSON of everything that determines a stage's output.
use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; 32]);

impl Key {
    pub fn of(key_input: &Value) -> Key {
        Key(Sha256::digest(canonical_json(key_input).as_bytes()).into())
    }

    /// The SHA-256 digest itself.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The 12-character form used in listings.
    pub fn short(&self) -> String {
        self.hex()[..12].to_string()
    }

    pub fn parse(s: &str) -> Option<Key> {
        let bytes = hex::decode(s).ok()?;
        Some(Key(bytes.try_into().ok()?))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.short())
    }
}

/// JSON with object keys sorted at every level and no insignificant whitespace.
pub fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(v)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        assert_eq!(
            Key::of(&json!({"a": 1, "b": [1, {"y": 2, "x": 3}]})),
            Key::of(&json!({"b": [1, {"x": 3, "y": 2}], "a": 1}))
        );
        assert_ne!(Key::of(&json!({"a": 1})), Key::of(&json!({"a": 2})));
    }

    proptest! {
        #[test]
        fn distinct_values_distinct_keys(a in any::<i64>(), b in any::<i64>()) {
            prop_assume!(a != b);
            prop_assert_ne!(Key::of(&json!({"k": a})), Key::of(&json!({"k": b})));
        }

        #[test]
        fn hex_round_trips(s in "[a-z]{0,20}") {
            let k = Key::of(&json!(s));
            prop_assert_eq!(Key::parse(&k.hex()), Some(k));
        }
    }
}
