//! What a plot shows, in axis positions: its panels (axes and lines) and the names of its
//! series in legend order. Built from a table (`table_plot.rs`) or from training histories
//! (`curves.rs`); `draw.rs` turns it into SVG and PNG.
use super::axes::PlotAxis;

#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub title: String,
    /// Side by side, left to right.
    pub panels: Vec<Panel>,
    /// One name per series: series `i` has the `i`-th colour and marker in every panel.
    pub legend: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub x: PlotAxis,
    pub y: PlotAxis,
    pub lines: Vec<Line>,
}

impl Panel {
    /// Whether nothing is drawn in it (it then says that there are no results yet).
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.points.is_empty())
    }
}

/// One series in one panel, its points in x order (finite positions and values only).
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Index into `Figure::legend`.
    pub series: usize,
    pub points: Vec<Point>,
    pub spread: Spread,
    /// A marker on every n-th point (1: on each).
    pub marker_every: usize,
}

/// How a point's spread is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    /// An error bar at each point (table plots: few points).
    Bars,
    /// A shaded band along the line (training curves: many points).
    Band,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// Half the error bar or band (the standard deviation); 0 for none.
    pub spread: f64,
}

impl Point {
    /// A point if `x` and `y` are finite; a spread that is not finite or not positive is none.
    pub fn checked(x: f64, y: f64, spread: f64) -> Option<Point> {
        (x.is_finite() && y.is_finite()).then(|| Point {
            x,
            y,
            spread: if spread.is_finite() && spread > 0.0 { spread } else { 0.0 },
        })
    }

    /// The values the y axis must show: the point and the ends of its spread.
    pub fn extent(&self) -> [f64; 3] {
        [self.y - self.spread, self.y, self.y + self.spread]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_refuse_what_cannot_be_placed() {
        assert_eq!(Point::checked(f64::NAN, 1.0, 0.0), None);
        assert_eq!(Point::checked(1.0, f64::INFINITY, 0.0), None);
        assert_eq!(Point::checked(1.0, 2.0, f64::NAN).unwrap().spread, 0.0);
        assert_eq!(Point::checked(1.0, 2.0, -1.0).unwrap().spread, 0.0);
        assert_eq!(Point::checked(1.0, 2.0, 0.5).unwrap().extent(), [1.5, 2.0, 2.5]);
    }
}
