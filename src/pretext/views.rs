//! The two views of contrastive learning (SimCLR, Chen et al. 2020), drawn as SimCLR draws
//! them (`torchvision` order): a random resized crop back to the image side (bilinear), a
//! horizontal flip with probability 1/2, colour jitter (brightness, contrast, saturation,
//! hue in a random order) with probability `jitter_prob`, grayscale with probability
//! `grayscale_prob`. SimCLR's Gaussian blur is left out, as SimCLR leaves it out for its 32
//! px CIFAR-10 runs. Plain host code on one image's bytes: the strengths are validated
//! here for the stage, the batches are made in `contrastive.rs`.
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How views are drawn: SimCLR's augmentations and their strengths.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewConfig {
    /// The crop covers a share of the image's area drawn uniformly from [this, 1]; its
    /// aspect ratio is log-uniform in [3/4, 4/3].
    pub crop_min_scale: f64,
    /// Horizontal flips with probability 1/2.
    pub flip: bool,
    /// Colour jitter strength `s`: brightness, contrast and saturation factors in
    /// [1 - 0.8 s, 1 + 0.8 s], hue shifted by up to 0.2 s of the colour circle.
    pub jitter_strength: f64,
    /// Probability that a view is jittered.
    pub jitter_prob: f64,
    /// Probability that a view is turned grayscale.
    pub grayscale_prob: f64,
}

/// The colour operations of the jitter, applied in a drawn order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ColourOp {
    Brightness(f32),
    Contrast(f32),
    Saturation(f32),
    /// A shift of the hue, in turns.
    Hue(f32),
}

/// One view's random choices.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewDraw {
    /// The crop: top, left, height, width (in pixels of the image).
    pub crop: (usize, usize, usize, usize),
    pub flip: bool,
    /// The colour operations in their order (empty: no jitter).
    pub jitter: Vec<ColourOp>,
    pub grayscale: bool,
}

impl ViewConfig {
    /// Checks the strengths: an error is (the `pretext` stage's key, the message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(self.crop_min_scale > 0.0 && self.crop_min_scale <= 1.0) {
            return Err((
                "crop_min_scale",
                format!("expected a share of the area in (0, 1], found {}", self.crop_min_scale),
            ));
        }
        // Brightness, contrast and saturation factors stay positive (1 - 0.8 s >= 0).
        if !(0.0..=1.25).contains(&self.jitter_strength) {
            return Err(("jitter_strength", format!("expected 0..=1.25, found {}", self.jitter_strength)));
        }
        for (key, p) in [("jitter_prob", self.jitter_prob), ("grayscale_prob", self.grayscale_prob)] {
            if !(0.0..=1.0).contains(&p) {
                return Err((key, format!("expected a probability in [0, 1], found {p}")));
            }
        }
        Ok(())
    }

    /// Draws a view of an image of side `s` (as torchvision's `RandomResizedCrop`,
    /// `RandomHorizontalFlip`, `RandomApply(ColorJitter)`, `RandomGrayscale` do, in order).
    pub fn draw(&self, s: usize, rng: &mut ChaCha8Rng) -> ViewDraw {
        let area = (s * s) as f64;
        let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
        let mut crop = (0, 0, s, s);
        for _ in 0..10 {
            let target = area * rng.gen_range(self.crop_min_scale..=1.0);
            let ratio = rng.gen_range(lo..=hi).exp();
            let w = (target * ratio).sqrt().round() as usize;
            let h = (target / ratio).sqrt().round() as usize;
            if (1..=s).contains(&w) && (1..=s).contains(&h) {
                crop = (rng.gen_range(0..=s - h), rng.gen_range(0..=s - w), h, w);
                break;
            }
        }
        let flip = self.flip && rng.gen_bool(0.5);
        let mut jitter = Vec::new();
        if self.jitter_strength > 0.0 && rng.gen_bool(self.jitter_prob) {
            let k = 0.8 * self.jitter_strength;
            let factor = |rng: &mut ChaCha8Rng| rng.gen_range((1.0 - k).max(0.0)..=1.0 + k) as f32;
            let (b, c, sat) = (factor(rng), factor(rng), factor(rng));
            let hue = 0.2 * self.jitter_strength;
            let h = rng.gen_range(-hue..=hue) as f32;
            jitter = vec![
                ColourOp::Brightness(b),
                ColourOp::Contrast(c),
                ColourOp::Saturation(sat),
                ColourOp::Hue(h),
            ];
            jitter.shuffle(rng);
        }
        let grayscale = rng.gen_bool(self.grayscale_prob);
        ViewDraw {
            crop,
            flip,
            jitter,
            grayscale,
        }
    }
}

/// Luma of an RGB colour (ITU-R 601-2, as torchvision's grayscale).
fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Writes the view `d` of the `[3, s, s]` u8 image `src` to `out` as values in [0, 1].
pub fn render(src: &[u8], s: usize, d: &ViewDraw, out: &mut [f32]) {
    let (top, left, h, w) = d.crop;
    let plane = s * s;
    // Bilinear resize of the crop to s x s (half-pixel centres, as align_corners = false).
    let coords = |n: usize, from: usize| -> Vec<(usize, usize, f32)> {
        (0..s)
            .map(|o| {
                let c = ((o as f32 + 0.5) * n as f32 / s as f32 - 0.5).max(0.0);
                let i0 = (c.floor() as usize).min(n - 1);
                let i1 = (i0 + 1).min(n - 1);
                (from + i0, from + i1, c - i0 as f32)
            })
            .collect()
    };
    let (ys, xs) = (coords(h, top), coords(w, left));
    for ch in 0..3 {
        let p = &src[ch * plane..(ch + 1) * plane];
        for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
            for x in 0..s {
                let (x0, x1, fx) = xs[if d.flip { s - 1 - x } else { x }];
                let v = |yy: usize, xx: usize| p[yy * s + xx] as f32;
                let top_row = v(y0, x0) * (1.0 - fx) + v(y0, x1) * fx;
                let bottom = v(y1, x0) * (1.0 - fx) + v(y1, x1) * fx;
                out[ch * plane + y * s + x] = (top_row * (1.0 - fy) + bottom * fy) / 255.0;
            }
        }
    }
    let (r, rest) = out[..3 * plane].split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for op in &d.jitter {
        match *op {
            ColourOp::Brightness(f) => {
                for v in r.iter_mut().chain(g.iter_mut()).chain(b.iter_mut()) {
                    *v = (*v * f).clamp(0.0, 1.0);
                }
            }
            ColourOp::Contrast(f) => {
                let mean = (0..plane).map(|i| luma(r[i], g[i], b[i])).sum::<f32>() / plane as f32;
                for v in r.iter_mut().chain(g.iter_mut()).chain(b.iter_mut()) {
                    *v = (f * *v + (1.0 - f) * mean).clamp(0.0, 1.0);
                }
            }
            ColourOp::Saturation(f) => {
                for i in 0..plane {
                    let l = luma(r[i], g[i], b[i]);
                    r[i] = (f * r[i] + (1.0 - f) * l).clamp(0.0, 1.0);
                    g[i] = (f * g[i] + (1.0 - f) * l).clamp(0.0, 1.0);
                    b[i] = (f * b[i] + (1.0 - f) * l).clamp(0.0, 1.0);
                }
            }
            ColourOp::Hue(shift) => {
                for i in 0..plane {
                    (r[i], g[i], b[i]) = shift_hue(r[i], g[i], b[i], shift);
                }
            }
        }
    }
    if d.grayscale {
        for i in 0..plane {
            let l = luma(r[i], g[i], b[i]);
            (r[i], g[i], b[i]) = (l, l, l);
        }
    }
}

/// The colour with its hue turned by `shift` (in turns), through HSV.
fn shift_hue(r: f32, g: f32, b: f32, shift: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    if delta <= 0.0 {
        return (r, g, b);
    }
    let h = if max == r {
        ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        (b - r) / delta + 2.0
    } else {
        (r - g) / delta + 4.0
    } / 6.0;
    let h = (h + shift).rem_euclid(1.0) * 6.0;
    let (v, sat) = (max, delta / max);
    let sector = (h.floor() as i32).rem_euclid(6);
    let f = h - h.floor();
    let (p, q, t) = (v * (1.0 - sat), v * (1.0 - sat * f), v * (1.0 - sat * (1.0 - f)));
    match sector {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn config() -> ViewConfig {
        ViewConfig {
            crop_min_scale: 0.08,
            flip: true,
            jitter_strength: 0.5,
            jitter_prob: 0.8,
            grayscale_prob: 0.2,
        }
    }

    /// A 4 x 4 image whose red channel is 16 * x, green 16 * y, blue 200.
    fn gradient(s: usize) -> Vec<u8> {
        let mut p = vec![0u8; 3 * s * s];
        for y in 0..s {
            for x in 0..s {
                p[y * s + x] = (16 * x) as u8;
                p[s * s + y * s + x] = (16 * y) as u8;
                p[2 * s * s + y * s + x] = 200;
            }
        }
        p
    }

    fn plain(crop: (usize, usize, usize, usize)) -> ViewDraw {
        ViewDraw {
            crop,
            flip: false,
            jitter: Vec::new(),
            grayscale: false,
        }
    }

    #[test]
    fn a_known_image_crops_flips_and_turns_gray_as_drawn() {
        let s = 4;
        let src = gradient(s);
        let mut out = vec![0f32; 3 * s * s];
        // The whole image, unflipped: the image itself.
        render(&src, s, &plain((0, 0, s, s)), &mut out);
        let expect: Vec<f32> = src.iter().map(|&v| v as f32 / 255.0).collect();
        assert_eq!(out, expect);
        // Flipped: each row mirrored.
        render(
            &src,
            s,
            &ViewDraw {
                flip: true,
                ..plain((0, 0, s, s))
            },
            &mut out,
        );
        assert_eq!(out[0], 48.0 / 255.0, "red at x = 0 is the old x = 3");
        assert_eq!(out[3], 0.0);
        // The 2 x 2 crop at the bottom right, doubled: pixel (0, 0) is its top-left corner
        // (half-pixel centres clamp to the edge), pixel (3, 3) its bottom-right.
        render(&src, s, &plain((2, 2, 2, 2)), &mut out);
        assert_eq!(out[0] * 255.0, 32.0);
        assert!((out[15] * 255.0 - 48.0).abs() < 1e-4);
        assert!((out[16 + 15] * 255.0 - 48.0).abs() < 1e-4, "green at the bottom row is 16 * 3");
        assert!(
            (out[5] * 255.0 - 36.0).abs() < 1e-4,
            "x = 1 reads between 32 and 48, a quarter of the way"
        );
        // Grayscale: three equal channels, the image's luma.
        render(
            &src,
            s,
            &ViewDraw {
                grayscale: true,
                ..plain((0, 0, s, s))
            },
            &mut out,
        );
        for i in 0..s * s {
            assert_eq!((out[i], out[i]), (out[16 + i], out[32 + i]));
        }
        let l = luma(48.0, 0.0, 200.0) / 255.0;
        assert!((out[3] - l).abs() < 1e-6);
    }

    #[test]
    fn hue_turns_through_the_colour_circle() {
        let (r, g, b) = shift_hue(1.0, 0.0, 0.0, 1.0 / 3.0);
        assert!((r, g, b) == (0.0, 1.0, 0.0), "red turned a third is green: {r} {g} {b}");
        assert_eq!(shift_hue(0.4, 0.4, 0.4, 0.25), (0.4, 0.4, 0.4), "gray has no hue");
        let back = shift_hue(0.2, 0.5, 0.9, -0.1);
        let there = shift_hue(back.0, back.1, back.2, 0.1);
        assert!((there.0 - 0.2).abs() < 1e-5 && (there.1 - 0.5).abs() < 1e-5 && (there.2 - 0.9).abs() < 1e-5);
    }

    #[test]
    fn draws_stay_in_the_image_and_follow_the_strengths() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (mut flips, mut grays, mut jitters) = (0, 0, 0);
        for _ in 0..2000 {
            let d = config().draw(32, &mut rng);
            let (t, l, h, w) = d.crop;
            assert!(h >= 1 && w >= 1 && t + h <= 32 && l + w <= 32);
            assert!(h * w >= 60, "at least about 8% of 1024 px: {h} x {w}");
            flips += d.flip as usize;
            grays += d.grayscale as usize;
            jitters += !d.jitter.is_empty() as usize;
            for op in &d.jitter {
                match *op {
                    ColourOp::Hue(h) => assert!(h.abs() <= 0.1),
                    ColourOp::Brightness(f) | ColourOp::Contrast(f) | ColourOp::Saturation(f) => assert!((0.6..=1.4).contains(&f)),
                }
            }
        }
        assert!((900..1100).contains(&flips) && (300..500).contains(&grays) && (1500..1700).contains(&jitters));
        let none = ViewConfig {
            flip: false,
            jitter_prob: 0.0,
            grayscale_prob: 0.0,
            crop_min_scale: 1.0,
            ..config()
        };
        for _ in 0..20 {
            let d = none.draw(32, &mut rng);
            assert!(!d.flip && d.jitter.is_empty() && !d.grayscale);
            assert!(d.crop.2 * d.crop.3 >= 1000, "the whole area, give or take rounding: {:?}", d.crop);
        }
    }
}
