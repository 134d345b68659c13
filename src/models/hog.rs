//! Histogram-of-oriented-gradients features (Dalal & Triggs, 2005): a handcrafted
//! baseline representation to compare learned features against.
//!
//! Gradients use the centred `[-1, 0, 1]` filter (edges replicated) on the colour channel
//! with the largest gradient magnitude at each pixel. Each pixel votes its magnitude
//! into the unsigned orientation histogram (0-180 degrees) of its cell, interpolated
//! bilinearly between the two nearest orientation bins (bin `b` is centred on
//! `b * 180 / bins` degrees, so bin 0 holds horizontal gradients, i.e. vertical edges)
//! and bilinearly between the cells whose centres surround it. Cells are grouped into
//! overlapping blocks of `block` x `block` cells with a stride of one cell, and every block
//! is L2-Hys normalised (L2 norm, clip at 0.2, renormalise). Pixels to the right of or
//! below the last whole cell are ignored.
use crate::data::Image;

/// HOG parameters; `Default` gives the classic 8-pixel cells, 2x2-cell blocks, 9 bins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HogParams {
    /// Cell side in pixels.
    pub cell: usize,
    /// Block side in cells.
    pub block: usize,
    /// Orientation bins over 0-180 degrees.
    pub bins: usize,
}

impl Default for HogParams {
    fn default() -> Self {
        HogParams {
            cell: 8,
            block: 2,
            bins: 9,
        }
    }
}

/// L2-Hys clipping threshold.
const CLIP: f32 = 0.2;
/// Regulariser of the block norm, so that flat regions stay zero rather than divide by 0.
const EPS: f32 = 1e-3;

impl HogParams {
    /// Checks the parameters and that a `width` x `height` image holds at least one block.
    pub fn validate(&self, width: usize, height: usize) -> Result<(), String> {
        if self.cell < 2 {
            return Err(format!("HOG cell must be at least 2 pixels, got {}", self.cell));
        }
        if self.block < 1 {
            return Err("HOG block must be at least 1 cell".to_string());
        }
        if self.bins < 2 {
            return Err(format!("HOG bins must be at least 2, got {}", self.bins));
        }
        let side = self.cell.checked_mul(self.block).ok_or("HOG cell * block overflows")?;
        if width < side || height < side {
            return Err(format!(
                "a {width}x{height} image is smaller than one HOG block \
                 ({side}x{side} pixels: {} cells of {} pixels)",
                self.block, self.cell
            ));
        }
        Ok(())
    }
}

/// The length of [`hog`]'s output for a `width` x `height` image; 0 if `p` is invalid for it.
pub fn hog_len(width: usize, height: usize, p: &HogParams) -> usize {
    if p.validate(width, height).is_err() {
        return 0;
    }
    let (cx, cy) = (width / p.cell, height / p.cell);
    (cx - p.block + 1) * (cy - p.block + 1) * p.block * p.block * p.bins
}

/// The HOG descriptor of `img`: blocks in row-major order, within a block its cells in
/// row-major order, within a cell its `bins` orientation bins. Every block has L2 norm at
/// most 1 (0 for a flat block). Returns an empty vector when `p.validate` fails for the
/// image's size (callers should validate first); the length is always
/// `hog_len(img.width, img.height, p)`.
pub fn hog(img: &Image, p: &HogParams) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    if p.validate(w, h).is_err() || img.rgb.len() < w * h * 3 {
        return Vec::new();
    }
    let cells = cell_histograms(img, p);
    let (ncx, ncy) = (w / p.cell, h / p.cell);
    let (nbx, nby) = (ncx - p.block + 1, ncy - p.block + 1);
    let block_len = p.block * p.block * p.bins;
    let mut out = Vec::with_capacity(nbx * nby * block_len);
    for by in 0..nby {
        for bx in 0..nbx {
            let start = out.len();
            for cy in by..by + p.block {
                let row = (cy * ncx + bx) * p.bins;
                out.extend_from_slice(&cells[row..row + p.block * p.bins]);
            }
            l2_hys(&mut out[start..]);
        }
    }
    debug_assert_eq!(out.len(), hog_len(w, h, p));
    out
}

/// Orientation histograms of all whole cells, row-major, `bins` values per cell.
fn cell_histograms(img: &Image, p: &HogParams) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let (ncx, ncy) = (w / p.cell, h / p.cell);
    let mut cells = vec![0.0f32; ncx * ncy * p.bins];
    let at = |x: usize, y: usize, c: usize| i32::from(img.rgb[(y * w + x) * 3 + c]);
    let bins_per_degree = p.bins as f32 / 180.0;
    let cols = spatial_weights(ncx * p.cell, p.cell, ncx);
    let rows = spatial_weights(ncy * p.cell, p.cell, ncy);

    for (y, row_taps) in rows.iter().enumerate() {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for (x, col_taps) in cols.iter().enumerate() {
            let (left, right) = (x.saturating_sub(1), (x + 1).min(w - 1));
            // The channel with the largest gradient, in exact integer arithmetic.
            let (mut gx, mut gy, mut best) = (0i32, 0i32, 0i32);
            for c in 0..3 {
                let dx = at(right, y, c) - at(left, y, c);
                let dy = at(x, down, c) - at(x, up, c);
                let m = dx * dx + dy * dy;
                if m > best {
                    (gx, gy, best) = (dx, dy, m);
                }
            }
            if best == 0 {
                continue;
            }
            let magnitude = (best as f32).sqrt() / 255.0;
            let pos = (orientation_degrees(gx as f32, gy as f32) * bins_per_degree).clamp(0.0, p.bins as f32);
            // `pos` is non-negative, so truncation is `floor`; the last bin wraps to the
            // first (0 and 180 degrees are the same orientation).
            let b0 = pos as usize;
            let frac = pos - b0 as f32;
            let b0 = if b0 >= p.bins { b0 - p.bins } else { b0 };
            let b1 = if b0 + 1 == p.bins { 0 } else { b0 + 1 };
            for &(cy, wy) in row_taps {
                for &(cx, wx) in col_taps {
                    let weight = magnitude * wy * wx;
                    let base = (cy * ncx + cx) * p.bins;
                    cells[base + b0] += weight * (1.0 - frac);
                    cells[base + b1] += weight * frac;
                }
            }
        }
    }
    cells
}

/// For each of `len` pixels along an axis, the two cells whose centres surround it and
/// their bilinear weights. Out-of-grid neighbours are clamped to the border cell, so
/// border pixels keep all their weight.
fn spatial_weights(len: usize, cell: usize, n: usize) -> Vec<[(usize, f32); 2]> {
    (0..len)
        .map(|i| {
            let f = (i as f32 + 0.5) / cell as f32 - 0.5;
            let c0 = f.floor();
            let w1 = f - c0;
            let clamp = |c: f32| (c.max(0.0) as usize).min(n - 1);
            [(clamp(c0), 1.0 - w1), (clamp(c0 + 1.0), w1)]
        })
        .collect()
}

/// The unsigned orientation of the gradient `(gx, gy)` in degrees, in `[0, 180)`, from a
/// polynomial arctangent (error below 0.001 degrees): several times faster than `atan2`,
/// which dominated the descriptor's cost.
fn orientation_degrees(gx: f32, gy: f32) -> f32 {
    // Unsigned: fold the lower half-plane onto the upper one.
    let (gx, gy) = if gy < 0.0 { (-gx, -gy) } else { (gx, gy) };
    let angle = if gx.abs() >= gy {
        // Within 45 degrees of the horizontal axis.
        if gx == 0.0 {
            return 0.0;
        }
        let a = atan_unit(gy / gx.abs());
        if gx > 0.0 {
            a
        } else {
            180.0 - a
        }
    } else {
        90.0 - atan_unit(gx / gy)
    };
    if angle >= 180.0 {
        angle - 180.0
    } else {
        angle
    }
}

/// `atan(t)` in degrees for `t` in `[-1, 1]` (minimax polynomial, |error| < 1e-5 rad).
fn atan_unit(t: f32) -> f32 {
    let t2 = t * t;
    let r =
        t * (0.999_977_26 + t2 * (-0.332_623_47 + t2 * (0.193_543_46 + t2 * (-0.116_432_87 + t2 * (0.052_653_32 + t2 * -0.011_721_2)))));
    r.to_degrees()
}

fn l2_hys(v: &mut [f32]) {
    let normalise = |v: &mut [f32]| {
        let norm = (v.iter().map(|x| x * x).sum::<f32>() + EPS * EPS).sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
    };
    normalise(v);
    v.iter_mut().for_each(|x| *x = x.min(CLIP));
    normalise(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_fn(w: usize, h: usize, f: impl Fn(usize, usize) -> [u8; 3]) -> Image {
        let mut img = Image::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) * 3;
                img.rgb[i..i + 3].copy_from_slice(&f(x, y));
            }
        }
        img
    }

    /// Total energy per orientation bin over the whole descriptor.
    fn per_bin(v: &[f32], bins: usize) -> Vec<f32> {
        let mut sums = vec![0.0; bins];
        for (k, x) in v.iter().enumerate() {
            sums[k % bins] += x;
        }
        sums
    }

    #[test]
    fn fast_orientation_matches_atan2() {
        let mut worst = 0.0f32;
        for gx in -40..=40 {
            for gy in -40..=40 {
                if gx == 0 && gy == 0 {
                    continue;
                }
                let (x, y) = (gx as f32 * 3.7, gy as f32 * 3.7);
                let mut exact = y.atan2(x).to_degrees();
                if exact < 0.0 {
                    exact += 180.0;
                }
                if exact >= 180.0 {
                    exact -= 180.0;
                }
                let fast = orientation_degrees(x, y);
                assert!((0.0..180.0).contains(&fast), "{gx} {gy}: {fast}");
                // Compare on the circle: 179.9999 and 0 are neighbours.
                let d = (fast - exact).abs();
                worst = worst.max(d.min(180.0 - d));
            }
        }
        assert!(worst < 1e-3, "worst error {worst} degrees");
        assert_eq!(orientation_degrees(0.0, 0.0), 0.0);
        assert_eq!(orientation_degrees(-5.0, 0.0), 0.0);
        assert!((orientation_degrees(0.0, -5.0) - 90.0).abs() < 1e-3);
    }

    #[test]
    fn length_formula() {
        let p = HogParams::default();
        assert_eq!(hog_len(32, 32, &p), 3 * 3 * 4 * 9);
        assert_eq!(hog_len(64, 128, &p), 7 * 15 * 36); // the classic 3780
        assert_eq!(hog_len(39, 17, &p), 3 * 36);
        assert_eq!(hog_len(15, 32, &p), 0);
        let q = HogParams {
            cell: 4,
            block: 3,
            bins: 6,
        };
        assert_eq!(hog_len(32, 20, &q), 6 * 3 * 9 * 6);
        for (w, h) in [(32, 32), (39, 17), (16, 16), (33, 47)] {
            let img = from_fn(w, h, |x, y| [(x * 9) as u8, (y * 5) as u8, (x * y) as u8]);
            assert_eq!(hog(&img, &p).len(), hog_len(w, h, &p));
            assert_eq!(hog(&img, &q).len(), hog_len(w, h, &q));
        }
    }

    #[test]
    fn validation() {
        let ok = HogParams::default();
        assert!(ok.validate(16, 16).is_ok());
        assert!(ok.validate(15, 16).unwrap_err().contains("smaller than one HOG block"));
        assert!(HogParams { cell: 1, ..ok }.validate(64, 64).is_err());
        assert!(HogParams { block: 0, ..ok }.validate(64, 64).is_err());
        assert!(HogParams { bins: 1, ..ok }.validate(64, 64).is_err());
        assert!(HogParams { cell: usize::MAX, ..ok }.validate(64, 64).is_err());
        assert!(hog(&Image::new(8, 8), &ok).is_empty());
        // A buffer too short for its declared size is refused, not indexed out of bounds.
        let broken = Image {
            width: 16,
            height: 16,
            rgb: vec![0; 5],
        };
        assert!(hog(&broken, &ok).is_empty());
    }

    #[test]
    fn constant_image_is_all_zeros() {
        let img = from_fn(32, 24, |_, _| [120, 30, 200]);
        let v = hog(&img, &HogParams::default());
        assert!(!v.is_empty());
        assert!(v.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn vertical_edge_fills_the_horizontal_gradient_bin() {
        let img = from_fn(32, 32, |x, _| if x < 16 { [0; 3] } else { [255; 3] });
        let p = HogParams::default();
        let sums = per_bin(&hog(&img, &p), p.bins);
        assert!(sums[0] > 0.0);
        assert!(sums[1..].iter().all(|&s| s == 0.0), "{sums:?}");
    }

    #[test]
    fn horizontal_edge_fills_the_vertical_gradient_bins() {
        // 90 degrees lies halfway between bins 4 (80) and 5 (100) of 9.
        let img = from_fn(32, 32, |_, y| if y < 13 { [10, 200, 10] } else { [10, 20, 10] });
        let p = HogParams::default();
        let sums = per_bin(&hog(&img, &p), p.bins);
        assert!(sums[4] > 0.0 && (sums[4] - sums[5]).abs() < 1e-4, "{sums:?}");
        let others: f32 = sums.iter().enumerate().filter(|(k, _)| *k != 4 && *k != 5).map(|(_, s)| s).sum();
        assert_eq!(others, 0.0);
    }

    #[test]
    fn diagonal_edge_lands_at_45_degrees() {
        // Brightness increasing along x + y: gradient at 45 degrees (y pointing down),
        // between bins 2 (40) and 3 (60), closer to bin 2. (The one-sided differences on
        // the image border vote elsewhere, but weakly.)
        let img = from_fn(32, 32, |x, y| [((x + y) * 4) as u8; 3]);
        let p = HogParams::default();
        let sums = per_bin(&hog(&img, &p), p.bins);
        let mut order: Vec<usize> = (0..p.bins).collect();
        order.sort_by(|&a, &b| sums[b].total_cmp(&sums[a]));
        assert_eq!(&order[..2], &[2, 3], "{sums:?}");
        assert_eq!(sums[6..].iter().sum::<f32>(), 0.0, "{sums:?}");
    }

    #[test]
    fn block_norms_are_at_most_one_and_clipped() {
        let p = HogParams::default();
        let img = from_fn(40, 40, |x, y| {
            [((x * 37 + y * 11) % 256) as u8, ((x * y) % 256) as u8, (y * 6) as u8]
        });
        let v = hog(&img, &p);
        let block_len = p.block * p.block * p.bins;
        for block in v.chunks(block_len) {
            let norm = block.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(norm <= 1.0 + 1e-5 && norm > 0.5, "{norm}");
            assert!(block.iter().all(|&x| (0.0..=1.0).contains(&x)));
        }
        assert!(v.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn uses_the_strongest_channel_and_ignores_global_contrast() {
        // An edge in the blue channel only is found like a grey one; scaling the contrast
        // leaves the normalised descriptor (nearly) unchanged.
        let p = HogParams::default();
        let blue = from_fn(32, 32, |x, _| [50, 50, if x < 20 { 0 } else { 200 }]);
        let grey = from_fn(32, 32, |x, _| [if x < 20 { 0 } else { 200 }; 3]);
        let faint = from_fn(32, 32, |x, _| [if x < 20 { 100 } else { 150 }; 3]);
        let (b, g, f) = (hog(&blue, &p), hog(&grey, &p), hog(&faint, &p));
        assert_eq!(b, g);
        let diff: f32 = g.iter().zip(&f).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-2, "{diff}");
    }
}
