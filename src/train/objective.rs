//! What the training loop optimises and reports: an [`Objective`] names the kind of target
//! its samples carry, computes the loss from the network's outputs, and scores the metric
//! shown per epoch and measured on held-out data. Classification (cross-entropy, argmax
//! accuracy) is one objective; a pretext task may bring its own (contrastive instance
//! discrimination's NT-Xent and instance retrieval: `pretext/contrastive.rs`).
use tch::{Kind, Reduction, Tensor};

pub use super::batches::Target;
use super::batches::{assemble, SampleMaker};
use crate::data::DataError;

/// The metric an objective reports, with its names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    /// Column of `epochs.csv` and the tail of the stage's metric names
    /// (`pretext_heldout_<key>`): `accuracy`, `retrieval_top1`.
    pub key: &'static str,
    /// As people read it in epoch lines, TensorBoard tags and plots: "rotation accuracy".
    pub label: &'static str,
}

/// The loss and the metric of one training.
pub trait Objective: Send + Sync {
    /// The targets its samples carry.
    fn target(&self) -> Target;
    /// The metric it reports each epoch and on held-out data.
    fn metric(&self) -> Metric;
    /// The batch's mean loss (a scalar the optimiser steps on), from the network's outputs
    /// and the batch's targets.
    fn loss(&self, outputs: &Tensor, targets: &Tensor) -> Tensor;
    /// The sum of the metric over the batch's targets (`Double` scalar on the outputs'
    /// device; read once per epoch): the epoch's figure is these sums over the targets seen.
    fn score(&self, outputs: &Tensor, targets: &Tensor) -> Tensor;
    /// The metric of `forward` (evaluation mode, no gradients) on every sample of `maker`,
    /// made from `seed` alone: the same samples for every model and every run. By default
    /// the mean of [`Objective::score`] over the targets, a batch at a time.
    fn evaluate(
        &self,
        forward: &dyn Fn(&Tensor, bool) -> Tensor,
        maker: &dyn SampleMaker,
        batch_size: usize,
        seed: u64,
        device: tch::Device,
    ) -> Result<f64, DataError> {
        let (mut sum, mut seen) = (0.0, 0i64);
        tch::no_grad(|| -> Result<(), DataError> {
            let order: Vec<usize> = (0..maker.samples()).collect();
            for chunk in order.chunks(batch_size.max(1)) {
                let batch = assemble(maker, chunk, seed, 0)?;
                let y = batch.targets.to_device(device);
                let outputs = forward(&batch.inputs.to_device(device), false);
                sum += self.score(&outputs, &y).double_value(&[]);
                seen += y.size()[0];
            }
            Ok(())
        })?;
        Ok(sum / seen.max(1) as f64)
    }
}

/// Classification: cross-entropy on the logits, top-1 accuracy (argmax) as the metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    /// How the accuracy is shown: "accuracy", "permutation accuracy"...
    pub label: &'static str,
}

impl Classification {
    pub const ACCURACY: Classification = Classification { label: "accuracy" };
}

impl Objective for Classification {
    fn target(&self) -> Target {
        Target::Class
    }
    fn metric(&self) -> Metric {
        Metric {
            key: "accuracy",
            label: self.label,
        }
    }
    fn loss(&self, logits: &Tensor, targets: &Tensor) -> Tensor {
        logits.cross_entropy_loss::<Tensor>(targets, None, Reduction::Mean, -100, 0.0)
    }
    /// How many rows of `logits` have their largest value at the target class.
    fn score(&self, logits: &Tensor, targets: &Tensor) -> Tensor {
        logits
            .argmax(1, false)
            .eq_tensor(targets)
            .to_kind(Kind::Int64)
            .sum(Kind::Int64)
            .to_kind(Kind::Double)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_scores_correct_rows_and_names_accuracy() {
        let logits = Tensor::from_slice(&[2.0f32, 1.0, 0.0, 3.0, 0.5, 0.1]).view([3, 2]);
        let y = Tensor::from_slice(&[0i64, 1, 1]);
        let c = Classification {
            label: "rotation accuracy",
        };
        assert_eq!(c.score(&logits, &y).double_value(&[]), 2.0);
        assert_eq!(c.metric().key, "accuracy");
        assert_eq!(c.metric().label, "rotation accuracy");
        let reference = logits.cross_entropy_for_logits(&y);
        assert!(c.loss(&logits, &y).allclose(&reference, 0.0, 0.0, false));
    }

    /// Samples that say they are view pairs.
    struct Pairs;

    impl SampleMaker for Pairs {
        fn samples(&self) -> usize {
            2
        }
        fn sample_len(&self) -> usize {
            2
        }
        fn target(&self) -> Target {
            Target::ViewPair
        }
        fn batch_shape(&self, b: usize) -> Vec<i64> {
            vec![b as i64, 2, 1]
        }
        fn make(&self, i: usize, _: &mut rand_chacha::ChaCha8Rng, out: &mut [f32], targets: &mut [i64]) -> Result<(), DataError> {
            out.fill(i as f32);
            targets[0] = i as i64;
            Ok(())
        }
    }

    #[test]
    fn the_loop_refuses_samples_of_another_target_than_its_objective() {
        let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let w = vs.root().zeros("w", &[1]);
        let forward = |x: &Tensor, _: bool| x * &w;
        let cfg = super::super::trainer::TrainConfig {
            epochs: 1,
            batch_size: 2,
            lr: 0.1,
            schedule: super::super::schedule::Schedule::Constant,
            optimizer: super::super::optim::OptimizerConfig {
                kind: super::super::kinds::OptimizerKind::Sgd,
                momentum: 0.0,
                weight_decay: 0.0,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            seed: 0,
            precision: Default::default(),
        };
        struct Quiet;
        impl super::super::trainer::TrainObserver for Quiet {}
        let dir = tempfile::tempdir().unwrap();
        let err = super::super::trainer::train(
            &mut vs,
            &forward,
            std::sync::Arc::new(Pairs),
            &Classification::ACCURACY,
            &cfg,
            dir.path(),
            &Quiet,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the samples carry ViewPair targets but the objective expects Class"
        );
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "no checkpoint");
    }
}
