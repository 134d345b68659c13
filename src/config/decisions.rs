//! `[[decisions]]`: the decision rules an experiment states before it runs, read with their
//! places in the file (what they name is checked at planning, against the stages).
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::{ConfigError, Node, Value};

/// The cells a decision compares, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawLayers {
    /// `layers = ["conv4", "conv5"]`
    Listed(Vec<String>),
    /// `layers = "best"`
    Best,
}

impl<'de> Deserialize<'de> for RawLayers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "a list of layer names or \"best\"";
        impl<'de> Visitor<'de> for V {
            type Value = RawLayers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawLayers, E> {
                match s {
                    "best" => Ok(RawLayers::Best),
                    other => Err(E::custom(format!("expected {EXPECTED}, found \"{other}\""))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawLayers, A::Error> {
                let mut out = Vec::new();
                while let Some(l) = seq.next_element::<String>()? {
                    out.push(l);
                }
                Ok(RawLayers::Listed(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `select = { a = "...", b = "..." }`: per side, the stage whose values pick its layer.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct RawSelect {
    #[serde(default)]
    pub a: Option<String>,
    #[serde(default)]
    pub b: Option<String>,
}

/// One `[[decisions]]` entry, types checked, names not yet resolved.
#[derive(Clone, Debug)]
pub struct RawDecision {
    /// The entry as written, to locate errors at its keys (`decisions[i].metric`).
    pub node: Node,
    /// `decisions[i]`, the key path of this entry in messages.
    pub path: String,
    pub name: String,
    pub claim: String,
    pub metric: String,
    pub a: String,
    pub b: Option<String>,
    pub layers: Option<RawLayers>,
    pub select: Option<RawSelect>,
    pub pass: f64,
    pub fail: Option<f64>,
    pub requires: Vec<String>,
    pub also: Vec<String>,
}

#[derive(Deserialize)]
struct Fields {
    name: String,
    claim: String,
    metric: String,
    a: String,
    #[serde(default)]
    b: Option<String>,
    #[serde(default)]
    layers: Option<RawLayers>,
    #[serde(default)]
    select: Option<RawSelect>,
    pass: f64,
    #[serde(default)]
    fail: Option<f64>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    also: Vec<String>,
}

/// The `[[decisions]]` of an experiment's top-level table (none when absent).
pub fn read_decisions(root: &Node) -> Result<Vec<RawDecision>, ConfigError> {
    let Some((_, decisions)) = root.as_table().and_then(|t| t.get("decisions")) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = &decisions.value else {
        return Err(decisions.error(
            "decisions",
            format!("expected a list of decisions (`[[decisions]]`), found {}", decisions.type_name()),
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("decisions[{i}]");
        if item.as_table().is_none() {
            return Err(item.error(&path, format!("expected a table, found {}", item.type_name())));
        }
        let f: Fields = item.decode(&path)?;
        out.push(RawDecision {
            node: item.clone(),
            path,
            name: f.name,
            claim: f.claim,
            metric: f.metric,
            a: f.a,
            b: f.b,
            layers: f.layers,
            select: f.select,
            pass: f.pass,
            fail: f.fail,
            requires: f.requires,
            also: f.also,
        });
    }
    Ok(out)
}

impl RawDecision {
    /// An error at `decisions[i].<key>` (a dotted key such as `select.a`; the key's value,
    /// or the entry when absent).
    pub fn error(&self, key: &str, message: impl Into<String>, hint: Option<String>) -> ConfigError {
        let node = self.node.lookup(key).unwrap_or(&self.node);
        node.error_hint(&format!("{}.{key}", self.path), message, hint)
    }
}
