//! Learning-rate schedules, evaluated per epoch.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    /// Constant.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step { every: usize, gamma: f64 },
    /// Cosine from the base rate to 0 over all epochs.
    Cosine,
}

impl Schedule {
    /// The rate for 0-based `epoch` of `epochs`.
    pub fn lr(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((epoch / (*every).max(1)) as i32),
            Schedule::Cosine => {
                let t = epoch as f64 / epochs.max(1) as f64;
                base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(Schedule::Constant.lr(0.1, 5, 10), 0.1);
        let s = Schedule::Step { every: 2, gamma: 0.1 };
        assert!((s.lr(1.0, 0, 6) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 3, 6) - 0.1).abs() < 1e-12);
        assert!((s.lr(1.0, 4, 6) - 0.01).abs() < 1e-12);
        assert!((Schedule::Cosine.lr(1.0, 0, 4) - 1.0).abs() < 1e-12);
        assert!((Schedule::Cosine.lr(1.0, 2, 4) - 0.5).abs() < 1e-12);
        assert!(Schedule::Cosine.lr(1.0, 3, 4) < 0.2);
    }
}
