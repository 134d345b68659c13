//! `linear-probe`: for each listed layer, a multinomial logistic regression on frozen,
//! pooled features of a labeled train split, scored top-1 (and top-5) on a test split.
//! `solver = "lbfgs"` solves the convex problem to convergence (no seed left in the result);
//! with a labeled `val` split, the weight decay is chosen per layer among `weight_decays` by
//! top-1 on `val` (never on `test`) and recorded as the metric `weight_decay`.
use serde::{Deserialize, Serialize};

use super::labels::plan_class_map;
#[cfg(feature = "torch")]
use super::model_io::LoadedModel;
#[cfg(feature = "torch")]
use super::probe_data::split_features;
use super::probe_data::{self, check_layers_and_splits};
use super::{InputSpec, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
#[cfg(feature = "torch")]
use super::{MetricRow, Outcome, RunCtx, StageError};
use crate::config::{ConfigError, Node};
#[cfg(feature = "torch")]
use crate::eval::linear_probe::{LbfgsConfig, Probe, ProbeConfig};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinearProbeParams {
    /// A model stage.
    pub model: String,
    pub layers: Vec<String>,
    /// Labeled `dataset:split` to fit on.
    pub train: String,
    /// Labeled `dataset:split` to score on.
    pub test: String,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// For each class of the test split, the index of the train split's class of the same
    /// name: filled in at planning, and keyed only when the two class lists differ. Before
    /// labels were matched by name, such splits were scored by position (wrongly), and
    /// those numbers may be cached: the field gives them new keys, while splits with the
    /// same classes (every configuration that was right) keep theirs.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub class_map: Option<Vec<usize>>,
    /// Target size of each pooled layer (default: about 2,000 under 128 px, 9,216 above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooled_dim: Option<usize>,
    /// `adam` (mini-batch, `epochs`, `lr`, `batch_size`) or `lbfgs` (full batch, to
    /// convergence). Keyed only when not `adam`, so that earlier keys stay.
    #[serde(default, skip_serializing_if = "ProbeSolver::is_adam")]
    pub solver: ProbeSolver,
    /// `lbfgs`: iterations at most, and the gradient norm that counts as converged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// A labeled `dataset:split`, disjoint from `test`, on which the weight decay is chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val: Option<String>,
    /// With `val`: the weight decays tried (default 1e-6 .. 1e-1, one per decade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decays: Option<Vec<f64>>,
    /// Read the images at this size instead of the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
}

crate::config::choice! {
    /// How the probe's logistic regression is fitted.
    #[derive(Default)]
    pub enum ProbeSolver("probe solver") {
        #[default]
        Adam = "adam",
        Lbfgs = "lbfgs",
    }
}

impl ProbeSolver {
    fn is_adam(&self) -> bool {
        *self == ProbeSolver::Adam
    }
}

/// The weight decays tried on `val` when the file lists none: one per decade.
const DEFAULT_WEIGHT_DECAYS: [f64; 6] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];
const D_MAX_ITERATIONS: u64 = 1000;
const D_TOLERANCE: f64 = 1e-6;

fn d_epochs() -> usize {
    30
}
fn d_lr() -> f64 {
    1e-3
}
fn d_wd() -> f64 {
    1e-4
}
fn d_batch() -> usize {
    256
}

impl LinearProbeParams {
    pub(super) fn validate(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        check_layers_and_splits(&self.layers, &self.train, &self.test, table, prefix)?;
        probe_data::check_image_size(self.image_size, table, prefix)?;
        if self.epochs == 0 || self.epochs > 100_000 {
            return err("epochs", format!("expected 1..=100000, found {}", self.epochs));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err("lr", format!("expected a positive learning rate, found {}", self.lr));
        }
        if self.batch_size == 0 {
            return err("batch_size", "expected at least 1".into());
        }
        if self.pooled_dim == Some(0) {
            return err("pooled_dim", "expected a positive size".into());
        }
        match self.solver {
            ProbeSolver::Adam => {
                for key in ["max_iterations", "tolerance"] {
                    if table.lookup(key).is_some() {
                        return err(key, format!("`{key}` applies to solver = \"lbfgs\" (adam runs `epochs`)"));
                    }
                }
            }
            ProbeSolver::Lbfgs => {
                let iterations = *self.max_iterations.get_or_insert(D_MAX_ITERATIONS);
                if !(1..=1_000_000).contains(&iterations) {
                    return err("max_iterations", format!("expected 1..=1000000, found {iterations}"));
                }
                let tolerance = *self.tolerance.get_or_insert(D_TOLERANCE);
                if !(tolerance.is_finite() && tolerance > 0.0) {
                    return err("tolerance", format!("expected a positive tolerance, found {tolerance}"));
                }
                // (Keyed with the defaults filled in, like the rest of the file's keys.)
            }
        }
        self.validate_val(table, prefix)
    }

    fn validate_val(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return err(
                "weight_decay",
                format!("expected a non-negative weight decay, found {}", self.weight_decay),
            );
        }
        match &self.val {
            None => {
                if self.weight_decays.is_some() {
                    return err(
                        "weight_decays",
                        "`weight_decays` are chosen among on a `val` split: give one".into(),
                    );
                }
            }
            Some(val) => {
                if !val.contains(':') {
                    return err("val", format!("expected a labeled `dataset:split`, found `{val}`"));
                }
                if *val == self.test {
                    return err(
                        "val",
                        format!("the weight decay would be chosen on the test split (`{val}`): give a validation split"),
                    );
                }
                if *val == self.train {
                    return err(
                        "val",
                        format!("the weight decay would be chosen on the split it is fitted on (`{val}`)"),
                    );
                }
                if table.lookup("weight_decay").is_some() {
                    return err("weight_decay", "with `val` the weight decay is chosen among `weight_decays`".into());
                }
                let grid = self.weight_decays.get_or_insert_with(|| DEFAULT_WEIGHT_DECAYS.to_vec());
                if grid.is_empty() || grid.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
                    return err("weight_decays", "expected a non-empty list of non-negative weight decays".into());
                }
            }
        }
        Ok(self)
    }
}

#[cfg(feature = "torch")]
impl LinearProbeParams {
    /// One probe with weight decay `wd`, by the stage's solver (`start`: a warm start for
    /// L-BFGS).
    fn fit(&self, x: &tch::Tensor, y: &tch::Tensor, classes: i64, wd: f64, seed: u64, start: Option<&Probe>) -> Probe {
        match self.solver {
            ProbeSolver::Adam => {
                let cfg = ProbeConfig {
                    epochs: self.epochs,
                    lr: self.lr,
                    weight_decay: wd,
                    batch_size: self.batch_size,
                };
                Probe::fit(x, y, classes, &cfg, seed)
            }
            ProbeSolver::Lbfgs => {
                let cfg = LbfgsConfig {
                    // Filled in by `validate`.
                    max_iterations: self.max_iterations.unwrap_or(D_MAX_ITERATIONS),
                    tolerance: self.tolerance.unwrap_or(D_TOLERANCE),
                    ..LbfgsConfig::new(wd)
                };
                let (probe, report) = Probe::fit_lbfgs(x, y, classes, &cfg, start);
                if !report.converged {
                    tracing::warn!(
                        "linear probe: L-BFGS stopped after {} iterations without converging (loss {:.6}); raise `max_iterations`",
                        report.iterations,
                        report.loss
                    );
                }
                probe
            }
        }
    }
}

impl Stage for LinearProbeParams {
    const NAME: &'static str = "linear-probe";
    /// 2 since `vgg16-small` lost its last max-pool.
    const VERSION: u32 = 2;
    const OUTPUT: OutputKind = OutputKind::Metrics;
    const METRICS: &'static [&'static str] = &["top1", "top5", "weight_decay"];

    /// `weight_decay` (the chosen value) only when it is chosen on `val`.
    fn metrics(&self) -> Vec<&'static str> {
        match self.val {
            Some(_) => Self::METRICS.to_vec(),
            None => vec!["top1", "top5"],
        }
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table.decode::<LinearProbeParams>(prefix)?.validate(table, prefix)
    }
    /// The classifier's initial weights and batch order are drawn.
    fn stochastic(&self) -> bool {
        true
    }
    fn device_dependent(&self) -> bool {
        true
    }
    fn inputs(&self) -> Vec<InputSpec> {
        let mut inputs = probe_data::model_and_splits(&self.model, &self.train, &self.test);
        if let Some(val) = &self.val {
            inputs.push(super::params::data_ref("val", val));
        }
        inputs
    }
    fn networks(&self) -> Networks<'_> {
        probe_data::reads_layers(&self.model, &self.layers)
    }
    fn rows(&self) -> Rows<'_> {
        Rows::None
    }
    /// The test (and val) split's labels are matched to the train split's by class name; the
    /// model's network must read `image_size`.
    fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError> {
        self.class_map = plan_class_map(upstream, &self.train, &self.test, "test")?;
        if let Some(val) = &self.val {
            plan_class_map(upstream, &self.train, val, "val")?;
        }
        probe_data::check_image_size_fits(self.image_size, upstream.network(&self.model))
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let model = LoadedModel::load(ctx.stage_input("model")?, ctx.device)?;
        let layers: Vec<&str> = self.layers.iter().map(String::as_str).collect();
        let train = split_features(ctx, &model, "train", &layers, self.pooled_dim, self.image_size, None)?;
        let into = Some((self.train.as_str(), train.classes.as_slice()));
        let test = split_features(ctx, &model, "test", &layers, self.pooled_dim, self.image_size, into)?;
        let val = match &self.val {
            Some(_) => Some(split_features(ctx, &model, "val", &layers, self.pooled_dim, self.image_size, into)?),
            None => None,
        };
        let (xs_train, y_train, classes) = (train.xs, train.labels, train.classes.len() as i64);
        let (xs_test, y_test) = (test.xs, test.labels);
        let d = ctx.device;
        let mut rows = Vec::new();
        let mut summary = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let (x, y) = (xs_train[i].to_device(d), y_train.to_device(d));
            let seed = ctx.seed.wrapping_add(i as u64);
            let (probe, chosen) = match &val {
                None => (self.fit(&x, &y, classes, self.weight_decay, seed, None), None),
                Some(v) => {
                    let (xv, yv) = (v.xs[i].to_device(d), v.labels.to_device(d));
                    // From the strongest regularisation to the weakest, each fit starting from
                    // the previous one (L-BFGS; Adam starts afresh); the best top-1 on `val`
                    // wins, the stronger decay on a tie.
                    let mut grid = self.weight_decays.clone().unwrap_or_default();
                    grid.sort_by(|a, b| b.total_cmp(a));
                    let mut best: Option<(f64, f64, Probe)> = None;
                    let mut previous: Option<Probe> = None;
                    for wd in grid {
                        let probe = self.fit(&x, &y, classes, wd, seed, previous.as_ref());
                        let top1 = probe.score(&xv, &yv).top1;
                        if best.as_ref().is_none_or(|(b, _, _)| top1 > *b) {
                            best = Some((top1, wd, probe.clone_probe()));
                        }
                        previous = Some(probe);
                    }
                    let Some((_, wd, probe)) = best else {
                        return Err(StageError::Failed("internal: an empty weight-decay grid".into()));
                    };
                    (probe, Some(wd))
                }
            };
            let s = probe.score(&xs_test[i].to_device(d), &y_test.to_device(d));
            rows.push(MetricRow {
                layer: layer.clone(),
                metric: "top1".into(),
                value: s.top1,
            });
            if let Some(t5) = s.top5 {
                rows.push(MetricRow {
                    layer: layer.clone(),
                    metric: "top5".into(),
                    value: t5,
                });
            }
            if let Some(wd) = chosen {
                rows.push(MetricRow {
                    layer: layer.clone(),
                    metric: "weight_decay".into(),
                    value: wd,
                });
                summary.push(format!("{layer} {:.3} (wd {wd:e})", s.top1));
            } else {
                summary.push(format!("{layer} {:.3}", s.top1));
            }
        }
        Ok(Outcome {
            metrics: rows,
            summary: format!("top-1: {}", summary.join(", ")),
        })
    }
}
