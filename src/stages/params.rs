//! The inputs a stage's parameters name, and the part of the parameters that is keyed.
use super::{OutputKind, Params};
use crate::config::{ConfigError, Node};
use crate::data::NpyDtype;

/// An input named by a parameter: another stage or a dataset split.
#[derive(Clone, Debug, PartialEq)]
pub enum InputSpec {
    Stage {
        key: &'static str,
        stage: String,
        accepts: &'static [OutputKind],
    },
    Data {
        key: &'static str,
        dataset: String,
        split: String,
    },
}

impl InputSpec {
    pub fn key(&self) -> &'static str {
        match self {
            InputSpec::Stage { key, .. } | InputSpec::Data { key, .. } => key,
        }
    }
}

pub(super) const MODEL: &[OutputKind] = &[OutputKind::Model];

impl Params {
    /// The parameters that go into the key: everything but the input references
    /// (which enter the key as upstream keys and dataset fingerprints instead).
    pub fn key_json(&self) -> serde_json::Value {
        let mut v = self.to_json();
        if let serde_json::Value::Object(map) = &mut v {
            for input in self.inputs() {
                map.remove(input.key());
            }
        }
        v
    }
}

/// `dataset:split`, or a bare name (then treated as a stage reference).
pub(super) fn data_ref(key: &'static str, s: &str) -> InputSpec {
    match s.split_once(':') {
        Some((d, sp)) => InputSpec::Data {
            key,
            dataset: d.to_string(),
            split: sp.to_string(),
        },
        None => InputSpec::Stage {
            key,
            stage: s.to_string(),
            accepts: &[],
        },
    }
}

/// The element type of stored features (`dtype`): `float32` (the default) or `float16`
/// (half the disk and page cache; readers compute in float32); anything else exits 2 naming
/// `{prefix}.dtype`.
pub(super) fn stored_dtype(value: Option<&str>, table: &Node, prefix: &str) -> Result<NpyDtype, ConfigError> {
    stored_dtype_of(value).ok_or_else(|| {
        let at = table.lookup("dtype").unwrap_or(table);
        let found = value.unwrap_or_default();
        at.error(
            &format!("{prefix}.dtype"),
            format!("expected \"float32\" or \"float16\", found \"{found}\""),
        )
    })
}

/// The element type `value` names (`None`: the default, float32), if it is one of the two.
pub(super) fn stored_dtype_of(value: Option<&str>) -> Option<NpyDtype> {
    match value {
        None | Some("float32") => Some(NpyDtype::F32),
        Some("float16") => Some(NpyDtype::F16),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NetworkParams, SolverParams, StageKind};
    use super::*;
    use crate::config::{struct_fields, Node};

    /// The key lists of the structs with flattened parts cover every field they serialize
    /// (a field added without its key would be refused as "unknown key").
    #[test]
    fn own_key_lists_cover_every_field() {
        let check = |kind: StageKind, toml: &str, known: &[&[&str]]| {
            let file = std::sync::Arc::new(crate::config::SourceFile {
                path: "t.toml".into(),
                text: toml.to_string(),
            });
            let node = Node::parse(file).unwrap();
            let params = Params::decode(kind, &node, "stages.s").unwrap_or_else(|e| panic!("{e}"));
            let all: Vec<&str> = known.iter().flat_map(|k| k.iter().copied()).collect();
            for key in params.to_json().as_object().unwrap().keys() {
                assert!(
                    all.contains(&key.as_str()) || key == "permutations_sha256",
                    "{kind}: `{key}` missing from the key list"
                );
            }
        };
        check(
            StageKind::Train,
            "arch = \"alexnet-small\"\ndata = \"d:s\"\nlabels = \"truth\"\ninit = \"m\"\ntest = \"d:t\"\nimage_size = 32",
            &[
                super::super::train::OWN_KEYS,
                super::super::crop::CROP_KEYS,
                struct_fields::<NetworkParams>(),
                struct_fields::<SolverParams>(),
            ],
        );
        check(
            StageKind::Pretext,
            "task = \"jigsaw++\"\narch = \"alexnet-small\"\ndata = \"d:s\"",
            &[&super::super::pretext::own_keys(), struct_fields::<SolverParams>()],
        );
        check(
            StageKind::Pretext,
            "task = \"rotation\"\narch = \"alexnet-small\"\ndata = \"d:s\"",
            &[&super::super::pretext::own_keys(), struct_fields::<SolverParams>()],
        );
    }
}
