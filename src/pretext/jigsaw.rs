//! Jigsaw and Jigsaw++ samples (Noroozi & Favaro 2016; Noroozi et al. 2018).
//!
//! One sample of image `i`: a random `crop x crop` window, cut into a 3 x 3 grid of
//! cells of side `crop / 3`; from every cell a random `tile x tile` sub-crop (the jitter
//! that keeps edges and corners from giving the answer away), each colour channel shifted
//! by up to `channel_shift` pixels (against chromatic aberration); the tiles reordered by
//! one permutation of the set (position `p` shows the tile of cell `perm[p]`), whose index
//! is the target; the whole sample turned grayscale with probability `grayscale`; every
//! tile normalised on its own, per channel, to mean 0 and standard deviation 1.
//!
//! Jigsaw++ then replaces 0..=`max_replaced` tiles (the count uniform, the positions
//! random) by tiles of another random image, which the network must learn to ignore.
use std::sync::Arc;

use rand::seq::index::sample;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::permutations::{Permutation, PermutationSet, MAX_REPLACED, TILES};
use crate::data::DataError;
use crate::train::batches::{ImageSet, SampleMaker};

/// How tiles are cut from an image (its side is the `ImageSet`'s).
#[derive(Clone, Debug, PartialEq)]
pub struct JigsawConfig {
    /// Side of the random crop holding the 3 x 3 grid; each cell is `crop / 3`.
    pub crop: usize,
    /// Side of every tile, a random sub-crop of its cell.
    pub tile: usize,
    /// Each colour channel is offset by up to this many pixels in x and y.
    pub channel_shift: usize,
    /// Probability that a sample is turned grayscale.
    pub grayscale: f64,
    /// Jigsaw++: at most this many tiles come from another image (0 for Jigsaw).
    pub max_replaced: usize,
    /// Normalise every tile per channel (always on in training; off to inspect pixels).
    pub normalize: bool,
}

impl JigsawConfig {
    pub fn cell(&self) -> usize {
        self.crop / 3
    }

    /// Checks the geometry against an image side.
    pub fn check(&self, image_size: usize) -> Result<(), String> {
        if self.crop > image_size {
            return Err(format!("crop {} is larger than the image side {image_size}", self.crop));
        }
        if self.tile == 0 || self.tile > self.cell() {
            return Err(format!(
                "tile_size {} must be between 1 and the cell side crop / 3 = {}",
                self.tile,
                self.cell()
            ));
        }
        if !(0.0..=1.0).contains(&self.grayscale) {
            return Err(format!("grayscale is a probability, found {}", self.grayscale));
        }
        if self.max_replaced > MAX_REPLACED {
            return Err(format!(
                "max_replaced {} exceeds {MAX_REPLACED} (one of the {TILES} tiles stays the image's own)",
                self.max_replaced
            ));
        }
        Ok(())
    }
}

/// Where one output tile came from: image, grid cell, and the top-left corner of its
/// pixels in that image for each colour channel (they differ under `channel_shift`).
#[derive(Clone, Debug, PartialEq)]
pub struct TileSource {
    pub image: usize,
    pub cell: usize,
    pub origin: [(usize, usize); 3],
}

/// Everything drawn for one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    pub perm: usize,
    pub gray: bool,
    /// Output positions holding a tile of another image.
    pub replaced: Vec<usize>,
    pub tiles: Vec<TileSource>,
}

/// The Jigsaw(++) task over an image set.
pub struct Jigsaw {
    pub set: Arc<ImageSet>,
    pub perms: Vec<Permutation>,
    pub cfg: JigsawConfig,
}

impl Jigsaw {
    pub fn new(set: Arc<ImageSet>, perms: &PermutationSet, cfg: JigsawConfig) -> Result<Jigsaw, String> {
        cfg.check(set.size)?;
        if perms.is_empty() {
            return Err("the permutation set is empty".into());
        }
        Ok(Jigsaw {
            set,
            perms: perms.as_slice().to_vec(),
            cfg,
        })
    }

    /// Floats in one tile.
    fn tile_len(&self) -> usize {
        3 * self.cfg.tile * self.cfg.tile
    }

    /// Draws a crop window and, per cell, the tile's per-channel origins.
    fn cut(&self, image: usize, rng: &mut ChaCha8Rng) -> Vec<TileSource> {
        let (s, crop, cell, tile) = (self.set.size, self.cfg.crop, self.cfg.cell(), self.cfg.tile);
        let cx = rng.gen_range(0..=s - crop);
        let cy = rng.gen_range(0..=s - crop);
        let shift = self.cfg.channel_shift as i64;
        (0..TILES)
            .map(|c| {
                let x = cx + (c % 3) * cell + rng.gen_range(0..=cell - tile);
                let y = cy + (c / 3) * cell + rng.gen_range(0..=cell - tile);
                let mut origin = [(x, y); 3];
                if shift > 0 {
                    let max = (s - tile) as i64;
                    for o in &mut origin {
                        let dx = rng.gen_range(-shift..=shift);
                        let dy = rng.gen_range(-shift..=shift);
                        *o = ((x as i64 + dx).clamp(0, max) as usize, (y as i64 + dy).clamp(0, max) as usize);
                    }
                }
                TileSource { image, cell: c, origin }
            })
            .collect()
    }

    /// Makes sample `i` into `out` (`[9, 3, tile, tile]`) and says what was drawn; fails
    /// only when an image cannot be read.
    pub fn sample(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32]) -> Result<Provenance, DataError> {
        let perm = rng.gen_range(0..self.perms.len());
        let own = self.cut(i, rng);
        let mut tiles: Vec<TileSource> = self.perms[perm].iter().map(|&c| own[c as usize].clone()).collect();
        let mut replaced = Vec::new();
        let mut other_image = None;
        if self.cfg.max_replaced > 0 && self.set.n > 1 {
            let count = rng.gen_range(0..=self.cfg.max_replaced);
            if count > 0 {
                let mut other = rng.gen_range(0..self.set.n - 1);
                if other >= i {
                    other += 1;
                }
                let theirs = self.cut(other, rng);
                other_image = Some(other);
                replaced = sample(rng, TILES, count).into_vec();
                replaced.sort_unstable();
                for &p in &replaced {
                    tiles[p] = theirs[rng.gen_range(0..TILES)].clone();
                }
            }
        }
        let gray = self.cfg.grayscale > 0.0 && rng.gen_bool(self.cfg.grayscale);
        // Each image read once (a streamed set decodes it here), after every draw.
        let own_pixels = self.set.image(i)?;
        let other_pixels = other_image.map(|o| self.set.image(o)).transpose()?;
        for (t, src) in tiles.iter().enumerate() {
            let img = if src.image == i {
                &own_pixels
            } else {
                other_pixels.as_ref().unwrap_or(&own_pixels)
            };
            self.write_tile(img, src, gray, &mut out[t * self.tile_len()..(t + 1) * self.tile_len()]);
        }
        Ok(Provenance {
            perm,
            gray,
            replaced,
            tiles,
        })
    }

    /// The tile `src` of `img` (the pixels of image `src.image`).
    fn write_tile(&self, img: &[u8], src: &TileSource, gray: bool, out: &mut [f32]) {
        let (s, t) = (self.set.size, self.cfg.tile);
        let px = |ch: usize, x: usize, y: usize| img[ch * s * s + y * s + x] as f32 / 255.0;
        for y in 0..t {
            for x in 0..t {
                if gray {
                    let (ox, oy) = src.origin[0];
                    let l = 0.299 * px(0, ox + x, oy + y) + 0.587 * px(1, ox + x, oy + y) + 0.114 * px(2, ox + x, oy + y);
                    for ch in 0..3 {
                        out[ch * t * t + y * t + x] = l;
                    }
                } else {
                    for ch in 0..3 {
                        let (ox, oy) = src.origin[ch];
                        out[ch * t * t + y * t + x] = px(ch, ox + x, oy + y);
                    }
                }
            }
        }
        if self.cfg.normalize {
            for plane in out.chunks_mut(t * t) {
                normalize(plane);
            }
        }
    }
}

/// Mean 0 and standard deviation 1 (a constant plane becomes zeros).
fn normalize(v: &mut [f32]) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let std = if var > 1e-12 { var.sqrt() } else { 1.0 };
    for x in v.iter_mut() {
        *x = ((*x as f64 - mean) / std) as f32;
    }
}

impl SampleMaker for Jigsaw {
    fn samples(&self) -> usize {
        self.set.n
    }
    fn sample_len(&self) -> usize {
        TILES * self.tile_len()
    }
    fn batch_shape(&self, b: usize) -> Vec<i64> {
        let t = self.cfg.tile as i64;
        vec![b as i64, TILES as i64, 3, t, t]
    }
    fn make(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [i64]) -> Result<(), DataError> {
        targets[0] = self.sample(i, rng, out)?.perm as i64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// Image 0: channel c is a ramp along x (value 10 * x + c); image 1 a ramp along y;
    /// every other image a checkerboard.
    fn images(n: usize, size: usize) -> Arc<ImageSet> {
        let mut pixels = vec![0u8; n * 3 * size * size];
        for i in 0..n {
            for c in 0..3 {
                for y in 0..size {
                    for x in 0..size {
                        let v = match i {
                            0 => 4 * x + c,
                            1 => 4 * y + c,
                            _ => ((x + y + i) % 2) * 200 + c,
                        };
                        pixels[i * 3 * size * size + c * size * size + y * size + x] = v as u8;
                    }
                }
            }
        }
        Arc::new(ImageSet::from_pixels(pixels, n, size))
    }

    fn config(max_replaced: usize, grayscale: f64, normalize: bool) -> JigsawConfig {
        JigsawConfig {
            crop: 57,
            tile: 16,
            channel_shift: 1,
            grayscale,
            max_replaced,
            normalize,
        }
    }

    fn task(n: usize, cfg: JigsawConfig) -> Jigsaw {
        let perms = PermutationSet::generate(30, 3, 1).unwrap();
        Jigsaw::new(images(n, 64), &perms, cfg).unwrap()
    }

    /// The library and the stage share one bound: 8 replaced tiles pass, 9 do not.
    #[test]
    fn max_replaced_is_bounded_as_the_stage_bounds_it() {
        assert!(config(MAX_REPLACED, 0.5, true).check(64).is_ok());
        let err = config(TILES, 0.5, true).check(64).unwrap_err();
        assert!(err.contains("exceeds 8"), "{err}");
    }

    #[test]
    fn shapes_and_targets() {
        let j = task(4, config(2, 0.5, true));
        assert_eq!(j.sample_len(), 9 * 3 * 16 * 16);
        assert_eq!(j.batch_shape(5), vec![5, 9, 3, 16, 16]);
        let chunk = [0usize, 1, 2, 3, 2];
        let b = crate::train::batches::assemble(&j, &chunk, 3, 0).unwrap();
        assert_eq!(b.inputs.size(), [5, 9, 3, 16, 16]);
        assert_eq!(b.targets.size(), [5]);
        let t: Vec<i64> = b.targets.try_into().unwrap();
        assert!(t.iter().all(|&p| (0..30).contains(&p)));
    }

    #[test]
    fn tiles_follow_the_permutation_and_stay_in_their_cells() {
        let j = task(3, config(0, 0.0, false));
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut out = vec![0f32; j.sample_len()];
        for _ in 0..50 {
            let p = j.sample(0, &mut rng, &mut out).unwrap();
            assert!(p.replaced.is_empty());
            let perm = j.perms[p.perm];
            // The crop origin is common: recover it from cell 0's tile bounds.
            for (pos, src) in p.tiles.iter().enumerate() {
                assert_eq!(src.image, 0);
                assert_eq!(src.cell, perm[pos] as usize);
            }
            // Tiles of horizontally adjacent cells are 19 +- 3 (jitter) +- 2 (shift) apart.
            let x_of = |cell: usize| p.tiles.iter().find(|t| t.cell == cell).unwrap().origin[0].0 as i64;
            let dx = x_of(1) - x_of(0);
            assert!((19 - 3 - 2..=19 + 3 + 2).contains(&dx), "dx {dx}");
            // Pixels are the image's: image 0 has value (4x + c) / 255 in channel c.
            for (pos, src) in p.tiles.iter().enumerate() {
                for c in 0..3 {
                    let (ox, oy) = src.origin[c];
                    let _ = oy;
                    let v = out[pos * 768 + c * 256 + 5 * 16 + 7];
                    assert!((v - (4 * (ox + 7) + c) as f32 / 255.0).abs() < 1e-6);
                }
            }
        }
    }

    #[test]
    fn normalised_tiles_have_zero_mean_unit_std_per_channel() {
        let j = task(6, config(2, 0.3, true));
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut out = vec![0f32; j.sample_len()];
        for i in 0..6 {
            j.sample(i, &mut rng, &mut out).unwrap();
            for plane in out.chunks(256) {
                let mean = plane.iter().map(|&x| x as f64).sum::<f64>() / 256.0;
                let var = plane.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / 256.0;
                assert!(mean.abs() < 1e-5, "mean {mean}");
                assert!((var.sqrt() - 1.0).abs() < 1e-4, "std {}", var.sqrt());
            }
        }
    }

    #[test]
    fn replaced_tiles_come_from_the_other_image() {
        // Two images: 0 varies along x only, 1 along y only; after per-tile normalisation a
        // tile's own gradient direction tells which image it came from.
        let j = task(2, config(2, 0.0, true));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut out = vec![0f32; j.sample_len()];
        let mut counts = [0usize; 3];
        for _ in 0..600 {
            let p = j.sample(0, &mut rng, &mut out).unwrap();
            counts[p.replaced.len()] += 1;
            for (pos, src) in p.tiles.iter().enumerate() {
                let replaced = p.replaced.contains(&pos);
                assert_eq!(src.image, if replaced { 1 } else { 0 });
                let plane = &out[pos * 768..pos * 768 + 256];
                let along_x = (plane[15] - plane[0]).abs();
                let along_y = (plane[15 * 16] - plane[0]).abs();
                if replaced {
                    assert!(along_x < 1e-5 && along_y > 1.0, "tile {pos} should vary along y");
                } else {
                    assert!(along_y < 1e-5 && along_x > 1.0, "tile {pos} should vary along x");
                }
            }
        }
        // 0, 1 and 2 replaced tiles, each about a third of the time.
        for c in counts {
            assert!((150..=250).contains(&c), "replacement counts {counts:?}");
        }
    }

    #[test]
    fn grayscale_frequency_follows_its_parameter() {
        for p in [0.0, 0.5, 0.7, 1.0] {
            let j = task(3, config(0, p, false));
            let mut rng = ChaCha8Rng::seed_from_u64(2);
            let mut out = vec![0f32; j.sample_len()];
            let n = 2000;
            let mut gray = 0;
            for k in 0..n {
                let prov = j.sample(k % 3, &mut rng, &mut out).unwrap();
                // A gray sample has three equal channels in every tile.
                let equal = out.chunks(768).all(|t| t[..256] == t[256..512] && t[256..512] == t[512..]);
                assert_eq!(equal, prov.gray);
                gray += prov.gray as usize;
            }
            let f = gray as f64 / n as f64;
            assert!((f - p).abs() < 0.04, "grayscale {p}: observed {f}");
        }
    }

    #[test]
    fn bad_geometry_is_refused() {
        let perms = PermutationSet::generate(10, 3, 1).unwrap();
        let set = images(2, 32);
        let mut c = config(0, 0.5, true);
        assert!(Jigsaw::new(set.clone(), &perms, c.clone()).err().unwrap().contains("crop"));
        c.crop = 30;
        c.tile = 11;
        assert!(Jigsaw::new(set.clone(), &perms, c.clone()).err().unwrap().contains("tile_size"));
        c.tile = 10;
        c.grayscale = 1.5;
        assert!(Jigsaw::new(set, &perms, c).err().unwrap().contains("probability"));
    }

    #[test]
    fn samples_are_deterministic_per_seed() {
        let j = task(4, config(2, 0.7, true));
        let a = crate::train::batches::assemble(&j, &[0, 1, 2, 3], 7, 1).unwrap();
        let b = crate::train::batches::assemble(&j, &[0, 1, 2, 3], 7, 1).unwrap();
        assert!(a.inputs.equal(&b.inputs) && a.targets.equal(&b.targets));
        let c = crate::train::batches::assemble(&j, &[0, 1, 2, 3], 8, 1).unwrap();
        assert!(!a.inputs.equal(&c.inputs));
    }
}
