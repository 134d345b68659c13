//! A TOML document as a tree in which every key and value remembers its file and span,
//! so that validation long after parsing can still point at line and column.
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::words::humanize;
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
    /// Parses a whole TOML document, keeping the span of every key and value.
    pub fn parse(file: Arc<SourceFile>) -> Result<Node, ConfigError> {
        let parsed = toml::de::DeTable::parse(&file.text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let (line, col) = file.line_col(offset);
            let mut message = format!("invalid TOML: {}", e.message().trim());
            // Name the repeated key (the parser's message does not).
            if message.ends_with("duplicate key") {
                if let Some(key) = e.span().and_then(|s| file.text.get(s)) {
                    let key = key.trim().trim_matches(['[', ']']).trim();
                    if !key.is_empty() && key.len() <= 200 {
                        message.push_str(&format!(" `{}`", key.escape_debug()));
                    }
                }
            }
            ConfigError::Located {
                file: file.path.clone(),
                line,
                col,
                key: String::new(),
                message,
                hint: None,
            }
        })?;
        let span = parsed.span();
        let table = Self::from_table(parsed.into_inner(), &file)?;
        Ok(Node {
            value: Value::Table(table),
            span,
            file,
        })
    }

    fn from_table(t: toml::de::DeTable<'_>, file: &Arc<SourceFile>) -> Result<Table, ConfigError> {
        let mut out = Table::new();
        for (k, v) in t {
            let kspan = k.span();
            out.insert(k.into_inner().into_owned(), (kspan, Self::from_de(v, file)?));
        }
        Ok(out)
    }

    fn from_de(v: toml::Spanned<toml::de::DeValue<'_>>, file: &Arc<SourceFile>) -> Result<Node, ConfigError> {
        use toml::de::DeValue;
        let span = v.span();
        let bad = |m: &str| {
            let (line, col) = file.line_col(span.start);
            ConfigError::Located {
                file: file.path.clone(),
                line,
                col,
                key: String::new(),
                message: m.to_string(),
                hint: None,
            }
        };
        let value = match v.into_inner() {
            DeValue::String(s) => Value::String(s.into_owned()),
            DeValue::Integer(i) => Value::Integer(i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| bad("integer out of range"))?),
            DeValue::Float(x) => Value::Float(x.as_str().parse::<f64>().map_err(|_| bad("invalid float"))?),
            DeValue::Boolean(b) => Value::Boolean(b),
            DeValue::Datetime(_) => return Err(bad("dates and times are not supported in ktlab configuration")),
            DeValue::Array(items) => Value::Array(items.into_iter().map(|i| Self::from_de(i, file)).collect::<Result<_, _>>()?),
            DeValue::Table(t) => Value::Table(Self::from_table(t, file)?),
        };
        Ok(Node {
            value,
            span,
            file: file.clone(),
        })
    }

    /// An error located at this node.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.error_at(self.span.start, key, message, None)
    }

    pub fn error_hint(&self, key: &str, message: impl Into<String>, hint: Option<String>) -> ConfigError {
        self.error_at(self.span.start, key, message, hint)
    }

    /// An error at a byte offset of this node's file; in the value of a `--set` it is
    /// blamed on that argument.
    pub fn error_at(&self, offset: usize, key: &str, message: impl Into<String>, hint: Option<String>) -> ConfigError {
        let message = message.into();
        if let Some(arg) = self.file.set_argument() {
            let named = key.is_empty() || message.contains(&format!("`{key}`"));
            let mut message = if named { message } else { format!("`{key}`: {message}") };
            if let Some(h) = hint {
                message.push_str(&format!(" ({h})"));
            }
            return ConfigError::Set {
                arg: arg.to_string(),
                message,
            };
        }
        let (line, col) = self.file.line_col(offset);
        ConfigError::Located {
            file: self.file.path.clone(),
            line,
            col,
            key: key.to_string(),
            message,
            hint,
        }
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
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
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
    /// and type errors at the offending key, in plain words (see [`humanize`]). `prefix`
    /// is the key path of this table.
    pub fn decode<T: DeserializeOwned>(&self, prefix: &str) -> Result<T, ConfigError> {
        match try_decode::<T>(self.to_toml()) {
            Err((path, message)) => Err(self.decode_error::<T>(prefix, &path, &message)),
            Ok((v, unknown)) => {
                if let Some(path) = unknown.first() {
                    let known = struct_fields::<T>();
                    let last = path.rsplit('.').next().unwrap_or(path);
                    let hint = did_you_mean(last, known.iter().copied())
                        .or_else(|| (!known.is_empty()).then(|| format!("known keys here: {}", known.join(", "))));
                    return Err(self.unknown_key(prefix, path, hint));
                }
                Ok(v)
            }
        }
    }

    /// [`Node::decode`] for a struct with `#[serde(flatten)]` fields, through which serde
    /// reports no unknown keys and no key path: every key of this table must be among
    /// `known` (the own fields and those of each flattened struct), and an error serde
    /// reports for the table as a whole is traced to the key that causes it.
    pub fn decode_flattened<T: DeserializeOwned>(&self, prefix: &str, known: &[&[&'static str]]) -> Result<T, ConfigError> {
        let all: Vec<&str> = known.iter().flat_map(|k| k.iter().copied()).collect();
        let v = match try_decode::<T>(self.to_toml()) {
            Ok((v, _)) => v,
            Err((path, message)) => return Err(self.decode_error::<T>(prefix, &path, &message)),
        };
        if let Some(table) = self.as_table() {
            for key in table.keys() {
                if !all.contains(&key.as_str()) {
                    let mut sorted = all.clone();
                    sorted.sort_unstable();
                    let hint = did_you_mean(key, all.iter().copied()).or_else(|| Some(format!("known keys here: {}", sorted.join(", "))));
                    return Err(self.unknown_key(prefix, key, hint));
                }
            }
        }
        Ok(v)
    }

    /// The key of this table whose value makes decoding fail with `message`: one whose
    /// value is the one serde names, and without which the error goes away or becomes
    /// another (a missing required key it is itself, or the next bad value).
    fn culprit<T: DeserializeOwned>(&self, message: &str) -> Option<&str> {
        let toml::Value::Table(whole) = self.to_toml() else { return None };
        let table = self.as_table()?;
        // Without the culprit, decoding succeeds or fails otherwise (Some(true)); a required
        // key's absence is an error of its own, which says nothing (Some(false)).
        let blame = |key: &str| {
            let mut without = whole.clone();
            without.remove(key);
            match try_decode::<T>(toml::Value::Table(without)) {
                Ok(_) => Some(true),
                Err((_, m)) if m == message => None,
                Err((_, m)) => match m.strip_prefix("missing field `").and_then(|r| r.strip_suffix('`')) {
                    Some(missing) if missing == key => Some(false),
                    Some(_) => None,
                    None => Some(true),
                },
            }
        };
        let candidates: Vec<(&str, bool)> = table
            .iter()
            .filter(|(_, (_, v))| found_matches(message, v))
            .filter_map(|(k, _)| blame(k).map(|definite| (k.as_str(), definite)))
            .collect();
        candidates
            .iter()
            .find(|(_, definite)| *definite)
            .or_else(|| candidates.first())
            .map(|(k, _)| *k)
    }

    /// The error for a failed decode of `T` at `path` below this table. serde names no
    /// path for an error inside a flattened struct: then the culprit key is searched for.
    fn decode_error<T: DeserializeOwned>(&self, prefix: &str, path: &str, message: &str) -> ConfigError {
        if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
            return self.error(&join_key(prefix, path), format!("missing required key `{missing}`"));
        }
        let path = match path {
            "" => self.culprit::<T>(message).unwrap_or_default(),
            p => p,
        };
        let node = self.lookup(path).unwrap_or(self);
        node.error(&join_key(prefix, path), humanize(message))
    }

    /// "unknown key" at the key's place; a key that only a `--set` wrote is blamed on it.
    fn unknown_key(&self, prefix: &str, path: &str, hint: Option<String>) -> ConfigError {
        let key = join_key(prefix, path);
        match self.lookup(path) {
            Some(value) if !Arc::ptr_eq(&value.file, &self.file) => value.error_hint(&key, format!("unknown key `{key}`"), hint),
            _ => self.error_at(self.key_offset(path), &key, "unknown key", hint),
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

    /// A path written as a value, resolved against the folder of the file this node comes
    /// from (call it on the stage table, not on the value: a `--set` value has no folder, and
    /// resolves like the file's own). Absolute, so that it does not depend on the working
    /// directory of whoever reads it later.
    pub fn resolve_path(&self, written: &str) -> std::path::PathBuf {
        let base = self.file.path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        let joined = base.join(written);
        std::path::absolute(&joined).unwrap_or(joined)
    }

    /// Offset of the key at a dotted path (falls back to this node's start).
    fn key_offset(&self, path: &str) -> usize {
        let (parent_path, last) = path.rsplit_once('.').unwrap_or(("", path));
        match self.lookup(parent_path).and_then(|p| p.as_table().map(|t| (p, t))) {
            Some((p, t)) => t.get(last).map(|(ks, _)| ks.start).unwrap_or(p.span.start),
            None => self.span.start,
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

/// Deserializes a plain TOML value into `T`, returning the keys serde ignored, or the key
/// path and serde's message of the first error.
fn try_decode<T: DeserializeOwned>(value: toml::Value) -> Result<(T, Vec<String>), (String, String)> {
    let mut unknown: Vec<String> = Vec::new();
    let mut track = |path: serde_ignored::Path| unknown.push(path.to_string());
    let de = serde_ignored::Deserializer::new(value, &mut track);
    let result: Result<T, serde_path_to_error::Error<toml::de::Error>> = serde_path_to_error::deserialize(de);
    match result {
        Ok(v) => Ok((v, unknown)),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            Err((path, e.into_inner().message().trim().to_string()))
        }
    }
}

/// Whether `node` could be the value serde's `message` names (`invalid type: floating point
/// `2.5`, ...`); true where the message names no value.
fn found_matches(message: &str, node: &Node) -> bool {
    let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    else {
        // A plain message ending "..., found 0" names the value too.
        return match message.rsplit_once(", found ") {
            Some((_, found)) if !matches!(node.value, Value::Array(_) | Value::Table(_)) => {
                let found = found.trim_matches(['`', '"']);
                let number = match node.value {
                    Value::Integer(i) => Some(i as f64),
                    Value::Float(x) => Some(x),
                    _ => None,
                };
                found == node.display() || (number.is_some() && found.parse::<f64>().ok() == number)
            }
            Some(_) => false,
            None => true,
        };
    };
    let found = rest.rsplit_once(", expected ").map_or(rest, |(found, _)| found);
    let quoted = |prefix: &str| found.strip_prefix(prefix).and_then(|r| r.strip_prefix('`')?.strip_suffix('`'));
    match &node.value {
        Value::Float(x) => quoted("floating point ")
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v == *x || (v.is_nan() && x.is_nan())),
        Value::Integer(i) => quoted("integer ").and_then(|v| v.parse::<i64>().ok()) == Some(*i),
        Value::Boolean(b) => quoted("boolean ").and_then(|v| v.parse::<bool>().ok()) == Some(*b),
        Value::String(s) => found == format!("string {s:?}"),
        Value::Array(_) => found == "sequence",
        Value::Table(_) => found == "map",
    }
}

/// `prefix.rest`, either part possibly empty.
fn join_key(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else if rest.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{rest}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Solver {
        #[serde(default)]
        epochs: usize,
        #[serde(default)]
        lr: f64,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Train {
        data: String,
        #[serde(default)]
        batch_norm: bool,
        #[serde(flatten)]
        solver: Solver,
    }

    const OWN: &[&str] = &["data", "batch_norm"];

    fn table(text: &str) -> Node {
        let root = Node::parse(SourceFile::inline("e.toml", text.to_string())).expect("valid TOML");
        root.lookup("stages.t").cloned().expect("stages.t")
    }

    fn flattened(text: &str) -> String {
        table(text)
            .decode_flattened::<Train>("stages.t", &[OWN, struct_fields::<Solver>()])
            .map(|t| format!("decoded {t:?}"))
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn type_error_in_a_flattened_struct_names_the_key_and_its_line() {
        let err = flattened("[stages.t]\ndata = \"shapes:train\"\nepochs = 2.5\n");
        assert_eq!(err, "e.toml:3:10: `stages.t.epochs`: expected a whole number, found 2.5");
    }

    #[test]
    fn type_error_in_an_own_field_beside_a_flattened_struct_names_the_key() {
        let err = flattened("[stages.t]\ndata = \"shapes:train\"\nbatch_norm = 1\nepochs = 3\n");
        assert_eq!(err, "e.toml:3:14: `stages.t.batch_norm`: expected true or false, found 1");
    }

    #[test]
    fn a_required_key_is_not_mistaken_for_the_culprit() {
        let err = flattened("[stages.t]\ndata = \"a:b\"\nlr = \"fast\"\n");
        assert_eq!(err, "e.toml:3:6: `stages.t.lr`: invalid type: string \"fast\", expected a number");
        // serde checks the own required keys before the flattened values.
        let err = flattened("[stages.t]\nlr = \"fast\"\n");
        assert_eq!(err, "e.toml:1:1: `stages.t`: missing required key `data`");
        let err = flattened("[stages.t]\nepochs = 3\n");
        assert_eq!(err, "e.toml:1:1: `stages.t`: missing required key `data`");
    }

    #[test]
    fn a_custom_message_inside_a_flattened_struct_finds_its_key() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Counts {
            k: crate::config::PositiveCount,
            #[serde(default)]
            restarts: Option<crate::config::PositiveCount>,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Stage {
            data: String,
            #[serde(flatten)]
            counts: Counts,
        }
        let decode = |text: &str| {
            let t = table(text);
            t.decode_flattened::<Stage>("stages.t", &[&["data"], &["k", "restarts"]])
                .unwrap_err()
                .to_string()
        };
        // A required key: without it, "missing field" for it as for `data`; the value decides.
        let err = decode("[stages.t]\ndata = \"a:b\"\nk = 0\n");
        assert_eq!(err, "e.toml:3:5: `stages.t.k`: expected a positive whole number, found 0");
        // An optional key: without it, decoding succeeds.
        let err = decode("[stages.t]\ndata = \"a:b\"\nk = 2\nrestarts = 0\n");
        assert_eq!(err, "e.toml:4:12: `stages.t.restarts`: expected a positive whole number, found 0");
    }

    #[test]
    fn plain_decode_finds_the_key_inside_a_flattened_struct_too() {
        let err = table("[stages.t]\ndata = \"d:train\"\nepochs = -3\n")
            .decode::<Train>("stages.t")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "e.toml:3:10: `stages.t.epochs`: expected a non-negative whole number, found -3"
        );
    }

    #[test]
    fn decode_speaks_plain_words() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct K {
            k: usize,
        }
        let node = Node::parse(SourceFile::inline("e.toml", "[s]\nk = 4.5\n".into())).unwrap();
        let err = node.lookup("s").unwrap().decode::<K>("s").unwrap_err();
        assert_eq!(err.to_string(), "e.toml:2:5: `s.k`: expected a whole number, found 4.5");
    }
}
