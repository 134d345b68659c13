//! `task = "inpainting"`: the context encoder (Pathak et al. 2016) without its adversarial
//! term: part of every image is removed (`mask = "center"`: the central square of side
//! `mask_size`, half the image side by default; `mask = "blocks"`: squares of side
//! `mask_size`, a quarter of the side by default, at random places until a quarter of the
//! image is gone) and filled with the training images' mean colour; a decoder on
//! `decoder_layer` (conv5 by default) predicts the whole image (as its difference from the
//! mean colour), and the loss is the mean
//! squared error on the removed pixels plus `outside_weight` (0) times that on the others.
//! Held out: the removed region's PSNR and MSE, beside those of predicting the mean colour.
//! The decoder is recorded in `model.json` but is not part of the backbone that `features`,
//! the probes and `init` read.
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::colorization::decoder_layer;
use super::task::{Task, TaskDef, TaskInput};
use crate::config::ConfigError;
#[cfg(feature = "torch")]
use {
    super::super::artefacts,
    super::super::model_io::{init_matching, ModelMeta},
    super::super::solver::EpochReporter,
    super::super::StageError,
    super::task::{Job, Trained},
    crate::pretext::decoder::DenseNet,
    crate::pretext::inpainting::{mean_colour, Inpaint, InpaintLoss, MaskConfig, MaskKind, RegionMetric},
    crate::train::objective::Objective,
    crate::train::trainer::train,
    std::sync::Arc,
};

pub const INPAINTING: TaskDef = TaskDef {
    name: "inpainting",
    family: "inpainting",
    keys: &["mask", "mask_size", "outside_weight", "decoder_layer", "flip"],
    metrics: &[
        "pretext_heldout_psnr",
        "pretext_train_psnr",
        "pretext_heldout_psnr_trivial",
        "pretext_heldout_mse",
        "pretext_heldout_mse_trivial",
    ],
    sample_macs: |params, cfg| {
        let layer = params.get("decoder_layer")?.as_str()?;
        Some(cfg.macs_per_image()? + crate::pretext::decoder::macs(cfg, layer, cfg.image_size, 3)?)
    },
    decode: |input| Ok(Box::new(InpaintingSetup::decode(input)?)),
};

/// The inpainting keys as the file writes them.
#[derive(Deserialize)]
struct InpaintingFile {
    mask: Option<String>,
    mask_size: Option<usize>,
    outside_weight: Option<f64>,
    decoder_layer: Option<String>,
    flip: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct InpaintingSetup {
    /// The network's input side (224, or 32 for `-small` archs).
    pub image_size: usize,
    /// The central square (true, the default) or random blocks.
    pub center: bool,
    /// The side of the square, or of each block.
    pub mask_size: usize,
    /// Weight of the error outside the removed region (0).
    pub outside_weight: f64,
    /// The backbone layer the decoder reads (`conv5`).
    pub decoder_layer: String,
    /// Random horizontal flips (true).
    pub flip: bool,
}

impl InpaintingSetup {
    fn decode(input: &TaskInput<'_>) -> Result<InpaintingSetup, ConfigError> {
        let file = input.table.decode_flattened::<InpaintingFile>(input.prefix, input.known)?;
        let size = input.image_size.unwrap_or(crate::models::default_image_size(input.arch) as usize);
        let center = match file.mask.as_deref() {
            None | Some("center") => true,
            Some("blocks") => false,
            Some(other) => {
                let shown: String = other.chars().take(40).flat_map(char::escape_debug).collect();
                return Err(input.error("mask", format!("expected \"center\" or \"blocks\", found \"{shown}\"")));
            }
        };
        let mask_size = file.mask_size.unwrap_or(if center { size / 2 } else { size / 4 });
        if mask_size == 0 || mask_size >= size {
            return Err(input.error(
                "mask_size",
                format!(
                    "expected a side of 1 to {} pixels (less than the image's {size}), found {mask_size}",
                    size.saturating_sub(1)
                ),
            ));
        }
        let outside_weight = file.outside_weight.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&outside_weight) {
            return Err(input.error("outside_weight", format!("expected a weight in [0, 1], found {outside_weight}")));
        }
        input.net_params(size).validate(input.table, input.prefix)?;
        let decoder_layer = decoder_layer(input, size, file.decoder_layer)?;
        Ok(InpaintingSetup {
            image_size: size,
            center,
            mask_size,
            outside_weight,
            decoder_layer,
            flip: file.flip.unwrap_or(true),
        })
    }
}

impl Task for InpaintingSetup {
    fn def(&self) -> &'static TaskDef {
        &INPAINTING
    }

    fn image_size(&self) -> usize {
        self.image_size
    }

    fn key_fields(&self) -> Map<String, Value> {
        let mut key = Map::new();
        key.insert("mask".into(), json!(if self.center { "center" } else { "blocks" }));
        key.insert("mask_size".into(), json!(self.mask_size));
        key.insert("outside_weight".into(), json!(self.outside_weight));
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
        let mask = MaskConfig {
            kind: if self.center { MaskKind::Center } else { MaskKind::Blocks },
            size: self.mask_size,
        };
        let fill = mean_colour(&job.set)?;
        let maker = Inpaint {
            set: job.set.clone(),
            mask,
            fill,
            flip: self.flip,
        };
        let objective = InpaintLoss {
            outside_weight: self.outside_weight,
            metric: RegionMetric::Psnr,
        };
        let config = job.net.config();
        let mut vs = tch::nn::VarStore::new(ctx.device);
        let (net, head) = DenseNet::new(&vs.root(), &config, &self.decoder_layer, self.image_size as i64, 3)
            .map_err(|e| StageError::Input(e.to_string()))?;
        if job.init {
            let (copied, total) = init_matching(&vs, &config, ctx.stage_input("init")?)?;
            (ctx.note)(format!("initialised {copied} of {total} variables from the init model"));
        }
        let reporter = EpochReporter::new(ctx, job.cfg.epochs, objective.metric());
        // The decoder predicts the difference from the mean colour: an untrained network
        // starts near the trivial prediction instead of black.
        let colour = tch::Tensor::from_slice(&fill).view([1, 3, 1, 1]).to_device(ctx.device);
        let forward = |x: &tch::Tensor, train: bool| net.forward(x, train) + &colour;
        let history = train(
            &mut vs,
            &forward,
            Arc::new(maker),
            &objective,
            &job.cfg,
            ctx.checkpoint_dir,
            &reporter,
        )?;
        // Held-out images unmirrored, their masks (blocks) drawn from the held-out seed.
        let heldout_maker = Inpaint {
            set: job.aside.clone(),
            mask,
            fill,
            flip: false,
        };
        // The trivial prediction: the mean colour everywhere.
        let trivial = |x: &tch::Tensor, _: bool| colour.expand(x.size(), false);
        let mse = InpaintLoss {
            metric: RegionMetric::Mse,
            ..objective
        };
        let measure = |o: &InpaintLoss, f: &dyn Fn(&tch::Tensor, bool) -> tch::Tensor| {
            o.evaluate(f, &heldout_maker, job.cfg.batch_size, job.eval_seed, ctx.device)
        };
        let (heldout, baseline, extra) = if job.aside.n > 0 {
            let extra = vec![
                ("pretext_heldout_mse", measure(&mse, &forward)?),
                ("pretext_heldout_mse_trivial", measure(&mse, &trivial)?),
            ];
            (Some(measure(&objective, &forward)?), Some(measure(&objective, &trivial)?), extra)
        } else {
            (None, None, Vec::new())
        };
        vs.save(ctx.path("model.safetensors")).map_err(StageError::Torch)?;
        let meta = ModelMeta {
            config,
            classes: 0,
            jigsaw: None,
            projection: None,
            decoder: Some(head),
            per_image_norm: false,
            lightness_input: false,
            fit: Default::default(),
        };
        artefacts::write_json(&ctx.path("model.json"), &serde_json::to_value(&meta).unwrap_or_default())?;
        Ok(Trained {
            history,
            metric: objective.metric(),
            classes: None,
            baseline,
            heldout,
            extra,
        })
    }
}
