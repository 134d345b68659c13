//! Rotation prediction (Gidaris et al. 2018): every image is shown at 0, 90, 180 and 270
//! degrees in the same batch, and the network classifies the rotation (targets 0..4).
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use crate::data::DataError;
use crate::train::batches::{Augment, ImageSet, SampleMaker};

pub struct Rotation {
    pub set: Arc<ImageSet>,
    pub augment: Augment,
}

/// Rotates a square `[3, s, s]` image by `quarter` x 90 degrees counter-clockwise.
pub fn rotate(src: &[f32], s: usize, quarter: usize, out: &mut [f32]) {
    for ch in 0..3 {
        let (a, b) = (&src[ch * s * s..(ch + 1) * s * s], &mut out[ch * s * s..(ch + 1) * s * s]);
        for y in 0..s {
            for x in 0..s {
                // (x, y) of the output reads this pixel of the input.
                let (sx, sy) = match quarter % 4 {
                    0 => (x, y),
                    1 => (s - 1 - y, x),
                    2 => (s - 1 - x, s - 1 - y),
                    _ => (y, s - 1 - x),
                };
                b[y * s + x] = a[sy * s + sx];
            }
        }
    }
}

impl SampleMaker for Rotation {
    fn samples(&self) -> usize {
        self.set.n
    }
    fn sample_len(&self) -> usize {
        4 * 3 * self.set.size * self.set.size
    }
    fn targets_per_sample(&self) -> usize {
        4
    }
    fn batch_shape(&self, b: usize) -> Vec<i64> {
        let s = self.set.size as i64;
        vec![4 * b as i64, 3, s, s]
    }
    fn make(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [i64]) -> Result<(), DataError> {
        let s = self.set.size;
        let per = 3 * s * s;
        let mut image = vec![0f32; per];
        self.set.write_normalised(i, &mut image, Some((&self.augment, rng)))?;
        for q in 0..4 {
            rotate(&image, s, q, &mut out[q * per..(q + 1) * per]);
            targets[q] = q as i64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_rotations_compose_to_identity_and_match_torch() {
        let s = 5;
        let src: Vec<f32> = (0..3 * s * s).map(|v| v as f32).collect();
        let mut r = vec![0f32; src.len()];
        let mut cur = src.clone();
        for _ in 0..4 {
            rotate(&cur, s, 1, &mut r);
            cur.clone_from(&r);
        }
        assert_eq!(cur, src);
        // torch.rot90(x, k, dims=(1, 2)) rotates counter-clockwise, as `rotate` does.
        let t = tch::Tensor::from_slice(&src).view([3, s as i64, s as i64]);
        for q in 0..4 {
            rotate(&src, s, q, &mut r);
            let expect: Vec<f32> = t.rot90(q as i64, [1, 2]).flatten(0, -1).try_into().unwrap();
            assert_eq!(r, expect, "quarter {q}");
        }
    }

    #[test]
    fn batches_hold_all_four_rotations_of_each_image() {
        let set = Arc::new(ImageSet::from_pixels((0..2 * 3 * 8 * 8).map(|v| (v % 251) as u8).collect(), 2, 8));
        let r = Rotation {
            set,
            augment: Augment {
                crop_padding: 0,
                flip: false,
                resized_crop: None,
            },
        };
        let b = crate::train::batches::assemble(&r, &[1, 0], 0, 0).unwrap();
        assert_eq!(b.inputs.size(), [8, 3, 8, 8]);
        let t: Vec<i64> = b.targets.try_into().unwrap();
        assert_eq!(t, vec![0, 1, 2, 3, 0, 1, 2, 3]);
        let x = b.inputs.get(0);
        assert!(b.inputs.get(2).equal(&x.rot90(2, [1, 2])));
    }
}
