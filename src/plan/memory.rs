//! How much memory each instance of a plan should need at its peak, before it runs: the
//! images a stage holds (a split whose decoded pixels fit the decode budget is decoded
//! whole, as 8-bit RGB at the side it is read at; a larger one is streamed, and only the
//! batches in flight count), its network's weights (with
//! their gradients and the optimiser's state when it trains), a batch's layer outputs, and
//! the pooled features a probe holds. A count from the layer descriptions and the splits'
//! sizes, not a measurement; `ktlab run` refuses a plan whose largest instance would not
//! fit in this machine's memory unless told to proceed.
use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::{Plan, PlannedInput};
use crate::data::BATCHES_AHEAD;
use crate::eval::features::{BANK_BYTES, BLOCK_BYTES};
use crate::models::{default_pooled_dim, pooled_side, Arch, NetConfig};
use crate::stages::{EXTRACT_BATCH, MODEL_WAVE};
use crate::store::CostFacts;

/// Bytes of one instance's peak, by what holds them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Memory {
    /// Images held at once: decoded splits (8-bit RGB at the side they are read at), or
    /// for a streamed split its batches in flight (float32).
    pub images: f64,
    /// The network's float32 weights; for training also their gradients and the
    /// optimiser's state (one more copy for SGD with momentum, two for Adam).
    pub model: f64,
    /// A batch's float32 layer outputs: for training all of them and their gradients (kept
    /// for the backward pass), for reading a model the largest layer's input and output.
    pub activations: f64,
    /// Features held: a probe's blocks (its features are over files) or, for a full-batch
    /// L-BFGS probe, its training rows; a features stage's wave.
    pub features: f64,
}

impl Memory {
    pub fn total(&self) -> f64 {
        self.images + self.model + self.activations + self.features
    }

    /// `images 6 MiB, model 14 MiB, activations 0.21 GiB, features 0 MiB`.
    pub fn parts(&self) -> String {
        format!(
            "images {}, model {}, activations {}, features {}",
            human_bytes(self.images),
            human_bytes(self.model),
            human_bytes(self.activations),
            human_bytes(self.features)
        )
    }
}

impl Memory {
    /// What of the peak is in this machine's memory: everything on the CPU; on a GPU
    /// (`on_gpu`) the images and features a stage holds and its weights on their way to the
    /// device, while the weights' training state and the activations are the GPU's.
    pub fn on_host(&self, on_gpu: bool) -> f64 {
        if on_gpu {
            self.images + self.features + self.model
        } else {
            self.total()
        }
    }
}

/// The instance whose estimated peak in this machine's memory is largest (`on_gpu`: which
/// instances run on a GPU), its estimate and that amount.
pub fn largest_on_host<'a>(memory: &'a [Option<Memory>], on_gpu: &[bool]) -> Option<(usize, &'a Memory, f64)> {
    memory
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.as_ref().map(|m| (i, m, m.on_host(on_gpu.get(i).copied().unwrap_or(false)))))
        .max_by(|a, b| a.2.total_cmp(&b.2))
}

/// The instance with the largest estimated peak, if any has one.
pub fn largest(memory: &[Option<Memory>]) -> Option<(usize, &Memory)> {
    memory
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.as_ref().map(|m| (i, m)))
        .max_by(|a, b| a.1.total().total_cmp(&b.1.total()))
}

/// The estimate of every instance that is `due` (the others, and kinds that hold little
/// or whose size is not known before they run: `None`), from the plan's cost facts, with
/// splits up to `budget` bytes decoded whole ([`crate::data::decode_budget`]).
pub fn memory_plan(plan: &Plan, due: &[bool], facts: &[CostFacts], budget: u64) -> Vec<Option<Memory>> {
    let mut sizes: HashMap<(String, String), Option<f64>> = HashMap::new();
    let mut nets: Vec<Option<NetConfig>> = Vec::with_capacity(plan.instances.len());
    let mut out = Vec::with_capacity(plan.instances.len());
    for (i, inst) in plan.instances.iter().enumerate() {
        let params = &inst.key_input["params"];
        let net = own_net(params).or_else(|| match inst.inputs.get("model") {
            Some(PlannedInput::Stage(j)) => nets[*j].clone(),
            _ => None,
        });
        nets.push(net.clone());
        if !due[i] {
            out.push(None);
            continue;
        }
        // The lengths of the splits it reads, in input order.
        let splits: Vec<f64> = inst
            .inputs
            .values()
            .filter_map(|input| match input {
                PlannedInput::Data { spec, split, .. } => *sizes
                    .entry((spec.name.clone(), split.clone()))
                    .or_insert_with(|| crate::data::summarize(spec, split).ok().map(|s| s.len as f64)),
                PlannedInput::Stage(_) => None,
            })
            .collect();
        let trained_images = facts.get(i).and_then(|f| f.images);
        let per_sample = facts.get(i).and_then(|f| f.macs_per_image);
        let held = Held { budget: budget as f64 };
        out.push(net.and_then(|net| estimate(inst.kind.name(), params, &net, &splits, trained_images, per_sample, held)));
    }
    out
}

/// What a probe holds of its features (`train` rows fitted, `largest` split scored, `dims`
/// its widest layer's): the features themselves are over files, paged by the kernel;
/// held are a block being scored and its standardised copy, a kNN probe's memory-bank
/// block and its prepared copy, and for L-BFGS (full batch) the standardised training
/// rows (float32) and their float64 copy.
fn probe_features(kind: &str, params: &Value, train: f64, largest: f64, dims: f64) -> f64 {
    let block = (largest * dims * F32).min(BLOCK_BYTES as f64);
    match kind {
        "knn-probe" => 2.0 * (train * dims * F32).min(BANK_BYTES as f64) + 2.0 * block,
        "linear-probe" if params.get("solver").and_then(Value::as_str) != Some("adam") => (train * dims * (F32 + 8.0)).max(2.0 * block),
        _ => 2.0 * block,
    }
}

/// The network a stage builds from its own parameters (`arch`, `width`, `batch_norm`,
/// `image_size`), if it names one.
pub(super) fn own_net(params: &Value) -> Option<NetConfig> {
    let arch: Arch = params.get("arch")?.as_str()?.parse().ok()?;
    let mut cfg = NetConfig::new(arch);
    if let Some(w) = params.get("width").and_then(Value::as_f64) {
        cfg.width = w;
    }
    if let Some(bn) = params.get("batch_norm").and_then(Value::as_bool) {
        cfg.batch_norm = bn;
    }
    if let Some(side) = params.get("image_size").and_then(Value::as_i64) {
        cfg.image_size = side;
    }
    Some(cfg)
}

/// Bytes of one float32.
const F32: f64 = 4.0;

/// What a stage holds of a split it reads: the decode budget's rule.
#[derive(Clone, Copy, Debug)]
struct Held {
    budget: f64,
}

impl Held {
    /// Bytes held of `n` images of `image` bytes each, read `batch` at a time, with
    /// `in_flight` batches of `floats` float32 values per image waiting when streamed.
    fn split(self, n: f64, image: f64, batch: f64, in_flight: f64, floats: f64) -> f64 {
        if n * image <= self.budget {
            n * image
        } else {
            in_flight * batch * floats * F32
        }
    }
}

/// One instance's peak. `splits`: the lengths of the splits it reads; `trained`: the images
/// a training stage trains on (its data split, or its labels' images); `per_sample`: the
/// multiply-accumulates of one training image (a pretext task's samples of it), which
/// scale a whole image's activations.
fn estimate(
    kind: &str,
    params: &Value,
    net: &NetConfig,
    splits: &[f64],
    trained: Option<f64>,
    per_sample: Option<f64>,
    held: Held,
) -> Option<Memory> {
    let num = |k: &str| params.get(k).and_then(Value::as_f64);
    let weights = net.parameter_count()? * F32;
    let (act_sum, act_peak) = net.activation_values()?;
    let side = net.image_size as f64;
    let image = 3.0 * side * side;
    match kind {
        "pretext" | "train" | "finetune" => {
            let whole = net.macs_per_image().unwrap_or(1.0).max(1.0);
            let samples = per_sample.map_or(1.0, |m| (m / whole).max(1.0));
            let batch = num("batch_size").unwrap_or(128.0);
            // The training images (a finetune's labelled subset: always decoded), streamed
            // as batches of `samples` images' floats each when over the budget; train and
            // finetune also read their test split, a batch at a time when streamed.
            let trained = trained.unwrap_or(0.0);
            // Random resized crops are cut from the originals, which are always streamed.
            let originals = params.get("crop").and_then(Value::as_str) == Some("random-resized");
            let held_train = if originals { Held { budget: 0.0 } } else { held };
            let train_images = match kind {
                "finetune" if !originals => trained * image,
                _ => held_train.split(trained, image, batch, (BATCHES_AHEAD + 1) as f64, samples * image),
            };
            let test_images = match kind {
                "pretext" => 0.0,
                _ => splits
                    .iter()
                    .skip(1)
                    .map(|&n| held.split(n, image, EXTRACT_BATCH as f64, 1.0, image))
                    .sum(),
            };
            let images = train_images + test_images;
            let states = match params.get("optimizer").and_then(Value::as_str) {
                Some("adam") => 2.0,
                _ if num("momentum").unwrap_or(0.9) > 0.0 => 1.0,
                _ => 0.0,
            };
            Some(Memory {
                images,
                model: weights * (2.0 + states),
                activations: 2.0 * batch * samples * act_sum * F32,
                features: 0.0,
            })
        }
        "linear-probe" | "knn-probe" | "mlp-probe" => {
            let side = num("image_size").map_or(net.image_size, |s| s as i64);
            let read = NetConfig {
                image_size: side,
                ..net.clone()
            };
            let target = num("pooled_dim").map_or(default_pooled_dim(side as usize), |d| d as usize);
            let layers: Vec<&str> = params
                .get("layers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            // The widest layer's pooled dimensions: features are written to files as they
            // are read and fitted one layer at a time.
            let mut dims = 0.0f64;
            for layer in layers {
                let tap = read.tap_dims(layer)?;
                dims = dims.max(match tap.as_slice() {
                    [c, h, _] => (c * pooled_side(*c, *h, target).pow(2)) as f64,
                    d => d.iter().product::<i64>() as f64,
                });
            }
            let (_, peak) = read.activation_values()?;
            let image = 3.0 * (side * side) as f64;
            let largest = splits.iter().copied().fold(0.0, f64::max);
            Some(Memory {
                images: held.split(largest, image, EXTRACT_BATCH as f64, 1.0, image),
                model: weights,
                activations: EXTRACT_BATCH as f64 * peak * F32,
                features: probe_features(kind, params, splits.first().copied().unwrap_or(0.0), largest, dims),
            })
        }
        "features" => {
            let wave = splits.first().copied().unwrap_or(0.0).min(MODEL_WAVE as f64);
            let dims = params.get("layer").and_then(Value::as_str).and_then(|l| net.tap_dims(l));
            let row = match (dims, num("pooled_dim")) {
                (Some(d), Some(p)) if d.len() == 3 => (d[0] * pooled_side(d[0], d[1], p as usize).pow(2)) as f64,
                (Some(d), _) => d.iter().product::<i64>() as f64,
                (None, _) => 0.0,
            };
            Some(Memory {
                images: wave * image,
                model: weights,
                activations: EXTRACT_BATCH as f64 * act_peak * F32,
                features: wave * row * F32,
            })
        }
        _ => None,
    }
}

/// This machine's memory in bytes (`MemTotal` of /proc/meminfo), where it can tell.
pub fn machine_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// `0.42 GiB`, `252 GiB`: a memory estimate's precision.
pub fn human_bytes(b: f64) -> String {
    let gib = b / (1u64 << 30) as f64;
    if gib >= 10.0 {
        format!("{gib:.0} GiB")
    } else if gib >= 0.1 {
        format!("{gib:.2} GiB")
    } else {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEEP_ALL: Held = Held { budget: f64::INFINITY };
    const DEFAULT: Held = Held {
        budget: crate::data::DEFAULT_DECODE_BUDGET as f64,
    };

    /// The paper's Jigsaw++ on ImageNet decoded whole is 1.28M images at 256 px before its
    /// first step (about 252 GB, #23's figure); streamed (the default budget), the batches
    /// in flight; the quickstart's contrastive teacher is decoded whole, well under a GiB.
    #[test]
    fn a_pretext_stage_holds_its_split_or_its_batches_its_model_and_a_batch() {
        let net = NetConfig {
            image_size: 256,
            ..NetConfig::new(Arch::Vgg16)
        };
        let params = json!({"optimizer": "sgd", "momentum": 0.9, "batch_size": 256});
        let m = estimate("pretext", &params, &net, &[1_281_167.0], Some(1_281_167.0), None, KEEP_ALL).unwrap();
        assert_eq!(m.images, 1_281_167.0 * 3.0 * 256.0 * 256.0);
        assert!((m.images / 1e9 - 251.9).abs() < 0.1, "{}", m.images / 1e9);
        assert_eq!(m.model, net.parameter_count().unwrap() * 4.0 * 3.0);
        assert!(m.total() > m.images);
        let streamed = estimate("pretext", &params, &net, &[1_281_167.0], Some(1_281_167.0), None, DEFAULT).unwrap();
        assert_eq!(streamed.images, 4.0 * 256.0 * 3.0 * 256.0 * 256.0 * 4.0);
        assert!(streamed.images < 1.1e9, "{}", human_bytes(streamed.images));
        assert_eq!((streamed.model, streamed.activations), (m.model, m.activations));
        let small = NetConfig {
            width: 0.25,
            ..NetConfig::new(Arch::Vgg16Small)
        };
        let adam = json!({"optimizer": "adam", "batch_size": 64});
        let q = estimate(
            "pretext",
            &adam,
            &small,
            &[2000.0],
            Some(1800.0),
            Some(2.0 * small.macs_per_image().unwrap()),
            DEFAULT,
        )
        .unwrap();
        assert_eq!(q.images, 1800.0 * 3.0 * 32.0 * 32.0);
        assert_eq!(q.model, small.parameter_count().unwrap() * 4.0 * 4.0);
        assert_eq!(q.activations, 2.0 * 64.0 * 2.0 * small.activation_values().unwrap().0 * 4.0);
        assert!(q.total() < 0.5 * (1u64 << 30) as f64, "{}", human_bytes(q.total()));
        // Random resized crops stream the originals whatever the budget.
        let rrc = json!({"optimizer": "adam", "batch_size": 64, "crop": "random-resized"});
        let r = estimate("train", &rrc, &small, &[2000.0], Some(2000.0), None, KEEP_ALL).unwrap();
        assert_eq!(r.images, 4.0 * 64.0 * 3.0 * 32.0 * 32.0 * 4.0);
    }

    /// A probe reads one split at a time (decoded whole within the budget, else a batch at
    /// a time); its features go to files, so it holds blocks of them, except L-BFGS, which
    /// fits the widest layer's training rows at once (float32 and float64).
    #[test]
    fn a_probe_holds_its_largest_split_and_blocks_of_features() {
        let net = NetConfig::new(Arch::Alexnet);
        let params = json!({"layers": ["conv1", "conv5"]});
        let m = estimate("linear-probe", &params, &net, &[50_000.0, 10_000.0], None, None, KEEP_ALL).unwrap();
        assert_eq!(m.images, 50_000.0 * 3.0 * 224.0 * 224.0);
        let streamed = estimate("linear-probe", &params, &net, &[50_000.0, 10_000.0], None, None, DEFAULT).unwrap();
        assert_eq!(streamed.images, 256.0 * 3.0 * 224.0 * 224.0 * 4.0);
        assert_eq!(streamed.features, m.features);
        // VISSL's sizes: conv1 96 x 10 x 10 (the wider), conv5 256 x 6 x 6 (model_io's
        // pool tests).
        assert_eq!(m.features, 50_000.0 * 9600.0 * 12.0);
        assert_eq!(m.model, net.parameter_count().unwrap() * 4.0);
        assert_eq!(estimate("kmeans", &params, &net, &[1.0], None, None, DEFAULT), None);
        // ImageNet's 1.28 million training images: L-BFGS needs 138 GiB, Adam, the MLP and
        // kNN probes a few blocks whatever the split's size.
        let imagenet = [1_281_167.0, 50_000.0];
        let lbfgs = estimate("linear-probe", &params, &net, &imagenet, None, None, DEFAULT).unwrap();
        assert_eq!(lbfgs.features, 1_281_167.0 * 9600.0 * 12.0);
        let block = BLOCK_BYTES as f64;
        let adam = json!({"layers": ["conv1", "conv5"], "solver": "adam"});
        for (kind, params, want) in [
            ("linear-probe", &adam, 2.0 * block),
            ("mlp-probe", &params, 2.0 * block),
            ("knn-probe", &params, 2.0 * BANK_BYTES as f64 + 2.0 * block),
        ] {
            let small = estimate(kind, params, &net, &[5_000.0, 1_000.0], None, None, DEFAULT).unwrap();
            let large = estimate(kind, params, &net, &imagenet, None, None, DEFAULT).unwrap();
            assert_eq!(large.features, want, "{kind}");
            assert_eq!(
                large.total(),
                estimate(kind, params, &net, &[2e7, 1e6], None, None, DEFAULT).unwrap().total()
            );
            assert!(
                small.features < large.features && large.total() < 2.5 * (1u64 << 30) as f64,
                "{kind}"
            );
        }
    }

    /// On a GPU the activations and the training state are the device's: a stage whose
    /// total exceeds this machine's memory may fit in it there, and the largest instance in
    /// host memory is counted so.
    #[test]
    fn a_gpu_stages_activations_are_not_host_memory() {
        let gib = (1u64 << 30) as f64;
        let m = Memory {
            images: 0.75 * gib,
            model: 0.16 * gib,
            activations: 105.0 * gib,
            features: 0.0,
        };
        assert_eq!(m.on_host(false), m.total());
        assert_eq!(m.on_host(true), 0.91 * gib);
        let probe = Memory {
            images: 0.5 * gib,
            model: 0.1 * gib,
            activations: 0.2 * gib,
            features: 8.0 * gib,
        };
        let both = [Some(m.clone()), None, Some(probe.clone())];
        assert_eq!(largest_on_host(&both, &[false, false, false]), Some((0, &m, m.total())));
        assert_eq!(largest_on_host(&both, &[true, false, true]), Some((2, &probe, 8.6 * gib)));
        assert_eq!(largest_on_host(&[None], &[true]), None);
    }

    #[test]
    fn bytes_read_at_their_precision() {
        assert_eq!(human_bytes(252e9), "235 GiB");
        assert_eq!(human_bytes(0.42 * (1u64 << 30) as f64), "0.42 GiB");
        assert_eq!(human_bytes(5e6), "5 MiB");
        assert_eq!(human_bytes(0.0), "0 MiB");
    }
}
