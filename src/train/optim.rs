//! Optimisers with state we own (momentum buffers, Adam moments), so that a checkpoint
//! holds everything needed to resume bit for bit.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::amp::LossScaler;
pub use super::kinds::OptimizerKind;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Adam's betas and epsilon.
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl OptimizerConfig {
    /// SGD with `momentum` and `weight_decay` (Adam's fields at PyTorch's defaults).
    pub fn sgd(momentum: f64, weight_decay: f64) -> OptimizerConfig {
        OptimizerConfig {
            kind: OptimizerKind::Sgd,
            momentum,
            weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// SGD with momentum and (coupled) weight decay, as in PyTorch's `torch.optim.SGD`,
/// or Adam as in `torch.optim.Adam`; state is a name -> tensor map.
pub struct Optimizer {
    pub config: OptimizerConfig,
    params: Vec<(String, Tensor)>,
    state: BTreeMap<String, Tensor>,
    step: i64,
    /// Per parameter (in `params` order), buffers for intermediate products; not state.
    scratch: Vec<Option<(Tensor, Tensor)>>,
}

impl Optimizer {
    /// `params`: trainable variables by name (e.g. from `VarStore::variables()`).
    pub fn new(config: OptimizerConfig, mut params: Vec<(String, Tensor)>) -> Optimizer {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Optimizer {
            config,
            params,
            state: BTreeMap::new(),
            step: 0,
            scratch: Vec::new(),
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update with learning rate `lr` from the gradients accumulated in the
    /// parameters (after `zero_grad` and `backward`).
    pub fn step(&mut self, lr: f64) {
        let grads: Vec<Tensor> = self.params.iter().map(|(_, p)| p.grad()).collect();
        self.update(&grads, lr);
    }

    /// The gradients of `loss` and one update with them, like `zero_grad`, `backward`,
    /// `step` but without accumulating into the parameters' gradients: autograd hands
    /// the gradients over (as PyTorch does after `zero_grad(set_to_none=True)`), so no
    /// gradient buffer is zero-filled and added to per step. The same values.
    /// Parameters that do not require gradients (frozen ones, BatchNorm's running
    /// statistics) get none, as `backward` would leave them.
    pub fn backward_step(&mut self, loss: &Tensor, lr: f64) {
        self.backward_step_scaled(loss, lr, None);
    }

    /// `backward_step` with float16 loss scaling where `scaler` is given: the gradients
    /// of `loss * scale`, divided by the scale; the update is skipped (and the step not
    /// counted) when they are not all finite. Whether the update was made.
    pub fn backward_step_scaled(&mut self, loss: &Tensor, lr: f64, scaler: Option<&mut LossScaler>) -> bool {
        let trained: Vec<usize> = (0..self.params.len()).filter(|&i| self.params[i].1.requires_grad()).collect();
        let inputs: Vec<&Tensor> = trained.iter().map(|&i| &self.params[i].1).collect();
        let scaled = scaler.as_ref().map(|s| loss * s.scale());
        let computed = Tensor::run_backward(&[scaled.as_ref().unwrap_or(loss)], &inputs, false, false);
        let mut grads: Vec<Tensor> = self.params.iter().map(|_| Tensor::new()).collect();
        for (i, g) in trained.into_iter().zip(computed) {
            grads[i] = g;
        }
        if let Some(scaler) = scaler {
            if !scaler.unscale(&mut grads) {
                return false;
            }
        }
        self.update(&grads, lr);
        true
    }

    /// One update with `grads` (in `params` order; undefined ones are skipped).
    fn update(&mut self, grads: &[Tensor], lr: f64) {
        self.step += 1;
        let c = self.config.clone();
        tch::no_grad(|| {
            for (i, ((name, p), g)) in self.params.iter_mut().zip(grads).enumerate() {
                if !g.defined() {
                    continue;
                }
                // SGD with momentum on the CPU, from the second step on: one fused pass.
                if c.kind == OptimizerKind::Sgd && c.momentum != 0.0 {
                    if let Some(b) = self.state.get_mut(&format!("{name}.momentum")) {
                        if sgd_fused(p, g, b, c.weight_decay, c.momentum, lr) {
                            // The fused pass needs no scratch: free the first step's
                            // (two parameter-sized buffers).
                            if let Some(s) = self.scratch.get_mut(i) {
                                *s = None;
                            }
                            continue;
                        }
                    }
                }
                // Two scratch tensors per parameter, kept between steps: the products
                // below are written into them instead of fresh allocations (each a
                // parameter-sized `malloc`, page faults and all). Same operations, same
                // values as `g + p * wd` and `p - d * lr`.
                if self.scratch.len() <= i {
                    self.scratch.resize_with(i + 1, || None);
                }
                let (s1, s2) = self.scratch[i].get_or_insert_with(|| (p.zeros_like(), p.zeros_like()));
                let mut d = if c.weight_decay != 0.0 {
                    let _ = p.mul_scalar_out(s1, c.weight_decay);
                    let _ = g.add_out(s2, s1);
                    s2.shallow_clone()
                } else {
                    g.shallow_clone()
                };
                match c.kind {
                    OptimizerKind::Sgd => {
                        if c.momentum != 0.0 {
                            let key = format!("{name}.momentum");
                            let buf = match self.state.get_mut(&key) {
                                Some(b) => {
                                    let _ = b.g_mul_scalar_(c.momentum).g_add_(&d);
                                    b.shallow_clone()
                                }
                                None => {
                                    let b = d.copy();
                                    self.state.insert(key, b.shallow_clone());
                                    b
                                }
                            };
                            d = buf;
                        }
                        let _ = d.mul_scalar_out(s1, lr);
                        let _ = p.g_sub_(s1);
                    }
                    OptimizerKind::Adam => {
                        let (mk, vk) = (format!("{name}.exp_avg"), format!("{name}.exp_avg_sq"));
                        let m = self.state.entry(mk).or_insert_with(|| p.zeros_like()).shallow_clone();
                        let v = self.state.entry(vk).or_insert_with(|| p.zeros_like()).shallow_clone();
                        let (mut m, mut v) = (m, v);
                        let _ = m.g_mul_scalar_(c.beta1).g_add_(&(&d * (1.0 - c.beta1)));
                        let _ = v.g_mul_scalar_(c.beta2).g_add_(&(&d * &d * (1.0 - c.beta2)));
                        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
                        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
                        let denom = (&v / bc2).sqrt() + c.eps;
                        let _ = p.g_sub_(&(&m / &denom * (lr / bc1)));
                    }
                }
            }
        });
    }

    /// State tensors for a checkpoint (plus the step count).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self.state.iter().map(|(k, v)| (format!("optim.{k}"), v.shallow_clone())).collect();
        out.push(("optim.__step".into(), Tensor::from_slice(&[self.step])));
        out
    }

    /// Restores state written by `state_tensors`.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) {
        for (k, v) in tensors {
            if k == "optim.__step" {
                self.step = v.int64_value(&[0]);
            } else if let Some(name) = k.strip_prefix("optim.") {
                let device = self.params.first().map(|(_, p)| p.device()).unwrap_or(tch::Device::Cpu);
                self.state.insert(name.to_string(), v.to_kind(Kind::Float).to_device(device));
            }
        }
    }
}

/// Elements per task of [`sgd_fused`].
const FUSED_CHUNK: usize = 1 << 15;

/// The SGD-with-momentum update of one contiguous CPU f32 parameter in one parallel pass
/// over `p`, `g` and the momentum buffer `b`: `d = g + p * wd` (without the product when
/// `wd` is 0), `b = b * m + d`, `p = p - b * lr`, each product and sum rounded to f32
/// on its own (no fused multiply-add), with the scalars in f32 as libtorch casts them:
/// the values of the tensor operations it replaces (`mul`, `add`, `mul_`, `add_`, `sub_`),
/// bit for bit. `false` (and nothing done) for other tensors (another device or type,
/// not contiguous, sizes that differ).
fn sgd_fused(p: &mut Tensor, g: &Tensor, b: &mut Tensor, wd: f64, m: f64, lr: f64) -> bool {
    use rayon::prelude::*;
    let n = p.numel();
    let fits = |t: &Tensor| t.device() == tch::Device::Cpu && t.kind() == Kind::Float && t.is_contiguous() && t.numel() == n;
    if !(fits(p) && fits(g) && fits(b)) || n == 0 {
        return false;
    }
    // SAFETY: three distinct contiguous CPU f32 tensors of `n` elements (a parameter,
    // its gradient and its momentum buffer, which never share storage), alive and
    // not resized for the duration of this function, under `no_grad`.
    let (pv, gv, bv) = unsafe {
        (
            std::slice::from_raw_parts_mut(p.data_ptr() as *mut f32, n),
            std::slice::from_raw_parts(g.data_ptr() as *const f32, n),
            std::slice::from_raw_parts_mut(b.data_ptr() as *mut f32, n),
        )
    };
    let (wd, m, lr) = (wd as f32, m as f32, lr as f32);
    let decay = wd != 0.0;
    pv.par_chunks_mut(FUSED_CHUNK)
        .zip(gv.par_chunks(FUSED_CHUNK))
        .zip(bv.par_chunks_mut(FUSED_CHUNK))
        .for_each(|((p, g), b)| {
            for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                let d = if decay { g + *p * wd } else { g };
                *b = *b * m + d;
                *p -= *b * lr;
            }
        });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused SGD step gives exactly what the plain formula gives: `d = g + p * wd`,
    /// `buf = buf * m + d` (`d` the first time), `p = p - buf * lr`.
    #[test]
    fn sgd_step_equals_the_plain_formula_bit_for_bit() {
        tch::manual_seed(7);
        let config = OptimizerConfig::sgd(0.9, 5e-4);
        for numel in [1i64, 7, 1000, 4099, 65_537] {
            let p = Tensor::randn([numel], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            let mut reference = p.detach().copy();
            let mut buf: Option<Tensor> = None;
            let mut opt = Optimizer::new(config.clone(), vec![("w".into(), p.shallow_clone())]);
            for step in 0..3 {
                let lr = 0.05 / (step + 1) as f64;
                opt.zero_grad();
                let target = Tensor::randn([numel], (Kind::Float, tch::Device::Cpu));
                (&p * &target).sin().sum(Kind::Float).backward();
                let g = p.grad().detach().copy();
                let d = &g + &reference * config.weight_decay;
                let b = match buf.take() {
                    Some(b) => b * config.momentum + &d,
                    None => d.copy(),
                };
                reference = &reference - &b * lr;
                buf = Some(b);
                opt.step(lr);
                assert!(p.detach().equal(&reference), "{numel} values, step {step}");
            }
        }
    }

    /// `backward_step` moves the weights exactly as `zero_grad`, `backward`, `step` do.
    #[test]
    fn backward_step_equals_backward_then_step() {
        let config = OptimizerConfig::sgd(0.9, 5e-4);
        tch::manual_seed(3);
        let w0 = Tensor::randn([64, 33], (Kind::Float, tch::Device::Cpu));
        let x = Tensor::randn([100, 33], (Kind::Float, tch::Device::Cpu));
        let y = Tensor::randint(64, [100], (Kind::Int64, tch::Device::Cpu));
        let run = |functional: bool| {
            let w = w0.copy().set_requires_grad(true);
            let unused = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
            let frozen = Tensor::ones([2], (Kind::Float, tch::Device::Cpu));
            let named = vec![("w".into(), w.shallow_clone()), ("z".into(), unused), ("y".into(), frozen)];
            let mut opt = Optimizer::new(config.clone(), named);
            for step in 0..4 {
                let loss = x.matmul(&w.tr()).cross_entropy_for_logits(&y);
                if functional {
                    opt.backward_step(&loss, 0.1 / (step + 1) as f64);
                } else {
                    opt.zero_grad();
                    loss.backward();
                    opt.step(0.1 / (step + 1) as f64);
                }
            }
            w.detach()
        };
        assert!(run(true).equal(&run(false)));
    }
}
