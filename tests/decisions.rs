//! `[[decisions]]` end to end: a run and a report evaluate each decision from the store
//! (pass, fail, inconclusive, untestable; paired by seed; best layers), print one line
//! each, write decisions.md and decisions.csv beside the tables, list them in provenance.json
//! (which `plan --check-provenance` checks) and index.html; a value missing from the store
//! makes its decisions "missing".
use std::collections::HashMap;

use crate::common::Project;

const DATASETS: &str = "[tiny]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 60, test = 60 }\n";

/// Random networks probed by kNN: `net` one per seed, `fixed` (its own seed) one for both;
/// pixel clusters per seed for a metric without a layer.
const DECIDED: &str = r#"
name = "decided"
seeds = [0, 1]
device = "cpu"

[stages.net]
kind = "init"
arch = "alexnet-small"
width = 0.25

[stages.fixed]
kind = "init"
arch = "alexnet-small"
width = 0.25
seed = 9

[stages.knn_net]
kind = "knn-probe"
model = "net"
layers = ["conv1", "conv3"]
train = "tiny:train"
test = "tiny:test"
k = 3

[stages.knn_fixed]
kind = "knn-probe"
model = "fixed"
layers = ["conv1", "conv3"]
train = "tiny:train"
test = "tiny:test"
k = 3

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
labels = "labels"
truth = "tiny:train"

[[decisions]]
name = "G_pass"
claim = "per-seed networks differ from the fixed one by at least -2"
metric = "top1"
a = "knn_net"
b = "knn_fixed"
layers = ["conv1", "conv3"]
pass = -2

[[decisions]]
name = "G_fail"
claim = "a top-1 of 2"
metric = "top1"
a = "knn_net"
layers = ["conv1"]
pass = 2

[[decisions]]
name = "G_inconclusive"
claim = "neither"
metric = "top1"
a = "knn_net"
b = "knn_fixed"
layers = ["conv3"]
pass = 2
fail = -2

[[decisions]]
name = "G_untestable"
claim = "clusters once G_fail holds"
metric = "nmi"
a = "quality"
pass = 0
requires = ["G_fail"]

[[decisions]]
name = "G_best"
claim = "best layers"
metric = "top1"
a = "knn_net"
b = "knn_fixed"
layers = "best"
select = { a = "knn_fixed" }
pass = -2

[[decisions]]
name = "G_also"
claim = "clusters with G_pass"
metric = "nmi"
a = "quality"
pass = 0
also = ["G_pass"]
"#;

/// results.csv's values: (stage, seed, layer, metric) -> value.
fn values(p: &Project) -> HashMap<(String, String, String, String), f64> {
    let csv = p.read("results/decided/results.csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("variant,seed,stage,layer,metric,value"), "{csv}");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ((f[2].into(), f[1].into(), f[3].into(), f[4].into()), f[5].parse().unwrap())
        })
        .collect()
}

#[test]
fn decisions_are_evaluated_written_traced_and_checked() {
    let p = Project::new();
    p.write("datasets.toml", DATASETS);
    p.write("exp.toml", DECIDED);
    let run = p.ktlab(&["run", "exp.toml"]).ok();
    for line in [
        "decision G_pass: pass (Δ ",
        "decision G_fail: fail (top1 ",
        "decision G_inconclusive: inconclusive (Δ ",
        "decision G_untestable: untestable: G_fail did not pass (nmi ",
        "decision G_best: pass (Δ ",
        "decision G_also: pass (nmi ",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    assert!(run.stdout.contains(", decisions.md and decisions.csv, "), "{}", run.stdout);

    // The quantities, from results.csv: per seed, knn_net minus knn_fixed's one value.
    let v = values(&p);
    let get = |stage: &str, seed: &str, layer: &str| v[&(stage.to_string(), seed.to_string(), layer.to_string(), "top1".to_string())];
    assert_eq!(
        get("knn_fixed", "0", "conv1"),
        get("knn_fixed", "1", "conv1"),
        "one instance for both seeds"
    );
    let q: Vec<f64> = ["0", "1"]
        .iter()
        .map(|s| get("knn_net", s, "conv1") - get("knn_fixed", s, "conv1"))
        .collect();
    let mean = (q[0] + q[1]) / 2.0;
    let std = ((q[0] - mean).powi(2) + (q[1] - mean).powi(2)).sqrt();
    let csv = p.read("results/decided/decisions.csv");
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0].join(","),
        "decision,claim,metric,a,b,layer_a,layer_b,mean_a,mean_b,mean,std,min,max,n,pass,fail,outcome,note"
    );
    // G_pass has two layers, the others one each.
    assert_eq!(rows.len(), 1 + 2 + 5, "{csv}");
    let g = &rows[1];
    assert_eq!(&g[..7], ["G_pass", g[1], "top1", "knn_net", "knn_fixed", "conv1", "conv1"]);
    let num = |s: &str| s.parse::<f64>().unwrap();
    assert!((num(g[9]) - mean).abs() < 1e-12, "{csv}");
    assert!((num(g[10]) - std).abs() < 1e-12, "{csv}");
    assert!((num(g[11]) - q[0].min(q[1])).abs() < 1e-12 && (num(g[12]) - q[0].max(q[1])).abs() < 1e-12);
    assert_eq!(&g[13..], ["2", "-2", "", "pass", ""]);
    assert_eq!(rows[2][5], "conv3");
    // Best layers: knn_fixed picks a's (and its own, b's), first layer on a tie.
    let best = |stage: &str| {
        if get(stage, "0", "conv3") > get(stage, "0", "conv1") {
            "conv3"
        } else {
            "conv1"
        }
    };
    let b = rows.iter().find(|r| r[0] == "G_best").unwrap();
    assert_eq!((b[5], b[6]), (best("knn_fixed"), best("knn_fixed")), "{csv}");
    let u = rows.iter().find(|r| r[0] == "G_untestable").unwrap();
    assert_eq!((u[16], u[17]), ("untestable", "G_fail did not pass"));
    assert!(num(u[9]) > 0.0, "the numbers of an untestable decision are still there");

    let md = p.read("results/decided/decisions.md");
    assert!(md.starts_with("# Decisions: decided\n\n| decision | claim |"), "{md}");
    assert!(
        md.contains("| G\\_inconclusive | neither | top1 | knn\\_net | knn\\_fixed | conv3 |"),
        "{md}"
    );
    assert!(md.contains("| ≥ 2 | ≤ -2 | **inconclusive** |"), "{md}");
    assert!(
        md.contains(&format!(
            "- G\\_best: a's layer {}, the highest mean top1 of knn\\_fixed",
            best("knn_fixed")
        )),
        "{md}"
    );
    let html = p.read("results/decided/index.html");
    assert!(html.contains("<section id=\"decisions\">") && html.contains("<td><strong>untestable</strong></td>"));

    // provenance.json: each decision with its instances; the plan's check reads them.
    let doc: serde_json::Value = serde_json::from_str(&p.read("results/decided/provenance.json")).unwrap();
    let d = &doc["decisions"];
    assert_eq!(d.as_array().unwrap().len(), 6);
    assert_eq!(d[0]["outcome"], "pass");
    let a = d[0]["comparisons"][0]["a"].as_array().unwrap();
    assert_eq!(a.len(), 2, "one knn_net instance per seed");
    assert_eq!(d[0]["comparisons"][0]["b"].as_array().unwrap().len(), 1);
    assert_eq!(d[4]["selections"][0]["stage"], "knn_fixed");
    let r = p
        .ktlab(&["plan", "exp.toml", "--check-provenance", "results/decided/provenance.json"])
        .ok();
    // The default tables' cells and the six decisions.
    assert!(r.stdout.contains("recorded values: all "), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("provenance results/decided/provenance.json: 5 of 5 stage instances planned"),
        "{}",
        r.stdout
    );
    let mut edited = doc.clone();
    edited["decisions"][1]["outcome"] = "pass".into();
    p.write("edited.json", &serde_json::to_string_pretty(&edited).unwrap());
    p.ktlab(&["plan", "exp.toml", "--check-provenance", "edited.json"])
        .fails(2)
        .stderr_has("decision `G_fail`: outcome \"pass\", from the store's values fail");
    let mut edited = doc.clone();
    edited["decisions"].as_array_mut().unwrap().pop();
    p.write("edited.json", &serde_json::to_string_pretty(&edited).unwrap());
    p.ktlab(&["plan", "exp.toml", "--check-provenance", "edited.json"])
        .fails(2)
        .stderr_has("decision `G_also`: planned here, missing from the file");
    let changed = DECIDED.replace(
        "pass = -2\n\n[[decisions]]\nname = \"G_fail\"",
        "pass = -1\n\n[[decisions]]\nname = \"G_fail\"",
    );
    p.write("exp.toml", &changed);
    p.ktlab(&["plan", "exp.toml", "--check-provenance", "results/decided/provenance.json"])
        .fails(2)
        .stderr_has("decision `G_pass`: another rule (`pass` -2.0, planned -1.0)");
    p.write("exp.toml", DECIDED);

    // `report` rewrites the files byte for byte.
    let before = (md.clone(), csv.clone());
    std::fs::remove_file(p.path("results/decided/decisions.md")).unwrap();
    let r = p.ktlab(&["report", "exp.toml"]).ok();
    assert!(r.stdout.contains("decision G_best: pass"), "{}", r.stdout);
    assert_eq!(
        (p.read("results/decided/decisions.md"), p.read("results/decided/decisions.csv")),
        before
    );

    // Without knn_net's seed-1 entry, what needs it is missing; the rest still decides,
    // and the folder stays as it was.
    let key = d[0]["comparisons"][0]["a"][1]["key"].as_str().unwrap();
    assert_eq!(d[0]["comparisons"][0]["a"][1]["seeds"][0], 1);
    std::fs::remove_dir_all(p.path(&format!("store/knn-probe/{key}"))).unwrap();
    let r = p.ktlab(&["report", "exp.toml"]).fails(1);
    assert!(
        r.stdout
            .contains("decision G_pass: missing (`knn_net` has no `top1` at conv1 in the store (seed 1); `knn_net` has no `top1` at conv3 in the store (seed 1))"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("decision G_also: missing: also needs G_pass to pass (G_pass missing) (nmi "),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("decision G_untestable: untestable: G_fail did not pass"),
        "{}",
        r.stdout
    );
    assert_eq!(p.read("results/decided/decisions.md"), before.0);
}
