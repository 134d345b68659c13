//! Contrastive instance discrimination (SimCLR, Chen et al. 2020): two augmented views of
//! every image, a projection head on the backbone, and the NT-Xent loss that makes each
//! view find its partner among the other views of the batch.
//!
//! One sample of image `i` is its two views (`views.rs`), each normalised like every input.
//! Views are made on the host, each sample from its own random generator, like Jigsaw's
//! tiles.
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::views::{render, ViewConfig};
use crate::data::DataError;
use crate::models::error::ModelError;
use crate::models::{NetConfig, Network};
use crate::train::batches::{assemble, ImageSet, SampleMaker, Target, MEAN, STD};
use crate::train::objective::{Metric, Objective};

/// The samples of contrastive training: each image's two views, normalised, and its index.
pub struct Views {
    pub set: Arc<ImageSet>,
    pub config: ViewConfig,
}

impl SampleMaker for Views {
    fn samples(&self) -> usize {
        self.set.n
    }
    fn sample_len(&self) -> usize {
        2 * 3 * self.set.size * self.set.size
    }
    fn target(&self) -> Target {
        Target::ViewPair
    }
    /// `[b, 2, 3, s, s]`: each sample's two views together.
    fn batch_shape(&self, b: usize) -> Vec<i64> {
        let s = self.set.size as i64;
        vec![b as i64, 2, 3, s, s]
    }
    fn make(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [i64]) -> Result<(), DataError> {
        let s = self.set.size;
        let per = 3 * s * s;
        let src = self.set.image(i)?;
        for view in out.chunks_mut(per) {
            let d = self.config.draw(s, rng);
            render(&src, s, &d, view);
            for v in view.iter_mut() {
                *v = (*v - MEAN) / STD;
            }
        }
        targets[0] = i as i64;
        Ok(())
    }
}

/// The projection head's sizes, recorded in `model.json`: a two-layer MLP (`fc1`, ReLU,
/// `fc2`) from the backbone's flat features, its variables under `contrastive.*` so that
/// `features`, probes and `init` read the backbone alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionHead {
    pub hidden: i64,
    pub out: i64,
}

impl ProjectionHead {
    /// SimCLR's hidden layer is as wide as the representation (2048 for ResNet-50); here
    /// the backbone's feature size, at most 2048.
    pub fn for_backbone(feature_dim: i64, out: i64) -> ProjectionHead {
        ProjectionHead {
            hidden: feature_dim.min(2048),
            out,
        }
    }
}

/// The backbone with the projection head.
pub struct ContrastiveNet {
    pub backbone: Network,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl ContrastiveNet {
    /// `root` is the variable store's root; the backbone's variables are named as in a
    /// plain network of `cfg`.
    pub fn new(root: &nn::Path, cfg: &NetConfig, out: i64) -> Result<(ContrastiveNet, ProjectionHead), ModelError> {
        let backbone = Network::backbone(root, cfg)?;
        let head = ProjectionHead::for_backbone(backbone.feature_dim(), out);
        let p = root / "contrastive";
        let net = ContrastiveNet {
            fc1: nn::linear(&p / "fc1", backbone.feature_dim(), head.hidden, Default::default()),
            fc2: nn::linear(&p / "fc2", head.hidden, head.out, Default::default()),
            backbone,
        };
        Ok((net, head))
    }

    /// Projections `[B, 2, out]` of the views `[B, 2, C, S, S]` (both views of the batch
    /// in one pass, so BatchNorm sees all of them).
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let s = x.size();
        let (b, rest) = (s[0], &s[2..]);
        let mut flat = vec![b * s[1]];
        flat.extend_from_slice(rest);
        self.backbone
            .forward_features(&x.reshape(flat.as_slice()), train)
            .apply(&self.fc1)
            .relu()
            .apply(&self.fc2)
            .view([b, s[1], -1])
    }
}

/// NT-Xent (normalised temperature-scaled cross-entropy) over the `2b` views of a batch:
/// each view's positive is the other view of its image, its negatives the `2b - 2` other
/// views. Metric: instance retrieval top-1 (a first view's most similar second view is
/// its own), within the batch in training, among all held-out images on held-out data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NtXent {
    pub temperature: f64,
}

/// L2-normalised rows, in float32 (cosine similarities from dot products).
fn unit(z: &Tensor) -> Tensor {
    let z = z.to_kind(Kind::Float);
    let norm = z.norm_scalaropt_dim(2.0, [-1], true).clamp_min(1e-12);
    z / norm
}

impl NtXent {
    pub const METRIC: Metric = Metric {
        key: "retrieval_top1",
        label: "retrieval top-1",
    };

    /// How many rows `i` of `first` `[n, d]` have their most similar row of `second` at
    /// `i` (`Int64` scalar).
    fn retrieved(first: &Tensor, second: &Tensor) -> Tensor {
        let n = first.size()[0];
        let sim = unit(first).matmul(&unit(second).tr());
        sim.argmax(1, false)
            .eq_tensor(&Tensor::arange(n, (Kind::Int64, first.device())))
            .to_kind(Kind::Int64)
            .sum(Kind::Int64)
    }
}

impl Objective for NtXent {
    fn target(&self) -> Target {
        Target::ViewPair
    }
    fn metric(&self) -> Metric {
        NtXent::METRIC
    }
    /// `outputs` `[b, 2, d]`; the mean over the `2b` views of
    /// `-log(exp(sim(i, pos(i))/t) / sum over k != i of exp(sim(i, k)/t))`.
    fn loss(&self, outputs: &Tensor, _targets: &Tensor) -> Tensor {
        let b = outputs.size()[0];
        let device = outputs.device();
        // First views, then second views: the positive of row i is row (i + b) mod 2b.
        let z = unit(&Tensor::cat(&[outputs.select(1, 0), outputs.select(1, 1)], 0));
        let eye = Tensor::eye(2 * b, (Kind::Bool, device));
        let logits = (z.matmul(&z.tr()) / self.temperature).masked_fill(&eye, f64::NEG_INFINITY);
        let idx = Tensor::arange(2 * b, (Kind::Int64, device));
        let positives = (idx + b).remainder(2 * b);
        logits.cross_entropy_for_logits(&positives)
    }
    fn score(&self, outputs: &Tensor, _targets: &Tensor) -> Tensor {
        NtXent::retrieved(&outputs.select(1, 0), &outputs.select(1, 1)).to_kind(Kind::Double)
    }
    /// Retrieval among all of `maker`'s images: each first view's most similar second view
    /// (of every image's) is its own. Chance is one over the images.
    fn evaluate(
        &self,
        forward: &dyn Fn(&Tensor, bool) -> Tensor,
        maker: &dyn SampleMaker,
        batch_size: usize,
        seed: u64,
        device: tch::Device,
    ) -> Result<f64, DataError> {
        let n = maker.samples();
        if n == 0 {
            return Ok(0.0);
        }
        tch::no_grad(|| {
            let order: Vec<usize> = (0..n).collect();
            let outputs = order
                .chunks(batch_size.max(1))
                .map(|chunk| {
                    let batch = assemble(maker, chunk, seed, 0)?;
                    Ok(forward(&batch.inputs.to_device(device), false))
                })
                .collect::<Result<Vec<Tensor>, DataError>>()?;
            let all = Tensor::cat(&outputs, 0);
            Ok(NtXent::retrieved(&all.select(1, 0), &all.select(1, 1)).int64_value(&[]) as f64 / n as f64)
        })
    }
}

#[cfg(test)]
mod tests {
    use tch::Device;

    use super::*;
    use crate::models::net::testing;
    use crate::models::Arch;

    fn config() -> ViewConfig {
        ViewConfig {
            crop_min_scale: 0.08,
            flip: true,
            jitter_strength: 0.5,
            jitter_prob: 0.8,
            grayscale_prob: 0.2,
        }
    }

    #[test]
    fn batches_hold_two_different_views_per_image_fixed_by_the_seed() {
        let s = 8;
        let set = Arc::new(ImageSet::from_pixels(
            (0..3 * 3 * s * s).map(|v| (v * 7 % 251) as u8).collect(),
            3,
            s,
        ));
        let views = Views { set, config: config() };
        let b = assemble(&views, &[2, 0], 5, 0).unwrap();
        assert_eq!(b.inputs.size(), [2, 2, 3, 8, 8]);
        assert_eq!(Vec::<i64>::try_from(&b.targets).unwrap(), vec![2, 0]);
        assert!(!b.inputs.get(0).get(0).equal(&b.inputs.get(0).get(1)), "two views differ");
        assert!(
            assemble(&views, &[2, 0], 5, 0).unwrap().inputs.equal(&b.inputs),
            "same seed, same views"
        );
        assert!(
            !assemble(&views, &[2, 0], 6, 0).unwrap().inputs.equal(&b.inputs),
            "another seed, other views"
        );
    }

    #[test]
    fn the_head_projects_both_views_and_is_outside_the_backbone() {
        for arch in [Arch::AlexnetSmall, Arch::Resnet18Small] {
            let cfg = testing::cfg(arch, 0.25, true, 32);
            let vs = nn::VarStore::new(Device::Cpu);
            let (net, head) = ContrastiveNet::new(&vs.root(), &cfg, 128).unwrap();
            assert_eq!(head.out, 128);
            let x = Tensor::randn([3, 2, 3, 32, 32], (Kind::Float, Device::Cpu));
            assert_eq!(net.forward(&x, true).size(), [3, 2, 128]);
            let plain = nn::VarStore::new(Device::Cpu);
            Network::backbone(&plain.root(), &cfg).unwrap();
            let mut names: Vec<String> = vs.variables().into_keys().filter(|k| !k.starts_with("contrastive.")).collect();
            let mut expect: Vec<String> = plain.variables().into_keys().collect();
            names.sort();
            expect.sort();
            assert_eq!(names, expect, "{arch}");
            assert_eq!(vs.variables().len(), expect.len() + 4, "fc1 and fc2, weights and biases");
        }
    }

    /// Values from tests/reference/nt_xent_reference.py (PyTorch in float64, written out per
    /// view with explicit sums, not through cross-entropy), on the same projections.
    #[test]
    fn nt_xent_matches_the_reference() {
        let (b, d) = (3usize, 4usize);
        let mut z = vec![0f32; b * 2 * d];
        for n in 0..b * d {
            let first = ((n * 37 % 23) as f32 - 11.0) / 7.0;
            z[(n / d) * 2 * d + n % d] = first;
            z[(n / d) * 2 * d + d + n % d] = first + ((n * 13 % 7) as f32 - 3.0) / 1.5;
        }
        let outputs = Tensor::from_slice(&z).view([b as i64, 2, d as i64]);
        let y = Tensor::from_slice(&[0i64, 1, 2]);
        for (t, expect) in NT_XENT_REFERENCE {
            let loss = NtXent { temperature: t }.loss(&outputs, &y).double_value(&[]);
            assert!(
                (loss - expect).abs() <= 1e-5 * expect.max(1e-2),
                "temperature {t}: {loss} against {expect}"
            );
        }
        let nt = NtXent { temperature: 0.5 };
        assert_eq!(nt.score(&outputs, &y).double_value(&[]), NT_XENT_RETRIEVED);
        // Second views shifted by one image: none finds its own.
        let shifted = Tensor::stack(&[outputs.select(1, 0), outputs.select(1, 1).roll([1], [0])], 1);
        assert_eq!(nt.score(&shifted, &y).double_value(&[]), 0.0);
    }

    const NT_XENT_REFERENCE: [(f64, f64); 3] = [(0.1, 0.000144480178458), (0.5, 0.33590219709), (1.0, 0.809758056957)];
    const NT_XENT_RETRIEVED: f64 = 3.0;
}
