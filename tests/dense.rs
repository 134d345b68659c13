//! The dense pretext tasks end to end (`task = "colorization"`, `task = "inpainting"`): the
//! held-out metric beats its trivial baseline after a short run, `epochs.csv` names the
//! metric, the decoder is recorded and left out of the backbone that features, a target's
//! `init` and the probes read, and bad values are located errors.
use crate::common::Project;

fn rows<'a>(csv: &'a str, metric: &str) -> Vec<Vec<&'a str>> {
    csv.lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.contains(&metric))
        .collect()
}

fn value(csv: &str, metric: &str) -> f64 {
    rows(csv, metric)
        .first()
        .unwrap_or_else(|| panic!("no {metric} in {csv}"))
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

const SHAPES_400: &str = "[shapes]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 400 }\n";

/// An image folder `tones:train` of 400 images whose colour follows their lightness: each
/// pixel blends dark blue and light yellow by a smooth random pattern (two blobs on a
/// gradient), so colour is learnable from L, unlike the synthetic shapes' random hues.
fn write_tones(p: &Project) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut draw = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    for i in 0..400 {
        let (gx, gy) = (draw() - 0.5, draw() - 0.5);
        let blobs: Vec<(f32, f32, f32)> = (0..2).map(|_| (draw() * 32.0, draw() * 32.0, 3.0 + draw() * 6.0)).collect();
        let img = image::RgbImage::from_fn(32, 32, |x, y| {
            let (fx, fy) = (x as f32, y as f32);
            let mut t = 0.5 + gx * (fx / 32.0 - 0.5) + gy * (fy / 32.0 - 0.5);
            for (cx, cy, r) in &blobs {
                let d2 = (fx - cx).powi(2) + (fy - cy).powi(2);
                t += 0.6 * (-d2 / (2.0 * r * r)).exp();
            }
            let t = t.clamp(0.0, 1.0);
            let mix = |dark: f32, light: f32| (dark + (light - dark) * t).round() as u8;
            image::Rgb([mix(20.0, 250.0), mix(40.0, 220.0), mix(120.0, 90.0)])
        });
        let path = p.path(&format!("tones/train/all/{i:03}.png"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save(&path).unwrap();
    }
}

/// Runs a one-stage pretext experiment of `task` on `data` with `extra` keys; returns
/// (results.csv, epochs.csv, model.json).
fn run_pretext(name: &str, task: &str, extra: &str) -> (String, String, String) {
    let p = Project::new();
    write_tones(&p);
    p.write(
        "exp.toml",
        &format!(
            r#"name = "{name}"
seed = 3
[stages.pretext]
kind = "pretext"
task = "{task}"
arch = "alexnet-small"
width = 0.25
batch_size = 32
optimizer = "adam"
lr = 0.002
{extra}
"#
        ),
    );
    p.write(
        "datasets.toml",
        &format!("{SHAPES_400}[tones]\nformat = \"image-folder\"\nroot = \"tones\"\n"),
    );
    p.ktlab(&["run", "exp.toml", "-v"]).ok();
    let entry = p.entries().into_iter().find(|e| e.starts_with("pretext/")).unwrap();
    (
        p.read(&format!("results/{name}/results.csv")),
        p.read(&format!("store/{entry}/epochs.csv")),
        p.read(&format!("store/{entry}/model.json")),
    )
}

#[test]
fn colorization_beats_gray_on_held_out_images_and_names_its_metric() {
    for (loss, epochs) in [("classification", 4), ("regression", 4)] {
        let extra = format!("data = \"tones:train\"\nloss = \"{loss}\"\nepochs = {epochs}");
        let (csv, epochs_csv, json) = run_pretext("color", "colorization", &extra);
        let heldout = value(&csv, "pretext_heldout_ab_accuracy");
        let gray = value(&csv, "pretext_heldout_ab_accuracy_trivial");
        eprintln!("{loss}: held-out ab accuracy {heldout:.3} (gray {gray:.3})");
        assert!((0.0..1.0).contains(&gray));
        assert!(heldout > gray + 0.02, "{loss}: {heldout} against gray {gray}");
        assert_eq!(rows(&csv, "pretext_train_ab_accuracy").len(), 1, "{csv}");
        let mut lines = epochs_csv.lines();
        assert_eq!(lines.next(), Some("epoch,loss,ab_accuracy,lr"));
        let losses: Vec<f64> = lines.map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
        assert!(losses.last() < losses.first(), "{losses:?}");
        assert!(json.contains("\"decoder\"") && json.contains("\"layer\": \"conv5\""), "{json}");
        assert!(json.contains("\"lightness_input\": true"), "{json}");
    }
}

#[test]
fn a_colorization_model_flows_through_features_a_target_and_the_probes() {
    let p = Project::new();
    p.write(
        "exp.toml",
        r#"name = "flow"
seed = 5
[stages.pretext]
kind = "pretext"
task = "colorization"
arch = "resnet18-small"
width = 0.25
data = "shapes:test"
epochs = 1
batch_size = 32
decoder_layer = "layer3"
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
arch = "resnet18-small"
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
    for metric in ["pretext_heldout_ab_accuracy", "top1"] {
        assert!(!rows(&csv, metric).is_empty(), "{metric}: {csv}");
    }
    assert!(csv.lines().any(|l| l.contains("tuned")), "{csv}");
}

#[test]
fn inpainting_beats_the_mean_colour_on_held_out_regions_and_names_its_metric() {
    for mask in ["center", "blocks"] {
        let extra = format!("data = \"shapes:train\"\nmask = \"{mask}\"\nepochs = 4");
        let (csv, epochs_csv, json) = run_pretext("inpaint", "inpainting", &extra);
        let psnr = value(&csv, "pretext_heldout_psnr");
        let trivial = value(&csv, "pretext_heldout_psnr_trivial");
        let (mse, mse_trivial) = (value(&csv, "pretext_heldout_mse"), value(&csv, "pretext_heldout_mse_trivial"));
        eprintln!("{mask}: held-out PSNR {psnr:.2} dB (mean colour {trivial:.2}), MSE {mse:.4} ({mse_trivial:.4})");
        assert!(psnr > trivial + 1.0, "{mask}: {psnr} against {trivial}");
        assert!(mse < mse_trivial, "{mask}: {mse} against {mse_trivial}");
        assert_eq!(rows(&csv, "pretext_train_psnr").len(), 1, "{csv}");
        let mut lines = epochs_csv.lines();
        assert_eq!(lines.next(), Some("epoch,loss,psnr,lr"));
        let losses: Vec<f64> = lines.map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
        assert!(losses.last() < losses.first(), "{losses:?}");
        assert!(json.contains("\"decoder\"") && json.contains("\"side\": 32"), "{json}");
    }
}

#[test]
fn an_inpainting_model_flows_through_features_and_a_probe() {
    let p = Project::new();
    p.write(
        "exp.toml",
        r#"name = "flow"
seed = 5
[stages.pretext]
kind = "pretext"
task = "inpainting"
arch = "vgg16-small"
width = 0.25
data = "shapes:test"
epochs = 1
batch_size = 32
mask = "blocks"
outside_weight = 0.1
[stages.feat]
kind = "features"
model = "pretext"
layer = "conv4"
data = "shapes:test"
[stages.target]
kind = "train"
arch = "vgg16-small"
width = 0.25
init = "pretext"
data = "shapes:train"
labels = "truth"
epochs = 1
[stages.probe]
kind = "linear-probe"
model = "pretext"
layers = ["conv5"]
train = "shapes:train"
test = "shapes:test"
"#,
    );
    p.ktlab(&["run", "exp.toml", "-v"]).ok();
    let csv = p.read("results/flow/results.csv");
    for metric in ["pretext_heldout_psnr", "pretext_heldout_mse_trivial", "top1"] {
        assert!(!rows(&csv, metric).is_empty(), "{metric}: {csv}");
    }
}

#[test]
fn bad_dense_task_values_are_located_errors() {
    let p = Project::new();
    let base = "name = \"bad\"\n[stages.pretext]\nkind = \"pretext\"\narch = \"alexnet-small\"\ndata = \"shapes:unlabeled\"\n";
    let cases: &[(&str, &str)] = &[
        (
            "task = \"colorization\"\nloss = \"l1\"",
            "expected \"classification\" or \"regression\", found \"l1\"",
        ),
        ("task = \"colorization\"\ndecoder_layer = \"conv9\"", "conv9"),
        ("task = \"colorization\"\ndecoder_layer = \"fc6\"", "expected a convolutional layer"),
        (
            "task = \"colorization\"\ntemperature = 0.5",
            "`temperature` applies to contrastive, not to task = \"colorization\"",
        ),
        (
            "task = \"rotation\"\nloss = \"regression\"",
            "`loss` applies to colorization, not to task = \"rotation\"",
        ),
    ];
    for (keys, message) in cases {
        p.write("exp.toml", &format!("{base}{keys}\n"));
        let r = p.ktlab(&["plan", "exp.toml"]).fails(2);
        assert!(r.stderr.contains(message), "{keys}: {}", r.stderr);
        assert!(r.stderr.contains("exp.toml:"), "{keys}: located: {}", r.stderr);
    }
}

#[test]
fn a_task_states_its_baseline_by_its_kind_and_none_without_held_out_images() {
    // The trivial prediction of a dense task is not "chance", and a baseline measured on
    // held-out images does not exist when none are held out: it used to be written as
    // `"chance": null` (inpainting's and colorization's NaN) or `"chance": 1.0` (retrieval
    // among max(0, 1) images), and the summary line said "chance NaN".
    for (task, held_out, word) in [
        ("inpainting", "0.1", Some("trivial")),
        ("inpainting", "0", None),
        ("colorization", "0", None),
        ("contrastive", "0", None),
        ("rotation", "0", Some("chance")),
    ] {
        let p = Project::new();
        p.write(
            "exp.toml",
            &format!(
                "name = \"b\"\nseed = 3\n[stages.pretext]\nkind = \"pretext\"\ntask = \"{task}\"\n\
                 arch = \"alexnet-small\"\nwidth = 0.25\ndata = \"shapes:train\"\nheld_out = {held_out}\n\
                 epochs = 1\nbatch_size = 32\n"
            ),
        );
        p.write("datasets.toml", SHAPES_400.replace("train = 400", "train = 64").as_str());
        let run = p.ktlab(&["run", "exp.toml"]).ok();
        let entry = p.entries().into_iter().find(|e| e.starts_with("pretext/")).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&p.read(&format!("store/{entry}/pretext.json"))).unwrap();
        let csv = p.read("results/b/results.csv");
        let said = format!("{}{}", run.stdout, run.stderr);
        let what = format!("{task}, held_out {held_out}: {summary}\n{said}\n{csv}");
        match word {
            Some("trivial") => {
                assert!(summary["trivial"].as_f64().is_some_and(f64::is_finite), "{what}");
                assert!(summary.get("chance").is_none() && said.contains("(trivial prediction "), "{what}");
                assert!(csv.contains("pretext_heldout_psnr_trivial"), "{what}");
            }
            Some(_) => assert_eq!(summary["chance"].as_f64(), Some(0.25), "{what}"),
            None => {
                assert!(summary.get("chance").is_none() && summary.get("trivial").is_none(), "{what}");
                assert!(!said.contains("chance") && !said.contains("trivial"), "{what}");
                assert!(!csv.contains("_chance") && !csv.contains("_trivial"), "{what}");
            }
        }
    }
}
