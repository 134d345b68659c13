//! `pretext`: trains a network on a self-supervised task (Jigsaw, Jigsaw++ or rotation)
//! over the images of a dataset split. The entry is a model stage: `features` reads its
//! backbone's layers on whole images, `train` may start from it, `linear-probe` scores it.
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model_io::{LoadedModel, ModelMeta};
use super::network_params::NetworkParams;
use super::solver::{write_history, EpochReporter, SolverParams};
use super::{MetricRow, Outcome, RunCtx, StageError};
use crate::config::{did_you_mean, ConfigError, Node};
use crate::data::open_split;
use crate::models::{Arch, NetConfig};
use crate::pretext::cfn::{ContextFree, JigsawHead};
use crate::pretext::jigsaw::{Jigsaw, JigsawConfig};
use crate::pretext::permutations::PermutationSet;
use crate::pretext::rotation::Rotation;
use crate::store::artefacts;
use crate::train::batches::{Augment, ImageSet};
use crate::train::trainer::train;

pub const TASKS: &[&str] = &["jigsaw", "jigsaw++", "rotation"];

/// Keys that only Jigsaw tasks take.
const JIGSAW_KEYS: &[&str] = &[
    "crop",
    "tile_size",
    "channel_shift",
    "permutations",
    "min_hamming",
    "permutations_file",
    "grayscale",
    "max_replaced",
];
/// Keys that only rotation takes.
const ROTATION_KEYS: &[&str] = &["crop_padding", "flip"];

/// The keys of [`PretextParams`] besides the flattened solver options.
pub(super) const OWN_KEYS: &[&str] = &[
    "task",
    "arch",
    "width",
    "batch_norm",
    "data",
    "image_size",
    "crop",
    "tile_size",
    "channel_shift",
    "permutations",
    "min_hamming",
    "permutations_file",
    "grayscale",
    "max_replaced",
    "crop_padding",
    "flip",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PretextParams {
    /// `jigsaw`, `jigsaw++` or `rotation`.
    pub task: String,
    pub arch: String,
    #[serde(default = "one")]
    pub width: f64,
    #[serde(default = "yes")]
    pub batch_norm: bool,
    /// `dataset:split` of the (unlabeled) images.
    pub data: String,
    /// Side images are resized to. Jigsaw: 256 (64 for `-small` archs), the grid is cut
    /// from a random crop of it; rotation: the network's input (224, or 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Jigsaw: side of the random crop holding the 3 x 3 grid (225, or 57).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<usize>,
    /// Jigsaw: side of each tile, a random sub-crop of its cell (64, or 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile_size: Option<usize>,
    /// Jigsaw: each colour channel is offset by up to this many pixels (tile_size / 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_shift: Option<usize>,
    /// Jigsaw: number of permutations (1000 for jigsaw, 701 for jigsaw++).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permutations: Option<usize>,
    /// Jigsaw: minimum Hamming distance between permutations (3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_hamming: Option<usize>,
    /// Jigsaw: a permutation file in the official layout (e.g. the original
    /// `permutations_701.bin`), relative to the experiment file, instead of generating one.
    #[serde(default, skip_serializing)]
    pub permutations_file: Option<String>,
    /// The file's SHA-256 (its contents are part of the key, its path is not).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub permutations_sha256: Option<String>,
    #[serde(skip)]
    pub permutations_path: Option<PathBuf>,
    /// Jigsaw: probability of a grayscale sample (0.7, as the paper says; the original
    /// code used 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grayscale: Option<f64>,
    /// Jigsaw++: at most this many tiles replaced by another image's (2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replaced: Option<usize>,
    /// Rotation: random translation in pixels (4 for `-small` archs, else 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_padding: Option<usize>,
    /// Rotation: random horizontal flips (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip: Option<bool>,
    #[serde(flatten)]
    pub solver: SolverParams,
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

impl PretextParams {
    pub fn is_jigsaw(&self) -> bool {
        self.task.starts_with("jigsaw")
    }

    pub(super) fn validate(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| at(key).error(&format!("{prefix}.{key}"), msg);
        if !TASKS.contains(&self.task.as_str()) {
            let hint = did_you_mean(&self.task, TASKS.iter().copied()).or_else(|| Some(format!("one of {}", TASKS.join(", "))));
            return Err(at("task").error_hint(&format!("{prefix}.task"), format!("unknown pretext task `{}`", self.task), hint));
        }
        let (other, what) = if self.is_jigsaw() {
            (ROTATION_KEYS, "rotation")
        } else {
            (JIGSAW_KEYS, "jigsaw tasks")
        };
        for key in other {
            if table.lookup(key).is_some() {
                return Err(err(key, format!("`{key}` applies to {what}, not to task = \"{}\"", self.task)));
            }
        }
        if self.task == "jigsaw" && table.lookup("max_replaced").is_some() {
            return Err(err(
                "max_replaced",
                "`max_replaced` applies to task = \"jigsaw++\" (plain jigsaw replaces no tiles)".into(),
            ));
        }
        self.solver.validate(table, prefix)?;
        let arch: Arch = self.arch.parse().map_err(|_| {
            let names: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
            let hint = did_you_mean(&self.arch, names.iter().copied()).or_else(|| Some(format!("one of {}", names.join(", "))));
            at("arch").error_hint(&format!("{prefix}.arch"), format!("unknown architecture `{}`", self.arch), hint)
        })?;
        if self.is_jigsaw() {
            self.fill_jigsaw(arch, table, prefix)?;
        } else {
            let size = self.image_size.unwrap_or(crate::models::default_image_size(arch) as usize);
            self.image_size = Some(size);
            let pad = self.crop_padding.unwrap_or(if arch.is_small() { 4 } else { 0 });
            if pad > size / 2 {
                return Err(err("crop_padding", format!("expected at most half the image size, found {pad}")));
            }
            self.crop_padding = Some(pad);
            self.flip = Some(self.flip.unwrap_or(true));
            self.network(size).validate(table, prefix)?;
        }
        Ok(self)
    }

    fn fill_jigsaw(&mut self, arch: Arch, table: &Node, prefix: &str) -> Result<(), ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| at(key).error(&format!("{prefix}.{key}"), msg);
        // The paper's geometry (256 -> 225 crop -> 75 px cells -> 64 px tiles), and the
        // same proportions at 64 px for the small archs; both scale with `image_size`.
        let (size0, cell0, tile0) = if arch.is_small() { (64, 19, 16) } else { (256, 75, 64) };
        let size = self.image_size.unwrap_or(size0);
        if !(12..=4096).contains(&size) {
            return Err(err("image_size", format!("expected 12..=4096, found {size}")));
        }
        let scale = |v: usize| ((v * size) as f64 / size0 as f64).round().max(1.0) as usize;
        let crop = self.crop.unwrap_or(3 * scale(cell0));
        if crop < 3 || crop > size {
            return Err(err("crop", format!("expected 3..={size} (the image side), found {crop}")));
        }
        let tile = self.tile_size.unwrap_or(scale(tile0).min(crop / 3));
        if tile == 0 || tile > crop / 3 {
            return Err(err(
                "tile_size",
                format!("expected 1..={} (the cell side, crop / 3), found {tile}", crop / 3),
            ));
        }
        self.image_size = Some(size);
        self.crop = Some(crop);
        self.tile_size = Some(tile);
        self.channel_shift = Some(self.channel_shift.unwrap_or(tile / 32));
        if self.channel_shift > Some(tile) {
            return Err(err("channel_shift", format!("expected at most tile_size ({tile})")));
        }
        let g = self.grayscale.unwrap_or(0.7);
        if !(0.0..=1.0).contains(&g) {
            return Err(err("grayscale", format!("expected a probability in [0, 1], found {g}")));
        }
        self.grayscale = Some(g);
        if self.task == "jigsaw++" {
            let m = self.max_replaced.unwrap_or(2);
            if m > 8 {
                return Err(err("max_replaced", format!("expected 0..=8 tiles, found {m}")));
            }
            self.max_replaced = Some(m);
        }
        let h = self.min_hamming.unwrap_or(3);
        if !(1..=9).contains(&h) {
            return Err(err("min_hamming", format!("expected 1..=9, found {h}")));
        }
        if let Some(file) = &self.permutations_file {
            if table.lookup("permutations").is_some() || table.lookup("min_hamming").is_some() {
                return Err(err(
                    "permutations_file",
                    "give either `permutations_file` or `permutations`/`min_hamming`, not both".into(),
                ));
            }
            let node = at("permutations_file");
            let base = node.file.path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
            let path = base.join(file);
            let set = PermutationSet::read_bin(&path).map_err(|e| err("permutations_file", e.to_string()))?;
            let bytes = std::fs::read(&path).map_err(|e| err("permutations_file", format!("{}: {e}", path.display())))?;
            self.permutations = Some(set.len());
            self.min_hamming = None;
            self.permutations_sha256 = Some(hex::encode(Sha256::digest(&bytes)));
            self.permutations_path = Some(path);
        } else {
            let n = self.permutations.unwrap_or(if self.task == "jigsaw" { 1000 } else { 701 });
            if !(2..=10_000).contains(&n) {
                return Err(err("permutations", format!("expected 2..=10000, found {n}")));
            }
            self.permutations = Some(n);
            self.min_hamming = Some(h);
        }
        // The backbone runs on tiles: check the architecture against the tile side.
        if (tile as i64) < arch.min_image_size() {
            return Err(err(
                "tile_size",
                format!(
                    "{arch} needs inputs of at least {} px, but tiles are {tile} px (raise image_size or tile_size)",
                    arch.min_image_size()
                ),
            ));
        }
        self.network(tile.max(8)).validate(table, prefix)
    }

    fn network(&self, image_size: usize) -> NetworkParams {
        NetworkParams {
            arch: self.arch.clone(),
            width: self.width,
            batch_norm: self.batch_norm,
            image_size: Some(image_size),
        }
    }

    fn jigsaw_config(&self) -> JigsawConfig {
        JigsawConfig {
            crop: self.crop.unwrap_or(57),
            tile: self.tile_size.unwrap_or(16),
            channel_shift: self.channel_shift.unwrap_or(0),
            grayscale: self.grayscale.unwrap_or(0.7),
            max_replaced: self.max_replaced.unwrap_or(0),
            normalize: true,
        }
    }

    fn permutation_set(&self, seed: u64) -> Result<PermutationSet, StageError> {
        if let Some(path) = &self.permutations_path {
            let bytes = std::fs::read(path).map_err(StageError::io(path))?;
            if Some(hex::encode(Sha256::digest(&bytes))) != self.permutations_sha256 {
                return Err(StageError::Input(format!(
                    "{} changed since the experiment was planned; run again",
                    path.display()
                )));
            }
            return PermutationSet::read_bin(path).map_err(|e| StageError::Input(e.to_string()));
        }
        let (n, h) = (self.permutations.unwrap_or(701), self.min_hamming.unwrap_or(3));
        let set = PermutationSet::generate(n, h, seed).map_err(|e| StageError::Input(format!("permutations: {e}")))?;
        Ok(set)
    }

    pub fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let (spec, split) = ctx.data_input("data")?;
        let source = open_split(spec, split)?;
        let size = self.image_size.unwrap_or(32);
        let set = Arc::new(ImageSet::load(source.as_ref(), size, &|_, _| {})?);
        let images = set.n;
        tch::manual_seed((ctx.seed & i64::MAX as u64) as i64);
        let cfg = self.solver.config(ctx.seed);
        let mut reporter = EpochReporter::new(ctx, self.solver.epochs);
        let (history, classes) = if self.is_jigsaw() {
            let perms = self.permutation_set(ctx.seed)?;
            perms
                .write_bin(&ctx.path("permutations.bin"))
                .map_err(|e| StageError::Failed(e.to_string()))?;
            let tile_cfg = self.network(self.tile_size.unwrap_or(16)).config();
            let head = JigsawHead::for_config(&tile_cfg, perms.len());
            let mut vs = tch::nn::VarStore::new(ctx.device);
            let net = ContextFree::new(&vs.root(), &tile_cfg, &head).map_err(|e| StageError::Input(e.to_string()))?;
            let maker = Jigsaw::new(set, &perms, self.jigsaw_config()).map_err(StageError::Input)?;
            reporter.accuracy_name = "permutation accuracy";
            reporter.suffix = format!(" (chance {:.4})", 1.0 / perms.len() as f64);
            let forward = |x: &tch::Tensor, train: bool| net.forward(x, train);
            let history = train(&mut vs, &forward, Arc::new(maker), &cfg, ctx.checkpoint_dir, &reporter)
                .map_err(|e| StageError::Failed(e.to_string()))?;
            vs.save(ctx.path("model.safetensors")).map_err(StageError::Torch)?;
            // Features are read on whole images at the pretext's image side.
            let meta = ModelMeta {
                config: NetConfig {
                    image_size: size as i64,
                    ..tile_cfg
                },
                classes: 0,
                jigsaw: Some(head),
                per_image_norm: true,
            };
            artefacts::write_json(&ctx.path("model.json"), &serde_json::to_value(&meta).unwrap_or_default())?;
            (history, perms.len())
        } else {
            let mut model = LoadedModel::new(
                ModelMeta {
                    config: self.network(size).config(),
                    classes: 4,
                    jigsaw: None,
                    per_image_norm: false,
                },
                ctx.device,
            )?;
            let maker = Rotation {
                set,
                augment: Augment {
                    crop_padding: self.crop_padding.unwrap_or(0),
                    flip: self.flip.unwrap_or(true),
                },
            };
            reporter.accuracy_name = "rotation accuracy";
            reporter.suffix = " (chance 0.25)".into();
            let net = &model.net;
            let forward = |x: &tch::Tensor, train: bool| net.forward(x, train);
            let history = train(&mut model.vs, &forward, Arc::new(maker), &cfg, ctx.checkpoint_dir, &reporter)
                .map_err(|e| StageError::Failed(e.to_string()))?;
            model.save(ctx.workdir)?;
            (history, 4)
        };
        write_history(ctx, &history)?;
        let last = history.last().map(|h| (h.loss, h.accuracy)).unwrap_or((f64::NAN, 0.0));
        let summary = serde_json::json!({
            "task": self.task,
            "classes": classes,
            "chance": 1.0 / classes as f64,
            "final_loss": last.0,
            "final_accuracy": last.1,
            "epochs": history.len(),
        });
        artefacts::write_json(&ctx.path("pretext.json"), &summary)?;
        Ok(Outcome {
            metrics: vec![MetricRow {
                layer: String::new(),
                metric: "pretext_accuracy".into(),
                value: last.1,
            }],
            summary: format!(
                "{} on {} images, {} epochs: accuracy {:.3} (chance {:.4}), loss {:.4}",
                self.task,
                images,
                history.len(),
                last.1,
                1.0 / classes as f64,
                last.0
            ),
        })
    }
}
