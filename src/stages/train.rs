//! `train`: trains an architecture on the pseudo-labels of an `assign` stage (over the
//! images it labeled) or on the true labels of a labeled split (`labels = "truth"`); with
//! `test`, the trained classifier itself is scored on a labeled test split.
#[cfg(feature = "torch")]
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::crop::{CropParams, CROP_KEYS};
use super::network_params::NetworkParams;
use super::params::{data_ref, MODEL};
use super::solver::SolverParams;
use super::{HeadLabels, InputSpec, Networks, OutputKind, ParamError, Rows, Stage, StageKind, Upstream};
use crate::config::struct_fields;
use crate::config::{ConfigError, Node};
#[cfg(feature = "torch")]
use {
    super::artefacts,
    super::images::{split_images, Reading},
    super::labels::true_labels,
    super::model_io::ModelMeta,
    super::supervised::{score_classifier, train_classifier, Start},
    super::{MetricRow, Outcome, RunCtx, StageError},
    crate::data::{open_split, Fit},
    crate::train::batches::Augment,
    crate::train::trainer::EpochStats,
};

/// The keys of [`TrainParams`] besides those of its flattened network and solver options.
pub(crate) const OWN_KEYS: &[&str] = &["data", "labels", "init", "test", "crop_padding", "flip"];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainParams {
    #[serde(flatten)]
    pub net: NetworkParams,
    /// `dataset:split` of the images; with an assign stage, defaults to its images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// `"truth"` or an assign stage.
    pub labels: String,
    /// A model stage to start from (matching variables are copied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// A labeled `dataset:split` to score the trained classifier on (top-1 and top-5 as
    /// the metrics `test_top1`, `test_top5`); only with `labels = "truth"`. Keyed only
    /// when given, so stages without it keep their keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// Epochs, batch size, optimizer and learning-rate schedule.
    #[serde(flatten)]
    pub solver: SolverParams,
    /// Random translation (zero-padded crop) in pixels.
    #[serde(default = "d_pad")]
    pub crop_padding: usize,
    #[serde(default = "d_true")]
    pub flip: bool,
    /// `crop = "random-resized"` (ImageNet's training crop) and its ranges.
    #[serde(flatten)]
    pub crop: CropParams,
    /// The `init` model's classifier head stays behind although it may have as many
    /// classes: it was trained on another labelling (true labels of splits whose class
    /// names differ, another clustering's pseudo-labels, or clusters where this stage has
    /// true labels or the reverse). Filled in at planning and keyed only when true: before,
    /// such a head was taken over by position (its outputs meaning other classes), and
    /// entries trained so may be cached; every other configuration keeps its key.
    #[serde(default, skip_deserializing, skip_serializing_if = "std::ops::Not::not")]
    pub fresh_head: bool,
}

fn d_pad() -> usize {
    4
}
fn d_true() -> bool {
    true
}

impl TrainParams {
    pub fn uses_true_labels(&self) -> bool {
        self.labels == "truth"
    }

    pub(super) fn validate(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        self.net.resolve(table, prefix)?;
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        if self.uses_true_labels() && self.data.is_none() {
            return Err(table.error(
                prefix,
                "missing required key `data`: training on labels = \"truth\" needs a labeled `dataset:split`",
            ));
        }
        if let Some(test) = &self.test {
            if !self.uses_true_labels() {
                return err(
                    "test",
                    format!(
                        "`test` scores the classifier against the split's true classes, but it is trained on the \
                         clusters of `{}`: give labels = \"truth\", or score the model with a probe",
                        self.labels
                    ),
                );
            }
            if self.data.as_deref() == Some(test.as_str()) {
                return err(
                    "test",
                    format!("the classifier would be scored on the split it is trained on (`{test}`): give a held-out split"),
                );
            }
        }
        self.solver.validate(table, prefix)?;
        self.crop.validate(table, prefix)?;
        if self.crop_padding > self.net.image_size / 2 {
            return err(
                "crop_padding",
                format!("expected at most half the image size, found {}", self.crop_padding),
            );
        }
        Ok(self)
    }

    /// Whether this stage and its `init` model are both trained on true labels, of as many
    /// classes with other names (as far as planning can read the splits).
    fn init_classes_differ(&self, upstream: &dyn Upstream) -> bool {
        let Some(theirs) = self.init.as_ref().and_then(|init| upstream.trained_on(init)) else {
            return false;
        };
        match theirs {
            HeadLabels::Truth(split) if self.uses_true_labels() => {
                let Some(data) = &self.data else { return false };
                match (upstream.split(data), upstream.split(&split)) {
                    (Some(ours), Some(theirs)) => ours.classes.len() == theirs.classes.len() && ours.classes != theirs.classes,
                    _ => false,
                }
            }
            // Cluster ids of one clustering mean nothing in another (DeepCluster starts a new
            // head after every clustering), nor as class names.
            HeadLabels::Clusters(labels) => labels != self.labels,
            HeadLabels::Truth(_) => true,
        }
    }
}

impl Stage for TrainParams {
    const NAME: &'static str = "train";
    /// 3 since `init` takes over the classifier head only with the same classes (by name
    /// since `fresh_head`, which moves only the keys of stages it applies to; 2 since
    /// `vgg16-small` lost its last max-pool); 4: one seed derivation (`crate::seed`).
    const VERSION: u32 = 4;
    const OUTPUT: OutputKind = OutputKind::Model;
    /// The last epoch's training loss and accuracy on its (pseudo-)labels (augmented,
    /// dropout on), and with a `test` split the test accuracies.
    const METRICS: &'static [&'static str] = &["train_loss", "train_accuracy", "test_top1", "test_top5"];

    fn metrics(&self) -> Vec<&'static str> {
        let n = if self.test.is_some() { 4 } else { 2 };
        Self::METRICS[..n].to_vec()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table
            .decode_flattened::<TrainParams>(
                prefix,
                &[
                    OWN_KEYS,
                    CROP_KEYS,
                    struct_fields::<NetworkParams>(),
                    struct_fields::<SolverParams>(),
                ],
            )?
            .validate(table, prefix)
    }
    /// Initial weights, shuffling, augmentation and dropout are drawn.
    fn stochastic(&self) -> bool {
        true
    }
    fn device_dependent(&self) -> bool {
        true
    }
    fn inputs(&self) -> Vec<InputSpec> {
        let mut v = Vec::new();
        if let Some(d) = &self.data {
            v.push(data_ref("data", d));
        }
        if !self.uses_true_labels() {
            v.push(InputSpec::Stage {
                key: "labels",
                stage: self.labels.clone(),
                accepts: &[OutputKind::Labels],
            });
        }
        if let Some(init) = &self.init {
            v.push(InputSpec::Stage {
                key: "init",
                stage: init.clone(),
                accepts: MODEL,
            });
        }
        if let Some(test) = &self.test {
            v.push(data_ref("test", test));
        }
        v
    }
    fn networks(&self) -> Networks<'_> {
        Networks {
            builds: Some(self.net.config()),
            init: self.init.as_deref().map(|s| ("init", s)),
            reads: None,
        }
    }
    fn rows(&self) -> Rows<'_> {
        Rows::None
    }
    /// On pseudo-labels, the images are those the assign stage labeled: filled in when
    /// `data` is not given, checked when it is. On true labels from a model stage trained
    /// on true labels too, its classifier head is taken over only with the same class names.
    fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError> {
        self.fresh_head = self.init_classes_differ(upstream);
        // The classifier is scored on `test` in the training split's classes, by name.
        if let (Some(data), Some(test), true) = (&self.data, &self.test, self.uses_true_labels()) {
            super::labels::plan_class_map(upstream, data, test, "test")?;
        }
        if self.uses_true_labels() || upstream.kind(&self.labels) != Some(StageKind::Assign) {
            return Ok(());
        }
        let Some(implied) = upstream.rows(&self.labels) else {
            return Ok(());
        };
        match &self.data {
            None => self.data = Some(implied),
            Some(given) if *given != implied => {
                return Err(ParamError::new(
                    "data",
                    format!("`{}` labels images of `{implied}`, not of `{given}`", self.labels),
                ))
            }
            Some(_) => {}
        }
        Ok(())
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let (spec, split) = ctx.data_input("data")?;
        let source = open_split(spec, split)?;
        let (labels, classes): (Vec<i64>, i64) = if self.uses_true_labels() {
            let mut v = Vec::with_capacity(source.len());
            for i in 0..source.len() {
                let l = source
                    .label(i)
                    .ok_or_else(|| StageError::Input(format!("{}: no true label (the split is unlabeled)", source.describe(i))))?;
                v.push(l as i64);
            }
            (v, source.classes().len() as i64)
        } else {
            let dir = ctx.stage_input("labels")?;
            let v: Vec<i64> = artefacts::read_tensor(&dir.join("labels.npy"))?.try_into()?;
            let index: serde_json::Value = artefacts::read_json(&dir.join("index.json"))?;
            let k = index["k"].as_i64().unwrap_or_else(|| v.iter().max().map(|m| m + 1).unwrap_or(1));
            (v, k)
        };
        if labels.len() != source.len() {
            return Err(StageError::Input(format!(
                "`{}:{split}` has {} images but {} labels were given",
                spec.name,
                source.len(),
                labels.len()
            )));
        }
        // The test split, checked before any training: its true labels, mapped into the
        // training split's classes by name (a class the training split lacks is an input error).
        let test = match self.test {
            None => None,
            Some(_) => {
                let (test_spec, test_split) = ctx.data_input("test")?;
                let test_source = open_split(test_spec, test_split)?;
                let train_name = format!("{}:{split}", spec.name);
                let test_labels = true_labels(
                    test_source.as_ref(),
                    &format!("{}:{test_split}", test_spec.name),
                    Some((train_name.as_str(), source.classes())),
                )?;
                Some((test_source, test_labels))
            }
        };
        let meta = ModelMeta {
            config: self.net.config(),
            classes,
            jigsaw: None,
            projection: None,
            decoder: None,
            per_image_norm: false,
            lightness_input: false,
            fit: self.crop.eval_fit(self.net.image_size),
        };
        // Kept in memory when it fits the decode budget, else streamed.
        // A random resized crop cuts from the originals.
        let size = meta.config.image_size as usize;
        let reading = if self.crop.resized_crop().is_some() {
            Reading::Originals
        } else {
            Reading::Whole(Fit::Squash)
        };
        let set = Arc::new(split_images(ctx, "data", Arc::from(source), size, reading)?);
        let start = match self.init {
            Some(_) if self.fresh_head => Start::Backbone(ctx.stage_input("init")?),
            Some(_) => Start::Init(ctx.stage_input("init")?),
            None => Start::Fresh,
        };
        let augment = Augment {
            crop_padding: self.crop_padding,
            flip: self.flip,
            resized_crop: self.crop.resized_crop(),
        };
        let n_labels = labels.len();
        let (model, history) = train_classifier(ctx, meta, start, set, labels, augment, &self.solver)?;
        model.save(ctx.workdir)?;
        let row = |metric: &str, value: f64| MetricRow {
            layer: String::new(),
            metric: metric.into(),
            value,
        };
        let last = history.last().cloned().unwrap_or(EpochStats {
            epoch: 0,
            loss: f64::NAN,
            metric: 0.0,
            lr: 0.0,
            seconds: 0.0,
        });
        let mut metrics = vec![row("train_loss", last.loss), row("train_accuracy", last.metric)];
        let mut scored = String::new();
        if let Some((test_source, test_labels)) = test {
            let test = split_images(ctx, "test", Arc::from(test_source), size, Reading::Whole(model.meta.fit))?;
            let (top1, top5) = score_classifier(&model, &test, &test_labels)?;
            metrics.push(row("test_top1", top1));
            metrics.extend(top5.map(|v| row("test_top5", v)));
            scored = format!(", test top-1 {top1:.3}");
        }
        Ok(Outcome {
            metrics,
            summary: format!(
                "{} epochs on {} images, {classes} classes: loss {:.4}, accuracy {:.3}{scored}",
                self.solver.epochs, n_labels, last.loss, last.metric
            ),
        })
    }
}
