//! `train`: trains an architecture on the pseudo-labels of an `assign` stage (over the
//! images it labeled) or on the true labels of a labeled split (`labels = "truth"`).
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model_io::{LoadedModel, ModelMeta};
use super::network_params::NetworkParams;
use super::{Outcome, RunCtx, StageError};
use crate::config::{ConfigError, Node};
use crate::data::open_split;
use crate::store::artefacts;
use crate::train::batches::{Augment, ImageSet};
use crate::train::optim::{OptimizerConfig, OptimizerKind};
use crate::train::schedule::Schedule;
use crate::train::trainer::{train, EpochStats, TrainConfig, TrainObserver};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainParams {
    #[serde(flatten)]
    pub net: NetworkParams,
    /// `dataset:split` of the images; with an assign stage, defaults to its images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// `"truth"` or an assign stage.
    pub labels: String,
    /// A model stage to start from (matching variables are copied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default = "d_momentum")]
    pub momentum: f64,
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
    /// `sgd` or `adam`.
    #[serde(default = "d_opt")]
    pub optimizer: String,
    /// `cosine`, `step` or `constant`.
    #[serde(default = "d_schedule")]
    pub schedule: String,
    /// Step schedule: epochs between decays, and the factor.
    #[serde(default = "d_every")]
    pub step_every: usize,
    #[serde(default = "d_gamma")]
    pub step_gamma: f64,
    /// Random translation (zero-padded crop) in pixels.
    #[serde(default = "d_pad")]
    pub crop_padding: usize,
    #[serde(default = "d_true")]
    pub flip: bool,
}

fn d_epochs() -> usize {
    10
}
fn d_batch() -> usize {
    128
}
fn d_lr() -> f64 {
    0.05
}
fn d_momentum() -> f64 {
    0.9
}
fn d_wd() -> f64 {
    5e-4
}
fn d_opt() -> String {
    "sgd".into()
}
fn d_schedule() -> String {
    "cosine".into()
}
fn d_every() -> usize {
    30
}
fn d_gamma() -> f64 {
    0.1
}
fn d_pad() -> usize {
    4
}
fn d_true() -> bool {
    true
}

impl TrainParams {
    pub fn uses_true_labels(&self) -> bool {
        self.labels == "truth"
    }

    pub(super) fn validate(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        self.net.validate(table, prefix)?;
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        if self.uses_true_labels() && self.data.is_none() {
            return Err(table.error(
                prefix,
                "missing required key `data`: training on labels = \"truth\" needs a labeled `dataset:split`",
            ));
        }
        if self.epochs == 0 || self.epochs > 100_000 {
            return err("epochs", format!("expected 1..=100000, found {}", self.epochs));
        }
        if self.batch_size == 0 || self.batch_size > 1 << 20 {
            return err("batch_size", format!("expected 1..=1048576, found {}", self.batch_size));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err("lr", format!("expected a positive learning rate, found {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return err("momentum", format!("expected 0 <= momentum < 1, found {}", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return err("weight_decay", format!("expected >= 0, found {}", self.weight_decay));
        }
        if !matches!(self.optimizer.as_str(), "sgd" | "adam") {
            return err("optimizer", format!("expected \"sgd\" or \"adam\", found \"{}\"", self.optimizer));
        }
        if !matches!(self.schedule.as_str(), "cosine" | "step" | "constant") {
            return err(
                "schedule",
                format!("expected \"cosine\", \"step\" or \"constant\", found \"{}\"", self.schedule),
            );
        }
        if self.step_every == 0 {
            return err("step_every", "expected at least 1 epoch".into());
        }
        if self.crop_padding > self.net.image_size.unwrap_or(32) / 2 {
            return err(
                "crop_padding",
                format!("expected at most half the image size, found {}", self.crop_padding),
            );
        }
        Ok(self)
    }

    fn config(&self, seed: u64) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            schedule: match self.schedule.as_str() {
                "step" => Schedule::Step {
                    every: self.step_every,
                    gamma: self.step_gamma,
                },
                "constant" => Schedule::Constant,
                _ => Schedule::Cosine,
            },
            optimizer: OptimizerConfig {
                kind: if self.optimizer == "adam" {
                    OptimizerKind::Adam
                } else {
                    OptimizerKind::Sgd
                },
                momentum: self.momentum,
                weight_decay: self.weight_decay,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            augment: Augment {
                crop_padding: self.crop_padding,
                flip: self.flip,
            },
            seed,
        }
    }

    pub fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let (spec, split) = ctx.data_input("data")?;
        let source = open_split(spec, split)?;
        let (labels, classes): (Vec<i64>, i64) = if self.uses_true_labels() {
            let mut v = Vec::with_capacity(source.len());
            for i in 0..source.len() {
                let l = source
                    .label(i)
                    .ok_or_else(|| StageError::Input(format!("{}: no true label (the split is unlabeled)", source.describe(i))))?;
                v.push(l as i64);
            }
            (v, source.classes().len() as i64)
        } else {
            let dir = ctx.stage_input("labels")?;
            let v: Vec<i64> = artefacts::read_tensor(&dir.join("labels.npy"))?.try_into()?;
            let index: serde_json::Value = artefacts::read_json(&dir.join("index.json"))?;
            let k = index["k"].as_i64().unwrap_or_else(|| v.iter().max().map(|m| m + 1).unwrap_or(1));
            (v, k)
        };
        if labels.len() != source.len() {
            return Err(StageError::Input(format!(
                "`{}:{split}` has {} images but {} labels were given",
                spec.name,
                source.len(),
                labels.len()
            )));
        }
        tch::manual_seed((ctx.seed & i64::MAX as u64) as i64);
        let mut model = LoadedModel::new(
            ModelMeta {
                config: self.net.config(),
                classes,
            },
            ctx.device,
        )?;
        if self.init.is_some() {
            let other = LoadedModel::load(ctx.stage_input("init")?, ctx.device)?;
            let n = model.init_from(&other)?;
            tracing::info!("initialised {n} variables from the init model");
        }
        let set = Arc::new(ImageSet::load(source.as_ref(), model.image_size(), &|_, _| {})?);
        let cfg = self.config(ctx.seed);
        let observer = Observer {
            progress: ctx.progress,
            epochs: self.epochs,
            note: ctx.note,
        };
        let net = &model.net;
        let forward = |x: &tch::Tensor, train: bool| net.forward(x, train);
        let history = train(&mut model.vs, &forward, set, &labels, &cfg, ctx.checkpoint_dir, &observer)
            .map_err(|e| StageError::Failed(e.to_string()))?;
        model.save(ctx.workdir)?;
        // No timings here: an artefact depends only on the key input (timings are in the
        // manifest and the log), so that `ktlab verify` finds training deterministic.
        let mut csv = String::from("epoch,loss,accuracy,lr\n");
        for h in &history {
            csv.push_str(&format!("{},{},{},{}\n", h.epoch, h.loss, h.accuracy, h.lr));
        }
        artefacts::write_text(&ctx.path("epochs.csv"), &csv)?;
        let last = history.last().cloned().unwrap_or(EpochStats {
            epoch: 0,
            loss: f64::NAN,
            accuracy: 0.0,
            lr: 0.0,
            seconds: 0.0,
        });
        Ok(Outcome {
            metrics: Vec::new(),
            summary: format!(
                "{} epochs on {} images, {classes} classes: loss {:.4}, accuracy {:.3}",
                self.epochs,
                labels.len(),
                last.loss,
                last.accuracy
            ),
        })
    }
}

struct Observer<'a> {
    progress: &'a (dyn Fn(u64, u64) + Sync),
    epochs: usize,
    note: &'a (dyn Fn(String) + Sync),
}

impl TrainObserver for Observer<'_> {
    fn resumed(&self, epoch: usize) {
        (self.note)(format!("resuming from the checkpoint of epoch {epoch}"));
    }
    fn batch(&self, epoch: usize, done: usize, total: usize) {
        (self.progress)((epoch * total + done) as u64, (self.epochs * total) as u64);
    }
    fn epoch(&self, s: &EpochStats) {
        (self.note)(format!(
            "epoch {}/{}: loss {:.4}, accuracy {:.3}, lr {:.4}, {:.1}s",
            s.epoch, self.epochs, s.loss, s.accuracy, s.lr, s.seconds
        ));
    }
}
