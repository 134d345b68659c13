//! Pretext stages end to end: the knowledge-transfer contract, Jigsaw++ learning above
//! chance, rotation, the bundled experiment files, and bad pretext configurations.
use crate::common::Project;

pub const CONTRACT_TRANSFER: &str = r#"
name = "contract-transfer"
seed = 11

[stages.pretext]
kind = "pretext"
task = "jigsaw++"
arch = "vgg16-small"
data = "shapes:unlabeled"
permutations = 100
min_hamming = 3
epochs = 2

[stages.feat]
kind = "features"
model = "pretext"
layer = "conv5"
data = "shapes:unlabeled"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 20

[stages.labels]
kind = "assign"
centroids = "clusters"
features = "feat"

[stages.target]
kind = "train"
arch = "alexnet-small"
labels = "labels"
epochs = 2

[stages.probe]
kind = "linear-probe"
model = "target"
layers = ["conv1", "conv2", "conv3", "conv4", "conv5"]
train = "shapes:train"
test = "shapes:test"
"#;

fn rows<'a>(csv: &'a str, stage: &str) -> Vec<Vec<&'a str>> {
    csv.lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.contains(&stage))
        .collect()
}

#[test]
fn contract_transfer_runs_unchanged() {
    // The contract file as it is; the test's datasets.toml has a smaller unlabeled split
    // (400 images instead of 2,000), because the contract's full-width vgg16-small over
    // nine tiles per image costs minutes per epoch on 2 CPU cores.
    let p = Project::new();
    p.write(
        "datasets.toml",
        &crate::common::DATASETS.replace("unlabeled = 2000", "unlabeled = 400"),
    );
    p.write("exp.toml", CONTRACT_TRANSFER);
    // `-v`: every epoch, with what its accuracy measures.
    let r = p.ktlab(&["run", "exp.toml", "-v"]).ok();
    assert!(r.stderr.contains("permutation accuracy"), "{}", r.stderr);
    assert!(
        r.stderr.contains("20 classes"),
        "the target trains on the 20 clusters:\n{}",
        r.stderr
    );
    let csv = p.read("results/contract-transfer/results.csv");
    let probe = rows(&csv, "probe");
    for layer in ["conv1", "conv2", "conv3", "conv4", "conv5"] {
        let top1: f64 = probe
            .iter()
            .find(|f| f.contains(&layer) && f.contains(&"top1"))
            .unwrap_or_else(|| panic!("no {layer} top1 in\n{csv}"))
            .last()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=1.0).contains(&top1));
    }
    assert_eq!(rows(&csv, "pretext_heldout_accuracy").len(), 1, "{csv}");
    // The pretext entry holds the permutation set it trained with, in the official layout.
    let entry = p.entries().into_iter().find(|e| e.starts_with("pretext/")).unwrap();
    let perms = ktlab::pretext::permutations::PermutationSet::read_bin(&p.path(&format!("store/{entry}/permutations.bin"))).unwrap();
    assert_eq!(perms.len(), 100);
    assert!(perms.min_hamming() >= 3);
    // Cached the second time.
    let again = p.ktlab(&["run", "exp.toml"]).ok();
    assert!(
        again.stderr.contains("6 cached") || again.stdout.contains("6 cached"),
        "{}{}",
        again.stdout,
        again.stderr
    );
}

#[test]
fn jigsaw_plus_plus_learns_above_chance() {
    // Jigsaw++ (up to two tiles of another image, 70% grayscale) with 10 permutations and
    // tiles as large as their cells (no jitter): the permutation accuracy on the synthetic
    // shapes rises far above chance within four epochs. With the default jitter (16 px
    // tiles in 19 px cells) and more permutations it takes longer and depends on the seed
    // (24 permutations, 18 px tiles: 0.12 after 6 and 0.17 after 10 epochs in one run,
    // still at chance after 6 in another). A probe reads the pretext model.
    let p = Project::new();
    p.write(
        "exp.toml",
        r#"name = "jpp"
seed = 4
[stages.pretext]
kind = "pretext"
task = "jigsaw++"
arch = "alexnet-small"
width = 0.5
data = "shapes:unlabeled"
permutations = 10
tile_size = 19
epochs = 4
batch_size = 32
optimizer = "adam"
lr = 0.001
[stages.probe]
kind = "linear-probe"
solver = "adam"
model = "pretext"
layers = ["conv5"]
train = "shapes:train"
test = "shapes:test"
epochs = 5
"#,
    );
    p.ktlab(&["run", "exp.toml"]).ok();
    let csv = p.read("results/jpp/results.csv");
    let acc: f64 = rows(&csv, "pretext_heldout_accuracy")[0].last().unwrap().parse().unwrap();
    eprintln!("jigsaw++ accuracy over 10 permutations: {acc:.3} (chance 0.100)");
    assert!(acc > 0.15, "accuracy {acc} is not clearly above chance 1/10");
    assert_eq!(rows(&csv, "top1").len(), 1, "{csv}");
}

#[test]
fn rotation_feeds_a_probe() {
    // The synthetic shapes are drawn at random angles on backgrounds with random gradient
    // directions, so their rotation cannot be predicted: here only the plumbing is checked
    // (learning is checked on real images below).
    let p = Project::new();
    p.write(
        "exp.toml",
        r#"name = "rot"
seed = 4
[stages.pretext]
kind = "pretext"
task = "rotation"
arch = "alexnet-small"
width = 0.25
data = "shapes:test"
epochs = 1
batch_size = 32
[stages.probe]
kind = "linear-probe"
solver = "adam"
model = "pretext"
layers = ["conv3"]
train = "shapes:train"
test = "shapes:test"
epochs = 3
"#,
    );
    let r = p.ktlab(&["run", "exp.toml", "-v"]).ok();
    assert!(r.stderr.contains("rotation accuracy"), "{}", r.stderr);
    let csv = p.read("results/rot/results.csv");
    assert_eq!(rows(&csv, "pretext_heldout_accuracy").len(), 1, "{csv}");
    assert_eq!(rows(&csv, "top1").len(), 1, "{csv}");
}

#[test]
fn rotation_learns_on_real_images() {
    let cifar = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/cifar10/train");
    if !cifar.is_dir() {
        ktlab::skip::skip(
            "rotation_learns_on_real_images",
            &format!("{} is absent (CIFAR-10 in image-folder layout)", cifar.display()),
        );
        return;
    }
    // 60 images per class of the real CIFAR-10, which do have an upright orientation.
    let p = Project::new();
    for class in std::fs::read_dir(&cifar).unwrap().flatten() {
        let mut files: Vec<_> = std::fs::read_dir(class.path()).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        let dst = p.path(&format!("cifar/train/{}", class.file_name().to_string_lossy()));
        std::fs::create_dir_all(&dst).unwrap();
        for f in files.iter().take(60) {
            std::fs::copy(f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    p.write(
        "datasets.toml",
        &format!(
            "{}\n[cifar]\nformat = \"image-folder\"\nroot = \"cifar\"\n",
            crate::common::DATASETS
        ),
    );
    p.write(
        "exp.toml",
        r#"name = "rotreal"
seed = 4
[stages.pretext]
kind = "pretext"
task = "rotation"
arch = "alexnet-small"
width = 0.25
data = "cifar:train"
epochs = 4
batch_size = 32
optimizer = "adam"
lr = 0.001
"#,
    );
    p.ktlab(&["run", "exp.toml"]).ok();
    let csv = p.read("results/rotreal/results.csv");
    let acc: f64 = rows(&csv, "pretext_heldout_accuracy")[0].last().unwrap().parse().unwrap();
    eprintln!("rotation accuracy on 600 CIFAR-10 images: {acc:.3} (chance 0.25)");
    assert!(acc > 0.4, "rotation accuracy {acc} (chance 0.25)");
}

#[test]
fn a_permutation_file_replaces_generation_and_enters_the_key() {
    let p = Project::new();
    let set = ktlab::pretext::permutations::PermutationSet::generate(12, 4, 9).unwrap();
    set.write_bin(&p.path("perms/p12.bin")).unwrap_or_else(|_| {
        std::fs::create_dir_all(p.path("perms")).unwrap();
        set.write_bin(&p.path("perms/p12.bin")).unwrap()
    });
    let exp = r#"name = "pf"
[stages.pretext]
kind = "pretext"
task = "jigsaw"
arch = "alexnet-small"
width = 0.25
data = "shapes:test"
permutations_file = "perms/p12.bin"
epochs = 1
"#;
    p.write("exp.toml", exp);
    let r = p.ktlab(&["explain", "exp.toml", "pretext"]).ok();
    assert!(r.stdout.contains("permutations_sha256"), "{}", r.stdout);
    assert!(
        r.stdout.contains("\"permutations\": 12") || r.stdout.contains("\"permutations\":12"),
        "{}",
        r.stdout
    );
    p.ktlab(&["run", "exp.toml"]).ok();
    let entry = p.entries().into_iter().find(|e| e.starts_with("pretext/")).unwrap();
    let used = std::fs::read(p.path(&format!("store/{entry}/permutations.bin"))).unwrap();
    assert_eq!(used, std::fs::read(p.path("perms/p12.bin")).unwrap());
    // Another file of the same name: the stage is no longer cached.
    ktlab::pretext::permutations::PermutationSet::generate(12, 4, 10)
        .unwrap()
        .write_bin(&p.path("perms/p12.bin"))
        .unwrap();
    let plan = p.ktlab(&["plan", "exp.toml"]).ok();
    assert!(plan.stdout.contains("will run"), "{}", plan.stdout);
    // A malformed file is a located configuration error.
    p.write("perms/p12.bin", "not a permutation file");
    let r = p.ktlab(&["plan", "exp.toml"]).fails(2);
    r.stderr_has("exp.toml:8").stderr_has("permutations_file");
}

/// A permutation file of one permutation (a one-class task: accuracy 1.000 from the
/// start) is refused at planning, naming the file; `--set` names a permutation file
/// relative to the experiment file from any working directory.
#[test]
fn a_permutation_file_needs_two_permutations_and_set_resolves_it_beside_the_file() {
    let p = Project::new();
    std::fs::create_dir_all(p.path("exp/perms")).unwrap();
    let set = ktlab::pretext::permutations::PermutationSet::generate(12, 4, 9).unwrap();
    set.write_bin(&p.path("exp/perms/p12.bin")).unwrap();
    let ident: Vec<i32> = (1..=9).collect();
    let mut one = Vec::new();
    for v in [1i32, 9].iter().chain(&ident) {
        one.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(p.path("exp/perms/p1.bin"), &one).unwrap();
    let exp = r#"name = "pf"
[stages.pretext]
kind = "pretext"
task = "jigsaw"
arch = "alexnet-small"
width = 0.25
data = "shapes:test"
permutations_file = "perms/p12.bin"
epochs = 1
"#;
    p.write("exp/exp.toml", exp);
    p.write("exp/one.toml", &exp.replace("p12.bin", "p1.bin"));
    let plan = |cwd: &str, args: &[&str]| {
        let mut c = p.cmd();
        c.current_dir(p.path(cwd)).arg("plan").args(args);
        crate::common::Run::from(c.output().unwrap())
    };
    let r = plan("exp", &["one.toml"]).fails(2);
    r.stderr_has("one.toml:8")
        .stderr_has("`stages.pretext.permutations_file`")
        .stderr_has("perms/p1.bin: holds 1 permutation; a jigsaw task needs at least 2");
    std::fs::create_dir_all(p.path("elsewhere")).unwrap();
    plan(
        "elsewhere",
        &["../exp/exp.toml", "--set", "stages.pretext.permutations_file=perms/p1.bin"],
    )
    .fails(2)
    .stderr_has("exp/perms/p1.bin: holds 1 permutation");
    // The file's own value and the same value by --set plan one key, from either folder.
    let key = |r: crate::common::Run| -> String {
        let row = r
            .stdout
            .lines()
            .find(|l| l.contains(" pretext "))
            .unwrap_or_else(|| panic!("{}", r.stdout));
        row.split_whitespace().nth(3).unwrap().to_string()
    };
    let own = key(plan("exp", &["exp.toml"]).ok());
    let set = key(plan(
        "elsewhere",
        &["../exp/exp.toml", "--set", "stages.pretext.permutations_file=perms/p12.bin"],
    )
    .ok());
    assert_eq!(own, set);
}

#[test]
fn bad_pretext_configurations_are_located_errors() {
    let p = Project::new();
    let base = r#"name = "bad"
[stages.pretext]
kind = "pretext"
task = "jigsaw++"
arch = "alexnet-small"
data = "shapes:unlabeled"
"#;
    let cases: &[(&str, &str, &str)] = &[
        ("task = \"jigsaw++\"", "task = \"jigsw\"", "did you mean `jigsaw`"),
        (
            "task = \"jigsaw++\"",
            "task = \"rotation\"\ngrayscale = 0.5",
            "`grayscale` applies to jigsaw tasks",
        ),
        (
            "task = \"jigsaw++\"",
            "task = \"jigsaw\"\nmax_replaced = 1",
            "`max_replaced` applies to task = \"jigsaw++\"",
        ),
        (
            "task = \"jigsaw++\"",
            "task = \"jigsaw++\"\ncrop_padding = 2",
            "`crop_padding` applies to rotation",
        ),
        (
            "task = \"jigsaw++\"",
            "task = \"jigsaw++\"\ntile_size = 8",
            "needs inputs of at least 16 px",
        ),
        ("task = \"jigsaw++\"", "task = \"jigsaw++\"\ntile_size = 40", "expected 1..=19"),
        (
            "task = \"jigsaw++\"",
            "task = \"jigsaw++\"\ngrayscale = 1.5",
            "expected a probability",
        ),
        ("task = \"jigsaw++\"", "task = \"jigsaw++\"\npermutations = 1", "expected 2..=10000"),
        ("task = \"jigsaw++\"", "task = \"jigsaw++\"\nmin_hamming = 10", "expected 1..=9"),
        (
            "task = \"jigsaw++\"",
            "task = \"jigsaw++\"\nheld_out = 0.9",
            "expected a share of the images in [0, 0.5]",
        ),
        ("task = \"jigsaw++\"", "task = \"jigsaw++\"\ncrop = 99", "expected 3..=64"),
        (
            "task = \"jigsaw++\"",
            "task = \"jigsaw++\"\npermutations_sha256 = \"x\"",
            "unknown key",
        ),
        ("arch = \"alexnet-small\"", "arch = \"vgg17\"", "unknown architecture `vgg17`"),
        ("task = \"jigsaw++\"", "task = \"jigsaw++\"\nepoch = 3", "did you mean `epochs`"),
        ("task = \"jigsaw++\"", "task = \"jigsaw++\"\ntile = 16", "did you mean `tile_size`"),
    ];
    for (from, to, message) in cases {
        p.write("exp.toml", &base.replace(from, to));
        let r = p.ktlab(&["plan", "exp.toml"]).fails(2);
        r.stderr_has(message).stderr_has("exp.toml:");
    }
    // The same for a train stage (its options are flattened structs too).
    p.write(
        "exp.toml",
        "name = \"bad\"\n[stages.t]\nkind = \"train\"\narch = \"alexnet-small\"\ndata = \"shapes:train\"\nlabels = \"truth\"\nepoch = 3\n",
    );
    p.ktlab(&["plan", "exp.toml"])
        .fails(2)
        .stderr_has("exp.toml:7")
        .stderr_has("did you mean `epochs`");
    // An impossible permutation request fails at run time with exit 2 and no entry.
    p.write(
        "exp.toml",
        &base.replace(
            "task = \"jigsaw++\"",
            "task = \"jigsaw\"\npermutations = 1000\nmin_hamming = 9\nepochs = 1",
        ),
    );
    let r = p.ktlab(&["run", "exp.toml"]).fails(2);
    r.stderr_has("pretext").stderr_has("permutations");
    assert!(p.entries().is_empty(), "{:?}", p.entries());
}

#[test]
fn bundled_experiments_plan() {
    // The quickstart, the DeepCluster chain and every full-scale experiment in
    // experiments/paper/ are accepted by the planner as they are, each with the
    // datasets.toml beside it or the project's (datasets that are absent are listed, not
    // errors).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("experiments/quickstart.toml"), root.join("experiments/deepcluster.toml")];
    let mut paper: Vec<_> = std::fs::read_dir(root.join("experiments/paper"))
        .expect("experiments/paper")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.ends_with("datasets.toml"))
        .collect();
    paper.sort();
    assert!(paper.len() >= 3, "{paper:?}");
    files.extend(paper);
    let p = Project::new();
    for f in files {
        let r = p.cmd().args(["plan", f.to_str().unwrap()]).output().unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success(), "{}: {stderr}", f.display());
        if f.to_string_lossy().contains("paper") {
            let stdout = String::from_utf8_lossy(&r.stdout);
            assert!(stdout.contains("imagenet:train"), "{}: {stdout}", f.display());
        }
    }
}

#[test]
fn a_curriculum_starts_from_the_model_before_it() {
    // Jigsaw++ with 20 permutations starts from a 10-permutation model: every variable but
    // the classifier's is taken over. A rotation stage may start from a Jigsaw model
    // (its backbone). An init of another width is refused before anything runs.
    let p = Project::new();
    let stage = |name: &str, width: &str, extra: &str| {
        format!(
            "[stages.{name}]\nkind = \"pretext\"\narch = \"alexnet-small\"\nwidth = {width}\ndata = \"shapes:train\"\nepochs = 1\nbatch_size = 50\n{extra}\n"
        )
    };
    let file = |name: &str, rot_width: &str| {
        format!(
            "name = \"{name}\"\nseed = 2\n{}{}{}",
            stage("easy", "0.25", "task = \"jigsaw++\"\npermutations = 10\ntile_size = 19"),
            stage(
                "hard",
                "0.25",
                "task = \"jigsaw++\"\npermutations = 20\ntile_size = 19\ninit = \"easy\""
            ),
            stage("rot", rot_width, "task = \"rotation\"\ninit = \"hard\""),
        )
    };
    p.write("exp.toml", &file("curriculum", "0.25"));
    let r = p.ktlab(&["run", "exp.toml"]).ok();
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("hard:") && l.contains("initialised"))
        .unwrap_or_else(|| panic!("no init note for `hard`:\n{}", r.stderr));
    let numbers: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(numbers.len(), 2, "{line}");
    assert_eq!(numbers[0] + 2, numbers[1], "all but the classifier's weight and bias: {line}");
    r.stderr_has("rot: initialised").stderr_has("fresh classifier head");
    // The init model is part of the key.
    let explain = p.ktlab(&["explain", "exp.toml", "hard"]).ok();
    assert!(explain.stdout.contains("\"init\""), "{}", explain.stdout);

    p.write("bad.toml", &file("bad", "0.5"));
    let r = p.ktlab(&["run", "bad.toml"]).fails(2);
    r.stderr_has("stages.rot.init").stderr_has("width 0.5 vs 0.25");
}

#[test]
fn a_stage_seed_is_shared_by_every_seed_of_the_axis() {
    // `seeds = [0, 1]` with the pretext stage pinned to `seed = 0`: one pretext instance
    // for both seeds, two of the probe after it; without the pin, two of each.
    let p = Project::new();
    let text = r#"name = "pinned"
seeds = [0, 1]
[stages.pretext]
kind = "pretext"
seed = 0
task = "rotation"
arch = "alexnet-small"
width = 0.25
data = "shapes:train"
epochs = 1
[stages.probe]
kind = "knn-probe"
model = "pretext"
layers = ["conv5"]
train = "shapes:train"
test = "shapes:test"
"#;
    p.write("exp.toml", text);
    let keys = |stdout: &str, stage: &str| {
        let mut k: Vec<String> = stdout
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(stage))
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
            .collect();
        k.sort();
        k.dedup();
        k.len()
    };
    let plan = p.ktlab(&["plan", "exp.toml"]).ok();
    assert_eq!(keys(&plan.stdout, "pretext"), 1, "{}", plan.stdout);
    p.write("free.toml", &text.replace("seed = 0\n", ""));
    let free = p.ktlab(&["plan", "free.toml"]).ok();
    assert_eq!(keys(&free.stdout, "pretext"), 2, "{}", free.stdout);
    // The pinned instance is the one a single-seed file with `seed = 0` computes.
    p.write(
        "single.toml",
        &text.replace("seeds = [0, 1]", "seed = 0").replace("seed = 0\ntask", "task"),
    );
    let single = p.ktlab(&["plan", "single.toml"]).ok();
    let key = |stdout: &str| {
        stdout
            .lines()
            .find(|l| l.contains(" pretext "))
            .and_then(|l| l.split_whitespace().nth(3))
            .map(str::to_string)
    };
    assert_eq!(key(&plan.stdout), key(&single.stdout));
}

#[test]
fn cifar10_files_plan_and_share_their_pretext_models() {
    // experiments/cifar10/*.toml plan as they are (with or without CIFAR-10 on this
    // machine), and every stage they declare in common (the pretext models, the main
    // transfer row) has one key across the files: the later files reuse the store
    // entries of the earlier ones instead of training again.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/cifar10");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .expect("experiments/cifar10")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.ends_with("datasets.toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let p = Project::new();
    let mut keys: std::collections::HashMap<String, (String, String)> = std::collections::HashMap::new();
    for f in &files {
        let r = p.cmd().args(["plan", f.to_str().unwrap()]).output().unwrap();
        let stdout = String::from_utf8_lossy(&r.stdout).into_owned();
        assert!(r.status.success(), "{}: {}", f.display(), String::from_utf8_lossy(&r.stderr));
        for line in stdout.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() < 4 || w[2] != "pretext" {
                continue;
            }
            let (stage, key) = (w[1].to_string(), w[3].to_string());
            match keys.get(&stage) {
                Some((k, first)) => assert_eq!(k, &key, "`{stage}` has key {k} in {first} but {key} in {}", f.display()),
                None => {
                    keys.insert(stage, (key, f.display().to_string()));
                }
            }
        }
    }
    for stage in ["jigsaw_alex", "jigsaw_vgg", "rotation_alex", "rotation_vgg"] {
        assert!(keys.contains_key(stage), "no `{stage}` in {files:?}");
    }
}

/// A pretext stage of `task` on `shapes:test` with the given extra lines.
fn tiny_pretext(name: &str, extra: &str) -> String {
    format!(
        "[stages.{name}]\nkind = \"pretext\"\ntask = \"jigsaw\"\narch = \"alexnet-small\"\nwidth = 0.25\n\
         data = \"shapes:test\"\npermutations = 10\nmin_hamming = 3\nepochs = 1\nbatch_size = 64\n{extra}\n"
    )
}

/// Each pretext entry's `pretext.json` and `permutations.bin`, by (held_out, seed, has init).
fn pretext_entries(p: &Project) -> Vec<(f64, u64, bool, serde_json::Value, Vec<u8>)> {
    let mut out = Vec::new();
    for e in p.entries().iter().filter(|e| e.starts_with("pretext/")) {
        let dir = p.path(&format!("store/{e}"));
        let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        let ki = &manifest["key_input"];
        let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("pretext.json")).unwrap()).unwrap();
        out.push((
            ki["params"]["held_out"].as_f64().unwrap(),
            ki["seed"].as_u64().unwrap(),
            ki["inputs"].get("init").is_some(),
            summary,
            std::fs::read(dir.join("permutations.bin")).unwrap(),
        ));
    }
    out
}

/// The images a pretext stage holds out depend only on the split, the share and the stated
/// seed: a curriculum's second stage holds out exactly the images its first stage never
/// trained on (they used to be drawn from each stage's own key: about 90 % of the second
/// stage's held-out images were training images of the first), a smaller share holds out a
/// subset, another seed other images. A generated permutation set is the one `ktlab perms`
/// writes for the same count, distance and seed (it used to depend on the stage's key).
#[test]
fn held_out_images_and_generated_permutations_follow_the_split_and_the_stated_seed() {
    let p = Project::new();
    let exp = format!(
        "name = \"ho\"\nseed = 4\ndevice = \"cpu\"\n{}{}{}{}",
        tiny_pretext("a", "held_out = 0.2"),
        tiny_pretext("b", "held_out = 0.2\ninit = \"a\""),
        tiny_pretext("c", "held_out = 0.1"),
        tiny_pretext("d", "held_out = 0.2\nseed = 5")
    );
    p.write("exp.toml", &exp);
    p.ktlab(&["run", "exp.toml"]).ok();
    let entries = pretext_entries(&p);
    assert_eq!(entries.len(), 4);
    let find = |held: f64, seed: u64, init: bool| {
        entries
            .iter()
            .find(|e| e.0 == held && e.1 == seed && e.2 == init)
            .unwrap_or_else(|| panic!("no entry ({held}, {seed}, {init})"))
    };
    let indices = |e: &(f64, u64, bool, serde_json::Value, Vec<u8>)| -> Vec<u64> {
        e.3["heldout_indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let (a, b, c, d) = (find(0.2, 4, false), find(0.2, 4, true), find(0.1, 4, false), find(0.2, 5, false));
    assert_eq!(indices(a).len(), 200, "{}", a.3);
    assert_eq!(indices(a), indices(b), "the curriculum's stages hold out different images");
    assert_eq!(indices(c).len(), 100);
    assert!(indices(c).iter().all(|i| indices(a).contains(i)), "a smaller share is not nested");
    assert_ne!(indices(a), indices(d), "another seed holds out the same images");
    // The permutation sets: `ktlab perms` with the same count, distance and seed.
    p.ktlab(&["perms", "--count", "10", "--min-hamming", "3", "--seed", "4", "--out", "p4.bin"])
        .ok();
    let p4 = std::fs::read(p.path("p4.bin")).unwrap();
    assert_eq!(a.4, p4);
    assert_eq!(b.4, p4);
    assert_eq!(c.4, p4);
    assert_ne!(d.4, p4, "seed 5 generated the set of seed 4");
}

/// A pretext stage must not hold out images that the model it starts from trained on: with
/// another seed, a larger share, or an `init` model trained on the whole split, it is
/// refused at planning, naming the stages; the same seed and share, or `held_out = 0`, pass.
#[test]
fn a_pretext_stage_holding_out_images_its_init_model_trained_on_is_refused() {
    let p = Project::new();
    let plan = |name: &str, a_extra: &str, b_extra: &str| {
        let exp = format!(
            "name = \"{name}\"\nseed = 4\ndevice = \"cpu\"\n{}{}",
            tiny_pretext("a", a_extra),
            tiny_pretext("b", &format!("init = \"a\"\n{b_extra}"))
        );
        p.write(&format!("{name}.toml"), &exp);
        p.ktlab(&["plan", &format!("{name}.toml")])
    };
    plan("same", "", "").ok();
    plan("nested", "held_out = 0.2", "held_out = 0.1").ok();
    plan("none", "held_out = 0", "held_out = 0").ok();
    plan("seed", "", "seed = 5")
        .fails(2)
        .stderr_has("stages.b.init")
        .stderr_has("`a` trained on `shapes:test` with seed 4 (this stage has seed 5)");
    plan("share", "held_out = 0.1", "held_out = 0.2")
        .fails(2)
        .stderr_has("holding out only 0.1 of it (this stage holds out 0.2)");
    plan("unheld", "held_out = 0", "").fails(2).stderr_has("holding out only 0 of it");
    // A supervised model of the same split, two links up the chain (through a pretext
    // model of another split).
    let exp = format!(
        "name = \"sup\"\nseed = 4\ndevice = \"cpu\"\n[stages.s]\nkind = \"train\"\narch = \"alexnet-small\"\nwidth = 0.25\n\
         data = \"shapes:test\"\nlabels = \"truth\"\nepochs = 1\n{}{}",
        tiny_pretext("a", "init = \"s\"").replace("shapes:test", "shapes:train"),
        tiny_pretext("b", "init = \"a\"")
    );
    p.write("sup.toml", &exp);
    p.ktlab(&["plan", "sup.toml"])
        .fails(2)
        .stderr_has("`s` (through `init` = `a`) trained on `shapes:test` on all of it");
}

/// The new user's check of the task list: one experiment, its pretext stage's `task`
/// swept over every task (no other key changes), each model through features, k-means, a
/// target started from it, and the four probes (linear, kNN, MLP, fine-tuning).
#[test]
fn every_task_flows_through_features_clusters_a_target_and_the_four_probes() {
    let tasks = ["jigsaw", "jigsaw++", "rotation", "contrastive", "colorization", "inpainting"];
    let p = Project::new();
    p.write(
        "datasets.toml",
        "[mini]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 80, test = 40 }\n",
    );
    let list: Vec<String> = tasks.iter().map(|t| format!("\"{t}\"")).collect();
    p.write(
        "exp.toml",
        &format!(
            r#"name = "tasks"
seed = 2
[stages.pretext]
kind = "pretext"
task = "rotation"
arch = "alexnet-small"
width = 0.25
data = "mini:train"
epochs = 1
batch_size = 16
[stages.feat]
kind = "features"
model = "pretext"
layer = "conv5"
pooled_dim = 1
data = "mini:train"
[stages.clusters]
kind = "kmeans"
features = "feat"
k = 4
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
batch_size = 16
[stages.linear]
kind = "linear-probe"
model = "target"
layers = ["conv4"]
train = "mini:train"
test = "mini:test"
[stages.knn]
kind = "knn-probe"
model = "pretext"
layers = ["conv5"]
train = "mini:train"
test = "mini:test"
[stages.mlp]
kind = "mlp-probe"
model = "pretext"
layers = ["conv5"]
train = "mini:train"
test = "mini:test"
epochs = 2
[stages.tuned]
kind = "finetune"
model = "pretext"
train = "mini:train"
test = "mini:test"
epochs = 1
batch_size = 16
[sweep]
"stages.pretext.task" = [{}]
"#,
            list.join(", ")
        ),
    );
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let csv = p.read("results/tasks/results.csv");
    for task in tasks {
        for stage in ["linear", "knn", "mlp", "tuned"] {
            let found = csv
                .lines()
                .filter(|l| l.starts_with(&format!("task={task},")) || l.contains(&format!(",{task},")))
                .any(|l| l.split(',').any(|f| f == stage) && l.contains(",top1,"));
            assert!(found, "no top1 of `{stage}` for task {task}:\n{csv}");
        }
    }
}
