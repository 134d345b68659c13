//! `linear-probe`: for each listed layer, a multinomial logistic regression on frozen,
//! pooled features of a labeled train split, scored top-1 (and top-5) on a test split.
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
use crate::eval::linear_probe::{Probe, ProbeConfig};

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
}

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
    pub(super) fn validate(self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        check_layers_and_splits(&self.layers, &self.train, &self.test, table, prefix)?;
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
        Ok(self)
    }
}

impl Stage for LinearProbeParams {
    const NAME: &'static str = "linear-probe";
    /// 2 since `vgg16-small` lost its last max-pool.
    const VERSION: u32 = 2;
    const OUTPUT: OutputKind = OutputKind::Metrics;
    const METRICS: &'static [&'static str] = &["top1", "top5"];

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
        probe_data::model_and_splits(&self.model, &self.train, &self.test)
    }
    fn networks(&self) -> Networks<'_> {
        probe_data::reads_layers(&self.model, &self.layers)
    }
    fn rows(&self) -> Rows<'_> {
        Rows::None
    }
    /// The test split's labels are matched to the train split's by class name.
    fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError> {
        self.class_map = plan_class_map(upstream, &self.train, &self.test, "test")?;
        Ok(())
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let model = LoadedModel::load(ctx.stage_input("model")?, ctx.device)?;
        let layers: Vec<&str> = self.layers.iter().map(String::as_str).collect();
        let train = split_features(ctx, &model, "train", &layers, self.pooled_dim, None)?;
        let test = split_features(ctx, &model, "test", &layers, self.pooled_dim, Some((&self.train, &train.classes)))?;
        let (xs_train, y_train, classes) = (train.xs, train.labels, train.classes.len() as i64);
        let (xs_test, y_test) = (test.xs, test.labels);
        let cfg = ProbeConfig {
            epochs: self.epochs,
            lr: self.lr,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
        };
        let mut rows = Vec::new();
        let mut summary = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let d = ctx.device;
            let probe = Probe::fit(
                &xs_train[i].to_device(d),
                &y_train.to_device(d),
                classes,
                &cfg,
                ctx.seed.wrapping_add(i as u64),
            );
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
            summary.push(format!("{layer} {:.3}", s.top1));
        }
        Ok(Outcome {
            metrics: rows,
            summary: format!("top-1: {}", summary.join(", ")),
        })
    }
}
