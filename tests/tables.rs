//! Seeds as an axis and the paper tables: seed-independent stages are shared by every
//! seed, results.csv has a `seed` column, and each `[[tables]]` entry is written as CSV,
//! Markdown and LaTeX with mean ± std over the seeds, and plotted as SVG and PNG where it
//! has a layer or a numeric swept axis; training stages give the training curves.
use crate::common::{Project, TINY_DATASETS};

/// Whether an SVG of ours draws `text` (plotters writes each text on a line of its own).
fn svg_has_text(svg: &str, text: &str) -> bool {
    svg.contains(&format!(">\n{text}\n</text>"))
}

/// A PNG's bytes, checked for the signature and a size that holds a drawing.
fn read_png(p: &Project, rel: &str) -> Vec<u8> {
    let bytes = std::fs::read(p.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{rel} is not a PNG");
    assert!(bytes.len() > 10_000, "{rel}: only {} bytes", bytes.len());
    bytes
}

const SEEDED: &str = r#"
name = "seeded"
seeds = [0, 1, 2]

[stages.feat]
kind = "features"
model = "hog"
data = "shapes:train"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 8
iterations = 10

[stages.labels]
kind = "assign"
centroids = "clusters"
features = "feat"

[stages.quality]
kind = "cluster-metrics"
label = "HOG → k-means"
labels = "labels"
truth = "shapes:train"

[[tables]]
name = "cluster_quality"
metric = "nmi"
rows = "stage"
columns = "stages.clusters.k"
caption = "NMI of HOG clusters"

[[tables.reference]]
row = "HOG → k-means"
column = "4"
value = 0.25
source = "a made-up paper"

[sweep]
"stages.clusters.k" = [4, 16]
"#;

#[test]
fn seeds_share_seed_independent_stages_and_tables_average_over_them() {
    let p = Project::new();
    p.write("exp.toml", SEEDED);
    let plan = p.ktlab(&["plan", "exp.toml"]).ok().stdout;
    // feat (HOG) draws no random numbers: one instance for all 2 x 3 variants; the rest
    // are keyed on the seed and k: 3 x 6.
    assert!(plan.contains("19 stage instances"), "{plan}");
    let feat_keys: std::collections::BTreeSet<&str> = plan
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("feat"))
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(feat_keys.len(), 1, "{plan}");
    assert!(plan.contains("k=16,seed=2"), "{plan}");

    let run = p.ktlab(&["run", "exp.toml"]).ok();
    assert_eq!(p.entries().len(), 19);
    let csv = p.read("results/seeded/results.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "variant,stages.clusters.k,seed,stage,layer,metric,value");
    // 2 values of k x 3 seeds x 7 metrics (nmi, ami, ari, purity, accuracy, size_entropy,
    // largest_share).
    assert_eq!(lines.len(), 1 + 2 * 3 * 7, "{csv}");
    assert!(lines[1].starts_with("k=4,4,0,quality,,nmi,"), "{csv}");
    assert!(lines[39].starts_with("k=16,16,2,quality,,purity,"), "{csv}");
    assert!(lines[40].starts_with("k=16,16,2,quality,,accuracy,"), "{csv}");
    assert!(lines[42].starts_with("k=16,16,2,quality,,largest_share,"), "{csv}");

    // The table: mean ± std (sample) over the three seeds of results.csv.
    let nmi = |k: &str| -> Vec<f64> {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("k={k},{k},")) && l.contains(",nmi,"))
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect()
    };
    let table = p.read("results/seeded/cluster_quality.csv");
    let t: Vec<&str> = table.lines().collect();
    assert_eq!(t[0], "stage,k=4_mean,k=4_std,k=4_n,k=4_reference,k=16_mean,k=16_std,k=16_n");
    let cells: Vec<&str> = t[1].split(',').collect();
    assert_eq!(cells[0], "HOG → k-means");
    let v = nmi("4");
    assert_eq!(v.len(), 3);
    let mean = v.iter().sum::<f64>() / 3.0;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((cells[1].parse::<f64>().unwrap() - mean).abs() < 1e-12, "{table}");
    assert!((cells[2].parse::<f64>().unwrap() - std).abs() < 1e-12, "{table}");
    assert_eq!((cells[3], cells[4]), ("3", "0.25"));
    let md = p.read("results/seeded/cluster_quality.md");
    assert!(
        md.contains(&format!("| HOG → k-means | **{mean:.3} ± {std:.3}** | 0.250 |")),
        "{md}"
    );
    assert!(md.contains("References: a made-up paper."), "{md}");
    let tex = p.read("results/seeded/cluster_quality.tex");
    assert!(tex.contains("HOG $\\rightarrow$ k-means & $\\mathbf{"), "{tex}");
    assert!(tex.contains("\\toprule") && tex.contains("\\label{tab:cluster_quality}"), "{tex}");
    assert!(run.stdout.contains(", tables cluster_quality (.md .csv .tex), "), "{}", run.stdout);

    // Its plot: k (numeric) on x, a line per stage label, error bars over the seeds.
    assert!(run.stdout.contains(", plots cluster_quality (.svg .png), "), "{}", run.stdout);
    read_png(&p, "results/seeded/cluster_quality.png");
    let svg = p.read("results/seeded/cluster_quality.svg");
    assert!(svg_has_text(&svg, "stages.clusters.k"), "the x axis title");
    assert!(svg_has_text(&svg, "nmi (mean ± std over 3 seeds)"), "the y axis title");
    assert!(svg_has_text(&svg, "HOG → k-means"), "the legend entry");
    assert!(svg_has_text(&svg, "NMI of HOG clusters"), "the caption as title");
    assert!(
        !p.path("results/seeded/training_curves.svg").exists(),
        "no training stage, no curves"
    );
}

#[test]
fn without_tables_a_default_table_per_metric_is_written() {
    let p = Project::new();
    let text = SEEDED.split("[[tables]]").next().unwrap().to_string() + "[sweep]\n\"stages.clusters.k\" = [4, 16]\n";
    p.write("exp.toml", &text.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"));
    p.ktlab(&["run", "exp.toml"]).ok();
    for metric in ["nmi", "ari", "purity", "accuracy"] {
        let csv = p.read(&format!("results/seeded/{metric}.csv"));
        assert!(csv.starts_with("stage,k=4_mean,k=4_std,k=4_n,k=16_mean"), "{csv}");
        assert!(csv.lines().nth(1).unwrap().contains(",2,"), "two seeds per cell: {csv}");
        assert!(svg_has_text(&p.read(&format!("results/seeded/{metric}.svg")), "HOG → k-means"));
        read_png(&p, &format!("results/seeded/{metric}.png"));
    }
}

#[test]
fn report_rebuilds_the_tables_byte_for_byte_without_computing() {
    let p = Project::new();
    p.write("exp.toml", &SEEDED.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"));
    // With part of the results, no folder is written (and it says so).
    let partial = p.ktlab(&["run", "exp.toml", "--only", "feat"]).ok();
    assert!(
        partial
            .stdout
            .contains("results/seeded not rewritten: 12 of 13 stage instances are not in the store"),
        "{}",
        partial.stdout
    );
    for f in ["results.csv", "cluster_quality.md", "cluster_quality.svg", "provenance.json"] {
        assert!(!p.path(&format!("results/seeded/{f}")).exists(), "{f}");
    }
    p.ktlab(&["run", "exp.toml"]).ok();
    let entries = p.entries();
    let files = [
        "results.csv",
        "results.md",
        "cluster_quality.csv",
        "cluster_quality.md",
        "cluster_quality.tex",
        "cluster_quality.svg",
        "cluster_quality.png",
        "provenance.json",
        "experiment.toml",
    ];
    let read = |f: &str| std::fs::read(p.path(&format!("results/seeded/{f}"))).unwrap();
    let written: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();
    assert!(!svg_has_text(&String::from_utf8_lossy(&written[5]), "No results yet"));
    for f in files {
        std::fs::remove_file(p.path(&format!("results/seeded/{f}"))).unwrap();
    }
    p.ktlab(&["report", "exp.toml"]).ok();
    for (f, before) in files.iter().zip(&written) {
        assert!(&read(f) == before, "{f} differs after report");
    }
    assert_eq!(p.entries(), entries, "report created or removed store entries");
    // A later partial run (one stage forced, another's entry gone) leaves them as they are.
    let gone = entries.iter().find(|e| e.starts_with("cluster-metrics/")).unwrap();
    std::fs::remove_dir_all(p.path(&format!("store/{gone}"))).unwrap();
    p.ktlab(&["run", "exp.toml", "--only", "feat", "--force", "feat"]).ok();
    for (f, before) in files.iter().zip(&written) {
        assert!(&read(f) == before, "{f} changed after a partial run");
    }
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    assert_eq!(p.entries(), entries);

    // An absent instance is named, and nothing is computed.
    let gone = entries.iter().find(|e| e.starts_with("kmeans/")).unwrap();
    std::fs::remove_dir_all(p.path(&format!("store/{gone}"))).unwrap();
    let r = p.ktlab(&["report", "exp.toml"]).fails(1);
    assert!(
        r.stderr.contains("1 stage instance(s) of seeded are not in the store: clusters[k="),
        "{}",
        r.stderr
    );
    assert_eq!(p.entries().len(), entries.len() - 1);
}

#[test]
fn provenance_traces_every_cell_to_its_instances() {
    // provenance.json lists, per cell, one instance per seed with its key and value, and
    // `explain --cell` shows the same instances with their key inputs.
    let p = Project::new();
    p.write("exp.toml", SEEDED);
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&p.read("results/seeded/provenance.json")).unwrap();
    assert_eq!(doc["experiment"], "seeded");
    // When the last instance finished, to the second (UTC), from the store's manifests.
    let computed = doc["computed"].as_str().expect("a `computed` date");
    assert!(
        computed.len() == 20 && computed.ends_with('Z') && computed.as_bytes()[10] == b'T',
        "{computed}"
    );
    assert!(computed >= "2026-01-01T00:00:00Z", "{computed}");
    let table = &doc["tables"][0];
    assert_eq!(table["name"], "cluster_quality");
    let cell = table["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "k=4")
        .expect("a k=4 cell");
    assert_eq!(cell["row"], "HOG → k-means");
    assert_eq!(cell["n"], 3);
    let instances = cell["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3);
    let mut seeds: Vec<u64> = instances.iter().map(|i| i["seeds"][0].as_u64().unwrap()).collect();
    seeds.sort_unstable();
    assert_eq!(seeds, [0, 1, 2]);
    let values: Vec<f64> = instances.iter().map(|i| i["value"].as_f64().unwrap()).collect();
    let mean = values.iter().sum::<f64>() / 3.0;
    assert!((mean - cell["mean"].as_f64().unwrap()).abs() < 1e-12);
    for i in instances {
        let key = i["key"].as_str().unwrap();
        assert_eq!(i["kind"], "cluster-metrics");
        assert!(p.path(&format!("store/cluster-metrics/{key}/manifest.json")).exists(), "{key}");
    }

    let r = p
        .ktlab(&["explain", "exp.toml", "--cell", "cluster_quality:HOG → k-means:k=4"])
        .ok();
    assert!(r.stdout.contains("3 value(s)"), "{}", r.stdout);
    for i in instances {
        assert!(r.stdout.contains(i["key"].as_str().unwrap()), "{}", r.stdout);
    }
    let r = p
        .ktlab(&["explain", "exp.toml", "--cell", "cluster_quality:HOG → k-means:k=5"])
        .fails(2);
    r.stderr_has("no column `k=5`").stderr_has("`k=4`");
    p.ktlab(&["explain", "exp.toml", "--cell", "cluster_quality"])
        .fails(2)
        .stderr_has("TABLE:ROW:COLUMN");

    // A copy of the project elsewhere (a colleague's clone: another folder, an empty store)
    // plans every instance of the committed provenance.json with the same key; another
    // parameter does not, and the check says which.
    let q = Project::new();
    q.write("exp.toml", SEEDED);
    std::fs::create_dir_all(q.path("committed")).unwrap();
    std::fs::copy(p.path("results/seeded/provenance.json"), q.path("committed/provenance.json")).unwrap();
    let r = q
        .ktlab(&["plan", "exp.toml", "--check-provenance", "committed/provenance.json"])
        .ok();
    let total = instances_in(&doc);
    assert!(
        r.stdout
            .contains(&format!("{total} of {total} stage instances planned with the same key")),
        "{}",
        r.stdout
    );
    let r = q
        .ktlab(&[
            "plan",
            "exp.toml",
            "--check-provenance",
            "committed/provenance.json",
            "--set",
            "stages.clusters.iterations=3",
        ])
        .fails(2);
    assert!(r.stdout.contains(&format!("0 of {total} stage instances")), "{}", r.stdout);
    assert!(r.stdout.contains("quality [k=4,seed=0]: cluster-metrics"), "{}", r.stdout);
    r.stderr_has("committed/provenance.json: does not match this plan")
        .stderr_has("table `cluster_quality`, cell `HOG → k-means`, `k=4`: other instances (not planned here: cluster-metrics ");
    q.ktlab(&["plan", "exp.toml", "--check-provenance", "exp.toml"])
        .fails(2)
        .stderr_has("exp.toml: not JSON");
    // Without the store, keys only; with it (in `p`), every recorded value too.
    let cells = 2;
    assert!(r_ok(&q, "committed/provenance.json").contains(&format!(
        "recorded values: 0 of {cells} cells checked against the store; the other {cells} not checked"
    )));
    p.write("committed/provenance.json", &p.read("results/seeded/provenance.json"));
    assert!(r_ok(&p, "committed/provenance.json").contains(&format!("recorded values: all {cells} cells checked against the store")));
    // What must fail (exit 2), each with its reason: edited, dropped or foreign content.
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut d = doc.clone();
        f(&mut d);
        serde_json::to_string_pretty(&d).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "another experiment",
            edit(&|d| d["experiment"] = "other".into()),
            "it is the provenance of experiment `other`, not of `seeded`",
        ),
        (
            "no cells",
            edit(&|d| d["tables"] = serde_json::json!([])),
            "it has no cells: nothing to check",
        ),
        (
            "no cells in its table",
            edit(&|d| d["tables"][0]["cells"] = serde_json::json!([])),
            "it has no cells: nothing to check",
        ),
        (
            "a dropped cell",
            edit(&|d| {
                d["tables"][0]["cells"].as_array_mut().unwrap().retain(|c| c["column"] != "k=16");
            }),
            "cell `HOG → k-means`, `k=16`: planned here, missing from the file",
        ),
        (
            "an edited value",
            edit(&|d| {
                let v = d["tables"][0]["cells"][0]["instances"][1]["value"].as_f64().unwrap();
                d["tables"][0]["cells"][0]["instances"][1]["value"] = (v + 0.01).into();
            }),
            "the store has ",
        ),
        (
            "an edited mean",
            edit(&|d| {
                let v = d["tables"][0]["cells"][0]["mean"].as_f64().unwrap();
                d["tables"][0]["cells"][0]["mean"] = (v + 0.01).into();
            }),
            ": mean ",
        ),
        (
            "an instance dropped from a cell",
            edit(&|d| {
                d["tables"][0]["cells"][0]["instances"].as_array_mut().unwrap().pop();
            }),
            "planned here but not recorded: cluster-metrics ",
        ),
        (
            "an edited key",
            edit(&|d| {
                let k = d["tables"][0]["cells"][0]["instances"][0]["key"]
                    .as_str()
                    .unwrap()
                    .replace(|c: char| c != 'a', "a");
                d["tables"][0]["cells"][0]["instances"][0]["key"] = k.into();
            }),
            "not planned here: cluster-metrics aaaa",
        ),
        (
            "a renamed table",
            edit(&|d| d["tables"][0]["name"] = "quality".into()),
            "table `quality` is not one this plan writes",
        ),
    ];
    for (what, text, needle) in cases {
        p.write("committed/provenance.json", &text);
        let r = p.ktlab(&["plan", "exp.toml", "--check-provenance", "committed/provenance.json"]);
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        assert!(
            r.stderr.contains("does not match this plan") && r.stderr.contains(needle),
            "{what}: {}",
            r.stderr
        );
    }
}

/// `plan --check-provenance FILE` in `p`, which must pass; its stdout.
fn r_ok(p: &Project, file: &str) -> String {
    p.ktlab(&["plan", "exp.toml", "--check-provenance", file]).ok().stdout
}

/// The distinct instances a provenance.json names.
fn instances_in(doc: &serde_json::Value) -> usize {
    let mut keys: Vec<&str> = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["cells"].as_array().unwrap())
        .flat_map(|c| c["instances"].as_array().unwrap())
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

/// Small splits: two seeds of a short training run and k-NN probes at every layer.
const LAYERED_DATASETS: &str = r#"
[shapes]
format = "synthetic"
image_size = 32
seed = 0
splits = { train = 300, test = 200 }
"#;

const LAYERED: &str = r#"
name = "layered"
seeds = [0, 1]

[stages.random]
kind = "init"
arch = "alexnet-small"
width = 0.25

[stages.supervised]
kind = "train"
label = "supervised alexnet-small, a label long enough to need a wide legend"
arch = "alexnet-small"
width = 0.25
data = "shapes:train"
labels = "truth"
epochs = 2
batch_size = 64

[stages.probe_random]
kind = "knn-probe"
label = "random init"
model = "random"
layers = ["conv1", "conv2", "conv3", "conv4", "conv5"]
train = "shapes:train"
test = "shapes:test"

[stages.probe_supervised]
kind = "knn-probe"
label = "supervised"
model = "supervised"
layers = ["conv1", "conv2", "conv3", "conv4", "conv5"]
train = "shapes:train"
test = "shapes:test"

[[tables]]
name = "probes"
metric = "top1"
rows = "stage"
columns = "layer"
"#;

#[test]
fn layer_tables_and_training_curves_are_plotted_and_rebuilt_by_report() {
    let p = Project::new();
    p.write("datasets.toml", LAYERED_DATASETS);
    p.write("exp.toml", LAYERED);
    let run = p.ktlab(&["run", "exp.toml"]).ok();
    let svg = p.read("results/layered/probes.svg");
    for text in [
        "layer",
        "conv1",
        "conv5",
        "random init",
        "supervised",
        "top1 (mean ± std over 2 seeds)",
    ] {
        assert!(svg_has_text(&svg, text), "{text} missing from probes.svg");
    }
    let curves = p.read("results/layered/training_curves.svg");
    for text in [
        "epoch",
        "training loss (cross-entropy)",
        "training accuracy (fraction correct)",
        "supervised alexnet-small, a label long enough to need a wide legend",
        "layered: training curves (mean over seeds, band ± std)",
    ] {
        assert!(svg_has_text(&curves, text), "{text} missing from training_curves.svg");
    }
    assert!(run.stdout.contains(", training_curves (.svg .png), "), "{}", run.stdout);
    let files = ["probes.svg", "probes.png", "training_curves.svg", "training_curves.png"];
    let written: Vec<Vec<u8>> = files.iter().map(|f| read_png_or_text(&p, f)).collect();
    for f in files {
        std::fs::remove_file(p.path(&format!("results/layered/{f}"))).unwrap();
    }
    // Every training instance's epochs.csv, collected under curves/ (one per seed here).
    assert!(run.stdout.contains(", curves/ (2 epochs.csv)"), "{}", run.stdout);
    let stored: Vec<Vec<u8>> = p
        .entries()
        .iter()
        .filter(|e| e.starts_with("train/"))
        .map(|e| std::fs::read(p.path(&format!("store/{e}/epochs.csv"))).unwrap())
        .collect();
    assert_eq!(stored.len(), 2);
    let collected: Vec<Vec<u8>> = ["supervised@seed=0.csv", "supervised@seed=1.csv"]
        .iter()
        .map(|f| std::fs::read(p.path(&format!("results/layered/curves/{f}"))).unwrap())
        .collect();
    assert!(stored.iter().all(|s| collected.contains(s)) && collected[0] != collected[1]);
    p.write("results/layered/curves/gone.csv", "epoch,loss\n");
    p.ktlab(&["report", "exp.toml"]).ok();
    for (f, before) in files.iter().zip(&written) {
        assert!(&read_png_or_text(&p, f) == before, "{f} differs after report");
    }
    assert!(!p.path("results/layered/curves/gone.csv").exists(), "a stale curve file is left");
    assert_eq!(
        std::fs::read(p.path("results/layered/curves/supervised@seed=1.csv")).unwrap(),
        collected[1]
    );
}

/// A plot file's bytes; a PNG checked as [`read_png`] does.
fn read_png_or_text(p: &Project, file: &str) -> Vec<u8> {
    let rel = format!("results/layered/{file}");
    if file.ends_with(".png") {
        read_png(p, &rel)
    } else {
        std::fs::read(p.path(&rel)).unwrap()
    }
}

/// A training stage without a label (a target, say) is named in the training curves by the
/// label of the probe that reads it, not by its stage name.
#[test]
fn training_curves_name_unlabelled_stages_by_their_readers_label() {
    let p = Project::new();
    p.write("datasets.toml", LAYERED_DATASETS);
    let exp = LAYERED.replace(
        "label = \"supervised alexnet-small, a label long enough to need a wide legend\"\n",
        "",
    );
    assert_ne!(exp, LAYERED);
    p.write("exp.toml", &exp);
    p.ktlab(&["run", "exp.toml"]).ok();
    let curves = p.read("results/layered/training_curves.svg");
    assert!(svg_has_text(&curves, "supervised (trained)"), "{curves}");
}

/// One row over three seeds, one from a stage with a fixed seed (one instance for all
/// seeds: the cluster metrics of it draw no random numbers either).
const MIXED: &str = r#"
name = "mixed"
seeds = [0, 1, 2]

[stages.feat]
kind = "features"
model = "hog"
data = "shapes:train"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 8
iterations = 10

[stages.labels]
kind = "assign"
centroids = "clusters"
features = "feat"

[stages.quality]
kind = "cluster-metrics"
label = "seeded"
labels = "labels"
truth = "shapes:train"

[stages.clusters_fixed]
kind = "kmeans"
features = "feat"
k = 8
iterations = 10
seed = 7

[stages.labels_fixed]
kind = "assign"
centroids = "clusters_fixed"
features = "feat"

[stages.quality_fixed]
kind = "cluster-metrics"
label = "fixed seed"
labels = "labels_fixed"
truth = "shapes:train"

[[tables]]
name = "mixed"
metric = "nmi"
rows = "stage"
columns = "layer"
"#;

#[test]
fn a_caption_counts_the_seeds_most_cells_have_and_a_fixed_seed_row_says_n_1() {
    let p = Project::new();
    p.write("exp.toml", MIXED);
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let csv = p.read("results/mixed/mixed.csv");
    let lines: Vec<&str> = csv.lines().collect();
    // NMI has no layer: its column is named after it.
    assert_eq!(lines[0], "stage,nmi_mean,nmi_std,nmi_n", "{csv}");
    assert!(lines[1].starts_with("seeded,") && lines[1].ends_with(",3"), "{csv}");
    assert!(lines[2].starts_with("fixed seed,") && lines[2].ends_with(",0,1"), "{csv}");
    let md = p.read("results/mixed/mixed.md");
    assert!(
        md.contains("Mean ± std over 3 seeds (n where it differs); best per column in bold."),
        "{md}"
    );
    let fixed = md.lines().find(|l| l.starts_with("| fixed seed |")).expect("the fixed row");
    assert!(fixed.ends_with(" (n=1) |"), "{md}");
    let seeded = md.lines().find(|l| l.starts_with("| seeded |")).expect("the seeded row");
    assert!(seeded.contains(" ± ") && !seeded.contains("(n="), "{md}");
    assert!(!md.contains("1 seeds"), "{md}");
    let tex = p.read("results/mixed/mixed.tex");
    assert!(
        tex.contains("over 3 seeds (n where it differs)") && !tex.contains("1 seeds"),
        "{tex}"
    );
}

#[test]
fn a_stage_split_by_a_key_off_the_axes_keeps_one_row_per_value_under_one_label() {
    // One stage swept over k with k on no axis: rows `label (k=4)`, `label (k=16)`, not a
    // label clash; two stages sharing a label are refused.
    let p = Project::new();
    let text = SEEDED
        .replace("columns = \"stages.clusters.k\"", "columns = \"layer\"")
        .replace("column = \"4\"", "column = \"-\"")
        .replace("row = \"HOG → k-means\"", "row = \"HOG → k-means (k=4)\"");
    p.write("exp.toml", &text.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"));
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let csv = p.read("results/seeded/cluster_quality.csv");
    let rows: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(rows, ["HOG → k-means (k=4)", "HOG → k-means (k=16)"], "{csv}");
    assert!(csv.lines().nth(1).unwrap().ends_with(",2,0.25"), "{csv}");
    let clash = text.replace(
        "[[tables]]",
        "[stages.quality2]\nkind = \"cluster-metrics\"\nlabel = \"HOG → k-means\"\nlabels = \"labels\"\ntruth = \"shapes:train\"\n\n[[tables]]",
    );
    p.write("clash.toml", &clash);
    p.ktlab(&["plan", "clash.toml"])
        .fails(2)
        .stderr_has("clash.toml:")
        .stderr_has("two stages of table `cluster_quality` share the label `HOG → k-means`: `quality` and `quality2`");
}

/// A table with the layers as columns of a metric that has none (NMI), and a reference
/// that names its column `-`, as files written before the column had a name do.
const NO_LAYER: &str = r#"
name = "no_layer"
seeds = [0, 1]

[stages.feat]
kind = "features"
model = "pixels"
data = "tiny:train"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 3
iterations = 5

[stages.labels]
kind = "assign"
centroids = "clusters"
features = "feat"

[stages.quality]
kind = "cluster-metrics"
label = "pixel clusters"
labels = "labels"
truth = "tiny:train"

[[tables]]
name = "cluster_nmi"
metric = "nmi"
rows = "stage"
columns = "layer"

[[tables.reference]]
row = "pixel clusters"
column = "-"
value = 0.5
"#;

#[test]
fn the_column_of_a_metric_without_layers_is_named_after_it_and_references_may_use_either_name() {
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    p.write("exp.toml", NO_LAYER);
    let by_name = NO_LAYER
        .replace("name = \"no_layer\"", "name = \"by_name\"")
        .replace("column = \"-\"", "column = \"nmi\"");
    p.write("by_name.toml", &by_name);
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    p.ktlab(&["run", "by_name.toml", "-q"]).ok();
    let md = p.read("results/no_layer/cluster_nmi.md");
    assert!(md.contains("| stage | nmi | nmi ref. | Δ |"), "{md}");
    assert!(md.contains("| pixel clusters | **") && md.contains(" | 0.500 | "), "{md}");
    assert_eq!(p.read("results/by_name/cluster_nmi.md"), md);
    // Both names in one table are one cell twice.
    let twice = NO_LAYER.to_string() + "\n[[tables.reference]]\nrow = \"pixel clusters\"\ncolumn = \"nmi\"\nvalue = 0.4\n";
    p.write("twice.toml", &twice);
    p.ktlab(&["plan", "twice.toml"])
        .fails(2)
        .stderr_has("a second reference for the cell `pixel clusters`, `nmi`");
    // `explain --cell` and `plan --check-provenance` take the new name and the old one.
    for column in ["nmi", "-"] {
        p.ktlab(&["explain", "exp.toml", "--cell", &format!("cluster_nmi:pixel clusters:{column}")])
            .ok();
    }
    let provenance = p.read("results/no_layer/provenance.json");
    assert!(provenance.contains("\"column\": \"nmi\""), "{provenance}");
    p.write("old.json", &provenance.replace("\"column\": \"nmi\"", "\"column\": \"-\""));
    p.ktlab(&["plan", "exp.toml", "--check-provenance", "old.json"]).ok();
}
