//! `knn-probe`: for each listed layer, weighted k-nearest-neighbour classification on the
//! cosine similarity of frozen, pooled features (Wu et al. 2018): the train split is the
//! memory bank, the test split is scored top-1 (and top-5).
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
use crate::eval::knn::{knn_classify, KnnConfig};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KnnProbeParams {
    /// A model stage.
    pub model: String,
    pub layers: Vec<String>,
    /// Labeled `dataset:split`: the memory bank.
    pub train: String,
    /// Labeled `dataset:split` to score on.
    pub test: String,
    /// Neighbours that vote.
    #[serde(default = "d_k")]
    pub k: usize,
    /// Weights are `exp(similarity / temperature)`.
    #[serde(default = "d_temperature")]
    pub temperature: f64,
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
    /// Standardise each feature dimension with the memory bank's mean and standard deviation
    /// before the cosine (the default: post-ReLU features are all positive, and without
    /// centring the cosine of any two is dominated by their shared mean; `false` gives the
    /// raw cosine of versions 1).
    #[serde(default = "d_standardize")]
    pub standardize: bool,
    /// Read the images at this size instead of the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// The element type of the feature files the probe writes and reads: `float16` (half
    /// the disk and page cache) or `float32` (the default; not keyed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
}

fn d_k() -> usize {
    20
}
fn d_standardize() -> bool {
    true
}
fn d_temperature() -> f64 {
    0.07
}

impl KnnProbeParams {
    fn validate(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        check_layers_and_splits(&self.layers, &self.train, &self.test, table, prefix)?;
        probe_data::check_image_size(self.image_size, table, prefix)?;
        probe_data::check_dtype(&mut self.dtype, table, prefix)?;
        if self.k == 0 || self.k > 100_000 {
            return err("k", format!("expected 1..=100000 neighbours, found {}", self.k));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return err(
                "temperature",
                format!("expected a positive temperature, found {}", self.temperature),
            );
        }
        if self.pooled_dim == Some(0) {
            return err("pooled_dim", "expected a positive size".into());
        }
        Ok(self)
    }
}

/// The refusal of a `k` beyond the memory bank.
fn too_many_neighbours(k: usize, train: &str, images: usize) -> String {
    format!("k = {k} neighbours, but the train split `{train}` has only {images} images")
}

impl Stage for KnnProbeParams {
    const NAME: &'static str = "knn-probe";
    /// 2: features standardised by default.
    const VERSION: u32 = 2;
    const OUTPUT: OutputKind = OutputKind::Metrics;
    const METRICS: &'static [&'static str] = &["top1", "top5"];

    fn metrics(&self) -> Vec<&'static str> {
        Self::METRICS.to_vec()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table.decode::<KnnProbeParams>(prefix)?.validate(table, prefix)
    }
    /// Similarities, a top-k and sums: no random numbers.
    fn stochastic(&self) -> bool {
        false
    }
    /// Float matrix products and sums whose rounding differs between cpu and cuda (a
    /// near-tie among neighbours may then fall the other way).
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
    /// The test split's labels are matched to the train split's by class name; `k` is at
    /// most the train split's images; the model's network must read `image_size`.
    fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError> {
        if let Some(bank) = upstream.split(&self.train) {
            if self.k > bank.len {
                return Err(ParamError::new("k", too_many_neighbours(self.k, &self.train, bank.len)));
            }
        }
        self.class_map = plan_class_map(upstream, &self.train, &self.test, "test")?;
        probe_data::check_image_size_fits(self.image_size, upstream.network(&self.model))
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let model = LoadedModel::load(ctx.stage_input("model")?, ctx.device)?;
        let layers: Vec<&str> = self.layers.iter().map(String::as_str).collect();
        let how = (self.pooled_dim, self.image_size, probe_data::dtype_of(&self.dtype));
        let bank = split_features(ctx, &model, "train", &layers, how, None)?;
        let test = split_features(ctx, &model, "test", &layers, how, Some((&self.train, &bank.classes)))?;
        let n_bank = bank.labels.size()[0] as usize;
        if self.k > n_bank {
            return Err(StageError::Input(too_many_neighbours(self.k, &self.train, n_bank)));
        }
        let cfg = KnnConfig {
            k: self.k as i64,
            temperature: self.temperature,
            block_rows: None,
            bank_rows: None,
            standardize: self.standardize,
        };
        let mut rows = Vec::new();
        let mut summary = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            // The features stay over their files: the blocks go to the device.
            let s = knn_classify(
                &bank.xs[i],
                &bank.labels,
                &test.xs[i],
                &test.labels,
                bank.classes.len() as i64,
                &cfg,
                ctx.device,
            )?;
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
            summary: format!("{}-NN top-1: {}", self.k, summary.join(", ")),
        })
    }
}
