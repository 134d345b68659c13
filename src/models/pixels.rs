//! Raw-pixel features: the image itself, downscaled, as the simplest possible baseline
//! representation.
use crate::data::{area_resample, Image};

/// The image area-averaged (box filter) down to `size` x `size` (aspect ratio not kept),
/// as `3 * size * size` values in `[0, 1]`, channel-major (CHW: all red values row by
/// row, then green, then blue). `size` 0 gives an empty vector; an empty image, zeros.
pub fn pixels(img: &Image, size: usize) -> Vec<f32> {
    let hwc = area_resample(img, size, size);
    let plane = size * size;
    let mut chw = vec![0.0f32; 3 * plane];
    for (p, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * plane + p] = (px[c] / 255.0).clamp(0.0, 1.0);
        }
    }
    chw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chw_order_and_range() {
        // 2x1 image: red pixel, then blue pixel.
        let img = Image::from_rgb(2, 1, vec![255, 0, 0, 0, 0, 255]).unwrap();
        // Upscaled to 2x2: each column keeps its colour.
        assert_eq!(pixels(&img, 2), vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
        // Downscaled to 1x1: the average.
        assert_eq!(pixels(&img, 1), vec![0.5, 0.0, 0.5]);
    }

    #[test]
    fn box_filter_averages_blocks() {
        // 4x4 grey ramp by block: each 2x2 block has one value.
        let mut img = Image::new(4, 4);
        for y in 0..4 {
            for x in 0..4 {
                let v = [0u8, 51, 102, 255][(y / 2) * 2 + x / 2];
                let i = (y * 4 + x) * 3;
                img.rgb[i..i + 3].copy_from_slice(&[v, v, v]);
            }
        }
        let v = pixels(&img, 2);
        assert_eq!(v.len(), 12);
        for c in 0..3 {
            assert_eq!(&v[c * 4..c * 4 + 4], &[0.0, 0.2, 0.4, 1.0]);
        }
    }

    #[test]
    fn lengths_and_bounds() {
        let img = Image::from_rgb(3, 5, (0..45).map(|k| (k * 5) as u8).collect()).unwrap();
        for size in [1, 2, 7, 32] {
            let v = pixels(&img, size);
            assert_eq!(v.len(), 3 * size * size);
            assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
        }
        assert!(pixels(&img, 0).is_empty());
        assert_eq!(pixels(&Image::new(0, 0), 2), vec![0.0; 12]);
    }
}
