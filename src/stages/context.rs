//! What a running stage may touch: its inputs, its work folder, a device, a seed,
//! and a way to report progress. Stages never see TOML and never write elsewhere.
use std::path::{Path, PathBuf};

#[cfg(feature = "torch")]
use indexmap::IndexMap;

use super::StageKind;
use crate::data::{DataError, DatasetSpec};

/// A resolved input of a stage instance.
#[derive(Clone, Debug)]
pub enum Input {
    /// The published store entry of an upstream stage.
    Stage { kind: StageKind, dir: PathBuf },
    /// A split of a dataset, with its content fingerprint.
    Data {
        spec: DatasetSpec,
        split: String,
        fingerprint: String,
    },
}

#[cfg(feature = "torch")]
pub struct RunCtx<'a> {
    pub device: tch::Device,
    /// The instance's seed (`crate::seed::instance`).
    pub seed: u64,
    /// The seed the experiment file states for the stage (`crate::seed`).
    pub stated_seed: u64,
    pub workdir: &'a Path,
    pub inputs: &'a IndexMap<String, Input>,
    /// Called with (done, total) as the stage advances.
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
    /// Called with a line worth showing (a resumption, a waited lock).
    pub note: &'a (dyn Fn(String) + Sync),
    /// Called with each finished training epoch's figures.
    pub epoch: &'a (dyn Fn(EpochFigures) + Sync),
    /// Where a training stage keeps its checkpoints; survives a crash (keyed).
    pub checkpoint_dir: &'a Path,
    /// Where a training stage writes its TensorBoard event files (keyed, outside the work
    /// folder: not artefacts); `None` when `verify` re-executes it.
    pub tensorboard_dir: Option<&'a Path>,
    /// Where decoded-image caches live (`<store>/decoded`, not keyed: a cache holds the
    /// bytes decoding gives); `None` when `verify` re-executes a stage.
    pub decoded_dir: Option<&'a Path>,
}

#[cfg(feature = "torch")]
impl RunCtx<'_> {
    pub fn stage_input(&self, key: &str) -> Result<&Path, StageError> {
        match self.inputs.get(key) {
            Some(Input::Stage { dir, .. }) => Ok(dir),
            _ => Err(StageError::Failed(format!("internal: input `{key}` is not a stage"))),
        }
    }

    pub fn data_input(&self, key: &str) -> Result<(&DatasetSpec, &str), StageError> {
        match self.inputs.get(key) {
            Some(Input::Data { spec, split, .. }) => Ok((spec, split)),
            _ => Err(StageError::Failed(format!("internal: input `{key}` is not a dataset"))),
        }
    }

    /// The content fingerprint of the split under `key`.
    pub fn data_fingerprint(&self, key: &str) -> Result<&str, StageError> {
        match self.inputs.get(key) {
            Some(Input::Data { fingerprint, .. }) => Ok(fingerprint),
            _ => Err(StageError::Failed(format!("internal: input `{key}` is not a dataset"))),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.workdir.join(name)
    }
}

pub use crate::store::MetricRow;

/// A finished training epoch, as the progress display and JSON logs show it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EpochFigures {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    pub loss: f64,
    pub accuracy: f64,
    /// What the accuracy measures, e.g. "accuracy" or "permutation accuracy".
    pub accuracy_name: &'static str,
    /// The accuracy of guessing, where the task has one (pretext tasks).
    pub chance: Option<f64>,
    pub lr: f64,
    pub seconds: f64,
}

impl std::fmt::Display for EpochFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "epoch {}/{}: loss {:.4}, {} {:.3}",
            self.epoch, self.epochs, self.loss, self.accuracy_name, self.accuracy
        )?;
        if let Some(c) = self.chance {
            write!(f, " (chance {c:.4})")?;
        }
        write!(f, ", lr {:.4}, {:.1}s", self.lr, self.seconds)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub metrics: Vec<MetricRow>,
    /// One line for the log, e.g. "2000 x 324 features".
    pub summary: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Bad input data found at run time (exit code 2).
    #[error(transparent)]
    Data(#[from] DataError),
    /// Input that is well-formed but unusable for this stage (exit code 2).
    #[error("{0}")]
    Input(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[cfg(feature = "torch")]
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{0}")]
    Failed(String),
}

#[cfg(feature = "torch")]
impl From<crate::train::trainer::TrainError> for StageError {
    /// An unreadable image stays bad input; every other training failure is the run's.
    fn from(e: crate::train::trainer::TrainError) -> StageError {
        match e {
            crate::train::trainer::TrainError::Data(d) => StageError::Data(d),
            e => StageError::Failed(e.to_string()),
        }
    }
}

impl StageError {
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
        move |source| StageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when the failure is the user's input rather than the computation.
    pub fn is_input_error(&self) -> bool {
        matches!(self, StageError::Data(_) | StageError::Input(_))
    }
}
