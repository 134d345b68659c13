//! Validated parameters of a stage instance, and the inputs they name.
use serde::Serialize;

use super::{
    AssignParams, ClusterMetricsParams, FeaturesParams, InitParams, KmeansParams, LinearProbeParams, NetworkParams, OutputKind,
    PretextParams, SolverParams, StageKind, TrainParams,
};
use crate::config::{struct_fields, ConfigError, Node};

/// The parameters of one stage, decoded and checked, defaults filled in.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Params {
    Features(FeaturesParams),
    Kmeans(KmeansParams),
    Assign(AssignParams),
    ClusterMetrics(ClusterMetricsParams),
    Init(InitParams),
    Pretext(PretextParams),
    Train(TrainParams),
    LinearProbe(LinearProbeParams),
}

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

const MODEL: &[OutputKind] = &[OutputKind::Model];

impl Params {
    /// Decodes a stage table (without `kind`); `prefix` is its key path.
    pub fn decode(kind: StageKind, table: &Node, prefix: &str) -> Result<Params, ConfigError> {
        Ok(match kind {
            StageKind::Features => Params::Features(table.decode::<FeaturesParams>(prefix)?.validate(table, prefix)?),
            StageKind::Kmeans => Params::Kmeans(table.decode::<KmeansParams>(prefix)?.validate(table, prefix)?),
            StageKind::Assign => Params::Assign(table.decode(prefix)?),
            StageKind::ClusterMetrics => Params::ClusterMetrics(table.decode(prefix)?),
            StageKind::Init => Params::Init(table.decode::<InitParams>(prefix)?.validate(table, prefix)?),
            StageKind::Pretext => Params::Pretext(
                table
                    .decode_flattened::<PretextParams>(prefix, &[super::pretext::OWN_KEYS, struct_fields::<SolverParams>()])?
                    .validate(table, prefix)?,
            ),
            StageKind::Train => Params::Train(
                table
                    .decode_flattened::<TrainParams>(
                        prefix,
                        &[
                            super::train::OWN_KEYS,
                            struct_fields::<NetworkParams>(),
                            struct_fields::<SolverParams>(),
                        ],
                    )?
                    .validate(table, prefix)?,
            ),
            StageKind::LinearProbe => Params::LinearProbe(table.decode::<LinearProbeParams>(prefix)?.validate(table, prefix)?),
        })
    }

    pub fn inputs(&self) -> Vec<InputSpec> {
        match self {
            Params::Features(p) => {
                let mut v = vec![data_ref("data", &p.data)];
                if !p.is_handcrafted() {
                    v.push(InputSpec::Stage {
                        key: "model",
                        stage: p.model.clone(),
                        accepts: MODEL,
                    });
                }
                v
            }
            Params::Kmeans(p) => vec![InputSpec::Stage {
                key: "features",
                stage: p.features.clone(),
                accepts: &[OutputKind::Features],
            }],
            Params::Assign(p) => vec![
                InputSpec::Stage {
                    key: "centroids",
                    stage: p.centroids.clone(),
                    accepts: &[OutputKind::Centroids],
                },
                InputSpec::Stage {
                    key: "features",
                    stage: p.features.clone(),
                    accepts: &[OutputKind::Features],
                },
            ],
            Params::ClusterMetrics(p) => vec![
                InputSpec::Stage {
                    key: "labels",
                    stage: p.labels.clone(),
                    accepts: &[OutputKind::Labels, OutputKind::Centroids],
                },
                data_ref("truth", &p.truth),
            ],
            Params::Init(_) => Vec::new(),
            Params::Pretext(p) => vec![data_ref("data", &p.data)],
            Params::Train(p) => {
                let mut v = Vec::new();
                if let Some(d) = &p.data {
                    v.push(data_ref("data", d));
                }
                if !p.uses_true_labels() {
                    v.push(InputSpec::Stage {
                        key: "labels",
                        stage: p.labels.clone(),
                        accepts: &[OutputKind::Labels],
                    });
                }
                if let Some(init) = &p.init {
                    v.push(InputSpec::Stage {
                        key: "init",
                        stage: init.clone(),
                        accepts: MODEL,
                    });
                }
                v
            }
            Params::LinearProbe(p) => vec![
                InputSpec::Stage {
                    key: "model",
                    stage: p.model.clone(),
                    accepts: MODEL,
                },
                data_ref("train", &p.train),
                data_ref("test", &p.test),
            ],
        }
    }

    /// The parameters that go into the key: everything but the input references
    /// (which enter the key as upstream keys and dataset fingerprints instead).
    pub fn key_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(map) = &mut v {
            for input in self.inputs() {
                map.remove(input.key());
            }
        }
        v
    }

    /// Whether the stage draws random numbers (then the experiment seed enters its key).
    pub fn is_stochastic(&self) -> bool {
        matches!(
            self,
            Params::Kmeans(_) | Params::Init(_) | Params::Pretext(_) | Params::Train(_) | Params::LinearProbe(_)
        )
    }

    /// Whether its numbers may depend on the device class (cpu or cuda).
    pub fn is_device_dependent(&self) -> bool {
        match self {
            Params::Features(p) => !p.is_handcrafted(),
            Params::ClusterMetrics(_) => false,
            _ => true,
        }
    }
}

/// `dataset:split`, or a bare name (then treated as a stage reference).
fn data_ref(key: &'static str, s: &str) -> InputSpec {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            for key in serde_json::to_value(&params).unwrap().as_object().unwrap().keys() {
                assert!(
                    all.contains(&key.as_str()) || key == "permutations_sha256",
                    "{kind}: `{key}` missing from the key list"
                );
            }
        };
        check(
            StageKind::Train,
            "arch = \"alexnet-small\"\ndata = \"d:s\"\nlabels = \"truth\"\ninit = \"m\"\nimage_size = 32",
            &[
                super::super::train::OWN_KEYS,
                struct_fields::<NetworkParams>(),
                struct_fields::<SolverParams>(),
            ],
        );
        check(
            StageKind::Pretext,
            "task = \"jigsaw++\"\narch = \"alexnet-small\"\ndata = \"d:s\"",
            &[super::super::pretext::OWN_KEYS, struct_fields::<SolverParams>()],
        );
        check(
            StageKind::Pretext,
            "task = \"rotation\"\narch = \"alexnet-small\"\ndata = \"d:s\"",
            &[super::super::pretext::OWN_KEYS, struct_fields::<SolverParams>()],
        );
    }
}
