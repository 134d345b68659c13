//! A split's images (kept in memory, or decoded as they are read) and the augmented,
//! normalised batches made from them on a background thread, so that decoding and batch
//! assembly overlap the training step.
use std::borrow::Cow;
use std::sync::{mpsc, Arc};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tch::{Kind, Tensor};

pub use crate::data::BATCHES_AHEAD;
use crate::data::{fit_to, resize_to, DataError, Fit, Image, Source};
use crate::seed;

/// Fixed normalisation of every input: (x/255 - MEAN) / STD per channel.
pub const MEAN: f32 = 0.5;
pub const STD: f32 = 0.25;

/// A split's images at one side, `[3, size, size]` u8 channels-first each: decoded once
/// and kept ([`ImageSet::load`], and [`ImageSet::open`] for a split whose pixels fit the
/// decode budget), or decoded from the source each time an image is read (streamed, for
/// splits larger than the budget). Both give the same bytes for an image, so what a stage
/// computes does not depend on which it got. Subsets (held-out images, a labelled subset)
/// share the pixels or the source; only their indices are new.
#[derive(Clone)]
pub struct ImageSet {
    /// Images in the set.
    pub n: usize,
    /// Their side.
    pub size: usize,
    pixels: Arc<Pixels>,
    /// Image `i` of the set is image `index[i]` of `pixels` (`None`: the identity).
    index: Option<Arc<Vec<usize>>>,
    /// How an image read whole becomes `size` x `size`.
    fit: Fit,
    /// Every image read mirrored left to right.
    mirrored: bool,
}

enum Pixels {
    Memory(Vec<u8>),
    /// A decoded-image cache file, `[n, 3, size, size]` u8, memory-mapped: the kernel
    /// pages it in and out, so it may be larger than memory.
    Mapped(memmap2::Mmap),
    Stream(Arc<dyn Source>),
}

/// The `held` of `n` images a seed sets aside, in index order: the first `held` of one
/// seeded shuffle, so that a larger share holds out a superset of a smaller one.
pub fn held_out_indices(n: usize, held: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut aside = order[..held.min(n)].to_vec();
    aside.sort_unstable();
    aside
}

/// Image `i` of `source` at side `size` (by `fit`), channels-first, into `dst`.
fn decode_into(source: &dyn Source, i: usize, size: usize, fit: Fit, dst: &mut [u8]) -> Result<(), DataError> {
    let img = source.load(i)?;
    let img = if img.width != size || img.height != size {
        fit_to(&img, size, fit)
    } else {
        img
    };
    write_chw(&img, dst);
    Ok(())
}

/// Images `first..` of `source` at side `size` by `fit` into `dst` (as many as it holds),
/// 64 at a time in parallel, reporting (done, total) to `progress`.
fn decode_all(
    source: &dyn Source,
    size: usize,
    fit: Fit,
    first: usize,
    dst: &mut [u8],
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<(), DataError> {
    let per = 3 * size * size;
    if per == 0 {
        return Ok(());
    }
    let n = dst.len() / per;
    let done = std::sync::atomic::AtomicU64::new(0);
    dst.par_chunks_mut(per * 64)
        .enumerate()
        .try_for_each(|(c, out)| -> Result<(), DataError> {
            for (j, image) in out.chunks_mut(per).enumerate() {
                decode_into(source, first + c * 64 + j, size, fit, image)?;
            }
            let d = done.fetch_add((out.len() / per) as u64, std::sync::atomic::Ordering::Relaxed);
            progress(d + (out.len() / per) as u64, n as u64);
            Ok(())
        })
}

/// `img` channels-first into `dst` (`3 x height x width`).
pub(crate) fn write_chw(img: &Image, dst: &mut [u8]) {
    let (w, plane) = (img.width, img.width * img.height);
    for y in 0..img.height {
        for x in 0..w {
            let p = img.pixel(x, y);
            for ch in 0..3 {
                dst[ch * plane + y * w + x] = p[ch];
            }
        }
    }
}

impl ImageSet {
    /// A set of `n` images of side `size` given as their pixels (`[n, 3, size, size]`).
    pub fn from_pixels(pixels: Vec<u8>, n: usize, size: usize) -> ImageSet {
        assert_eq!(pixels.len(), n * 3 * size * size, "pixels of {n} images of side {size}");
        ImageSet {
            n,
            size,
            pixels: Arc::new(Pixels::Memory(pixels)),
            index: None,
            fit: Fit::Squash,
            mirrored: false,
        }
    }

    /// The images of `source` at side `size` by `fit`: decoded now and kept when their
    /// pixels fit in `budget` bytes ([`crate::data::decode_budget`]), else streamed
    /// (decoded when read: memory then does not grow with the split).
    pub fn open(
        source: Arc<dyn Source>,
        size: usize,
        fit: Fit,
        budget: u64,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<ImageSet, DataError> {
        if crate::data::decoded_bytes(source.len(), size) <= budget {
            return ImageSet::load_range(source.as_ref(), size, fit, 0..source.len(), progress);
        }
        Ok(ImageSet {
            n: source.len(),
            size,
            pixels: Arc::new(Pixels::Stream(source)),
            index: None,
            fit,
            mirrored: false,
        })
    }

    /// Decodes every image of `source` (in parallel), resized to `size` if needed.
    pub fn load(source: &dyn Source, size: usize, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<ImageSet, DataError> {
        ImageSet::load_range(source, size, Fit::Squash, 0..source.len(), progress)
    }

    /// [`ImageSet::load`] of the images `range` of `source` only (image `range.start`
    /// becomes image 0), for callers that go through a split a part at a time.
    pub fn load_range(
        source: &dyn Source,
        size: usize,
        fit: Fit,
        range: std::ops::Range<usize>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<ImageSet, DataError> {
        let (first, n) = (range.start, range.len());
        let per = 3 * size * size;
        let mut pixels = vec![0u8; n * per];
        decode_all(source, size, fit, first, &mut pixels, progress)?;
        Ok(ImageSet {
            fit,
            ..ImageSet::from_pixels(pixels, n, size)
        })
    }

    /// The images of `source` at side `size` by `fit` from the decoded-image cache file
    /// `path`: decoded into it first (in parallel, written beside it and renamed into place)
    /// unless it is there with the right length, then memory-mapped. The same bytes as a
    /// kept or streamed set of the split.
    pub fn cached(
        source: &dyn Source,
        size: usize,
        fit: Fit,
        path: &std::path::Path,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<ImageSet, DataError> {
        let n = source.len();
        let per = 3 * size * size;
        let io = |p: &std::path::Path| {
            let p = p.to_path_buf();
            move |e: std::io::Error| DataError::Io {
                path: p,
                message: e.to_string(),
            }
        };
        let fits = std::fs::metadata(path).is_ok_and(|m| m.len() == (n * per) as u64);
        if !fits {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            let tmp = path.with_extension(format!("u8.tmp-{}", std::process::id()));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(io(&tmp))?;
            file.set_len((n * per) as u64).map_err(io(&tmp))?;
            if n * per > 0 {
                // SAFETY: the file was just created by this process under a name no other
                // process writes (its pid), and is not truncated while mapped.
                let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(io(&tmp))?;
                let written = decode_all(source, size, fit, 0, &mut map, progress);
                if let Err(e) = written.and_then(|()| map.flush().map_err(io(&tmp))) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            }
            std::fs::rename(&tmp, path).map_err(io(path))?;
        }
        let file = std::fs::File::open(path).map_err(io(path))?;
        // SAFETY: cache files are only ever replaced by rename, never written in place, so
        // the mapped bytes do not change while mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io(path))?;
        Ok(ImageSet {
            n,
            size,
            pixels: Arc::new(Pixels::Mapped(map)),
            index: None,
            fit,
            mirrored: false,
        })
    }

    /// This set's images decoded into memory (in parallel), mirrored if the set is.
    pub fn decoded(&self) -> Result<ImageSet, DataError> {
        let per = 3 * self.size * self.size;
        let mut pixels = vec![0u8; self.n * per];
        pixels
            .par_chunks_mut(per.max(1))
            .enumerate()
            .try_for_each(|(i, dst)| -> Result<(), DataError> {
                dst.copy_from_slice(&self.image(i)?);
                Ok(())
            })?;
        Ok(ImageSet::from_pixels(pixels, self.n, self.size))
    }

    /// True when images are decoded as they are read rather than kept.
    pub fn is_streamed(&self) -> bool {
        matches!(*self.pixels, Pixels::Stream(_))
    }

    /// Image `i`, `[3, size, size]` channels-first.
    pub fn image(&self, i: usize) -> Result<Cow<'_, [u8]>, DataError> {
        let per = 3 * self.size * self.size;
        let j = self.index.as_ref().map_or(i, |index| index[i]);
        let mut image = match &*self.pixels {
            Pixels::Memory(pixels) => Cow::Borrowed(&pixels[j * per..(j + 1) * per]),
            Pixels::Mapped(map) => Cow::Borrowed(&map[j * per..(j + 1) * per]),
            Pixels::Stream(source) => {
                let mut dst = vec![0u8; per];
                decode_into(source.as_ref(), j, self.size, self.fit, &mut dst)?;
                Cow::Owned(dst)
            }
        };
        if self.mirrored {
            for row in image.to_mut().chunks_exact_mut(self.size.max(1)) {
                row.reverse();
            }
        }
        Ok(image)
    }

    /// Image `i` as decoded, at its own size for a streamed set (what a random resized
    /// crop cuts from), at the set's side for a kept one.
    pub fn original(&self, i: usize) -> Result<Image, DataError> {
        let j = self.index.as_ref().map_or(i, |index| index[i]);
        let image = match &*self.pixels {
            Pixels::Stream(source) => source.load(j)?,
            Pixels::Memory(_) | Pixels::Mapped(_) => {
                let (s, chw) = (self.size, self.image(i)?);
                let rgb = (0..s * s).flat_map(|p| [chw[p], chw[s * s + p], chw[2 * s * s + p]]).collect();
                return Ok(Image::from_rgb(s, s, rgb).unwrap_or_else(|| Image::new(s, s)));
            }
        };
        Ok(if self.mirrored { image.mirrored() } else { image })
    }

    /// Every image read mirrored left to right from now on.
    pub fn mirror(&mut self) {
        self.mirrored = !self.mirrored;
    }

    /// Image `i` as normalised floats, CHW.
    pub fn write_normalised(&self, i: usize, out: &mut [f32], aug: Option<(&Augment, &mut ChaCha8Rng)>) -> Result<(), DataError> {
        if let Some((a, rng)) = aug {
            if let Some(rc) = &a.resized_crop {
                return self.write_resized_crop(i, rc, a.flip, rng, out);
            }
            return self.write_padded(i, out, Some((a, rng)));
        }
        self.write_padded(i, out, None)
    }

    /// [`ImageSet::write_normalised`] by a random resized crop of the original image,
    /// resampled to the set's side, then a flip with probability 1/2 when `flip`.
    fn write_resized_crop(&self, i: usize, rc: &ResizedCrop, flip: bool, rng: &mut ChaCha8Rng, out: &mut [f32]) -> Result<(), DataError> {
        let s = self.size;
        let img = self.original(i)?;
        let (x, y, w, h) = rc.draw(img.width, img.height, rng);
        let mut crop = resize_to(&img.crop(x, y, w, h), s);
        if flip && rng.gen_bool(0.5) {
            crop = crop.mirrored();
        }
        for (p, px) in crop.rgb.chunks_exact(3).enumerate() {
            for ch in 0..3 {
                out[ch * s * s + p] = (px[ch] as f32 / 255.0 - MEAN) / STD;
            }
        }
        Ok(())
    }

    /// Image `i` normalised, translated by up to `crop_padding` and flipped when augmented.
    fn write_padded(&self, i: usize, out: &mut [f32], aug: Option<(&Augment, &mut ChaCha8Rng)>) -> Result<(), DataError> {
        let s = self.size;
        // Dereferenced once: indexing the `Cow` itself in the pixel loop costs ~10 %.
        let image = self.image(i)?;
        let src: &[u8] = &image;
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
        Ok(())
    }

    /// Sets `held` images aside, drawn by `seed`: (the others in their order, the held-out
    /// ones in their order). Pretext stages measure their task on the second.
    pub fn hold_out(&self, held: usize, seed: u64) -> (ImageSet, ImageSet) {
        let aside = held_out_indices(self.n, held, seed);
        let mut is_held = vec![false; self.n];
        for &i in &aside {
            is_held[i] = true;
        }
        let kept: Vec<usize> = (0..self.n).filter(|&i| !is_held[i]).collect();
        (self.subset(&kept), self.subset(&aside))
    }

    /// The same images read whole by `fit` instead (the set's own side), when the set is
    /// streamed from its source: the held-out images of a model trained on random resized
    /// crops, read by its centre crop. `None` for images kept decoded (already fitted).
    pub fn refit(&self, fit: Fit) -> Option<ImageSet> {
        match &*self.pixels {
            Pixels::Stream(_) => Some(ImageSet {
                fit,
                pixels: self.pixels.clone(),
                index: self.index.clone(),
                ..*self
            }),
            Pixels::Memory(_) | Pixels::Mapped(_) => None,
        }
    }

    /// The images `idx`, in that order (sharing this set's pixels or source).
    pub fn subset(&self, idx: &[usize]) -> ImageSet {
        let index = idx.iter().map(|&i| self.index.as_ref().map_or(i, |index| index[i])).collect();
        ImageSet {
            n: idx.len(),
            size: self.size,
            pixels: self.pixels.clone(),
            index: Some(Arc::new(index)),
            fit: self.fit,
            mirrored: self.mirrored,
        }
    }

    /// Every image in order as normalised float batches of `size` (the last one shorter),
    /// without augmentation, each given to `f` with its image indices: the next batch is
    /// decoded on another thread while `f` works on this one (a streamed set's decoding
    /// overlaps the model). Stops at the first error, `f`'s or an image's.
    pub fn for_each_batch<E: From<DataError>>(&self, size: usize, mut f: impl FnMut(&[usize], Tensor) -> Result<(), E>) -> Result<(), E> {
        let idx: Vec<usize> = (0..self.n).collect();
        let chunks: Vec<&[usize]> = idx.chunks(size.max(1)).collect();
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel(1);
            let producer = scope.spawn(move || {
                for chunk in &chunks {
                    let batch = self.batch(chunk).map(|t| (*chunk, t));
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            });
            let mut result = Ok(());
            for batch in rx.iter() {
                result = batch.map_err(E::from).and_then(|(chunk, t)| f(chunk, t));
                if result.is_err() {
                    break;
                }
            }
            drop(rx);
            let _ = producer.join();
            result
        })
    }

    /// Images `idx` as a normalised float batch `[b, 3, s, s]`, without augmentation.
    pub fn batch(&self, idx: &[usize]) -> Result<Tensor, DataError> {
        let per = 3 * self.size * self.size;
        let mut buf = vec![0f32; idx.len() * per];
        buf.par_chunks_mut(per)
            .zip(idx.par_iter())
            .try_for_each(|(out, &i)| self.write_normalised(i, out, None))?;
        let s = self.size as i64;
        Ok(Tensor::from_slice(&buf).view([idx.len() as i64, 3, s, s]))
    }
}

/// Training-time augmentation: random translation by up to `crop_padding` pixels
/// (random crop of the zero-padded image, as CIFAR training does) and horizontal flips;
/// or, with `resized_crop`, ImageNet's random resized crop of the original image (then
/// the flip; no translation).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    pub crop_padding: usize,
    pub flip: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resized_crop: Option<ResizedCrop>,
}

/// A random resized crop (Szegedy et al. 2015; torchvision's `RandomResizedCrop`): a
/// rectangle of `scale` of the image's area and aspect ratio in `ratio` (drawn
/// log-uniformly), resampled to the output side.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResizedCrop {
    pub scale: [f64; 2],
    pub ratio: [f64; 2],
}

impl ResizedCrop {
    /// ImageNet's recipe: 8 % to all of the area, aspect ratios 3/4 to 4/3.
    pub const IMAGENET: ResizedCrop = ResizedCrop {
        scale: [0.08, 1.0],
        ratio: [3.0 / 4.0, 4.0 / 3.0],
    };

    /// The crop `(x, y, w, h)` of a `width` x `height` image: up to ten draws of area and
    /// ratio, the first that fits; else the centre crop of the whole image with its ratio
    /// clamped to `ratio` (torchvision's procedure).
    pub fn draw(&self, width: usize, height: usize, rng: &mut ChaCha8Rng) -> (usize, usize, usize, usize) {
        let area = (width * height) as f64;
        let (lo, hi) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let target = area * rng.gen_range(self.scale[0]..=self.scale[1]);
            let aspect = if hi > lo { rng.gen_range(lo..=hi) } else { lo }.exp();
            let w = (target * aspect).sqrt().round() as usize;
            let h = (target / aspect).sqrt().round() as usize;
            if (1..=width).contains(&w) && (1..=height).contains(&h) {
                let x = rng.gen_range(0..=width - w);
                let y = rng.gen_range(0..=height - h);
                return (x, y, w, h);
            }
        }
        let in_ratio = width as f64 / height.max(1) as f64;
        let (w, h) = if in_ratio < self.ratio[0] {
            (width, ((width as f64 / self.ratio[0]).round() as usize).clamp(1, height.max(1)))
        } else if in_ratio > self.ratio[1] {
            (((height as f64 * self.ratio[1]).round() as usize).clamp(1, width.max(1)), height)
        } else {
            (width, height)
        };
        ((width - w) / 2, (height - h) / 2, w, h)
    }
}

/// One training batch: network inputs and their targets (class indices).
pub struct Batch {
    pub inputs: Tensor,
    pub targets: Tensor,
}

/// What a sample's targets are. The loop checks that the samples it trains on carry the
/// target its objective expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One class index per target (`Int64`): supervised labels, a permutation, a rotation.
    Class,
    /// Two views of one image: the network's outputs for a batch of `b` samples are `[b,
    /// 2, ...]`, each sample's two views together; the targets are the images' indices
    /// (not read by the loss: the positive of a view is the other view of its sample).
    ViewPair,
    /// Floats per sample ([`SampleMaker::pixel_targets`] of them, shaped by
    /// [`SampleMaker::target_shape`]): colourisation's ab values per pixel, inpainting's
    /// image and mask. The targets tensor is `Float`.
    Pixels,
}

/// Makes the training samples of one task: the supervised images with their labels, or a
/// pretext task's tiles and permutation classes, rotated images... One *sample* is made
/// from one image and may yield several targets (rotation makes four).
pub trait SampleMaker: Send + Sync {
    /// Images per epoch.
    fn samples(&self) -> usize;
    /// Floats written per sample.
    fn sample_len(&self) -> usize;
    /// Targets written per sample.
    fn targets_per_sample(&self) -> usize {
        1
    }
    /// What the targets are (class indices unless the maker says otherwise).
    fn target(&self) -> Target {
        Target::Class
    }
    /// Shape of the input tensor of `b` samples.
    fn batch_shape(&self, b: usize) -> Vec<i64>;
    /// Writes sample `i` (normalised floats) to `out` and its targets to `targets`,
    /// drawing every random choice from `rng`; fails only when an image cannot be read.
    fn make(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [i64]) -> Result<(), DataError>;
    /// Floats per sample of [`Target::Pixels`] targets (none for the other kinds).
    fn pixel_targets(&self) -> usize {
        0
    }
    /// Shape of the [`Target::Pixels`] targets of `b` samples (`[b, ...]`).
    fn target_shape(&self, b: usize) -> Vec<i64> {
        vec![(b * self.pixel_targets()) as i64]
    }
    /// Writes sample `i` and its float targets ([`Target::Pixels`] makers write here; the
    /// loop never asks other makers, whose default writes their class indices as floats).
    fn make_pixels(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [f32]) -> Result<(), DataError> {
        let mut classes = vec![0i64; self.targets_per_sample()];
        self.make(i, rng, out, &mut classes)?;
        for (t, c) in targets.iter_mut().zip(classes) {
            *t = c as f32;
        }
        Ok(())
    }
}

/// A dense task's samples: one whole image of an [`ImageSet`] in (at the set's side, in
/// its three channels), float targets of `target_dims` out ([`Target::Pixels`]). Every
/// such maker is a [`SampleMaker`].
pub trait DenseMaker: Send + Sync {
    /// The images, one sample each.
    fn images(&self) -> &ImageSet;
    /// Shape of one sample's targets (`[channels, side, side]`).
    fn target_dims(&self) -> [usize; 3];
    /// Writes sample `i` (normalised floats) to `out` and its targets to `targets`,
    /// drawing every random choice from `rng`; fails only when an image cannot be read.
    fn make_dense(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [f32]) -> Result<(), DataError>;
}

impl<T: DenseMaker> SampleMaker for T {
    fn samples(&self) -> usize {
        self.images().n
    }
    fn sample_len(&self) -> usize {
        3 * self.images().size * self.images().size
    }
    fn target(&self) -> Target {
        Target::Pixels
    }
    fn batch_shape(&self, b: usize) -> Vec<i64> {
        let s = self.images().size as i64;
        vec![b as i64, 3, s, s]
    }
    fn pixel_targets(&self) -> usize {
        self.target_dims().iter().product()
    }
    fn target_shape(&self, b: usize) -> Vec<i64> {
        let [c, h, w] = self.target_dims().map(|d| d as i64);
        vec![b as i64, c, h, w]
    }
    fn make(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], _targets: &mut [i64]) -> Result<(), DataError> {
        let mut t = vec![0f32; self.pixel_targets()];
        self.make_dense(i, rng, out, &mut t)
    }
    fn make_pixels(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [f32]) -> Result<(), DataError> {
        self.make_dense(i, rng, out, targets)
    }
}

/// Supervised samples: one augmented image and its label.
pub struct Labeled {
    pub set: Arc<ImageSet>,
    pub labels: Vec<i64>,
    pub augment: Augment,
}

impl SampleMaker for Labeled {
    fn samples(&self) -> usize {
        self.set.n
    }
    fn sample_len(&self) -> usize {
        3 * self.set.size * self.set.size
    }
    fn batch_shape(&self, b: usize) -> Vec<i64> {
        let s = self.set.size as i64;
        vec![b as i64, 3, s, s]
    }
    fn make(&self, i: usize, rng: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [i64]) -> Result<(), DataError> {
        self.set.write_normalised(i, out, Some((&self.augment, rng)))?;
        targets[0] = self.labels[i];
        Ok(())
    }
}

/// The batches of one epoch, in an order drawn from (seed, epoch), assembled on a
/// producer thread (each batch's samples in parallel) while the consumer trains; at most
/// [`BATCHES_AHEAD`] wait. The first image that cannot be read ends the epoch with its
/// error.
pub fn epoch_batches(maker: Arc<dyn SampleMaker>, batch_size: usize, seed: u64, epoch: usize) -> Batches {
    let (tx, rx) = mpsc::sync_channel(BATCHES_AHEAD);
    let producer = std::thread::spawn(move || {
        for chunk in &epoch_order(maker.samples(), batch_size, seed, epoch) {
            let batch = assemble(maker.as_ref(), chunk, seed, epoch);
            let failed = batch.is_err();
            if tx.send(batch).is_err() || failed {
                return;
            }
        }
    });
    Batches {
        rx: Some(rx),
        producer: Some(producer),
    }
}

/// An epoch's batches as they are made ([`epoch_batches`]). Dropped before the end (a
/// failed step), it stops the producer and waits for the batch it is making, so that no
/// thread is left assembling while the process winds down.
pub struct Batches {
    rx: Option<mpsc::Receiver<Result<Batch, DataError>>>,
    producer: Option<std::thread::JoinHandle<()>>,
}

impl Iterator for Batches {
    type Item = Result<Batch, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // The producer's next send fails once the receiver is gone; then it returns.
        drop(self.rx.take());
        if let Some(producer) = self.producer.take() {
            let _ = producer.join();
        }
    }
}

/// The shuffled sample indices of one epoch, cut into batches.
pub fn epoch_order(n: usize, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed::item(seed::stream(seed, "batch order"), &[epoch as u64]));
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order.chunks(batch_size.max(1)).map(|c| c.to_vec()).collect()
}

/// A batch of an epoch: its samples made in parallel, each from its own RNG derived from
/// (seed, epoch, sample), so the result depends neither on thread timing nor on the batch
/// size.
pub fn assemble(maker: &dyn SampleMaker, chunk: &[usize], seed: u64, epoch: usize) -> Result<Batch, DataError> {
    let samples = seed::stream(seed, "samples");
    if maker.target() == Target::Pixels {
        return assemble_pixels(maker, chunk, samples, epoch);
    }
    let (per, tps) = (maker.sample_len(), maker.targets_per_sample());
    let mut buf = vec![0f32; chunk.len() * per];
    let mut targets = vec![0i64; chunk.len() * tps];
    buf.par_chunks_mut(per)
        .zip(targets.par_chunks_mut(tps))
        .zip(chunk.par_iter())
        .try_for_each(|((out, t), &i)| {
            let mut r = ChaCha8Rng::seed_from_u64(seed::item(samples, &[epoch as u64, i as u64]));
            maker.make(i, &mut r, out, t)
        })?;
    Ok(Batch {
        inputs: Tensor::from_slice(&buf).view(maker.batch_shape(chunk.len()).as_slice()),
        targets: Tensor::from_slice(&targets),
    })
}

/// [`assemble`] for makers of [`Target::Pixels`]: float targets, from the same per-sample
/// generators.
fn assemble_pixels(maker: &dyn SampleMaker, chunk: &[usize], samples: u64, epoch: usize) -> Result<Batch, DataError> {
    let (per, tps) = (maker.sample_len(), maker.pixel_targets());
    let mut buf = vec![0f32; chunk.len() * per];
    let mut targets = vec![0f32; chunk.len() * tps];
    buf.par_chunks_mut(per)
        .zip(targets.par_chunks_mut(tps.max(1)))
        .zip(chunk.par_iter())
        .try_for_each(|((out, t), &i)| {
            let mut r = ChaCha8Rng::seed_from_u64(seed::item(samples, &[epoch as u64, i as u64]));
            maker.make_pixels(i, &mut r, out, t)
        })?;
    Ok(Batch {
        inputs: Tensor::from_slice(&buf).view(maker.batch_shape(chunk.len()).as_slice()),
        targets: Tensor::from_slice(&targets).view(maker.target_shape(chunk.len()).as_slice()),
    })
}

/// Labels as a tensor.
pub fn labels_tensor(labels: &[i64]) -> Tensor {
    Tensor::from_slice(labels).to_kind(Kind::Int64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirroring_a_set_mirrors_each_image_as_the_image_type_does() {
        let (w, n) = (3usize, 2usize);
        let images: Vec<Image> = (0..n)
            .map(|k| Image::from_rgb(w, w, (0..w * w * 3).map(|v| (v * 7 + k * 50) as u8).collect()).unwrap())
            .collect();
        let chw = |imgs: &[Image]| -> Vec<u8> {
            let mut out = Vec::new();
            for img in imgs {
                for ch in 0..3 {
                    for y in 0..w {
                        for x in 0..w {
                            out.push(img.pixel(x, y)[ch]);
                        }
                    }
                }
            }
            out
        };
        let mut set = ImageSet::from_pixels(chw(&images), n, w);
        set.mirror();
        let mirrored: Vec<Image> = images.iter().map(Image::mirrored).collect();
        let read = |set: &ImageSet| -> Vec<u8> { (0..set.n).flat_map(|i| set.image(i).unwrap().into_owned()).collect() };
        assert_eq!(read(&set), chw(&mirrored));
        // A subset of a mirrored set reads mirrored; mirroring again restores the images.
        assert_eq!(read(&set.subset(&[1])), chw(&mirrored[1..]));
        set.mirror();
        assert_eq!(read(&set), chw(&images));
        assert_eq!(mirrored[0].pixel(0, 1), images[0].pixel(2, 1));
        assert_eq!(mirrored[1].mirrored(), images[1]);
    }

    /// Images 0..n of a synthetic split (native 32 px), read at `size`.
    fn synthetic(n: usize) -> Arc<dyn Source> {
        Arc::new(crate::data::Synthetic::new("shapes", "train", 32, 4, n).unwrap())
    }

    #[test]
    fn a_streamed_set_reads_the_bytes_of_a_decoded_one() {
        let source = synthetic(30);
        let kept = ImageSet::open(source.clone(), 24, Fit::Squash, u64::MAX, &|_, _| {}).unwrap();
        let streamed = ImageSet::open(source.clone(), 24, Fit::Squash, 0, &|_, _| {}).unwrap();
        assert!(!kept.is_streamed() && streamed.is_streamed());
        // Within the budget exactly: decoded.
        let exact = crate::data::decoded_bytes(30, 24);
        assert!(!ImageSet::open(source.clone(), 24, Fit::Squash, exact, &|_, _| {})
            .unwrap()
            .is_streamed());
        assert!(ImageSet::open(source, 24, Fit::Squash, exact - 1, &|_, _| {})
            .unwrap()
            .is_streamed());
        let read = |set: &ImageSet| -> Vec<Vec<u8>> { (0..set.n).map(|i| set.image(i).unwrap().into_owned()).collect() };
        assert_eq!(read(&kept), read(&streamed));
        let (k, s) = (kept.hold_out(7, 1), streamed.hold_out(7, 1));
        assert_eq!((read(&k.0), read(&k.1)), (read(&s.0), read(&s.1)));
        let pick = [9, 2, 2, 17];
        assert_eq!(read(&k.0.subset(&pick)), read(&s.0.subset(&pick)));
        assert_eq!(read(&s.0.subset(&pick).decoded().unwrap()), read(&k.0.subset(&pick)));
        let (mut km, mut sm) = (kept.clone(), streamed.clone());
        km.mirror();
        sm.mirror();
        assert_eq!(read(&km), read(&sm));
        assert_ne!(read(&km), read(&kept));
        // Augmented batches of both: the same floats and targets.
        let batch = |set: ImageSet| {
            let labels = (0..set.n as i64).collect();
            let maker = Labeled {
                set: Arc::new(set),
                labels,
                augment: Augment {
                    crop_padding: 3,
                    flip: true,
                    resized_crop: None,
                },
            };
            let b = assemble(&maker, &[4, 0, 21, 13], 9, 2).unwrap();
            (
                Vec::<f32>::try_from(b.inputs.flatten(0, -1)).unwrap(),
                Vec::<i64>::try_from(b.targets).unwrap(),
            )
        };
        assert_eq!(batch(kept), batch(streamed));
    }

    /// A source whose image `bad` (every image: `None`) does not decode.
    struct Broken {
        inner: Arc<dyn Source>,
        bad: Option<usize>,
    }

    impl Source for Broken {
        fn len(&self) -> usize {
            self.inner.len()
        }
        fn classes(&self) -> &[String] {
            self.inner.classes()
        }
        fn label(&self, i: usize) -> Option<usize> {
            self.inner.label(i)
        }
        fn load(&self, i: usize) -> Result<crate::data::Image, DataError> {
            if self.bad.is_none_or(|bad| bad == i) {
                return Err(DataError::Decode {
                    path: format!("broken/{i}.jpg").into(),
                    message: "truncated".into(),
                });
            }
            self.inner.load(i)
        }
        fn describe(&self, i: usize) -> String {
            self.inner.describe(i)
        }
    }

    #[test]
    fn a_cached_set_reads_the_bytes_of_a_decoded_one_and_decodes_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decoded/split.u8");
        let source = synthetic(20);
        let kept = ImageSet::load(source.as_ref(), 12, &|_, _| {}).unwrap();
        let cached = ImageSet::cached(source.as_ref(), 12, Fit::Squash, &path, &|_, _| {}).unwrap();
        let read = |set: &ImageSet| -> Vec<Vec<u8>> { (0..set.n).map(|i| set.image(i).unwrap().into_owned()).collect() };
        assert_eq!(read(&cached), read(&kept));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 20 * 3 * 12 * 12);
        // Read again from the file alone: a source whose every image fails is not decoded.
        let again = ImageSet::cached(
            &Broken {
                inner: source.clone(),
                bad: None,
            },
            12,
            Fit::Squash,
            &path,
            &|_, _| {},
        )
        .unwrap();
        assert_eq!(read(&again.hold_out(5, 2).1), read(&kept.hold_out(5, 2).1));
        // A file of the wrong length (an interrupted copy) is rebuilt; a failed build leaves
        // no temporary behind.
        std::fs::write(&path, b"short").unwrap();
        assert!(ImageSet::cached(
            &Broken {
                inner: source.clone(),
                bad: None
            },
            12,
            Fit::Squash,
            &path,
            &|_, _| {}
        )
        .is_err());
        assert_eq!(
            std::fs::read_dir(dir.path().join("decoded")).unwrap().count(),
            1,
            "the temporary is gone"
        );
        let rebuilt = ImageSet::cached(source.as_ref(), 12, Fit::Squash, &path, &|_, _| {}).unwrap();
        assert_eq!(read(&rebuilt), read(&kept));
    }

    #[test]
    fn an_image_that_does_not_decode_ends_the_epoch_with_its_error() {
        let source: Arc<dyn Source> = Arc::new(Broken {
            inner: synthetic(40),
            bad: Some(23),
        });
        let set = ImageSet::open(source.clone(), 16, Fit::Squash, 0, &|_, _| {}).unwrap();
        let maker: Arc<dyn SampleMaker> = Arc::new(Labeled {
            labels: vec![0; set.n],
            set: Arc::new(set),
            augment: Augment {
                crop_padding: 0,
                flip: false,
                resized_crop: None,
            },
        });
        let results: Vec<Result<Batch, DataError>> = epoch_batches(maker, 8, 1, 0).collect();
        let failed = results.iter().position(Result::is_err).expect("a batch fails");
        assert_eq!(failed, results.len() - 1, "the epoch ends at the failed batch");
        let err = results.into_iter().last().unwrap().err().unwrap().to_string();
        assert!(err.contains("broken/23.jpg"), "{err}");
        // Decoding up front fails on it too, before any training.
        let err = ImageSet::open(source, 16, Fit::Squash, u64::MAX, &|_, _| {})
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("broken/23.jpg"), "{err}");
    }

    #[test]
    fn random_resized_crops_cover_their_share_of_the_area_at_their_ratio() {
        let rc = ResizedCrop::IMAGENET;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut small, mut large) = (false, false);
        for _ in 0..2000 {
            let (x, y, w, h) = rc.draw(500, 375, &mut rng);
            assert!(x + w <= 500 && y + h <= 375 && w > 0 && h > 0);
            let share = (w * h) as f64 / (500.0 * 375.0);
            let ratio = w as f64 / h as f64;
            // Rounding to whole pixels moves the share and ratio slightly.
            assert!((0.075..=1.0).contains(&share), "{share}");
            assert!((0.74..=1.35).contains(&ratio), "{ratio}");
            small |= share < 0.15;
            large |= share > 0.8;
        }
        assert!(small && large, "the whole range of scales is drawn");
        let again = |seed| rc.draw(500, 375, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(again(1), again(1));
        // No crop of the ratio fits a 400 x 2 strip: the centre of the whole image, its
        // ratio clamped to the range.
        let strip = ResizedCrop {
            scale: [0.5, 1.0],
            ratio: [1.0, 1.0],
        };
        assert_eq!(strip.draw(400, 2, &mut rng), (199, 0, 2, 2));
    }

    #[test]
    fn a_random_resized_crop_is_cut_from_the_original_and_fixed_by_the_seed() {
        // 48 x 36 originals, read at 16: the crop is drawn on the original's size.
        let source: Arc<dyn Source> = Arc::new(crate::data::Synthetic::new("shapes", "train", 48, 4, 6).unwrap());
        let set = Arc::new(ImageSet::open(source.clone(), 16, Fit::Squash, 0, &|_, _| {}).unwrap());
        let augment = Augment {
            crop_padding: 0,
            flip: false,
            resized_crop: Some(ResizedCrop::IMAGENET),
        };
        let maker = Labeled {
            set: set.clone(),
            labels: vec![0; 6],
            augment: augment.clone(),
        };
        let a = assemble(&maker, &[3, 1], 7, 0).unwrap();
        assert!(a.inputs.equal(&assemble(&maker, &[3, 1], 7, 0).unwrap().inputs));
        assert!(
            !a.inputs.equal(&assemble(&maker, &[3, 1], 7, 1).unwrap().inputs),
            "another epoch, other crops"
        );
        // By hand: image 3's crop drawn from its sample generator, cut, resampled.
        let mut rng = ChaCha8Rng::seed_from_u64(seed::item(seed::stream(7, "samples"), &[0, 3]));
        let original = source.load(3).unwrap();
        let (x, y, w, h) = ResizedCrop::IMAGENET.draw(original.width, original.height, &mut rng);
        let crop = resize_to(&original.crop(x, y, w, h), 16);
        let first: Vec<f32> = Vec::try_from(a.inputs.get(0).get(0).flatten(0, -1)).unwrap();
        let expect: Vec<f32> = crop.rgb.chunks(3).map(|p| (p[0] as f32 / 255.0 - MEAN) / STD).collect();
        assert_eq!(first, expect);
    }

    /// Counts the samples it makes.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl SampleMaker for Counting {
        fn samples(&self) -> usize {
            10_000
        }
        fn sample_len(&self) -> usize {
            1
        }
        fn batch_shape(&self, b: usize) -> Vec<i64> {
            vec![b as i64, 1]
        }
        fn make(&self, i: usize, _: &mut ChaCha8Rng, out: &mut [f32], targets: &mut [i64]) -> Result<(), DataError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            out[0] = i as f32;
            targets[0] = 0;
            Ok(())
        }
    }

    #[test]
    fn evaluation_batches_come_in_order_and_stop_at_the_first_error() {
        let source: Arc<dyn Source> = Arc::new(Broken {
            inner: synthetic(30),
            bad: Some(25),
        });
        let set = ImageSet::open(source, 8, Fit::Squash, 0, &|_, _| {}).unwrap();
        let (mut seen, mut rows) = (Vec::new(), 0);
        let r = set.for_each_batch(7, |chunk, batch| -> Result<(), DataError> {
            assert!(batch.equal(&set.batch(chunk).unwrap()));
            seen.extend_from_slice(chunk);
            rows += batch.size()[0];
            Ok(())
        });
        assert!(r.unwrap_err().to_string().contains("broken/25.jpg"));
        assert_eq!(seen, (0..21).collect::<Vec<_>>(), "every batch before the broken image's, in order");
        assert_eq!(rows, 21);
        // An error of the consumer stops it too.
        let mut calls = 0;
        let r = set.for_each_batch(7, |_, _| -> Result<(), DataError> {
            calls += 1;
            Err(DataError::Invalid {
                dataset: "d".into(),
                message: "stop".into(),
            })
        });
        assert!(r.is_err() && calls == 1);
    }

    #[test]
    fn batches_dropped_early_stop_their_producer() {
        let maker = Arc::new(Counting(Default::default()));
        let mut batches = epoch_batches(maker.clone(), 10, 0, 0);
        batches.next().unwrap().unwrap();
        drop(batches);
        // Dropped: the producer has returned, having made at most the batch taken, those
        // waiting and the one it was making.
        let made = maker.0.load(std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(
            maker.0.load(std::sync::atomic::Ordering::SeqCst),
            made,
            "nothing made after the drop"
        );
        assert!(made <= 10 * (BATCHES_AHEAD + 2), "{made}");
    }

    #[test]
    fn held_out_images_are_disjoint_from_the_rest_and_fixed_by_the_seed() {
        // Image i is filled with the value i, so every image says which it is.
        let (n, size) = (50usize, 2usize);
        let per = 3 * size * size;
        let set = ImageSet::from_pixels((0..n).flat_map(|i| std::iter::repeat_n(i as u8, per)).collect(), n, size);
        let ids = |s: &ImageSet| -> Vec<u8> { (0..s.n).map(|i| s.image(i).unwrap()[0]).collect() };
        let (kept, held) = set.hold_out(7, 3);
        assert_eq!((kept.n, held.n), (43, 7));
        let (k, h) = (ids(&kept), ids(&held));
        assert!(k.windows(2).all(|w| w[0] < w[1]) && h.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<u8> = k.iter().chain(&h).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n as u8).collect::<Vec<_>>());
        assert_eq!(ids(&set.hold_out(7, 3).1), h);
        assert_ne!(ids(&set.hold_out(7, 4).1), h);
        assert_eq!(set.hold_out(0, 3).0.n, n);
    }
}
