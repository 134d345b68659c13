//! CIE Lab colour (D65 white, sRGB companding) and the quantised ab space of colourisation
//! (Zhang et al. 2016): bins of side 10 whose centres some 8-bit sRGB colour falls nearest
//! to, each pixel's bin, and the class-rebalancing weights from a prior over the bins. Host
//! code, no libtorch.
use std::sync::OnceLock;

/// Side of an ab bin (Zhang's grid).
pub const GRID: f32 = 10.0;
/// Bin centres are the multiples of [`GRID`] in `[-AB_RANGE, AB_RANGE]` on both axes
/// (sRGB's ab values lie within about -86..98 and -108..95).
pub const AB_RANGE: f32 = 110.0;

/// Input pixels per output pixel along each side of the ab targets (Zhang's 224 -> 56).
pub const STRIDE: usize = 4;

/// Side of the ab map for images of side `size`.
pub fn output_side(size: usize) -> usize {
    (size / STRIDE).max(1)
}

/// How many in-gamut bins [`bins`] finds (a test pins it to the computation and to
/// scripts/lab_reference.py): the colourisation head's classes, known without the pass over
/// every colour (plan estimates use it).
pub const IN_GAMUT_BINS: usize = 261;

/// The D65 reference white (X, Y, Z), Y = 1.
const WHITE: [f64; 3] = [0.950_47, 1.0, 1.088_83];

/// Linear-light sRGB -> XYZ (IEC 61966-2-1, D65), rows X, Y, Z.
const RGB_TO_XYZ: [[f64; 3]; 3] = [
    [0.412_456_4, 0.357_576_1, 0.180_437_5],
    [0.212_672_9, 0.715_152_2, 0.072_175_0],
    [0.019_333_9, 0.119_192_0, 0.950_304_1],
];

/// The sRGB decoding of the 256 byte values (companding undone), computed once.
fn linear_table() -> &'static [f64; 256] {
    static TABLE: OnceLock<[f64; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|v| {
            let c = v as f64 / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        })
    })
}

/// CIE's f(t): the cube root above (6/29)^3, a line below it.
fn f(t: f64) -> f64 {
    const D: f64 = 6.0 / 29.0;
    if t > D * D * D {
        t.cbrt()
    } else {
        t / (3.0 * D * D) + 4.0 / 29.0
    }
}

/// `[L, a, b]` of an 8-bit sRGB colour (L in 0..=100), computed in float64.
pub fn srgb_to_lab(rgb: [u8; 3]) -> [f32; 3] {
    lab64(rgb).map(|v| v as f32)
}

fn lab64(rgb: [u8; 3]) -> [f64; 3] {
    let lin = linear_table();
    let c = rgb.map(|v| lin[v as usize]);
    let xyz: [f64; 3] = std::array::from_fn(|r| (0..3).map(|k| RGB_TO_XYZ[r][k] * c[k]).sum::<f64>() / WHITE[r]);
    let [fx, fy, fz] = xyz.map(f);
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// The CIE L of a batch of normalised images `[b, 3, h, w]` (each channel `(v - 0.5) /
/// 0.25` of sRGB `v` in 0..1), scaled and normalised the same way (`(L / 100 - 0.5) /
/// 0.25`) in all three channels: what a colourisation network saw in training, computed
/// on the batch's device.
#[cfg(feature = "torch")]
pub fn lightness_of_normalised(x: &tch::Tensor) -> tch::Tensor {
    use crate::train::batches::{MEAN, STD};
    let v = (x.to_kind(tch::Kind::Float) * STD as f64 + MEAN as f64).clamp(0.0, 1.0);
    let linear = (&v / 12.92).where_self(&v.le(0.040_45), &((&v + 0.055) / 1.055).pow_tensor_scalar(2.4));
    let y = linear.select(1, 0) * RGB_TO_XYZ[1][0] + linear.select(1, 1) * RGB_TO_XYZ[1][1] + linear.select(1, 2) * RGB_TO_XYZ[1][2];
    const D: f64 = 6.0 / 29.0;
    let cube_root = y.clamp_min(0.0).pow_tensor_scalar(1.0 / 3.0);
    let fy = cube_root.where_self(&y.gt(D * D * D), &(&y / (3.0 * D * D) + 4.0 / 29.0));
    let l = ((fy * 116.0 - 16.0) / 100.0 - MEAN as f64) / STD as f64; // [b, h, w]
    l.unsqueeze(1).expand([-1, 3, -1, -1], false).contiguous()
}

/// The in-gamut ab bins: the centres (multiples of [`GRID`]) that at least one 8-bit sRGB
/// colour is nearest to, in order of a, then b. Computed once, from all 2^24 colours.
pub fn bins() -> &'static [[f32; 2]] {
    static BINS: OnceLock<Vec<[f32; 2]>> = OnceLock::new();
    BINS.get_or_init(|| {
        use rayon::prelude::*;
        let side = grid_side();
        let hit = (0..=255u8)
            .into_par_iter()
            .map(|r| {
                let mut hit = vec![false; side * side];
                for g in 0..=255u8 {
                    for b in 0..=255u8 {
                        let [_, a, bb] = lab64([r, g, b]);
                        hit[grid_cell(a, bb)] = true;
                    }
                }
                hit
            })
            .reduce(
                || vec![false; side * side],
                |x, y| x.iter().zip(&y).map(|(p, q)| *p || *q).collect(),
            );
        (0..side * side)
            .filter(|&c| hit[c])
            .map(|c| [(c / side) as f32 * GRID - AB_RANGE, (c % side) as f32 * GRID - AB_RANGE])
            .collect()
    })
}

/// Centres per axis.
fn grid_side() -> usize {
    (2.0 * AB_RANGE / GRID) as usize + 1
}

/// The cell of the full grid whose centre is nearest to (a, b), clamped to the grid.
fn grid_cell(a: f64, b: f64) -> usize {
    let side = grid_side();
    let index = |v: f64| (((v + AB_RANGE as f64) / GRID as f64).round().max(0.0) as usize).min(side - 1);
    index(a) * side + index(b)
}

/// The index in [`bins`] of the in-gamut bin nearest to (a, b) (ties: the first).
pub fn nearest_bin(a: f32, b: f32) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (q, c) in bins().iter().enumerate() {
        let d = (c[0] - a).powi(2) + (c[1] - b).powi(2);
        if d < best.0 {
            best = (d, q);
        }
    }
    best.1
}

/// The distribution over [`bins`] of a histogram `counts`, smoothed by a Gaussian of
/// `sigma` ab units between bin centres (Zhang et al. use 5) and normalised to sum 1.
pub fn smoothed_prior(counts: &[f64], sigma: f64) -> Vec<f64> {
    let centres = bins();
    let total: f64 = counts.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let mut smooth = vec![0f64; centres.len()];
    for (i, ci) in centres.iter().enumerate() {
        for (j, cj) in centres.iter().enumerate() {
            let d2 = ((ci[0] - cj[0]) as f64).powi(2) + ((ci[1] - cj[1]) as f64).powi(2);
            smooth[i] += counts[j] / total * (-d2 / (2.0 * sigma * sigma)).exp();
        }
    }
    let sum: f64 = smooth.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    smooth.iter().map(|s| s / sum).collect()
}

/// Zhang et al.'s class-rebalancing weights from a prior over [`bins`]: mixed with the
/// uniform distribution (`(1 - lambda) p + lambda / Q`), inverted, and scaled so that
/// their expectation under the prior is 1.
pub fn rebalancing_weights(prior: &[f64], lambda: f64) -> Vec<f32> {
    let q = prior.len().max(1) as f64;
    let raw: Vec<f64> = prior.iter().map(|p| 1.0 / ((1.0 - lambda) * p + lambda / q)).collect();
    let expectation: f64 = raw.iter().zip(prior).map(|(w, p)| w * p).sum();
    raw.iter().map(|w| (w / expectation) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known Lab values of sRGB primaries, white and mid gray (D65), and of colours from
    /// scripts/lab_reference.py (Python's own floating-point arithmetic, formulas written
    /// out independently).
    #[test]
    fn lab_of_known_colours() {
        let cases: &[([u8; 3], [f32; 3])] = &[
            ([255, 0, 0], [53.2408, 80.0925, 67.2032]),
            ([0, 255, 0], [87.7347, -86.1827, 83.1793]),
            ([0, 0, 255], [32.2970, 79.1875, -107.8602]),
            ([255, 255, 255], [100.0, 0.0, 0.0]),
            ([0, 0, 0], [0.0, 0.0, 0.0]),
            ([128, 128, 128], [53.5850, 0.0, 0.0]),
        ];
        for (rgb, lab) in cases.iter().chain(LAB_REFERENCE) {
            let got = srgb_to_lab(*rgb);
            for k in 0..3 {
                assert!(
                    (got[k] - lab[k]).abs() < 2e-3 * lab[k].abs().max(1.0),
                    "{rgb:?}: {got:?} against {lab:?}"
                );
            }
        }
    }

    /// From scripts/lab_reference.py.
    const LAB_REFERENCE: &[([u8; 3], [f32; 3])] = &[
        ([200, 30, 90], [44.161, 65.807, 10.613]),
        ([12, 180, 240], [68.757, -16.792, -40.343]),
        ([250, 250, 10], [95.463, -21.158, 92.372]),
        ([40, 40, 40], [16.114, -4.6141e-06, 1.8457e-06]),
        ([90, 140, 60], [53.228, -31.786, 36.948]),
        ([1, 2, 3], [0.50983, -0.12245, -0.4706]),
    ];

    /// The tensor lightness of normalised batches agrees with the host conversion.
    #[cfg(feature = "torch")]
    #[test]
    fn lightness_of_normalised_batches_is_the_hosts_l() {
        use crate::train::batches::{MEAN, STD};
        let colours: Vec<[u8; 3]> = LAB_REFERENCE
            .iter()
            .map(|(c, _)| *c)
            .chain([[255, 0, 0], [128, 128, 128]])
            .collect();
        let mut x = vec![0f32; 3 * colours.len()];
        for (p, c) in colours.iter().enumerate() {
            for ch in 0..3 {
                x[ch * colours.len() + p] = (c[ch] as f32 / 255.0 - MEAN) / STD;
            }
        }
        let n = colours.len() as i64;
        let l = lightness_of_normalised(&tch::Tensor::from_slice(&x).view([1, 3, 1, n]));
        assert_eq!(l.size(), [1, 3, 1, n]);
        for (p, c) in colours.iter().enumerate() {
            let want = (srgb_to_lab(*c)[0] / 100.0 - MEAN) / STD;
            for ch in 0..3 {
                let got = l.double_value(&[0, ch, 0, p as i64]) as f32;
                assert!((got - want).abs() < 1e-4, "{c:?}: {got} against {want}");
            }
        }
    }

    #[test]
    fn the_gamut_holds_the_primaries_and_gray_and_its_bins_are_fixed() {
        let b = bins();
        assert_eq!(b.len(), IN_GAMUT_BINS);
        assert_eq!(b, bins(), "computed once");
        assert_eq!(b[nearest_bin(0.0, 0.0)], [0.0, 0.0]);
        assert_eq!(b[nearest_bin(80.09, 67.2)], [80.0, 70.0]);
        // Far outside sRGB: the nearest in-gamut bin, not a grid cell of the corner.
        let corner = b[nearest_bin(-110.0, -110.0)];
        assert!(corner[0] > -110.0 || corner[1] > -110.0, "{corner:?}");
    }

    #[test]
    fn rebalancing_weights_have_expectation_one_under_the_prior_and_favour_rare_bins() {
        let q = bins().len();
        let mut counts = vec![1.0; q];
        let gray = nearest_bin(0.0, 0.0);
        counts[gray] = 1000.0;
        let prior = smoothed_prior(&counts, 5.0);
        assert!((prior.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let w = rebalancing_weights(&prior, 0.5);
        assert_eq!(w.len(), q);
        let expectation: f64 = w.iter().zip(&prior).map(|(w, p)| *w as f64 * p).sum();
        assert!((expectation - 1.0).abs() < 1e-5, "{expectation}");
        assert!(w[gray] < w[(gray + q / 2) % q], "a frequent bin weighs less");
        // lambda = 1: uniform weights.
        assert!(rebalancing_weights(&prior, 1.0).iter().all(|v| (v - 1.0).abs() < 1e-5));
    }
}
