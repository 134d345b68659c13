//! The supervised training that `train` and `finetune` share: a classifier built from the
//! stage's seed, optionally started from a model stage's backbone, trained on labeled
//! images by the one training loop with the solver options, its epochs in `epochs.csv`;
//! and the classifier's own top-1 (and top-5) on a labeled test split.
use std::path::Path;
use std::sync::Arc;

use tch::{Kind, Tensor};

use super::model_io::{LoadedModel, ModelMeta};
use super::solver::{write_history, EpochReporter, SolverParams};
use super::{RunCtx, StageError};
use crate::train::batches::{Augment, ImageSet, Labeled};
use crate::train::objective::{Classification, Objective};
use crate::train::trainer::{train, EpochStats};

/// Where the weights of a model being trained start.
pub(super) enum Start<'a> {
    /// Fresh weights, drawn from the stage's seed.
    Fresh,
    /// The backbone (and the head, with the same classes) of the model entry in the folder.
    Init(&'a Path),
    /// The backbone of the model entry in the folder; the classifier head stays fresh.
    Backbone(&'a Path),
}

/// Builds the network of `meta`, starts it as `start` says, and trains it on `labels`
/// (one per image of `set`) for `solver`'s epochs; returns it with its epochs' figures.
pub(super) fn train_classifier(
    ctx: &RunCtx,
    meta: ModelMeta,
    start: Start,
    set: Arc<ImageSet>,
    labels: Vec<i64>,
    augment: Augment,
    solver: &SolverParams,
) -> Result<(LoadedModel, Vec<EpochStats>), StageError> {
    let mut model = LoadedModel::new(meta, ctx.device)?;
    let from = match start {
        Start::Fresh => None,
        Start::Init(dir) => Some((dir, true)),
        Start::Backbone(dir) => Some((dir, false)),
    };
    if let Some((dir, with_head)) = from {
        let other = LoadedModel::load(dir, ctx.device)?;
        let report = if with_head {
            model.init_from(&other)?
        } else {
            model.init_backbone_from(&other)?
        };
        tracing::info!("{report}");
        (ctx.note)(report.to_string());
    }
    let cfg = solver.config(ctx.seed);
    let objective = Classification::ACCURACY;
    let observer = EpochReporter::new(ctx, solver.epochs, objective.metric());
    let (net, meta) = (&model.net, &model.meta);
    let forward = |x: &tch::Tensor, train: bool| net.forward(&meta.prepare(x), train);
    let maker = Arc::new(Labeled { set, labels, augment });
    let history = train(&mut model.vs, &forward, maker, &objective, &cfg, ctx.checkpoint_dir, &observer)?;
    write_history(ctx, &history, objective.metric())?;
    Ok((model, history))
}

/// Top-1 (and top-5 with more than five classes) of the classifier `model` on `set`
/// labeled `labels`, in evaluation mode (BatchNorm's running statistics, no dropout), the
/// images unaugmented and normalised as in training.
pub(super) fn score_classifier(model: &LoadedModel, set: &ImageSet, labels: &[i64]) -> Result<(f64, Option<f64>), StageError> {
    if labels.len() != set.n {
        return Err(StageError::Input(format!("{} test images but {} labels", set.n, labels.len())));
    }
    let device = model.vs.device();
    let (mut right1, mut right5) = (0i64, 0i64);
    tch::no_grad(|| {
        set.for_each_batch(super::EXTRACT_BATCH, |chunk, batch| -> Result<(), StageError> {
            let x = model.meta.prepare(&batch.to_device(device)); // [b, 3, s, s]
            let y = Tensor::from_slice(&labels[chunk[0]..chunk[0] + chunk.len()]).to_device(device);
            let logits = model.net.forward(&x, false); // [b, classes]
            right1 += logits.argmax(1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
            if model.meta.classes > 5 {
                let (_, top) = logits.f_topk(5, 1, true, true)?;
                right5 += top.eq_tensor(&y.unsqueeze(1)).any_dim(1, false).sum(Kind::Int64).int64_value(&[]);
            }
            Ok(())
        })
    })?;
    let n = set.n.max(1) as f64;
    Ok((right1 as f64 / n, (model.meta.classes > 5).then(|| right5 as f64 / n)))
}
