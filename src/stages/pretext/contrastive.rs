//! `task = "contrastive"`: SimCLR-style instance discrimination (Chen et al. 2020). Two
//! augmented views of every image go through the backbone and a projection head; the
//! NT-Xent loss makes each view pick its partner out of the batch's other views. The head is
//! recorded in `model.json` but is not part of the backbone that `features`, the probes and
//! `init` read. Held out: instance retrieval top-1 among the held-out images (chance one
//! over them).
//!
//! Defaults and where they come from (SimCLR's CIFAR-10 settings, its appendix B.9, for 32
//! px images): crops of 8 % to 100 % of the area (`crop_min_scale = 0.08`, torchvision's
//! and SimCLR's), flips, colour jitter of strength 0.5 (SimCLR's CIFAR-10 strength; 1.0 on
//! ImageNet) applied with probability 0.8, grayscale with probability 0.2, no blur (SimCLR
//! drops it at 32 px), a 128-d projection, temperature 0.5 (the best of SimCLR's CIFAR-10
//! sweep over batch sizes and epochs; ImageNet's 0.1 pays off with batches of thousands and
//! long training, and at the batch sizes of a CPU run a colder softmax only sharpens the
//! gradient on a few hard negatives). `batch_size` matters: every image of a batch is a
//! negative for the others (2 x batch_size - 2 negatives per view), so larger batches are a
//! harder task and, in SimCLR, better features.
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::task::{Task, TaskDef, TaskInput};
use crate::config::ConfigError;
use crate::pretext::views::ViewConfig;
#[cfg(feature = "torch")]
use {
    super::super::artefacts,
    super::super::model_io::{init_matching, ModelMeta},
    super::super::solver::EpochReporter,
    super::super::StageError,
    super::task::{Job, Trained},
    crate::pretext::contrastive::{ContrastiveNet, NtXent, Views},
    crate::train::objective::Objective,
    crate::train::trainer::train,
    std::sync::Arc,
};

pub const CONTRASTIVE: TaskDef = TaskDef {
    name: "contrastive",
    family: "contrastive",
    keys: &[
        "crop_min_scale",
        "flip",
        "jitter_strength",
        "jitter_prob",
        "grayscale_prob",
        "projection_dim",
        "temperature",
    ],
    metrics: &[
        "pretext_heldout_retrieval_top1",
        "pretext_train_retrieval_top1",
        "pretext_heldout_retrieval_top1_chance",
    ],
    // Two views of each image (the projection head is a rounding error).
    sample_macs: |_, cfg| Some(2.0 * cfg.macs_per_image()?),
    decode: |input| Ok(Box::new(ContrastiveSetup::decode(input)?)),
};

/// The contrastive keys as the file writes them.
#[derive(Deserialize)]
struct ContrastiveFile {
    crop_min_scale: Option<f64>,
    flip: Option<bool>,
    jitter_strength: Option<f64>,
    jitter_prob: Option<f64>,
    grayscale_prob: Option<f64>,
    projection_dim: Option<i64>,
    temperature: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct ContrastiveSetup {
    /// The network's input side (224, or 32 for `-small` archs).
    pub image_size: usize,
    pub views: ViewConfig,
    /// Outputs of the projection head (128).
    pub projection_dim: i64,
    /// NT-Xent's softmax temperature (0.5).
    pub temperature: f64,
}

impl ContrastiveSetup {
    fn decode(input: &TaskInput<'_>) -> Result<ContrastiveSetup, ConfigError> {
        let file = input.table.decode_flattened::<ContrastiveFile>(input.prefix, input.known)?;
        let size = input.image_size.unwrap_or(crate::models::default_image_size(input.arch) as usize);
        let views = ViewConfig {
            crop_min_scale: file.crop_min_scale.unwrap_or(0.08),
            flip: file.flip.unwrap_or(true),
            jitter_strength: file.jitter_strength.unwrap_or(0.5),
            jitter_prob: file.jitter_prob.unwrap_or(0.8),
            grayscale_prob: file.grayscale_prob.unwrap_or(0.2),
        };
        if let Err((key, message)) = views.check() {
            return Err(input.error(key, message));
        }
        let projection_dim = file.projection_dim.unwrap_or(128);
        if !(1..=4096).contains(&projection_dim) {
            return Err(input.error("projection_dim", format!("expected 1..=4096, found {projection_dim}")));
        }
        let temperature = file.temperature.unwrap_or(0.5);
        if !(0.01..=10.0).contains(&temperature) {
            return Err(input.error("temperature", format!("expected a temperature in [0.01, 10], found {temperature}")));
        }
        if input.batch_size < 2 {
            return Err(input.error(
                "batch_size",
                format!(
                    "task = \"contrastive\" needs at least 2 images per batch (the other images are the negatives), found {}",
                    input.batch_size
                ),
            ));
        }
        input.net_params(size).validate(input.table, input.prefix)?;
        Ok(ContrastiveSetup {
            image_size: size,
            views,
            projection_dim,
            temperature,
        })
    }
}

impl Task for ContrastiveSetup {
    fn def(&self) -> &'static TaskDef {
        &CONTRASTIVE
    }

    fn image_size(&self) -> usize {
        self.image_size
    }

    fn key_fields(&self) -> Map<String, Value> {
        let v = &self.views;
        let mut key = Map::new();
        key.insert("crop_min_scale".into(), json!(v.crop_min_scale));
        key.insert("flip".into(), json!(v.flip));
        key.insert("jitter_strength".into(), json!(v.jitter_strength));
        key.insert("jitter_prob".into(), json!(v.jitter_prob));
        key.insert("grayscale_prob".into(), json!(v.grayscale_prob));
        key.insert("projection_dim".into(), json!(self.projection_dim));
        key.insert("temperature".into(), json!(self.temperature));
        key
    }

    fn clone_box(&self) -> Box<dyn Task> {
        Box::new(self.clone())
    }

    #[cfg(feature = "torch")]
    fn train(&self, job: &Job<'_>) -> Result<Trained, StageError> {
        let ctx = job.ctx;
        let config = job.net.config();
        let mut vs = tch::nn::VarStore::new(ctx.device);
        let (net, head) = ContrastiveNet::new(&vs.root(), &config, self.projection_dim).map_err(|e| StageError::Input(e.to_string()))?;
        if job.init {
            let (copied, total) = init_matching(&vs, &config, ctx.stage_input("init")?)?;
            (ctx.note)(format!("initialised {copied} of {total} variables from the init model"));
        }
        let objective = NtXent {
            temperature: self.temperature,
        };
        let maker = Views {
            set: job.set.clone(),
            config: self.views.clone(),
        };
        let mut reporter = EpochReporter::new(ctx, job.cfg.epochs, objective.metric());
        // In the batch, a first view is found among batch_size second views.
        reporter.chance = Some(1.0 / job.cfg.batch_size.min(job.set.n).max(1) as f64);
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
        // Held-out images with views drawn as in training (two crops of an image must differ
        // for the retrieval to mean anything), from the held-out seed.
        let heldout_maker = Views {
            set: job.aside.clone(),
            config: self.views.clone(),
        };
        let heldout = (job.aside.n > 0)
            .then(|| objective.evaluate(&forward, &heldout_maker, job.cfg.batch_size, job.eval_seed, ctx.device))
            .transpose()?;
        vs.save(ctx.path("model.safetensors")).map_err(StageError::Torch)?;
        let meta = ModelMeta {
            config,
            classes: 0,
            jigsaw: None,
            projection: Some(head),
            decoder: None,
            per_image_norm: false,
            lightness_input: false,
            fit: Default::default(),
        };
        artefacts::write_json(&ctx.path("model.json"), &serde_json::to_value(&meta).unwrap_or_default())?;
        Ok(Trained {
            history,
            metric: objective.metric(),
            classes: None,
            baseline: (job.aside.n > 0).then(|| 1.0 / job.aside.n as f64),
            heldout,
            extra: Vec::new(),
        })
    }
}
