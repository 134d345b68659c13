//! The choices a training configuration names (the optimizer), known to builds without
//! libtorch too (the optimizers themselves are in `optim.rs`).
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}
