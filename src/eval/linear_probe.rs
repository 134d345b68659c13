//! A multinomial logistic-regression probe on frozen features: standardised inputs, and
//! either mini-batch Adam with weight decay for a fixed number of epochs (deterministic given
//! the seed), or the convex problem solved to convergence by full-batch L-BFGS from zero
//! (independent of any seed; the problem scikit-learn's `lbfgs` solver solves).
use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Reduction, Tensor};

use super::features::{map_blocks, Standardize};
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

/// The L-BFGS fit of [`Probe::fit_lbfgs`].
#[derive(Clone, Debug, PartialEq)]
pub struct LbfgsConfig {
    /// `lambda` of `mean cross-entropy + lambda / 2 * ||W||²`.
    pub weight_decay: f64,
    /// Iterations at most (each one gradient and a line search).
    pub max_iterations: u64,
    /// Converged when the gradient's L2 norm is below this.
    pub tolerance: f64,
    /// Curvature pairs kept (L-BFGS memory).
    pub memory: usize,
}

impl LbfgsConfig {
    pub fn new(weight_decay: f64) -> LbfgsConfig {
        LbfgsConfig {
            weight_decay,
            max_iterations: 1000,
            tolerance: 1e-6,
            memory: 10,
        }
    }
}

/// How an L-BFGS fit ended.
#[derive(Clone, Debug, PartialEq)]
pub struct LbfgsReport {
    pub iterations: u64,
    /// The gradient's norm fell below the tolerance (else the iteration budget ran out).
    pub converged: bool,
    /// The objective at the result.
    pub loss: f64,
}

/// The probe's objective on standardised float64 features, with its gradient in closed form
/// (softmax minus one-hot); argmin asks for cost and gradient of the same point one after the
/// other, so the last evaluation is kept.
struct Objective {
    /// `[n, d]` float64, standardised.
    x: Tensor,
    /// `[n, classes]` float64.
    onehot: Tensor,
    classes: i64,
    d: i64,
    l2: f64,
    last: RefCell<Option<Evaluation>>,
}

/// A point, the objective there and its gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

impl Objective {
    fn evaluate(&self, p: &[f64]) -> (f64, Vec<f64>) {
        if let Some((q, f, g)) = &*self.last.borrow() {
            if q.as_slice() == p {
                return (*f, g.clone());
            }
        }
        let (c, d) = (self.classes, self.d);
        let n = self.x.size()[0] as f64;
        let t = Tensor::from_slice(p).to_device(self.x.device());
        let w = t.narrow(0, 0, c * d).reshape([c, d]);
        let b = t.narrow(0, c * d, c);
        let logp = (self.x.matmul(&w.tr()) + &b).log_softmax(1, Kind::Double); // [n, c]
        let nll = -(&logp * &self.onehot).sum(Kind::Double).double_value(&[]) / n;
        let f = nll + 0.5 * self.l2 * (&w * &w).sum(Kind::Double).double_value(&[]);
        let g = (logp.exp() - &self.onehot) / n; // [n, c]
        let gw = g.tr().matmul(&self.x) + &w * self.l2; // [c, d]
        let gb = g.sum_dim_intlist(0, false, Kind::Double); // [c]
        let grad = Tensor::cat(&[gw.reshape([-1]), gb], 0).to_device(tch::Device::Cpu);
        let grad = Vec::<f64>::try_from(&grad).unwrap_or_default();
        *self.last.borrow_mut() = Some((p.to_vec(), f, grad.clone()));
        (f, grad)
    }
}

impl CostFunction for &Objective {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.evaluate(p).0)
    }
}

impl Gradient for &Objective {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.evaluate(p).1)
    }
}

/// A trained probe: standardisation and the linear map.
pub struct Probe {
    standardize: Standardize,
    weight: Tensor,
    bias: Tensor,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeScores {
    pub top1: f64,
    pub top5: Option<f64>,
}

impl Probe {
    /// Fits on `x` [n, d] float (in memory or over a file, on any device: read a batch at a
    /// time), `y` [n] int64 in 0..classes, on `device`.
    pub fn fit(x: &Tensor, y: &Tensor, classes: i64, cfg: &ProbeConfig, seed: u64, device: Device) -> Probe {
        let (n, d) = (x.size()[0], x.size()[1]);
        let standardize = Standardize::of(x, device);
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
                let idx = Tensor::from_slice(chunk);
                let xb = standardize.rows(x, &idx);
                let yb = y.index_select(0, &idx.to_device(y.device())).to_device(device);
                opt.zero_grad();
                let logits = xb.matmul(&weight.tr()) + &bias;
                let loss = logits.cross_entropy_loss::<Tensor>(&yb, None, Reduction::Mean, -100, 0.0);
                loss.backward();
                opt.step(cfg.lr);
            }
        }
        Probe {
            standardize,
            weight: weight.detach(),
            bias: bias.detach(),
        }
    }

    /// Fits on `x` [n, d] float, `y` [n] int64 in 0..classes by minimising
    /// `mean cross-entropy + weight_decay / 2 * ||W||²` (bias not penalised) on standardised
    /// features with L-BFGS, from zero or from `start` (a probe of the same shape, e.g. the
    /// fit at a stronger weight decay: a warm start along a regularisation path). The problem
    /// is strictly convex, so the result does not depend on a seed. Computed in float64.
    pub fn fit_lbfgs(
        x: &Tensor,
        y: &Tensor,
        classes: i64,
        lbfgs: &LbfgsConfig,
        start: Option<&Probe>,
        device: Device,
    ) -> (Probe, LbfgsReport) {
        let d = x.size()[1];
        let standardize = Standardize::of(x, device);
        let xs = standardize.apply(&x.to_device(device)).to_kind(Kind::Double);
        let onehot = y.to_device(device).one_hot(classes).to_kind(Kind::Double);
        let objective = Objective {
            x: xs,
            onehot,
            classes,
            d,
            l2: lbfgs.weight_decay,
            last: RefCell::new(None),
        };
        let init: Vec<f64> = match start {
            Some(p) => {
                let flat = Tensor::cat(&[p.weight.reshape([-1]), p.bias.shallow_clone()], 0);
                Vec::<f64>::try_from(&flat.to_kind(Kind::Double).to_device(tch::Device::Cpu)).unwrap_or_default()
            }
            None => vec![0.0; ((d + 1) * classes) as usize],
        };
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), lbfgs.memory)
            .with_tolerance_grad(lbfgs.tolerance)
            .and_then(|s| s.with_tolerance_cost(0.0));
        let run = solver.and_then(|solver| {
            Executor::new(&objective, solver)
                .configure(|state| state.param(init.clone()).max_iters(lbfgs.max_iterations))
                .run()
        });
        let (param, report) = match run {
            Ok(res) => {
                let state = res.state();
                let converged = matches!(
                    state.get_termination_status(),
                    TerminationStatus::Terminated(TerminationReason::SolverConverged)
                );
                let param = state.get_best_param().cloned().unwrap_or(init);
                let report = LbfgsReport {
                    iterations: state.get_iter(),
                    converged,
                    loss: state.get_best_cost(),
                };
                (param, report)
            }
            // A line search that cannot make progress (the gradient is at rounding level):
            // keep the best point evaluated.
            Err(_) => {
                let last = objective.last.borrow().clone();
                let (param, loss) = last.map(|(p, f, _)| (p, f)).unwrap_or((init, f64::NAN));
                (
                    param,
                    LbfgsReport {
                        iterations: 0,
                        converged: false,
                        loss,
                    },
                )
            }
        };
        let t = Tensor::from_slice(&param).to_kind(Kind::Float).to_device(device);
        let weight = t.narrow(0, 0, classes * d).reshape([classes, d]);
        let bias = t.narrow(0, classes * d, classes);
        (Probe { standardize, weight, bias }, report)
    }

    /// The same probe (its tensors are never modified after fitting).
    pub fn clone_probe(&self) -> Probe {
        Probe {
            standardize: self.standardize.shallow_clone(),
            weight: self.weight.shallow_clone(),
            bias: self.bias.shallow_clone(),
        }
    }

    /// The logits `[n, classes]` of the rows `x` (anywhere: read by blocks), on the probe's
    /// device.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            map_blocks(x, self.standardize.device(), &|b| {
                self.standardize.apply(b).matmul(&self.weight.tr()) + &self.bias
            })
        })
    }

    /// Top-1 (and top-5 when there are more than five classes) accuracy on `x`, `y`.
    pub fn score(&self, x: &Tensor, y: &Tensor) -> ProbeScores {
        scores_of(&self.logits(x), y)
    }
}

/// Top-1 (and top-5 when there are more than five classes) accuracy of `logits` [n, classes]
/// for the labels `y` [n] (on any device): every probe's scores.
pub fn scores_of(logits: &Tensor, y: &Tensor) -> ProbeScores {
    tch::no_grad(|| scores_on_device(logits, &y.to_device(logits.device())))
}

fn scores_on_device(logits: &Tensor, y: &Tensor) -> ProbeScores {
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
        let p = Probe::fit(&x, &y, 3, &ProbeConfig::default(), 1, Device::Cpu);
        let s = p.score(&x, &y);
        assert!(s.top1 > 0.97, "{s:?}");
        assert!(s.top5.is_none());
        let noise = Tensor::randn([n, 20], (Kind::Float, tch::Device::Cpu));
        let test_noise = Tensor::randn([n, 20], (Kind::Float, tch::Device::Cpu));
        let p = Probe::fit(&noise, &y, 3, &ProbeConfig::default(), 1, Device::Cpu);
        let s = p.score(&test_noise, &y);
        assert!(s.top1 < 0.45, "{s:?}");
    }

    /// Reference fits by scikit-learn's multinomial `LogisticRegression(solver="lbfgs")` on the
    /// same standardised data and regularisation (tests/reference/logistic_reference.py):
    /// predicted probabilities on held-out points agree to 1e-4.
    #[test]
    fn lbfgs_probe_matches_scikit_learn_logistic_regression() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/logistic_reference.json");
        let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = data["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        let floats = |v: &serde_json::Value| -> Vec<f32> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect() };
        for case in cases {
            let (n, d, c) = (
                case["n"].as_i64().unwrap(),
                case["d"].as_i64().unwrap(),
                case["classes"].as_i64().unwrap(),
            );
            let x = Tensor::from_slice(&floats(&case["x"])).reshape([n, d]);
            let y: Vec<i64> = case["y"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            let y = Tensor::from_slice(&y);
            let test = Tensor::from_slice(&floats(&case["test"])).reshape([-1, d]);
            let want = Tensor::from_slice(&floats(&case["proba"])).reshape([-1, c]).to_kind(Kind::Double);
            let cfg = LbfgsConfig {
                tolerance: 1e-9,
                ..LbfgsConfig::new(case["weight_decay"].as_f64().unwrap())
            };
            let (probe, report) = Probe::fit_lbfgs(&x, &y, c, &cfg, None, Device::Cpu);
            assert!(report.converged, "{report:?}");
            let got = probe.logits(&test).softmax(1, Kind::Double);
            let diff = (got - want).abs().max().double_value(&[]);
            assert!(diff < 1e-4, "case n={n} d={d} c={c}: probabilities differ by {diff} ({report:?})");
        }
    }

    /// The converged probe has no seed: two fits are identical, and a warm start from another
    /// regularisation's fit reaches the same optimum (to the tolerance).
    #[test]
    fn lbfgs_probe_is_seed_free_and_warm_starts_to_the_same_optimum() {
        tch::manual_seed(3);
        let n = 400;
        let y = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).remainder(4);
        let centres = Tensor::randn([4, 16], (Kind::Float, tch::Device::Cpu));
        let x = centres.index_select(0, &y) + Tensor::randn([n, 16], (Kind::Float, tch::Device::Cpu));
        let cfg = LbfgsConfig::new(1e-3);
        let (a, ra) = Probe::fit_lbfgs(&x, &y, 4, &cfg, None, Device::Cpu);
        let (b, _) = Probe::fit_lbfgs(&x, &y, 4, &cfg, None, Device::Cpu);
        assert!(a.weight.equal(&b.weight) && a.bias.equal(&b.bias));
        assert!(ra.converged, "{ra:?}");
        let (strong, _) = Probe::fit_lbfgs(&x, &y, 4, &LbfgsConfig::new(1e-1), None, Device::Cpu);
        let (warm, rw) = Probe::fit_lbfgs(&x, &y, 4, &cfg, Some(&strong), Device::Cpu);
        assert!(rw.converged, "{rw:?}");
        assert!((rw.loss - ra.loss).abs() < 1e-9, "{rw:?} vs {ra:?}");
        let pa = a.logits(&x).softmax(1, Kind::Double);
        let pw = warm.logits(&x).softmax(1, Kind::Double);
        assert!((pa - pw).abs().max().double_value(&[]) < 1e-4);
    }

    #[test]
    fn deterministic_given_seed() {
        let y = Tensor::arange(100, (Kind::Int64, tch::Device::Cpu)).remainder(7);
        let x = Tensor::randn([100, 8], (Kind::Float, tch::Device::Cpu));
        let cfg = ProbeConfig {
            epochs: 3,
            ..Default::default()
        };
        let run = || Probe::fit(&x, &y, 7, &cfg, 5, Device::Cpu).score(&x, &y);
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert!(a.top5.is_some());
    }
}
