//! Builds the plan: validates every variant's stages, resolves references, orders the
//! graph, and computes each instance's key; identical instances across variants merge.
use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::json;

use super::{topo_order, Plan, PlannedInput, StageInstance, Variant};
use crate::config::{did_you_mean, Datasets, Node, RawExperiment, RawStage, Resources, SlurmSection};
use crate::data::{fingerprint, DatasetFormat, FingerprintMode};
use crate::device::{device_class, DeviceSpec};
use crate::stages::{InputSpec, Params, StageKind};
use crate::store::Key;
use crate::Error;

/// What planning needs besides the experiment: datasets and fingerprinting.
pub struct PlanEnv<'a> {
    pub datasets: &'a Datasets,
    pub verify_data: bool,
    /// Where fingerprint caches live (`<store>/fingerprints`).
    pub cache_dir: &'a Path,
    /// (dataset, split) -> fingerprint, shared across plans of one process.
    pub fingerprints: HashMap<(String, String), String>,
    /// Plan even when a dataset cannot be read here (`ktlab plan` on a machine without
    /// the data): its stages are keyed on an "unavailable" fingerprint and listed.
    pub allow_unavailable: bool,
    /// `dataset:split: why` for each split that could not be read.
    pub unavailable: Vec<String>,
    pub devices: DevicePolicy,
}

/// How `device` settings become devices (and so enter device-dependent keys).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DevicePolicy {
    /// Probe this machine: `auto` is CUDA when present (an explicit `cuda:N` is kept).
    #[default]
    Probe,
    /// As declared, without probing, for stages that run elsewhere (a cluster's nodes):
    /// `auto` is CUDA exactly when the stage asks for GPUs in its resources. The node
    /// running the stage re-plans the same way, so the keys agree.
    Declared,
}

fn declared_device(spec: DeviceSpec, gpus: u32) -> tch::Device {
    match spec {
        DeviceSpec::Cpu => tch::Device::Cpu,
        DeviceSpec::Cuda(n) => tch::Device::Cuda(n),
        DeviceSpec::Auto if gpus > 0 => tch::Device::Cuda(0),
        DeviceSpec::Auto => tch::Device::Cpu,
    }
}

impl<'a> PlanEnv<'a> {
    /// An environment that refuses unreadable datasets (as `run` needs).
    pub fn new(datasets: &'a Datasets, verify_data: bool, cache_dir: &'a Path) -> PlanEnv<'a> {
        PlanEnv {
            datasets,
            verify_data,
            cache_dir,
            fingerprints: HashMap::new(),
            allow_unavailable: false,
            unavailable: Vec::new(),
            devices: DevicePolicy::default(),
        }
    }

    fn mode(&self) -> FingerprintMode {
        if self.verify_data {
            FingerprintMode::Contents
        } else {
            FingerprintMode::Metadata
        }
    }

    fn fingerprint(&mut self, dataset: &str, split: &str) -> Result<String, Error> {
        let k = (dataset.to_string(), split.to_string());
        if let Some(f) = self.fingerprints.get(&k) {
            return Ok(f.clone());
        }
        let spec = self
            .datasets
            .get(dataset)
            .ok_or_else(|| Error::Other(format!("unknown dataset {dataset}")))?;
        let mode = if self.verify_data {
            FingerprintMode::Contents
        } else {
            FingerprintMode::Metadata
        };
        let f = match fingerprint(spec, split, mode, Some(self.cache_dir)) {
            Ok(f) => f,
            Err(e) if self.allow_unavailable => {
                self.unavailable.push(format!("{dataset}:{split}: {e}"));
                "unavailable".to_string()
            }
            Err(e) => return Err(e.into()),
        };
        self.fingerprints.insert(k, f.clone());
        Ok(f)
    }
}

pub fn ktlab_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

pub fn libtorch_version() -> &'static str {
    env!("KTLAB_LIBTORCH_VERSION")
}

/// Validates and keys every variant.
pub fn build_plan(variants: Vec<RawExperiment>, env: &mut PlanEnv) -> Result<Plan, Error> {
    let first = variants.first().ok_or_else(|| Error::Other("experiment has no variants".into()))?;
    let mut plan = Plan {
        experiment: first.name.clone(),
        file: first.file.path.clone(),
        swept_keys: first.swept.iter().map(|(k, _)| k.clone()).collect(),
        variants: Vec::new(),
        instances: Vec::new(),
        slurm: SlurmSection::default(),
    };
    let mut by_key: HashMap<Key, usize> = HashMap::new();
    for raw in variants {
        let device_str = raw.device.as_str().ok_or_else(|| {
            raw.device
                .error("device", format!("expected a string, found {}", raw.device.type_name()))
        })?;
        let spec: DeviceSpec = device_str.parse().map_err(|m: String| raw.device.error("device", m))?;
        // An explicit CUDA device is kept even where CUDA is absent: the plan may be run
        // elsewhere (a Slurm GPU node); the runner checks the device before computing.
        let probed = match (env.devices, spec) {
            (DevicePolicy::Probe, DeviceSpec::Cuda(n)) => Some(tch::Device::Cuda(n)),
            (DevicePolicy::Probe, _) => Some(spec.resolve().map_err(|m| raw.device.error("device", m))?),
            (DevicePolicy::Declared, _) => None,
        };
        let slurm = match &raw.slurm {
            Some(n) => SlurmSection::decode(n)?,
            None => SlurmSection::default(),
        };
        if plan.variants.is_empty() {
            plan.slurm = slurm.clone();
        }

        // 1. kinds and parameters
        let mut decoded: IndexMap<String, (StageKind, Params, &RawStage)> = IndexMap::new();
        let mut resources: HashMap<String, Resources> = HashMap::new();
        for (name, st) in &raw.stages {
            let prefix = format!("stages.{name}");
            let kind = StageKind::parse(&st.kind).ok_or_else(|| {
                let names = StageKind::ALL.iter().map(|k| k.name());
                let hint = did_you_mean(&st.kind, names).or_else(|| {
                    Some(format!(
                        "known kinds: {}",
                        StageKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                    ))
                });
                st.kind_node
                    .error_hint(&format!("{prefix}.kind"), format!("unknown stage kind `{}`", st.kind), hint)
            })?;
            let params = Params::decode(kind, &st.table, &prefix)?;
            if let Some(n) = &st.resources {
                resources.insert(name.clone(), Resources::decode(n, &format!("{prefix}.resources"))?);
            }
            decoded.insert(name.clone(), (kind, params, st));
        }
        resolve_implicit_data(&mut decoded)?;

        // 2. references: existence and kind
        let mut edges: IndexMap<String, Vec<String>> = IndexMap::new();
        for (name, (_, params, st)) in &decoded {
            let mut deps = Vec::new();
            for input in params.inputs() {
                let key = format!("stages.{name}.{}", input.key());
                let node = st.table.lookup(input.key()).unwrap_or(&st.table);
                match &input {
                    InputSpec::Stage { stage, accepts, .. } => {
                        if accepts.is_empty() {
                            return Err(node
                                .error(&key, format!("expected a dataset split such as `shapes:train`, found `{stage}`"))
                                .into());
                        }
                        if stage.contains(':') {
                            let expected = accepts.iter().map(|a| a.describe()).collect::<Vec<_>>().join(" or ");
                            return Err(node
                                .error(&key, format!("expected {expected}, but `{stage}` is a dataset split"))
                                .into());
                        }
                        if !decoded.contains_key(stage) {
                            let hint = did_you_mean(stage, decoded.keys().map(String::as_str));
                            return Err(node.error_hint(&key, format!("no stage named `{stage}`"), hint).into());
                        }
                        deps.push(stage.clone());
                    }
                    InputSpec::Data { dataset, split, .. } => check_data_ref(env.datasets, node, &key, dataset, split)?,
                }
            }
            edges.insert(name.clone(), deps);
        }

        // 3. order, naming any cycle in full
        let order = topo_order(&edges).map_err(|cycle| {
            let (_, _, st) = &decoded[&cycle[0]];
            st.table
                .error(&format!("stages.{}", cycle[0]), format!("dependency cycle: {}", cycle.join(" -> ")))
        })?;

        // 4. kinds of the inputs, then consistency across references
        for (name, (_, params, st)) in &decoded {
            for input in params.inputs() {
                if let InputSpec::Stage { stage, accepts, key } = &input {
                    let up_kind = decoded[stage].0;
                    if !accepts.contains(&up_kind.output()) {
                        let expected = accepts.iter().map(|a| a.describe()).collect::<Vec<_>>().join(" or ");
                        let node = st.table.lookup(key).unwrap_or(&st.table);
                        return Err(node
                            .error(
                                &format!("stages.{name}.{key}"),
                                format!("expected {expected}, but `{stage}` is a {} stage", up_kind.name()),
                            )
                            .into());
                    }
                }
            }
        }
        // Probe layers exist in the upstream model's architecture (checked before anything runs).
        for (name, (_, params, st)) in &decoded {
            let (model, layers, key): (&str, Vec<&str>, &str) = match params {
                Params::LinearProbe(p) => (&p.model, p.layers.iter().map(String::as_str).collect(), "layers"),
                Params::Features(p) if !p.is_handcrafted() => (&p.model, p.layer.iter().map(String::as_str).collect(), "layer"),
                _ => continue,
            };
            let Some(cfg) = decoded.get(model).and_then(|(_, up, _)| net_config_of(up)) else {
                continue;
            };
            for layer in layers {
                if let Err(e) = crate::models::check_layer_name(&cfg, layer) {
                    let node = st.table.lookup(key).unwrap_or(&st.table);
                    return Err(node.error(&format!("stages.{name}.{key}"), e.to_string()).into());
                }
            }
        }
        for (name, (_, params, st)) in &decoded {
            if let Params::ClusterMetrics(p) = params {
                if let (Some(labels_of), Some((d, s))) = (data_of(&decoded, &p.labels), p.truth.split_once(':')) {
                    if labels_of != (d.to_string(), s.to_string()) {
                        let node = st.table.lookup("truth").unwrap_or(&st.table);
                        return Err(node
                            .error(
                                &format!("stages.{name}.truth"),
                                format!(
                                    "`{}` labels images of `{}:{}`, not of `{}`",
                                    p.labels, labels_of.0, labels_of.1, p.truth
                                ),
                            )
                            .into());
                    }
                }
            }
        }

        // 5. keys, in dependency order
        let mut variant = Variant {
            name: raw.variant.clone(),
            swept: raw.swept.iter().map(|(k, v)| (k.clone(), v.display())).collect(),
            stages: IndexMap::new(),
        };
        let mut index_of: HashMap<String, usize> = HashMap::new();
        for name in &order {
            let (kind, params, _) = &decoded[name];
            let stage_resources = resources.remove(name).unwrap_or_default();
            let device = probed.unwrap_or_else(|| declared_device(spec, stage_resources.or(&slurm.defaults).gpus.unwrap_or(0)));
            let mut inputs = IndexMap::new();
            let mut key_inputs = serde_json::Map::new();
            for input in params.inputs() {
                match input {
                    InputSpec::Stage { key, stage, .. } => {
                        let idx = index_of[&stage];
                        key_inputs.insert(
                            key.to_string(),
                            json!({ "stage": plan.instances[idx].kind.name(), "key": plan.instances[idx].key.hex() }),
                        );
                        inputs.insert(key.to_string(), PlannedInput::Stage(idx));
                    }
                    InputSpec::Data { key, dataset, split } => {
                        let fp = env.fingerprint(&dataset, &split)?;
                        key_inputs.insert(key.to_string(), json!({ "dataset": dataset, "split": split, "fingerprint": fp }));
                        let spec = env
                            .datasets
                            .get(&dataset)
                            .cloned()
                            .ok_or_else(|| Error::Other(format!("unknown dataset {dataset}")))?;
                        inputs.insert(
                            key.to_string(),
                            PlannedInput::Data {
                                spec,
                                split,
                                fingerprint: fp,
                                mode: env.mode(),
                            },
                        );
                    }
                }
            }
            let mut key_input = json!({
                "kind": kind.name(),
                "version": kind.version(),
                "params": params.key_json(),
                "inputs": key_inputs,
                "ktlab": ktlab_version(),
                "libtorch": libtorch_version(),
            });
            if params.is_device_dependent() {
                key_input["device"] = json!(device_class(device));
            }
            if params.is_stochastic() {
                key_input["seed"] = json!(raw.seed);
            }
            let key = Key::of(&key_input);
            let idx = match by_key.get(&key) {
                Some(&i) => i,
                None => {
                    let seed = u64::from_le_bytes(key.hex().as_bytes()[..8].try_into().unwrap_or([0; 8]));
                    plan.instances.push(StageInstance {
                        kind: *kind,
                        params: params.clone(),
                        inputs,
                        key,
                        key_input,
                        device,
                        seed,
                        resources: stage_resources,
                        uses: Vec::new(),
                    });
                    by_key.insert(key, plan.instances.len() - 1);
                    plan.instances.len() - 1
                }
            };
            plan.instances[idx].uses.push((raw.variant.clone(), name.clone()));
            index_of.insert(name.clone(), idx);
        }
        // Keep the file's stage order in variant listings.
        for name in decoded.keys() {
            variant.stages.insert(name.clone(), index_of[name]);
        }
        plan.variants.push(variant);
    }
    Ok(plan)
}

fn check_data_ref(datasets: &Datasets, node: &Node, key: &str, dataset: &str, split: &str) -> Result<(), Error> {
    let Some(spec) = datasets.get(dataset) else {
        let hint = did_you_mean(dataset, datasets.names());
        let known = if datasets.specs.is_empty() {
            " (no datasets file was found: pass --datasets or put datasets.toml beside the experiment)".to_string()
        } else {
            String::new()
        };
        return Err(node.error_hint(key, format!("no dataset named `{dataset}`{known}"), hint).into());
    };
    if split.is_empty() {
        return Err(node.error(key, format!("expected `{dataset}:<split>`")).into());
    }
    if let DatasetFormat::Synthetic { splits, .. } = &spec.format {
        if !splits.contains_key(split) {
            let hint = did_you_mean(split, splits.keys().map(String::as_str)).or_else(|| {
                Some(format!(
                    "splits of `{dataset}`: {}",
                    splits.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            });
            return Err(node
                .error_hint(key, format!("dataset `{dataset}` has no split `{split}`"), hint)
                .into());
        }
    }
    Ok(())
}

/// The dataset split whose images a stage's rows are, following `features` links.
fn data_of(decoded: &IndexMap<String, (StageKind, Params, &RawStage)>, stage: &str) -> Option<(String, String)> {
    let mut cur = stage.to_string();
    for _ in 0..decoded.len() + 1 {
        let (_, params, _) = decoded.get(&cur)?;
        match params {
            Params::Features(p) => return p.data.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())),
            Params::Kmeans(p) => cur = p.features.clone(),
            Params::Assign(p) => cur = p.features.clone(),
            Params::Train(p) => {
                return p
                    .data
                    .as_ref()
                    .and_then(|d| d.split_once(':'))
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            }
            Params::ClusterMetrics(_) | Params::Init(_) | Params::Pretext(_) | Params::LinearProbe(_) => return None,
        }
    }
    None
}

/// A `train` stage on pseudo-labels reads the images its assign stage labeled: fill in
/// `data` from there, or check that a given `data` is those images.
fn resolve_implicit_data(decoded: &mut IndexMap<String, (StageKind, Params, &RawStage)>) -> Result<(), Error> {
    let names: Vec<String> = decoded.keys().cloned().collect();
    for name in names {
        let (labels, data) = match &decoded[&name].1 {
            Params::Train(p) if !p.uses_true_labels() => (p.labels.clone(), p.data.clone()),
            _ => continue,
        };
        if !decoded.contains_key(&labels) || !matches!(decoded[&labels].1, Params::Assign(_)) {
            continue; // reported with the other reference errors
        }
        let Some((d, s)) = data_of(decoded, &labels) else { continue };
        let implied = format!("{d}:{s}");
        let st = decoded[&name].2;
        match data {
            None => {
                if let Params::Train(p) = &mut decoded[&name].1 {
                    p.data = Some(implied);
                }
            }
            Some(given) if given != implied => {
                let node = st.table.lookup("data").unwrap_or(&st.table);
                return Err(node
                    .error(
                        &format!("stages.{name}.data"),
                        format!("`{labels}` labels images of `{implied}`, not of `{given}`"),
                    )
                    .into());
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The network a model stage builds, for checks at planning time.
fn net_config_of(params: &Params) -> Option<crate::models::NetConfig> {
    match params {
        Params::Init(p) => Some(p.net.config()),
        Params::Train(p) => Some(p.net.config()),
        _ => None,
    }
}
