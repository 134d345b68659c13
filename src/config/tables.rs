//! `[[tables]]`: the paper tables an experiment asks for, read with their places in the file
//! (what they name is checked at planning, against the stages and the sweep).
use serde::Deserialize;

use super::{ConfigError, Node, Value};

/// One `[[tables]]` entry, types checked, names not yet resolved.
#[derive(Clone, Debug)]
pub struct RawTable {
    /// The table as written, to locate errors at its keys (`tables[i].metric`).
    pub node: Node,
    /// `tables[i]`, the key path of this entry in messages.
    pub path: String,
    pub name: String,
    pub metric: String,
    /// `"stage"`, `"layer"` or a swept key such as `stages.clusters.k`.
    pub rows: String,
    pub columns: String,
    /// Only these stages (by name); every stage reporting the metric when absent.
    pub stages: Option<Vec<String>>,
    pub caption: Option<String>,
    pub reference: Vec<RawReference>,
}

/// A published value for one cell (`[[tables.reference]]`), shown beside ours.
#[derive(Clone, Debug, Deserialize)]
pub struct RawReference {
    pub row: String,
    pub column: String,
    pub value: f64,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Deserialize)]
struct Fields {
    name: String,
    metric: String,
    rows: String,
    columns: String,
    #[serde(default)]
    stages: Option<Vec<String>>,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    reference: Vec<RawReference>,
}

/// The `[[tables]]` of an experiment's top-level table (none when absent).
pub fn read_tables(root: &Node) -> Result<Vec<RawTable>, ConfigError> {
    let Some((_, tables)) = root.as_table().and_then(|t| t.get("tables")) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = &tables.value else {
        return Err(tables.error(
            "tables",
            format!("expected a list of tables (`[[tables]]`), found {}", tables.type_name()),
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("tables[{i}]");
        if item.as_table().is_none() {
            return Err(item.error(&path, format!("expected a table, found {}", item.type_name())));
        }
        let f: Fields = item.decode(&path)?;
        if f.name.is_empty() {
            return Err(item
                .lookup("name")
                .unwrap_or(item)
                .error(&format!("{path}.name"), "expected a table name"));
        }
        out.push(RawTable {
            node: item.clone(),
            path,
            name: f.name,
            metric: f.metric,
            rows: f.rows,
            columns: f.columns,
            stages: f.stages,
            caption: f.caption,
            reference: f.reference,
        });
    }
    Ok(out)
}

impl RawTable {
    /// An error at `tables[i].<key>` (the key's value, or the table when absent).
    pub fn error(&self, key: &str, message: impl Into<String>, hint: Option<String>) -> ConfigError {
        let node = self.node.lookup(key).unwrap_or(&self.node);
        node.error_hint(&format!("{}.{key}", self.path), message, hint)
    }

    /// An error at `tables[i].reference[j].<key>`.
    pub fn reference_error(&self, j: usize, key: &str, message: impl Into<String>, hint: Option<String>) -> ConfigError {
        let node = match self.node.lookup("reference").map(|n| &n.value) {
            Some(Value::Array(items)) => items.get(j).map(|r| r.lookup(key).unwrap_or(r)),
            _ => None,
        };
        let node = node.unwrap_or(&self.node);
        node.error_hint(&format!("{}.reference[{j}].{key}", self.path), message, hint)
    }
}
