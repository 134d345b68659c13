//! Images in memory and the augmented, normalised batches made from them on a
//! background thread, so that batch assembly overlaps the training step.
use std::sync::mpsc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tch::{Kind, Tensor};

use crate::data::{resize_to, DataError, Source};

/// Fixed normalisation of every input: (x/255 - MEAN) / STD per channel.
pub const MEAN: f32 = 0.5;
pub const STD: f32 = 0.25;

/// A split decoded into memory: `[n, 3, size, size]` u8, channels-first.
pub struct ImageSet {
    pub pixels: Vec<u8>,
    pub n: usize,
    pub size: usize,
}

impl ImageSet {
    /// Decodes every image of `source` (in parallel), resized to `size` if needed.
    pub fn load(source: &dyn Source, size: usize, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<ImageSet, DataError> {
        let n = source.len();
        let per = 3 * size * size;
        let mut pixels = vec![0u8; n * per];
        let done = std::sync::atomic::AtomicU64::new(0);
        pixels
            .par_chunks_mut(per * 64)
            .enumerate()
            .try_for_each(|(c, out)| -> Result<(), DataError> {
                for (j, dst) in out.chunks_mut(per).enumerate() {
                    let i = c * 64 + j;
                    let img = source.load(i)?;
                    let img = if img.width != size || img.height != size {
                        resize_to(&img, size)
                    } else {
                        img
                    };
                    for y in 0..size {
                        for x in 0..size {
                            let p = img.pixel(x, y);
                            for ch in 0..3 {
                                dst[ch * size * size + y * size + x] = p[ch];
                            }
                        }
                    }
                }
                let d = done.fetch_add((out.len() / per) as u64, std::sync::atomic::Ordering::Relaxed);
                progress(d + (out.len() / per) as u64, n as u64);
                Ok(())
            })?;
        Ok(ImageSet { pixels, n, size })
    }

    /// Image `i` as normalised floats, CHW.
    fn write_normalised(&self, i: usize, out: &mut [f32], aug: Option<(&Augment, &mut ChaCha8Rng)>) {
        let s = self.size;
        let src = &self.pixels[i * 3 * s * s..(i + 1) * 3 * s * s];
        let (dx, dy, flip) = match aug {
            Some((a, rng)) if a.crop_padding > 0 || a.flip => {
                let p = a.crop_padding as i64;
                let dx = if p > 0 { rng.gen_range(-p..=p) } else { 0 };
                let dy = if p > 0 { rng.gen_range(-p..=p) } else { 0 };
                (dx, dy, a.flip && rng.gen_bool(0.5))
            }
            _ => (0, 0, false),
        };
        for ch in 0..3 {
            for y in 0..s {
                for x in 0..s {
                    let sx0 = if flip { s - 1 - x } else { x } as i64 + dx;
                    let sy = y as i64 + dy;
                    let v = if sx0 < 0 || sy < 0 || sx0 >= s as i64 || sy >= s as i64 {
                        0.0
                    } else {
                        (src[ch * s * s + sy as usize * s + sx0 as usize] as f32 / 255.0 - MEAN) / STD
                    };
                    out[ch * s * s + y * s + x] = v;
                }
            }
        }
    }

    /// Images `idx` as a normalised float batch `[b, 3, s, s]`, without augmentation.
    pub fn batch(&self, idx: &[usize]) -> Tensor {
        let per = 3 * self.size * self.size;
        let mut buf = vec![0f32; idx.len() * per];
        buf.par_chunks_mut(per)
            .zip(idx.par_iter())
            .for_each(|(out, &i)| self.write_normalised(i, out, None));
        let s = self.size as i64;
        Tensor::from_slice(&buf).view([idx.len() as i64, 3, s, s])
    }
}

/// Training-time augmentation: random translation by up to `crop_padding` pixels
/// (random crop of the zero-padded image, as CIFAR training does) and horizontal flips.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    pub crop_padding: usize,
    pub flip: bool,
}

/// One training batch: inputs `[b, 3, s, s]` and the row indices they came from.
pub struct Batch {
    pub images: Tensor,
    pub index: Vec<usize>,
}

/// The batches of one epoch, in an order drawn from (seed, epoch), assembled on a
/// producer thread (each batch's images in parallel) while the consumer trains.
pub fn epoch_batches(set: std::sync::Arc<ImageSet>, batch_size: usize, seed: u64, epoch: usize, augment: Augment) -> mpsc::Receiver<Batch> {
    let (tx, rx) = mpsc::sync_channel(3);
    std::thread::spawn(move || {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut order: Vec<usize> = (0..set.n).collect();
        order.shuffle(&mut rng);
        let per = 3 * set.size * set.size;
        for (b, chunk) in order.chunks(batch_size.max(1)).enumerate() {
            let mut buf = vec![0f32; chunk.len() * per];
            // Per-sample RNGs derived from (seed, epoch, batch, j): parallel and deterministic.
            buf.par_chunks_mut(per)
                .zip(chunk.par_iter())
                .enumerate()
                .for_each(|(j, (out, &i))| {
                    let mut r = ChaCha8Rng::seed_from_u64(seed ^ ((epoch as u64) << 40) ^ ((b as u64) << 20) ^ j as u64);
                    set.write_normalised(i, out, Some((&augment, &mut r)));
                });
            let s = set.size as i64;
            let images = Tensor::from_slice(&buf).view([chunk.len() as i64, 3, s, s]);
            if tx
                .send(Batch {
                    images,
                    index: chunk.to_vec(),
                })
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Labels as a tensor.
pub fn labels_tensor(labels: &[i64]) -> Tensor {
    Tensor::from_slice(labels).to_kind(Kind::Int64)
}
