//! The evaluation protocols beside the linear probe, end to end: the kNN probe's rows in
//! results.csv.
use crate::common::Project;

const KNN: &str = r#"
name = "knn"
seed = 1

[stages.random]
kind = "init"
arch = "alexnet-small"
width = 0.25

[stages.knn]
kind = "knn-probe"
model = "random"
layers = ["conv1", "conv3", "conv5"]
train = "shapes:train"
test = "shapes:test"
"#;

#[test]
fn knn_probe_reports_top1_and_top5_per_layer() {
    let p = Project::new();
    p.write("exp.toml", KNN);
    let r = p.ktlab(&["run", "exp.toml"]).ok();
    assert!(r.stdout.contains("2 computed"), "{}", r.stdout);
    let csv = p.read("results/knn/results.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "variant,stage,layer,metric,value", "{csv}");
    assert_eq!(lines.len(), 1 + 3 * 2, "{csv}");
    let mut i = 1;
    for layer in ["conv1", "conv3", "conv5"] {
        for metric in ["top1", "top5"] {
            let f: Vec<&str> = lines[i].split(',').collect();
            assert_eq!(&f[..4], ["default", "knn", layer, metric], "{csv}");
            let v: f64 = f[4].parse().unwrap();
            // Eight balanced classes: above chance (1/8 for a top-1, 5/8 for a top-5) even
            // on the features of a random network.
            let chance = if metric == "top1" { 0.125 } else { 0.625 };
            assert!(v > chance && v <= 1.0, "{layer} {metric} {v}\n{csv}");
            i += 1;
        }
        let top = |m: &str| {
            lines
                .iter()
                .find(|l| l.contains(&format!(",{layer},{m},")))
                .unwrap()
                .rsplit(',')
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        assert!(top("top5") >= top("top1"), "{csv}");
    }
    // A second run computes nothing and writes the same rows.
    let r = p.ktlab(&["run", "exp.toml"]).ok();
    assert!(r.stdout.contains("0 computed, 2 cached"), "{}", r.stdout);
    assert_eq!(p.read("results/knn/results.csv"), csv);
}

const FINETUNE: &str = r#"
name = "finetune"
seed = 1

[stages.random]
kind = "init"
arch = "alexnet-small"
width = 0.25

[stages.probe]
kind = "linear-probe"
model = "random"
layers = ["conv5"]
train = "shapes:train"
test = "shapes:test"
epochs = 10

[stages.tuned]
kind = "finetune"
model = "random"
train = "shapes:train"
test = "shapes:test"
epochs = 12

[stages.few]
kind = "finetune"
model = "random"
train = "shapes:train"
test = "shapes:test"
labels_per_class = 10
epochs = 4
"#;

/// Fine-tuning the whole network from random weights (a quarter-width AlexNet, 1000
/// images, 12 epochs) beats the frozen linear probe on conv5 of the same weights (0.365
/// against 0.213 measured; with 4 epochs it did not: 0.18 against 0.21). With 10 labels per
/// class (80 images, 4 epochs) only the rows and their range are checked.
#[test]
fn finetune_reports_whole_network_rows_above_chance() {
    let p = Project::new();
    p.write("exp.toml", FINETUNE);
    p.ktlab(&["run", "exp.toml"]).ok();
    let csv = p.read("results/finetune/results.csv");
    let value = |stage: &str, layer: &str, metric: &str| -> f64 {
        let prefix = format!(",{stage},{layer},{metric},");
        let line = csv
            .lines()
            .find(|l| l.contains(&prefix))
            .unwrap_or_else(|| panic!("no row {prefix}\n{csv}"));
        line.rsplit(',').next().unwrap().parse().unwrap()
    };
    // The whole network is what is scored: layer "".
    let (tuned, few, probe) = (
        value("tuned", "", "top1"),
        value("few", "", "top1"),
        value("probe", "conv5", "top1"),
    );
    eprintln!("finetune top-1 {tuned:.3} (10 labels per class: {few:.3}), frozen conv5 probe {probe:.3}");
    assert!(value("tuned", "", "top5") >= tuned, "{csv}");
    assert!(value("few", "", "top5") >= few, "{csv}");
    // Eight balanced classes: chance is 1/8.
    assert!(tuned > 0.125 && tuned <= 1.0, "{csv}");
    assert!(
        tuned > probe + 0.05,
        "finetune {tuned} does not beat the frozen conv5 probe {probe}\n{csv}"
    );
    assert!((0.0..=1.0).contains(&few), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 3 * 2, "{csv}");
    let histories: Vec<String> = p
        .entries()
        .into_iter()
        .filter(|e| e.starts_with("finetune/"))
        .map(|e| p.read(&format!("store/{e}/epochs.csv")))
        .collect();
    assert_eq!(histories.len(), 2);
    let mut epochs: Vec<usize> = histories.iter().map(|h| h.lines().count() - 1).collect();
    epochs.sort_unstable();
    assert_eq!(epochs, [4, 12], "{histories:?}");
}
