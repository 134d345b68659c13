//! How long each instance of a plan should take, before it runs: from the store's history
//! of the same kind (the same parameters as they are, other parameters scaled by what the
//! cost grows with: images x epochs x the network's multiply-accumulates per image, device
//! class, threads), else from a model of measured throughputs; the total, and the critical
//! path when every instance is its own cluster job.
use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::{Plan, PlannedInput, StageInstance};
use crate::store::{CostFacts, Manifest, Store};

/// Where an estimate comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Entries of the same kind with the same parameters and inputs of the same size
    /// (another seed, another upstream key): their mean time.
    Same { entries: usize },
    /// Entries of the same kind and device class with other parameters: their median
    /// seconds per unit of work, times this instance's work.
    Scaled { entries: usize },
    /// No history of the kind on this device class: [`MODEL`]'s throughput.
    Model,
}

impl Source {
    /// `history (2 same)`, `history (5 scaled)`, `model`.
    pub fn describe(&self) -> String {
        match self {
            Source::Same { entries } => format!("history ({entries} same)"),
            Source::Scaled { entries } => format!("history ({entries} scaled)"),
            Source::Model => "model".to_string(),
        }
    }
}

/// One instance's estimated run time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub seconds: f64,
    pub source: Source,
}

/// Seconds per unit of work (see [`work`]) on one CPU thread, and a start-up cost, for
/// kinds without history. Measured: the quickstart from an empty store on 2 CPU cores
/// (Intel Xeon, OMP_WAIT_POLICY=PASSIVE), each kind's median of seconds x threads / work
/// over its instances (`ktlab plan --format json` prints each instance's `work`, the
/// manifests their seconds). That run shared the machine (771 s of wall time); the rates
/// are scaled to the idle machine by 177.0 / 771 (the quickstart's time on 2 idle cores,
/// README). knn-probe and finetune: taken as linear-probe and train (finetune's images are
/// its labelled subset).
pub const MODEL: &[(&str, f64, f64)] = &[
    // (kind, seconds per unit of work x threads, seconds of start-up)
    ("pretext", 2.4e-11, 0.05),
    ("train", 3.4e-11, 0.05),
    ("finetune", 3.4e-11, 0.05),
    ("features", 5.7e-11, 0.05),
    ("linear-probe", 8.0e-11, 0.05),
    ("knn-probe", 8.0e-11, 0.05),
    ("kmeans", 3.0e-7, 0.05),
    ("assign", 1.3e-5, 0.0),
    ("cluster-metrics", 1.6e-7, 0.0),
    ("init", 0.0, 0.05),
];

/// How much faster a CUDA device does the model's work than one CPU thread: an H200 trained
/// `vgg16` at 224 px at 933 images/s and `alexnet` at 11,918 (docs/BENCHMARKS.md, "On a
/// GPU", fp32), 2.3e-14 and 4.2e-14 s per unit of work against [`MODEL`]'s 3.4e-11 for
/// training on one CPU thread. Small networks at 32 px do not fill the device: a first
/// CUDA run's history corrects it.
pub const CUDA_SPEED_UP: f64 = 1000.0;

/// A stage's work: what its run time grows with. Training kinds: images x epochs x
/// multiply-accumulates per image (x 3 for the backward pass); features and probes: images
/// x multiply-accumulates (HOG and pixels a nominal million; a probe's epochs over the
/// pooled features on top); k-means:
/// rows x k x iterations x restarts; others: images.
pub fn work(kind: &str, params: &Value, facts: &CostFacts) -> f64 {
    let num = |k: &str| params.get(k).and_then(Value::as_f64);
    let images = facts.images.unwrap_or(1.0).max(1.0);
    let macs = facts.macs_per_image.unwrap_or(1.0).max(1.0);
    let epochs = num("epochs").unwrap_or(1.0).max(1.0);
    match kind {
        "pretext" | "train" | "finetune" => 3.0 * images * epochs * macs,
        // HOG and pixels: a nominal million multiply-accumulates per image.
        "features" => images * facts.macs_per_image.unwrap_or(1e6),
        "linear-probe" => images * (macs + epochs * 1e4 * num_layers(params)),
        "knn-probe" => images * (macs + images / 2.0 * num_layers(params)),
        "kmeans" => images * num("k").unwrap_or(1.0) * num("iterations").unwrap_or(1.0) * num("restarts").unwrap_or(1.0),
        "init" => 1.0,
        _ => images,
    }
}

fn num_layers(params: &Value) -> f64 {
    params.get("layers").and_then(Value::as_array).map_or(1, Vec::len).max(1) as f64
}

/// The threads a stage here computes with, as manifests record them and estimates scale
/// by: `OMP_NUM_THREADS` where set, else the CPUs this process may run on.
pub fn threads_here() -> usize {
    std::env::var("OMP_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// What each instance's cost scales with, in plan order (inputs before the instances
/// reading them): images from the splits it reads (else from its inputs), the network it
/// runs (its own, else its `model` input's).
pub fn cost_facts(plan: &Plan, threads: usize) -> Vec<CostFacts> {
    facts_of(plan, threads, &vec![true; plan.instances.len()])
}

/// The cost facts of instance `idx` alone (its inputs' splits read, not every split of the
/// plan): what the runner records in its manifest.
pub fn cost_facts_of(plan: &Plan, idx: usize, threads: usize) -> CostFacts {
    let mut wanted = vec![false; plan.instances.len()];
    let mut stack = vec![idx];
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut wanted[i], true) {
            stack.extend(plan.instances[i].deps());
        }
    }
    facts_of(plan, threads, &wanted).swap_remove(idx)
}

/// [`cost_facts`] of the `wanted` instances (their inputs among them); the others default.
fn facts_of(plan: &Plan, threads: usize, wanted: &[bool]) -> Vec<CostFacts> {
    let mut sizes: HashMap<(String, String), Option<f64>> = HashMap::new();
    let mut nets: Vec<Option<f64>> = Vec::with_capacity(plan.instances.len());
    let mut out: Vec<CostFacts> = Vec::with_capacity(plan.instances.len());
    for (i, inst) in plan.instances.iter().enumerate() {
        if !wanted[i] {
            nets.push(None);
            out.push(CostFacts::default());
            continue;
        }
        let mut data_images = None::<f64>;
        let mut upstream_images = None::<f64>;
        for input in inst.inputs.values() {
            match input {
                PlannedInput::Data { spec, split, .. } => {
                    let n = *sizes
                        .entry((spec.name.clone(), split.clone()))
                        .or_insert_with(|| crate::data::summarize(spec, split).ok().map(|s| s.len as f64));
                    data_images = Some(data_images.unwrap_or(0.0) + n.unwrap_or(0.0));
                }
                PlannedInput::Stage(j) => {
                    if let Some(n) = out[*j].images {
                        upstream_images = Some(upstream_images.map_or(n, |m: f64| m.max(n)));
                    }
                }
            }
        }
        let params = &inst.key_input["params"];
        // finetune trains on its labelled subset of `train` (the test split's single pass
        // at the end is not counted).
        if let Some(n) = finetune_subset(inst.kind.name(), params, inst.inputs.get("train")) {
            data_images = Some(n);
        }
        let own = own_macs(params);
        let model = match inst.inputs.get("model") {
            Some(PlannedInput::Stage(j)) => nets[*j],
            _ => None,
        };
        nets.push(own.map(|(whole, _)| whole).or(model));
        out.push(CostFacts {
            images: data_images.or(upstream_images),
            macs_per_image: own.map(|(_, per_sample)| per_sample).or(model),
            device: inst.device.class().to_string(),
            threads,
        });
    }
    out
}

/// The images a `finetune` stage trains on in an epoch: `labels_per_class` of each class
/// (at most the class's images), `label_fraction` of each class, or the whole `train`
/// split; `None` for other kinds or when the split cannot be read.
fn finetune_subset(kind: &str, params: &Value, train: Option<&PlannedInput>) -> Option<f64> {
    let Some(PlannedInput::Data { spec, split, .. }) = train.filter(|_| kind == "finetune") else {
        return None;
    };
    let summary = crate::data::summarize(spec, split).ok()?;
    let per_class = summary.per_class.unwrap_or_else(|| vec![summary.len]);
    let n: f64 = if let Some(m) = params.get("labels_per_class").and_then(Value::as_f64) {
        per_class.iter().map(|&c| (c as f64).min(m)).sum()
    } else if let Some(f) = params.get("label_fraction").and_then(Value::as_f64) {
        per_class.iter().map(|&c| (c as f64 * f).round().max(1.0).min(c as f64)).sum()
    } else {
        summary.len as f64
    };
    Some(n)
}

/// The multiply-accumulates of the network a stage builds from its own parameters: of one
/// image at its `image_size` (what a stage reading the model pays per image), and of one
/// training image (a pretext task's samples of it: 9 tiles for Jigsaw, 4 rotations, 2
/// views, the decoder of a dense task).
fn own_macs(params: &Value) -> Option<(f64, f64)> {
    let cfg = super::memory::own_net(params)?;
    let whole = cfg.macs_per_image()?;
    let per_sample = match params.get("task") {
        Some(_) => crate::stages::pretext_sample_macs(params, &cfg)?,
        None => whole,
    };
    Some((whole, per_sample))
}

/// The store's history: every valid entry's manifest, by kind.
pub struct History {
    by_kind: HashMap<String, Vec<Manifest>>,
}

impl History {
    pub fn load(store: &Store) -> History {
        let by_kind = crate::stages::StageKind::names()
            .into_iter()
            .map(|k| (k.to_string(), store.manifests(k)))
            .collect();
        History { by_kind }
    }

    /// A history of the given manifests (tests).
    pub fn of(manifests: Vec<Manifest>) -> History {
        let mut by_kind: HashMap<String, Vec<Manifest>> = HashMap::new();
        for m in manifests {
            by_kind.entry(m.kind.clone()).or_default().push(m);
        }
        History { by_kind }
    }
}

/// What identifies "the same stage" across seeds and upstream keys: the kind, version,
/// parameters and device class, each data input's fingerprint, each stage input's kind.
fn likeness(key_input: &Value) -> Value {
    let inputs: serde_json::Map<String, Value> = key_input["inputs"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.get("fingerprint").or(v.get("stage")).cloned().unwrap_or(Value::Null)))
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "kind": key_input["kind"], "version": key_input["version"], "params": key_input["params"],
        "device": key_input["device"], "inputs": inputs,
    })
}

/// Seconds as `threads` threads would take them that `from` threads took.
fn at_threads(seconds: f64, from: usize, threads: usize) -> f64 {
    seconds * from.max(1) as f64 / threads.max(1) as f64
}

/// The estimate of one instance: the mean of the same instances in the history (with
/// inputs of the same size, when both know it), else the median rate of the kind's
/// entries on the same device class times this one's work, else [`MODEL`].
pub fn estimate(inst: &StageInstance, facts: &CostFacts, history: &History) -> Estimate {
    let kind = inst.kind.name();
    let params = &inst.key_input["params"];
    let past = history.by_kind.get(kind).map(Vec::as_slice).unwrap_or_default();
    let like = likeness(&inst.key_input);
    let same_size = |m: &Manifest| m.cost.as_ref().is_none_or(|c| c.images == facts.images || facts.images.is_none());
    let same: Vec<f64> = past
        .iter()
        .filter(|m| likeness(&m.key_input) == like && same_size(m))
        .map(|m| {
            m.cost
                .as_ref()
                .map_or(m.seconds, |c| at_threads(m.seconds, c.threads, facts.threads))
        })
        .collect();
    if !same.is_empty() {
        return Estimate {
            seconds: same.iter().sum::<f64>() / same.len() as f64,
            source: Source::Same { entries: same.len() },
        };
    }
    let own = work(kind, params, facts);
    let mut rates: Vec<f64> = past
        .iter()
        .filter_map(|m| {
            let c = m.cost.as_ref().filter(|c| c.device == facts.device)?;
            let w = work(kind, &m.key_input["params"], c);
            (w > 0.0).then(|| at_threads(m.seconds, c.threads, facts.threads) / w)
        })
        .collect();
    if !rates.is_empty() {
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        return Estimate {
            seconds: median * own,
            source: Source::Scaled { entries: rates.len() },
        };
    }
    let (per_work, start) = MODEL.iter().find(|(k, _, _)| *k == kind).map_or((0.0, 1.0), |&(_, r, s)| (r, s));
    let speed = if facts.device == "cuda" {
        CUDA_SPEED_UP
    } else {
        facts.threads.max(1) as f64
    };
    Estimate {
        seconds: start + per_work * own / speed,
        source: Source::Model,
    }
}

/// The estimates of a plan's instances that are `due` (the others: `None`), with the total
/// and the critical path: the longest chain of due instances through their inputs, which
/// bounds a cluster run where each instance is its own job.
pub struct PlanEstimate {
    pub instances: Vec<Option<Estimate>>,
    pub facts: Vec<CostFacts>,
    pub total_seconds: f64,
    pub critical_path_seconds: f64,
}

pub fn estimate_plan(plan: &Plan, due: &[bool], history: &History, threads: usize) -> PlanEstimate {
    let facts = cost_facts(plan, threads);
    let instances: Vec<Option<Estimate>> = plan
        .instances
        .iter()
        .zip(&facts)
        .zip(due)
        .map(|((inst, f), &due)| due.then(|| estimate(inst, f, history)))
        .collect();
    let mut finish = vec![0.0f64; plan.instances.len()];
    for (i, inst) in plan.instances.iter().enumerate() {
        let ready = inst.deps().map(|j| finish[j]).fold(0.0, f64::max);
        finish[i] = ready + instances[i].as_ref().map_or(0.0, |e| e.seconds);
    }
    PlanEstimate {
        total_seconds: instances.iter().flatten().map(|e| e.seconds).sum(),
        critical_path_seconds: finish.iter().copied().fold(0.0, f64::max),
        instances,
        facts,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::models::{Arch, NetConfig};
    use crate::pretext::decoder;

    /// A pretext stage's cost per image is its task's samples of it, the decoder of a dense
    /// task included (it used to count the backbone alone for colourisation, inpainting
    /// and the two contrastive views).
    #[test]
    fn a_pretext_image_costs_its_tasks_samples_and_decoder() {
        let params = |extra: Value| {
            let mut v = json!({"arch": "alexnet-small", "width": 0.5});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        let cfg = NetConfig {
            width: 0.5,
            ..NetConfig::new(Arch::AlexnetSmall)
        };
        let whole = cfg.macs_per_image().unwrap();
        let per = |extra: Value| {
            let (w, per) = own_macs(&params(extra)).unwrap();
            assert_eq!(w, whole);
            per
        };
        assert_eq!(own_macs(&params(json!({}))), Some((whole, whole)), "a stage without a task");
        assert_eq!(per(json!({"task": "rotation"})), 4.0 * whole);
        assert_eq!(per(json!({"task": "contrastive"})), 2.0 * whole);
        let tiles = NetConfig {
            image_size: 16,
            ..cfg.clone()
        };
        assert_eq!(
            per(json!({"task": "jigsaw++", "tile_size": 16})),
            9.0 * tiles.macs_per_image().unwrap()
        );
        let colour = |loss: &str| per(json!({"task": "colorization", "decoder_layer": "conv5", "loss": loss}));
        assert_eq!(colour("classification"), whole + decoder::macs(&cfg, "conv5", 8, 261).unwrap());
        assert!(colour("regression") < colour("classification"));
        let inpaint = per(json!({"task": "inpainting", "decoder_layer": "conv5"}));
        assert_eq!(inpaint, whole + decoder::macs(&cfg, "conv5", 32, 3).unwrap());
        assert!(inpaint > 1.1 * whole, "{inpaint} against {whole}");
        assert_eq!(
            own_macs(&params(json!({"task": "colorization"}))),
            None,
            "no decoder layer: unknown"
        );
    }
}
