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
            assert_eq!(&f[..4], ["", "knn", layer, metric], "{csv}");
            let v: f64 = f[4].parse().unwrap();
            // Eight balanced classes: random conv features are far above chance (1/8) and
            // a top-5 is at least the top-1.
            assert!(v > 0.25 && v <= 1.0, "{layer} {metric} {v}\n{csv}");
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
    // No random numbers: the seed is not keyed, so another seed finds everything cached.
    let r = p.ktlab(&["run", "exp.toml", "--set", "seed=2"]).ok();
    assert!(r.stdout.contains("1 computed, 1 cached"), "{}", r.stdout);
    assert_eq!(p.read("results/knn/results.csv"), csv);
}
