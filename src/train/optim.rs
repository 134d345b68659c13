//! Optimisers with state we own (momentum buffers, Adam moments), so that a checkpoint
//! holds everything needed to resume bit for bit.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

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

/// SGD with momentum and (coupled) weight decay, as in PyTorch's `torch.optim.SGD`,
/// or Adam as in `torch.optim.Adam`; state is a name -> tensor map.
pub struct Optimizer {
    pub config: OptimizerConfig,
    params: Vec<(String, Tensor)>,
    state: BTreeMap<String, Tensor>,
    step: i64,
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

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let c = self.config.clone();
        tch::no_grad(|| {
            for (name, p) in &mut self.params {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let mut d = if c.weight_decay != 0.0 {
                    &g + &*p * c.weight_decay
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
                        let _ = p.g_sub_(&(d * lr));
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
