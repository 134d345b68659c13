//! The training options shared by `train` and `pretext` (epochs, batch size, optimizer,
//! learning-rate schedule), and the observer that reports epochs to the progress display.
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Node};
use crate::train::kinds::{OptimizerKind, Precision};
#[cfg(feature = "torch")]
use {
    super::artefacts,
    super::{EpochFigures, RunCtx, StageError},
    crate::train::optim::OptimizerConfig,
    crate::train::schedule::Schedule,
    crate::train::trainer::{EpochStats, TrainConfig, TrainObserver},
};

crate::config::choice! {
    /// The learning-rate schedule by name (its step options are beside it).
    pub enum ScheduleKind("schedule") {
        Cosine = "cosine",
        Step = "step",
        Constant = "constant",
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SolverParams {
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
    pub optimizer: OptimizerKind,
    /// `cosine`, `step` or `constant`.
    #[serde(default = "d_schedule")]
    pub schedule: ScheduleKind,
    /// Step schedule: epochs between decays, and the factor.
    #[serde(default = "d_every")]
    pub step_every: usize,
    #[serde(default = "d_gamma")]
    pub step_gamma: f64,
    /// `fp32`, or mixed precision `bf16` / `fp16` (autocast around the forward pass and
    /// the loss; `fp16` with loss scaling). Keyed only when not `fp32`.
    #[serde(default, skip_serializing_if = "Precision::is_fp32")]
    pub precision: Precision,
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
fn d_opt() -> OptimizerKind {
    OptimizerKind::Sgd
}
fn d_schedule() -> ScheduleKind {
    ScheduleKind::Cosine
}
fn d_every() -> usize {
    30
}
fn d_gamma() -> f64 {
    0.1
}

impl SolverParams {
    pub fn validate(&self, table: &Node, prefix: &str) -> Result<(), ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
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
        if self.step_every == 0 {
            return err("step_every", "expected at least 1 epoch".into());
        }
        if !(self.step_gamma.is_finite() && self.step_gamma > 0.0) {
            return err("step_gamma", format!("expected a positive factor, found {}", self.step_gamma));
        }
        Ok(())
    }

    #[cfg(feature = "torch")]
    pub fn config(&self, seed: u64) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            schedule: match self.schedule {
                ScheduleKind::Step => Schedule::Step {
                    every: self.step_every,
                    gamma: self.step_gamma,
                },
                ScheduleKind::Constant => Schedule::Constant,
                ScheduleKind::Cosine => Schedule::Cosine,
            },
            optimizer: OptimizerConfig {
                kind: self.optimizer,
                momentum: self.momentum,
                weight_decay: self.weight_decay,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            seed,
            precision: self.precision,
        }
    }
}

#[cfg(feature = "torch")]
/// Reports batches to the progress bar and every epoch's figures as an epoch event.
pub struct EpochReporter<'a> {
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
    pub note: &'a (dyn Fn(String) + Sync),
    pub epoch: &'a (dyn Fn(EpochFigures) + Sync),
    pub epochs: usize,
    /// What the accuracy measures, e.g. "accuracy" or "permutation accuracy".
    pub accuracy_name: &'static str,
    /// The accuracy of guessing, shown beside it (pretext tasks).
    pub chance: Option<f64>,
}

#[cfg(feature = "torch")]
impl<'a> EpochReporter<'a> {
    pub fn new(ctx: &'a RunCtx, epochs: usize) -> EpochReporter<'a> {
        EpochReporter {
            progress: ctx.progress,
            note: ctx.note,
            epoch: ctx.epoch,
            epochs,
            accuracy_name: "accuracy",
            chance: None,
        }
    }
}

#[cfg(feature = "torch")]
impl TrainObserver for EpochReporter<'_> {
    fn resumed(&self, epoch: usize) {
        (self.note)(format!("resuming from the checkpoint of epoch {epoch}"));
    }
    fn batch(&self, epoch: usize, done: usize, total: usize) {
        (self.progress)((epoch * total + done) as u64, (self.epochs * total) as u64);
    }
    fn epoch(&self, s: &EpochStats) {
        (self.epoch)(EpochFigures {
            epoch: s.epoch,
            epochs: self.epochs,
            loss: s.loss,
            accuracy: s.accuracy,
            accuracy_name: self.accuracy_name,
            chance: self.chance,
            lr: s.lr,
            seconds: s.seconds,
        });
    }
}

#[cfg(feature = "torch")]
/// `epochs.csv`: one row per epoch. No timings: an artefact depends only on the key
/// input (timings are in the manifest and the log), so that `ktlab verify` finds
/// training deterministic.
pub fn write_history(ctx: &RunCtx, history: &[EpochStats]) -> Result<(), StageError> {
    let mut csv = String::from("epoch,loss,accuracy,lr\n");
    for h in history {
        csv.push_str(&format!("{},{},{},{}\n", h.epoch, h.loss, h.accuracy, h.lr));
    }
    artefacts::write_text(&ctx.path("epochs.csv"), &csv)
}
