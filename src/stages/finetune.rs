//! `finetune`: the conv layers initialised from a model stage, the fully connected layers
//! fresh, the whole network trained on a labeled split (optionally on a stratified part of
//! its labels: the low-label regime) and scored top-1 (and top-5) on a test split.
use serde::{Deserialize, Serialize};

use super::crop::{CropParams, CROP_KEYS};
use super::labels::plan_class_map;
use super::probe_data;
use super::solver::SolverParams;
use super::{InputSpec, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
use crate::config::{struct_fields, ConfigError, Node};
use crate::models::NetConfig;
#[cfg(feature = "torch")]
use {
    super::images::{split_images, Reading},
    super::labels::true_labels,
    super::model_io::ModelMeta,
    super::supervised::{score_classifier, train_classifier, Start},
    super::{MetricRow, Outcome, RunCtx, StageError},
    crate::data::{open_split, Fit},
    crate::train::batches::{Augment, ImageSet},
    rand::seq::SliceRandom,
    rand::SeedableRng,
    rand_chacha::ChaCha8Rng,
    std::sync::Arc,
};

/// The keys of [`FinetuneParams`] besides those of its flattened solver options.
const OWN_KEYS: &[&str] = &[
    "model",
    "train",
    "test",
    "label_fraction",
    "labels_per_class",
    "crop_padding",
    "flip",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinetuneParams {
    /// The model stage whose backbone (conv layers) starts the network.
    pub model: String,
    /// Labeled `dataset:split` to train on.
    pub train: String,
    /// Labeled `dataset:split` to score on.
    pub test: String,
    /// Train on this fraction of the labels of every class (stratified, drawn with the seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_fraction: Option<f64>,
    /// Train on this many labels of every class (drawn with the seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_per_class: Option<usize>,
    /// Epochs, batch size, optimizer and learning-rate schedule, as `train` has them.
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
    /// For each class of the test split, the index of the train split's class of the same
    /// name: filled in at planning, and keyed only when the two class lists differ. Before
    /// labels were matched by name, such splits were scored by position (wrongly), and
    /// those numbers may be cached: the field gives them new keys, while splits with the
    /// same classes (every configuration that was right) keep theirs.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub class_map: Option<Vec<usize>>,
    /// The model stage's network (filled in at planning; keyed through its key).
    #[serde(skip)]
    pub network: Option<NetConfig>,
}

fn d_pad() -> usize {
    4
}
fn d_true() -> bool {
    true
}

#[cfg(feature = "torch")]
/// Which labels of the train split are used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LabelSubset {
    All,
    Fraction(f64),
    PerClass(usize),
}

#[cfg(feature = "torch")]
/// The images (sorted indices) whose labels train: per class, the given fraction (rounded,
/// at least one) or count of its images, drawn with `seed`. A count beyond a class's
/// images is an error naming the class.
pub fn label_subset(labels: &[i64], classes: &[String], subset: LabelSubset, seed: u64) -> Result<Vec<usize>, String> {
    if subset == LabelSubset::All {
        return Ok((0..labels.len()).collect());
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for (i, &l) in labels.iter().enumerate() {
        match by_class.get_mut(l as usize) {
            Some(v) => v.push(i),
            None => return Err(format!("image {i} has label {l}, beyond the {} classes", classes.len())),
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = Vec::new();
    for (c, mut members) in by_class.into_iter().enumerate() {
        if members.is_empty() {
            continue;
        }
        let take = match subset {
            LabelSubset::Fraction(f) => ((f * members.len() as f64).round() as usize).clamp(1, members.len()),
            LabelSubset::PerClass(m) if m > members.len() => return Err(too_few_labels(m, &classes[c], members.len())),
            LabelSubset::PerClass(m) => m,
            LabelSubset::All => members.len(),
        };
        members.shuffle(&mut rng);
        chosen.extend_from_slice(&members[..take]);
    }
    chosen.sort_unstable();
    Ok(chosen)
}

/// The refusal of a `labels_per_class` beyond a class's images.
fn too_few_labels(m: usize, class: &str, images: usize) -> String {
    format!("labels_per_class = {m}, but class `{class}` has only {images} images in the train split")
}

impl FinetuneParams {
    #[cfg(feature = "torch")]
    fn subset(&self) -> LabelSubset {
        match (self.label_fraction, self.labels_per_class) {
            (Some(f), _) => LabelSubset::Fraction(f),
            (None, Some(m)) => LabelSubset::PerClass(m),
            (None, None) => LabelSubset::All,
        }
    }

    fn validate(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        if self.label_fraction.is_some() && self.labels_per_class.is_some() {
            return err("labels_per_class", "give `label_fraction` or `labels_per_class`, not both".into());
        }
        if let Some(f) = self.label_fraction {
            if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                return err("label_fraction", format!("expected a fraction in (0, 1], found {f}"));
            }
        }
        if self.labels_per_class == Some(0) {
            return err("labels_per_class", "expected at least 1 label per class".into());
        }
        if self.train == self.test {
            return err(
                "test",
                format!(
                    "the network would be scored on the split it is trained on (`{}`): give a held-out split",
                    self.test
                ),
            );
        }
        self.solver.validate(table, prefix)?;
        self.crop.validate(table, prefix)?;
        Ok(self)
    }
}

impl Stage for FinetuneParams {
    const NAME: &'static str = "finetune";
    /// 2: the labelled subset from the stated seed, one seed derivation (`crate::seed`).
    const VERSION: u32 = 2;
    const OUTPUT: OutputKind = OutputKind::Metrics;
    const METRICS: &'static [&'static str] = &["top1", "top5"];

    fn metrics(&self) -> Vec<&'static str> {
        Self::METRICS.to_vec()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table
            .decode_flattened::<FinetuneParams>(prefix, &[OWN_KEYS, CROP_KEYS, struct_fields::<SolverParams>()])?
            .validate(table, prefix)
    }
    /// The fresh head's weights, the label subset, shuffling, augmentation and dropout are
    /// drawn.
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
        Networks {
            builds: self.network.clone(),
            init: Some(("model", &self.model)),
            reads: None,
        }
    }
    fn rows(&self) -> Rows<'_> {
        Rows::None
    }
    /// The network is the model stage's; the test split's labels are matched to the train
    /// split's by class name; `labels_per_class` is at most the smallest class's images.
    fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError> {
        self.network = upstream.network(&self.model);
        if let (Some(m), Some(train)) = (self.labels_per_class, upstream.split(&self.train)) {
            if let Some((class, n)) = train.smallest_class().filter(|&(_, n)| n < m) {
                return Err(ParamError::new("labels_per_class", too_few_labels(m, class, n)));
            }
        }
        self.class_map = plan_class_map(upstream, &self.train, &self.test, "test")?;
        Ok(())
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let model_dir = ctx.stage_input("model")?;
        let from: ModelMeta = super::artefacts::read_json(&model_dir.join("model.json"))?;
        let (spec, split) = ctx.data_input("train")?;
        let source = open_split(spec, split)?;
        let labels = true_labels(source.as_ref(), &self.train, None)?;
        let classes = source.classes().to_vec();
        // The same labelled images for every model fine-tuned on this split with this stated
        // seed: arms of a table differ by their model only.
        let subset_seed = crate::seed::stream(ctx.stated_seed, &format!("labelled subset of {}", ctx.data_fingerprint("train")?));
        let chosen = label_subset(&labels, &classes, self.subset(), subset_seed).map_err(StageError::Input)?;
        let size = from.config.image_size as usize;
        // Only the labelled subset is decoded (a streamed split is never read whole).
        let all = ImageSet::open(Arc::from(source), size, Fit::Squash, 0, &|_, _| {})?;
        let subset = all.subset(&chosen);
        // A random resized crop cuts from the originals: the subset stays streamed.
        let set = Arc::new(if self.crop.resized_crop().is_some() {
            subset
        } else {
            subset.decoded()?
        });
        let train_labels: Vec<i64> = chosen.iter().map(|&i| labels[i]).collect();
        let meta = ModelMeta {
            config: from.config.clone(),
            classes: classes.len() as i64,
            jigsaw: None,
            projection: None,
            decoder: None,
            per_image_norm: from.per_image_norm,
            lightness_input: from.lightness_input,
            fit: self.crop.eval_fit(from.config.image_size as usize),
        };
        let augment = Augment {
            crop_padding: self.crop_padding,
            flip: self.flip,
            resized_crop: self.crop.resized_crop(),
        };
        let (model, history) = train_classifier(ctx, meta, Start::Backbone(model_dir), set, train_labels, augment, &self.solver)?;
        let (spec, split) = ctx.data_input("test")?;
        let test_source = open_split(spec, split)?;
        let test_labels = true_labels(test_source.as_ref(), &self.test, Some((&self.train, &classes)))?;
        let test = split_images(ctx, "test", Arc::from(test_source), size, Reading::Whole(model.meta.fit))?;
        let (top1, top5) = score_classifier(&model, &test, &test_labels)?;
        let row = |metric: &str, value: f64| MetricRow {
            layer: String::new(),
            metric: metric.into(),
            value,
        };
        let mut metrics = vec![row("top1", top1)];
        metrics.extend(top5.map(|v| row("top5", v)));
        let loss = history.last().map(|h| h.loss).unwrap_or(f64::NAN);
        Ok(Outcome {
            metrics,
            summary: format!(
                "{} epochs on {} of {} labels: train loss {loss:.4}, test top-1 {top1:.3}",
                self.solver.epochs,
                chosen.len(),
                labels.len()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_subsets_are_stratified_and_deterministic() {
        let classes: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        // 60 of class 0, 30 of class 1, 10 of class 2, interleaved.
        let labels: Vec<i64> = (0..100)
            .map(|i| {
                if i % 10 < 6 {
                    0
                } else if i % 10 < 9 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let count = |idx: &[usize], c: i64| idx.iter().filter(|&&i| labels[i] == c).count();
        let tenth = label_subset(&labels, &classes, LabelSubset::Fraction(0.1), 7).unwrap();
        assert_eq!([count(&tenth, 0), count(&tenth, 1), count(&tenth, 2)], [6, 3, 1]);
        assert!(tenth.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats: {tenth:?}");
        assert_eq!(label_subset(&labels, &classes, LabelSubset::Fraction(0.1), 7).unwrap(), tenth);
        assert_ne!(label_subset(&labels, &classes, LabelSubset::Fraction(0.1), 8).unwrap(), tenth);
        let five = label_subset(&labels, &classes, LabelSubset::PerClass(5), 7).unwrap();
        assert_eq!([count(&five, 0), count(&five, 1), count(&five, 2)], [5, 5, 5]);
        // A fraction keeps at least one label of a class.
        let few = label_subset(&labels, &classes, LabelSubset::Fraction(0.01), 7).unwrap();
        assert_eq!([count(&few, 0), count(&few, 1), count(&few, 2)], [1, 1, 1]);
        assert_eq!(label_subset(&labels, &classes, LabelSubset::All, 7).unwrap().len(), 100);
        let e = label_subset(&labels, &classes, LabelSubset::PerClass(11), 7).unwrap_err();
        assert_eq!(e, "labels_per_class = 11, but class `c` has only 10 images in the train split");
    }
}
