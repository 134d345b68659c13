//! Inpainting (the context encoder of Pathak et al. 2016, without its adversarial term):
//! part of an image is removed, filled with the training images' mean colour, and the
//! network predicts the whole image from what is left; the loss is the mean squared error
//! on the removed pixels (plus `outside_weight` times the error on the others).
//!
//! One sample of image `i`: the masked image (normalised like every input), mirrored at
//! random; its targets `[4, S, S]`: the image's RGB in 0..1 and the mask (1 where removed).
//! The mask is the central square of side `size` (`MaskKind::Center`), or square blocks of
//! side `size` at random places until a quarter of the image is removed
//! (`MaskKind::Blocks`). The metric: PSNR of the removed region (peak 1), per image, its
//! mean over the images; the region's MSE beside it on held-out images. Predicting the
//! mean colour is the trivial baseline.
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use crate::data::DataError;
use crate::train::batches::{DenseMaker, ImageSet, Target, MEAN, STD};
use crate::train::objective::{Metric, Objective};

/// Which pixels a sample loses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskKind {
    /// The central square.
    Center,
    /// Random square blocks covering at least a quarter of the image.
    Blocks,
}

/// The mask of a sample: its kind and the side of its square(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskConfig {
    pub kind: MaskKind,
    pub size: usize,
}

impl MaskConfig {
    /// The mask (`true`: removed) of an image of side `s`, `[s * s]` row-major.
    pub fn draw(&self, s: usize, rng: &mut ChaCha8Rng) -> Vec<bool> {
        let mut mask = vec![false; s * s];
        let side = self.size.clamp(1, s);
        let square = |x0: usize, y0: usize, mask: &mut Vec<bool>| {
            for y in y0..y0 + side {
                for x in x0..x0 + side {
                    mask[y * s + x] = true;
                }
            }
        };
        match self.kind {
            MaskKind::Center => {
                let at = (s - side) / 2;
                square(at, at, &mut mask);
            }
            MaskKind::Blocks => {
                // A quarter of the image, at most 1,000 blocks.
                for _ in 0..1000 {
                    if 4 * mask.iter().filter(|&&m| m).count() >= s * s {
                        break;
                    }
                    let (x0, y0) = (rng.gen_range(0..=s - side), rng.gen_range(0..=s - side));
                    square(x0, y0, &mut mask);
                }
            }
        }
        mask
    }
}

/// The inpainting samples of an image set.
pub struct Inpaint {
    pub set: Arc<ImageSet>,
    pub mask: MaskConfig,
    /// What removed pixels are filled with: the training images' mean colour, RGB in 0..1.
    pub fill: [f32; 3],
    /// Mirror each sample with probability 1/2.
    pub flip: bool,
}

/// The mean colour (RGB in 0..1) of a set's images (a pass over the set: a streamed set
/// decodes each image once).
pub fn mean_colour(set: &ImageSet) -> Result<[f32; 3], DataError> {
    let plane = set.size * set.size;
    let mut sums = [0f64; 3];
    for i in 0..set.n {
        let image = set.image(i)?;
        for (ch, sum) in sums.iter_mut().enumerate() {
            *sum += image[ch * plane..(ch + 1) * plane].iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    let n = (set.n * plane).max(1) as f64;
    Ok(sums.map(|s| (s / n / 255.0) as f32))
}

impl Inpaint {
    /// Image `i` with the pixels of `mask` filled (normalised, `[3, s, s]`), and its targets
    /// (`[4, s, s]`: RGB in 0..1, the mask), mirrored when `flip`.
    pub fn write(&self, i: usize, flip: bool, mask: &[bool], out: &mut [f32], targets: &mut [f32]) -> Result<(), DataError> {
        let s = self.set.size;
        let plane = s * s;
        // Dereferenced once: indexing the `Cow` itself in the pixel loop is slower.
        let image = self.set.image(i)?;
        let src: &[u8] = &image;
        for ch in 0..3 {
            for y in 0..s {
                for x in 0..s {
                    let sx = if flip { s - 1 - x } else { x };
                    let p = y * s + x;
                    let v = src[ch * plane + y * s + sx] as f32 / 255.0;
                    targets[ch * plane + p] = v;
                    let shown = if mask[p] { self.fill[ch] } else { v };
                    out[ch * plane + p] = (shown - MEAN) / STD;
                }
            }
        }
        for (t, &m) in targets[3 * plane..].iter_mut().zip(mask) {
            *t = if m { 1.0 } else { 0.0 };
        }
        Ok(())
    }
}

impl DenseMaker for Inpaint {
    fn images(&self) -> &ImageSet {
        &self.set
    }
    /// `[4, S, S]`: RGB, then the mask.
    fn target_dims(&self) -> [usize; 3] {
        [4, self.set.size, self.set.size]
    }
    fn make_dense(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [f32]) -> Result<(), DataError> {
        let flip = self.flip && rng.gen_bool(0.5);
        let mask = self.mask.draw(self.set.size, rng);
        self.write(i, flip, &mask, out, targets)
    }
}

/// What [`InpaintLoss`] reports: PSNR in training and on held-out images, the region's
/// MSE beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionMetric {
    Psnr,
    Mse,
}

/// The context encoder's reconstruction loss and its region metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InpaintLoss {
    /// Weight of the error outside the removed region (0: the region alone).
    pub outside_weight: f64,
    pub metric: RegionMetric,
}

impl InpaintLoss {
    pub const PSNR: Metric = Metric {
        key: "psnr",
        label: "masked-region PSNR",
    };
    pub const MSE: Metric = Metric {
        key: "mse",
        label: "masked-region MSE",
    };

    /// Per image: (squared error inside the mask, pixels inside times 3, squared error
    /// outside, pixels outside times 3), each `[b]`.
    fn errors(outputs: &Tensor, targets: &Tensor) -> (Tensor, Tensor, Tensor, Tensor) {
        let image = targets.narrow(1, 0, 3);
        let mask = targets.narrow(1, 3, 1); // [b, 1, s, s]
        let se = (outputs.to_kind(Kind::Float) - image).square(); // [b, 3, s, s]
        let dims = [1i64, 2, 3];
        let inside = (&se * &mask).sum_dim_intlist(dims.as_slice(), false, Kind::Float);
        let kept: Tensor = mask.ones_like() - &mask;
        let outside = (&se * &kept).sum_dim_intlist(dims.as_slice(), false, Kind::Float);
        let n_in = mask.sum_dim_intlist(dims.as_slice(), false, Kind::Float) * 3.0;
        let n_out = kept.sum_dim_intlist(dims.as_slice(), false, Kind::Float) * 3.0;
        (inside, n_in, outside, n_out)
    }
}

impl Objective for InpaintLoss {
    fn target(&self) -> Target {
        Target::Pixels
    }
    fn metric(&self) -> Metric {
        match self.metric {
            RegionMetric::Psnr => InpaintLoss::PSNR,
            RegionMetric::Mse => InpaintLoss::MSE,
        }
    }
    /// `outputs` `[b, 3, s, s]` (RGB in 0..1), `targets` `[b, 4, s, s]`: the mean squared
    /// error over the batch's removed pixels, plus `outside_weight` times that over the
    /// others.
    fn loss(&self, outputs: &Tensor, targets: &Tensor) -> Tensor {
        let (inside, n_in, outside, n_out) = InpaintLoss::errors(outputs, targets);
        let region = inside.sum(Kind::Float) / n_in.sum(Kind::Float).clamp_min(1.0);
        if self.outside_weight == 0.0 {
            return region;
        }
        region + self.outside_weight * outside.sum(Kind::Float) / n_out.sum(Kind::Float).clamp_min(1.0)
    }
    /// The sum over the batch's images of their region's PSNR (dB, peak 1) or MSE.
    fn score(&self, outputs: &Tensor, targets: &Tensor) -> Tensor {
        let (inside, n_in, _, _) = InpaintLoss::errors(outputs, targets);
        let mse = (inside / n_in.clamp_min(1.0)).to_kind(Kind::Double);
        match self.metric {
            RegionMetric::Mse => mse.sum(Kind::Double),
            RegionMetric::Psnr => (mse.clamp_min(1e-10).log10() * -10.0).sum(Kind::Double),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::batches::assemble;
    use rand::SeedableRng;

    fn set() -> Arc<ImageSet> {
        let s = 8;
        Arc::new(ImageSet::from_pixels(
            (0..2 * 3 * s * s).map(|v| (v * 7 % 251) as u8).collect(),
            2,
            s,
        ))
    }

    #[test]
    fn masks_remove_the_centre_or_a_quarter_in_blocks() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let center = MaskConfig {
            kind: MaskKind::Center,
            size: 4,
        }
        .draw(8, &mut rng);
        let removed: Vec<usize> = (0..64).filter(|&p| center[p]).collect();
        assert_eq!(removed.len(), 16);
        assert!(removed.iter().all(|&p| (2..6).contains(&(p / 8)) && (2..6).contains(&(p % 8))));
        let blocks = MaskConfig {
            kind: MaskKind::Blocks,
            size: 2,
        };
        let a = blocks.draw(8, &mut ChaCha8Rng::seed_from_u64(1));
        assert!(a.iter().filter(|&&m| m).count() >= 16);
        assert_eq!(a, blocks.draw(8, &mut ChaCha8Rng::seed_from_u64(1)), "fixed by the seed");
        assert_ne!(a, blocks.draw(8, &mut ChaCha8Rng::seed_from_u64(2)));
    }

    #[test]
    fn samples_fill_the_removed_pixels_with_the_mean_colour_and_carry_the_image() {
        let set = set();
        let fill = mean_colour(&set).unwrap();
        let pixels: Vec<u8> = (0..2).flat_map(|i| set.image(i).unwrap().into_owned()).collect();
        let expect: f64 = pixels[..64].iter().chain(&pixels[192..256]).map(|&v| v as f64).sum::<f64>() / 128.0 / 255.0;
        assert!((fill[0] as f64 - expect).abs() < 1e-6);
        let maker = Inpaint {
            set: set.clone(),
            mask: MaskConfig {
                kind: MaskKind::Center,
                size: 4,
            },
            fill,
            flip: false,
        };
        let batch = assemble(&maker, &[1, 0], 4, 0).unwrap();
        assert_eq!(batch.inputs.size(), [2, 3, 8, 8]);
        assert_eq!(batch.targets.size(), [2, 4, 8, 8]);
        let (mut out, mut t) = (vec![0f32; 192], vec![0f32; 256]);
        let mask = maker.mask.draw(8, &mut ChaCha8Rng::seed_from_u64(0));
        maker.write(0, false, &mask, &mut out, &mut t).unwrap();
        // Pixel (0, 0) kept, (3, 3) removed.
        assert_eq!(t[0], pixels[0] as f32 / 255.0);
        assert_eq!(out[0], (t[0] - MEAN) / STD);
        assert_eq!(out[3 * 8 + 3], (fill[0] - MEAN) / STD);
        assert_eq!(t[3 * 8 + 3], pixels[3 * 8 + 3] as f32 / 255.0, "the target keeps the pixel");
        assert_eq!((t[192], t[192 + 27]), (0.0, 1.0));
        let from_batch: Vec<f32> = Vec::try_from(batch.targets.get(1).flatten(0, -1)).unwrap();
        assert_eq!(from_batch, t);
    }

    /// The values of scripts/lab_reference.py: 2 images of 4 x 4, the first's centre and
    /// the second's corner removed.
    #[test]
    fn the_loss_and_psnr_match_the_reference() {
        let (b, s) = (2usize, 4usize);
        let mut targets = vec![0f32; b * 4 * s * s];
        let mut pred = vec![0f32; b * 3 * s * s];
        for n in 0..b {
            for c in 0..3 {
                for y in 0..s {
                    for x in 0..s {
                        targets[((n * 4 + c) * s + y) * s + x] = ((n * 31 + c * 7 + y * 5 + x * 3) % 17) as f32 / 16.0;
                        pred[((n * 3 + c) * s + y) * s + x] =
                            (0.5 + 0.4 * (n as f64 + c as f64 * 1.7 + y as f64 * 0.9 - x as f64 * 0.5).sin()) as f32;
                    }
                }
            }
            for y in 0..s {
                for x in 0..s {
                    let m = if n == 0 {
                        (1..=2).contains(&y) && (1..=2).contains(&x)
                    } else {
                        y < 2 && x < 2
                    };
                    targets[((n * 4 + 3) * s + y) * s + x] = if m { 1.0 } else { 0.0 };
                }
            }
        }
        let targets = Tensor::from_slice(&targets).view([2, 4, 4, 4]);
        let pred = Tensor::from_slice(&pred).view([2, 3, 4, 4]);
        let objective = InpaintLoss {
            outside_weight: 0.1,
            metric: RegionMetric::Psnr,
        };
        let loss = objective.loss(&pred, &targets).double_value(&[]);
        assert!((loss - INPAINT_LOSS).abs() < 1e-5, "{loss} against {INPAINT_LOSS}");
        let psnr = objective.score(&pred, &targets).double_value(&[]);
        assert!((psnr - INPAINT_PSNR_SUM).abs() < 1e-4, "{psnr} against {INPAINT_PSNR_SUM}");
        // The prediction is the target: loss 0, MSE 0.
        let exact = targets.narrow(1, 0, 3);
        let mse = InpaintLoss {
            outside_weight: 0.0,
            metric: RegionMetric::Mse,
        };
        assert_eq!(mse.loss(&exact, &targets).double_value(&[]), 0.0);
        assert_eq!(mse.score(&exact, &targets).double_value(&[]), 0.0);
    }

    // From scripts/lab_reference.py.
    const INPAINT_LOSS: f64 = 0.227649234663;
    const INPAINT_PSNR_SUM: f64 = 13.8333328077;
}
