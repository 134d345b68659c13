//! Builds the plan: validates every variant's stages, resolves references, orders the
//! graph, and computes each instance's key; identical instances across variants merge.
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::json;

use super::error::Errors;
use super::held_out::{check_held_out, Decoded};
use super::{topo_order, Plan, PlanError, PlannedInput, StageInstance, Variant};
use crate::config::{did_you_mean, ConfigError, Datasets, Node, RawExperiment, RawStage, Resources, SlurmSection};
use crate::data::{fingerprint_with, summarize, Cache, DatasetSpec, FingerprintMode, SplitSummary};
use crate::device::{Device, DeviceSpec};
use crate::models::NetConfig;
use crate::stages::{HeadLabels, InputSpec, ParamError, Params, Rows, StageKind, Upstream};
use crate::store::Key;

/// What planning needs besides the experiment: datasets and fingerprinting.
pub struct PlanEnv<'a> {
    pub datasets: &'a Datasets,
    /// What identifies a dataset's files in keys (contents by default).
    pub mode: FingerprintMode,
    /// The content-hash cache (`<store>/fingerprints`) and how to use it.
    pub cache: Cache<'a>,
    /// (dataset, split) -> fingerprint, shared across plans of one process.
    pub fingerprints: HashMap<(String, String), String>,
    /// (dataset, split) -> its classes and sizes (`None`: not readable here), for the
    /// checks that depend on the data; shared across plans of one process.
    pub summaries: HashMap<(String, String), Option<Arc<SplitSummary>>>,
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

/// A `device` setting (the experiment's or a stage's, at `key`): what it asks for, and with
/// [`DevicePolicy::Probe`] the device it is on this machine. An explicit CUDA device is kept
/// even where CUDA is absent: the plan may be run elsewhere (a Slurm GPU node); the runner
/// checks the device before computing.
fn device_setting(node: &Node, key: &str, policy: DevicePolicy) -> Result<(DeviceSpec, Option<Device>), ConfigError> {
    let text = node
        .as_str()
        .ok_or_else(|| node.error(key, format!("expected a string, found {}", node.type_name())))?;
    let spec: DeviceSpec = text.parse().map_err(|m: String| node.error(key, m))?;
    let probed = match (policy, spec) {
        (DevicePolicy::Probe, DeviceSpec::Cuda(n)) => Some(Device::Cuda(n)),
        (DevicePolicy::Probe, _) => Some(spec.resolve().map_err(|m| node.error(key, m))?),
        (DevicePolicy::Declared, _) => None,
    };
    Ok((spec, probed))
}

fn declared_device(spec: DeviceSpec, gpus: u32) -> Device {
    match spec {
        DeviceSpec::Cpu => Device::Cpu,
        DeviceSpec::Cuda(n) => Device::Cuda(n),
        DeviceSpec::Auto if gpus > 0 => Device::Cuda(0),
        DeviceSpec::Auto => Device::Cpu,
    }
}

impl<'a> PlanEnv<'a> {
    /// An environment that refuses unreadable datasets (as `run` needs).
    pub fn new(datasets: &'a Datasets, mode: FingerprintMode, cache: Cache<'a>) -> PlanEnv<'a> {
        PlanEnv {
            datasets,
            mode,
            cache,
            fingerprints: HashMap::new(),
            summaries: HashMap::new(),
            allow_unavailable: false,
            unavailable: Vec::new(),
            devices: DevicePolicy::default(),
        }
    }

    fn fingerprint(&mut self, spec: &DatasetSpec, split: &str) -> Result<String, PlanError> {
        let k = (spec.name.clone(), split.to_string());
        if let Some(f) = self.fingerprints.get(&k) {
            return Ok(f.clone());
        }
        let f = match fingerprint_with(spec, split, self.mode, self.cache) {
            Ok(f) => f,
            Err(e) if self.allow_unavailable => {
                self.unavailable.push(format!("{}:{split}: {e}", spec.name));
                "unavailable".to_string()
            }
            Err(e) => return Err(e.into()),
        };
        self.fingerprints.insert(k, f.clone());
        Ok(f)
    }

    /// The classes and sizes of `dataset:split`, read once; `None` when the reference is
    /// not a known dataset's split or the split cannot be read here (fingerprinting then
    /// reports why, or lists it as unavailable).
    fn summary(&mut self, data: &str) -> Option<Arc<SplitSummary>> {
        let (dataset, split) = data.split_once(':')?;
        let k = (dataset.to_string(), split.to_string());
        if let Some(s) = self.summaries.get(&k) {
            return s.clone();
        }
        let s = self
            .datasets
            .get(dataset)
            .and_then(|spec| summarize(spec, split).ok())
            .map(Arc::new);
        self.summaries.insert(k, s.clone());
        s
    }
}

pub fn ktlab_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

pub fn libtorch_version() -> &'static str {
    env!("KTLAB_LIBTORCH_VERSION")
}

/// Validates and keys every variant.
pub fn build_plan(variants: Vec<RawExperiment>, env: &mut PlanEnv) -> Result<Plan, PlanError> {
    let first = variants.first().ok_or(PlanError::NoVariants)?;
    let mut plan = Plan {
        experiment: first.name.clone(),
        file: first.file.path.clone(),
        swept_keys: first.swept.iter().map(|(k, _)| k.clone()).collect(),
        seed_axis: first.seed_axis.is_some(),
        labels: first
            .stages
            .iter()
            .map(|(n, st)| (n.clone(), st.label.clone().unwrap_or_else(|| n.clone())))
            .collect(),
        tables: Vec::new(),
        decisions: Vec::new(),
        variants: Vec::new(),
        instances: Vec::new(),
        slurm: SlurmSection::default(),
    };
    // Every value the file writes is valid, even one a sweep or --set replaces.
    if let Some(written) = &first.as_written {
        decode_stages(&written.stages, None)?;
    }
    let raw_tables = first.tables.clone();
    let raw_decisions = first.decisions.clone();
    let mut by_key: HashMap<Key, usize> = HashMap::new();
    for raw in variants {
        let (spec, probed) = device_setting(&raw.device, "device", env.devices)?;
        let slurm = match &raw.slurm {
            Some(n) => SlurmSection::decode(n)?,
            None => SlurmSection::default(),
        };
        if plan.variants.is_empty() {
            plan.slurm = slurm.clone();
        }

        // 1. kinds and parameters (every stage's errors at once)
        let mut resources: HashMap<String, Resources> = HashMap::new();
        let mut decoded = decode_stages(&raw.stages, Some(&mut resources))?;

        // 2. references: existence and kind
        let mut errors = Errors::default();
        let mut edges: IndexMap<String, Vec<String>> = IndexMap::new();
        for (name, (_, params, st)) in &decoded {
            let mut deps = Vec::new();
            for input in params.inputs() {
                match check_reference(env.datasets, &decoded, name, st, &input) {
                    Ok(Some(stage)) => deps.push(stage),
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
            edges.insert(name.clone(), deps);
        }
        errors.finish()?;

        // 3. order, naming any cycle in full
        let order = topo_order(&edges).map_err(|cycle| {
            let (_, _, st) = &decoded[&cycle[0]];
            st.table
                .error(&format!("stages.{}", cycle[0]), format!("dependency cycle: {}", cycle.join(" -> ")))
        })?;

        // 4. kinds of the inputs, then what each stage implies of its upstream stages
        let mut errors = Errors::default();
        for (name, (_, params, st)) in &decoded {
            for input in params.inputs() {
                if let InputSpec::Stage { stage, accepts, key } = &input {
                    let up_kind = decoded[stage].0;
                    if !accepts.contains(&up_kind.output()) {
                        let expected = accepts.iter().map(|a| a.describe()).collect::<Vec<_>>().join(" or ");
                        errors.push(located(
                            st,
                            name,
                            key,
                            format!("expected {expected}, but `{stage}` is a {} stage", up_kind.name()),
                        ));
                    }
                }
            }
        }
        errors.finish()?;
        let mut errors = Errors::default();
        let env_cell = RefCell::new(&mut *env);
        let splits = |data: &str| env_cell.borrow_mut().summary(data);
        for name in &order {
            let mut params = decoded[name].1.clone();
            let result = params.resolve(&Graph {
                decoded: &decoded,
                splits: Some(&splits),
            });
            let st = decoded[name].2;
            match result {
                Ok(()) => decoded[name].1 = params,
                Err(e) => errors.push(located(st, name, e.key, e.message)),
            }
        }
        for (name, (_, params, st)) in &decoded {
            for e in check_layers(&decoded, params)
                .into_iter()
                .chain(check_init(&decoded, params))
                .chain(check_held_out(&decoded, name, raw.seed))
            {
                errors.push(located(st, name, e.key, e.message));
            }
            if let (Some((_, node)), false) = (&st.seed, params.is_stochastic()) {
                errors.push(node.error(
                    &format!("stages.{name}.seed"),
                    format!(
                        "a {} stage draws no random numbers: `seed` would change nothing",
                        decoded[name].0.name()
                    ),
                ));
            }
        }
        errors.finish()?;
        // Implied `data` may name a split the stage did not: its reference is checked too.
        let mut errors = Errors::default();
        for (name, (_, params, st)) in &decoded {
            for input in params.inputs() {
                if matches!(input, InputSpec::Data { .. }) {
                    errors.take(check_reference(env.datasets, &decoded, name, st, &input));
                }
            }
        }
        errors.finish()?;

        // 5. keys, in dependency order
        let mut variant = Variant {
            name: raw.variant.clone(),
            group: raw.group.clone(),
            seed: raw.seed_axis,
            swept: raw.swept.iter().map(|(k, v)| (k.clone(), v.display())).collect(),
            stages: IndexMap::new(),
        };
        let mut index_of: HashMap<String, usize> = HashMap::new();
        for name in &order {
            let (kind, params, st) = &decoded[name];
            let stage_resources = resources.remove(name).unwrap_or_default();
            let (spec, probed) = match &st.device {
                Some(node) => device_setting(node, &format!("stages.{name}.device"), env.devices)?,
                None => (spec, probed),
            };
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
                        // Known to exist: every data reference was checked above.
                        let Some(spec) = env.datasets.get(&dataset).cloned() else {
                            continue;
                        };
                        let fp = env.fingerprint(&spec, &split)?;
                        key_inputs.insert(key.to_string(), json!({ "dataset": dataset, "split": split, "fingerprint": fp }));
                        inputs.insert(
                            key.to_string(),
                            PlannedInput::Data {
                                spec,
                                split,
                                fingerprint: fp,
                                mode: env.mode,
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
                key_input["device"] = json!(device.class());
            }
            let stated_seed = st.seed.as_ref().map_or(raw.seed, |(seed, _)| *seed);
            if params.is_stochastic() {
                key_input["seed"] = json!(stated_seed);
            }
            let key = Key::of(&key_input);
            let idx = match by_key.get(&key) {
                Some(&i) => i,
                None => {
                    let seed = crate::seed::instance(key.digest());
                    plan.instances.push(StageInstance {
                        kind: *kind,
                        params: params.clone(),
                        inputs,
                        key,
                        key_input,
                        device,
                        seed,
                        stated_seed,
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
    // 6. tables, against the stages (with what any variant's instance of each reports)
    // and the swept values
    if let Some(v) = plan.variants.first() {
        let mut stages: IndexMap<String, super::table::TableStage> = IndexMap::new();
        for (n, &i) in &v.stages {
            let label = plan.labels.get(n).cloned().unwrap_or_else(|| n.clone());
            let mut ts = super::table::TableStage {
                kind: plan.instances[i].kind,
                label,
                metrics: Vec::new(),
                layers: Vec::new(),
            };
            for &j in plan.variants.iter().filter_map(|v| v.stages.get(n)) {
                let params = &plan.instances[j].params;
                for m in params.metrics() {
                    if !ts.metrics.contains(&m) {
                        ts.metrics.push(m);
                    }
                }
                let layers = match params.networks().reads {
                    Some(reads) => reads.layers.iter().map(|l| l.to_string()).collect(),
                    None => vec![super::table::NO_LAYER.to_string()],
                };
                for l in layers {
                    if !ts.layers.contains(&l) {
                        ts.layers.push(l);
                    }
                }
            }
            stages.insert(n.clone(), ts);
        }
        let swept: Vec<(String, Vec<String>)> = plan
            .swept_keys
            .iter()
            .map(|k| {
                let mut values: Vec<String> = Vec::new();
                for (_, val) in plan.variants.iter().flat_map(|v| v.swept.iter().filter(|(s, _)| s == k)) {
                    if !values.contains(val) {
                        values.push(val.clone());
                    }
                }
                (k.clone(), values)
            })
            .collect();
        // 7. decisions, against the same stages; a stage with several instances for one
        // seed cannot be compared seed by seed
        let mut varying: Vec<String> = Vec::new();
        let mut seen: HashMap<(&str, Option<u64>), usize> = HashMap::new();
        for v in &plan.variants {
            for (n, &i) in &v.stages {
                if *seen.entry((n.as_str(), v.seed)).or_insert(i) != i && !varying.contains(n) {
                    varying.push(n.clone());
                }
            }
        }
        let tables = super::validate_tables(&raw_tables, &stages, &swept);
        let decisions = super::validate_decisions(&raw_decisions, &stages, &varying);
        match (tables, decisions) {
            (Ok(t), Ok(d)) => {
                plan.tables = t;
                plan.decisions = d;
            }
            (t, d) => {
                let errors = t.err().into_iter().chain(d.err()).flat_map(PlanError::into_list).collect();
                return Err(PlanError::from_list(errors).unwrap_or(PlanError::NoVariants));
            }
        }
    }
    Ok(plan)
}

/// Every stage's kind and parameters; the errors of all stages at once. `resources`
/// receives each stage's `[resources]` table, when wanted.
fn decode_stages<'a>(
    stages: &'a IndexMap<String, RawStage>,
    mut resources: Option<&mut HashMap<String, Resources>>,
) -> Result<Decoded<'a>, PlanError> {
    let mut errors = Errors::default();
    let mut decoded = Decoded::new();
    for (name, st) in stages {
        let prefix = format!("stages.{name}");
        let Some(kind) = StageKind::parse(&st.kind) else {
            let names = StageKind::ALL.iter().map(|k| k.name());
            let hint = did_you_mean(&st.kind, names).or_else(|| {
                Some(format!(
                    "known kinds: {}",
                    StageKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                ))
            });
            errors.push(
                st.kind_node
                    .error_hint(&format!("{prefix}.kind"), format!("unknown stage kind `{}`", st.kind), hint),
            );
            continue;
        };
        let params = errors.take(Params::decode(kind, &st.table, &prefix));
        if let (Some(n), Some(resources)) = (&st.resources, resources.as_deref_mut()) {
            if let Some(r) = errors.take(Resources::decode(n, &format!("{prefix}.resources"))) {
                resources.insert(name.clone(), r);
            }
        }
        if let Some(params) = params {
            decoded.insert(name.clone(), (kind, params, st));
        }
    }
    errors.finish()?;
    Ok(decoded)
}

/// An error at `stages.<name>.<key>`, located at the key's value (or the stage table).
fn located(st: &RawStage, name: &str, key: &str, message: String) -> PlanError {
    let node = st.table.lookup(key).unwrap_or(&st.table);
    node.error(&format!("stages.{name}.{key}"), message).into()
}

/// Checks one input reference; a stage reference gives the stage it depends on.
fn check_reference(
    datasets: &Datasets,
    decoded: &Decoded,
    name: &str,
    st: &RawStage,
    input: &InputSpec,
) -> Result<Option<String>, PlanError> {
    let key = format!("stages.{name}.{}", input.key());
    let node = st.table.lookup(input.key()).unwrap_or(&st.table);
    match input {
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
            Ok(Some(stage.clone()))
        }
        InputSpec::Data { dataset, split, .. } => {
            check_data_ref(datasets, node, &key, dataset, split)?;
            Ok(None)
        }
    }
}

/// The stages of one variant, as [`crate::stages::Stage::resolve`] sees them, and the
/// splits it may read (none after resolving: the layer and backbone checks need none).
struct Graph<'g, 'a> {
    decoded: &'g Decoded<'a>,
    splits: Option<&'g ReadSplit<'g>>,
}

/// Reads a `dataset:split`'s summary (once: [`PlanEnv`] keeps them).
type ReadSplit<'g> = dyn Fn(&str) -> Option<Arc<SplitSummary>> + 'g;

impl<'g, 'a> Graph<'g, 'a> {
    fn of(decoded: &'g Decoded<'a>) -> Self {
        Graph { decoded, splits: None }
    }
}

impl Upstream for Graph<'_, '_> {
    fn kind(&self, stage: &str) -> Option<StageKind> {
        self.decoded.get(stage).map(|(k, _, _)| *k)
    }

    fn split(&self, data: &str) -> Option<Arc<SplitSummary>> {
        self.splits?(data)
    }

    fn trained_on(&self, stage: &str) -> Option<HeadLabels> {
        match &self.decoded.get(stage)?.1 {
            Params::Train(t) if t.uses_true_labels() => t.data.clone().map(HeadLabels::Truth),
            Params::Train(t) => Some(HeadLabels::Clusters(t.labels.clone())),
            _ => None,
        }
    }

    fn rows(&self, stage: &str) -> Option<String> {
        let mut cur = stage;
        // Bounded: a cycle was refused already, but rows must not loop on a bad graph.
        for _ in 0..=self.decoded.len() {
            match self.decoded.get(cur)?.1.rows() {
                Rows::Data(d) => return d.contains(':').then(|| d.to_string()),
                Rows::Stage(s) => cur = s,
                Rows::None => return None,
            }
        }
        None
    }

    fn network(&self, stage: &str) -> Option<NetConfig> {
        self.decoded.get(stage).and_then(|(_, p, _)| p.networks().builds)
    }
}

/// The layers a stage reads exist in the upstream model's architecture (checked before
/// anything runs, for every model stage kind).
fn check_layers(decoded: &Decoded, params: &Params) -> Vec<ParamError> {
    let Some(uses) = params.networks().reads else { return Vec::new() };
    let Some(cfg) = Graph::of(decoded).network(uses.model) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for layer in uses.layers {
        if let Err(e) = crate::models::check_layer_name(&cfg, layer) {
            errors.push(ParamError::new(uses.layers_key, e.to_string()));
        }
    }
    errors
}

/// A model stage that starts from another's weights needs the same backbone.
fn check_init(decoded: &Decoded, params: &Params) -> Option<ParamError> {
    let networks = params.networks();
    let (key, init) = networks.init?;
    let ours = networks.builds?;
    let theirs = Graph::of(decoded).network(init)?;
    let mut differs = Vec::new();
    if ours.arch != theirs.arch {
        differs.push(format!("architecture {} vs {}", ours.arch, theirs.arch));
    }
    if ours.width != theirs.width {
        differs.push(format!("width {} vs {}", ours.width, theirs.width));
    }
    if ours.batch_norm != theirs.batch_norm {
        differs.push(format!("batch_norm {} vs {}", ours.batch_norm, theirs.batch_norm));
    }
    (!differs.is_empty()).then(|| {
        ParamError::new(
            key,
            format!(
                "`{init}` has a different backbone ({}): its weights cannot initialise this network",
                differs.join(", ")
            ),
        )
    })
}

fn check_data_ref(datasets: &Datasets, node: &Node, key: &str, dataset: &str, split: &str) -> Result<(), ConfigError> {
    let Some(spec) = datasets.get(dataset) else {
        let hint = did_you_mean(dataset, datasets.names());
        let known = if datasets.specs.is_empty() {
            " (no datasets file was found: pass --datasets or put datasets.toml beside the experiment)".to_string()
        } else {
            String::new()
        };
        return Err(node.error_hint(key, format!("no dataset named `{dataset}`{known}"), hint));
    };
    if split.is_empty() {
        return Err(node.error(key, format!("expected `{dataset}:<split>`")));
    }
    if let Some(splits) = spec.format.declared_splits() {
        if !splits.contains(&split) {
            let hint =
                did_you_mean(split, splits.iter().copied()).or_else(|| Some(format!("splits of `{dataset}`: {}", splits.join(", "))));
            return Err(node.error_hint(key, format!("dataset `{dataset}` has no split `{split}`"), hint));
        }
    }
    Ok(())
}
