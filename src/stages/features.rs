//! `features`: a float32 matrix, one row per image of a dataset split, from a
//! handcrafted descriptor (HOG, raw pixels), a model stage's layer, or a `.npy` matrix
//! computed elsewhere (`model = "npy"`: another framework's features enter the graph).
use serde::{Deserialize, Serialize};

use super::params::{data_ref, MODEL};
use super::{InputSpec, LayerUse, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
use crate::config::{did_you_mean, ConfigError, Node};
use crate::data::NpyDtype;
use crate::models::hog;
use crate::store::sha256_file;
#[cfg(feature = "torch")]
use {
    super::artefacts,
    super::{Outcome, RunCtx, StageError, MODEL_WAVE},
    crate::data::{open_split, Image, NpyWriter},
    crate::models::pixels,
    rayon::prelude::*,
};

const MODELS: &[&str] = &["hog", "pixels", "npy"];

/// A features table as the file writes it; [`FeaturesFile::validate`] resolves it into
/// [`FeaturesParams`]. Serialized (defaults filled in) it is the keyed form.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FeaturesFile {
    /// `dataset:split`
    pub data: String,
    /// `hog` or `pixels`
    pub model: String,
    /// Resize every image to this square size first (required when sizes differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// HOG: cell size in pixels (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<usize>,
    /// HOG: block side in cells (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<usize>,
    /// HOG: orientation bins over 0-180 degrees (default 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<usize>,
    /// pixels: side of the downscaled image (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// Model stages: the layer to read (conv1..conv5, fc6, fc7...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Model stages: target size of the average-pooled layer output (see `models::pool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooled_dim: Option<usize>,
    /// npy: the matrix file, relative to the experiment file. Not part of the key (its
    /// contents are, as `npy_sha256`), so moving the file keeps the key.
    #[serde(default, skip_serializing)]
    pub path: Option<String>,
    /// npy, keyed form only: the SHA-256 of the file.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub npy_sha256: Option<String>,
    /// Element type of `features.npy`: `float32` (the default, not in the key) or
    /// `float16` (half the disk and memory traffic; consumers compute in float32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// Keyed form only: a model stage's `image_size`. Versions before it took effect keyed
    /// the value as `image_size` but read the images at the model's own size; keying it
    /// under another name keeps their (wrong) entries from being reused, while stages that
    /// do not set it keep their keys.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<usize>,
    /// Mirror every image left to right before computing its features (for example to
    /// measure how often a clustering gives an image and its mirror image one label, the
    /// flip agreement of `cluster-metrics`). Keyed only when set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flip: bool,
}

/// A validated features stage.
#[derive(Clone, Debug)]
pub struct FeaturesParams {
    /// `dataset:split`
    pub data: String,
    /// Resize every image to this square size first (required when sizes differ).
    pub image_size: Option<usize>,
    pub extractor: Extractor,
    /// Element type of `features.npy` (`F32` or `F16`).
    pub dtype: NpyDtype,
    /// Mirror every image left to right first.
    pub flip: bool,
}

/// What computes the rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Extractor {
    /// `model = "hog"`: cell size in pixels (8), block side in cells (2), orientation bins
    /// over 0-180 degrees (9).
    Hog(hog::HogParams),
    /// `model = "pixels"`: the image downscaled to `size` x `size` (8).
    Pixels { size: usize },
    /// A model stage's `layer`, average-pooled to about `pooled_dim` values (0: the
    /// default of `models::pool`).
    Layer { stage: String, layer: String, pooled_dim: usize },
    /// `model = "npy"`: a float32 or float16 `[rows, dim]` matrix from a file, one row per
    /// image of `data` in dataset order; checked (and hashed) when planned.
    Npy {
        path: std::path::PathBuf,
        sha256: String,
        /// The matrix's rows when planned (one per image of `data`; not keyed: the hash is).
        rows: usize,
    },
}

impl Serialize for FeaturesParams {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut file = FeaturesFile {
            data: self.data.clone(),
            model: String::new(),
            image_size: self.image_size,
            cell: None,
            block: None,
            bins: None,
            size: None,
            layer: None,
            pooled_dim: None,
            path: None,
            npy_sha256: None,
            dtype: (self.dtype == NpyDtype::F16).then(|| "float16".to_string()),
            input_size: None,
            flip: self.flip,
        };
        match &self.extractor {
            Extractor::Hog(h) => {
                file.model = "hog".into();
                (file.cell, file.block, file.bins) = (Some(h.cell), Some(h.block), Some(h.bins));
            }
            Extractor::Pixels { size } => {
                file.model = "pixels".into();
                file.size = Some(*size);
            }
            Extractor::Layer { stage, layer, pooled_dim } => {
                file.model = stage.clone();
                file.layer = Some(layer.clone());
                file.pooled_dim = Some(*pooled_dim);
                file.input_size = file.image_size.take();
            }
            Extractor::Npy { sha256, .. } => {
                file.model = "npy".into();
                file.npy_sha256 = Some(sha256.clone());
            }
        }
        file.serialize(s)
    }
}

impl FeaturesFile {
    fn is_handcrafted(&self) -> bool {
        MODELS.contains(&self.model.as_str())
    }

    fn validate(mut self, table: &Node, prefix: &str) -> Result<FeaturesParams, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| at(key).error(&format!("{prefix}.{key}"), msg);
        let mut npy_rows = 0;
        match self.model.as_str() {
            "hog" => {
                if self.size.is_some() {
                    return Err(err(
                        "size",
                        "`size` applies to model = \"pixels\"; HOG takes cell, block and bins".into(),
                    ));
                }
                self.cell = Some(self.cell.unwrap_or(8));
                self.block = Some(self.block.unwrap_or(2));
                self.bins = Some(self.bins.unwrap_or(9));
                for (key, v, lo, hi) in [
                    ("cell", self.cell, 2, 256),
                    ("block", self.block, 1, 16),
                    ("bins", self.bins, 2, 180),
                ] {
                    let v = v.unwrap_or(0);
                    if !(lo..=hi).contains(&v) {
                        return Err(err(key, format!("expected {lo}..={hi}, found {v}")));
                    }
                }
            }
            "npy" => {
                for key in ["cell", "block", "bins", "size", "image_size", "flip"] {
                    if table.lookup(key).is_some() {
                        return Err(err(
                            key,
                            format!("`{key}` does not apply to model = \"npy\" (the file holds the features)"),
                        ));
                    }
                }
                let Some(file) = &self.path else {
                    return Err(table.error(prefix, "missing required key `path` (the .npy matrix of model = \"npy\")"));
                };
                let path = table.resolve_path(file);
                let matrix = crate::data::NpyMatrix::open(&path).map_err(|e| err("path", e.to_string()))?;
                if matrix.rows() == 0 || matrix.cols() == 0 {
                    return Err(err(
                        "path",
                        format!("{}: the matrix is empty ({} x {})", path.display(), matrix.rows(), matrix.cols()),
                    ));
                }
                npy_rows = matrix.rows();
                let sha256 = sha256_file(&path).map_err(|e| err("path", format!("{}: {e}", path.display())))?;
                self.npy_sha256 = Some(sha256);
                self.path = Some(path.to_string_lossy().into_owned());
            }
            "pixels" => {
                for key in ["cell", "block", "bins"] {
                    if table.lookup(key).is_some() {
                        return Err(err(key, format!("`{key}` applies to model = \"hog\"")));
                    }
                }
                let size = self.size.unwrap_or(8);
                if !(1..=512).contains(&size) {
                    return Err(err("size", format!("expected 1..=512, found {size}")));
                }
                self.size = Some(size);
            }
            _ => {
                // Any other name is a model stage (init, train, pretext): read one layer.
                for key in ["cell", "block", "bins", "size"] {
                    if table.lookup(key).is_some() {
                        return Err(err(
                            key,
                            format!("`{key}` applies to model = \"hog\" or \"pixels\", not to a model stage"),
                        ));
                    }
                }
                match &self.layer {
                    None => {
                        let hint = did_you_mean(&self.model, MODELS.iter().copied());
                        return Err(table.error_hint(
                            prefix,
                            format!("missing required key `layer` (features of model stage `{}`)", self.model),
                            hint,
                        ));
                    }
                    Some(l) if l.is_empty() => return Err(err("layer", "expected a layer name such as conv5".into())),
                    _ => {}
                }
                self.pooled_dim = Some(self.pooled_dim.unwrap_or(0));
            }
        }
        if self.is_handcrafted() {
            if self.layer.is_some() {
                return Err(err(
                    "layer",
                    format!("`layer` applies to model stages, not to model = \"{}\"", self.model),
                ));
            }
            if self.pooled_dim.is_some() {
                return Err(err(
                    "pooled_dim",
                    format!("`pooled_dim` applies to model stages, not to model = \"{}\"", self.model),
                ));
            }
        }
        if let Some(s) = self.image_size {
            if !(8..=1024).contains(&s) {
                return Err(err("image_size", format!("expected 8..=1024, found {s}")));
            }
        }
        if self.model != "npy" && self.path.is_some() {
            return Err(err(
                "path",
                format!("`path` applies to model = \"npy\", not to model = \"{}\"", self.model),
            ));
        }
        let dtype = super::params::stored_dtype(self.dtype.as_deref(), table, prefix)?;
        let npy = self.path.take().zip(self.npy_sha256.take());
        let extractor = match (self.model.as_str(), self.cell, self.block, self.bins, self.size, self.layer) {
            ("npy", ..) => match npy {
                Some((path, sha256)) => Extractor::Npy {
                    path: path.into(),
                    sha256,
                    rows: npy_rows,
                },
                None => return Err(table.error(prefix, "internal: npy features not resolved")),
            },
            ("hog", Some(cell), Some(block), Some(bins), _, _) => Extractor::Hog(hog::HogParams { cell, block, bins }),
            ("pixels", _, _, _, Some(size), _) => Extractor::Pixels { size },
            (_, _, _, _, _, Some(layer)) => Extractor::Layer {
                stage: self.model,
                layer,
                pooled_dim: self.pooled_dim.unwrap_or(0),
            },
            _ => return Err(table.error(prefix, "internal: features options not resolved")),
        };
        Ok(FeaturesParams {
            data: self.data,
            image_size: self.image_size,
            extractor,
            dtype,
            flip: self.flip,
        })
    }
}

/// The refusal of a `.npy` matrix whose rows are not the split's images.
fn npy_rows_differ(path: &std::path::Path, rows: usize, data: &str, images: usize) -> String {
    format!(
        "{}: {rows} rows, but `{data}` has {images} images (one row per image, in dataset order)",
        path.display()
    )
}

impl FeaturesParams {
    /// HOG, raw pixels or a file's matrix, as opposed to a model stage's layer.
    pub fn is_handcrafted(&self) -> bool {
        !matches!(self.extractor, Extractor::Layer { .. })
    }
}

#[cfg(feature = "torch")]
impl FeaturesParams {
    /// One image's descriptor (handcrafted extractors only).
    fn describe_one(&self, img: &Image) -> Vec<f32> {
        match &self.extractor {
            Extractor::Hog(h) => hog::hog(img, h),
            Extractor::Pixels { size } => pixels::pixels(img, *size),
            Extractor::Layer { .. } | Extractor::Npy { .. } => Vec::new(),
        }
    }

    /// Features from a `.npy` file: checked against the split (one row per image) and
    /// for non-finite values, written as float32.
    fn run_npy(&self, ctx: &RunCtx, path: &std::path::Path, sha256: &str) -> Result<Outcome, StageError> {
        let (spec, split) = ctx.data_input("data")?;
        let source = open_split(spec, split)?;
        if sha256_file(path).map_err(StageError::io(path))? != sha256 {
            return Err(StageError::Input(format!(
                "{} changed since the experiment was planned; run again",
                path.display()
            )));
        }
        let matrix = crate::data::NpyMatrix::open(path).map_err(|e| StageError::Input(e.to_string()))?;
        let (n, dim) = (matrix.rows(), matrix.cols());
        if n != source.len() {
            return Err(StageError::Input(npy_rows_differ(
                path,
                n,
                &format!("{}:{split}", spec.name),
                source.len(),
            )));
        }
        // Block by block: never more than a block of the file in memory.
        let mut out = Writer::create(ctx, n, dim, self.dtype)?;
        let block = rows_per_block(dim);
        let mut start = 0;
        while start < n {
            let len = block.min(n - start);
            let x = matrix.block(start, len).map_err(|e| StageError::Input(e.to_string()))?;
            let rows = Vec::<f32>::try_from(&x.flatten(0, -1))?;
            out.write_checked(&rows, |row, what| {
                StageError::Input(format!("{}: row {} {what}", path.display(), start + row))
            })?;
            start += len;
        }
        out.finish()?;
        finish(
            ctx,
            source.as_ref(),
            serde_json::json!({ "dataset": spec.name, "split": split, "count": n, "dim": dim, "source": path, "sha256": sha256 }),
            format!("{n} x {dim} features of {}:{split} from {}", spec.name, path.display()),
        )
    }

    /// Features of a model stage: one layer, average-pooled to a fixed size.
    fn run_model(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let (spec, split) = ctx.data_input("data")?;
        let model = super::model_io::LoadedModel::load(ctx.stage_input("model")?, ctx.device)?;
        let source = open_split(spec, split)?;
        let Extractor::Layer { layer, pooled_dim, .. } = &self.extractor else {
            return Err(StageError::Failed("internal: not a model stage's layer".into()));
        };
        let pooled = Some(*pooled_dim).filter(|&d| d > 0);
        let n = source.len();
        if n == 0 {
            return Err(StageError::Input(format!("dataset split `{}:{split}` has no images", spec.name)));
        }
        // A wave of images at a time (decoded, run through the model, written), so
        // neither the images nor the features of the split are all in memory at once.
        // Waves are whole extraction batches: the batches, and so the values, are
        // those of one pass over the split.
        let mut out: Option<Writer> = None;
        let mut d = 0;
        let mut start = 0;
        while start < n {
            let len = MODEL_WAVE.min(n - start);
            let size = self.image_size.unwrap_or(model.image_size());
            let mut set = crate::train::batches::ImageSet::load_range(
                source.as_ref(),
                size,
                model.meta.fit_at(size),
                start..start + len,
                &|_, _| {},
            )?;
            if self.flip {
                set.mirror();
            }
            let progress = |done: u64, _: u64| (ctx.progress)(start as u64 + done, n as u64);
            let x = model.extract(&set, &[layer.as_str()], pooled, &progress)?.remove(0);
            let rows = Vec::<f32>::try_from(&x.flatten(0, -1))?;
            let w = match &mut out {
                Some(w) => w,
                None => {
                    d = x.size2()?.1 as usize;
                    out.insert(Writer::create(ctx, n, d, self.dtype)?)
                }
            };
            w.write_checked(&rows, |row, what| {
                StageError::Failed(format!("{layer} features of {}: {what}", source.describe(start + row)))
            })?;
            start += len;
        }
        if let Some(w) = out {
            w.finish()?;
        }
        finish(
            ctx,
            source.as_ref(),
            serde_json::json!({ "dataset": spec.name, "split": split, "count": n, "dim": d, "layer": layer }),
            format!("{n} x {d} {layer} features of {}:{split}", spec.name),
        )
    }

    fn prepare(&self, img: Image, what: &str) -> Result<Image, StageError> {
        if img.width == 0 || img.height == 0 {
            return Err(StageError::Input(format!("{what}: empty image")));
        }
        let img = match self.image_size {
            Some(s) if img.width != s || img.height != s => crate::data::resize_to(&img, s),
            _ => img,
        };
        Ok(if self.flip { img.mirrored() } else { img })
    }
}

#[cfg(feature = "torch")]
impl Extractor {
    /// `hog`, `pixels` or the layer's name, for summaries.
    pub fn name(&self) -> &str {
        match self {
            Extractor::Hog(_) => "hog",
            Extractor::Pixels { .. } => "pixels",
            Extractor::Layer { layer, .. } => layer,
            Extractor::Npy { .. } => "npy",
        }
    }
}

#[cfg(feature = "torch")]
/// Bytes of float32 rows to hold at a time when writing or copying features.
const BLOCK_BYTES: usize = 8 << 20;

#[cfg(feature = "torch")]
/// Rows of `dim` values per block of [`BLOCK_BYTES`] (at least one).
fn rows_per_block(dim: usize) -> usize {
    (BLOCK_BYTES / (4 * dim.max(1))).max(1)
}

#[cfg(feature = "torch")]
/// `features.npy` of a run, written a block of rows at a time.
struct Writer {
    out: NpyWriter,
    dim: usize,
    dtype: NpyDtype,
}

#[cfg(feature = "torch")]
impl Writer {
    fn create(ctx: &RunCtx, n: usize, dim: usize, dtype: NpyDtype) -> Result<Writer, StageError> {
        let out = NpyWriter::create(&ctx.path("features.npy"), n, dim, dtype).map_err(|e| StageError::Failed(e.to_string()))?;
        Ok(Writer { out, dim, dtype })
    }

    /// Appends `rows` unless one cannot be stored (a non-finite value, or one beyond
    /// float16's range when storing float16): then the error `bad(row in rows, what)`.
    fn write_checked(&mut self, rows: &[f32], bad: impl FnOnce(usize, String) -> StageError) -> Result<(), StageError> {
        if let Some((row, what)) = self.check(rows) {
            return Err(bad(row, what));
        }
        self.out.write_rows(rows).map_err(|e| StageError::Failed(e.to_string()))
    }

    /// The first row of `rows` that cannot be stored, with what is wrong with it.
    fn check(&self, rows: &[f32]) -> Option<(usize, String)> {
        let limit = self.dtype.largest();
        let i = rows.iter().position(|v| !v.is_finite() || v.abs() > limit)?;
        let what = if rows[i].is_finite() {
            format!("value {} is beyond float16's range (set dtype = \"float32\")", rows[i])
        } else {
            "holds a non-finite value (NaN or infinity)".to_string()
        };
        Some((i / self.dim.max(1), what))
    }

    fn finish(self) -> Result<(), StageError> {
        self.out.finish().map_err(|e| StageError::Failed(e.to_string()))
    }
}

#[cfg(feature = "torch")]
/// What every extractor writes beside `features.npy`: the true labels (`labels.npy`,
/// int64) when the split has them, and `index.json`; the outcome with its summary.
fn finish(ctx: &RunCtx, source: &dyn crate::data::Source, index: serde_json::Value, summary: String) -> Result<Outcome, StageError> {
    let labels: Option<Vec<i64>> = (0..source.len()).map(|i| source.label(i).map(|l| l as i64)).collect();
    if let Some(l) = labels {
        artefacts::write_tensor(&ctx.path("labels.npy"), &tch::Tensor::from_slice(&l))?;
    }
    artefacts::write_json(&ctx.path("index.json"), &index)?;
    Ok(Outcome {
        metrics: Vec::new(),
        summary,
    })
}

impl Stage for FeaturesParams {
    const NAME: &'static str = "features";
    /// 2 since `vgg16-small` lost its last max-pool (its fc layers read a different conv5).
    const VERSION: u32 = 2;
    const OUTPUT: OutputKind = OutputKind::Features;
    const METRICS: &'static [&'static str] = &[];

    fn metrics(&self) -> Vec<&'static str> {
        Self::METRICS.to_vec()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table.decode::<FeaturesFile>(prefix)?.validate(table, prefix)
    }
    /// Descriptors and a network's forward pass in evaluation mode: no random numbers.
    fn stochastic(&self) -> bool {
        false
    }
    /// Handcrafted descriptors are computed on the CPU; a network's layers are not.
    fn device_dependent(&self) -> bool {
        !self.is_handcrafted()
    }
    fn inputs(&self) -> Vec<InputSpec> {
        let mut v = vec![data_ref("data", &self.data)];
        if !self.is_handcrafted() {
            if let Extractor::Layer { stage, .. } = &self.extractor {
                v.push(InputSpec::Stage {
                    key: "model",
                    stage: stage.clone(),
                    accepts: MODEL,
                });
            }
        }
        v
    }
    fn networks(&self) -> Networks<'_> {
        match &self.extractor {
            Extractor::Layer { stage, layer, .. } => Networks {
                reads: Some(LayerUse {
                    model_key: "model",
                    model: stage,
                    layers_key: "layer",
                    layers: vec![layer.as_str()],
                }),
                ..Networks::NONE
            },
            Extractor::Hog(_) | Extractor::Pixels { .. } | Extractor::Npy { .. } => Networks::NONE,
        }
    }
    fn rows(&self) -> Rows<'_> {
        Rows::Data(&self.data)
    }
    /// A `.npy` matrix has one row per image of the split; a model stage's network must read
    /// `image_size`.
    fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError> {
        if let (Extractor::Npy { path, rows, .. }, Some(split)) = (&self.extractor, upstream.split(&self.data)) {
            if *rows != split.len {
                return Err(ParamError::new("path", npy_rows_differ(path, *rows, &self.data, split.len)));
            }
        }
        match &self.extractor {
            Extractor::Layer { stage, .. } => super::probe_data::check_image_size_fits(self.image_size, upstream.network(stage)),
            _ => Ok(()),
        }
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        if !self.is_handcrafted() {
            return self.run_model(ctx);
        }
        if let Extractor::Npy { path, sha256, .. } = &self.extractor {
            return self.run_npy(ctx, path, sha256);
        }
        let (spec, split) = ctx.data_input("data")?;
        let source = open_split(spec, split)?;
        let n = source.len();
        if n == 0 {
            return Err(StageError::Input(format!("dataset split `{}:{split}` has no images", spec.name)));
        }
        // The first image fixes the size every other image must have (unless resized).
        let first = self.prepare(source.load(0)?, &source.describe(0))?;
        let (w, h) = (first.width, first.height);
        if let Extractor::Hog(hog) = &self.extractor {
            hog.validate(w, h)
                .map_err(|m| StageError::Input(format!("{}: {m}", source.describe(0))))?;
        }
        let dim = self.describe_one(&first).len();
        let mut out = Writer::create(ctx, n, dim, self.dtype)?;
        let done = std::sync::atomic::AtomicU64::new(0);
        let chunk = 256;
        // A wave of rows at a time: described in parallel, checked, written.
        let wave = rows_per_block(dim).div_ceil(chunk) * chunk;
        let mut buf = vec![0f32; wave.min(n) * dim];
        let mut start = 0;
        while start < n {
            let len = wave.min(n - start);
            let rows = &mut buf[..len * dim];
            rows.par_chunks_mut(chunk * dim)
                .enumerate()
                .try_for_each(|(c, out)| -> Result<(), StageError> {
                    for (j, row) in out.chunks_mut(dim).enumerate() {
                        let i = start + c * chunk + j;
                        let img = self.prepare(source.load(i)?, &source.describe(i))?;
                        if (img.width, img.height) != (w, h) {
                            return Err(StageError::Input(format!(
                                "{}: image is {}x{}, but {} is {w}x{h}; set `image_size` to resize all images",
                                source.describe(i),
                                img.width,
                                img.height,
                                source.describe(0)
                            )));
                        }
                        row.copy_from_slice(&self.describe_one(&img));
                    }
                    let d = done.fetch_add(out.len() as u64 / dim as u64, std::sync::atomic::Ordering::Relaxed);
                    (ctx.progress)(d + (out.len() / dim) as u64, n as u64);
                    Ok(())
                })?;
            out.write_checked(rows, |row, what| {
                StageError::Failed(format!("feature {what} for {}", source.describe(start + row)))
            })?;
            start += len;
        }
        out.finish()?;
        finish(
            ctx,
            source.as_ref(),
            serde_json::json!({ "dataset": spec.name, "split": split, "count": n, "dim": dim, "image_width": w, "image_height": h }),
            format!("{n} x {dim} {} features of {}:{split}", self.extractor.name(), spec.name),
        )
    }
}
