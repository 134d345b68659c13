//! A decoded RGB image in memory, and the area resampling every consumer shares.

/// An 8-bit RGB image, row-major, channels interleaved: `rgb[(y * width + x) * 3 + c]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Image {
    pub fn new(width: usize, height: usize) -> Self {
        Image {
            width,
            height,
            rgb: vec![0; width * height * 3],
        }
    }

    /// Wraps an interleaved RGB buffer; `None` unless `rgb.len() == width * height * 3`.
    pub fn from_rgb(width: usize, height: usize, rgb: Vec<u8>) -> Option<Self> {
        let expected = width.checked_mul(height)?.checked_mul(3)?;
        (rgb.len() == expected).then_some(Image { width, height, rgb })
    }

    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The image mirrored left to right.
    pub fn mirrored(&self) -> Image {
        let mut rgb = Vec::with_capacity(self.rgb.len());
        for row in self.rgb.chunks_exact(self.width * 3) {
            for p in row.chunks_exact(3).rev() {
                rgb.extend_from_slice(p);
            }
        }
        Image { rgb, ..*self }
    }
}

/// How an image of any size becomes a square of side `size` when it is read whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    /// Resized to `size` x `size`, the aspect ratio not kept: the input of the `-small`
    /// models (CIFAR-style, where images are square already).
    #[default]
    Squash,
    /// The shorter side resized to `resize` with the aspect ratio kept, then the centre
    /// `size` x `size`: ImageNet's evaluation (256, then the centre 224).
    CentreCrop { resize: usize },
}

impl Image {
    /// The `w` x `h` rectangle at (`x`, `y`) (clipped to the image).
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Image {
        let (x, y) = (x.min(self.width), y.min(self.height));
        let (w, h) = (w.min(self.width - x), h.min(self.height - y));
        let mut rgb = Vec::with_capacity(w * h * 3);
        for row in y..y + h {
            let start = (row * self.width + x) * 3;
            rgb.extend_from_slice(&self.rgb[start..start + w * 3]);
        }
        Image { width: w, height: h, rgb }
    }
}

/// `img` as a `size` x `size` square by `fit`. The centre crop takes the square of the
/// original that becomes the centre `size` x `size` of the image resized to `resize`
/// (side `size * shorter / resize`, rounded) and resamples it to `size` by area
/// averaging: torchvision's `Resize(resize)` + `CenterCrop(size)` up to rounding.
pub fn fit_to(img: &Image, size: usize, fit: Fit) -> Image {
    match fit {
        Fit::Squash => resize_to(img, size),
        Fit::CentreCrop { resize } => {
            let shorter = img.width.min(img.height);
            let side = ((size * shorter) as f64 / resize.max(1) as f64).round() as usize;
            let side = side.clamp(1.min(shorter), shorter);
            let square = img.crop((img.width - side) / 2, (img.height - side) / 2, side, side);
            resize_to(&square, size)
        }
    }
}

/// Resizes `img` to `size` x `size` (aspect ratio is not kept) by area averaging; see
/// [`area_resample`]. A `size` of 0 gives an empty image.
pub fn resize_to(img: &Image, size: usize) -> Image {
    resize_to_wh(img, size, size)
}

/// Resizes `img` to `width` x `height` by area averaging (see [`area_resample`]), rounded
/// to 8 bits.
pub fn resize_to_wh(img: &Image, width: usize, height: usize) -> Image {
    if img.width == width && img.height == height {
        return img.clone();
    }
    let rgb = area_resample(img, width, height)
        .into_iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    Image { width, height, rgb }
}

/// Resamples `img` to `width` x `height` with a box filter: every output pixel is the
/// average of the source area it covers, partially covered source pixels weighted by
/// their coverage. Exact for integer downscaling factors; for upscaling it degenerates to
/// nearest-neighbour with blended seams. Returns interleaved RGB (HWC) in `0.0..=255.0`.
/// An empty source gives a black result.
pub fn area_resample(img: &Image, width: usize, height: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; width * height * 3];
    if img.width == 0 || img.height == 0 || img.rgb.len() < img.width * img.height * 3 {
        return out;
    }
    let wx = area_weights(img.width, width);
    let wy = area_weights(img.height, height);

    // Horizontal pass: every source row to `width` columns.
    let mut rows = vec![0.0f32; img.height * width * 3];
    for y in 0..img.height {
        let src = &img.rgb[y * img.width * 3..(y + 1) * img.width * 3];
        let dst = &mut rows[y * width * 3..(y + 1) * width * 3];
        for (x, taps) in wx.iter().enumerate() {
            let mut acc = [0.0f32; 3];
            for &(sx, w) in taps {
                for c in 0..3 {
                    acc[c] += w * f32::from(src[sx * 3 + c]);
                }
            }
            dst[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    }
    // Vertical pass.
    for (y, taps) in wy.iter().enumerate() {
        let dst = &mut out[y * width * 3..(y + 1) * width * 3];
        for &(sy, w) in taps {
            let src = &rows[sy * width * 3..(sy + 1) * width * 3];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += w * s;
            }
        }
    }
    out
}

/// For every output index, the source indices it covers and their weights (summing to 1).
fn area_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|j| {
            let start = j as f64 * scale;
            let end = ((j + 1) as f64 * scale).min(src as f64);
            let first = start.floor() as usize;
            let last = (end.ceil() as usize).clamp(first + 1, src);
            (first..last)
                .filter_map(|k| {
                    let overlap = (end.min((k + 1) as f64) - start.max(k as f64)) / scale;
                    (overlap > 1e-9).then_some((k, overlap as f32))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_centre_crop_takes_the_middle_of_the_shorter_side() {
        // 8 x 4, column x has value 10 * x: the centre 4 x 4 is columns 2..6.
        let rgb: Vec<u8> = (0..4).flat_map(|_| (0..8).flat_map(|x| [10 * x as u8; 3])).collect();
        let img = Image::from_rgb(8, 4, rgb).unwrap();
        let c = fit_to(&img, 4, Fit::CentreCrop { resize: 4 });
        assert_eq!((c.width, c.height), (4, 4));
        assert_eq!((0..4).map(|x| c.pixel(x, 1)[0]).collect::<Vec<_>>(), vec![20, 30, 40, 50]);
        // resize 8 for size 4: the centre half of the shorter side (2 x 2 -> 4 x 4).
        let c = fit_to(&img, 4, Fit::CentreCrop { resize: 8 });
        assert_eq!((c.pixel(0, 0)[0], c.pixel(3, 3)[0]), (30, 40));
        assert_eq!(fit_to(&img, 4, Fit::Squash), resize_to(&img, 4));
        assert_eq!(img.crop(6, 3, 5, 5), Image::from_rgb(2, 1, vec![60, 60, 60, 70, 70, 70]).unwrap());
    }

    fn gradient(w: usize, h: usize) -> Image {
        let mut img = Image::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) * 3;
                img.rgb[i] = (x * 255 / w.max(1)) as u8;
                img.rgb[i + 1] = (y * 255 / h.max(1)) as u8;
                img.rgb[i + 2] = 77;
            }
        }
        img
    }

    #[test]
    fn weights_sum_to_one() {
        for (src, dst) in [(32, 7), (7, 32), (5, 5), (100, 3), (3, 100), (1, 4), (4, 1)] {
            for taps in area_weights(src, dst) {
                let sum: f32 = taps.iter().map(|t| t.1).sum();
                assert!((sum - 1.0).abs() < 1e-4, "{src}->{dst}: {sum}");
                assert!(taps.iter().all(|t| t.0 < src));
            }
        }
    }

    #[test]
    fn integer_downscale_is_block_average() {
        let img = Image::from_rgb(2, 2, vec![0, 0, 0, 10, 20, 30, 20, 40, 60, 30, 60, 90]).unwrap();
        let out = area_resample(&img, 1, 1);
        assert_eq!(out, vec![15.0, 30.0, 45.0]);
        assert_eq!(resize_to(&img, 1).rgb, vec![15, 30, 45]);
    }

    #[test]
    fn constant_image_stays_constant_at_any_size() {
        let mut img = Image::new(13, 29);
        img.rgb.iter_mut().for_each(|v| *v = 200);
        for size in [1, 5, 13, 32, 64] {
            let out = resize_to(&img, size);
            assert_eq!((out.width, out.height), (size, size));
            assert!(out.rgb.iter().all(|&v| v == 200), "size {size}");
        }
    }

    #[test]
    fn same_size_is_identity_and_mean_is_kept() {
        let img = gradient(32, 32);
        assert_eq!(resize_to(&img, 32), img);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        let full: Vec<f32> = img.rgb.iter().map(|&v| f32::from(v)).collect();
        assert!((mean(&area_resample(&img, 10, 10)) - mean(&full)).abs() < 0.01);
    }

    #[test]
    fn degenerate_sizes_do_not_panic() {
        assert!(resize_to(&gradient(4, 4), 0).rgb.is_empty());
        assert_eq!(resize_to(&Image::new(0, 0), 3).rgb, vec![0; 27]);
        assert!(Image::from_rgb(2, 2, vec![0; 11]).is_none());
    }
}
