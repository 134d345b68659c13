//! What the probes share: the checks of their layer list and splits, and a split's labels
//! and pooled features of a model's layers.
use super::params::{data_ref, MODEL};
use super::{InputSpec, LayerUse, Networks, ParamError};
use crate::config::{ConfigError, Node};
#[cfg(feature = "torch")]
use {
    super::images::{split_images, Reading},
    super::labels::true_labels,
    super::model_io::LoadedModel,
    super::{RunCtx, StageError},
    crate::data::open_split,
    std::sync::Arc,
    tch::Tensor,
};

/// The inputs of a stage that evaluates a model stage: the model, a labeled split to fit
/// on and another to score on.
pub(super) fn model_and_splits(model: &str, train: &str, test: &str) -> Vec<InputSpec> {
    vec![
        InputSpec::Stage {
            key: "model",
            stage: model.to_string(),
            accepts: MODEL,
        },
        data_ref("train", train),
        data_ref("test", test),
    ]
}

/// A probe reads `layers` of the model stage under `model`.
pub(super) fn reads_layers<'a>(model: &'a str, layers: &'a [String]) -> Networks<'a> {
    Networks {
        reads: Some(LayerUse {
            model_key: "model",
            model,
            layers_key: "layers",
            layers: layers.iter().map(String::as_str).collect(),
        }),
        ..Networks::NONE
    }
}

/// A probe lists at least one layer, none twice, and is scored on another split than the
/// one it is fitted on.
pub(super) fn check_layers_and_splits(layers: &[String], train: &str, test: &str, table: &Node, prefix: &str) -> Result<(), ConfigError> {
    let at = |key: &str| table.lookup(key).unwrap_or(table);
    let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
    if layers.is_empty() {
        return err("layers", "expected at least one layer, e.g. [\"conv1\", \"conv5\"]".into());
    }
    for (i, l) in layers.iter().enumerate() {
        if layers[..i].contains(l) {
            return err("layers", format!("layer `{l}` is listed twice"));
        }
    }
    if train == test {
        return err(
            "test",
            format!(
                "the probe would be scored on the split it is fitted on (`{test}`): that measures memorisation, \
                 not the representation; give a held-out split"
            ),
        );
    }
    Ok(())
}

/// `image_size` (read the images at this size instead of the model's own, e.g. to probe a
/// model trained at 64 px at 32 px like the rest of a table): 8..=1024, at decode time.
pub(super) fn check_image_size(image_size: Option<usize>, table: &Node, prefix: &str) -> Result<(), ConfigError> {
    match image_size {
        Some(s) if !(8..=1024).contains(&s) => {
            let at = table.lookup("image_size").unwrap_or(table);
            Err(at.error(&format!("{prefix}.image_size"), format!("expected 8..=1024, found {s}")))
        }
        _ => Ok(()),
    }
}

/// `dtype` of a probe's feature files: `float16` halves their disk and page cache (the
/// probe computes in float32); `float32`, the default, is not keyed (written or not, the
/// same key).
pub(super) fn check_dtype(dtype: &mut Option<String>, table: &Node, prefix: &str) -> Result<(), ConfigError> {
    if super::params::stored_dtype(dtype.as_deref(), table, prefix)? == crate::data::NpyDtype::F32 {
        *dtype = None;
    }
    Ok(())
}

#[cfg(feature = "torch")]
/// The element type a probe's `dtype` (checked by [`check_dtype`]) stores its features in.
pub(super) fn dtype_of(dtype: &Option<String>) -> crate::data::NpyDtype {
    super::params::stored_dtype_of(dtype.as_deref()).unwrap_or(crate::data::NpyDtype::F32)
}

/// `image_size` against the network of the model stage it reads (known at planning): the
/// network must run at that size.
pub(super) fn check_image_size_fits(image_size: Option<usize>, network: Option<crate::models::NetConfig>) -> Result<(), ParamError> {
    let (Some(size), Some(net)) = (image_size, network) else {
        return Ok(());
    };
    let at = crate::models::NetConfig {
        image_size: size as i64,
        ..net
    };
    at.validate()
        .map_err(|e| ParamError::new("image_size", format!("the model's network cannot read {size} px images: {e}")))
}

#[cfg(feature = "torch")]
/// A labeled split's pooled features of some layers.
pub(super) struct SplitFeatures {
    /// One `[n, d]` CPU float tensor per layer, over a file in the stage's checkpoint
    /// folder (see [`LoadedModel::extract_to_files`]): whatever reads it whole makes a copy,
    /// so a probe reads it in batches or blocks.
    pub xs: Vec<Tensor>,
    /// `[n]` int64.
    pub labels: Tensor,
    /// Class names, index = label.
    pub classes: Vec<String>,
}

#[cfg(feature = "torch")]
/// The pooled features of `layers` of `model` (pooled to about `pooled_dim`, the images read
/// at `image_size`, stored as `dtype`) for the split under the input `key`, its
/// labels mapped by name into `into` (the training split's `dataset:split` and classes)
/// when given. The features are written to the stage's checkpoint folder as they are
/// read, and a stopped probe takes them from there.
pub(super) fn split_features(
    ctx: &RunCtx,
    model: &LoadedModel,
    key: &str,
    layers: &[&str],
    (pooled_dim, image_size, dtype): (Option<usize>, Option<usize>, crate::data::NpyDtype),
    into: Option<(&str, &[String])>,
) -> Result<SplitFeatures, StageError> {
    let (spec, split) = ctx.data_input(key)?;
    let source = open_split(spec, split)?;
    let labels = true_labels(source.as_ref(), &format!("{}:{split}", spec.name), into)?;
    let classes = source.classes().to_vec();
    let size = image_size.unwrap_or(model.image_size());
    let set = split_images(ctx, key, Arc::from(source), size, Reading::Whole(model.meta.fit_at(size)))?;
    let xs = model.extract_to_files(&set, layers, pooled_dim, (ctx.checkpoint_dir, key), dtype, ctx.progress)?;
    Ok(SplitFeatures {
        xs,
        labels: Tensor::from_slice(&labels),
        classes,
    })
}
