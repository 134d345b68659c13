//! Which tables get a plot, and what it shows. The rule: a swept key whose values are all
//! numbers goes on x (the columns' key when both axes are such keys), on a log scale when
//! its values span a factor of ten; otherwise the layers go on x, as categories in the
//! table's order; a table with neither has no plot. The other axis gives the lines, one per
//! value (row label, layer), each point a cell's mean with an error bar of ± its standard
//! deviation where the cell has several values. Reference values are not drawn.
use super::axes::{category_axis, data_axis, dodge, smallest_gap, value_axis, PlotAxis, Scale};
use super::figure::{Figure, Line, Panel, Point, Spread};
use super::{ResultRow, Table};
use crate::plan::{Axis, Plan, TableSpec, NO_LAYER};

/// What a table's plot puts on x and what gives its lines.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotAxes {
    pub x: Axis,
    pub lines: Axis,
    /// Whether x is a swept key with numeric values (else the layers, as categories).
    pub numeric: bool,
}

/// The axes of `spec`'s plot, or `None` for a table that is not plotted.
pub fn plot_axes(spec: &TableSpec, plan: &Plan) -> Option<PlotAxes> {
    let numeric = |a: &Axis| matches!(a, Axis::Key(k) if !swept_numbers(plan, k).is_empty());
    let (x, lines, numeric) = if numeric(&spec.columns) {
        (&spec.columns, &spec.rows, true)
    } else if numeric(&spec.rows) {
        (&spec.rows, &spec.columns, true)
    } else if spec.columns == Axis::Layer {
        (&spec.columns, &spec.rows, false)
    } else if spec.rows == Axis::Layer {
        (&spec.rows, &spec.columns, false)
    } else {
        return None;
    };
    Some(PlotAxes {
        x: x.clone(),
        lines: lines.clone(),
        numeric,
    })
}

/// The plot of `spec` from the results, or `None` for a table that is not plotted.
pub fn table_figure(spec: &TableSpec, plan: &Plan, rows: &[ResultRow]) -> Option<Figure> {
    let axes = plot_axes(spec, plan)?;
    // The table turned so that each row is a line and each column an x.
    let turned = TableSpec {
        rows: axes.lines.clone(),
        columns: axes.x.clone(),
        references: Vec::new(),
        ..spec.clone()
    };
    let table = Table::build(&turned, plan, rows);
    // A metric without layers (pretext accuracy, NMI) in a layer table: one point per row
    // above the metric's name says nothing a plot should.
    if axes.x == Axis::Layer && !table.columns.is_empty() && table.column_values.iter().all(|c| c == NO_LAYER) {
        return None;
    }
    let (mut x, positions) = match &axes.x {
        Axis::Key(key) if axes.numeric => swept_x(plan, key, &table),
        _ => layer_x(&table),
    };
    let lines = table_lines(&table, &positions);
    widen_to_points(&mut x, &lines);
    let extents: Vec<f64> = lines.iter().flat_map(|l| &l.points).flat_map(Point::extent).collect();
    Some(Figure {
        title: spec.caption.clone().unwrap_or_else(|| spec.name.clone()),
        panels: vec![Panel {
            x,
            y: data_axis(&y_title(&table), &extents, false),
            lines,
        }],
        legend: table.rows.clone(),
    })
}

/// The distinct values the sweep gives `key`, in sweep order, if every one is a finite
/// number (else none).
fn swept_numbers(plan: &Plan, key: &str) -> Vec<(f64, String)> {
    let mut out: Vec<(f64, String)> = Vec::new();
    for (_, value) in plan.variants.iter().flat_map(|v| &v.swept).filter(|(k, _)| k == key) {
        let Some(number) = parse_number(value) else {
            return Vec::new();
        };
        if !out.iter().any(|(_, s)| s == value) {
            out.push((number, value.clone()));
        }
    }
    out
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// x for a numeric swept key: every value of the sweep (results or not), on the scale they
/// call for; and each column's position.
fn swept_x(plan: &Plan, key: &str, table: &Table) -> (PlotAxis, Vec<Option<f64>>) {
    let values = swept_numbers(plan, key);
    let numbers: Vec<f64> = values.iter().map(|(v, _)| *v).collect();
    let scale = Scale::for_values(&numbers);
    let title = match scale {
        Scale::Log => format!("{key} (log scale)"),
        Scale::Linear => key.to_string(),
    };
    let positions = table
        .column_values
        .iter()
        .map(|v| parse_number(v).map(|n| scale.position(n)).filter(|p| p.is_finite()))
        .collect();
    (value_axis(&title, &values, scale), positions)
}

/// x for the layers: one category per column, in the table's order.
fn layer_x(table: &Table) -> (PlotAxis, Vec<Option<f64>>) {
    let positions = (0..table.columns.len()).map(|i| Some(i as f64)).collect();
    (category_axis("layer", &table.columns), positions)
}

/// One line per row of the turned table, its points nudged sideways (by the row's place
/// among the lines) so that error bars at one x do not hide each other.
fn table_lines(table: &Table, positions: &[Option<f64>]) -> Vec<Line> {
    let placed: Vec<f64> = positions.iter().flatten().copied().collect();
    let gap = smallest_gap(&placed);
    let count = table.rows.len();
    table
        .cells
        .iter()
        .enumerate()
        .map(|(row, cells)| {
            let shift = dodge(row, count, gap);
            let mut points: Vec<Point> = cells
                .iter()
                .zip(positions)
                .filter_map(|(cell, x)| {
                    let (cell, x) = (cell.as_ref()?, (*x)?);
                    let spread = if cell.n > 1 { cell.std } else { 0.0 };
                    Point::checked(x + shift, cell.mean, spread)
                })
                .collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            Line {
                series: row,
                points,
                spread: Spread::Bars,
                marker_every: 1,
            }
        })
        .collect()
}

/// Widens the x range where nudged points would fall outside it.
fn widen_to_points(x: &mut PlotAxis, lines: &[Line]) {
    let room = (x.range.1 - x.range.0) * 0.04;
    for p in lines.iter().flat_map(|l| &l.points) {
        x.range.0 = x.range.0.min(p.x - room);
        x.range.1 = x.range.1.max(p.x + room);
    }
}

/// The metric, and what a point is where cells hold several values.
fn y_title(table: &Table) -> String {
    match table.usual_n() {
        Some(n) if n > 1 => format!("{} (mean ± std over {n} seeds)", table.metric),
        _ => table.metric.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::snapshot_tests::fixture;

    fn spec(plan: &Plan, name: &str) -> TableSpec {
        plan.tables.iter().find(|t| t.name == name).unwrap().clone()
    }

    #[test]
    fn a_numeric_swept_key_goes_on_x_else_the_layers_and_other_tables_have_no_plot() {
        let (plan, _) = fixture();
        let quality = spec(&plan, "cluster_quality");
        let axes = plot_axes(&quality, &plan).unwrap();
        assert_eq!(
            (axes.x, axes.lines, axes.numeric),
            (Axis::Key("stages.clusters.k".into()), Axis::Stage, true)
        );
        let turned = TableSpec {
            rows: quality.columns.clone(),
            columns: Axis::Layer,
            ..quality.clone()
        };
        let axes = plot_axes(&turned, &plan).unwrap();
        assert_eq!(
            (axes.x, axes.lines),
            (Axis::Key("stages.clusters.k".into()), Axis::Layer),
            "on rows too"
        );
        let probes = plot_axes(&spec(&plan, "probes"), &plan).unwrap();
        assert_eq!((probes.x, probes.lines, probes.numeric), (Axis::Layer, Axis::Stage, false));
        let flat = TableSpec {
            columns: Axis::One,
            ..quality.clone()
        };
        assert_eq!(plot_axes(&flat, &plan), None);
    }

    #[test]
    fn a_layer_table_of_a_metric_without_layers_has_no_plot() {
        let (plan, rows) = fixture();
        let quality = spec(&plan, "cluster_quality");
        let by_layer = TableSpec {
            rows: Axis::Stage,
            columns: Axis::Layer,
            ..quality
        };
        assert!(rows.iter().any(|r| r.metric == by_layer.metric && r.layer.is_empty()));
        assert!(table_figure(&by_layer, &plan, &rows).is_none(), "only the metric's name on x");
        assert!(table_figure(&by_layer, &plan, &[]).is_some(), "no results yet: the placeholder");
    }

    #[test]
    fn a_swept_key_with_a_word_among_its_values_is_not_numeric() {
        let (mut plan, _) = fixture();
        plan.variants[0].swept[0].1 = "many".into();
        let quality = spec(&plan, "cluster_quality");
        assert_eq!(plot_axes(&quality, &plan), None, "stage x k, k not numeric: no plot");
        let by_layer = TableSpec {
            columns: Axis::Layer,
            rows: quality.columns.clone(),
            ..quality
        };
        assert_eq!(plot_axes(&by_layer, &plan).unwrap().x, Axis::Layer);
    }

    #[test]
    fn the_sweep_plot_has_a_line_per_stage_with_error_bars_over_seeds() {
        let (plan, rows) = fixture();
        let f = table_figure(&spec(&plan, "cluster_quality"), &plan, &rows).unwrap();
        assert_eq!(f.legend, ["HOG clusters", "Jigsaw++ VGG-16 → AlexNet"]);
        let p = &f.panels[0];
        assert_eq!(p.x.title, "stages.clusters.k", "4 to 16 is less than a factor of ten: linear");
        assert_eq!(p.x.ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["4", "16"]);
        assert_eq!(p.y.title, "nmi (mean ± std over 3 seeds)");
        assert_eq!(p.lines.len(), 2);
        let first = &p.lines[0].points;
        assert_eq!(first.len(), 2);
        assert!(
            first[0].x < 4.0 && first[1].x > 4.0 && first[1].x < 16.0,
            "nudged left of its k: {first:?}"
        );
        assert!(first[0].spread > 0.0, "three seeds: an error bar");
        let (lo, hi) = p.y.range;
        assert!(p
            .lines
            .iter()
            .flat_map(|l| &l.points)
            .all(|q| q.y - q.spread >= lo && q.y + q.spread <= hi));
        assert!(first.iter().all(|q| q.x > p.x.range.0 && q.x < p.x.range.1));
    }

    #[test]
    fn the_layer_plot_has_the_layers_as_categories_and_no_bar_for_a_single_value() {
        let (plan, rows) = fixture();
        let f = table_figure(&spec(&plan, "probes"), &plan, &rows).unwrap();
        let p = &f.panels[0];
        assert_eq!(p.x.title, "layer");
        assert_eq!(p.x.ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["conv1", "conv3"]);
        assert_eq!(f.legend.len(), 4, "the stage split by k gives two lines: {:?}", f.legend);
        let pixels = f.legend.iter().position(|l| l == "Pixels").unwrap();
        assert!(p.lines[pixels].points.iter().all(|q| q.spread == 0.0), "one value: no bar");
        assert_eq!(f.title, "probes", "no caption: the table's name");
    }

    #[test]
    fn a_log_axis_for_a_sweep_over_a_factor_of_ten_and_an_empty_plot_without_results() {
        let (mut plan, rows) = fixture();
        for v in &mut plan.variants {
            if v.swept[0].1 == "16" {
                v.swept[0].1 = "64".into();
            }
        }
        let rows: Vec<ResultRow> = rows
            .into_iter()
            .map(|mut r| {
                if r.swept[0] == "16" {
                    r.swept[0] = "64".into();
                }
                r
            })
            .collect();
        let quality = spec(&plan, "cluster_quality");
        let f = table_figure(&quality, &plan, &rows).unwrap();
        assert_eq!(f.panels[0].x.title, "stages.clusters.k (log scale)");
        assert!((f.panels[0].x.ticks[1].at - 64f64.log10()).abs() < 1e-12);
        let empty = table_figure(&quality, &plan, &[]).unwrap();
        assert!(empty.panels[0].is_empty() && empty.legend.is_empty());
        assert_eq!(empty.panels[0].x.ticks.len(), 2, "the sweep's values, results or not");
    }

    #[test]
    fn nan_values_are_left_out_not_drawn() {
        let (plan, mut rows) = fixture();
        for r in rows.iter_mut().filter(|r| r.stage == "hog_quality") {
            r.value = f64::NAN;
        }
        let f = table_figure(&spec(&plan, "cluster_quality"), &plan, &rows).unwrap();
        assert!(f.panels[0].lines[0].points.is_empty());
        assert_eq!(f.panels[0].lines[1].points.len(), 2);
        assert!(f.panels[0].y.range.0.is_finite() && f.panels[0].y.range.1.is_finite());
    }
}
