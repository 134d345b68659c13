//! `task = "jigsaw"` and `"jigsaw++"`: which of N permutations shuffled a 3 x 3 grid of
//! tiles (Noroozi & Favaro 2016), and Jigsaw++ with up to `max_replaced` tiles from another
//! image (Noroozi et al. 2018), through the context-free network.
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::task::{Task, TaskDef, TaskInput};
use crate::config::ConfigError;
use crate::pretext::permutations::{PermutationSet, MAX_REPLACED};
#[cfg(feature = "torch")]
use {
    super::super::artefacts,
    super::super::model_io::{init_matching, ModelMeta},
    super::super::network_params::NetworkParams,
    super::super::solver::EpochReporter,
    super::super::StageError,
    super::task::{Job, Trained},
    crate::models::NetConfig,
    crate::pretext::cfn::{ContextFree, JigsawHead},
    crate::pretext::jigsaw::{Jigsaw, JigsawConfig},
    crate::train::objective::{Classification, Objective},
    crate::train::trainer::train,
    std::sync::Arc,
};

const KEYS: &[&str] = &[
    "crop",
    "tile_size",
    "channel_shift",
    "permutations",
    "min_hamming",
    "permutations_file",
    "grayscale",
    "canvas",
];

/// Both jigsaw tasks' metrics: permutation accuracy.
const ACCURACY: &[&str] = &["pretext_heldout_accuracy", "pretext_train_accuracy"];

/// Nine tiles of `tile_size` per sample.
fn nine_tiles(params: &Value, cfg: &crate::models::NetConfig) -> Option<f64> {
    let tile = params.get("tile_size")?.as_i64()?;
    let tiles = crate::models::NetConfig {
        image_size: tile,
        ..cfg.clone()
    };
    Some(9.0 * tiles.macs_per_image()?)
}

pub const JIGSAW: TaskDef = TaskDef {
    name: "jigsaw",
    family: "jigsaw tasks",
    keys: KEYS,
    metrics: ACCURACY,
    sample_macs: nine_tiles,
    decode: |input| Ok(Box::new(JigsawSetup::decode(input, false)?)),
};

pub const JIGSAW_PLUS_PLUS: TaskDef = TaskDef {
    name: "jigsaw++",
    family: "jigsaw tasks",
    keys: &[
        "crop",
        "tile_size",
        "channel_shift",
        "permutations",
        "min_hamming",
        "permutations_file",
        "grayscale",
        "max_replaced",
        "canvas",
    ],
    metrics: ACCURACY,
    sample_macs: nine_tiles,
    decode: |input| Ok(Box::new(JigsawSetup::decode(input, true)?)),
};

/// The Jigsaw keys as the file writes them.
#[derive(Deserialize)]
struct JigsawFile {
    crop: Option<usize>,
    tile_size: Option<usize>,
    channel_shift: Option<usize>,
    permutations: Option<usize>,
    min_hamming: Option<usize>,
    permutations_file: Option<String>,
    grayscale: Option<f64>,
    max_replaced: Option<usize>,
    canvas: Option<String>,
}

#[derive(Clone, Debug)]
pub struct JigsawSetup {
    /// Jigsaw++: up to `max_replaced` tiles come from another image.
    pub plus_plus: bool,
    /// Side images are resized to (256, or 64 for `-small` archs); the grid is cut from a
    /// random crop of it.
    pub image_size: usize,
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
    /// `canvas = "original"`: each decoded original's shorter side resized to
    /// `image_size` (aspect kept) and the crop drawn anywhere in it, as the official code
    /// does (`Resize(256)`, then a random crop); `false` (`"square"`, the default): the
    /// image resized whole to `image_size` x `image_size`. Keyed only when original.
    pub original_canvas: bool,
}

/// Where the permutation set comes from.
#[derive(Clone, Debug)]
pub enum Permutations {
    /// Generated from the seed: `count` permutations at least `min_hamming` apart
    /// (1000 for jigsaw, 701 for jigsaw++; 3).
    Generated { count: usize, min_hamming: usize },
    /// A file in the official layout (e.g. the original `permutations_701.bin`); its
    /// contents enter the key, its path does not.
    File {
        /// Read again when the stage runs (and checked against `sha256`).
        #[cfg_attr(not(feature = "torch"), allow(dead_code))]
        path: PathBuf,
        sha256: String,
        count: usize,
    },
}

impl JigsawSetup {
    /// The image side and the Jigsaw options, defaults filled in.
    fn decode(input: &TaskInput<'_>, plus_plus: bool) -> Result<JigsawSetup, ConfigError> {
        let table = input.table;
        let file = table.decode_flattened::<JigsawFile>(input.prefix, input.known)?;
        let err = |key: &str, msg: String| input.error(key, msg);
        let arch = input.arch;
        // The paper's geometry (256 -> 225 crop -> 75 px cells -> 64 px tiles), and the
        // same proportions at 64 px for the small archs; both scale with `image_size`.
        let (size0, cell0, tile0) = if arch.is_small() { (64, 19, 16) } else { (256, 75, 64) };
        let size = input.image_size.unwrap_or(size0);
        if !(12..=4096).contains(&size) {
            return Err(err("image_size", format!("expected 12..=4096, found {size}")));
        }
        let scale = |v: usize| ((v * size) as f64 / size0 as f64).round().max(1.0) as usize;
        let crop = file.crop.unwrap_or(3 * scale(cell0));
        if crop < 3 || crop > size {
            return Err(err("crop", format!("expected 3..={size} (the image side), found {crop}")));
        }
        let tile = file.tile_size.unwrap_or(scale(tile0).min(crop / 3));
        if tile == 0 || tile > crop / 3 {
            return Err(err(
                "tile_size",
                format!("expected 1..={} (the cell side, crop / 3), found {tile}", crop / 3),
            ));
        }
        let channel_shift = file.channel_shift.unwrap_or(tile / 32);
        if channel_shift > tile {
            return Err(err("channel_shift", format!("expected at most tile_size ({tile})")));
        }
        let grayscale = file.grayscale.unwrap_or(0.7);
        if !(0.0..=1.0).contains(&grayscale) {
            return Err(err("grayscale", format!("expected a probability in [0, 1], found {grayscale}")));
        }
        let original_canvas = match file.canvas.as_deref() {
            None | Some("square") => false,
            Some("original") => true,
            Some(other) => {
                return Err(err(
                    "canvas",
                    format!("expected \"square\" (the image resized whole) or \"original\" (its shorter side resized), found \"{other}\""),
                ))
            }
        };
        let max_replaced = if plus_plus { file.max_replaced.unwrap_or(2) } else { 0 };
        if max_replaced > MAX_REPLACED {
            return Err(err(
                "max_replaced",
                format!("expected 0..={MAX_REPLACED} tiles, found {max_replaced}"),
            ));
        }
        let h = file.min_hamming.unwrap_or(3);
        if !(1..=9).contains(&h) {
            return Err(err("min_hamming", format!("expected 1..=9, found {h}")));
        }
        let permutations = if let Some(path) = &file.permutations_file {
            if table.lookup("permutations").is_some() || table.lookup("min_hamming").is_some() {
                return Err(err(
                    "permutations_file",
                    "give either `permutations_file` or `permutations`/`min_hamming`, not both".into(),
                ));
            }
            let path = table.resolve_path(path);
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
            let n = file.permutations.unwrap_or(if plus_plus { 701 } else { 1000 });
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
        input.net_params(tile.max(8)).validate(table, input.prefix)?;
        Ok(JigsawSetup {
            plus_plus,
            image_size: size,
            crop,
            tile_size: tile,
            channel_shift,
            grayscale,
            max_replaced,
            permutations,
            original_canvas,
        })
    }

    /// The permutation set: read (and checked against the planned contents) or generated.
    #[cfg(feature = "torch")]
    fn permutation_set(&self, seed: u64) -> Result<PermutationSet, StageError> {
        match &self.permutations {
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

impl Task for JigsawSetup {
    fn def(&self) -> &'static TaskDef {
        if self.plus_plus {
            &JIGSAW_PLUS_PLUS
        } else {
            &JIGSAW
        }
    }

    fn image_size(&self) -> usize {
        self.image_size
    }

    fn reads_originals(&self) -> bool {
        self.original_canvas
    }

    fn key_fields(&self) -> Map<String, Value> {
        let mut key = Map::new();
        key.insert("crop".into(), json!(self.crop));
        key.insert("tile_size".into(), json!(self.tile_size));
        key.insert("channel_shift".into(), json!(self.channel_shift));
        key.insert("grayscale".into(), json!(self.grayscale));
        if self.plus_plus {
            key.insert("max_replaced".into(), json!(self.max_replaced));
        }
        if self.original_canvas {
            key.insert("canvas".into(), json!("original"));
        }
        match &self.permutations {
            Permutations::Generated { count, min_hamming } => {
                key.insert("permutations".into(), json!(count));
                key.insert("min_hamming".into(), json!(min_hamming));
            }
            Permutations::File { sha256, count, .. } => {
                key.insert("permutations".into(), json!(count));
                key.insert("permutations_sha256".into(), json!(sha256));
            }
        }
        key
    }

    fn clone_box(&self) -> Box<dyn Task> {
        Box::new(self.clone())
    }

    #[cfg(feature = "torch")]
    fn train(&self, job: &Job<'_>) -> Result<Trained, StageError> {
        let ctx = job.ctx;
        // Generated from the stated seed: the set `ktlab perms --seed` writes, the same in
        // every stage with the same count, distance and seed.
        let perms = self.permutation_set(ctx.stated_seed)?;
        perms
            .write_bin(&ctx.path("permutations.bin"))
            .map_err(|e| StageError::Failed(e.to_string()))?;
        // The backbone runs on tiles.
        let tile_cfg = NetworkParams {
            image_size: self.tile_size,
            ..job.net.clone()
        }
        .config();
        let head = JigsawHead::for_config(&tile_cfg, perms.len());
        let mut vs = tch::nn::VarStore::new(ctx.device);
        let net = ContextFree::new(&vs.root(), &tile_cfg, &head).map_err(|e| StageError::Input(e.to_string()))?;
        if job.init {
            let (copied, total) = init_matching(&vs, &tile_cfg, ctx.stage_input("init")?)?;
            (ctx.note)(format!("initialised {copied} of {total} variables from the init model"));
        }
        let jigsaw = JigsawConfig {
            crop: self.crop,
            tile: self.tile_size,
            channel_shift: self.channel_shift,
            grayscale: self.grayscale,
            max_replaced: self.max_replaced,
            normalize: true,
            original: self.original_canvas.then_some(self.image_size),
        };
        let maker = Jigsaw::new(job.set.clone(), &perms, jigsaw.clone()).map_err(StageError::Input)?;
        let objective = Classification {
            label: "permutation accuracy",
        };
        let mut reporter = EpochReporter::new(ctx, job.cfg.epochs, objective.metric());
        reporter.chance = Some(1.0 / perms.len() as f64);
        let forward = |x: &tch::Tensor, train: bool| net.forward(x, train);
        let history = train(
            &mut vs,
            &forward,
            Arc::new(maker),
            &objective,
            &job.cfg,
            ctx.checkpoint_dir,
            &reporter,
        )?;
        let heldout = (job.aside.n > 0)
            .then(|| {
                let maker = Jigsaw::new(job.aside.clone(), &perms, jigsaw).map_err(StageError::Input)?;
                Ok::<_, StageError>(objective.evaluate(&forward, &maker, job.cfg.batch_size, job.eval_seed, ctx.device)?)
            })
            .transpose()?;
        vs.save(ctx.path("model.safetensors")).map_err(StageError::Torch)?;
        // Features are read on whole images at the pretext's image side.
        let meta = ModelMeta {
            config: NetConfig {
                image_size: self.image_size as i64,
                ..tile_cfg
            },
            classes: 0,
            jigsaw: Some(head),
            projection: None,
            decoder: None,
            per_image_norm: true,
            lightness_input: false,
            fit: Default::default(),
        };
        artefacts::write_json(&ctx.path("model.json"), &serde_json::to_value(&meta).unwrap_or_default())?;
        Ok(Trained {
            history,
            metric: objective.metric(),
            classes: Some(perms.len()),
            baseline: Some(1.0 / perms.len() as f64),
            heldout,
            extra: Vec::new(),
        })
    }
}
