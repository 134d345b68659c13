//! Colourisation (Zhang et al. 2016): the network sees an image's lightness and predicts its
//! colour, the ab channels of CIE Lab, at a quarter of the input's side.
//!
//! One sample of image `i`: its L channel (scaled to 0..1 and normalised like every input,
//! the same in all three input channels, as the backbone takes three), mirrored at random;
//! its targets the mean a and b of each 4 x 4 block (`[2, S/4, S/4]`). The loss is either
//! Zhang's classification over the in-gamut ab bins of side 10 (`lab.rs`), each pixel's
//! class its nearest bin (a hard encoding; Zhang spread it over five neighbours) weighted
//! by the class-rebalancing weights of the training images' prior, or a regression (L2 on
//! ab / 100). The metric: the share of output pixels whose predicted ab (the annealed mean
//! of the bins, T = 0.38, as Zhang; or the regression's output) lies within 10 ab units
//! (Euclidean) of the truth. Predicting gray (ab = 0) is the trivial baseline.
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tch::{Kind, Tensor};

use super::lab::{bins, nearest_bin, output_side, srgb_to_lab};
use crate::data::DataError;
use crate::train::batches::{DenseMaker, ImageSet, Target, MEAN, STD};
use crate::train::objective::{Metric, Objective};

/// An output pixel counts as right when its ab lies within this distance of the truth.
pub const TOLERANCE: f64 = 10.0;
/// Zhang's temperature of the annealed mean over the bins.
pub const ANNEAL: f64 = 0.38;
/// The regression's outputs are ab / this.
pub const AB_SCALE: f64 = 100.0;

/// The colourisation samples of an image set.
pub struct Colorize {
    pub set: Arc<ImageSet>,
    /// Mirror each sample with probability 1/2.
    pub flip: bool,
}

impl Colorize {
    fn out_side(&self) -> usize {
        output_side(self.set.size)
    }

    /// Image `i`'s lightness input (`[3, s, s]`, normalised) and block-mean ab
    /// (`[2, o, o]`), mirrored when `flip`.
    pub fn write(&self, i: usize, flip: bool, out: &mut [f32], targets: &mut [f32]) -> Result<(), DataError> {
        let s = self.set.size;
        let o = self.out_side();
        let block = s / o;
        let plane = s * s;
        // Dereferenced once: indexing the `Cow` itself in the pixel loop is slower.
        let image = self.set.image(i)?;
        let src: &[u8] = &image;
        targets.fill(0.0);
        for y in 0..s {
            for x in 0..s {
                let sx = if flip { s - 1 - x } else { x };
                let p = y * s + sx;
                let [l, a, b] = srgb_to_lab([src[p], src[plane + p], src[2 * plane + p]]);
                let v = (l / 100.0 - MEAN) / STD;
                for ch in 0..3 {
                    out[ch * plane + y * s + x] = v;
                }
                let (by, bx) = (y / block, x / block);
                if by < o && bx < o {
                    targets[by * o + bx] += a;
                    targets[o * o + by * o + bx] += b;
                }
            }
        }
        let per = (block * block) as f32;
        targets.iter_mut().for_each(|t| *t /= per);
        Ok(())
    }

    /// How many of the set's target pixels fall in each ab bin (unmirrored images): the
    /// prior's histogram (a pass over the set: a streamed set decodes each image once).
    pub fn histogram(&self) -> Result<Vec<f64>, DataError> {
        let q = bins().len();
        let o = self.out_side();
        let per = 3 * self.set.size * self.set.size;
        (0..self.set.n)
            .into_par_iter()
            .try_fold(
                || (vec![0f64; q], vec![0f32; per], vec![0f32; 2 * o * o]),
                |(mut counts, mut input, mut ab), i| {
                    self.write(i, false, &mut input, &mut ab)?;
                    for p in 0..o * o {
                        counts[nearest_bin(ab[p], ab[o * o + p])] += 1.0;
                    }
                    Ok((counts, input, ab))
                },
            )
            .map(|r| r.map(|(counts, _, _)| counts))
            .try_reduce(|| vec![0f64; q], |a, b| Ok(a.iter().zip(&b).map(|(x, y)| x + y).collect()))
    }

    /// The share of the set's target pixels (unmirrored) within [`TOLERANCE`] of gray.
    pub fn gray_accuracy(&self) -> Result<f64, DataError> {
        let o = self.out_side();
        let per = 3 * self.set.size * self.set.size;
        let hits: usize = (0..self.set.n)
            .into_par_iter()
            .map(|i| {
                let (mut input, mut ab) = (vec![0f32; per], vec![0f32; 2 * o * o]);
                self.write(i, false, &mut input, &mut ab)?;
                Ok((0..o * o)
                    .filter(|&p| (ab[p] as f64).hypot(ab[o * o + p] as f64) <= TOLERANCE)
                    .count())
            })
            .try_reduce(|| 0, |a, b| Ok(a + b))?;
        Ok(hits as f64 / (self.set.n * o * o).max(1) as f64)
    }
}

impl DenseMaker for Colorize {
    fn images(&self) -> &ImageSet {
        &self.set
    }
    /// `[2, S/4, S/4]`: a, then b.
    fn target_dims(&self) -> [usize; 3] {
        let o = self.out_side();
        [2, o, o]
    }
    fn make_dense(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [f32]) -> Result<(), DataError> {
        let flip = self.flip && rng.gen_bool(0.5);
        self.write(i, flip, out, targets)
    }
}

/// The colourisation loss and its ab accuracy.
#[derive(Clone, Debug, PartialEq)]
pub enum ColorLoss {
    /// Cross-entropy over [`bins`] (the network's output channels), each pixel's term
    /// weighted by its bin's rebalancing weight; the mean over pixels.
    Classification { weights: Vec<f32> },
    /// Mean squared error of ab / [`AB_SCALE`] (two output channels).
    Regression,
}

impl ColorLoss {
    pub const METRIC: Metric = Metric {
        key: "ab_accuracy",
        label: "ab accuracy",
    };

    /// Output channels of the network.
    pub fn channels(&self) -> i64 {
        match self {
            ColorLoss::Classification { .. } => bins().len() as i64,
            ColorLoss::Regression => 2,
        }
    }

    /// The bin centres `[Q, 2]` on `device`.
    fn centres(device: tch::Device) -> Tensor {
        let flat: Vec<f32> = bins().iter().flatten().copied().collect();
        Tensor::from_slice(&flat).view([-1, 2]).to_device(device)
    }

    /// Each pixel's nearest bin `[P]` from ab values `[P, 2]` (ties: the first bin).
    fn classes(ab: &Tensor) -> Tensor {
        let centres = ColorLoss::centres(ab.device());
        (ab.unsqueeze(1) - centres.unsqueeze(0))
            .square()
            .sum_dim_intlist([2i64].as_slice(), false, Kind::Float)
            .argmin(1, false)
    }

    /// Rows of pixels: `[b, c, h, w]` -> `[b h w, c]` in float32.
    fn pixels(t: &Tensor) -> Tensor {
        let c = t.size()[1];
        t.to_kind(Kind::Float).permute([0, 2, 3, 1]).reshape([-1, c])
    }

    /// The predicted ab `[P, 2]` of `outputs`.
    pub fn predict(&self, outputs: &Tensor) -> Tensor {
        let rows = ColorLoss::pixels(outputs);
        match self {
            ColorLoss::Classification { .. } => (rows / ANNEAL)
                .softmax(1, Kind::Float)
                .matmul(&ColorLoss::centres(outputs.device())),
            ColorLoss::Regression => rows * AB_SCALE,
        }
    }
}

impl Objective for ColorLoss {
    fn target(&self) -> Target {
        Target::Pixels
    }
    fn metric(&self) -> Metric {
        ColorLoss::METRIC
    }
    /// `outputs` `[b, Q or 2, h, w]`, `targets` `[b, 2, h, w]` (ab).
    fn loss(&self, outputs: &Tensor, targets: &Tensor) -> Tensor {
        let ab = ColorLoss::pixels(targets);
        match self {
            ColorLoss::Classification { weights } => {
                let classes = ColorLoss::classes(&ab);
                let w = Tensor::from_slice(weights).to_device(outputs.device()).index_select(0, &classes);
                let logp = ColorLoss::pixels(outputs).log_softmax(1, Kind::Float);
                let nll = -logp.gather(1, &classes.unsqueeze(1), false).squeeze_dim(1);
                (nll * w).mean(Kind::Float)
            }
            ColorLoss::Regression => (ColorLoss::pixels(outputs) - ab / AB_SCALE).square().mean(Kind::Float),
        }
    }
    /// The sum over the batch's images of the share of their pixels within [`TOLERANCE`].
    fn score(&self, outputs: &Tensor, targets: &Tensor) -> Tensor {
        let s = targets.size();
        let per_image = (s[2] * s[3]) as f64;
        let error = (self.predict(outputs) - ColorLoss::pixels(targets))
            .square()
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            .sqrt();
        error.le(TOLERANCE).to_kind(Kind::Double).sum(Kind::Double) / per_image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::batches::assemble;

    /// Two 8 x 8 images: the first pure red on its left half and gray on its right, the
    /// second every pixel (10 i, 128, 255 - 10 i) along x.
    fn set() -> Arc<ImageSet> {
        let s = 8;
        let mut pixels = vec![0u8; 2 * 3 * s * s];
        for y in 0..s {
            for x in 0..s {
                let p = y * s + x;
                let rgb = if x < 4 { [255, 0, 0] } else { [128, 128, 128] };
                for ch in 0..3 {
                    pixels[ch * s * s + p] = rgb[ch];
                }
                let second = [10 * x as u8, 128, 255 - 10 * x as u8];
                for ch in 0..3 {
                    pixels[3 * s * s + ch * s * s + p] = second[ch];
                }
            }
        }
        Arc::new(ImageSet::from_pixels(pixels, 2, s))
    }

    #[test]
    fn samples_are_lightness_in_and_block_ab_out_fixed_by_the_seed() {
        let maker = Colorize { set: set(), flip: true };
        let batch = assemble(&maker, &[0, 1], 3, 0).unwrap();
        assert_eq!(batch.inputs.size(), [2, 3, 8, 8]);
        assert_eq!(batch.targets.size(), [2, 2, 2, 2]);
        assert_eq!(batch.targets.kind(), Kind::Float);
        assert!(
            assemble(&maker, &[0, 1], 3, 0).unwrap().inputs.equal(&batch.inputs),
            "same seed, same samples"
        );
        // Unmirrored: red's L in all three channels on the left, ab of red in the first
        // block column, gray's (0, 0) in the second.
        let (mut input, mut ab) = (vec![0f32; 3 * 64], vec![0f32; 8]);
        maker.write(0, false, &mut input, &mut ab).unwrap();
        let red = srgb_to_lab([255, 0, 0]);
        let gray = srgb_to_lab([128, 128, 128]);
        let normalised = |l: f32| (l / 100.0 - MEAN) / STD;
        assert!((input[0] - normalised(red[0])).abs() < 1e-6);
        assert_eq!(input[0], input[64]);
        assert_eq!(input[0], input[128]);
        assert!((input[7] - normalised(gray[0])).abs() < 1e-6);
        assert!((ab[0] - red[1]).abs() < 1e-4 && (ab[4] - red[2]).abs() < 1e-4, "{ab:?}");
        assert!(ab[1].abs() < 1e-3 && ab[5].abs() < 1e-3, "{ab:?}");
        // Mirrored: the blocks swap sides.
        let (mut flipped_in, mut flipped) = (vec![0f32; 3 * 64], vec![0f32; 8]);
        maker.write(0, true, &mut flipped_in, &mut flipped).unwrap();
        assert!((flipped[1] - red[1]).abs() < 1e-4 && flipped[0].abs() < 1e-3, "{flipped:?}");
        // Half the first image's target pixels are gray.
        let one = Colorize {
            set: Arc::new(ImageSet::from_pixels(set().image(0).unwrap().into_owned(), 1, 8)),
            flip: false,
        };
        assert_eq!(one.gray_accuracy().unwrap(), 0.5);
        let counts = one.histogram().unwrap();
        assert_eq!(counts.iter().sum::<f64>(), 4.0);
        assert_eq!(counts[nearest_bin(0.0, 0.0)], 2.0);
        assert_eq!(counts[nearest_bin(red[1], red[2])], 2.0);
    }

    /// The targets and logits of scripts/lab_reference.py: 2 images of 2 x 2 output pixels.
    fn reference_batch() -> (Tensor, Tensor, Vec<f32>) {
        let (b, h, w) = (2i64, 2i64, 2i64);
        let q = bins().len() as i64;
        let ab_list: [(f32, f32); 8] = [
            (0., 0.),
            (35., -20.),
            (-60., 44.),
            (4., 71.),
            (-12., -3.),
            (80., 67.),
            (-85., 80.),
            (19., -101.),
        ];
        let mut ab = vec![0f32; 16];
        for (k, (a, bb)) in ab_list.iter().enumerate() {
            let (n, p) = (k / 4, k % 4);
            ab[n * 8 + p] = *a;
            ab[n * 8 + 4 + p] = *bb;
        }
        let mut logits = vec![0f32; (b * q * h * w) as usize];
        for n in 0..b {
            for c in 0..q {
                for y in 0..h {
                    for x in 0..w {
                        let mut v = 2.0 * (0.37 * c as f64 + 1.3 * y as f64 + 0.7 * x as f64 + 2.1 * n as f64).sin();
                        let k = (n * h * w + y * w + x) as usize;
                        if k.is_multiple_of(2) && nearest_bin(ab_list[k].0, ab_list[k].1) == c as usize {
                            v += 8.0;
                        }
                        logits[(((n * q + c) * h + y) * w + x) as usize] = v as f32;
                    }
                }
            }
        }
        let counts: Vec<f64> = (0..q as usize).map(|k| 1.0 + (k * 7 % 13) as f64).collect();
        let weights = super::super::lab::rebalancing_weights(&super::super::lab::smoothed_prior(&counts, 5.0), 0.5);
        (
            Tensor::from_slice(&logits).view([b, q, h, w]),
            Tensor::from_slice(&ab).view([b, 2, h, w]),
            weights,
        )
    }

    #[test]
    fn the_losses_and_the_accuracy_match_the_reference() {
        let (logits, ab, weights) = reference_batch();
        let loss = ColorLoss::Classification { weights };
        let value = loss.loss(&logits, &ab).double_value(&[]);
        assert!(
            (value - COLOR_CLASS_LOSS).abs() < 1e-4 * COLOR_CLASS_LOSS,
            "{value} against {COLOR_CLASS_LOSS}"
        );
        assert_eq!(loss.score(&logits, &ab).double_value(&[]), COLOR_HITS / 4.0);
        let out: Vec<f32> = (0..16)
            .map(|k| {
                let (n, c, y, x) = (k / 8, k / 4 % 2, k / 2 % 2, k % 2);
                ((0.9 * c as f64 + 0.4 * y as f64 - 0.3 * x as f64 + n as f64).cos() * 0.6) as f32
            })
            .collect();
        let out = Tensor::from_slice(&out).view([2, 2, 2, 2]);
        let value = ColorLoss::Regression.loss(&out, &ab).double_value(&[]);
        assert!(
            (value - COLOR_REGRESSION_LOSS).abs() < 1e-5,
            "{value} against {COLOR_REGRESSION_LOSS}"
        );
        // Gray predicted: only the first image's (0, 0) pixel is within 10 ((-12, -3) is
        // 12.4 away), a quarter of that image.
        let zero = Tensor::zeros([2, 2, 2, 2], (Kind::Float, tch::Device::Cpu));
        assert_eq!(ColorLoss::Regression.score(&zero, &ab).double_value(&[]), 0.25);
    }

    // From scripts/lab_reference.py.
    const COLOR_CLASS_LOSS: f64 = 4.32485627184;
    const COLOR_HITS: f64 = 4.0;
    const COLOR_REGRESSION_LOSS: f64 = 0.41511054334;
}
