//! The training loop: epochs of shuffled, augmented batches; a checkpoint at the end of
//! every epoch; resumption from the last checkpoint, giving the same final weights as an
//! uninterrupted run on CPU.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::amp::{Autocast, LossScaler, Precision};
use super::batches::{epoch_batches, SampleMaker};
use super::objective::{Objective, Target};
use super::optim::{Optimizer, OptimizerConfig};
use super::schedule::Schedule;
use crate::data::DataError;
use crate::seed;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub schedule: Schedule,
    pub optimizer: OptimizerConfig,
    pub seed: u64,
    /// The forward pass's and loss's arithmetic (mixed precision: `amp.rs`).
    #[serde(default)]
    pub precision: Precision,
}

/// One epoch's figures (also a row of `epochs.csv`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    /// The objective's metric over the epoch's targets (its accuracy for classification);
    /// kept as `accuracy` in checkpoints.
    #[serde(rename = "accuracy")]
    pub metric: f64,
    pub lr: f64,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("training diverged at epoch {epoch}: loss is {loss}")]
    Diverged { epoch: usize, loss: f64 },
    #[error("mixed precision: {0}")]
    Precision(String),
    #[error("the samples carry {samples:?} targets but the objective expects {objective:?}")]
    Target { samples: Target, objective: Target },
    /// An image that could not be read while its batch was made (bad input).
    #[error(transparent)]
    Data(#[from] DataError),
}

/// Where one call of [`train`] begins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Start {
    /// Epochs already done: 0, or the epoch of the checkpoint it resumes.
    pub epoch: usize,
    /// Epochs of the whole training.
    pub epochs: usize,
    /// Optimiser steps (batches) per epoch: step `s` of the run is batch `s - epoch *
    /// batches_per_epoch` of its epoch, counted from 1.
    pub batches_per_epoch: usize,
}

/// What the loop reports as it goes. Steps count the run's optimiser steps from 1; epoch
/// `e` ends at step `e * batches_per_epoch`.
pub trait TrainObserver {
    /// Before the first epoch it runs.
    fn started(&self, _start: &Start) {}
    fn batch(&self, _epoch: usize, _done: usize, _total: usize) {}
    /// Every how many steps of a run of `steps` it wants the mean loss of the steps since
    /// the last report in the same epoch (`None`, the default: never; each report reads
    /// the loss from the device once).
    fn loss_every(&self, _steps: usize) -> Option<usize> {
        None
    }
    fn loss(&self, _step: usize, _loss: f64) {}
    /// A finished epoch, before its checkpoint is written: a run killed in between runs
    /// and reports the epoch again when it resumes.
    fn epoch(&self, _stats: &EpochStats) {}
}

/// Trains the variables of `vs` through `forward(inputs, train) -> outputs` on the samples
/// of `maker` (supervised images, or a pretext task's) for `objective` (its loss; its
/// metric is each epoch's figure). Checkpoints go to `ckpt_dir` (created if needed); an
/// existing checkpoint there is resumed from.
#[allow(clippy::too_many_arguments)]
pub fn train(
    vs: &mut nn::VarStore,
    forward: &dyn Fn(&Tensor, bool) -> Tensor,
    maker: Arc<dyn SampleMaker>,
    objective: &dyn Objective,
    cfg: &TrainConfig,
    ckpt_dir: &Path,
    observer: &dyn TrainObserver,
) -> Result<Vec<EpochStats>, TrainError> {
    if maker.target() != objective.target() {
        return Err(TrainError::Target {
            samples: maker.target(),
            objective: objective.target(),
        });
    }
    let device = vs.device();
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut opt = Optimizer::new(cfg.optimizer.clone(), named);
    let mut scaler = LossScaler::for_precision(cfg.precision);
    if cfg.precision == Precision::Fp16 && device == tch::Device::Cpu {
        tracing::warn!("precision fp16 on the CPU: libtorch has few float16 CPU kernels, so this runs many times slower than fp32; bf16 is the CPU's reduced type");
    }
    let mut history: Vec<EpochStats> = Vec::new();
    let mut start = 0;
    if let Some((epoch, path)) = latest_checkpoint(ckpt_dir) {
        match load_checkpoint(vs, &mut opt, scaler.as_mut(), &path) {
            Ok(h) => {
                history = h;
                start = epoch;
                tracing::info!("resuming from checkpoint {} (epoch {epoch})", path.display());
            }
            Err(e) => tracing::warn!("ignoring unreadable checkpoint {}: {e}", path.display()),
        }
    }
    let batches_per_epoch = maker.samples().div_ceil(cfg.batch_size.max(1));
    observer.started(&Start {
        epoch: start,
        epochs: cfg.epochs,
        batches_per_epoch,
    });
    let loss_every = observer.loss_every(cfg.epochs * batches_per_epoch).filter(|&n| n > 0);
    for epoch in start..cfg.epochs {
        let clock = Instant::now();
        let lr = cfg.schedule.lr(cfg.lr, epoch, cfg.epochs);
        // Dropout and any other torch randomness: a function of (seed, epoch) only.
        tch::manual_seed(seed::torch(seed::item(
            seed::stream(cfg.seed, "libtorch per epoch"),
            &[epoch as u64],
        )));
        // Sums kept on the device and read once per epoch: no wait for the device per batch.
        // The same float64 arithmetic as summing `loss as f64 * n` on the host, bit for bit.
        let (loss_sum, score_sum) = (Tensor::zeros([], (Kind::Double, device)), Tensor::zeros([], (Kind::Double, device)));
        let mut seen = 0i64;
        // The loss sum and samples at the last loss report (of this epoch).
        let mut reported = (0.0, 0i64);
        for (b, batch) in epoch_batches(maker.clone(), cfg.batch_size, cfg.seed, epoch).enumerate() {
            let batch = batch?;
            let x = batch.inputs.to_device(device);
            let y = batch.targets.to_device(device);
            // Forward pass and loss under autocast (for `bf16`/`fp16`), backward outside it.
            let (outputs, loss) = {
                let _region = Autocast::enter(cfg.precision, device).map_err(TrainError::Precision)?;
                let outputs = forward(&x, true);
                let loss = objective.loss(&outputs, &y);
                (outputs, loss)
            };
            opt.backward_step_scaled(&loss, lr, scaler.as_mut());
            let n = y.size()[0];
            tch::no_grad(|| {
                let _ = loss_sum.shallow_clone().g_add_(&(loss.to_kind(Kind::Double) * n as f64));
                let _ = score_sum.shallow_clone().g_add_(&objective.score(&outputs, &y));
            });
            seen += n;
            let step = epoch * batches_per_epoch + b + 1;
            if loss_every.is_some_and(|every| step.is_multiple_of(every)) {
                let sum = loss_sum.double_value(&[]);
                observer.loss(step, (sum - reported.0) / (seen - reported.1).max(1) as f64);
                reported = (sum, seen);
            }
            observer.batch(epoch, b + 1, batches_per_epoch);
        }
        if let Some(scaler) = scaler.as_mut() {
            let skipped = scaler.take_skipped();
            if skipped > 0 {
                tracing::info!(
                    "epoch {}: {skipped} of {batches_per_epoch} fp16 steps skipped (gradients not finite); loss scale now {}",
                    epoch + 1,
                    scaler.scale()
                );
            }
        }
        let loss = loss_sum.double_value(&[]) / seen.max(1) as f64;
        let score_sum = score_sum.double_value(&[]);
        if !loss.is_finite() {
            return Err(TrainError::Diverged { epoch: epoch + 1, loss });
        }
        let stats = EpochStats {
            epoch: epoch + 1,
            loss,
            metric: score_sum / seen.max(1) as f64,
            lr,
            seconds: clock.elapsed().as_secs_f64(),
        };
        observer.epoch(&stats);
        history.push(stats);
        save_checkpoint(vs, &opt, scaler.as_ref(), &history, ckpt_dir, epoch + 1)?;
    }
    Ok(history)
}

fn checkpoint_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch:05}.safetensors"))
}

/// The newest complete checkpoint (written by rename, so any that exists is whole).
pub fn latest_checkpoint(dir: &Path) -> Option<(usize, PathBuf)> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("epoch-")?.strip_suffix(".safetensors")?.parse::<usize>().ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
}

fn save_checkpoint(
    vs: &nn::VarStore,
    opt: &Optimizer,
    scaler: Option<&LossScaler>,
    history: &[EpochStats],
    dir: &Path,
    epoch: usize,
) -> Result<(), TrainError> {
    let io = |p: &Path, e: &dyn std::fmt::Display| TrainError::Io {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, &e))?;
    let mut tensors: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (format!("model.{k}"), v.to_device(tch::Device::Cpu)))
        .collect();
    tensors.extend(opt.state_tensors().into_iter().map(|(k, v)| (k, v.to_device(tch::Device::Cpu))));
    tensors.extend(scaler.map(LossScaler::state_tensors).unwrap_or_default());
    let hist = serde_json::to_vec(history).unwrap_or_default();
    tensors.push(("history.json".into(), Tensor::from_slice(&hist)));
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let path = checkpoint_path(dir, epoch);
    let tmp = dir.join(format!(".epoch-{epoch:05}.tmp.safetensors"));
    Tensor::write_safetensors(&tensors, &tmp)?;
    if let Ok(f) = std::fs::File::open(&tmp) {
        let _ = f.sync_all();
    }
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, &e))?;
    // Older checkpoints are no longer needed.
    for e in 1..epoch {
        let _ = std::fs::remove_file(checkpoint_path(dir, e));
    }
    Ok(())
}

fn load_checkpoint(
    vs: &mut nn::VarStore,
    opt: &mut Optimizer,
    scaler: Option<&mut LossScaler>,
    path: &Path,
) -> Result<Vec<EpochStats>, TrainError> {
    let tensors = Tensor::read_safetensors(path)?;
    let vars = vs.variables();
    let mut history = Vec::new();
    let mut optim = Vec::new();
    tch::no_grad(|| -> Result<(), TrainError> {
        for (k, t) in &tensors {
            if let Some(name) = k.strip_prefix("model.") {
                if let Some(v) = vars.get(name) {
                    v.shallow_clone().f_copy_(&t.to_device(v.device()))?;
                }
            } else if k == "history.json" {
                let bytes: Vec<u8> = Vec::<u8>::try_from(t)?;
                history = serde_json::from_slice(&bytes).unwrap_or_default();
            } else {
                optim.push((k.clone(), t.shallow_clone()));
            }
        }
        Ok(())
    })?;
    opt.load_state(&optim);
    if let Some(scaler) = scaler {
        scaler.load_state(&optim);
    }
    Ok(history)
}
