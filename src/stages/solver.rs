//! The training options shared by `train` and `pretext` (epochs, batch size, optimizer,
//! learning-rate schedule), and the observer that reports epochs to the progress display
//! and writes the run's TensorBoard event files.
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Node};
use crate::train::kinds::{OptimizerKind, Precision};
#[cfg(feature = "torch")]
use {
    super::artefacts,
    super::{EpochFigures, RunCtx, StageError},
    crate::train::objective::Metric,
    crate::train::optim::OptimizerConfig,
    crate::train::schedule::Schedule,
    crate::train::tensorboard::EventWriter,
    crate::train::trainer::{EpochStats, Start, TrainConfig, TrainObserver},
    std::cell::RefCell,
    std::path::Path,
};

/// At most this many points of the loss every N steps per run in the TensorBoard event
/// files: N is the run's steps divided by this, rounded up (1 for runs of fewer steps).
#[cfg(feature = "torch")]
pub const LOSS_POINTS_PER_RUN: usize = 200;

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
/// Reports batches to the progress bar and every epoch's figures as an epoch event, and
/// writes them, with the loss every few steps, as TensorBoard scalars (`epoch/loss`,
/// `epoch/<accuracy name>`, `epoch/lr` at each epoch's last step; `step/loss`, the mean
/// loss of the steps since the last point, [`LOSS_POINTS_PER_RUN`] points at most).
pub struct EpochReporter<'a> {
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
    pub note: &'a (dyn Fn(String) + Sync),
    pub epoch: &'a (dyn Fn(EpochFigures) + Sync),
    pub epochs: usize,
    /// The objective's metric: its label is shown with each epoch ("accuracy",
    /// "permutation accuracy", "retrieval top-1") and names its TensorBoard scalar.
    pub metric: Metric,
    /// The accuracy of guessing, shown beside it (pretext tasks).
    pub chance: Option<f64>,
    /// Where the TensorBoard event files go (none: not written).
    tensorboard_dir: Option<&'a Path>,
    /// The open event file and the steps per epoch, from the start of training until a
    /// write fails.
    board: RefCell<Option<(EventWriter, usize)>>,
}

#[cfg(feature = "torch")]
impl<'a> EpochReporter<'a> {
    pub fn new(ctx: &'a RunCtx, epochs: usize, metric: Metric) -> EpochReporter<'a> {
        EpochReporter {
            progress: ctx.progress,
            note: ctx.note,
            epoch: ctx.epoch,
            epochs,
            metric,
            chance: None,
            tensorboard_dir: ctx.tensorboard_dir,
            board: RefCell::new(None),
        }
    }

    /// Scalars at `step` into the event file; a failure is said once, and no more events
    /// are written (they are not artefacts: the training goes on).
    fn scalars(&self, step: usize, values: &[(&str, f64)]) {
        let mut board = self.board.borrow_mut();
        let Some((writer, _)) = board.as_mut() else { return };
        if let Err(e) = writer.scalars(step as i64, values) {
            let path = writer.path().display().to_string();
            *board = None;
            self.events_failed(&path, &e);
        }
    }

    fn events_failed(&self, path: &str, e: &std::io::Error) {
        tracing::warn!("TensorBoard event file {path}: {e}; no more events are written for this stage");
        (self.note)(format!(
            "cannot write TensorBoard events to {path} ({e}); training goes on without them"
        ));
    }
}

#[cfg(feature = "torch")]
impl TrainObserver for EpochReporter<'_> {
    /// Opens a new event file, which begins with a session start at the run's first step.
    /// A run that starts over removes the files of an earlier, killed attempt; a resumed one
    /// keeps them, and its start, at the step after its checkpoint, makes TensorBoard drop
    /// the killed attempt's later points: one curve.
    fn started(&self, start: &Start) {
        let message = match start.epoch {
            0 => "started".to_string(),
            e => format!("resuming from the checkpoint of epoch {e}"),
        };
        if start.epoch > 0 {
            (self.note)(message.clone());
        }
        let Some(dir) = self.tensorboard_dir else { return };
        let first_step = start.epoch * start.batches_per_epoch + 1;
        let opened = EventWriter::create(dir, start.epoch == 0).and_then(|mut w| {
            w.start(first_step as i64, &message)?;
            Ok(w)
        });
        match opened {
            Ok(w) => *self.board.borrow_mut() = Some((w, start.batches_per_epoch)),
            Err(e) => self.events_failed(&dir.display().to_string(), &e),
        }
    }
    fn batch(&self, epoch: usize, done: usize, total: usize) {
        (self.progress)((epoch * total + done) as u64, (self.epochs * total) as u64);
    }
    fn loss_every(&self, steps: usize) -> Option<usize> {
        self.board.borrow().is_some().then(|| steps.div_ceil(LOSS_POINTS_PER_RUN).max(1))
    }
    fn loss(&self, step: usize, loss: f64) {
        self.scalars(step, &[("step/loss", loss)]);
    }
    fn epoch(&self, s: &EpochStats) {
        (self.epoch)(EpochFigures {
            epoch: s.epoch,
            epochs: self.epochs,
            loss: s.loss,
            accuracy: s.metric,
            accuracy_name: self.metric.label,
            chance: self.chance,
            lr: s.lr,
            seconds: s.seconds,
        });
        let per_epoch = self.board.borrow().as_ref().map(|(_, n)| *n);
        if let Some(per_epoch) = per_epoch {
            let metric = format!("epoch/{}", self.metric.label.replace(' ', "_"));
            self.scalars(
                s.epoch * per_epoch,
                &[("epoch/loss", s.loss), (&metric, s.metric), ("epoch/lr", s.lr)],
            );
        }
    }
}

#[cfg(feature = "torch")]
/// `epochs.csv`: one row per epoch, the metric's column named by its key (`accuracy`,
/// `retrieval_top1`). No timings: an artefact depends only on the key
/// input (timings are in the manifest and the log), so that `ktlab verify` finds
/// training deterministic.
pub fn write_history(ctx: &RunCtx, history: &[EpochStats], metric: Metric) -> Result<(), StageError> {
    let mut csv = format!("epoch,loss,{},lr\n", metric.key);
    for h in history {
        csv.push_str(&format!("{},{},{},{}\n", h.epoch, h.loss, h.metric, h.lr));
    }
    artefacts::write_text(&ctx.path("epochs.csv"), &csv)
}
