//! A multinomial logistic-regression probe on frozen features: standardised inputs,
//! mini-batch Adam with weight decay, deterministic given the seed.
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Reduction, Tensor};

use crate::train::optim::{Optimizer, OptimizerConfig, OptimizerKind};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeConfig {
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            epochs: 30,
            lr: 1e-3,
            weight_decay: 1e-4,
            batch_size: 256,
        }
    }
}

/// A trained probe: standardisation and the linear map.
pub struct Probe {
    mean: Tensor,
    std: Tensor,
    weight: Tensor,
    bias: Tensor,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeScores {
    pub top1: f64,
    pub top5: Option<f64>,
}

impl Probe {
    /// Fits on `x` [n, d] float, `y` [n] int64 in 0..classes.
    pub fn fit(x: &Tensor, y: &Tensor, classes: i64, cfg: &ProbeConfig, seed: u64) -> Probe {
        let device = x.device();
        let (n, d) = (x.size()[0], x.size()[1]);
        let mean = x.mean_dim(Some([0i64].as_slice()), true, Kind::Float);
        let std = x.std_dim(Some([0i64].as_slice()), false, true).clamp_min(1e-6);
        let xs = (x - &mean) / &std;
        tch::manual_seed(seed as i64);
        let weight = (Tensor::randn([classes, d], (Kind::Float, device)) * 0.01).set_requires_grad(true);
        let bias = Tensor::zeros([classes], (Kind::Float, device)).set_requires_grad(true);
        let config = OptimizerConfig {
            kind: OptimizerKind::Adam,
            momentum: 0.0,
            weight_decay: cfg.weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut opt = Optimizer::new(
            config,
            vec![("weight".into(), weight.shallow_clone()), ("bias".into(), bias.shallow_clone())],
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<i64> = (0..n).collect();
        let bs = cfg.batch_size.max(1) as i64;
        for _ in 0..cfg.epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(bs as usize) {
                let idx = Tensor::from_slice(chunk).to_device(device);
                let xb = xs.index_select(0, &idx);
                let yb = y.index_select(0, &idx);
                opt.zero_grad();
                let logits = xb.matmul(&weight.tr()) + &bias;
                let loss = logits.cross_entropy_loss::<Tensor>(&yb, None, Reduction::Mean, -100, 0.0);
                loss.backward();
                opt.step(cfg.lr);
            }
        }
        Probe {
            mean,
            std,
            weight: weight.detach(),
            bias: bias.detach(),
        }
    }

    pub fn logits(&self, x: &Tensor) -> Tensor {
        ((x - &self.mean) / &self.std).matmul(&self.weight.tr()) + &self.bias
    }

    /// Top-1 (and top-5 when there are more than five classes) accuracy on `x`, `y`.
    pub fn score(&self, x: &Tensor, y: &Tensor) -> ProbeScores {
        tch::no_grad(|| {
            let logits = self.logits(x);
            let classes = logits.size()[1];
            let n = y.size()[0].max(1) as f64;
            let top1 = logits
                .argmax(1, false)
                .eq_tensor(y)
                .to_kind(Kind::Double)
                .sum(Kind::Double)
                .double_value(&[])
                / n;
            let top5 = (classes > 5).then(|| {
                let (_, idx) = logits.topk(5, 1, true, true);
                idx.eq_tensor(&y.unsqueeze(1))
                    .any_dim(1, false)
                    .to_kind(Kind::Double)
                    .sum(Kind::Double)
                    .double_value(&[])
                    / n
            });
            ProbeScores { top1, top5 }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_data_is_learned_and_noise_is_not() {
        tch::manual_seed(0);
        let n = 600;
        let y = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).remainder(3);
        let centres = Tensor::randn([3, 20], (Kind::Float, tch::Device::Cpu)) * 4.0;
        let x = centres.index_select(0, &y) + Tensor::randn([n, 20], (Kind::Float, tch::Device::Cpu));
        let p = Probe::fit(&x, &y, 3, &ProbeConfig::default(), 1);
        let s = p.score(&x, &y);
        assert!(s.top1 > 0.97, "{s:?}");
        assert!(s.top5.is_none());
        let noise = Tensor::randn([n, 20], (Kind::Float, tch::Device::Cpu));
        let test_noise = Tensor::randn([n, 20], (Kind::Float, tch::Device::Cpu));
        let p = Probe::fit(&noise, &y, 3, &ProbeConfig::default(), 1);
        let s = p.score(&test_noise, &y);
        assert!(s.top1 < 0.45, "{s:?}");
    }

    #[test]
    fn deterministic_given_seed() {
        let y = Tensor::arange(100, (Kind::Int64, tch::Device::Cpu)).remainder(7);
        let x = Tensor::randn([100, 8], (Kind::Float, tch::Device::Cpu));
        let cfg = ProbeConfig {
            epochs: 3,
            ..Default::default()
        };
        let run = || Probe::fit(&x, &y, 7, &cfg, 5).score(&x, &y);
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert!(a.top5.is_some());
    }
}
