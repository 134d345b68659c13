//! `ktlab plan` estimates each instance's time: from the store's history of the same kind
//! (the same instance under another seed, else scaled by its work), else from the model of
//! measured throughputs; `--format json` gives `estimated_seconds` and `source`.
use serde_json::Value;

use crate::common::Project;

const DATASETS: &str = "[tiny]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 60, double = 120 }\n";

const EXPERIMENT: &str = r#"
name = "estimates"
seed = 1
device = "cpu"

[stages.hog]
kind = "features"
model = "hog"
data = "tiny:train"

[stages.clusters]
kind = "kmeans"
features = "hog"
k = 4
iterations = 5

[stages.net]
kind = "train"
arch = "alexnet-small"
width = 0.25
data = "tiny:train"
labels = "truth"
epochs = 2
batch_size = 32
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("datasets.toml", DATASETS);
    p.write("exp.toml", EXPERIMENT);
    p
}

fn plan(p: &Project, set: &[&str]) -> Value {
    let mut args = vec!["plan", "exp.toml", "--format", "json"];
    for s in set {
        args.extend(["--set", s]);
    }
    let run = p.ktlab(&args).ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn instance<'a>(plan: &'a Value, stage: &str) -> &'a Value {
    plan["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["uses"][0]["stage"] == stage)
        .unwrap_or_else(|| panic!("no {stage} in {plan}"))
}

fn seconds(v: &Value) -> f64 {
    v["estimated_seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("no estimated_seconds in {v}"))
}

#[test]
fn without_history_the_model_estimates_and_the_estimate_scales_with_epochs_and_images() {
    let p = project();
    let base = plan(&p, &[]);
    let net = instance(&base, "net");
    assert_eq!(net["source"]["kind"], "model", "{net}");
    assert_eq!(net["images"], 60.0);
    assert!(net["macs_per_image"].as_f64().unwrap() > 1e5, "{net}");
    let epochs = plan(&p, &["stages.net.epochs=4"]);
    let images = plan(&p, &["stages.net.data=tiny:double"]);
    let both = plan(&p, &["stages.net.epochs=4", "stages.net.data=tiny:double"]);
    let work = |v: &Value| instance(v, "net")["work"].as_f64().unwrap();
    assert_eq!(work(&epochs) / work(&base), 2.0, "twice the epochs, twice the work");
    assert_eq!(work(&images) / work(&base), 2.0, "twice the images, twice the work");
    assert_eq!(work(&both) / work(&base), 4.0);
    let (s1, s2, s4) = (seconds(net), seconds(instance(&epochs, "net")), seconds(instance(&both, "net")));
    assert!(s1 < s2 && s2 < s4, "{s1} {s2} {s4}");
    // A start-up cost and the work's share: twice the work adds the work's share again.
    assert!(((s4 - s2) - 2.0 * (s2 - s1)).abs() < 1e-6 * s4, "{s1} {s2} {s4}");
    // The totals: every instance to run, and the critical path hog -> clusters beside net.
    let total = &base["total"];
    assert_eq!(total["to_run"], 3);
    let sum: f64 = ["hog", "clusters", "net"].iter().map(|s| seconds(instance(&base, s))).sum();
    assert!((total["estimated_seconds"].as_f64().unwrap() - sum).abs() < 1e-9, "{total}");
    let chain = seconds(instance(&base, "hog")) + seconds(instance(&base, "clusters"));
    let critical = chain.max(seconds(instance(&base, "net")));
    assert!(
        (total["critical_path_seconds"].as_f64().unwrap() - critical).abs() < 1e-9,
        "{total}"
    );
    let text = p.ktlab(&["plan", "exp.toml"]).ok().stdout;
    assert!(text.contains("(model), will run: new"), "{text}");
    assert!(text.contains("estimated: ~") && text.contains("along the critical path"), "{text}");
}

#[test]
fn history_beats_the_model_the_same_instance_first_then_scaled_by_work() {
    let p = project();
    p.ktlab(&["run", "exp.toml", "--only", "clusters"]).ok();
    let manifest = |kind: &str| -> Value {
        let dir = p.path(&format!("store/{kind}"));
        let entry = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        serde_json::from_str(&std::fs::read_to_string(entry.join("manifest.json")).unwrap()).unwrap()
    };
    let m = manifest("kmeans");
    assert_eq!(m["cost"]["images"], 60.0, "the manifest records what the cost scales with: {m}");
    assert_eq!(m["cost"]["device"], "cpu");
    assert!(m["cost"]["threads"].as_u64().unwrap() >= 1);
    let took = m["seconds"].as_f64().unwrap();
    // Another seed: a new key for k-means (stochastic), the same instance otherwise.
    let reseeded = plan(&p, &["seed=2"]);
    let clusters = instance(&reseeded, "clusters");
    assert_eq!(clusters["state"], "due");
    assert_eq!(clusters["source"], serde_json::json!({"kind": "same", "entries": 1}), "{clusters}");
    assert!(
        (seconds(clusters) - took).abs() < 1e-9,
        "the entry's own time: {clusters} vs {took}"
    );
    assert_eq!(instance(&reseeded, "hog")["state"], "cached", "hog keys no seed");
    // Other parameters: the entry's seconds per unit of work times this one's work.
    let more = plan(&p, &["stages.clusters.k=12", "stages.clusters.iterations=10"]);
    let clusters = instance(&more, "clusters");
    assert_eq!(
        clusters["source"],
        serde_json::json!({"kind": "scaled", "entries": 1}),
        "{clusters}"
    );
    let ratio = seconds(clusters) / took;
    assert!((ratio - 6.0).abs() < 1e-6, "3 x the clusters, 2 x the iterations: {ratio}");
    // A kind without history stays with the model.
    assert_eq!(instance(&more, "net")["source"]["kind"], "model");
    let text = p.ktlab(&["plan", "exp.toml", "--set", "seed=2"]).ok().stdout;
    assert!(text.contains("(history (1 same)), will run"), "{text}");
}

/// A `finetune` stage trains on its labelled subset: the estimate's images are
/// `labels_per_class` of each class (or `label_fraction` of it), not the whole split and
/// the test split (which overestimated a 100-labels-per-class fine-tuning of CIFAR-10 by a
/// factor of 20).
#[test]
fn finetune_is_estimated_from_its_labelled_subset() {
    let p = project();
    p.write(
        "datasets.toml",
        "[tiny]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 80, test = 40 }\n",
    );
    p.write(
        "exp.toml",
        &format!(
            "{EXPERIMENT}\n[stages.ft]\nkind = \"finetune\"\nmodel = \"net\"\ntrain = \"tiny:train\"\ntest = \"tiny:test\"\nepochs = 3\n"
        ),
    );
    let images = |set: &[&str]| instance(&plan(&p, set), "ft")["images"].as_f64().unwrap();
    // The synthetic shapes have 8 classes of 10 images in 80.
    assert_eq!(images(&[]), 80.0, "the whole train split, not train + test");
    assert_eq!(images(&["stages.ft.labels_per_class=2"]), 16.0);
    assert_eq!(images(&["stages.ft.label_fraction=0.5"]), 40.0);
}

/// `ktlab plan` shows each instance's estimated peak memory and the largest against this
/// machine's; `ktlab run` refuses a plan whose largest instance would not fit (exit 2,
/// nothing computed) unless told to proceed. Today a training stage decodes its whole split:
/// ten million images at AlexNet's 224 px are 1.5 TB before the first step.
#[test]
fn plan_shows_memory_and_run_refuses_what_does_not_fit() {
    let p = Project::new();
    p.write(
        "datasets.toml",
        "[huge]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 10000000 }\n\n\
         [tiny]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 60 }\n",
    );
    let exp = |split: &str| {
        format!(
            "name = \"mem\"\nseed = 1\ndevice = \"cpu\"\n[stages.net]\nkind = \"train\"\narch = \"alexnet\"\nwidth = 0.25\n\
             data = \"{split}\"\nlabels = \"truth\"\nepochs = 1\nbatch_size = 8\n"
        )
    };
    p.write("exp.toml", &exp("huge:train"));
    // Streamed (the default decode budget), only the batches in flight count: it fits.
    let text = p.ktlab(&["plan", "exp.toml"]).ok().stdout;
    assert!(text.contains("(net[default]: images 18 MiB") && !text.contains("GiB ("), "{text}");
    // Decoded whole (a budget above the split's 1.5 TB, as every split was before
    // streaming), the images alone exceed any machine.
    let whole = |args: &[&str]| crate::common::Run::from(p.cmd().args(args).env("KTLAB_DECODE_BUDGET", "2TB").output().unwrap());
    let text = whole(&["plan", "exp.toml"]).ok().stdout;
    let line = text.lines().find(|l| l.contains(" net ")).unwrap();
    assert!(line.contains("will run: new, ~1") && line.ends_with(" GiB"), "{text}");
    assert!(
        text.contains("peak memory: ~1") && text.contains("(net[default]: images 1") && text.contains("this machine has"),
        "{text}"
    );
    let json: Value = serde_json::from_str(&whole(&["plan", "exp.toml", "--format", "json"]).ok().stdout).unwrap();
    let inst = &json["instances"][0];
    assert_eq!(inst["memory"]["images"].as_f64(), Some(1e7 * 3.0 * 224.0 * 224.0), "{inst}");
    let r = whole(&["run", "exp.toml"]).fails(2);
    assert!(
        r.stderr.contains("stage `net` (default) would need about") && r.stderr.contains("--ignore-memory"),
        "{}",
        r.stderr
    );
    assert!(p.entries().is_empty(), "{:?}", p.entries());
    // What fits runs as before, also beside a stage that would not fit but that this run
    // does not compute (`--only`: the check counts what the run computes, not the file).
    let small = exp("tiny:train")
        .replace("arch = \"alexnet\"", "arch = \"alexnet-small\"")
        .replace("[stages.net]", "[stages.small]");
    let small_stage = &small[small.find("[stages.small]").unwrap()..];
    p.write("exp.toml", &format!("{}{small_stage}", exp("huge:train")));
    whole(&["run", "exp.toml", "--only", "small", "-q"]).ok();
    assert_eq!(p.entries().len(), 1, "{:?}", p.entries());
}

/// A full-batch (L-BFGS) linear probe holds a layer's training features in float64: over a
/// split of ten million images it is refused, naming the remedy, and the same probe with
/// Adam (its features read from files a batch at a time) fits.
#[test]
fn a_full_batch_probe_that_does_not_fit_is_refused_with_the_adam_remedy() {
    let p = Project::new();
    p.write(
        "datasets.toml",
        "[huge]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 10000000 }\n\n\
         [tiny]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 60 }\n",
    );
    let exp = |solver: &str| {
        format!(
            "name = \"mem\"\nseed = 1\ndevice = \"cpu\"\n[stages.net]\nkind = \"init\"\narch = \"alexnet-small\"\nwidth = 0.25\n\
             [stages.probe]\nkind = \"linear-probe\"\nmodel = \"net\"\nlayers = [\"conv1\", \"conv5\"]\n\
             train = \"huge:train\"\ntest = \"tiny:train\"\nsolver = \"{solver}\"\n"
        )
    };
    p.write("exp.toml", &exp("lbfgs"));
    let r = p.ktlab(&["run", "exp.toml"]).fails(2);
    r.stderr_has("stage `probe` (default) would need about")
        .stderr_has("give it `solver = \"adam\"`");
    assert!(p.entries().is_empty(), "{:?}", p.entries());
    p.write("exp.toml", &exp("adam"));
    let text = p.ktlab(&["plan", "exp.toml"]).ok().stdout;
    let line = text.lines().find(|l| l.contains(" probe ")).unwrap();
    let gib: f64 = line
        .rsplit('~')
        .next()
        .and_then(|t| t.trim_end_matches(" GiB").parse().ok())
        .unwrap_or(f64::MAX);
    assert!(gib < 2.0, "{text}");
}
