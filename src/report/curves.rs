//! Training curves: the `epochs.csv` of every stage instance the results cover that has one
//! in its store entry (the training kinds: train, pretext, finetune), as one figure with a
//! loss panel and a panel per metric the runs report (accuracy; a contrastive task's
//! retrieval top-1, colorization's ab accuracy, inpainting's PSNR), named after it; one line per stage label (with the swept values of a stage
//! that varies with them), the mean over seeds, with a band of ± the standard deviation
//! where several seeds ran.
use std::collections::{BTreeMap, HashMap, HashSet};

use super::axes::data_axis;
use super::figure::{Figure, Line, Panel, Point, Spread};
use super::table::{other_values, split_stages};
use super::Cell;
use crate::plan::{Plan, StageInstance};
use crate::store::{EntryState, Store};

/// The artefact of a training stage with one row per epoch.
pub const HISTORY_FILE: &str = "epochs.csv";

/// A line of the figure gets a marker on about this many of its epochs.
const MARKERS_PER_LINE: usize = 12;

/// One training run: the series it belongs to and its epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub series: String,
    /// The metric's column in `epochs.csv` (`accuracy`, `retrieval_top1`).
    pub metric: String,
    pub epochs: Vec<Epoch>,
}

/// One row of `epochs.csv` (its learning rate aside).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Epoch {
    pub epoch: usize,
    pub loss: f64,
    /// The training's metric (its column is named after it).
    pub metric: f64,
}

/// The columns of `epochs.csv` that are not a metric.
const NOT_METRICS: &[&str] = &["epoch", "loss", "lr"];

/// A metric panel's axis title.
fn metric_title(key: &str) -> String {
    match key {
        "accuracy" => "training accuracy (fraction correct)".into(),
        "retrieval_top1" => "training retrieval top-1 in the batch (fraction found)".into(),
        "ab_accuracy" => "training ab accuracy (fraction of pixels within 10)".into(),
        "psnr" => "training masked-region PSNR (dB)".into(),
        other => format!("training {}", other.replace('_', " ")),
    }
}

/// Each stage's curve name: its label; for a stage the file gives no label (a target
/// trained on pseudo-labels, say), the label of the first labelled stage that reads it
/// (the probe whose row it is), marked as the training behind that row, rather than the
/// stage's name.
fn series_names(plan: &Plan) -> Vec<(String, SeriesName)> {
    let given = |name: &str| plan.labels.get(name).is_some_and(|l| l != name);
    plan.labels
        .iter()
        .map(|(stage, label)| {
            if given(stage) {
                return (
                    stage.clone(),
                    SeriesName {
                        label: label.clone(),
                        trained: false,
                    },
                );
            }
            let reader = plan.variants.iter().find_map(|v| {
                let &mine = v.stages.get(stage)?;
                v.stages.iter().find_map(|(other, &j)| {
                    let reads = plan.instances[j]
                        .inputs
                        .values()
                        .any(|input| matches!(input, crate::plan::PlannedInput::Stage(i) if *i == mine));
                    (reads && given(other)).then(|| plan.labels[other].clone())
                })
            });
            let name = match reader {
                Some(label) => SeriesName { label, trained: true },
                None => SeriesName {
                    label: label.clone(),
                    trained: false,
                },
            };
            (stage.clone(), name)
        })
        .collect()
}

/// A curve's name: a label, and whether it is the training of the model a row of that
/// label reads.
struct SeriesName {
    label: String,
    trained: bool,
}

impl SeriesName {
    /// `label`, `label (trained)`, `label (k=16)` or `label (trained, k=16)`: the swept
    /// values written as a table's row names have them (`k=16,w=2`).
    fn with(&self, others: &[String]) -> String {
        let others = others.join(",");
        let notes: Vec<&str> = self
            .trained
            .then_some("trained")
            .into_iter()
            .chain((!others.is_empty()).then_some(others.as_str()))
            .collect();
        if notes.is_empty() {
            self.label.clone()
        } else {
            format!("{} ({})", self.label, notes.join(", "))
        }
    }
}

/// The histories of every variant's stages that are in the store, each instance once per
/// series: stages in file order, each in variant order.
pub fn collect_histories(plan: &Plan, store: &Store) -> Vec<History> {
    let split = split_stages(plan, &[]);
    let named = series_names(plan);
    let mut read: HashMap<usize, Option<(String, Vec<Epoch>)>> = HashMap::new();
    let mut seen: HashSet<(String, usize)> = HashSet::new();
    let mut out = Vec::new();
    for (stage, name) in &named {
        for v in &plan.variants {
            let Some(&i) = v.stages.get(stage) else {
                continue;
            };
            let others = if split.contains(stage) {
                let swept: Vec<String> = v.swept.iter().map(|(_, value)| value.clone()).collect();
                other_values(plan, &swept, &[])
            } else {
                Vec::new()
            };
            let series = name.with(&others);
            if !seen.insert((series.clone(), i)) {
                continue;
            }
            let epochs = read.entry(i).or_insert_with(|| read_history(store, &plan.instances[i]));
            if let Some((metric, epochs)) = epochs {
                out.push(History {
                    series,
                    metric: metric.clone(),
                    epochs: epochs.clone(),
                });
            }
        }
    }
    out
}

/// The `epochs.csv` of every training instance of the plan that has one in the store, as
/// `(file name, bytes)`: `<stage>.csv` for an instance every variant shares,
/// `<stage>@<variant>.csv` otherwise, in plan order.
pub fn curve_files(plan: &Plan, store: &Store) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for inst in &plan.instances {
        let Some(bytes) = history_bytes(store, inst) else {
            continue;
        };
        // Stage names are checked names and variant names are sanitised when expanded, so
        // both are safe in a file name as they are.
        let (variant, stage) = &inst.uses[0];
        let name = if inst.uses.len() == plan.variants.len() || variant == "default" {
            stage.clone()
        } else {
            format!("{stage}@{variant}")
        };
        out.push((format!("{name}.csv"), bytes));
    }
    out
}

/// The epochs of an instance whose valid entry lists an `epochs.csv`.
fn read_history(store: &Store, inst: &StageInstance) -> Option<(String, Vec<Epoch>)> {
    history_bytes(store, inst).map(|bytes| parse_epochs(&String::from_utf8_lossy(&bytes)))
}

/// The bytes of an instance's `epochs.csv`, when its valid entry lists one.
fn history_bytes(store: &Store, inst: &StageInstance) -> Option<Vec<u8>> {
    let EntryState::Valid(manifest) = store.state(inst.kind, &inst.key, false) else {
        return None;
    };
    if !manifest.artefacts.contains_key(HISTORY_FILE) {
        return None;
    }
    let path = store.entry_dir(inst.kind, &inst.key).join(HISTORY_FILE);
    std::fs::read(&path)
        .map_err(|e| tracing::warn!("cannot read {}: {e}", path.display()))
        .ok()
}

/// The metric's name and the rows of an `epochs.csv` (columns found by name, the metric's
/// the one besides epoch, loss and lr; rows that do not read are left out).
pub fn parse_epochs(text: &str) -> (String, Vec<Epoch>) {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return (String::new(), Vec::new());
    };
    let column = |name: &str| header.split(',').position(|h| h.trim() == name);
    let metric = header.split(',').map(str::trim).find(|h| !NOT_METRICS.contains(h)).unwrap_or("");
    let (Some(e), Some(l), Some(a)) = (column("epoch"), column("loss"), column(metric)) else {
        return (String::new(), Vec::new());
    };
    let epochs = lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            Some(Epoch {
                epoch: fields.get(e)?.parse().ok()?,
                loss: fields.get(l)?.parse().ok()?,
                metric: fields.get(a)?.parse().ok()?,
            })
        })
        .collect();
    (metric.to_string(), epochs)
}

/// The figure of `histories` (none without any): the loss, and each metric (in the order the
/// histories first have them, each with the series that report it), against the epoch.
pub fn curves_figure(experiment: &str, histories: &[History]) -> Option<Figure> {
    if histories.is_empty() {
        return None;
    }
    let mut series: Vec<String> = Vec::new();
    for h in histories {
        if !series.contains(&h.series) {
            series.push(h.series.clone());
        }
    }
    let runs = series
        .iter()
        .map(|s| histories.iter().filter(|h| &h.series == s).count())
        .max()
        .unwrap_or(1);
    let title = if runs > 1 {
        format!("{experiment}: training curves (mean over seeds, band ± std)")
    } else {
        format!("{experiment}: training curves")
    };
    let mut panels = vec![curve_panel(histories, &series, "training loss (cross-entropy)", None, |e| e.loss)];
    let mut metrics: Vec<&str> = Vec::new();
    for h in histories {
        if !metrics.contains(&h.metric.as_str()) {
            metrics.push(&h.metric);
        }
    }
    for metric in metrics {
        panels.push(curve_panel(histories, &series, &metric_title(metric), Some(metric), |e| e.metric));
    }
    Some(Figure {
        title,
        panels,
        legend: series,
    })
}

/// One panel: a line per series of `value` against the epoch (of the runs with `metric`,
/// when given; a series without such runs has no line).
fn curve_panel(histories: &[History], series: &[String], y_title: &str, metric: Option<&str>, value: fn(&Epoch) -> f64) -> Panel {
    let lines: Vec<Line> = series
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let runs: Vec<&History> = histories
                .iter()
                .filter(|h| &h.series == name && metric.is_none_or(|m| h.metric == m))
                .collect();
            if runs.is_empty() {
                return None;
            }
            let points = mean_curve(&runs, value);
            Some(Line {
                series: i,
                marker_every: points.len().div_ceil(MARKERS_PER_LINE).max(1),
                points,
                spread: Spread::Band,
            })
        })
        .collect();
    let epochs: Vec<f64> = lines.iter().flat_map(|l| &l.points).map(|p| p.x).collect();
    let extents: Vec<f64> = lines.iter().flat_map(|l| &l.points).flat_map(Point::extent).collect();
    Panel {
        x: data_axis("epoch", &epochs, true),
        y: data_axis(y_title, &extents, false),
        lines,
    }
}

/// Per epoch, the mean and standard deviation of `value` over the runs that have it (finite).
fn mean_curve(runs: &[&History], value: fn(&Epoch) -> f64) -> Vec<Point> {
    let mut by_epoch: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for e in runs.iter().flat_map(|h| &h.epochs) {
        let v = value(e);
        if v.is_finite() {
            by_epoch.entry(e.epoch).or_default().push(v);
        }
    }
    by_epoch
        .into_iter()
        .filter_map(|(epoch, values)| {
            let cell = Cell::of(&values)?;
            Point::checked(epoch as f64, cell.mean, cell.std)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_metric_has_a_panel_title_with_its_unit() {
        assert_eq!(metric_title("ab_accuracy"), "training ab accuracy (fraction of pixels within 10)");
        assert_eq!(metric_title("psnr"), "training masked-region PSNR (dB)");
        assert_eq!(metric_title("top_5"), "training top 5");
    }

    fn run(series: &str, values: &[(f64, f64)]) -> History {
        run_of("accuracy", series, values)
    }

    fn run_of(metric: &str, series: &str, values: &[(f64, f64)]) -> History {
        History {
            series: series.into(),
            metric: metric.into(),
            epochs: values
                .iter()
                .enumerate()
                .map(|(i, (loss, metric))| Epoch {
                    epoch: i + 1,
                    loss: *loss,
                    metric: *metric,
                })
                .collect(),
        }
    }

    #[test]
    fn epochs_csv_is_read_by_column_name_and_bad_rows_are_left_out() {
        let text = "epoch,loss,accuracy,lr\n1,2.5,0.1,0.01\n2,x,0.2,0.01\n3,NaN,0.3\n";
        let (metric, e) = parse_epochs(text);
        assert_eq!((metric.as_str(), e.len()), ("accuracy", 2));
        assert_eq!((e[0].epoch, e[0].loss, e[0].metric), (1, 2.5, 0.1));
        assert!(e[1].loss.is_nan(), "NaN reads; the figure leaves it out");
        assert!(parse_epochs("").1.is_empty());
        assert!(parse_epochs("epoch,lr\n1,0.1\n").1.is_empty());
        let (metric, e) = parse_epochs("epoch,loss,retrieval_top1,lr\n1,5.2,0.25,0.1\n");
        assert_eq!((metric.as_str(), e[0].metric), ("retrieval_top1", 0.25));
    }

    #[test]
    fn runs_of_two_metrics_get_a_panel_each_named_after_it() {
        let h = [
            run("rotation", &[(1.4, 0.3), (1.2, 0.4)]),
            run_of("retrieval_top1", "contrastive", &[(5.0, 0.1), (4.0, 0.2)]),
        ];
        let f = curves_figure("e", &h).unwrap();
        assert_eq!(f.panels.len(), 3);
        assert_eq!(f.panels[0].lines.len(), 2, "both have a loss");
        assert_eq!(f.panels[1].y.title, "training accuracy (fraction correct)");
        assert_eq!(f.panels[2].y.title, "training retrieval top-1 in the batch (fraction found)");
        let series = |p: &Panel| p.lines.iter().map(|l| l.series).collect::<Vec<_>>();
        assert_eq!((series(&f.panels[1]), series(&f.panels[2])), (vec![0], vec![1]));
    }

    #[test]
    fn a_line_per_series_with_the_mean_over_seeds_and_its_band() {
        let h = [
            run("supervised", &[(2.0, 0.1), (1.0, 0.3)]),
            run("supervised", &[(3.0, 0.2), (1.0, 0.5)]),
            run("Jigsaw++", &[(4.0, 0.0)]),
        ];
        let f = curves_figure("quick", &h).unwrap();
        assert_eq!(f.legend, ["supervised", "Jigsaw++"]);
        assert_eq!(f.title, "quick: training curves (mean over seeds, band ± std)");
        let (loss, acc) = (&f.panels[0], &f.panels[1]);
        assert_eq!(
            (loss.x.title.as_str(), loss.y.title.as_str()),
            ("epoch", "training loss (cross-entropy)")
        );
        assert_eq!(acc.y.title, "training accuracy (fraction correct)");
        let p = &loss.lines[0].points;
        assert_eq!((p[0].x, p[0].y, p[1].y, p[1].spread), (1.0, 2.5, 1.0, 0.0));
        assert!((p[0].spread - 0.5f64.sqrt()).abs() < 1e-12, "sample std of 2 and 3");
        assert_eq!(acc.lines[1].points.len(), 1, "a single epoch is one point");
        assert_eq!(loss.x.ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn a_curve_named_after_the_row_it_trains_says_so_once_beside_the_swept_values() {
        let trained = SeriesName {
            label: "HOG -> k-means -> alexnet-small".into(),
            trained: true,
        };
        assert_eq!(trained.with(&[]), "HOG -> k-means -> alexnet-small (trained)");
        assert_eq!(trained.with(&["k=16".into()]), "HOG -> k-means -> alexnet-small (trained, k=16)");
        let own = SeriesName {
            label: "Jigsaw++".into(),
            trained: false,
        };
        assert_eq!(own.with(&[]), "Jigsaw++");
        assert_eq!(own.with(&["k=16".into(), "w=2".into()]), "Jigsaw++ (k=16,w=2)", "as a table's rows");
    }

    #[test]
    fn no_histories_no_figure_and_nan_epochs_are_left_out() {
        assert_eq!(curves_figure("e", &[]), None);
        let f = curves_figure("e", &[run("t", &[(f64::NAN, 0.5), (1.0, f64::INFINITY)])]).unwrap();
        assert_eq!(f.title, "e: training curves");
        assert_eq!(f.panels[0].lines[0].points.len(), 1);
        assert_eq!(f.panels[1].lines[0].points.len(), 1);
        let many: Vec<(f64, f64)> = (0..100).map(|i| (1.0 / (i + 1) as f64, 0.5)).collect();
        let f = curves_figure("e", &[run("t", &many)]).unwrap();
        assert_eq!(f.panels[0].lines[0].marker_every, 9);
    }
}
