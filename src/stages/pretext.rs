//! `pretext`: trains a network on a self-supervised task (Jigsaw, Jigsaw++ or rotation)
//! over the images of a dataset split. The entry is a model stage: `features` reads its
//! backbone's layers on whole images, `train` may start from it, `linear-probe` scores it.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::network_params::NetworkParams;
use super::params::{data_ref, MODEL};
use super::solver::SolverParams;
use super::{InputSpec, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
use crate::config::struct_fields;
use crate::config::{ConfigError, Node};
use crate::models::Arch;
use crate::pretext::permutations::PermutationSet;
#[cfg(feature = "torch")]
use {
    super::artefacts,
    super::model_io::{init_matching, LoadedModel, ModelMeta},
    super::solver::{write_history, EpochReporter},
    super::{MetricRow, Outcome, RunCtx, StageError},
    crate::data::open_split,
    crate::models::NetConfig,
    crate::pretext::cfn::{ContextFree, JigsawHead},
    crate::pretext::jigsaw::{Jigsaw, JigsawConfig},
    crate::pretext::rotation::Rotation,
    crate::train::batches::{Augment, ImageSet},
    crate::train::trainer::{evaluate, train},
    std::sync::Arc,
};

crate::config::choice! {
    /// A pretext task by its name in experiment files.
    pub enum PretextTask("pretext task") {
        Jigsaw = "jigsaw",
        JigsawPlusPlus = "jigsaw++",
        Rotation = "rotation",
    }
}

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

/// The keys of a pretext table besides the flattened solver options.
pub(crate) const OWN_KEYS: &[&str] = &[
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
    "init",
    "held_out",
];

/// A pretext table as the file writes it; [`PretextFile::validate`] resolves every
/// default into [`PretextParams`].
#[derive(Clone, Debug, Deserialize)]
struct PretextFile {
    task: PretextTask,
    arch: Arch,
    #[serde(default = "one")]
    width: f64,
    #[serde(default = "yes")]
    batch_norm: bool,
    data: String,
    image_size: Option<usize>,
    crop: Option<usize>,
    tile_size: Option<usize>,
    channel_shift: Option<usize>,
    permutations: Option<usize>,
    min_hamming: Option<usize>,
    permutations_file: Option<String>,
    grayscale: Option<f64>,
    max_replaced: Option<usize>,
    crop_padding: Option<usize>,
    flip: Option<bool>,
    init: Option<String>,
    held_out: Option<f64>,
    #[serde(flatten)]
    solver: SolverParams,
}

/// Share of the split's images set aside to measure the pretext task on.
const HELD_OUT: f64 = 0.1;

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// A validated pretext stage: every value resolved, nothing left to default at run time.
#[derive(Clone, Debug)]
pub struct PretextParams {
    pub arch: Arch,
    pub width: f64,
    pub batch_norm: bool,
    /// `dataset:split` of the (unlabeled) images.
    pub data: String,
    /// Side images are resized to. Jigsaw: 256 (64 for `-small` archs), the grid is cut
    /// from a random crop of it; rotation: the network's input (224, or 32).
    pub image_size: usize,
    pub task: Task,
    pub solver: SolverParams,
    /// A model stage whose matching weights this network starts from (a curriculum:
    /// Jigsaw++ with 100 permutations from one with 10).
    pub init: Option<String>,
    /// Share of the images (drawn by the seed) the network never trains on; the task's
    /// accuracy on them is `pretext_heldout_accuracy` (0.1; 0: none, and no such metric).
    pub held_out: f64,
}

/// The task and its own options.
#[derive(Clone, Debug)]
pub enum Task {
    Jigsaw(JigsawSetup),
    Rotation(RotationSetup),
}

#[derive(Clone, Debug)]
pub struct JigsawSetup {
    /// Jigsaw++: up to `max_replaced` tiles come from another image.
    pub plus_plus: bool,
    /// Side of the random crop holding the 3 x 3 grid (225, or 57).
    pub crop: usize,
    /// Side of each tile, a random sub-crop of its cell (64, or 16).
    pub tile_size: usize,
    /// Each colour channel is offset by up to this many pixels (tile_size / 32).
    pub channel_shift: usize,
    /// Probability of a grayscale sample (0.7, as the paper says; its code used 0.5).
    pub grayscale: f64,
    /// Jigsaw++: at most this many tiles replaced (2); 0 for plain Jigsaw.
    pub max_replaced: usize,
    pub permutations: Permutations,
}

/// Where the permutation set comes from.
#[derive(Clone, Debug)]
pub enum Permutations {
    /// Generated from the seed: `count` permutations at least `min_hamming` apart
    /// (1000 for jigsaw, 701 for jigsaw++; 3).
    Generated { count: usize, min_hamming: usize },
    /// A file in the official layout (e.g. the original `permutations_701.bin`); its
    /// contents enter the key, its path does not.
    File { path: PathBuf, sha256: String, count: usize },
}

#[derive(Clone, Debug)]
pub struct RotationSetup {
    /// Random translation in pixels (4 for `-small` archs, else 0).
    pub crop_padding: usize,
    /// Random horizontal flips (true).
    pub flip: bool,
}

/// The keyed form: the file's keys with every default filled in (as keys have been
/// since pretext stages exist, so that stored entries stay valid).
#[derive(Serialize)]
struct PretextKey<'a> {
    task: &'static str,
    arch: Arch,
    width: f64,
    batch_norm: bool,
    data: &'a str,
    image_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    crop: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tile_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_shift: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permutations: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_hamming: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permutations_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grayscale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_replaced: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crop_padding: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flip: Option<bool>,
    #[serde(flatten)]
    solver: &'a SolverParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    init: Option<&'a str>,
    held_out: f64,
}

impl Serialize for PretextParams {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut key = PretextKey {
            task: crate::config::Choice::name(self.task_name()),
            arch: self.arch,
            width: self.width,
            batch_norm: self.batch_norm,
            data: &self.data,
            image_size: self.image_size,
            crop: None,
            tile_size: None,
            channel_shift: None,
            permutations: None,
            min_hamming: None,
            permutations_sha256: None,
            grayscale: None,
            max_replaced: None,
            crop_padding: None,
            flip: None,
            solver: &self.solver,
            init: self.init.as_deref(),
            held_out: self.held_out,
        };
        match &self.task {
            Task::Jigsaw(j) => {
                key.crop = Some(j.crop);
                key.tile_size = Some(j.tile_size);
                key.channel_shift = Some(j.channel_shift);
                key.grayscale = Some(j.grayscale);
                key.max_replaced = j.plus_plus.then_some(j.max_replaced);
                match &j.permutations {
                    Permutations::Generated { count, min_hamming } => {
                        key.permutations = Some(*count);
                        key.min_hamming = Some(*min_hamming);
                    }
                    Permutations::File { sha256, count, .. } => {
                        key.permutations = Some(*count);
                        key.permutations_sha256 = Some(sha256);
                    }
                }
            }
            Task::Rotation(r) => {
                key.crop_padding = Some(r.crop_padding);
                key.flip = Some(r.flip);
            }
        }
        key.serialize(s)
    }
}

impl PretextFile {
    fn validate(self, table: &Node, prefix: &str) -> Result<PretextParams, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| at(key).error(&format!("{prefix}.{key}"), msg);
        let task = crate::config::Choice::name(self.task);
        let (other, what) = if self.task == PretextTask::Rotation {
            (JIGSAW_KEYS, "jigsaw tasks")
        } else {
            (ROTATION_KEYS, "rotation")
        };
        for key in other {
            if table.lookup(key).is_some() {
                return Err(err(key, format!("`{key}` applies to {what}, not to task = \"{task}\"")));
            }
        }
        if self.task == PretextTask::Jigsaw && table.lookup("max_replaced").is_some() {
            return Err(err(
                "max_replaced",
                "`max_replaced` applies to task = \"jigsaw++\" (plain jigsaw replaces no tiles)".into(),
            ));
        }
        self.solver.validate(table, prefix)?;
        let held_out = self.held_out.unwrap_or(HELD_OUT);
        if !(0.0..=0.5).contains(&held_out) {
            return Err(err(
                "held_out",
                format!("expected a share of the images in [0, 0.5], found {held_out}"),
            ));
        }
        let arch = self.arch;
        let (image_size, task) = if self.task == PretextTask::Rotation {
            let size = self.image_size.unwrap_or(crate::models::default_image_size(arch) as usize);
            let pad = self.crop_padding.unwrap_or(if arch.is_small() { 4 } else { 0 });
            if pad > size / 2 {
                return Err(err("crop_padding", format!("expected at most half the image size, found {pad}")));
            }
            self.net_params(size).validate(table, prefix)?;
            let setup = RotationSetup {
                crop_padding: pad,
                flip: self.flip.unwrap_or(true),
            };
            (size, Task::Rotation(setup))
        } else {
            let (size, setup) = self.jigsaw(arch, table, prefix)?;
            (size, Task::Jigsaw(setup))
        };
        Ok(PretextParams {
            arch: self.arch,
            width: self.width,
            batch_norm: self.batch_norm,
            data: self.data,
            image_size,
            task,
            solver: self.solver,
            init: self.init,
            held_out,
        })
    }

    /// The image side and the Jigsaw options, defaults filled in.
    fn jigsaw(&self, arch: Arch, table: &Node, prefix: &str) -> Result<(usize, JigsawSetup), ConfigError> {
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
        let channel_shift = self.channel_shift.unwrap_or(tile / 32);
        if channel_shift > tile {
            return Err(err("channel_shift", format!("expected at most tile_size ({tile})")));
        }
        let grayscale = self.grayscale.unwrap_or(0.7);
        if !(0.0..=1.0).contains(&grayscale) {
            return Err(err("grayscale", format!("expected a probability in [0, 1], found {grayscale}")));
        }
        let plus_plus = self.task == PretextTask::JigsawPlusPlus;
        let max_replaced = if plus_plus { self.max_replaced.unwrap_or(2) } else { 0 };
        if max_replaced > 8 {
            return Err(err("max_replaced", format!("expected 0..=8 tiles, found {max_replaced}")));
        }
        let h = self.min_hamming.unwrap_or(3);
        if !(1..=9).contains(&h) {
            return Err(err("min_hamming", format!("expected 1..=9, found {h}")));
        }
        let permutations = if let Some(file) = &self.permutations_file {
            if table.lookup("permutations").is_some() || table.lookup("min_hamming").is_some() {
                return Err(err(
                    "permutations_file",
                    "give either `permutations_file` or `permutations`/`min_hamming`, not both".into(),
                ));
            }
            let path = table.resolve_path(file);
            let set = PermutationSet::read_bin(&path).map_err(|e| err("permutations_file", e.to_string()))?;
            if set.len() < 2 {
                return Err(err(
                    "permutations_file",
                    format!(
                        "{}: holds {} permutation; a jigsaw task needs at least 2 (one class teaches nothing)",
                        path.display(),
                        set.len()
                    ),
                ));
            }
            let bytes = std::fs::read(&path).map_err(|e| err("permutations_file", format!("{}: {e}", path.display())))?;
            Permutations::File {
                sha256: hex::encode(Sha256::digest(&bytes)),
                count: set.len(),
                path,
            }
        } else {
            let n = self.permutations.unwrap_or(if plus_plus { 701 } else { 1000 });
            if !(2..=10_000).contains(&n) {
                return Err(err("permutations", format!("expected 2..=10000, found {n}")));
            }
            Permutations::Generated { count: n, min_hamming: h }
        };
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
        self.net_params(tile.max(8)).validate(table, prefix)?;
        let setup = JigsawSetup {
            plus_plus,
            crop,
            tile_size: tile,
            channel_shift,
            grayscale,
            max_replaced,
            permutations,
        };
        Ok((size, setup))
    }

    fn net_params(&self, image_size: usize) -> NetworkParams {
        net_params(self.arch, self.width, self.batch_norm, image_size)
    }
}

/// The network the pretext trains, on inputs of `image_size` (tiles or whole images).
fn net_params(arch: Arch, width: f64, batch_norm: bool, image_size: usize) -> NetworkParams {
    NetworkParams {
        arch,
        width,
        batch_norm,
        image_size,
    }
}

impl PretextParams {
    pub fn task_name(&self) -> PretextTask {
        match &self.task {
            Task::Jigsaw(j) if j.plus_plus => PretextTask::JigsawPlusPlus,
            Task::Jigsaw(_) => PretextTask::Jigsaw,
            Task::Rotation(_) => PretextTask::Rotation,
        }
    }

    fn net_params(&self, image_size: usize) -> NetworkParams {
        net_params(self.arch, self.width, self.batch_norm, image_size)
    }

    #[cfg(feature = "torch")]
    fn permutation_set(permutations: &Permutations, seed: u64) -> Result<PermutationSet, StageError> {
        match permutations {
            Permutations::File { path, sha256, .. } => {
                let bytes = std::fs::read(path).map_err(StageError::io(path))?;
                if hex::encode(Sha256::digest(&bytes)) != *sha256 {
                    return Err(StageError::Input(format!(
                        "{} changed since the experiment was planned; run again",
                        path.display()
                    )));
                }
                PermutationSet::read_bin(path).map_err(|e| StageError::Input(e.to_string()))
            }
            Permutations::Generated { count, min_hamming } => {
                PermutationSet::generate(*count, *min_hamming, seed).map_err(|e| StageError::Input(format!("permutations: {e}")))
            }
        }
    }
}

impl Stage for PretextParams {
    const NAME: &'static str = "pretext";
    /// 2 since `vgg16-small` lost its last max-pool; 3 since it holds images out.
    const VERSION: u32 = 3;
    const OUTPUT: OutputKind = OutputKind::Model;
    const METRICS: &'static [&'static str] = &["pretext_heldout_accuracy", "pretext_train_accuracy"];

    /// No images held out (`held_out = 0`): no held-out accuracy.
    fn metrics(&self) -> Vec<&'static str> {
        let held_out = self.held_out > 0.0;
        Self::METRICS
            .iter()
            .copied()
            .filter(|m| held_out || *m != "pretext_heldout_accuracy")
            .collect()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table
            .decode_flattened::<PretextFile>(prefix, &[OWN_KEYS, struct_fields::<SolverParams>()])?
            .validate(table, prefix)
    }
    /// Crops, tiles, permutations, rotations and initial weights are drawn.
    fn stochastic(&self) -> bool {
        true
    }
    fn device_dependent(&self) -> bool {
        true
    }
    fn inputs(&self) -> Vec<InputSpec> {
        let mut v = vec![data_ref("data", &self.data)];
        if let Some(init) = &self.init {
            v.push(InputSpec::Stage {
                key: "init",
                stage: init.clone(),
                accepts: MODEL,
            });
        }
        v
    }
    /// The backbone as `features` and probes read it: on whole images.
    fn networks(&self) -> Networks<'_> {
        Networks {
            builds: Some(self.net_params(self.image_size).config()),
            init: self.init.as_deref().map(|s| ("init", s)),
            reads: None,
        }
    }
    fn rows(&self) -> Rows<'_> {
        Rows::None
    }
    fn resolve(&mut self, _: &dyn Upstream) -> Result<(), ParamError> {
        Ok(())
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let (spec, split) = ctx.data_input("data")?;
        let source = open_split(spec, split)?;
        let size = self.image_size;
        let all = ImageSet::load(source.as_ref(), size, &|_, _| {})?;
        let held = held_out_count(all.n, self.held_out);
        let (set, aside) = all.hold_out(held, ctx.seed);
        drop(all);
        if set.n == 0 {
            return Err(StageError::Input(format!("`{}` has no images left to train on", self.data)));
        }
        let (set, aside) = (Arc::new(set), Arc::new(aside));
        let images = set.n;
        // Held-out samples are drawn from their own seed, the same for every epoch count.
        let eval_seed = ctx.seed ^ 0x5052_4554_4558_5431;
        let batch_size = self.solver.batch_size;
        tch::manual_seed((ctx.seed & i64::MAX as u64) as i64);
        let cfg = self.solver.config(ctx.seed);
        let mut reporter = EpochReporter::new(ctx, self.solver.epochs);
        let (history, classes, heldout) = match &self.task {
            Task::Jigsaw(j) => {
                let perms = PretextParams::permutation_set(&j.permutations, ctx.seed)?;
                perms
                    .write_bin(&ctx.path("permutations.bin"))
                    .map_err(|e| StageError::Failed(e.to_string()))?;
                let tile_cfg = self.net_params(j.tile_size).config();
                let head = JigsawHead::for_config(&tile_cfg, perms.len());
                let mut vs = tch::nn::VarStore::new(ctx.device);
                let net = ContextFree::new(&vs.root(), &tile_cfg, &head).map_err(|e| StageError::Input(e.to_string()))?;
                if self.init.is_some() {
                    let (copied, total) = init_matching(&vs, &tile_cfg, ctx.stage_input("init")?)?;
                    (ctx.note)(format!("initialised {copied} of {total} variables from the init model"));
                }
                let jigsaw = JigsawConfig {
                    crop: j.crop,
                    tile: j.tile_size,
                    channel_shift: j.channel_shift,
                    grayscale: j.grayscale,
                    max_replaced: j.max_replaced,
                    normalize: true,
                };
                let maker = Jigsaw::new(set, &perms, jigsaw.clone()).map_err(StageError::Input)?;
                reporter.accuracy_name = "permutation accuracy";
                reporter.chance = Some(1.0 / perms.len() as f64);
                let forward = |x: &tch::Tensor, train: bool| net.forward(x, train);
                let history = train(&mut vs, &forward, Arc::new(maker), &cfg, ctx.checkpoint_dir, &reporter)
                    .map_err(|e| StageError::Failed(e.to_string()))?;
                let heldout = (aside.n > 0)
                    .then(|| Jigsaw::new(aside.clone(), &perms, jigsaw).map(|m| evaluate(&forward, &m, batch_size, eval_seed, ctx.device)))
                    .transpose()
                    .map_err(StageError::Input)?;
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
                (history, perms.len(), heldout)
            }
            Task::Rotation(r) => {
                let mut model = LoadedModel::new(
                    ModelMeta {
                        config: self.net_params(size).config(),
                        classes: 4,
                        jigsaw: None,
                        per_image_norm: false,
                    },
                    ctx.device,
                )?;
                if self.init.is_some() {
                    let other = LoadedModel::load(ctx.stage_input("init")?, ctx.device)?;
                    (ctx.note)(model.init_from(&other)?.to_string());
                }
                let maker = Rotation {
                    set,
                    augment: Augment {
                        crop_padding: r.crop_padding,
                        flip: r.flip,
                    },
                };
                // Held-out images as they are, at all four angles.
                let heldout_maker = Rotation {
                    set: aside.clone(),
                    augment: Augment {
                        crop_padding: 0,
                        flip: false,
                    },
                };
                reporter.accuracy_name = "rotation accuracy";
                reporter.chance = Some(0.25);
                let net = &model.net;
                let forward = |x: &tch::Tensor, train: bool| net.forward(x, train);
                let history = train(&mut model.vs, &forward, Arc::new(maker), &cfg, ctx.checkpoint_dir, &reporter)
                    .map_err(|e| StageError::Failed(e.to_string()))?;
                let heldout = (aside.n > 0).then(|| evaluate(&forward, &heldout_maker, batch_size, eval_seed, ctx.device));
                model.save(ctx.workdir)?;
                (history, 4, heldout)
            }
        };
        write_history(ctx, &history)?;
        let last = history.last().map(|h| (h.loss, h.accuracy)).unwrap_or((f64::NAN, 0.0));
        let summary = serde_json::json!({
            "task": crate::config::Choice::name(self.task_name()),
            "classes": classes,
            "chance": 1.0 / classes as f64,
            "final_loss": last.0,
            "final_accuracy": last.1,
            "epochs": history.len(),
            "train_images": images,
            "heldout_images": aside.n,
            "heldout_accuracy": heldout,
        });
        artefacts::write_json(&ctx.path("pretext.json"), &summary)?;
        let row = |metric: &str, value: f64| MetricRow {
            layer: String::new(),
            metric: metric.into(),
            value,
        };
        let mut metrics = vec![row("pretext_train_accuracy", last.1)];
        let mut measured = format!("training accuracy {:.3}", last.1);
        if let Some(acc) = heldout {
            metrics.insert(0, row("pretext_heldout_accuracy", acc));
            measured = format!("held-out accuracy {acc:.3} on {} images, {measured}", aside.n);
        }
        Ok(Outcome {
            metrics,
            summary: format!(
                "{} on {} images, {} epochs: {measured} (chance {:.4}), loss {:.4}",
                crate::config::Choice::name(self.task_name()),
                images,
                history.len(),
                1.0 / classes as f64,
                last.0
            ),
        })
    }
}

#[cfg(feature = "torch")]
/// Images set aside: `share` of `n`, at least one when the share is not zero and there
/// are two images or more.
fn held_out_count(n: usize, share: f64) -> usize {
    if share <= 0.0 || n < 2 {
        return 0;
    }
    ((n as f64 * share).round() as usize).clamp(1, n - 1)
}
