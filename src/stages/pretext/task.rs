//! What a pretext task is to the `pretext` stage: its entry in [`super::TASKS`] (name, own
//! keys, decoder) and the [`Task`] it decodes to (its keyed options, image side, and how it
//! trains the network and measures itself on held-out images). One file per task beside
//! this one.
use serde_json::{Map, Value};

use super::super::network_params::NetworkParams;
use crate::config::{ConfigError, Node};
use crate::models::{Arch, NetConfig};
#[cfg(feature = "torch")]
use {
    super::super::{RunCtx, StageError},
    crate::train::batches::ImageSet,
    crate::train::objective::Metric,
    crate::train::trainer::{EpochStats, TrainConfig},
    std::sync::Arc,
};

/// A task in the list of tasks: what a file names, which keys belong to it, and how its
/// options are read.
pub struct TaskDef {
    /// `task = "..."` in experiment files.
    pub name: &'static str,
    /// Tasks that share keys say so in messages ("jigsaw tasks"); otherwise the name.
    pub family: &'static str,
    /// The keys this task takes besides the stage's own (`arch`, `data`, the training
    /// options...); another task's key is refused naming the tasks that take it.
    pub keys: &'static [&'static str],
    /// The metric names of its result rows, held-out ones first:
    /// `pretext_heldout_<metric>`, `pretext_train_<metric>`, and its trivial baseline's
    /// where it reports one (`pretext_heldout_<metric>_chance` for guessing,
    /// `pretext_heldout_<metric>_trivial` for a fixed prediction: gray, the mean colour).
    /// The stage's `METRICS` is every task's; those starting `pretext_heldout_` are left
    /// out when no images are held out.
    pub metrics: &'static [&'static str],
    /// Multiply-accumulates of one training image's samples through the network the stage
    /// trains (`cfg`, at the stage's image side; the task's head or decoder included where
    /// it costs more than a rounding error), from the stage's keyed parameters: what plan
    /// estimates scale a stage's cost by. `None` when they cannot tell.
    pub sample_macs: fn(&Value, &NetConfig) -> Option<f64>,
    /// Reads and validates the task's own options, defaults filled in.
    pub decode: fn(&TaskInput<'_>) -> Result<Box<dyn Task>, ConfigError>,
}

/// What a task's decoder reads: the stage table and the network the stage trains.
pub struct TaskInput<'a> {
    pub table: &'a Node,
    pub prefix: &'a str,
    /// Every key a pretext table may hold (for `decode_flattened`).
    pub known: &'a [&'a [&'static str]],
    pub arch: Arch,
    pub width: f64,
    pub batch_norm: bool,
    /// `image_size` as written, if it is.
    pub image_size: Option<usize>,
    /// The solver's batch size (images per step), validated.
    pub batch_size: usize,
}

impl TaskInput<'_> {
    /// An error at `key` (at the table when the key is not written).
    pub fn error(&self, key: &str, message: String) -> ConfigError {
        self.table
            .lookup(key)
            .unwrap_or(self.table)
            .error(&format!("{}.{key}", self.prefix), message)
    }

    /// The network the stage trains, on inputs of `image_size` (tiles or whole images).
    pub fn net_params(&self, image_size: usize) -> NetworkParams {
        NetworkParams {
            arch: self.arch,
            width: self.width,
            batch_norm: self.batch_norm,
            image_size,
        }
    }
}

/// A decoded task: every option resolved.
pub trait Task: std::fmt::Debug + Send + Sync {
    /// Its entry in [`super::TASKS`].
    fn def(&self) -> &'static TaskDef;
    /// The side images are loaded at (the network's input, or the picture tiles are cut
    /// from).
    fn image_size(&self) -> usize;
    /// The task cuts its samples from the decoded originals (read streamed, whatever the
    /// decode budget), not from images resized whole to [`Task::image_size`].
    fn reads_originals(&self) -> bool {
        false
    }
    /// Its keyed options, defaults filled in (entered beside the stage's own).
    fn key_fields(&self) -> Map<String, Value>;
    fn clone_box(&self) -> Box<dyn Task>;
    /// Builds the network (from `job.init` where given), trains it on `job.set`, measures the
    /// task on `job.aside`, and writes `model.safetensors`, `model.json` and the task's own
    /// files into the instance's folder.
    #[cfg(feature = "torch")]
    fn train(&self, job: &Job<'_>) -> Result<Trained, StageError>;
}

impl Clone for Box<dyn Task> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// What a task trains with.
#[cfg(feature = "torch")]
pub struct Job<'a> {
    pub ctx: &'a RunCtx<'a>,
    /// The network on whole images at the stage's image side.
    pub net: NetworkParams,
    /// The images trained on, and those held out (possibly none).
    pub set: Arc<ImageSet>,
    pub aside: Arc<ImageSet>,
    pub cfg: TrainConfig,
    /// Seed of the held-out samples (which permutation, rotation... each held-out image
    /// gets): from the stated seed and the split, the same in every stage on that split.
    pub eval_seed: u64,
    /// Whether the stage starts from an `init` model (`ctx.stage_input("init")`).
    pub init: bool,
}

/// What training gave.
#[cfg(feature = "torch")]
pub struct Trained {
    pub history: Vec<EpochStats>,
    /// The metric of the epochs and of `heldout` (the objective's).
    pub metric: Metric,
    /// Classes of a classification task.
    pub classes: Option<usize>,
    /// The baseline of the task's metric: guessing (one over the classes; one over the
    /// held-out images for instance retrieval) or the trivial prediction of a dense task
    /// (gray, the mean colour) on the held-out images. `None` where it needs held-out
    /// images and there are none.
    pub baseline: Option<f64>,
    /// The task's metric on the held-out images, if any were.
    pub heldout: Option<f64>,
    /// Further held-out figures (named as in [`TaskDef::metrics`], after the first three),
    /// when images were held out: inpainting's region MSE and its trivial baseline's.
    pub extra: Vec<(&'static str, f64)>,
}
