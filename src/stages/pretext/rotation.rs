//! `task = "rotation"`: which of four rotations (0, 90, 180, 270 degrees) an image shows
//! (Gidaris et al. 2018), a four-way classifier on the whole network.
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::super::crop::{CropKind, CropParams};
use super::task::{Task, TaskDef, TaskInput};
use crate::config::ConfigError;
#[cfg(feature = "torch")]
use {
    super::super::model_io::{LoadedModel, ModelMeta},
    super::super::solver::EpochReporter,
    super::super::StageError,
    super::task::{Job, Trained},
    crate::pretext::rotation::Rotation,
    crate::train::batches::Augment,
    crate::train::objective::{Classification, Objective},
    crate::train::trainer::train,
    std::sync::Arc,
};

pub const ROTATION: TaskDef = TaskDef {
    name: "rotation",
    family: "rotation",
    keys: &["crop_padding", "flip", "crop", "crop_scale", "crop_ratio"],
    metrics: &["pretext_heldout_accuracy", "pretext_train_accuracy"],
    // The four rotations of each image.
    sample_macs: |_, cfg| Some(4.0 * cfg.macs_per_image()?),
    decode: |input| Ok(Box::new(RotationSetup::decode(input)?)),
};

/// The rotation keys as the file writes them.
#[derive(Deserialize)]
struct RotationFile {
    crop_padding: Option<usize>,
    flip: Option<bool>,
    #[serde(flatten)]
    crop: CropParams,
}

#[derive(Clone, Debug)]
pub struct RotationSetup {
    /// The network's input side (224, or 32 for `-small` archs).
    pub image_size: usize,
    /// Random translation in pixels (4 for `-small` archs, else 0).
    pub crop_padding: usize,
    /// Random horizontal flips (true).
    pub flip: bool,
    /// `crop = "random-resized"`: each image a random resized crop of its decoded original
    /// (ImageNet's training crop, as `train` takes it), the model then reading images by the
    /// centre crop; keyed only when given.
    pub crop: CropParams,
}

impl RotationSetup {
    fn decode(input: &TaskInput<'_>) -> Result<RotationSetup, ConfigError> {
        let mut file = input.table.decode_flattened::<RotationFile>(input.prefix, input.known)?;
        file.crop.validate(input.table, input.prefix)?;
        let size = input.image_size.unwrap_or(crate::models::default_image_size(input.arch) as usize);
        let resized = file.crop.crop == CropKind::RandomResized;
        if resized && file.crop_padding.is_some() {
            return Err(input.error(
                "crop_padding",
                "`crop_padding` applies to crop = \"pad\" (a random resized crop is not padded)".into(),
            ));
        }
        let pad = file.crop_padding.unwrap_or(if input.arch.is_small() && !resized { 4 } else { 0 });
        if pad > size / 2 {
            return Err(input.error("crop_padding", format!("expected at most half the image size, found {pad}")));
        }
        input.net_params(size).validate(input.table, input.prefix)?;
        Ok(RotationSetup {
            image_size: size,
            crop_padding: pad,
            flip: file.flip.unwrap_or(true),
            crop: file.crop,
        })
    }
}

impl Task for RotationSetup {
    fn def(&self) -> &'static TaskDef {
        &ROTATION
    }

    fn image_size(&self) -> usize {
        self.image_size
    }

    fn reads_originals(&self) -> bool {
        self.crop.crop == CropKind::RandomResized
    }

    fn key_fields(&self) -> Map<String, Value> {
        let mut key = Map::new();
        key.insert("crop_padding".into(), json!(self.crop_padding));
        key.insert("flip".into(), json!(self.flip));
        // Only a random resized crop enters the key (the pad default keeps every key).
        if let Ok(Value::Object(crop)) = serde_json::to_value(&self.crop) {
            key.extend(crop);
        }
        key
    }

    fn clone_box(&self) -> Box<dyn Task> {
        Box::new(self.clone())
    }

    #[cfg(feature = "torch")]
    fn train(&self, job: &Job<'_>) -> Result<Trained, StageError> {
        let ctx = job.ctx;
        let mut model = LoadedModel::new(
            ModelMeta {
                config: job.net.config(),
                classes: 4,
                jigsaw: None,
                projection: None,
                decoder: None,
                per_image_norm: false,
                lightness_input: false,
                fit: self.crop.eval_fit(self.image_size),
            },
            ctx.device,
        )?;
        if job.init {
            let other = LoadedModel::load(ctx.stage_input("init")?, ctx.device)?;
            (ctx.note)(model.init_from(&other)?.to_string());
        }
        let maker = Rotation {
            set: job.set.clone(),
            augment: Augment {
                crop_padding: self.crop_padding,
                flip: self.flip,
                resized_crop: self.crop.resized_crop(),
            },
        };
        // Held-out images as the model reads images (after random resized crops: the centre
        // crop of the original), at all four angles.
        let aside = match job.aside.refit(self.crop.eval_fit(self.image_size)) {
            Some(refit) => Arc::new(refit),
            None => job.aside.clone(),
        };
        let heldout_maker = Rotation {
            set: aside,
            augment: Augment {
                crop_padding: 0,
                flip: false,
                resized_crop: None,
            },
        };
        let objective = Classification {
            label: "rotation accuracy",
        };
        let mut reporter = EpochReporter::new(ctx, job.cfg.epochs, objective.metric());
        reporter.chance = Some(0.25);
        let net = &model.net;
        let forward = |x: &tch::Tensor, train: bool| net.forward(x, train);
        let history = train(
            &mut model.vs,
            &forward,
            Arc::new(maker),
            &objective,
            &job.cfg,
            ctx.checkpoint_dir,
            &reporter,
        )?;
        let heldout = (job.aside.n > 0)
            .then(|| objective.evaluate(&forward, &heldout_maker, job.cfg.batch_size, job.eval_seed, ctx.device))
            .transpose()?;
        model.save(ctx.workdir)?;
        Ok(Trained {
            history,
            metric: objective.metric(),
            classes: Some(4),
            baseline: Some(0.25),
            heldout,
            extra: Vec::new(),
        })
    }
}
