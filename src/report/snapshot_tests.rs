//! Snapshot tests of the table renderings on a fixed results set (three seeds, a swept
//! `k`, a seed-independent stage, reference values): the expected files are under
//! `tests/data/tables/` (rewrite them with `KTLAB_BLESS=1` after a deliberate change).
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{table_csv, table_latex, table_markdown, tables, ResultRow, Table};
use crate::plan::{Axis, Plan, Reference, TableSpec, Variant};

const SEEDS: [u64; 3] = [0, 1, 2];
const KS: [&str; 2] = ["4", "16"];

/// Stage name, label, whether it varies with the seed, with k, and its layers.
const STAGES: &[(&str, &str, bool, bool, &[&str])] = &[
    ("hog_quality", "HOG clusters", true, true, &[""]),
    ("kt_quality", "Jigsaw++ VGG-16 → AlexNet", true, true, &[""]),
    ("probe_random", "Random init", true, false, &["conv1", "conv3"]),
    ("probe_kt", "Jigsaw++ 50% & more_", true, true, &["conv1", "conv3"]),
    ("probe_pixels", "Pixels", false, false, &["conv1", "conv3"]),
];

/// A value that depends on everything it may vary with, reproducibly.
fn value(stage: usize, k: usize, seed: u64, layer: usize) -> f64 {
    let base = 0.2 + 0.1 * stage as f64 + 0.05 * k as f64 + 0.07 * layer as f64;
    let jitter = [0.0, 0.012, -0.009][seed as usize];
    ((base + jitter) * 1e6).round() / 1e6
}

pub(super) fn fixture() -> (Plan, Vec<ResultRow>) {
    let mut plan = Plan {
        experiment: "fixture".into(),
        file: PathBuf::from("fixture.toml"),
        swept_keys: vec!["stages.clusters.k".into()],
        seed_axis: true,
        labels: STAGES.iter().map(|s| (s.0.to_string(), s.1.to_string())).collect(),
        tables: Vec::new(),
        decisions: Vec::new(),
        variants: Vec::new(),
        instances: Vec::new(),
        slurm: Default::default(),
    };
    let mut rows = Vec::new();
    // Instance numbers: distinct exactly where the stage varies.
    let instance = |s: usize, k: usize, seed: u64| {
        let (_, _, by_seed, by_k, _) = STAGES[s];
        s * 100 + if by_k { k * 10 } else { 0 } + if by_seed { seed as usize } else { 0 }
    };
    for (ki, k) in KS.iter().enumerate() {
        for seed in SEEDS {
            let mut stages = IndexMap::new();
            for (si, (name, _, by_seed, by_k, layers)) in STAGES.iter().enumerate() {
                stages.insert(name.to_string(), instance(si, ki, seed));
                for (li, layer) in layers.iter().enumerate() {
                    let metric = if layer.is_empty() { "nmi" } else { "top1" };
                    rows.push(ResultRow {
                        variant: format!("k={k}"),
                        swept: vec![k.to_string()],
                        seed: Some(seed),
                        stage: name.to_string(),
                        instance: instance(si, ki, seed),
                        layer: layer.to_string(),
                        metric: metric.into(),
                        value: value(si, if *by_k { ki } else { 0 }, if *by_seed { seed } else { 0 }, li),
                    });
                }
            }
            plan.variants.push(Variant {
                name: format!("k={k},seed={seed}"),
                group: format!("k={k}"),
                seed: Some(seed),
                swept: vec![("stages.clusters.k".into(), k.to_string())],
                stages,
            });
        }
    }
    plan.tables = vec![
        TableSpec {
            name: "cluster_quality".into(),
            metric: "nmi".into(),
            rows: Axis::Stage,
            columns: Axis::Key("stages.clusters.k".into()),
            stages: Vec::new(),
            caption: Some("NMI of the clusters against the true classes.".into()),
            references: vec![Reference {
                row: "HOG clusters".into(),
                column: "4".into(),
                value: 0.19,
                source: Some("Noroozi et al. (2018), Table 2".into()),
            }],
        },
        TableSpec {
            name: "probes".into(),
            metric: "top1".into(),
            rows: Axis::Stage,
            columns: Axis::Layer,
            stages: Vec::new(),
            caption: None,
            references: vec![Reference {
                row: "Random init".into(),
                column: "conv3".into(),
                value: 0.5,
                source: None,
            }],
        },
    ];
    (plan, rows)
}

fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tables").join(name);
    if std::env::var_os("KTLAB_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "{name} differs from its snapshot");
}

fn fixture_tables() -> Vec<Table> {
    let (plan, rows) = fixture();
    tables(&plan, &rows)
}

#[test]
fn cells_are_mean_std_and_n_over_seeds_counting_a_shared_instance_once() {
    let t = &fixture_tables()[1];
    assert_eq!(
        t.rows,
        ["Random init", "Jigsaw++ 50% & more_ (k=4)", "Jigsaw++ 50% & more_ (k=16)", "Pixels"]
    );
    assert_eq!(t.columns, ["conv1", "conv3"]);
    let c = t.cells[0][0].as_ref().unwrap();
    assert_eq!(c.n, 3, "one value per seed, not per (k, seed)");
    let vals = [0.4, 0.412, 0.391];
    let mean = vals.iter().sum::<f64>() / 3.0;
    assert!((c.mean - mean).abs() < 1e-12, "{}", c.mean);
    let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((c.std - std).abs() < 1e-12, "{}", c.std);
    let pixels = t.cells[3][0].as_ref().unwrap();
    assert_eq!((pixels.n, pixels.std), (1, 0.0), "a seed-independent stage is one value");
    assert_eq!(t.shown_n(3, 0), Some(1));
    assert_eq!(t.shown_n(0, 0), None);
    assert!(t.is_best(3, 1) && !t.is_best(0, 1));
}

/// A table of `rows` (row name, cell counts), every cell with mean 0.5.
fn counted(rows: &[(&str, &[usize])]) -> Table {
    let cell = |n: usize| Some(super::Cell { mean: 0.5, std: 0.0, n });
    let columns = rows[0].1.len();
    Table {
        name: "t".into(),
        metric: "top1".into(),
        caption: None,
        row_title: "stage".into(),
        rows: rows.iter().map(|(r, _)| r.to_string()).collect(),
        columns: (0..columns).map(|c| format!("conv{c}")).collect(),
        column_values: (0..columns).map(|c| format!("conv{c}")).collect(),
        cells: rows.iter().map(|(_, ns)| ns.iter().map(|&n| cell(n)).collect()).collect(),
        references: rows.iter().map(|_| vec![None; columns]).collect(),
        instances: rows.iter().map(|_| vec![Vec::new(); columns]).collect(),
    }
}

#[test]
fn captions_count_what_most_cells_have_and_mark_the_rest() {
    // One 3-seed row and one fixed-seed row: over 3 seeds, the fixed row says n=1.
    let t = counted(&[("seeded", &[3, 3]), ("fixed", &[1, 1])]);
    assert_eq!(t.usual_n(), Some(3));
    assert_eq!(t.note(), "Mean ± std over 3 seeds (n where it differs); best per column in bold.");
    assert_eq!((t.shown_n(0, 0), t.shown_n(1, 1)), (None, Some(1)));
    let md = table_markdown(&t);
    assert!(md.contains("| fixed | **0.500** (n=1) | **0.500** (n=1) |"), "{md}");
    assert!(md.contains("| seeded | **0.500 ± 0.000** | **0.500 ± 0.000** |"), "{md}");
    assert!(!md.contains("1 seeds") && !md.contains("(n=3)"), "{md}");
    let tex = table_latex(&t);
    assert!(
        tex.contains("over 3 seeds (n where it differs)") && tex.contains("($n=1$)"),
        "{tex}"
    );
    // Most cells fixed: one run per cell, the seeded row says how many.
    let t = counted(&[("seeded", &[3]), ("fixed", &[1]), ("other", &[1])]);
    assert_eq!(t.usual_n(), Some(1));
    assert_eq!(
        t.note(),
        "One run per cell, or mean ± std over n seeds where n is shown; best per column in bold."
    );
    assert_eq!((t.shown_n(0, 0), t.shown_n(1, 0)), (Some(3), None));
    // Most cells over 2 seeds, one over 3.
    let t = counted(&[("a", &[2, 2]), ("b", &[2, 3])]);
    assert_eq!(t.note(), "Mean ± std over 2 seeds (n where it differs); best per column in bold.");
    assert_eq!(t.shown_n(1, 1), Some(3));
    assert_eq!(counted(&[("a", &[1, 1])]).note(), "One run per cell; best per column in bold.");
}

#[test]
fn default_tables_are_one_per_metric_with_layers_or_the_swept_key_as_columns() {
    let (mut plan, rows) = fixture();
    plan.tables.clear();
    let t = tables(&plan, &rows);
    let names: Vec<(&str, &str)> = t.iter().map(|t| (t.name.as_str(), t.columns[0].as_str())).collect();
    assert_eq!(names, [("nmi", "k=4"), ("top1", "conv1")]);
}

#[test]
fn csv_snapshot() {
    for t in fixture_tables() {
        snapshot(&format!("{}.csv", t.name), &table_csv(&t).unwrap());
    }
}

#[test]
fn markdown_snapshot() {
    for t in fixture_tables() {
        snapshot(&format!("{}.md", t.name), &table_markdown(&t));
    }
}

#[test]
fn latex_snapshot() {
    for t in fixture_tables() {
        snapshot(&format!("{}.tex", t.name), &table_latex(&t));
    }
}

#[test]
fn latex_escapes_specials_and_arrows() {
    assert_eq!(
        super::latex_escape("Jigsaw++ VGG-16 → AlexNet 50% & a_b {x} #1 ~ ^ \\"),
        "Jigsaw++ VGG-16 $\\rightarrow$ AlexNet 50\\% \\& a\\_b \\{x\\} \\#1 \\textasciitilde{} \\textasciicircum{} \\textbackslash{}"
    );
}

/// Compiles both tables in a plain article with booktabs, where pdflatex is installed.
#[test]
fn latex_compiles_with_pdflatex() {
    let found = std::process::Command::new("pdflatex").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        crate::skip::skip(
            "latex_compiles_with_pdflatex",
            "pdflatex is not installed (texlive-latex-base, texlive-latex-recommended)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut doc = String::from("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n");
    for t in fixture_tables() {
        doc.push_str(&table_latex(&t));
    }
    doc.push_str("\\end{document}\n");
    std::fs::write(dir.path().join("t.tex"), doc).unwrap();
    let out = std::process::Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "-halt-on-error", "t.tex"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success() && dir.path().join("t.pdf").is_file(),
        "pdflatex failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
