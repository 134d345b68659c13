//! A TOML document as a tree in which every key and value remembers its file and span,
//! so that validation long after parsing can still point at line and column.
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{did_you_mean, ConfigError, SourceFile};

/// One value with where it was written.
#[derive(Clone)]
pub struct Node {
    pub value: Value,
    pub span: Range<usize>,
    pub file: Arc<SourceFile>,
}

#[derive(Clone, Debug)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Array(Vec<Node>),
    Table(Table),
}

/// A table: key -> (span of the key, value).
pub type Table = IndexMap<String, (Range<usize>, Node)>;

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl Node {
    /// Parses a whole TOML document.
    pub fn parse(file: Arc<SourceFile>) -> Result<Node, ConfigError> {
        let parsed: Result<toml::Spanned<RawValue>, toml::de::Error> = toml::from_str(&file.text);
        match parsed {
            Ok(v) => Ok(Node::from_raw(v, &file)),
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                let (line, col) = file.line_col(offset);
                Err(ConfigError::Located {
                    file: file.path.clone(),
                    line,
                    col,
                    key: String::new(),
                    message: format!("invalid TOML: {}", e.message().trim()),
                    hint: None,
                })
            }
        }
    }

    fn from_raw(v: toml::Spanned<RawValue>, file: &Arc<SourceFile>) -> Node {
        let span = v.span();
        let value = match v.into_inner() {
            RawValue::String(s) => Value::String(s),
            RawValue::Integer(i) => Value::Integer(i),
            RawValue::Float(x) => Value::Float(x),
            RawValue::Boolean(b) => Value::Boolean(b),
            RawValue::Array(items) => Value::Array(items.into_iter().map(|i| Node::from_raw(i, file)).collect()),
            RawValue::Table(entries) => Value::Table(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let kspan = k.span();
                        (k.into_inner(), (kspan, Node::from_raw(v, file)))
                    })
                    .collect(),
            ),
        };
        Node { value, span, file: file.clone() }
    }

    /// An error located at this node.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.error_at(self.span.start, key, message, None)
    }

    pub fn error_hint(&self, key: &str, message: impl Into<String>, hint: Option<String>) -> ConfigError {
        self.error_at(self.span.start, key, message, hint)
    }

    pub fn error_at(&self, offset: usize, key: &str, message: impl Into<String>, hint: Option<String>) -> ConfigError {
        let (line, col) = self.file.line_col(offset);
        ConfigError::Located { file: self.file.path.clone(), line, col, key: key.to_string(), message: message.into(), hint }
    }

    pub fn as_table(&self) -> Option<&Table> {
        match &self.value {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.value.type_name()
    }

    /// Converts to a plain `toml::Value` (spans dropped) for serde.
    pub fn to_toml(&self) -> toml::Value {
        match &self.value {
            Value::String(s) => toml::Value::String(s.clone()),
            Value::Integer(i) => toml::Value::Integer(*i),
            Value::Float(x) => toml::Value::Float(*x),
            Value::Boolean(b) => toml::Value::Boolean(*b),
            Value::Array(items) => toml::Value::Array(items.iter().map(Node::to_toml).collect()),
            Value::Table(t) => toml::Value::Table(t.iter().map(|(k, (_, v))| (k.clone(), v.to_toml())).collect()),
        }
    }

    /// The value as canonical JSON (for keys and variant names).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
            Value::Boolean(b) => serde_json::Value::Bool(*b),
            Value::Array(items) => serde_json::Value::Array(items.iter().map(Node::to_json).collect()),
            Value::Table(t) => serde_json::Value::Object(t.iter().map(|(k, (_, v))| (k.clone(), v.to_json())).collect()),
        }
    }

    /// A short rendering of a scalar, for variant names and messages.
    pub fn display(&self) -> String {
        match &self.value {
            Value::String(s) => s.clone(),
            _ => self.to_toml().to_string(),
        }
    }

    /// Deserializes this table into `T`, reporting unknown keys (with "did you mean")
    /// and type errors at the offending key. `prefix` is the key path of this table.
    pub fn decode<T: DeserializeOwned>(&self, prefix: &str) -> Result<T, ConfigError> {
        let value = self.to_toml();
        let mut unknown: Vec<String> = Vec::new();
        let mut track = |path: serde_ignored::Path| unknown.push(path.to_string());
        let de = serde_ignored::Deserializer::new(value, &mut track);
        let result: Result<T, serde_path_to_error::Error<toml::de::Error>> = serde_path_to_error::deserialize(de);
        let join = |rest: &str| if prefix.is_empty() { rest.to_string() } else if rest.is_empty() { prefix.to_string() } else { format!("{prefix}.{rest}") };
        match result {
            Err(e) => {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                let inner = e.into_inner();
                let message = inner.message().trim().to_string();
                if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
                    return Err(self.error(&join(&path), format!("missing required key `{missing}`")));
                }
                let node = self.lookup(&path).unwrap_or(self);
                Err(node.error(&join(&path), message))
            }
            Ok(v) => {
                if let Some(path) = unknown.first() {
                    let (node_offset, parent) = self.key_offset(path);
                    let last = path.rsplit('.').next().unwrap_or(path);
                    let known = struct_fields::<T>();
                    let hint = did_you_mean(last, known.iter().copied()).or_else(|| {
                        (!known.is_empty()).then(|| format!("known keys here: {}", known.join(", ")))
                    });
                    let _ = parent;
                    return Err(self.error_at(node_offset, &join(path), "unknown key", hint));
                }
                Ok(v)
            }
        }
    }

    /// The node at a dotted path below this one (`a.b.0.c`).
    pub fn lookup(&self, path: &str) -> Option<&Node> {
        if path.is_empty() {
            return Some(self);
        }
        let mut node = self;
        for seg in path.split('.') {
            node = match &node.value {
                Value::Table(t) => &t.get(seg)?.1,
                Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Offset of the key at a dotted path (falls back to this node's start).
    fn key_offset(&self, path: &str) -> (usize, &Node) {
        let (parent_path, last) = path.rsplit_once('.').unwrap_or(("", path));
        match self.lookup(parent_path).and_then(|p| p.as_table().map(|t| (p, t))) {
            Some((p, t)) => (t.get(last).map(|(ks, _)| ks.start).unwrap_or(p.span.start), p),
            None => (self.span.start, self),
        }
    }
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

/// The intermediate form deserialized straight from toml, with spans.
enum RawValue {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Array(Vec<toml::Spanned<RawValue>>),
    Table(Vec<(toml::Spanned<String>, toml::Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
                Ok(RawValue::Boolean(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
                Ok(RawValue::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
                i64::try_from(v).map(RawValue::Integer).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
                Ok(RawValue::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
                Ok(RawValue::String(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
                Ok(RawValue::String(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawValue::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<toml::Spanned<String>>()? {
                    if k.get_ref().starts_with("$__toml_private") {
                        return Err(de::Error::custom("dates and times are not supported in ktlab configuration"));
                    }
                    let v = map.next_value()?;
                    entries.push((k, v));
                }
                Ok(RawValue::Table(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// The field names of a struct `T`, found by asking its `Deserialize` impl.
pub fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}
