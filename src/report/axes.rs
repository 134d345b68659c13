//! The axes of a plot as numbers: whether swept values go on a log scale, the range an axis
//! shows and where its ticks are. Pure functions; `draw.rs` only places what they decide.

/// How an axis maps its values to positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Positions are `log10` of the values.
    Log,
}

impl Scale {
    /// Log when every value is positive and the largest is at least ten times the smallest
    /// (cluster counts 10, 100, 1000); linear otherwise, also for a single value.
    pub fn for_values(values: &[f64]) -> Scale {
        let finite = || values.iter().copied().filter(|v| v.is_finite());
        let min = finite().fold(f64::INFINITY, f64::min);
        let max = finite().fold(f64::NEG_INFINITY, f64::max);
        if min > 0.0 && max / min >= 10.0 {
            Scale::Log
        } else {
            Scale::Linear
        }
    }

    /// Where `value` goes on the axis.
    pub fn position(self, value: f64) -> f64 {
        match self {
            Scale::Linear => value,
            Scale::Log => value.log10(),
        }
    }
}

/// A tick: its position on the axis and its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub at: f64,
    pub label: String,
}

/// One axis of a panel: its title, the positions it shows (finite, `lo < hi`) and its ticks.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotAxis {
    pub title: String,
    pub range: (f64, f64),
    pub ticks: Vec<Tick>,
}

impl PlotAxis {
    /// The label of the tick at `at` (the nearest one), for the drawing's formatter.
    pub fn label_at(&self, at: f64) -> String {
        self.ticks
            .iter()
            .min_by(|a, b| (a.at - at).abs().total_cmp(&(b.at - at).abs()))
            .map(|t| t.label.clone())
            .unwrap_or_default()
    }
}

/// At most this many labelled ticks on an axis of swept values.
pub const MAX_VALUE_TICKS: usize = 10;

/// One slot per category at 0, 1, ..., with half a slot of room on either side.
pub fn category_axis(title: &str, names: &[String]) -> PlotAxis {
    let ticks = names
        .iter()
        .enumerate()
        .map(|(i, n)| Tick {
            at: i as f64,
            label: n.clone(),
        })
        .collect();
    PlotAxis {
        title: title.to_string(),
        range: (-0.5, names.len().max(1) as f64 - 0.5),
        ticks,
    }
}

/// An axis of swept values (`(value, as written)`): a tick at each distinct value (every
/// n-th of many), the range padded so that markers at the ends are not cut.
pub fn value_axis(title: &str, values: &[(f64, String)], scale: Scale) -> PlotAxis {
    let mut points: Vec<(f64, String)> = values
        .iter()
        .map(|(v, s)| (scale.position(*v), s.clone()))
        .filter(|(p, _)| p.is_finite())
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.dedup_by(|b, a| a.0 == b.0);
    let every = points.len().div_ceil(MAX_VALUE_TICKS).max(1);
    let last = points.len().saturating_sub(1);
    let ticks = points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i == last)
        .map(|(_, (at, label))| Tick {
            at: *at,
            label: label.clone(),
        })
        .collect();
    let positions: Vec<f64> = points.iter().map(|(p, _)| *p).collect();
    PlotAxis {
        title: title.to_string(),
        range: padded_range(&positions, 0.08),
        ticks,
    }
}

/// An axis of measured numbers (a metric, a loss, epochs): the padded range of the finite
/// `values` and round ticks inside it (whole numbers only when `whole`).
pub fn data_axis(title: &str, values: &[f64], whole: bool) -> PlotAxis {
    let range = padded_range(values, 0.06);
    let ticks = nice_ticks(range.0, range.1, 6, whole);
    PlotAxis {
        title: title.to_string(),
        range,
        ticks,
    }
}

/// The smallest and largest finite value, widened by `pad` of the span on each side; a
/// single value gets room of a tenth of itself (or 0.5 around zero); nothing gives (0, 1).
pub fn padded_range(values: &[f64], pad: f64) -> (f64, f64) {
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let room = if span > 0.0 && span.is_finite() {
        span * pad
    } else if lo != 0.0 {
        lo.abs() * 0.1
    } else {
        0.5
    };
    let range = (lo - room, hi + room);
    if range.0.is_finite() && range.1.is_finite() && range.0 < range.1 {
        range
    } else {
        (lo.max(f64::MIN / 4.0), hi.min(f64::MAX / 4.0) + 1.0)
    }
}

/// Ticks at multiples of a round step (1, 2 or 5 times a power of ten) inside `lo..=hi`,
/// about `target` of them, labelled with the decimals the step needs.
pub fn nice_ticks(lo: f64, hi: f64, target: usize, whole: bool) -> Vec<Tick> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) || target < 2 {
        return Vec::new();
    }
    let mut step = round_step(span / (target - 1) as f64);
    if whole {
        step = step.max(1.0).round();
    }
    let first = (lo / step).ceil();
    let last = (hi / step).floor();
    if !(first.is_finite() && last.is_finite()) || last - first > 100.0 {
        return Vec::new();
    }
    let decimals = decimals_for(step);
    let mut ticks = Vec::new();
    let mut i = first;
    while i <= last {
        let at = i * step;
        // `-0.0` reads badly.
        let at = if at == 0.0 { 0.0 } else { at };
        ticks.push(Tick {
            at,
            label: format!("{at:.decimals$}"),
        });
        i += 1.0;
    }
    ticks
}

/// The round step (1, 2 or 5 times a power of ten) nearest to `raw`.
fn round_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    let mantissa = raw / power;
    let m = if mantissa < 1.5 {
        1.0
    } else if mantissa < 3.0 {
        2.0
    } else if mantissa < 7.0 {
        5.0
    } else {
        10.0
    };
    m * power
}

/// Decimals that show a multiple of `step` exactly (0.25 needs 2; 5 needs 0).
fn decimals_for(step: f64) -> usize {
    (0..12)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6
        })
        .unwrap_or(12)
}

/// The offset of line `index` of `count` at one x, so that error bars at the same x stand
/// side by side: spread over at most 30% of `gap` (the distance between neighbouring xs).
pub fn dodge(index: usize, count: usize, gap: f64) -> f64 {
    if count < 2 || !(gap.is_finite() && gap > 0.0) {
        return 0.0;
    }
    let step = (gap * 0.3 / (count - 1) as f64).min(gap * 0.06);
    (index as f64 - (count - 1) as f64 / 2.0) * step
}

/// The smallest distance between neighbouring distinct positions (1 when there are fewer
/// than two).
pub fn smallest_gap(positions: &[f64]) -> f64 {
    let mut p: Vec<f64> = positions.iter().copied().filter(|v| v.is_finite()).collect();
    p.sort_by(f64::total_cmp);
    p.dedup();
    let gap = p.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
    if gap.is_finite() && gap > 0.0 {
        gap
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(a: &PlotAxis) -> Vec<&str> {
        a.ticks.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn log_scale_only_for_positive_values_spanning_a_factor_of_ten() {
        assert_eq!(Scale::for_values(&[4.0, 16.0, 64.0]), Scale::Log);
        assert_eq!(Scale::for_values(&[10.0, 100.0]), Scale::Log);
        assert_eq!(Scale::for_values(&[4.0, 16.0]), Scale::Linear);
        assert_eq!(Scale::for_values(&[0.0, 100.0]), Scale::Linear, "zero has no logarithm");
        assert_eq!(Scale::for_values(&[-1.0, 100.0]), Scale::Linear);
        assert_eq!(Scale::for_values(&[16.0]), Scale::Linear);
        assert_eq!(Scale::for_values(&[]), Scale::Linear);
        assert_eq!(Scale::for_values(&[f64::NAN, 1.0, 10.0]), Scale::Log, "NaN is ignored");
    }

    #[test]
    fn swept_values_get_a_tick_each_at_their_log_position() {
        let values: Vec<(f64, String)> = [64.0, 4.0, 16.0, 16.0].iter().map(|v| (*v, format!("{v}"))).collect();
        let a = value_axis("stages.clusters.k", &values, Scale::Log);
        assert_eq!(labels(&a), ["4", "16", "64"], "sorted, duplicates once");
        assert!((a.ticks[1].at - 16f64.log10()).abs() < 1e-12);
        let (lo, hi) = a.range;
        assert!(lo < 4f64.log10() && hi > 64f64.log10(), "room for the end markers: {:?}", a.range);
        assert_eq!(a.label_at(1.2), "16");
    }

    #[test]
    fn many_swept_values_are_thinned_keeping_both_ends() {
        let values: Vec<(f64, String)> = (1..=25).map(|v| (v as f64, v.to_string())).collect();
        let a = value_axis("k", &values, Scale::Linear);
        assert!(a.ticks.len() <= MAX_VALUE_TICKS + 1, "{}", a.ticks.len());
        assert_eq!(a.ticks.first().unwrap().label, "1");
        assert_eq!(a.ticks.last().unwrap().label, "25");
    }

    #[test]
    fn a_single_value_or_none_still_gives_a_valid_range() {
        let one = value_axis("k", &[(8.0, "8".into())], Scale::Linear);
        assert!((one.range.0 - 7.2).abs() < 1e-12 && (one.range.1 - 8.8).abs() < 1e-12);
        assert_eq!(labels(&one), ["8"]);
        let none = value_axis("k", &[], Scale::Linear);
        assert_eq!((none.range, none.ticks.len()), ((0.0, 1.0), 0));
        assert_eq!(padded_range(&[0.0], 0.1), (-0.5, 0.5));
        assert_eq!(padded_range(&[f64::NAN, f64::INFINITY], 0.1), (0.0, 1.0));
        let (lo, hi) = padded_range(&[f64::MAX, -f64::MAX], 0.1);
        assert!(lo.is_finite() && hi.is_finite() && lo < hi);
    }

    #[test]
    fn categories_sit_at_whole_positions_with_half_a_slot_of_room() {
        let names: Vec<String> = ["conv1", "conv2", "conv3"].map(String::from).to_vec();
        let a = category_axis("layer", &names);
        assert_eq!(a.range, (-0.5, 2.5));
        assert_eq!(a.label_at(2.0), "conv3");
        assert_eq!(category_axis("layer", &[]).range, (-0.5, 0.5));
    }

    #[test]
    fn data_ticks_are_round_and_inside_the_range() {
        let a = data_axis("top1", &[0.21, 0.47], false);
        let (lo, hi) = a.range;
        assert!(a.ticks.iter().all(|t| t.at >= lo && t.at <= hi));
        assert_eq!(labels(&a), ["0.20", "0.25", "0.30", "0.35", "0.40", "0.45"]);
        let epochs = data_axis("epoch", &[1.0, 3.0], true);
        assert_eq!(labels(&epochs), ["1", "2", "3"]);
        let flat = data_axis("loss", &[2.0, 2.0], false);
        assert!(flat.range.0 < 2.0 && flat.range.1 > 2.0 && !flat.ticks.is_empty());
        assert_eq!(nice_ticks(1.0, 1.0, 6, false), Vec::<Tick>::new());
        assert_eq!(nice_ticks(f64::NAN, 1.0, 6, false), Vec::<Tick>::new());
        assert_eq!(labels(&data_axis("x", &[-1.0, 1.0], false)), ["-1.0", "-0.5", "0.0", "0.5", "1.0"]);
        assert!(labels(&data_axis("x", &[-0.1, 0.1], false)).contains(&"0.00"), "no -0.00");
    }

    #[test]
    fn lines_at_one_x_stand_side_by_side_within_the_gap() {
        assert_eq!(dodge(0, 1, 1.0), 0.0);
        let offsets: Vec<f64> = (0..5).map(|i| dodge(i, 5, 1.0)).collect();
        assert!((offsets[0] + offsets[4]).abs() < 1e-12 && offsets[2] == 0.0);
        assert!(offsets[4] - offsets[0] <= 0.3 + 1e-12);
        assert!(offsets.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(dodge(1, 2, f64::NAN), 0.0);
        assert_eq!(smallest_gap(&[0.0, 0.6, 2.0, 0.6]), 0.6);
        assert_eq!(smallest_gap(&[3.0]), 1.0);
    }
}
