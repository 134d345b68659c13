//! Pixel sizes of a drawn figure, from a function that measures text: the title above, the
//! panels side by side with label areas as wide as their tick labels, and the legend to the
//! right of the panels, as wide as its longest name. So nothing is cut and the legend covers
//! no data; testable without a font.
use super::axes::PlotAxis;
use super::figure::Figure;

/// The kinds of text in a figure, each with its size in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    Title,
    AxisTitle,
    Tick,
    Legend,
}

impl Text {
    pub fn size(self) -> f64 {
        match self {
            Text::Title => 20.0,
            Text::AxisTitle => 17.0,
            Text::Tick => 15.0,
            Text::Legend => 15.0,
        }
    }
}

/// Width and height in pixels of `text` in the given kind of text.
pub type Measure<'a> = &'a dyn Fn(&str, Text) -> (u32, u32);

/// Room around and between the parts of a figure.
pub const MARGIN: u32 = 16;
/// The plot area of a panel at least (inside its axes).
pub const PLOT_WIDTH: u32 = 440;
pub const PLOT_HEIGHT: u32 = 320;
/// Height of one legend entry.
pub const LEGEND_ROW: u32 = 24;
/// Width of the line and marker before each legend name, its gap included.
pub const LEGEND_SAMPLE: u32 = 40;
/// Between an axis and its tick labels: plotters leaves twice the tick mark (5 px).
const TICK_ROOM: u32 = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub title_height: u32,
    /// One panel, its label areas and margins included; panel `i` starts at `i * panel_width`.
    pub panel_width: u32,
    pub panel_height: u32,
    /// Left of the plot area: tick labels and the rotated y title.
    pub y_label_area: u32,
    /// Below the plot area: tick labels and the x title.
    pub x_label_area: u32,
    /// The legend's box, to the right of the last panel, under the title.
    pub legend_width: u32,
    pub legend_height: u32,
}

impl Layout {
    pub fn of(fig: &Figure, measure: Measure) -> Layout {
        let title_height = measure(&fig.title, Text::Title).1 + 2 * MARGIN;
        let axes_y = fig.panels.iter().map(|p| &p.y);
        let axes_x = fig.panels.iter().map(|p| &p.x);
        let y_label_area = axes_y.clone().map(|a| y_label_area(a, measure)).max().unwrap_or(0);
        let x_label_area = axes_x.clone().map(|a| x_label_area(a, measure)).max().unwrap_or(0);
        let plot_width = axes_x.map(|a| plot_width(a, measure)).max().unwrap_or(0).max(PLOT_WIDTH);
        let plot_height = axes_y
            .map(|a| measure(&a.title, Text::AxisTitle).0 + 2 * MARGIN)
            .max()
            .unwrap_or(0)
            .max(PLOT_HEIGHT);
        let panel_width = y_label_area + plot_width + MARGIN;
        let panel_height = MARGIN + plot_height + x_label_area;
        let (legend_width, legend_height) = legend_size(&fig.legend, measure);
        let panels = fig.panels.len().max(1) as u32;
        let title_width = measure(&fig.title, Text::Title).0 + 2 * MARGIN;
        Layout {
            width: (panels * panel_width + legend_width).max(title_width),
            height: title_height + panel_height.max(legend_height + MARGIN),
            title_height,
            panel_width,
            panel_height,
            y_label_area,
            x_label_area,
            legend_width,
            legend_height,
        }
    }
}

/// The legend's width (a sample line, the longest name, margins) and height (a row per
/// name); nothing for no names.
pub fn legend_size(names: &[String], measure: Measure) -> (u32, u32) {
    if names.is_empty() {
        return (0, 0);
    }
    let longest = names.iter().map(|n| measure(n, Text::Legend).0).max().unwrap_or(0);
    (MARGIN + LEGEND_SAMPLE + longest + MARGIN, MARGIN + LEGEND_ROW * names.len() as u32)
}

/// The widest tick label, the room to the axis, and the rotated title's height.
fn y_label_area(axis: &PlotAxis, measure: Measure) -> u32 {
    let widest = axis.ticks.iter().map(|t| measure(&t.label, Text::Tick).0).max().unwrap_or(0);
    widest + TICK_ROOM + measure(&axis.title, Text::AxisTitle).1 + MARGIN
}

/// The tallest tick label, the room to the axis, and the title's height.
fn x_label_area(axis: &PlotAxis, measure: Measure) -> u32 {
    let tallest = axis.ticks.iter().map(|t| measure(&t.label, Text::Tick).1).max().unwrap_or(0);
    tallest + TICK_ROOM + measure(&axis.title, Text::AxisTitle).1 + MARGIN
}

/// Wide enough for the x title and for the tick labels side by side with gaps.
fn plot_width(axis: &PlotAxis, measure: Measure) -> u32 {
    let labels: u32 = axis.ticks.iter().map(|t| measure(&t.label, Text::Tick).0 + MARGIN).sum();
    labels.max(measure(&axis.title, Text::AxisTitle).0 + 2 * MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::axes::{category_axis, data_axis};
    use crate::report::figure::Panel;

    /// Every character 8 px wide and the text 10 px high: predictable sizes.
    fn fixed(text: &str, _: Text) -> (u32, u32) {
        (8 * text.chars().count() as u32, 10)
    }

    fn figure(legend: &[&str]) -> Figure {
        let layers: Vec<String> = (1..=5).map(|i| format!("conv{i}")).collect();
        Figure {
            title: "probes".into(),
            panels: vec![Panel {
                x: category_axis("layer", &layers),
                y: data_axis("top1", &[0.1, 0.5], false),
                lines: Vec::new(),
            }],
            legend: legend.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_legend_is_as_wide_as_its_longest_name_and_a_row_per_name() {
        let long = "CC: Jigsaw++ vgg16-small -> alexnet-small";
        let (w, h) = legend_size(&[long.to_string(), "random".into()], &fixed);
        assert_eq!(w, MARGIN + LEGEND_SAMPLE + 8 * long.len() as u32 + MARGIN);
        assert_eq!(h, MARGIN + 2 * LEGEND_ROW);
        assert_eq!(legend_size(&[], &fixed), (0, 0));
    }

    #[test]
    fn the_legend_stands_right_of_the_panels_and_the_figure_grows_to_hold_it() {
        let short = Layout::of(&figure(&["a"]), &fixed);
        let long = Layout::of(&figure(&["a much longer name of a stage, with its k=16"]), &fixed);
        assert_eq!(short.width, short.panel_width + short.legend_width);
        assert_eq!(long.width - short.width, long.legend_width - short.legend_width);
        let names: Vec<String> = (0..40).map(|i| format!("stage {i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let tall = Layout::of(&figure(&names), &fixed);
        assert!(tall.height >= tall.title_height + tall.legend_height, "{tall:?}");
        assert_eq!(Layout::of(&figure(&[]), &fixed).legend_width, 0);
    }

    #[test]
    fn label_areas_fit_their_labels_and_a_long_title_widens_the_figure() {
        let l = Layout::of(&figure(&["a"]), &fixed);
        assert_eq!(l.y_label_area, 8 * "0.5".len() as u32 + TICK_ROOM + 10 + MARGIN);
        assert_eq!(l.panel_width, l.y_label_area + PLOT_WIDTH + MARGIN);
        let mut f = figure(&["a"]);
        f.title = "t".repeat(200);
        assert_eq!(Layout::of(&f, &fixed).width, 8 * 200 + 2 * MARGIN);
        f.panels[0].y.title = "y".repeat(100);
        assert_eq!(Layout::of(&f, &fixed).panel_height, MARGIN + 800 + 2 * MARGIN + l.x_label_area);
    }
}
