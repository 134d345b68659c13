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
use crate::data::{resize_to_wh, DataError};
use crate::train::batches::{write_chw, ImageSet, SampleMaker};

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
    /// `Some(side)`: cut from each decoded original with its shorter side resized to
    /// `side` (aspect kept), the crop window anywhere in it (the official code's
    /// `Resize(256)` and random crop); `None`: from the set's square images.
    pub original: Option<usize>,
}

impl JigsawConfig {
    pub fn cell(&self) -> usize {
        self.crop / 3
    }

    /// Checks the geometry against an image side (the set's, or the originals' shorter
    /// side).
    pub fn check(&self, image_size: usize) -> Result<(), String> {
        let side = self.original.unwrap_or(image_size);
        if self.crop > side {
            return Err(format!("crop {} is larger than the image side {side}", self.crop));
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

/// An image as tiles are cut from it: `width` x `height`, 8-bit CHW planes.
struct Canvas<'a> {
    width: usize,
    height: usize,
    chw: std::borrow::Cow<'a, [u8]>,
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

    /// Image `i` as tiles are cut from it: the set's square image, or the decoded original
    /// with its shorter side resized to `cfg.original` (at least the crop).
    fn canvas(&self, i: usize) -> Result<Canvas<'_>, DataError> {
        let Some(side) = self.cfg.original else {
            let s = self.set.size;
            return Ok(Canvas {
                width: s,
                height: s,
                chw: self.set.image(i)?,
            });
        };
        let img = self.set.original(i)?;
        let (w, h) = (img.width.max(1), img.height.max(1));
        let scaled = |long: usize, short: usize| ((long * side) as f64 / short as f64).round().max(side as f64) as usize;
        let (width, height) = if w <= h { (side, scaled(h, w)) } else { (scaled(w, h), side) };
        let mut chw = vec![0u8; 3 * width * height];
        write_chw(&resize_to_wh(&img, width, height), &mut chw);
        Ok(Canvas {
            width,
            height,
            chw: chw.into(),
        })
    }

    /// Draws a crop window in a `width` x `height` canvas and, per cell, the tile's
    /// per-channel origins.
    fn cut(&self, image: usize, (width, height): (usize, usize), rng: &mut ChaCha8Rng) -> Vec<TileSource> {
        let (crop, cell, tile) = (self.cfg.crop, self.cfg.cell(), self.cfg.tile);
        let cx = rng.gen_range(0..=width - crop);
        let cy = rng.gen_range(0..=height - crop);
        let shift = self.cfg.channel_shift as i64;
        (0..TILES)
            .map(|c| {
                let x = cx + (c % 3) * cell + rng.gen_range(0..=cell - tile);
                let y = cy + (c / 3) * cell + rng.gen_range(0..=cell - tile);
                let mut origin = [(x, y); 3];
                if shift > 0 {
                    let (max_x, max_y) = ((width - tile) as i64, (height - tile) as i64);
                    for o in &mut origin {
                        let dx = rng.gen_range(-shift..=shift);
                        let dy = rng.gen_range(-shift..=shift);
                        *o = ((x as i64 + dx).clamp(0, max_x) as usize, (y as i64 + dy).clamp(0, max_y) as usize);
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
        // Each image read once (a streamed set decodes it here); the draws depend on its
        // size only.
        let own_canvas = self.canvas(i)?;
        let own = self.cut(i, (own_canvas.width, own_canvas.height), rng);
        let mut tiles: Vec<TileSource> = self.perms[perm].iter().map(|&c| own[c as usize].clone()).collect();
        let mut replaced = Vec::new();
        let mut other_canvas = None;
        if self.cfg.max_replaced > 0 && self.set.n > 1 {
            let count = rng.gen_range(0..=self.cfg.max_replaced);
            if count > 0 {
                let mut other = rng.gen_range(0..self.set.n - 1);
                if other >= i {
                    other += 1;
                }
                let canvas = self.canvas(other)?;
                let theirs = self.cut(other, (canvas.width, canvas.height), rng);
                other_canvas = Some(canvas);
                replaced = sample(rng, TILES, count).into_vec();
                replaced.sort_unstable();
                for &p in &replaced {
                    tiles[p] = theirs[rng.gen_range(0..TILES)].clone();
                }
            }
        }
        let gray = self.cfg.grayscale > 0.0 && rng.gen_bool(self.cfg.grayscale);
        for (t, src) in tiles.iter().enumerate() {
            let canvas = if src.image == i {
                &own_canvas
            } else {
                other_canvas.as_ref().unwrap_or(&own_canvas)
            };
            self.write_tile(canvas, src, gray, &mut out[t * self.tile_len()..(t + 1) * self.tile_len()]);
        }
        Ok(Provenance {
            perm,
            gray,
            replaced,
            tiles,
        })
    }

    /// The tile `src` of `canvas` (image `src.image`).
    fn write_tile(&self, canvas: &Canvas, src: &TileSource, gray: bool, out: &mut [f32]) {
        let (w, plane, t) = (canvas.width, canvas.width * canvas.height, self.cfg.tile);
        // Dereferenced once: indexing the `Cow` itself in the pixel loop is slower.
        let img: &[u8] = &canvas.chw;
        let px = |ch: usize, x: usize, y: usize| img[ch * plane + y * w + x] as f32 / 255.0;
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
            original: None,
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

    /// Originals of 120 x 40 px whose pixel (x, y) has red x, green y, blue 7 * image.
    struct Wide;

    impl crate::data::Source for Wide {
        fn len(&self) -> usize {
            3
        }
        fn classes(&self) -> &[String] {
            &[]
        }
        fn label(&self, _: usize) -> Option<usize> {
            None
        }
        fn load(&self, i: usize) -> Result<crate::data::Image, DataError> {
            let rgb = (0..40)
                .flat_map(|y| (0..120).flat_map(move |x| [x as u8, y as u8, 7 * i as u8]))
                .collect();
            Ok(crate::data::Image::from_rgb(120, 40, rgb).unwrap())
        }
        fn describe(&self, i: usize) -> String {
            format!("wide:{i}")
        }
    }

    /// `original`: tiles come from each decoded original with its shorter side resized (120
    /// x 40 to 60 x 20: every pixel the average of a 2 x 2 block), the crop window anywhere
    /// along its long side, not only in the centre square a square canvas would keep.
    #[test]
    fn an_original_canvas_keeps_the_aspect_and_its_whole_width() {
        let set = Arc::new(ImageSet::open(Arc::new(Wide), 20, crate::data::Fit::Squash, 0, &|_, _| {}).unwrap());
        let cfg = JigsawConfig {
            crop: 18,
            tile: 4,
            channel_shift: 0,
            grayscale: 0.0,
            max_replaced: 2,
            normalize: false,
            original: Some(20),
        };
        let jigsaw = Jigsaw::new(set, &PermutationSet::generate(10, 3, 1).unwrap(), cfg.clone()).unwrap();
        let mut out = vec![0f32; 9 * 3 * 16];
        let (mut left, mut right) = (usize::MAX, 0);
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let p = jigsaw.sample(0, &mut rng, &mut out).unwrap();
            for (t, src) in p.tiles.iter().enumerate() {
                let (x, y) = src.origin[0];
                assert!(x + 4 <= 60 && y + 4 <= 20, "{src:?}");
                left = left.min(x);
                right = right.max(x + 4);
                // Red is the original's column: 2x + 0.5 at column x after halving.
                let tile = &out[t * 48..(t + 1) * 48];
                for dy in 0..4 {
                    for dx in 0..4 {
                        let red = tile[dy * 4 + dx] * 255.0;
                        let green = tile[16 + dy * 4 + dx] * 255.0;
                        let blue = tile[32 + dy * 4 + dx] * 255.0;
                        assert_eq!(red.round(), (2.0 * (x + dx) as f32 + 0.5).round(), "{src:?}");
                        assert_eq!(green.round(), (2.0 * (y + dy) as f32 + 0.5).round(), "{src:?}");
                        assert_eq!(blue.round(), (7 * src.image) as f32);
                    }
                }
            }
        }
        // A square canvas would keep columns 20..40 of the 60: crops reach both ends.
        assert!(left < 5 && right > 55, "columns {left}..{right}");
        // The crop must fit the shorter side.
        let too_big = JigsawConfig { crop: 21, ..cfg };
        assert!(too_big.check(64).unwrap_err().contains("larger than the image side 20"));
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
