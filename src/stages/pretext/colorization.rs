//! `task = "colorization"`: predict an image's colour from its lightness (Zhang et al.
//! 2016). The backbone sees the L channel of CIE Lab (in all three input channels); a
//! decoder on `decoder_layer` (conv5 by default) predicts the ab channels at a quarter of the
//! input's side. `loss = "classification"` (the default): cross-entropy over the 261
//! in-gamut ab bins of side 10 with Zhang's class rebalancing (the prior from the training
//! images' ab histogram, smoothed by a Gaussian of 5, mixed with the uniform distribution
//! half and half, weights of expectation 1 under it); `loss = "regression"`: L2 on ab.
//! Held out: the share of output pixels whose predicted ab lies within 10 of the truth,
//! beside the share gray (ab = 0) gets. The decoder is recorded in `model.json` but is not
//! part of the backbone that `features`, the probes and `init` read.
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::task::{Task, TaskDef, TaskInput};
use crate::config::ConfigError;
#[cfg(feature = "torch")]
use {
    super::super::artefacts,
    super::super::model_io::{init_matching, ModelMeta},
    super::super::solver::EpochReporter,
    super::super::StageError,
    super::task::{Job, Trained},
    crate::pretext::colorization::{ColorLoss, Colorize},
    crate::pretext::decoder::DenseNet,
    crate::pretext::lab::output_side,
    crate::pretext::lab::{rebalancing_weights, smoothed_prior},
    crate::train::objective::Objective,
    crate::train::trainer::train,
    std::sync::Arc,
};

pub const COLORIZATION: TaskDef = TaskDef {
    name: "colorization",
    family: "colorization",
    keys: &["loss", "decoder_layer", "flip"],
    metrics: &[
        "pretext_heldout_ab_accuracy",
        "pretext_train_ab_accuracy",
        "pretext_heldout_ab_accuracy_trivial",
    ],
    sample_macs: |params, cfg| {
        let layer = params.get("decoder_layer")?.as_str()?;
        let side = crate::pretext::lab::output_side(cfg.image_size as usize) as i64;
        let out = match params.get("loss")?.as_str()? {
            "regression" => 2,
            _ => crate::pretext::lab::IN_GAMUT_BINS as i64,
        };
        Some(cfg.macs_per_image()? + crate::pretext::decoder::macs(cfg, layer, side, out)?)
    },
    decode: |input| Ok(Box::new(ColorizationSetup::decode(input)?)),
};

/// Zhang et al.'s smoothing of the prior (ab units) and its mix with the uniform one.
#[cfg(feature = "torch")]
const PRIOR_SIGMA: f64 = 5.0;
#[cfg(feature = "torch")]
const PRIOR_LAMBDA: f64 = 0.5;

/// The colourisation keys as the file writes them.
#[derive(Deserialize)]
struct ColorizationFile {
    loss: Option<String>,
    decoder_layer: Option<String>,
    flip: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct ColorizationSetup {
    /// The network's input side (224, or 32 for `-small` archs).
    pub image_size: usize,
    /// Classification over ab bins (true, the default) or regression.
    pub classification: bool,
    /// The backbone layer the decoder reads (`conv5`).
    pub decoder_layer: String,
    /// Random horizontal flips (true).
    pub flip: bool,
}

/// Checks `decoder_layer` for the stage's network (shared with inpainting).
pub(super) fn decoder_layer(input: &TaskInput<'_>, size: usize, written: Option<String>) -> Result<String, ConfigError> {
    let layer = written.unwrap_or_else(|| "conv5".to_string());
    let cfg = input.net_params(size).config();
    if let Err(e) = crate::models::check_layer_name(&cfg, &layer) {
        return Err(input.error("decoder_layer", e.to_string()));
    }
    if layer.starts_with("fc") {
        return Err(input.error(
            "decoder_layer",
            format!("expected a convolutional layer (a feature map to decode), found `{layer}`"),
        ));
    }
    Ok(layer)
}

impl ColorizationSetup {
    fn decode(input: &TaskInput<'_>) -> Result<ColorizationSetup, ConfigError> {
        let file = input.table.decode_flattened::<ColorizationFile>(input.prefix, input.known)?;
        let size = input.image_size.unwrap_or(crate::models::default_image_size(input.arch) as usize);
        let classification = match file.loss.as_deref() {
            None | Some("classification") => true,
            Some("regression") => false,
            Some(other) => {
                let shown: String = other.chars().take(40).flat_map(char::escape_debug).collect();
                return Err(input.error("loss", format!("expected \"classification\" or \"regression\", found \"{shown}\"")));
            }
        };
        input.net_params(size).validate(input.table, input.prefix)?;
        let decoder_layer = decoder_layer(input, size, file.decoder_layer)?;
        Ok(ColorizationSetup {
            image_size: size,
            classification,
            decoder_layer,
            flip: file.flip.unwrap_or(true),
        })
    }
}

impl Task for ColorizationSetup {
    fn def(&self) -> &'static TaskDef {
        &COLORIZATION
    }

    fn image_size(&self) -> usize {
        self.image_size
    }

    fn key_fields(&self) -> Map<String, Value> {
        let mut key = Map::new();
        let loss = if self.classification { "classification" } else { "regression" };
        key.insert("loss".into(), json!(loss));
        key.insert("decoder_layer".into(), json!(self.decoder_layer));
        key.insert("flip".into(), json!(self.flip));
        key
    }

    fn clone_box(&self) -> Box<dyn Task> {
        Box::new(self.clone())
    }

    #[cfg(feature = "torch")]
    fn train(&self, job: &Job<'_>) -> Result<Trained, StageError> {
        let ctx = job.ctx;
        let maker = Colorize {
            set: job.set.clone(),
            flip: self.flip,
        };
        let objective = if self.classification {
            let prior = smoothed_prior(&maker.histogram()?, PRIOR_SIGMA);
            ColorLoss::Classification {
                weights: rebalancing_weights(&prior, PRIOR_LAMBDA),
            }
        } else {
            ColorLoss::Regression
        };
        let config = job.net.config();
        let mut vs = tch::nn::VarStore::new(ctx.device);
        let side = output_side(self.image_size) as i64;
        let (net, head) = DenseNet::new(&vs.root(), &config, &self.decoder_layer, side, objective.channels())
            .map_err(|e| StageError::Input(e.to_string()))?;
        if job.init {
            let (copied, total) = init_matching(&vs, &config, ctx.stage_input("init")?)?;
            (ctx.note)(format!("initialised {copied} of {total} variables from the init model"));
        }
        let mut reporter = EpochReporter::new(ctx, job.cfg.epochs, objective.metric());
        reporter.chance = Some(maker.gray_accuracy()?);
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
        // Held-out images unmirrored.
        let heldout_maker = Colorize {
            set: job.aside.clone(),
            flip: false,
        };
        let heldout = (job.aside.n > 0)
            .then(|| objective.evaluate(&forward, &heldout_maker, job.cfg.batch_size, job.eval_seed, ctx.device))
            .transpose()?;
        vs.save(ctx.path("model.safetensors")).map_err(StageError::Torch)?;
        let meta = ModelMeta {
            config,
            classes: 0,
            jigsaw: None,
            projection: None,
            decoder: Some(head),
            per_image_norm: false,
            lightness_input: true,
            fit: Default::default(),
        };
        artefacts::write_json(&ctx.path("model.json"), &serde_json::to_value(&meta).unwrap_or_default())?;
        Ok(Trained {
            history,
            metric: objective.metric(),
            classes: None,
            baseline: (job.aside.n > 0).then(|| heldout_maker.gray_accuracy()).transpose()?,
            heldout,
            extra: Vec::new(),
        })
    }
}
