//! `linear-probe`: for each listed layer, a multinomial logistic regression on frozen,
//! pooled features of a labeled train split, scored top-1 (and top-5) on a test split.
//! `solver = "lbfgs"`, the default, solves the convex problem to convergence (no seed left
//! in the result: two seeds of one probe agree to the last digit); `solver = "adam"` runs
//! `epochs` of mini-batch Adam at a constant rate (the protocol of versions 1-2). With a labeled `val` split, the weight decay is chosen per layer among `weight_decays` by
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
    /// `adam` only: epochs, learning rate and batch size (defaults filled in by `validate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Without `val`: the weight decay (filled in by `validate`: 1e-2 for `lbfgs`, 1e-4 for
    /// `adam`); with `val` it is chosen among `weight_decays` and not keyed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
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
    /// `lbfgs` (full batch, to convergence; the default) or `adam` (mini-batch, `epochs`,
    /// `lr`, `batch_size`).
    #[serde(default)]
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
    /// The element type of the feature files the probe writes and reads: `float16` (half
    /// the disk and page cache) or `float32` (the default; not keyed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
}

crate::config::choice! {
    /// How the probe's logistic regression is fitted.
    #[derive(Default)]
    pub enum ProbeSolver("probe solver") {
        Adam = "adam",
        #[default]
        Lbfgs = "lbfgs",
    }
}

/// The weight decays tried on `val` when the file lists none: one per decade.
/// On the conv3 and conv5 features of 10,000 CIFAR-10 images of a random `alexnet-small`
/// (`experiments/checks/probe-vs-sklearn.toml`, L-BFGS) top-1 rose with the decay from 1e-4
/// (0.420 / 0.389, 1,000 iterations without converging on conv3) through 1e-3 (0.460 /
/// 0.414, about 500 iterations) and 1e-2 (0.494 / 0.454, about 250) to 1e-1 (0.498 / 0.483,
/// about 140): weaker decays overfit 10,000 images of about 2,000 dimensions and converge
/// slowly, and the best value depends on the features, hence `val`.
const DEFAULT_WEIGHT_DECAYS: [f64; 4] = [1e-3, 1e-2, 1e-1, 1.0];
/// Without `val`: L-BFGS's weight decay (see above), and Adam's (its protocol before).
const D_WD_LBFGS: f64 = 1e-2;
const D_WD_ADAM: f64 = 1e-4;
const D_MAX_ITERATIONS: u64 = 1000;
/// On the conv3 and conv5 features of 10,000 CIFAR-10 images (a random `alexnet-small`,
/// weight decay 1e-3: `experiments/checks/probe-vs-sklearn.toml`) 1e-4 took 528 and 425
/// iterations against 840 and 752 for 1e-6, with the same loss to six digits and the same
/// top-1.
const D_TOLERANCE: f64 = 1e-4;

const D_EPOCHS: usize = 30;
const D_LR: f64 = 1e-3;
const D_BATCH: usize = 256;

impl LinearProbeParams {
    pub(super) fn validate(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        check_layers_and_splits(&self.layers, &self.train, &self.test, table, prefix)?;
        probe_data::check_image_size(self.image_size, table, prefix)?;
        probe_data::check_dtype(&mut self.dtype, table, prefix)?;
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
                let epochs = *self.epochs.get_or_insert(D_EPOCHS);
                if epochs == 0 || epochs > 100_000 {
                    return err("epochs", format!("expected 1..=100000, found {epochs}"));
                }
                let lr = *self.lr.get_or_insert(D_LR);
                if !(lr.is_finite() && lr > 0.0) {
                    return err("lr", format!("expected a positive learning rate, found {lr}"));
                }
                if *self.batch_size.get_or_insert(D_BATCH) == 0 {
                    return err("batch_size", "expected at least 1".into());
                }
            }
            ProbeSolver::Lbfgs => {
                for key in ["epochs", "lr", "batch_size"] {
                    if table.lookup(key).is_some() {
                        return err(
                            key,
                            format!("`{key}` applies to solver = \"adam\" (lbfgs runs to convergence: `max_iterations`, `tolerance`)"),
                        );
                    }
                }
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
        if self.val.is_none() {
            self.weight_decay.get_or_insert(match self.solver {
                ProbeSolver::Lbfgs => D_WD_LBFGS,
                ProbeSolver::Adam => D_WD_ADAM,
            });
        }
        validate_val(
            self.val.as_deref(),
            (&self.train, &self.test),
            // Filled in above when there is no `val`; with `val` it is not used.
            self.weight_decay.unwrap_or(D_WD_LBFGS),
            &mut self.weight_decays,
            table,
            prefix,
        )?;
        Ok(self)
    }
}

/// The weight decay of a probe of pooled features: `weight_decay`, or with a labeled `val`
/// split (not the test split, not the one fitted on) chosen among `weight_decays` (filled
/// in with one per decade from 1e-6 to 1e-1 when not given). `splits`: (train, test).
pub(super) fn validate_val(
    val: Option<&str>,
    splits: (&str, &str),
    weight_decay: f64,
    weight_decays: &mut Option<Vec<f64>>,
    table: &Node,
    prefix: &str,
) -> Result<(), ConfigError> {
    let at = |key: &str| table.lookup(key).unwrap_or(table);
    let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        return err(
            "weight_decay",
            format!("expected a non-negative weight decay, found {weight_decay}"),
        );
    }
    match val {
        None => {
            if weight_decays.is_some() {
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
            if val == splits.1 {
                return err(
                    "val",
                    format!("the weight decay would be chosen on the test split (`{val}`): give a validation split"),
                );
            }
            if val == splits.0 {
                return err(
                    "val",
                    format!("the weight decay would be chosen on the split it is fitted on (`{val}`)"),
                );
            }
            if table.lookup("weight_decay").is_some() {
                return err("weight_decay", "with `val` the weight decay is chosen among `weight_decays`".into());
            }
            let grid = weight_decays.get_or_insert_with(|| DEFAULT_WEIGHT_DECAYS.to_vec());
            if grid.is_empty() || grid.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
                return err("weight_decays", "expected a non-empty list of non-negative weight decays".into());
            }
        }
    }
    Ok(())
}

#[cfg(feature = "torch")]
impl LinearProbeParams {
    /// One probe with weight decay `wd`, by the stage's solver (`start`: a warm start for
    /// L-BFGS), on `device`.
    fn fit(
        &self,
        (x, y): (&tch::Tensor, &tch::Tensor),
        classes: i64,
        wd: f64,
        seed: u64,
        start: Option<&Probe>,
        device: tch::Device,
    ) -> Probe {
        match self.solver {
            ProbeSolver::Adam => {
                let cfg = ProbeConfig {
                    // Filled in by `validate`.
                    epochs: self.epochs.unwrap_or(D_EPOCHS),
                    lr: self.lr.unwrap_or(D_LR),
                    weight_decay: wd,
                    batch_size: self.batch_size.unwrap_or(D_BATCH),
                };
                Probe::fit(x, y, classes, &cfg, seed, device)
            }
            ProbeSolver::Lbfgs => {
                let cfg = LbfgsConfig {
                    // Filled in by `validate`.
                    max_iterations: self.max_iterations.unwrap_or(D_MAX_ITERATIONS),
                    tolerance: self.tolerance.unwrap_or(D_TOLERANCE),
                    ..LbfgsConfig::new(wd)
                };
                let clock = std::time::Instant::now();
                let (probe, report) = Probe::fit_lbfgs(x, y, classes, &cfg, start, device);
                tracing::debug!(
                    "linear probe: L-BFGS {} after {} iterations in {:.1}s (weight decay {wd:e}, loss {:.6})",
                    if report.converged { "converged" } else { "stopped" },
                    report.iterations,
                    clock.elapsed().as_secs_f64(),
                    report.loss
                );
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
    /// 2 since `vgg16-small` lost its last max-pool; 3: L-BFGS by default, one seed
    /// derivation (`crate::seed`).
    const VERSION: u32 = 3;
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
    /// Adam draws the classifier's initial weights and batch order; L-BFGS starts from zero
    /// and draws nothing.
    fn stochastic(&self) -> bool {
        self.solver == ProbeSolver::Adam
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
        let grid = self.weight_decays.clone().unwrap_or_default();
        let choice = self.val.is_some().then_some(grid.as_slice());
        let pooled = Pooled {
            train: &self.train,
            layers: &self.layers,
            pooled_dim: self.pooled_dim,
            image_size: self.image_size,
            dtype: probe_data::dtype_of(&self.dtype),
        };
        probe_layers(
            ctx,
            &pooled,
            // Filled in by `validate` when there is no `val`.
            self.weight_decay.unwrap_or(D_WD_LBFGS),
            choice,
            &|x, y, classes, wd, seed, start| self.fit((x, y), classes, wd, seed, start, ctx.device),
            &|probe, x, y| probe.score(x, y),
            &Probe::clone_probe,
        )
    }
}

/// Which pooled features a probe reads: the layers of the stage input `model`, pooled to
/// about `pooled_dim` values each, the images read at `image_size` (else the model's side),
/// stored as `dtype`.
#[cfg(feature = "torch")]
pub(super) struct Pooled<'a> {
    /// The train split as the file names it (the test and val labels are matched to its
    /// classes by name).
    pub train: &'a str,
    pub layers: &'a [String],
    pub pooled_dim: Option<usize>,
    pub image_size: Option<usize>,
    /// The element type the features are stored in.
    pub dtype: crate::data::NpyDtype,
}

/// Fits a probe on (features, labels, classes, weight decay, seed, a warm start).
#[cfg(feature = "torch")]
pub(super) type FitProbe<'a, P> = dyn Fn(&tch::Tensor, &tch::Tensor, i64, f64, u64, Option<&P>) -> P + 'a;

/// A probe per layer of `pooled` features of the `train` split, scored on `test`, with
/// `weight_decay`, or with `choice` (a grid; needs the `val` input) the decay of the best
/// top-1 on `val`, tried from the strongest to the weakest, each fit given the previous one
/// (a warm start for L-BFGS), the stronger on a tie. Rows `top1`, `top5` (more than five
/// classes) and the chosen `weight_decay` per layer. Every probe of pooled features runs so.
#[cfg(feature = "torch")]
pub(super) fn probe_layers<P>(
    ctx: &RunCtx,
    pooled: &Pooled,
    weight_decay: f64,
    choice: Option<&[f64]>,
    fit: &FitProbe<'_, P>,
    score: &dyn Fn(&P, &tch::Tensor, &tch::Tensor) -> crate::eval::linear_probe::ProbeScores,
    clone: &dyn Fn(&P) -> P,
) -> Result<Outcome, StageError> {
    let model = LoadedModel::load(ctx.stage_input("model")?, ctx.device)?;
    let layers: Vec<&str> = pooled.layers.iter().map(String::as_str).collect();
    let how = (pooled.pooled_dim, pooled.image_size, pooled.dtype);
    let train = split_features(ctx, &model, "train", &layers, how, None)?;
    let into = Some((pooled.train, train.classes.as_slice()));
    let test = split_features(ctx, &model, "test", &layers, how, into)?;
    let val = match choice {
        Some(_) => Some(split_features(ctx, &model, "val", &layers, how, into)?),
        None => None,
    };
    let (xs_train, y_train, classes) = (train.xs, train.labels, train.classes.len() as i64);
    let (xs_test, y_test) = (test.xs, test.labels);
    let mut rows = Vec::new();
    let mut summary = Vec::new();
    for (i, layer) in pooled.layers.iter().enumerate() {
        // Features stay where they are (over files); the fits and scores move what they
        // read to the device.
        let (x, y) = (&xs_train[i], &y_train);
        let seed = crate::seed::item(crate::seed::stream(ctx.seed, "probe per layer"), &[i as u64]);
        let (probe, chosen) = match (&val, choice) {
            (Some(v), Some(grid)) => {
                let (xv, yv) = (&v.xs[i], &v.labels);
                let mut grid = grid.to_vec();
                grid.sort_by(|a, b| b.total_cmp(a));
                let mut best: Option<(f64, f64, P)> = None;
                let mut previous: Option<P> = None;
                for wd in grid {
                    let probe = fit(x, y, classes, wd, seed, previous.as_ref());
                    let top1 = score(&probe, xv, yv).top1;
                    if best.as_ref().is_none_or(|(b, _, _)| top1 > *b) {
                        best = Some((top1, wd, clone(&probe)));
                    }
                    previous = Some(probe);
                }
                let Some((_, wd, probe)) = best else {
                    return Err(StageError::Failed("internal: an empty weight-decay grid".into()));
                };
                (probe, Some(wd))
            }
            _ => (fit(x, y, classes, weight_decay, seed, None), None),
        };
        let s = score(&probe, &xs_test[i], &y_test);
        let row = |metric: &str, value: f64| MetricRow {
            layer: layer.clone(),
            metric: metric.into(),
            value,
        };
        rows.push(row("top1", s.top1));
        if let Some(t5) = s.top5 {
            rows.push(row("top5", t5));
        }
        if let Some(wd) = chosen {
            rows.push(row("weight_decay", wd));
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
