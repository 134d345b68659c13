//! `task = "contrastive"` end to end: held-out instance retrieval well above chance after a
//! short run, the metric named in `epochs.csv`, and the model (its projection head left
//! aside) read by features, k-means, a target's `init` and every probe like a rotation
//! model.
use crate::common::Project;

fn rows<'a>(csv: &'a str, metric: &str) -> Vec<Vec<&'a str>> {
    csv.lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.contains(&metric))
        .collect()
}

fn value(csv: &str, metric: &str) -> f64 {
    rows(csv, metric)[0].last().unwrap().parse().unwrap()
}

#[test]
fn contrastive_retrieval_beats_chance_and_its_epochs_name_the_metric() {
    // 400 synthetic images, 40 held out (chance 1/40): a quarter-width AlexNet for three
    // short epochs.
    let p = Project::new();
    p.write(
        "exp.toml",
        r#"name = "simclr"
seed = 3
[stages.pretext]
kind = "pretext"
task = "contrastive"
arch = "alexnet-small"
width = 0.25
data = "shapes:train"
image_size = 32
epochs = 3
batch_size = 64
optimizer = "adam"
lr = 0.001
"#,
    );
    p.write(
        "datasets.toml",
        "[shapes]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 400 }\n",
    );
    let r = p.ktlab(&["run", "exp.toml", "-v"]).ok();
    assert!(r.stderr.contains("retrieval top-1"), "{}", r.stderr);
    let csv = p.read("results/simclr/results.csv");
    let heldout = value(&csv, "pretext_heldout_retrieval_top1");
    let chance = value(&csv, "pretext_heldout_retrieval_top1_chance");
    eprintln!("held-out retrieval top-1 {heldout:.3} (chance {chance:.3})");
    assert_eq!(chance, 1.0 / 40.0);
    assert!(heldout > 5.0 * chance, "retrieval {heldout} against chance {chance}");
    assert_eq!(rows(&csv, "pretext_train_retrieval_top1").len(), 1, "{csv}");
    assert!(rows(&csv, "pretext_heldout_accuracy").is_empty(), "{csv}");
    // epochs.csv names the metric, and the loss falls.
    let entry = p.entries().into_iter().find(|e| e.starts_with("pretext/")).unwrap();
    let epochs = std::fs::read_to_string(p.path(&format!("store/{entry}/epochs.csv"))).unwrap();
    let mut lines = epochs.lines();
    assert_eq!(lines.next(), Some("epoch,loss,retrieval_top1,lr"));
    let losses: Vec<f64> = lines.map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert!(losses[2] < losses[0], "{losses:?}");
    let json = std::fs::read_to_string(p.path(&format!("store/{entry}/model.json"))).unwrap();
    assert!(json.contains("\"projection\"") && json.contains("\"out\": 128"), "{json}");
}

#[test]
fn a_contrastive_model_flows_through_features_clusters_a_target_and_the_probes() {
    let p = Project::new();
    p.write(
        "exp.toml",
        r#"name = "flow"
seed = 5
[stages.pretext]
kind = "pretext"
task = "contrastive"
arch = "alexnet-small"
width = 0.25
data = "shapes:test"
epochs = 1
batch_size = 32
projection_dim = 16
temperature = 0.2
[stages.feat]
kind = "features"
model = "pretext"
layer = "conv5"
data = "shapes:test"
[stages.clusters]
kind = "kmeans"
features = "feat"
k = 5
[stages.labels]
kind = "assign"
centroids = "clusters"
features = "feat"
[stages.target]
kind = "train"
arch = "alexnet-small"
width = 0.25
init = "pretext"
labels = "labels"
epochs = 1
[stages.probe]
kind = "linear-probe"
model = "pretext"
layers = ["conv3"]
train = "shapes:train"
test = "shapes:test"
[stages.knn]
kind = "knn-probe"
model = "pretext"
layers = ["conv5"]
train = "shapes:train"
test = "shapes:test"
[stages.tuned]
kind = "finetune"
model = "pretext"
train = "shapes:train"
test = "shapes:test"
epochs = 1
"#,
    );
    let r = p.ktlab(&["run", "exp.toml", "-v"]).ok();
    assert!(r.stderr.contains("fresh classifier head (the init model has none)"), "{}", r.stderr);
    let csv = p.read("results/flow/results.csv");
    for metric in ["pretext_heldout_retrieval_top1", "top1"] {
        assert!(!rows(&csv, metric).is_empty(), "{metric}: {csv}");
    }
    assert!(csv.lines().any(|l| l.starts_with("knn") || l.contains(",knn,")), "{csv}");
    assert!(csv.lines().any(|l| l.contains("tuned")), "{csv}");
}
