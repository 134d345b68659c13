//! Model store entries (`model.safetensors` + `model.json`) and reading pooled layer
//! activations from them, shared by `features`, `linear-probe` and `train`'s `init`.
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::artefacts;
use super::{StageError, EXTRACT_BATCH};
use crate::data::{Fit, NpyDtype, NpyError, NpyMatrix, NpyWriter};
use crate::models::{default_pooled_dim, pooled_side, NetConfig, Network};
use crate::pretext::cfn::JigsawHead;
use crate::pretext::contrastive::ProjectionHead;
use crate::pretext::decoder::DecoderHead;
use crate::train::batches::ImageSet;

/// What `model.json` records beside the weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelMeta {
    pub config: NetConfig,
    /// Classifier outputs; 0 for a backbone with another head (Jigsaw).
    pub classes: i64,
    /// The context-free head of a Jigsaw model (its variables are under `jigsaw.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jigsaw: Option<JigsawHead>,
    /// The projection head of a contrastive model (its variables are under `contrastive.*`;
    /// features, probes and `init` read the backbone alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<ProjectionHead>,
    /// The decoder of a colourisation or inpainting model (its variables are under
    /// `decoder.*`; features, probes and `init` read the backbone alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder: Option<DecoderHead>,
    /// Inputs are normalised per image and channel to mean 0 and standard deviation 1, as
    /// the tiles of Jigsaw training were (instead of the fixed dataset normalisation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_image_norm: bool,
    /// Inputs are turned into their CIE Lab lightness (in all three channels), as a
    /// colourisation network saw them in training.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lightness_input: bool,
    /// How the model reads an image whole (features, probes, test scores): resized whole,
    /// or the centre crop of ImageNet's evaluation after training on random resized crops.
    #[serde(default, skip_serializing_if = "is_squash")]
    pub fit: Fit,
}

fn is_squash(f: &Fit) -> bool {
    *f == Fit::Squash
}

impl ModelMeta {
    /// [`ModelMeta::fit`] for images read at side `size` (a probe's `image_size`): a centre
    /// crop keeps its ratio of input side to resized side.
    pub fn fit_at(&self, size: usize) -> Fit {
        match self.fit {
            Fit::CentreCrop { resize } if size != self.config.image_size as usize => Fit::CentreCrop {
                resize: (resize as f64 * size as f64 / self.config.image_size.max(1) as f64).round() as usize,
            },
            fit => fit,
        }
    }

    /// A batch of normalised images `[b, 3, h, w]` as this network takes them.
    pub fn prepare(&self, x: &Tensor) -> Tensor {
        let x = if self.lightness_input {
            crate::pretext::lab::lightness_of_normalised(x)
        } else {
            x.shallow_clone()
        };
        if self.per_image_norm {
            normalize_per_image(&x)
        } else {
            x
        }
    }
}

/// What [`LoadedModel::init_from`] took over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitReport {
    pub variables: usize,
    /// Whether the classifier head came along (same classes) or is fresh.
    pub head: bool,
    /// (the init model's classes, this model's); 0 for a backbone alone.
    pub classes: (i64, i64),
}

impl std::fmt::Display for InitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "initialised {} variables from the init model: ", self.variables)?;
        match (self.head, self.classes) {
            (true, (_, n)) => write!(f, "backbone and classifier head (both {n} classes)"),
            (false, (0, _)) => write!(f, "backbone; fresh classifier head (the init model has none)"),
            (false, (m, n)) if m == n => write!(
                f,
                "backbone; fresh classifier head (the init model's {m} classes are another labelling's)"
            ),
            (false, (m, n)) => write!(f, "backbone; fresh classifier head (the init model has {m} classes, this one {n})"),
        }
    }
}

/// The names of the backbone's variables (without any classifier head) for `config`.
fn backbone_variable_names(config: &NetConfig) -> Result<Vec<String>, StageError> {
    let vs = nn::VarStore::new(Device::Cpu);
    Network::backbone(&vs.root(), config).map_err(|e| StageError::Input(e.to_string()))?;
    Ok(vs.variables().into_keys().collect())
}

/// Every backbone variable `names` of this network (`ours`) must be in the init model
/// (`theirs`) with the same shape.
fn check_backbone(names: &[String], theirs: &HashMap<String, Tensor>, ours: &HashMap<String, Tensor>) -> Result<(), StageError> {
    for name in names {
        let Some(d) = ours.get(name) else { continue };
        match theirs.get(name) {
            Some(t) if t.size() == d.size() => {}
            Some(t) => {
                return Err(StageError::Input(format!(
                    "the init model's `{name}` has shape {:?}, this network's {:?}: the backbones differ",
                    t.size(),
                    d.size()
                )))
            }
            None => {
                return Err(StageError::Input(format!(
                    "the init model lacks the backbone variable `{name}`: the backbones differ"
                )))
            }
        }
    }
    Ok(())
}

/// Copies into `vs` every variable of the model stored in `dir` that has the same name
/// and shape (a Jigsaw network's backbone and those of its fully connected layers that
/// match, a classifier's backbone and head); every backbone variable of `config` must be
/// among them. Returns (copied, variables of `vs`). A curriculum's next step starts so:
/// Jigsaw with more permutations from a Jigsaw model with fewer.
pub fn init_matching(vs: &nn::VarStore, config: &NetConfig, dir: &Path) -> Result<(usize, usize), StageError> {
    let path = dir.join("model.safetensors");
    let theirs: HashMap<String, Tensor> = Tensor::read_safetensors(&path)
        .map_err(|e| StageError::Failed(format!("{}: {e}", path.display())))?
        .into_iter()
        .collect();
    let ours = vs.variables();
    check_backbone(&backbone_variable_names(config)?, &theirs, &ours)?;
    let total = ours.len();
    let mut copied = 0;
    tch::no_grad(|| -> Result<(), StageError> {
        for (name, mut d) in ours {
            if let Some(t) = theirs.get(&name).filter(|t| t.size() == d.size()) {
                d.f_copy_(&t.to_device(d.device()))?;
                copied += 1;
            }
        }
        Ok(())
    })?;
    Ok((copied, total))
}

pub struct LoadedModel {
    pub vs: nn::VarStore,
    pub net: Network,
    pub meta: ModelMeta,
}

impl LoadedModel {
    /// Builds the network of `meta` with fresh variables on `device` (weights seeded by
    /// the caller through `tch::manual_seed`); a backbone alone when `classes` is 0.
    pub fn new(meta: ModelMeta, device: Device) -> Result<LoadedModel, StageError> {
        let vs = nn::VarStore::new(device);
        let net = if meta.classes == 0 {
            Network::backbone(&vs.root(), &meta.config)
        } else {
            Network::classifier(&vs.root(), &meta.config, meta.classes)
        }
        .map_err(|e| StageError::Input(e.to_string()))?;
        Ok(LoadedModel { vs, net, meta })
    }

    /// Loads a model entry: its network, without any pretext head (a Jigsaw model's
    /// `jigsaw.*` variables, a contrastive model's `contrastive.*` and a dense task's
    /// `decoder.*` stay in the file).
    pub fn load(dir: &Path, device: Device) -> Result<LoadedModel, StageError> {
        let meta: ModelMeta = artefacts::read_json(&dir.join("model.json"))?;
        let mut m = LoadedModel::new(meta, device)?;
        let path = dir.join("model.safetensors");
        let missing =
            m.vs.load_partial(&path)
                .map_err(|e| StageError::Failed(format!("{}: {e}", path.display())))?;
        if !missing.is_empty() {
            return Err(StageError::Failed(format!(
                "{}: {} variables missing, e.g. `{}`",
                path.display(),
                missing.len(),
                missing[0]
            )));
        }
        Ok(m)
    }

    pub fn save(&self, dir: &Path) -> Result<(), StageError> {
        self.vs.save(dir.join("model.safetensors")).map_err(StageError::Torch)?;
        artefacts::write_json(&dir.join("model.json"), &serde_json::to_value(&self.meta).unwrap_or_default())
    }

    /// Copies the backbone of `other` into this model, every variable of it: a backbone
    /// variable `other` lacks (or has in another shape) is an error, never a silent partial
    /// load. The classifier head is taken over only when both have the same classes.
    pub fn init_from(&mut self, other: &LoadedModel) -> Result<InitReport, StageError> {
        self.take_over(other, true)
    }

    /// [`LoadedModel::init_from`] without the classifier head, which stays fresh whatever
    /// the classes (fine-tuning: conv layers from the model, fully connected layers new).
    pub fn init_backbone_from(&mut self, other: &LoadedModel) -> Result<InitReport, StageError> {
        self.take_over(other, false)
    }

    fn take_over(&mut self, other: &LoadedModel, head_if_same_classes: bool) -> Result<InitReport, StageError> {
        let names = backbone_variable_names(&self.meta.config)?;
        let src = other.vs.variables();
        let dst = self.vs.variables();
        check_backbone(&names, &src, &dst)?;
        let head: Vec<&String> = dst.keys().filter(|n| !names.contains(*n)).collect();
        let take_head = head_if_same_classes
            && self.meta.classes > 0
            && self.meta.classes == other.meta.classes
            && head.iter().all(|n| src.get(*n).map(|s| s.size()) == Some(dst[*n].size()));
        let mut copied = 0;
        tch::no_grad(|| -> Result<(), StageError> {
            for (name, mut d) in dst {
                if names.contains(&name) || take_head {
                    if let Some(s) = src.get(&name) {
                        d.f_copy_(&s.to_device(d.device()))?;
                        copied += 1;
                    }
                }
            }
            Ok(())
        })?;
        Ok(InitReport {
            variables: copied,
            head: take_head,
            classes: (other.meta.classes, self.meta.classes),
        })
    }

    pub fn image_size(&self) -> usize {
        self.meta.config.image_size as usize
    }

    /// The activations of `layers` for every image of `set`, average-pooled (see
    /// [`pool`]) and flattened: one `[n, d]` CPU float tensor per layer.
    pub fn extract(
        &self,
        set: &ImageSet,
        layers: &[&str],
        pooled_dim: Option<usize>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Vec<Tensor>, StageError> {
        let mut parts: Vec<Vec<Tensor>> = layers.iter().map(|_| Vec::new()).collect();
        self.for_each_pooled(set, layers, pooled_dim, progress, &mut |layer, t| {
            parts[layer].push(t);
            Ok(())
        })?;
        Ok(parts.into_iter().map(|p| Tensor::cat(&p, 0)).collect())
    }

    /// As [`LoadedModel::extract`], but each layer's features are written batch by batch to
    /// `<dir>/<prefix>-<layer>.npy` and come back as tensors over those files (see
    /// [`NpyMatrix::file_tensor`]): the same values, held by the page cache instead of
    /// the process, so a split's features may exceed memory. A file that is complete
    /// (renamed into place after its last row) is taken as it is: the folder is keyed by
    /// the stage instance (its checkpoint folder), so a probe stopped after extracting
    /// resumes from its features. `dtype` `F16` stores them as float16 (half the disk and
    /// page cache; the tensors are float16 then, and a value beyond float16's range fails
    /// the stage, naming the remedy).
    pub fn extract_to_files(
        &self,
        set: &ImageSet,
        layers: &[&str],
        pooled_dim: Option<usize>,
        (dir, prefix): (&Path, &str),
        dtype: NpyDtype,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Vec<Tensor>, StageError> {
        let path = |layer: &str| dir.join(format!("{prefix}-{layer}.npy"));
        let done: Option<Vec<Tensor>> = layers
            .iter()
            .map(|l| {
                NpyMatrix::open(&path(l))
                    .ok()
                    .filter(|m| m.rows() == set.n && m.dtype() == dtype)
                    .and_then(|m| m.file_tensor().ok())
            })
            .collect();
        if let Some(done) = done {
            progress(set.n as u64, set.n as u64);
            return Ok(done);
        }
        std::fs::create_dir_all(dir).map_err(StageError::io(dir))?;
        let partial = |layer: &str| dir.join(format!("{prefix}-{layer}.npy.partial"));
        let failed = |e: NpyError| StageError::Failed(e.to_string());
        let mut writers: Vec<Option<NpyWriter>> = layers.iter().map(|_| None).collect();
        self.for_each_pooled(set, layers, pooled_dim, progress, &mut |i, t| {
            let rows = Vec::<f32>::try_from(&t.flatten(0, -1))?;
            // Only float16 has a range a float32 value can exceed: float32 rows are not scanned.
            let beyond = |v: &&f32| v.is_finite() && v.abs() > dtype.largest();
            if let Some(v) = (dtype == NpyDtype::F16).then(|| rows.iter().find(beyond)).flatten() {
                return Err(StageError::Failed(format!(
                    "{} features: value {v} is beyond float16's range (set dtype = \"float32\")",
                    layers[i]
                )));
            }
            let w = match &mut writers[i] {
                Some(w) => w,
                slot => {
                    let cols = t.size().get(1).copied().unwrap_or(0) as usize;
                    slot.insert(NpyWriter::create(&partial(layers[i]), set.n, cols, dtype).map_err(failed)?)
                }
            };
            w.write_rows(&rows).map_err(failed)
        })?;
        let mut out = Vec::with_capacity(layers.len());
        for (layer, w) in layers.iter().zip(writers) {
            let Some(w) = w else {
                return Err(StageError::Input(format!("no images to read {layer} features of")));
            };
            w.finish().map_err(failed)?;
            std::fs::rename(partial(layer), path(layer)).map_err(StageError::io(&path(layer)))?;
            out.push(NpyMatrix::open(&path(layer)).and_then(|m| m.file_tensor()).map_err(failed)?);
        }
        Ok(out)
    }

    /// Runs the network over `set` in batches and gives `sink` each batch's pooled,
    /// flattened features of each of `layers` (by its index), as CPU float tensors, in
    /// the order of the images.
    fn for_each_pooled(
        &self,
        set: &ImageSet,
        layers: &[&str],
        pooled_dim: Option<usize>,
        progress: &(dyn Fn(u64, u64) + Sync),
        sink: &mut dyn FnMut(usize, Tensor) -> Result<(), StageError>,
    ) -> Result<(), StageError> {
        for l in layers {
            self.net.resolve_layer(l).map_err(|e| StageError::Input(e.to_string()))?;
        }
        // The size the images are read at (the model's own, or a probe's `image_size`).
        let target = pooled_dim.unwrap_or_else(|| default_pooled_dim(set.size));
        let device = self.vs.device();
        tch::no_grad(|| {
            set.for_each_batch(EXTRACT_BATCH, |chunk, batch| -> Result<(), StageError> {
                let x = self.meta.prepare(&batch.to_device(device));
                let taps = self.net.taps(&x, layers, false).map_err(|e| StageError::Input(e.to_string()))?;
                for (i, t) in taps.iter().enumerate() {
                    sink(i, pool(t, target).to_device(Device::Cpu))?;
                }
                progress((chunk[0] + chunk.len()) as u64, set.n as u64);
                Ok(())
            })
        })
    }
}

/// Each image and channel of `[b, c, h, w]` to mean 0 and standard deviation 1 (a
/// constant channel becomes zeros).
pub fn normalize_per_image(x: &Tensor) -> Tensor {
    let mean = x.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
    let std = x.std_dim([2i64, 3].as_slice(), false, true).clamp_min(1e-6);
    (x - mean) / std
}

/// Average-pools a `[b, c, h, w]` activation to `[b, c * s * s]` with the side `s` that
/// brings `c * s * s` nearest to `target` (at most `h`); `[b, d]` passes through.
pub fn pool(t: &Tensor, target: usize) -> Tensor {
    let size = t.size();
    if size.len() != 4 {
        return t.flatten(1, -1).to_kind(Kind::Float);
    }
    let s = pooled_side(size[1], size[2].min(size[3]), target);
    t.adaptive_avg_pool2d([s, s]).flatten(1, -1).to_kind(Kind::Float) // [b, c * s * s]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Features written to files are the features in memory, bit for bit; a complete file
    /// is taken as it is (a stopped probe resumes from it: here the second reading finds
    /// files of other values and returns them without running the network), an unfinished
    /// one (`.partial`) is not.
    #[test]
    fn features_to_files_are_the_features_in_memory_and_complete_files_are_kept() {
        tch::manual_seed(0);
        let meta = ModelMeta {
            config: NetConfig {
                width: 0.25,
                ..NetConfig::new(crate::models::Arch::AlexnetSmall)
            },
            classes: 0,
            jigsaw: None,
            projection: None,
            decoder: None,
            per_image_norm: false,
            lightness_input: false,
            fit: Default::default(),
        };
        let model = LoadedModel::new(meta, Device::Cpu).unwrap();
        let n = 300; // more than one extraction batch
        let pixels: Vec<u8> = (0..n * 3 * 32 * 32).map(|i| (i * 7 % 251) as u8).collect();
        let set = ImageSet::from_pixels(pixels, n, 32);
        let layers = ["conv1", "conv5"];
        let want = model.extract(&set, &layers, None, &|_, _| {}).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let got = model
            .extract_to_files(&set, &layers, None, (dir.path(), "train"), NpyDtype::F32, &|_, _| {})
            .unwrap();
        for (w, g) in want.iter().zip(&got) {
            assert!(w.equal(g));
        }
        // Files of other values (as if another run had written them): taken as they are.
        let conv1 = dir.path().join("train-conv1.npy");
        let mut other = NpyWriter::create(&conv1, n, want[0].size()[1] as usize, NpyDtype::F32).unwrap();
        other.write_rows(&vec![0.5f32; n * want[0].size()[1] as usize]).unwrap();
        other.finish().unwrap();
        let again = model
            .extract_to_files(&set, &layers, None, (dir.path(), "train"), NpyDtype::F32, &|_, _| {})
            .unwrap();
        assert_eq!(again[0].double_value(&[3, 2]), 0.5);
        assert!(again[1].equal(&want[1]));
        // Without one layer's file every layer is read again.
        std::fs::remove_file(dir.path().join("train-conv5.npy")).unwrap();
        let fresh = model
            .extract_to_files(&set, &layers, None, (dir.path(), "train"), NpyDtype::F32, &|_, _| {})
            .unwrap();
        assert!(fresh[0].equal(&want[0]) && fresh[1].equal(&want[1]));
        assert!(!dir.path().join("train-conv1.npy.partial").exists());
        // Stored as float16: the features rounded to float16, in files of that type (the
        // float32 files there are not taken for them).
        let half = model
            .extract_to_files(&set, &layers, None, (dir.path(), "train"), NpyDtype::F16, &|_, _| {})
            .unwrap();
        for (w, h) in want.iter().zip(&half) {
            assert_eq!(h.kind(), Kind::Half);
            assert!(h.equal(&w.to_kind(Kind::Half)));
        }
        assert_eq!(NpyMatrix::open(&dir.path().join("train-conv5.npy")).unwrap().dtype(), NpyDtype::F16);
        // A value float16 cannot hold fails the stage, naming the remedy.
        tch::no_grad(|| {
            for (name, mut v) in model.vs.variables() {
                if name.ends_with("weight") {
                    let _ = v.g_mul_scalar_(1000.0);
                }
            }
        });
        let err = model
            .extract_to_files(&set, &layers, None, (dir.path(), "big"), NpyDtype::F16, &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("beyond float16's range (set dtype = \"float32\")"), "{err}");
    }

    #[test]
    fn pooling_sizes() {
        let t = Tensor::ones([2, 96, 55, 55], (Kind::Float, Device::Cpu));
        assert_eq!(pool(&t, 9216).size(), [2, 96 * 10 * 10]);
        let t = Tensor::ones([2, 256, 13, 13], (Kind::Float, Device::Cpu));
        assert_eq!(pool(&t, 9216).size(), [2, 256 * 6 * 6]);
        let t = Tensor::ones([3, 128, 4, 4], (Kind::Float, Device::Cpu));
        assert_eq!(pool(&t, 2048).size(), [3, 128 * 4 * 4]);
        let t = Tensor::ones([3, 10], (Kind::Float, Device::Cpu));
        assert_eq!(pool(&t, 2048).size(), [3, 10]);
    }

    #[test]
    fn per_image_normalisation() {
        let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu)) * 5.0 + 3.0;
        let y = normalize_per_image(&x);
        let m = y.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
        let s = y.std_dim([2i64, 3].as_slice(), false, false);
        assert!(m.abs().max().double_value(&[]) < 1e-5);
        assert!((s - 1.0).abs().max().double_value(&[]) < 1e-4);
        let flat = normalize_per_image(&Tensor::ones([1, 3, 4, 4], (Kind::Float, Device::Cpu)));
        assert_eq!(flat.abs().sum(Kind::Float).double_value(&[]), 0.0);
    }

    /// A colourisation model takes every input as its lightness, as in training; a model
    /// without the flag takes it as it is; `model.json` of older models reads as without.
    #[test]
    fn a_lightness_model_sees_l_in_all_three_channels() {
        let mut meta = model(0.25, 0).meta;
        let x = Tensor::randn([2, 3, 4, 4], (Kind::Float, Device::Cpu)).clamp(-2.0, 2.0);
        assert!(meta.prepare(&x).equal(&x));
        meta.lightness_input = true;
        let l = meta.prepare(&x);
        assert!(l.equal(&crate::pretext::lab::lightness_of_normalised(&x)));
        assert!(l.select(1, 0).equal(&l.select(1, 2)));
        assert!(!l.equal(&x));
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(json["lightness_input"], true);
        meta.lightness_input = false;
        let older: ModelMeta = serde_json::from_value(serde_json::to_value(&meta).unwrap()).unwrap();
        assert!(!older.lightness_input && serde_json::to_value(&meta).unwrap().get("lightness_input").is_none());
    }

    fn model(width: f64, classes: i64) -> LoadedModel {
        let config = NetConfig {
            arch: crate::models::Arch::AlexnetSmall,
            width,
            batch_norm: true,
            in_channels: 3,
            image_size: 32,
        };
        let meta = ModelMeta {
            config,
            classes,
            jigsaw: None,
            projection: None,
            decoder: None,
            per_image_norm: false,
            lightness_input: false,
            fit: Default::default(),
        };
        LoadedModel::new(meta, Device::Cpu).unwrap()
    }

    fn equal(a: &LoadedModel, b: &LoadedModel, name: &str) -> bool {
        a.vs.variables()[name].equal(&b.vs.variables()[name])
    }

    #[test]
    fn init_takes_the_whole_backbone_and_the_head_only_with_the_same_classes() {
        tch::manual_seed(1);
        let from = model(0.25, 10);
        tch::manual_seed(2);
        let mut same = model(0.25, 10);
        let report = same.init_from(&from).unwrap();
        assert!(report.head);
        assert_eq!(report.variables, from.vs.variables().len());
        assert!(equal(&same, &from, "features.0.weight") && equal(&same, &from, "classifier.6.weight"));

        tch::manual_seed(2);
        let mut other = model(0.25, 8);
        let report = other.init_from(&from).unwrap();
        assert!(!report.head, "{report}");
        assert!(report
            .to_string()
            .contains("fresh classifier head (the init model has 10 classes, this one 8)"));
        assert!(equal(&other, &from, "features.0.weight"));
        // fc6 has the same shape in both, but belongs to the head: not taken over.
        assert!(!equal(&other, &from, "classifier.1.weight"));

        let mut wider = model(0.5, 10);
        let e = wider.init_from(&from).unwrap_err().to_string();
        assert!(e.contains("the backbones differ"), "{e}");
    }
}
