//! Labels where two splits meet are matched by class name (probes, fine-tuning, a trained
//! model's classifier head taken over by `init`), and what depends on the data is refused
//! at planning where the split is readable: a test class the training split lacks, a kNN `k`
//! beyond the memory bank, a `.npy` matrix whose rows are not the split's images.
use crate::common::{write_npy, Project};

/// An image folder `root/<split>/<class>/*.png`: `per` 32 px images per class, each a solid
/// colour of its class (any network's features separate the classes, so accuracies are
/// exact) with a little brightness variation.
fn write_colour_folder(p: &Project, root: &str, split: &str, classes: &[&str], per: usize) {
    let colour = |class: &str| -> [u8; 3] {
        match class {
            "cat" => [230, 30, 30],
            "dog" => [30, 220, 40],
            "bird" => [30, 40, 230],
            "emu" => [230, 230, 30],
            _ => [128, 128, 128],
        }
    };
    for class in classes {
        let dir = p.path(&format!("{root}/{split}/{class}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per {
            let [r, g, b] = colour(class);
            let shade = |c: u8| c.saturating_sub((i * 2) as u8);
            let img = image::RgbImage::from_pixel(32, 32, image::Rgb([shade(r), shade(g), shade(b)]));
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
}

const PETS: &str = "[pets]\nformat = \"image-folder\"\nroot = \"pets\"\n";

/// A random network probed (kNN, linear) and fine-tuned on `train`, scored on `test`.
fn probes(name: &str, train: &str, test: &str) -> String {
    format!(
        "name = \"{name}\"\ndevice = \"cpu\"\nseed = 3\n\
         [stages.random]\nkind = \"init\"\narch = \"alexnet-small\"\nwidth = 0.25\nclasses = 3\n\
         [stages.knn]\nkind = \"knn-probe\"\nmodel = \"random\"\nlayers = [\"conv1\"]\ntrain = \"{train}\"\ntest = \"{test}\"\nk = 3\n\
         [stages.linear]\nkind = \"linear-probe\"\nmodel = \"random\"\nlayers = [\"conv1\"]\ntrain = \"{train}\"\n\
         test = \"{test}\"\nsolver = \"adam\"\nepochs = 100\nlr = 0.01\n\
         [stages.tuned]\nkind = \"finetune\"\nmodel = \"random\"\ntrain = \"{train}\"\ntest = \"{test}\"\n\
         epochs = 20\nbatch_size = 8\nlr = 0.005\ncrop_padding = 0\n"
    )
}

fn top1(csv: &str, stage: &str) -> f64 {
    let row = csv
        .lines()
        .find(|l| l.contains(&format!(",{stage},")) && l.contains(",top1,"))
        .unwrap_or_else(|| panic!("no top1 row of {stage}:\n{csv}"));
    row.rsplit(',').next().unwrap().parse().unwrap()
}

/// Train {bird, cat, dog} against test {cat, dog}: by position, test `cat` (label 0) was
/// scored as train `bird` and test `dog` as train `cat`, so a classifier right on every
/// image scored 0; by name it scores 1 (kNN, linear probe, fine-tuning). The test split's
/// keyed class map moves only these stages' keys: the same experiment scored on a split with
/// the train split's classes keeps the keys it had.
#[test]
fn a_test_split_with_fewer_classes_is_scored_by_class_name() {
    let p = Project::new();
    p.write("datasets.toml", PETS);
    write_colour_folder(&p, "pets", "train", &["bird", "cat", "dog"], 12);
    write_colour_folder(&p, "pets", "test", &["cat", "dog"], 5);
    p.write("fewer.toml", &probes("fewer", "pets:train", "pets:test"));
    let r = p.ktlab(&["run", "fewer.toml"]).ok();
    let csv = p.read("results/fewer/results.csv");
    for stage in ["knn", "linear", "tuned"] {
        assert_eq!(top1(&csv, stage), 1.0, "{stage}\n{csv}\n{}", r.stderr);
    }
    for stage in ["knn", "linear", "tuned"] {
        let out = p.ktlab(&["explain", "fewer.toml", stage]).ok().stdout;
        let compact: String = out.split_whitespace().collect();
        assert!(compact.contains("\"class_map\":[1,2]"), "{stage}: {out}");
    }
}

/// The keys of stages whose splits have the same classes do not carry a class map (they
/// keep the keys they had before labels were matched by name).
#[test]
fn splits_with_the_same_classes_carry_no_class_map() {
    let p = Project::new();
    p.write("datasets.toml", PETS);
    write_colour_folder(&p, "pets", "train", &["cat", "dog"], 3);
    write_colour_folder(&p, "pets", "test", &["cat", "dog"], 2);
    p.write("same.toml", &probes("same", "pets:train", "pets:test"));
    for stage in ["knn", "linear", "tuned"] {
        let out = p.ktlab(&["explain", "same.toml", stage]).ok().stdout;
        assert!(!out.contains("class_map"), "{stage}: {out}");
    }
}

/// A test class the training split lacks is refused at planning (exit 2), for every stage
/// that scores one split against another, naming the stage, both splits and both lists:
/// {cat, dog} against {bird, cat, dog}, and {cat, dog} against {cat, zebra}.
#[test]
fn a_test_class_the_train_split_lacks_is_refused_at_planning() {
    let p = Project::new();
    p.write("datasets.toml", PETS);
    write_colour_folder(&p, "pets", "train", &["cat", "dog"], 3);
    write_colour_folder(&p, "pets", "test", &["bird", "cat", "dog"], 2);
    write_colour_folder(&p, "pets", "zoo", &["cat", "zebra"], 2);
    p.write("wider.toml", &probes("wider", "pets:train", "pets:test"));
    for cmd in ["plan", "run"] {
        let r = p.ktlab(&[cmd, "wider.toml"]).fails(2);
        for stage in ["knn", "linear", "tuned"] {
            r.stderr_has(&format!("stages.{stage}.test"));
        }
        r.stderr_has(
            "the test split `pets:test` has classes [bird, cat, dog], the train split `pets:train` has [cat, dog]: \
             `bird` is not among the training classes (labels are matched by class name)",
        );
        assert!(p.entries().is_empty(), "{cmd}: {:?}", p.entries());
    }
    p.write("other.toml", &probes("other", "pets:train", "pets:zoo"));
    let r = p.ktlab(&["plan", "other.toml"]).fails(2);
    r.stderr_has("stages.tuned.test");
    r.stderr_has("the test split `pets:zoo` has classes [cat, zebra], the train split `pets:train` has [cat, dog]: `zebra` is not among");
}

/// cluster-metrics scores pseudo-labels (cluster numbers, no class names) against the true
/// labels of the very images they label: truth from another split is refused at planning,
/// so no labels of two splits meet there.
#[test]
fn cluster_metrics_truth_must_be_the_labeled_split() {
    let p = Project::new();
    p.write("datasets.toml", PETS);
    write_colour_folder(&p, "pets", "train", &["bird", "cat", "dog"], 3);
    write_colour_folder(&p, "pets", "test", &["cat", "dog"], 2);
    p.write(
        "clusters.toml",
        "name = \"clusters\"\n[stages.f]\nkind = \"features\"\nmodel = \"pixels\"\ndata = \"pets:train\"\n\
         [stages.km]\nkind = \"kmeans\"\nfeatures = \"f\"\nk = 3\n\
         [stages.m]\nkind = \"cluster-metrics\"\nlabels = \"km\"\ntruth = \"pets:test\"\n",
    );
    let r = p.ktlab(&["plan", "clusters.toml"]).fails(2);
    r.stderr_has("stages.m.truth");
    r.stderr_has("`km` labels images of `pets:train`, not of `pets:test`");
}

/// A model trained on true labels hands its classifier head to a `train` stage that starts
/// from it only when the class *names* agree: {bird, cat, dog} and {cat, dog, emu} have as
/// many classes, but the head's outputs would mean other classes.
#[test]
fn init_takes_a_trained_head_only_with_the_same_class_names() {
    let p = Project::new();
    p.write(
        "datasets.toml",
        &format!("{PETS}[farm]\nformat = \"image-folder\"\nroot = \"farm\"\n"),
    );
    write_colour_folder(&p, "pets", "train", &["bird", "cat", "dog"], 3);
    write_colour_folder(&p, "pets", "more", &["bird", "cat", "dog"], 2);
    write_colour_folder(&p, "farm", "train", &["cat", "dog", "emu"], 2);
    let train = |name: &str, data: &str, init: Option<&str>| {
        let init = init.map(|i| format!("init = \"{i}\"\n")).unwrap_or_default();
        format!(
            "[stages.{name}]\nkind = \"train\"\narch = \"alexnet-small\"\nwidth = 0.25\nimage_size = 32\n\
             data = \"{data}\"\nlabels = \"truth\"\nepochs = 1\nbatch_size = 4\n{init}"
        )
    };
    p.write(
        "heads.toml",
        &format!(
            "name = \"heads\"\ndevice = \"cpu\"\n{}{}{}",
            train("base", "pets:train", None),
            train("same_names", "pets:more", Some("base")),
            train("other_names", "farm:train", Some("base"))
        ),
    );
    let explain = |stage: &str| p.ktlab(&["explain", "heads.toml", stage]).ok().stdout;
    let compact: String = explain("other_names").split_whitespace().collect();
    assert!(compact.contains("\"fresh_head\":true"), "{compact}");
    assert!(!explain("same_names").contains("fresh_head"), "{}", explain("same_names"));
    let r = p.ktlab(&["run", "heads.toml"]).ok();
    let all = format!("{}{}", r.stdout, r.stderr);
    let note = |stage: &str| {
        all.lines()
            .find(|l| l.contains("initialised") && l.contains(stage))
            .unwrap_or_else(|| panic!("no init note of {stage}:\n{all}"))
            .to_string()
    };
    assert!(
        note("same_names").contains("backbone and classifier head (both 3 classes)"),
        "{all}"
    );
    assert!(note("other_names").contains("backbone; fresh classifier head"), "{all}");
}

/// Cluster ids are names of nothing: a head trained on one clustering's pseudo-labels is
/// not taken over by a stage trained on another clustering's (DeepCluster's rounds), nor on
/// true labels, nor the reverse, though the class counts agree; on the same pseudo-labels
/// it is. Before, any head with as many classes was taken over by position.
#[test]
fn init_takes_a_head_trained_on_clusters_only_for_the_same_clusters() {
    let p = Project::new();
    let train = |name: &str, labels: &str, init: Option<&str>| {
        let init = init.map(|i| format!("init = \"{i}\"\n")).unwrap_or_default();
        let data = if labels == "truth" { "data = \"shapes:train\"\n" } else { "" };
        format!(
            "[stages.{name}]\nkind = \"train\"\narch = \"alexnet-small\"\nwidth = 0.25\n{data}\
             labels = \"{labels}\"\nepochs = 1\nbatch_size = 100\n{init}"
        )
    };
    let clusters = |name: &str, iterations: usize| {
        format!(
            "[stages.{name}]\nkind = \"kmeans\"\nfeatures = \"pixels\"\nk = 8\niterations = {iterations}\n\
             [stages.{name}_labels]\nkind = \"assign\"\ncentroids = \"{name}\"\nfeatures = \"pixels\"\n"
        )
    };
    p.write(
        "rounds.toml",
        &format!(
            "name = \"rounds\"\ndevice = \"cpu\"\n[stages.pixels]\nkind = \"features\"\nmodel = \"pixels\"\n\
             data = \"shapes:train\"\n{}{}{}{}{}{}{}",
            clusters("a", 5),
            clusters("b", 6),
            train("round1", "a_labels", None),
            train("same_clusters", "a_labels", Some("round1")),
            train("other_clusters", "b_labels", Some("round1")),
            train("on_truth", "truth", Some("round1")),
            train("truth_base", "truth", None) + &train("clusters_from_truth", "a_labels", Some("truth_base")),
        ),
    );
    let fresh = |stage: &str| {
        let out = p.ktlab(&["explain", "rounds.toml", stage]).ok().stdout;
        out.split_whitespace().collect::<String>().contains("\"fresh_head\":true")
    };
    assert!(!fresh("same_clusters"));
    assert!(fresh("other_clusters"));
    assert!(fresh("on_truth"));
    assert!(fresh("clusters_from_truth"));
    let r = p
        .ktlab(&["run", "rounds.toml", "--only", "other_clusters", "--only", "same_clusters"])
        .ok();
    let all = format!("{}{}", r.stdout, r.stderr);
    let note = |stage: &str| {
        all.lines()
            .find(|l| l.contains("initialised") && l.contains(stage))
            .unwrap_or_else(|| panic!("no init note of {stage}:\n{all}"))
            .to_string()
    };
    assert!(
        note("same_clusters").contains("backbone and classifier head (both 8 classes)"),
        "{all}"
    );
    assert!(
        note("other_clusters").contains("backbone; fresh classifier head (the init model's 8 classes are another labelling's)"),
        "{all}"
    );
}

/// A kNN `k` beyond the training split and a `.npy` matrix whose rows are not the split's
/// images are refused when planned (before, only when the stage ran).
#[test]
fn data_dependent_checks_refuse_at_planning() {
    let p = Project::new();
    p.write("datasets.toml", PETS);
    write_colour_folder(&p, "pets", "train", &["cat", "dog"], 3);
    write_colour_folder(&p, "pets", "test", &["cat", "dog"], 2);
    p.write("knn.toml", &probes("knn", "pets:train", "pets:test").replace("k = 3", "k = 7"));
    let r = p.ktlab(&["plan", "knn.toml"]).fails(2);
    r.stderr_has("stages.knn.k");
    r.stderr_has("k = 7 neighbours, but the train split `pets:train` has only 6 images");

    write_npy(&p.path("feats.npy"), "<f4", &[5, 2], &[0u8; 5 * 2 * 4]);
    p.write(
        "npy.toml",
        "name = \"npy\"\n[stages.f]\nkind = \"features\"\nmodel = \"npy\"\npath = \"feats.npy\"\ndata = \"pets:train\"\n",
    );
    let r = p.ktlab(&["plan", "npy.toml"]).fails(2);
    r.stderr_has("stages.f.path");
    r.stderr_has("feats.npy: 5 rows, but `pets:train` has 6 images (one row per image, in dataset order)");
    write_npy(&p.path("feats.npy"), "<f4", &[6, 2], &[0u8; 6 * 2 * 4]);
    p.ktlab(&["plan", "npy.toml"]).ok();
}
