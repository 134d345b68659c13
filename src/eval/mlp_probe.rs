//! A non-linear probe on frozen features (the paper's non-linear classifier): the linear
//! probe's standardised inputs and mini-batch Adam schedule, through a small multilayer
//! perceptron (fully connected hidden layers, each with a ReLU and dropout) instead of one
//! linear map. Deterministic given the seed on the CPU.
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Reduction, Tensor};

use super::features::{map_blocks, Standardize};
use super::linear_probe::{scores_of, ProbeScores};
use crate::train::optim::{Optimizer, OptimizerConfig, OptimizerKind};

#[derive(Clone, Debug, PartialEq)]
pub struct MlpConfig {
    /// Units of each hidden layer, input side first.
    pub hidden: Vec<i64>,
    /// Probability that a hidden unit is dropped in training.
    pub dropout: f64,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
}

/// A trained MLP probe: the standardisation and the layers.
pub struct MlpProbe {
    standardize: Standardize,
    /// The layers' weights (the variable store they were trained in is gone; the tensors
    /// are reference-counted).
    layers: Vec<nn::Linear>,
    dropout: f64,
}

impl MlpProbe {
    /// Fits on `x` [n, d] float (in memory or over a file, on any device: read a batch at a
    /// time), `y` [n] int64 in 0..classes, on `device`; weights drawn from `seed`.
    pub fn fit(x: &Tensor, y: &Tensor, classes: i64, cfg: &MlpConfig, seed: u64, device: Device) -> MlpProbe {
        let (n, d) = (x.size()[0], x.size()[1]);
        let standardize = Standardize::of(x, device);
        tch::manual_seed(seed as i64);
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut sizes = vec![d];
        sizes.extend(&cfg.hidden);
        sizes.push(classes);
        let layers: Vec<nn::Linear> = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| nn::linear(&root / format!("fc{}", i + 1), w[0], w[1], Default::default()))
            .collect();
        let probe = MlpProbe {
            standardize,
            layers,
            dropout: cfg.dropout,
        };
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let config = OptimizerConfig {
            kind: OptimizerKind::Adam,
            momentum: 0.0,
            weight_decay: cfg.weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut opt = Optimizer::new(config, named);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<i64> = (0..n).collect();
        for _ in 0..cfg.epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(cfg.batch_size.max(1)) {
                let idx = Tensor::from_slice(chunk);
                let logits = probe.forward(&probe.standardize.rows(x, &idx), true);
                let yb = y.index_select(0, &idx.to_device(y.device())).to_device(device);
                let loss = logits.cross_entropy_loss::<Tensor>(&yb, None, Reduction::Mean, -100, 0.0);
                opt.zero_grad();
                loss.backward();
                opt.step(cfg.lr);
            }
        }
        probe
    }

    /// Logits of standardised inputs.
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let last = self.layers.len() - 1;
        let mut h = xs.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = h.apply(layer);
            if i < last {
                h = h.relu().dropout(self.dropout, train);
            }
        }
        h
    }

    /// The same probe (its tensors are never modified after fitting).
    pub fn clone_probe(&self) -> MlpProbe {
        MlpProbe {
            standardize: self.standardize.shallow_clone(),
            layers: self
                .layers
                .iter()
                .map(|l| nn::Linear {
                    ws: l.ws.shallow_clone(),
                    bs: l.bs.as_ref().map(Tensor::shallow_clone),
                })
                .collect(),
            dropout: self.dropout,
        }
    }

    /// The logits `[n, classes]` of the rows `x` (anywhere: read by blocks), on the probe's
    /// device.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| map_blocks(x, self.standardize.device(), &|b| self.forward(&self.standardize.apply(b), false)))
    }

    /// Top-1 (and top-5 when there are more than five classes) accuracy on `x`, `y`.
    pub fn score(&self, x: &Tensor, y: &Tensor) -> ProbeScores {
        scores_of(&self.logits(x), y)
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;

    fn cfg(hidden: Vec<i64>) -> MlpConfig {
        MlpConfig {
            hidden,
            dropout: 0.0,
            epochs: 200,
            lr: 0.01,
            weight_decay: 0.0,
            batch_size: 64,
        }
    }

    /// Points labeled by the sign of x0 * x1 (XOR): no linear map beats about half, one
    /// hidden layer does.
    #[test]
    fn a_hidden_layer_separates_what_no_linear_map_can() {
        tch::manual_seed(0);
        let x = Tensor::rand([256, 2], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let y = (x.select(1, 0) * x.select(1, 1)).gt(0.0).to_kind(Kind::Int64);
        let mlp = MlpProbe::fit(&x, &y, 2, &cfg(vec![32]), 1, Device::Cpu);
        assert!(mlp.score(&x, &y).top1 > 0.9, "{:?}", mlp.score(&x, &y));
        let linear = MlpProbe::fit(&x, &y, 2, &cfg(vec![]), 1, Device::Cpu);
        assert!(linear.score(&x, &y).top1 < 0.75, "{:?}", linear.score(&x, &y));
        // The same seed, the same probe.
        let again = MlpProbe::fit(&x, &y, 2, &cfg(vec![32]), 1, Device::Cpu);
        assert!(again.logits(&x).equal(&mlp.logits(&x)));
        assert_eq!(mlp.logits(&x).size(), [256, 2]);
    }
}
