//! Draws a [`Figure`] with plotters as SVG text and as PNG bytes, both from one layout:
//! text in the embedded DejaVu Sans (no system fonts needed), the Okabe-Ito colours with a
//! marker shape per series (open markers on dashed lines for the second eight), error bars
//! or bands, and the legend beside the panels. The same figure gives the same bytes.
use std::ops::Range;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axes::PlotAxis;
use super::bitmap::GlyphBitmap;
use super::figure::{Figure, Line, Panel, Point, Spread};
use super::layout::{Layout, Text, LEGEND_ROW, LEGEND_SAMPLE, MARGIN};
use super::typeface::{Typeface, FONT};

/// The family the font is registered under with plotters; an SVG names it, so a viewer
/// shows the text in its own sans-serif.
const FAMILY: &str = "sans-serif";

/// Okabe & Ito's colour-blind-safe palette (yellow last: it is faint on white).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xF0, 0xE4, 0x42),
];
/// Seven shapes against eight colours: the first 56 series differ in the pair.
const MARKERS: usize = 7;
/// A dashed line's dashes and the gaps between them, in pixels.
const DASH: (i32, i32) = (7, 4);
const GRID: RGBColor = RGBColor(0xE3, 0xE3, 0xE3);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x77, 0x77, 0x77);

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("the embedded font cannot be read")]
    Font,
    #[error("drawing the plot: {0}")]
    Draw(String),
    #[error("encoding the PNG: {0}")]
    Png(#[from] image::ImageError),
}

fn draw_error(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// The figure as an SVG document.
pub fn svg(fig: &Figure) -> Result<String, PlotError> {
    let layout = Layout::of(fig, &measure_with(typeface()?));
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (layout.width, layout.height)).into_drawing_area();
        draw_figure(&root, fig, &layout)?;
    }
    Ok(text)
}

/// The figure as a PNG image (8-bit RGB), pixel for pixel the SVG's layout.
pub fn png(fig: &Figure) -> Result<Vec<u8>, PlotError> {
    let face = typeface()?;
    let layout = Layout::of(fig, &measure_with(face));
    let (w, h) = (layout.width, layout.height);
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = GlyphBitmap::new(&mut pixels, (w, h), face).into_drawing_area();
        draw_figure(&root, fig, &layout)?;
    }
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &pixels,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// The embedded font, also registered with plotters (once per process), which measures
/// text with it where it does so itself.
fn typeface() -> Result<&'static Typeface, PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    match Typeface::embedded() {
        Some(face) if registered => Ok(face),
        _ => Err(PlotError::Font),
    }
}

/// The layout's measure: `text` in the embedded font at the size of its kind.
fn measure_with(face: &'static Typeface) -> impl Fn(&str, Text) -> (u32, u32) {
    move |text, kind| face.size(text, kind.size())
}

fn font(kind: Text) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), kind.size(), FontStyle::Normal)
}

fn text_style(kind: Text, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    font(kind).color(&color).pos(Pos::new(h, v))
}

/// How a series is drawn: its colour and marker shape (no pair of the two repeats within
/// 56 series) and, for every other round of the eight colours (series 9 to 16, 25 to 32,
/// ...), an open marker on a dashed line, so that the ninth series is not the first in
/// another shape only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SeriesStyle {
    /// Index into [`PALETTE`].
    color: usize,
    /// Circle, square, triangle, diamond, downward triangle, cross, plus.
    marker: usize,
    /// An open marker on a dashed line.
    open: bool,
}

impl SeriesStyle {
    fn of(series: usize) -> SeriesStyle {
        SeriesStyle {
            color: series % PALETTE.len(),
            marker: series % MARKERS,
            open: (series / PALETTE.len()) % 2 == 1,
        }
    }

    fn rgb(self) -> RGBColor {
        PALETTE[self.color]
    }
}

/// A line through `points` (in a series' colour, dashed for an open style).
fn draw_line_series<DB: DrawingBackend>(chart: &mut Chart<'_, DB>, points: Vec<(f64, f64)>, style: SeriesStyle) -> Result<(), PlotError> {
    let stroke = style.rgb().stroke_width(2);
    if style.open {
        chart
            .draw_series(DashedLineSeries::new(points, DASH.0, DASH.1, stroke))
            .map_err(draw_error)?;
    } else {
        chart.draw_series(LineSeries::new(points, stroke)).map_err(draw_error)?;
    }
    Ok(())
}

fn draw_figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure, layout: &Layout) -> Result<(), PlotError> {
    root.fill(&WHITE).map_err(draw_error)?;
    let title = text_style(Text::Title, INK, HPos::Center, VPos::Center);
    root.draw_text(&fig.title, &title, (layout.width as i32 / 2, layout.title_height as i32 / 2))
        .map_err(draw_error)?;
    for (i, panel) in fig.panels.iter().enumerate() {
        let left = i as u32 * layout.panel_width;
        let area = root
            .clone()
            .shrink((left, layout.title_height), (layout.panel_width, layout.panel_height));
        draw_panel(root, &area, panel, layout)?;
    }
    let legend_left = fig.panels.len().max(1) as u32 * layout.panel_width;
    draw_legend(root, &fig.legend, (legend_left as i32, (layout.title_height + MARGIN) as i32))?;
    root.present().map_err(draw_error)
}

/// One panel: axes with their ticks and titles, then its lines (or a note that there are
/// no results yet).
fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    layout: &Layout,
) -> Result<(), PlotError> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(MARGIN)
        .margin_right(MARGIN)
        .x_label_area_size(layout.x_label_area)
        .y_label_area_size(layout.y_label_area)
        .build_cartesian_2d(Ticked::of(&panel.x), Ticked::of(&panel.y))
        .map_err(draw_error)?;
    draw_mesh(&mut chart, panel)?;
    draw_axis_titles(root, area, panel, &chart)?;
    if panel.is_empty() {
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let note = text_style(Text::AxisTitle, MUTED, HPos::Center, VPos::Center);
        return root
            .draw_text("No results yet", &note, ((xs.start + xs.end) / 2, (ys.start + ys.end) / 2))
            .map_err(draw_error);
    }
    draw_lines(root, &mut chart, &panel.lines)
}

/// The axes, their tick labels and a light grid at the ticks.
fn draw_mesh<DB: DrawingBackend>(chart: &mut Chart<'_, DB>, panel: &Panel) -> Result<(), PlotError> {
    let x_label = |v: &f64| panel.x.label_at(*v);
    let y_label = |v: &f64| panel.y.label_at(*v);
    chart
        .configure_mesh()
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(font(Text::Tick).color(&INK))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .draw()
        .map_err(draw_error)
}

/// Bands under everything, then the lines, then error bars and markers on top.
fn draw_lines<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &mut Chart<'_, DB>, lines: &[Line]) -> Result<(), PlotError> {
    for line in lines.iter().filter(|l| l.spread == Spread::Band) {
        draw_band(chart, line)?;
    }
    for line in lines {
        let points = line.points.iter().map(|p| (p.x, p.y)).collect();
        draw_line_series(chart, points, SeriesStyle::of(line.series))?;
    }
    for line in lines {
        let style = SeriesStyle::of(line.series);
        for (i, p) in line.points.iter().enumerate() {
            if line.spread == Spread::Bars && p.spread > 0.0 {
                draw_error_bar(root, chart, p, style.rgb())?;
            }
            if i % line.marker_every.max(1) == 0 {
                draw_marker(root, style, chart.backend_coord(&(p.x, p.y)))?;
            }
        }
    }
    Ok(())
}

/// The x title centred under the plot at the bottom of the panel; the y title turned a
/// quarter left, centred beside the plot at the panel's left edge (plotters would centre
/// it on that edge, half outside the figure).
fn draw_axis_titles<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    chart: &Chart<'_, DB>,
) -> Result<(), PlotError> {
    let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();
    let (panel_x, panel_y) = area.get_pixel_range();
    let x_style = text_style(Text::AxisTitle, INK, HPos::Center, VPos::Bottom);
    let x_at = ((plot_x.start + plot_x.end) / 2, panel_y.end - MARGIN as i32 / 2);
    root.draw_text(&panel.x.title, &x_style, x_at).map_err(draw_error)?;
    let y_style = text_style(Text::AxisTitle, INK, HPos::Center, VPos::Top).transform(FontTransform::Rotate270);
    let y_at = (panel_x.start + MARGIN as i32 / 2, (plot_y.start + plot_y.end) / 2);
    root.draw_text(&panel.y.title, &y_style, y_at).map_err(draw_error)
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// A linear axis with exactly the figure's ticks (plotters' own picks its own).
struct Ticked {
    range: (f64, f64),
    ticks: Vec<f64>,
}

impl Ticked {
    fn of(axis: &PlotAxis) -> Ticked {
        Ticked {
            range: axis.range,
            ticks: axis.ticks.iter().map(|t| t.at).collect(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = self.range;
        let along = (value - lo) / (hi - lo);
        limit.0 + (f64::from(limit.1 - limit.0) * along).round() as i32
    }

    /// The ticks as the bold grid lines; no light ones.
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.0..self.range.1
    }
}

/// The band of ± the spread around a line, translucent in its colour.
fn draw_band<DB: DrawingBackend>(chart: &mut Chart<'_, DB>, line: &Line) -> Result<(), PlotError> {
    if line.points.iter().all(|p| p.spread == 0.0) {
        return Ok(());
    }
    let upper = line.points.iter().map(|p| (p.x, p.y + p.spread));
    let lower = line.points.iter().rev().map(|p| (p.x, p.y - p.spread));
    let outline: Vec<(f64, f64)> = upper.chain(lower).collect();
    let fill = SeriesStyle::of(line.series).rgb().mix(0.18).filled();
    chart
        .draw_series(std::iter::once(Polygon::new(outline, fill)))
        .map_err(draw_error)?;
    Ok(())
}

/// A vertical bar from `y - spread` to `y + spread` with caps.
fn draw_error_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart<'_, DB>,
    p: &Point,
    color: RGBColor,
) -> Result<(), PlotError> {
    let (x, top) = chart.backend_coord(&(p.x, p.y + p.spread));
    let (_, bottom) = chart.backend_coord(&(p.x, p.y - p.spread));
    let style = color.stroke_width(1);
    for path in [
        vec![(x, top), (x, bottom)],
        vec![(x - 4, top), (x + 4, top)],
        vec![(x - 4, bottom), (x + 4, bottom)],
    ] {
        root.draw(&PathElement::new(path, style)).map_err(draw_error)?;
    }
    Ok(())
}

/// The marker of a series centred at the pixel `(x, y)`: circle, square, triangle,
/// diamond, downward triangle, cross, plus; filled, or (open) white inside a coloured edge.
fn draw_marker<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, style: SeriesStyle, (x, y): (i32, i32)) -> Result<(), PlotError> {
    let color = style.rgb();
    let stroke = color.stroke_width(2);
    let r = 5;
    // A filled outline: in the colour, or white with the colour around it.
    let shape = |points: Vec<(i32, i32)>| -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        if style.open {
            root.draw(&Polygon::new(points.clone(), WHITE.filled()))?;
            let mut closed = points;
            closed.push(closed[0]);
            root.draw(&PathElement::new(closed, stroke))
        } else {
            root.draw(&Polygon::new(points, color.filled()))
        }
    };
    let result = match style.marker {
        0 if style.open => root
            .draw(&Circle::new((x, y), r - 1, WHITE.filled()))
            .and_then(|_| root.draw(&Circle::new((x, y), r - 1, stroke))),
        0 => root.draw(&Circle::new((x, y), r - 1, color.filled())),
        1 => shape(vec![
            (x - r + 1, y - r + 1),
            (x + r - 1, y - r + 1),
            (x + r - 1, y + r - 1),
            (x - r + 1, y + r - 1),
        ]),
        2 => shape(vec![(x, y - r - 1), (x + r, y + r - 1), (x - r, y + r - 1)]),
        3 => shape(vec![(x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y)]),
        4 => shape(vec![(x, y + r + 1), (x + r, y - r + 1), (x - r, y - r + 1)]),
        5 => root
            .draw(&PathElement::new(vec![(x - r, y - r), (x + r, y + r)], stroke))
            .and_then(|_| root.draw(&PathElement::new(vec![(x - r, y + r), (x + r, y - r)], stroke))),
        _ => root
            .draw(&PathElement::new(vec![(x - r - 1, y), (x + r + 1, y)], stroke))
            .and_then(|_| root.draw(&PathElement::new(vec![(x, y - r - 1), (x, y + r + 1)], stroke))),
    };
    result.map_err(draw_error)
}

/// One row per series from `(left, top)`: a short line with the series' marker, its name.
fn draw_legend<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, names: &[String], (left, top): (i32, i32)) -> Result<(), PlotError> {
    let style = text_style(Text::Legend, INK, HPos::Left, VPos::Center);
    let sample = (LEGEND_SAMPLE - 12) as i32;
    for (i, name) in names.iter().enumerate() {
        let y = top + MARGIN as i32 / 2 + i as i32 * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
        let x = left + MARGIN as i32;
        let series = SeriesStyle::of(i);
        let stroke = series.rgb().stroke_width(2);
        let sample_line = vec![(x, y), (x + sample, y)];
        if series.open {
            root.draw(&DashedPathElement::new(sample_line, DASH.0, DASH.1, stroke))
        } else {
            root.draw(&PathElement::new(sample_line, stroke))
        }
        .map_err(draw_error)?;
        draw_marker(root, series, (x + sample / 2, y))?;
        root.draw_text(name, &style, (x + LEGEND_SAMPLE as i32, y)).map_err(draw_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::axes::{category_axis, data_axis};

    fn figure() -> Figure {
        let layers: Vec<String> = ["conv1", "conv2"].map(String::from).to_vec();
        let line = |series, y: f64| Line {
            series,
            points: vec![
                Point { x: 0.0, y, spread: 0.02 },
                Point {
                    x: 1.0,
                    y: y + 0.1,
                    spread: 0.0,
                },
            ],
            spread: Spread::Bars,
            marker_every: 1,
        };
        Figure {
            title: "probes & more".into(),
            panels: vec![Panel {
                x: category_axis("layer", &layers),
                y: data_axis("top1", &[0.1, 0.5], false),
                lines: vec![line(0, 0.2), line(1, 0.3)],
            }],
            legend: vec!["HOG → k-means".into(), "CC: Jigsaw++ vgg16-small -> alexnet-small".into()],
        }
    }

    #[test]
    fn svg_names_the_axes_and_the_series_and_is_the_same_every_time() {
        let s = svg(&figure()).unwrap();
        assert!(s.starts_with("<svg"), "{}", &s[..40.min(s.len())]);
        for text in ["layer", "top1", "HOG → k-means", "conv2", "probes &amp; more"] {
            assert!(s.contains(&format!(">\n{text}\n</text>")), "{text} missing");
        }
        assert_eq!(s, svg(&figure()).unwrap());
    }

    #[test]
    fn png_is_a_png_of_the_layout_size_and_the_same_every_time() {
        let fig = figure();
        let bytes = png(&fig).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&bytes).unwrap();
        let layout = Layout::of(&fig, &measure_with(typeface().unwrap()));
        assert_eq!((img.width(), img.height()), (layout.width, layout.height));
        assert_eq!(bytes, png(&fig).unwrap());
    }

    #[test]
    fn sixteen_series_get_sixteen_distinct_colour_and_marker_pairs() {
        let styles: Vec<SeriesStyle> = (0..16).map(SeriesStyle::of).collect();
        let pairs: std::collections::HashSet<(usize, (usize, bool))> = styles.iter().map(|s| (s.color, (s.marker, s.open))).collect();
        assert_eq!(pairs.len(), 16);
        // The second eight repeat the colours, each with another shape, open, on a dashed line.
        for i in 0..8 {
            let (first, second) = (styles[i], styles[i + 8]);
            assert_eq!(first.color, second.color);
            assert_ne!(first.marker, second.marker, "series {i} and {}", i + 8);
            assert!(!first.open && second.open);
        }
        // Colour and shape alone do not repeat within 56 series.
        let shapes: std::collections::HashSet<(usize, usize)> = (0..56).map(SeriesStyle::of).map(|s| (s.color, s.marker)).collect();
        assert_eq!(shapes.len(), 56);
    }

    #[test]
    fn the_ninth_series_is_drawn_dashed_with_an_open_marker() {
        let mut fig = figure();
        let line = fig.panels[0].lines[0].clone();
        fig.panels[0].lines = (0..9).map(|series| Line { series, ..line.clone() }).collect();
        fig.legend = (0..9).map(|i| format!("series {i}")).collect();
        let svg = svg(&fig).unwrap();
        // Series 0 and 8 share the blue: one solid line, then dashes; the ninth's circle is
        // white inside a blue edge.
        let blue = "stroke=\"#0072B2\"";
        let polylines = svg.lines().filter(|l| l.contains("<polyline") && l.contains(blue)).count();
        assert!(polylines > 4, "dashes of series 8 (and its legend sample): {polylines}");
        assert!(svg.contains("<circle") && svg.contains("fill=\"#FFFFFF\""), "an open marker");
        assert!(png(&fig).is_ok());
    }

    #[test]
    fn an_empty_figure_still_draws() {
        let mut fig = figure();
        fig.panels[0].lines.clear();
        fig.legend.clear();
        assert!(svg(&fig).unwrap().contains("No results yet"));
        assert!(png(&fig).is_ok());
        fig.panels.clear();
        assert!(png(&fig).is_ok() && svg(&fig).is_ok());
    }
}
