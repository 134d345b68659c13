//! The choices a training configuration names (the optimizer, the precision), known to
//! builds without libtorch too (the optimizers are in `optim.rs`, mixed precision in
//! `amp.rs`).
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

/// The arithmetic of a training step's forward pass and loss: `fp32` throughout, or mixed
/// precision with `bf16` or `fp16` as the reduced type (libtorch's autocast chooses per
/// operation; weights, gradients and optimiser state stay float32; `fp16` scales the loss).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
    Fp16,
}

impl Precision {
    pub fn is_fp32(&self) -> bool {
        *self == Precision::Fp32
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            "fp16" => Ok(Precision::Fp16),
            _ => Err(format!("expected \"fp32\", \"bf16\" or \"fp16\", found \"{s}\"")),
        }
    }
}
