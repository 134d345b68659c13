//! `mlp-probe`: the paper's non-linear classifier on frozen features. For each listed layer,
//! a small multilayer perceptron (`hidden` fully connected layers, each with a ReLU and
//! `dropout`) on the same pooled features as `linear-probe`, with its mini-batch Adam
//! schedule, its choice of the weight decay on a labeled `val` split and its rows (`top1`,
//! `top5`, the chosen `weight_decay`).
use serde::{Deserialize, Serialize};

use super::labels::plan_class_map;
use super::linear_probe::validate_val;
#[cfg(feature = "torch")]
use super::linear_probe::{probe_layers, Pooled};
use super::probe_data::{self, check_layers_and_splits};
use super::{InputSpec, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
#[cfg(feature = "torch")]
use super::{Outcome, RunCtx, StageError};
use crate::config::{ConfigError, Node};
#[cfg(feature = "torch")]
use crate::eval::mlp_probe::{MlpConfig, MlpProbe};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MlpProbeParams {
    /// A model stage.
    pub model: String,
    pub layers: Vec<String>,
    /// Labeled `dataset:split` to fit on.
    pub train: String,
    /// Labeled `dataset:split` to score on.
    pub test: String,
    /// Units of each hidden layer (one layer of 512).
    #[serde(default = "d_hidden")]
    pub hidden: Vec<i64>,
    /// Probability that a hidden unit is dropped in training (0.5).
    #[serde(default = "d_dropout")]
    pub dropout: f64,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// As `linear-probe`'s: filled in at planning, keyed only when the class lists differ.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub class_map: Option<Vec<usize>>,
    /// Target size of each pooled layer (as `linear-probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooled_dim: Option<usize>,
    /// A labeled `dataset:split`, disjoint from `test`, on which the weight decay is chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val: Option<String>,
    /// With `val`: the weight decays tried (default 1e-6 .. 1e-1, one per decade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decays: Option<Vec<f64>>,
    /// Read the images at this size instead of the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// The element type of the feature files the probe writes and reads: `float16` (half
    /// the disk and page cache) or `float32` (the default; not keyed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
}

fn d_hidden() -> Vec<i64> {
    vec![512]
}
fn d_dropout() -> f64 {
    0.5
}
// The linear probe's schedule (its own defaults, not shared: they are that stage's keys).
fn d_epochs() -> usize {
    30
}
fn d_lr() -> f64 {
    1e-3
}
fn d_wd() -> f64 {
    1e-4
}
fn d_batch() -> usize {
    256
}

impl MlpProbeParams {
    fn validate(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        check_layers_and_splits(&self.layers, &self.train, &self.test, table, prefix)?;
        probe_data::check_image_size(self.image_size, table, prefix)?;
        probe_data::check_dtype(&mut self.dtype, table, prefix)?;
        if self.hidden.len() > 8 || self.hidden.iter().any(|&h| !(1..=65_536).contains(&h)) {
            return err(
                "hidden",
                format!("expected at most 8 hidden layers of 1..=65536 units, found {:?}", self.hidden),
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return err("dropout", format!("expected a probability in [0, 1), found {}", self.dropout));
        }
        if self.epochs == 0 || self.epochs > 100_000 {
            return err("epochs", format!("expected 1..=100000, found {}", self.epochs));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err("lr", format!("expected a positive learning rate, found {}", self.lr));
        }
        if self.batch_size == 0 {
            return err("batch_size", "expected at least 1".into());
        }
        if self.pooled_dim == Some(0) {
            return err("pooled_dim", "expected a positive size".into());
        }
        validate_val(
            self.val.as_deref(),
            (&self.train, &self.test),
            self.weight_decay,
            &mut self.weight_decays,
            table,
            prefix,
        )?;
        Ok(self)
    }
}

impl Stage for MlpProbeParams {
    const NAME: &'static str = "mlp-probe";
    const VERSION: u32 = 1;
    const OUTPUT: OutputKind = OutputKind::Metrics;
    const METRICS: &'static [&'static str] = &["top1", "top5", "weight_decay"];

    /// `weight_decay` (the chosen value) only when it is chosen on `val`.
    fn metrics(&self) -> Vec<&'static str> {
        match self.val {
            Some(_) => Self::METRICS.to_vec(),
            None => vec!["top1", "top5"],
        }
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table.decode::<MlpProbeParams>(prefix)?.validate(table, prefix)
    }
    /// The classifier's initial weights, dropout and batch order are drawn.
    fn stochastic(&self) -> bool {
        true
    }
    fn device_dependent(&self) -> bool {
        true
    }
    fn inputs(&self) -> Vec<InputSpec> {
        let mut inputs = probe_data::model_and_splits(&self.model, &self.train, &self.test);
        if let Some(val) = &self.val {
            inputs.push(super::params::data_ref("val", val));
        }
        inputs
    }
    fn networks(&self) -> Networks<'_> {
        probe_data::reads_layers(&self.model, &self.layers)
    }
    fn rows(&self) -> Rows<'_> {
        Rows::None
    }
    fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError> {
        self.class_map = plan_class_map(upstream, &self.train, &self.test, "test")?;
        if let Some(val) = &self.val {
            plan_class_map(upstream, &self.train, val, "val")?;
        }
        probe_data::check_image_size_fits(self.image_size, upstream.network(&self.model))
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let grid = self.weight_decays.clone().unwrap_or_default();
        let choice = self.val.is_some().then_some(grid.as_slice());
        let pooled = Pooled {
            train: &self.train,
            layers: &self.layers,
            pooled_dim: self.pooled_dim,
            image_size: self.image_size,
            dtype: probe_data::dtype_of(&self.dtype),
        };
        let fit = |x: &tch::Tensor, y: &tch::Tensor, classes: i64, wd: f64, seed: u64, _: Option<&MlpProbe>| {
            let cfg = MlpConfig {
                hidden: self.hidden.clone(),
                dropout: self.dropout,
                epochs: self.epochs,
                lr: self.lr,
                weight_decay: wd,
                batch_size: self.batch_size,
            };
            MlpProbe::fit(x, y, classes, &cfg, seed, ctx.device)
        };
        probe_layers(
            ctx,
            &pooled,
            self.weight_decay,
            choice,
            &fit,
            &|probe, x, y| probe.score(x, y),
            &MlpProbe::clone_probe,
        )
    }
}
