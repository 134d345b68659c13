//! `mlp-probe`: the non-linear probe on a model's pooled features, with the linear probe's
//! schedule, `val` choice of the weight decay and rows.
use crate::common::Project;

fn value(csv: &str, stage: &str, layer: &str, metric: &str) -> f64 {
    csv.lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f[1] == stage && f[2] == layer && f[3] == metric)
        .unwrap_or_else(|| panic!("{stage} {layer} {metric}: {csv}"))[4]
        .parse()
        .unwrap()
}

#[test]
fn an_mlp_probe_reads_pooled_features_and_chooses_its_weight_decay_on_val() {
    let p = Project::new();
    p.write(
        "exp.toml",
        r#"name = "mlp"
seed = 2
[stages.random]
kind = "init"
arch = "alexnet-small"
width = 0.25
[stages.mlp]
kind = "mlp-probe"
model = "random"
layers = ["conv2"]
train = "shapes:train"
test = "shapes:test"
hidden = [64]
epochs = 10
[stages.chosen]
kind = "mlp-probe"
model = "random"
layers = ["conv2"]
train = "shapes:train"
test = "shapes:test"
val = "shapes:unlabeled"
weight_decays = [1e-4, 1e-1]
hidden = [64]
epochs = 10
[stages.linear]
kind = "linear-probe"
model = "random"
layers = ["conv2"]
train = "shapes:train"
test = "shapes:test"
solver = "adam"
epochs = 10
"#,
    );
    p.ktlab(&["run", "exp.toml"]).ok();
    let csv = p.read("results/mlp/results.csv");
    let (mlp, linear) = (value(&csv, "mlp", "conv2", "top1"), value(&csv, "linear", "conv2", "top1"));
    eprintln!("conv2 of a random alexnet-small: mlp-probe top-1 {mlp:.3}, linear-probe {linear:.3} (chance 0.125)");
    assert!(mlp > 1.5 * 0.125, "mlp-probe top-1 {mlp} is not clearly above chance (8 classes)");
    let wd = value(&csv, "chosen", "conv2", "weight_decay");
    assert!(wd == 1e-4 || wd == 1e-1, "{wd}");
    assert!(value(&csv, "chosen", "conv2", "top5") > 0.0);
    // A bad value is a located error.
    p.write("exp.toml", &p.read("exp.toml").replacen("hidden = [64]", "hidden = [0]", 1));
    p.ktlab(&["plan", "exp.toml"])
        .fails(2)
        .stderr_has("exp.toml:")
        .stderr_has("`stages.mlp.hidden`");
}
