//! The built-in procedural dataset: coloured shapes on textured backgrounds, so that
//! experiments and tests run without any files. Image `i` of a split depends only on
//! (seed, split name, `i`), so images can be made in any order and in parallel.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::{DataError, Image, Source};

/// Bump whenever the generator's output changes, so that cached results keyed by the
/// dataset fingerprint are invalidated.
pub const SYNTHETIC_VERSION: u32 = 1;

/// The class names, index = label.
pub const SHAPE_CLASSES: [&str; 8] = ["circle", "square", "triangle", "cross", "ring", "star", "bar", "crescent"];

/// The smallest and largest supported `image_size`.
pub const MIN_IMAGE_SIZE: usize = 8;
pub const MAX_IMAGE_SIZE: usize = 512;

/// One split of the synthetic dataset.
pub struct Synthetic {
    dataset: String,
    split: String,
    image_size: usize,
    seed: u64,
    classes: Vec<String>,
    labels: Vec<u8>,
}

impl Synthetic {
    /// A split of `len` images of `image_size` x `image_size` pixels.
    pub fn new(dataset: &str, split: &str, image_size: usize, seed: u64, len: usize) -> Result<Self, DataError> {
        if !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&image_size) {
            return Err(DataError::Invalid {
                dataset: dataset.to_string(),
                message: format!(
                    "synthetic image_size {image_size} is outside \
                     {MIN_IMAGE_SIZE}..={MAX_IMAGE_SIZE}"
                ),
            });
        }
        Ok(Synthetic {
            dataset: dataset.to_string(),
            split: split.to_string(),
            image_size,
            seed,
            classes: SHAPE_CLASSES.iter().map(|s| s.to_string()).collect(),
            labels: labels(seed, split, len),
        })
    }
}

impl Source for Synthetic {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn label(&self, i: usize) -> Option<usize> {
        self.labels.get(i).map(|&l| usize::from(l))
    }

    fn load(&self, i: usize) -> Result<Image, DataError> {
        let label = self.label(i).ok_or_else(|| DataError::Invalid {
            dataset: self.dataset.clone(),
            message: format!("split `{}` has {} images, no image {i}", self.split, self.len()),
        })?;
        Ok(render(self.image_size, self.seed, &self.split, i, label))
    }

    fn describe(&self, i: usize) -> String {
        format!("synthetic:{}:{i}", self.split)
    }
}

/// A 32-byte seed from SHA-256 of the generator version, a domain tag, the dataset seed,
/// the split name and an index; the split name is length-prefixed so that no two
/// (split, index) pairs share an encoding.
fn derive_seed(tag: &str, seed: u64, split: &str, index: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"ktlab-synthetic\0");
    h.update(SYNTHETIC_VERSION.to_le_bytes());
    h.update(tag.as_bytes());
    h.update([0]);
    h.update(seed.to_le_bytes());
    h.update((split.len() as u64).to_le_bytes());
    h.update(split.as_bytes());
    h.update(index.to_le_bytes());
    h.finalize().into()
}

/// Labels: each consecutive block of 8 images holds every class once, in an order that is
/// a hash-seeded permutation, so classes are balanced and look shuffled.
fn labels(seed: u64, split: &str, len: usize) -> Vec<u8> {
    let n = SHAPE_CLASSES.len();
    let mut labels = Vec::with_capacity(len);
    for block in 0..len.div_ceil(n) {
        let mut rng = ChaCha8Rng::from_seed(derive_seed("labels", seed, split, block as u64));
        let mut perm: Vec<u8> = (0..n as u8).collect();
        for k in (1..n).rev() {
            perm.swap(k, rng.gen_range(0..=k));
        }
        let take = (len - block * n).min(n);
        labels.extend_from_slice(&perm[..take]);
    }
    labels
}

/// Image `i` of `split`, a shape of class `label`. Pure: same arguments, same image.
pub(crate) fn render(size: usize, seed: u64, split: &str, i: usize, label: usize) -> Image {
    let mut rng = ChaCha8Rng::from_seed(derive_seed("image", seed, split, i as u64));
    let mut img = Image::new(size, size);
    let bg_luma = background(&mut img, &mut rng);
    let colour = contrasting_colour(&mut rng, bg_luma);

    let s = size as f32;
    let radius = s * rng.gen_range(0.35f32..0.80) / 2.0;
    // Keep the shape's centre inside the image so that most of it stays visible.
    let margin = radius * 0.6;
    let cx = rng.gen_range(margin..=(s - margin).max(margin + 1e-3));
    let cy = rng.gen_range(margin..=(s - margin).max(margin + 1e-3));
    let angle = rng.gen_range(0.0f32..std::f32::consts::TAU);
    let shape = Shape::from_label(label);
    draw(&mut img, shape, [cx, cy], radius, angle, colour);
    img
}

/// Paints a smooth low-contrast texture (a linear gradient between two related colours,
/// faint stripes and per-pixel noise); returns its mean luma.
fn background(img: &mut Image, rng: &mut ChaCha8Rng) -> f32 {
    let base_luma = rng.gen_range(30.0f32..225.0);
    let tint = [
        rng.gen_range(-30.0f32..30.0),
        rng.gen_range(-30.0f32..30.0),
        rng.gen_range(-30.0f32..30.0),
    ];
    let base = tint.map(|t| base_luma + t);
    let grad_dir = rng.gen_range(0.0f32..std::f32::consts::TAU);
    let grad_amp = rng.gen_range(0.0f32..35.0);
    let grad_tint = [rng.gen_range(0.5f32..1.5), rng.gen_range(0.5f32..1.5), rng.gen_range(0.5f32..1.5)];
    let stripe_dir = rng.gen_range(0.0f32..std::f32::consts::TAU);
    let stripe_period = rng.gen_range(3.0f32..12.0) * img.width as f32 / 32.0;
    let stripe_amp = rng.gen_range(0.0f32..12.0);
    let noise_amp: u32 = rng.gen_range(0..12);

    let n = img.width as f32;
    let (gs, gc) = grad_dir.sin_cos();
    let (ss, sc) = stripe_dir.sin_cos();
    let omega = std::f32::consts::TAU / stripe_period.max(2.0);
    // sin(a x + b y) = sin(a x) cos(b y) + cos(a x) sin(b y): two small tables instead of
    // one sine per pixel.
    let along_x: Vec<(f32, f32)> = (0..img.width).map(|x| (x as f32 * sc * omega).sin_cos()).collect();
    // Noise: one byte per pixel, eight pixels per 64-bit draw, mapped onto
    // -noise_amp..=noise_amp by a multiply and shift.
    let noise_span = 2 * noise_amp + 1;
    let mut noise_bits = 0u64;
    let mut bits_left = 0;
    // Integer luma (weights 77, 150, 29 out of 256) keeps the sum off the float chain.
    let mut luma_sum = 0u64;
    for y in 0..img.height {
        let v = y as f32 / n - 0.5;
        let (sin_y, cos_y) = (y as f32 * ss * omega).sin_cos();
        let row_grad = grad_amp * 2.0 * v * gs;
        let row_base: [f32; 3] = std::array::from_fn(|c| base[c] + row_grad * grad_tint[c]);
        let row = &mut img.rgb[y * img.width * 3..(y + 1) * img.width * 3];
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let u = x as f32 / n - 0.5;
            let g = grad_amp * 2.0 * u * gc;
            let (sin_x, cos_x) = along_x[x];
            let stripe = stripe_amp * (sin_x * cos_y + cos_x * sin_y);
            if bits_left == 0 {
                noise_bits = rng.gen();
                bits_left = 8;
            }
            let noise = (((noise_bits & 0xff) as u32 * noise_span) >> 8) as f32 - noise_amp as f32;
            noise_bits >>= 8;
            bits_left -= 1;
            let shared = stripe + noise;
            for c in 0..3 {
                px[c] = to_u8(row_base[c] + g * grad_tint[c] + shared);
            }
            luma_sum += u64::from(px[0]) * 77 + u64::from(px[1]) * 150 + u64::from(px[2]) * 29;
        }
    }
    luma_sum as f32 / 256.0 / (img.width * img.height).max(1) as f32
}

/// Rounds to the nearest `u8`, saturating (cheaper than `f32::round` on baseline x86-64).
fn to_u8(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

fn luma(c: [f32; 3]) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// A random colour whose luma differs from `bg_luma` by at least 70 (falls back to
/// black or white, whichever is further, after a few tries).
fn contrasting_colour(rng: &mut ChaCha8Rng, bg_luma: f32) -> [u8; 3] {
    for _ in 0..16 {
        let c: [u8; 3] = [rng.gen(), rng.gen(), rng.gen()];
        if (luma(c.map(f32::from)) - bg_luma).abs() >= 70.0 {
            return c;
        }
    }
    if bg_luma < 128.0 {
        [255, 255, 255]
    } else {
        [0, 0, 0]
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Circle,
    Square,
    Triangle,
    Cross,
    Ring,
    Star,
    Bar,
    Crescent,
}

impl Shape {
    fn from_label(label: usize) -> Shape {
        match label % SHAPE_CLASSES.len() {
            0 => Shape::Circle,
            1 => Shape::Square,
            2 => Shape::Triangle,
            3 => Shape::Cross,
            4 => Shape::Ring,
            5 => Shape::Star,
            6 => Shape::Bar,
            _ => Shape::Crescent,
        }
    }

    /// Signed distance (negative inside) in shape units: the shape fits the unit disc.
    fn sdf(self, p: [f32; 2]) -> f32 {
        match self {
            Shape::Circle => len(p) - 0.95,
            Shape::Square => sd_box(p, [0.68, 0.68]),
            Shape::Triangle => sd_triangle(p, 0.82),
            Shape::Cross => sd_box(p, [0.95, 0.28]).min(sd_box(p, [0.28, 0.95])),
            Shape::Ring => (len(p) - 0.7).abs() - 0.25,
            Shape::Star => sd_star5(p, 1.0, 0.45),
            Shape::Bar => sd_box(p, [0.98, 0.26]),
            Shape::Crescent => (len(p) - 0.95).max(-(len([p[0] - 0.45, p[1]]) - 0.75)),
        }
    }
}

fn len(p: [f32; 2]) -> f32 {
    (p[0] * p[0] + p[1] * p[1]).sqrt()
}

fn sd_box(p: [f32; 2], b: [f32; 2]) -> f32 {
    let d = [p[0].abs() - b[0], p[1].abs() - b[1]];
    len([d[0].max(0.0), d[1].max(0.0)]) + d[0].max(d[1]).min(0.0)
}

/// Equilateral triangle of circumradius-ish `r` (after Inigo Quilez).
fn sd_triangle(p: [f32; 2], r: f32) -> f32 {
    let k = 3.0f32.sqrt();
    let mut x = p[0].abs() - r;
    let mut y = p[1] + r / k;
    if x + k * y > 0.0 {
        (x, y) = ((x - k * y) / 2.0, (-k * x - y) / 2.0);
    }
    x -= x.clamp(-2.0 * r, 0.0);
    -len([x, y]) * y.signum()
}

/// Five-pointed star of outer radius `r`, inner ratio `rf` (after Inigo Quilez).
fn sd_star5(p: [f32; 2], r: f32, rf: f32) -> f32 {
    let k1 = [0.809_017f32, -0.587_785];
    let k2 = [-k1[0], k1[1]];
    let dot = |a: [f32; 2], b: [f32; 2]| a[0] * b[0] + a[1] * b[1];
    let mut p = [p[0].abs(), p[1]];
    let d1 = 2.0 * dot(k1, p).max(0.0);
    p = [p[0] - d1 * k1[0], p[1] - d1 * k1[1]];
    let d2 = 2.0 * dot(k2, p).max(0.0);
    p = [p[0] - d2 * k2[0], p[1] - d2 * k2[1]];
    p[0] = p[0].abs();
    p[1] -= r;
    let ba = [rf * -k1[1], rf * k1[0] - 1.0];
    let h = (dot(p, ba) / dot(ba, ba)).clamp(0.0, r);
    let q = [p[0] - ba[0] * h, p[1] - ba[1] * h];
    len(q) * (p[1] * ba[0] - p[0] * ba[1]).signum()
}

/// Blends `shape` (centre in pixels, `radius` in pixels, rotation `angle`) over `img`,
/// with coverage from the signed distance for anti-aliased edges.
fn draw(img: &mut Image, shape: Shape, c: [f32; 2], radius: f32, angle: f32, colour: [u8; 3]) {
    let (sin, cos) = angle.sin_cos();
    let inv = 1.0 / radius;
    let x0 = (c[0] - radius - 1.0).floor().max(0.0) as usize;
    let y0 = (c[1] - radius - 1.0).floor().max(0.0) as usize;
    let x1 = ((c[0] + radius + 1.0).ceil() as usize).min(img.width);
    let y1 = ((c[1] + radius + 1.0).ceil() as usize).min(img.height);
    let colour = colour.map(f32::from);
    for y in y0..y1 {
        let dy = y as f32 + 0.5 - c[1];
        for x in x0..x1 {
            let dx = x as f32 + 0.5 - c[0];
            let p = [(dx * cos + dy * sin) * inv, (-dx * sin + dy * cos) * inv];
            // Distance in pixels; a pixel is half covered on the boundary.
            let coverage = (0.5 - shape.sdf(p) * radius).clamp(0.0, 1.0);
            if coverage > 0.0 {
                let i = (y * img.width + x) * 3;
                for (v, fg) in img.rgb[i..i + 3].iter_mut().zip(colour) {
                    let bg = f32::from(*v);
                    *v = to_u8(bg + (fg - bg) * coverage);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(split: &str, size: usize, seed: u64, len: usize) -> Synthetic {
        Synthetic::new("shapes", split, size, seed, len).unwrap()
    }

    #[test]
    fn deterministic_and_order_independent() {
        let a = open("train", 32, 7, 50);
        let b = open("train", 32, 7, 50);
        let forward: Vec<Image> = (0..50).map(|i| a.load(i).unwrap()).collect();
        for i in (0..50).rev() {
            assert_eq!(b.load(i).unwrap(), forward[i]);
            assert_eq!(a.label(i), b.label(i));
        }
        // The length of the split does not change its images or labels.
        let longer = open("train", 32, 7, 80);
        assert_eq!(longer.load(13).unwrap(), forward[13]);
        assert_eq!(longer.label(13), a.label(13));
    }

    #[test]
    fn splits_and_seeds_differ() {
        let train = open("train", 32, 7, 16);
        let test = open("test", 32, 7, 16);
        let other_seed = open("train", 32, 8, 16);
        for i in 0..16 {
            let t = train.load(i).unwrap();
            assert_ne!(t, test.load(i).unwrap());
            assert_ne!(t, other_seed.load(i).unwrap());
        }
        let labels = |s: &Synthetic| (0..16).map(|i| s.label(i).unwrap()).collect::<Vec<_>>();
        assert_ne!(labels(&train), labels(&test));
    }

    #[test]
    fn labels_are_balanced_and_shuffled() {
        let s = open("train", 16, 1, 800);
        let mut counts = [0usize; 8];
        for i in 0..800 {
            counts[s.label(i).unwrap()] += 1;
        }
        assert_eq!(counts, [100; 8]);
        let identity = (0..800).filter(|&i| s.label(i) == Some(i % 8)).count();
        assert!(identity < 300, "labels look like i % 8: {identity}");
        assert_eq!(s.label(800), None);
        assert_eq!(s.classes().len(), 8);
        assert_eq!(s.describe(3), "synthetic:train:3");
    }

    #[test]
    fn partial_last_block_and_empty_split() {
        let s = open("val", 16, 1, 11);
        assert_eq!(s.len(), 11);
        let first: std::collections::HashSet<_> = (0..8).map(|i| s.label(i)).collect();
        assert_eq!(first.len(), 8);
        let empty = open("val", 16, 1, 0);
        assert!(empty.is_empty());
        assert!(matches!(empty.load(0), Err(DataError::Invalid { .. })));
    }

    #[test]
    fn sizes_are_validated_and_all_supported_sizes_render() {
        for bad in [0, 7, 513] {
            assert!(Synthetic::new("d", "train", bad, 0, 4).is_err());
        }
        for size in [8, 9, 31, 64, 512] {
            let s = open("train", size, 3, 8);
            for i in 0..8 {
                let img = s.load(i).unwrap();
                assert_eq!((img.width, img.height, img.rgb.len()), (size, size, size * size * 3));
            }
        }
    }

    #[test]
    fn shape_is_visible_and_contrasting() {
        // The shape's pixels (those far from the background mean) cover a reasonable area.
        let s = open("train", 64, 5, 64);
        for i in 0..64 {
            let img = s.load(i).unwrap();
            let l: Vec<f32> = img.rgb.chunks(3).map(|p| luma([p[0], p[1], p[2]].map(f32::from))).collect();
            let mut sorted = l.clone();
            sorted.sort_by(f32::total_cmp);
            let median = sorted[sorted.len() / 2];
            let far = l.iter().filter(|&&v| (v - median).abs() > 45.0).count();
            let frac = far as f32 / l.len() as f32;
            assert!(frac > 0.02 && frac < 0.5, "image {i}: shape fraction {frac}");
        }
    }

    #[test]
    fn shapes_are_distinct_under_any_rotation() {
        // Masks of each shape on a grid over [-1, 1]^2: every shape covers a reasonable
        // area, and no two overlap closely (intersection over union) at any rotation.
        let n = 80;
        let mask = |shape: Shape, angle: f32| -> Vec<bool> {
            let (sin, cos) = angle.sin_cos();
            (0..n * n)
                .map(|k| {
                    let x = (k % n) as f32 / n as f32 * 2.0 - 1.0;
                    let y = (k / n) as f32 / n as f32 * 2.0 - 1.0;
                    shape.sdf([x * cos + y * sin, -x * sin + y * cos]) < 0.0
                })
                .collect()
        };
        let shapes: Vec<Shape> = (0..8).map(Shape::from_label).collect();
        let upright: Vec<Vec<bool>> = shapes.iter().map(|&s| mask(s, 0.0)).collect();
        for (s, m) in shapes.iter().zip(&upright) {
            let area = m.iter().filter(|&&b| b).count() as f32 / (n * n) as f32;
            assert!(area > 0.1 && area < 0.8, "{s:?}: {area}");
        }
        for i in 0..8 {
            for j in 0..8 {
                if i == j {
                    continue;
                }
                for step in 0..24 {
                    let rotated = mask(shapes[j], step as f32 * std::f32::consts::TAU / 24.0);
                    let inter = upright[i].iter().zip(&rotated).filter(|(a, b)| **a && **b).count();
                    let union = upright[i].iter().zip(&rotated).filter(|(a, b)| **a || **b).count();
                    let iou = inter as f32 / union as f32;
                    assert!(iou < 0.85, "{:?} vs {:?} at step {step}: {iou}", shapes[i], shapes[j]);
                }
            }
        }
    }

    #[test]
    fn generation_is_fast() {
        // 2000 32x32 images; generous bound for unoptimised test builds.
        let s = open("train", 32, 0, 2000);
        let t = std::time::Instant::now();
        for i in 0..2000 {
            s.load(i).unwrap();
        }
        let elapsed = t.elapsed();
        assert!(elapsed.as_secs_f32() < 5.0, "{elapsed:?}");
    }
}
