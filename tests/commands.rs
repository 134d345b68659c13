//! The command layer's own promises: `gc` never empties a store for want of experiment
//! files, the store and results are found from the experiment file (and named), `-q`
//! prints only errors, and nothing written to a pipe carries colour codes.
use std::path::Path;
use std::process::Command;

use crate::common::{entries, Project, Run};

/// A cheap experiment: pixel features of 60 small images, clustered.
const SMALL: &str = r#"
name = "small"
seed = 1

[stages.feat]
kind = "features"
model = "pixels"
data = "tiny:train"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 3
iterations = 5
"#;

const TINY_DATASETS: &str = "[tiny]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 60 }\n";

/// ktlab with no store, results or datasets settings at all, run in `cwd`.
fn bare(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_ktlab-engine"))
        .current_dir(cwd)
        .env_remove("KTLAB_STORE")
        .env_remove("KTLAB_RESULTS")
        .env_remove("KTLAB_DATASETS")
        .env_remove("KTLAB_LOG")
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .args(args)
        .output()
        .expect("run ktlab");
    Run::from(out)
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .flatten()
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn gc_without_experiment_files_refuses_and_removes_nothing() {
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    p.write("exps/small.toml", SMALL);
    p.ktlab(&["run", "exps/small.toml", "-q"]).ok();
    let before = p.entries();
    assert_eq!(before.len(), 2, "{before:?}");
    // In the project, with no experiments/ folder to read.
    let r = p.ktlab(&["gc"]).fails(2);
    r.stderr_has("no experiment file to keep entries for");
    r.stderr_has("removing every entry of");
    assert_eq!(p.entries(), before);
    // As a new user would, from another folder, naming the store.
    let elsewhere = tempfile::tempdir().unwrap();
    let store = p.path("store");
    let r = bare(elsewhere.path(), &["gc", "--yes", "--store", store.to_str().unwrap()]).fails(2);
    r.stderr_has(&format!("removing every entry of {} is refused", store.display()));
    assert_eq!(p.entries(), before);
    assert!(files_under(elsewhere.path()).is_empty(), "{:?}", files_under(elsewhere.path()));
    // Named, the experiment keeps its entries; without a terminal gc does not ask.
    let r = p.ktlab(&["gc", "exps/small.toml"]).ok();
    assert!(r.stdout.contains("removed 0 entries"), "{}", r.stdout);
    assert_eq!(p.entries(), before);
}

#[test]
fn store_and_results_are_found_from_the_experiment_file() {
    let project = tempfile::tempdir().unwrap();
    let root = std::path::absolute(project.path()).unwrap();
    std::fs::write(root.join("datasets.toml"), TINY_DATASETS).unwrap();
    std::fs::create_dir_all(root.join("exps")).unwrap();
    std::fs::write(root.join("exps/small.toml"), SMALL).unwrap();
    let exp = root.join("exps/small.toml");
    let elsewhere = tempfile::tempdir().unwrap();
    let store = root.join(".ktlab/store");
    let r = bare(elsewhere.path(), &["plan", exp.to_str().unwrap()]).ok();
    r.stderr_has(&format!("store: {}\n", store.display()));
    let r = bare(elsewhere.path(), &["run", exp.to_str().unwrap()]).ok();
    r.stderr_has(&format!("store: {}\n", store.display()));
    assert_eq!(entries(&store).len(), 2, "{:?}", entries(&store));
    assert!(root.join("results/small/results.csv").is_file());
    // Nothing in the folder it was run from.
    assert!(files_under(elsewhere.path()).is_empty(), "{:?}", files_under(elsewhere.path()));
    // From inside the project, with a relative path: the same store, fully cached.
    let r = bare(&root.join("exps"), &["run", "small.toml"]).ok();
    r.stderr_has(&format!("store: {}\n", store.display()));
    assert!(r.stdout.contains("0 computed, 2 cached"), "{}", r.stdout);
    // An explicit store still wins.
    let r = bare(elsewhere.path(), &["--store", "mine", "plan", exp.to_str().unwrap()]).ok();
    r.stderr_has(&format!("store: {}\n", elsewhere.path().join("mine").display()));
}

#[test]
fn quiet_prints_only_errors() {
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    let train = "name = \"quiet\"\nseed = 2\n\n[stages.net]\nkind = \"train\"\narch = \"alexnet-small\"\ndata = \"tiny:train\"\nlabels = \"truth\"\nepochs = 1\n";
    p.write("exp.toml", train);
    let r = p.ktlab(&["run", "exp.toml"]).ok();
    r.stderr_has("[1/1] done net (train ");
    r.stderr_has("store: ");
    let r = p.ktlab(&["run", "exp.toml", "--force", "net", "-q"]).ok();
    assert!(r.stderr.is_empty(), "-q printed:\n{}", r.stderr);
    assert!(r.stdout.is_empty(), "-q printed:\n{}", r.stdout);
    let r = p.ktlab(&["run", "exp.toml", "--force", "net", "-q", "--log-format", "json"]).ok();
    assert!(r.stderr.is_empty(), "-q printed:\n{}", r.stderr);
    // Errors still show.
    p.write("bad.toml", &SMALL.replace("k = 3", "k = 100"));
    let r = p.ktlab(&["run", "bad.toml", "-q"]).fails(2);
    r.stderr_has("k = 100 is larger than the number of points (60)");
    r.stderr_has("1 stage(s) failed");
}

#[test]
fn output_to_a_pipe_has_no_colour_codes() {
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    p.write("exp.toml", SMALL);
    p.ktlab(&["run", "exp.toml"]).ok();
    let feat = p.entries().into_iter().find(|e| e.starts_with("features/")).unwrap();
    let path = p.path(&format!("store/{feat}/features.npy"));
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    // The corrupt entry is logged (a warning through the log) and recomputed.
    let r = p.ktlab(&["run", "exp.toml", "--force", "clusters", "-v"]).ok();
    r.stderr_has("corrupt");
    r.stderr_has("WARN");
    assert!(!r.stderr.contains('\u{1b}'), "colour codes in:\n{:?}", r.stderr);
    assert!(!r.stdout.contains('\u{1b}'), "colour codes in:\n{:?}", r.stdout);
}

/// `ktlab ARGS` in `p` on a pseudo-terminal (util-linux `script`), fed `input`; `None`
/// where `script` is missing.
fn on_a_terminal(p: &Project, args: &str, input: &str) -> Option<Run> {
    use std::io::Write;
    let cmd = format!(
        "cd '{}' && OMP_WAIT_POLICY=PASSIVE '{}' --store store --results results {args}",
        p.dir.path().display(),
        env!("CARGO_BIN_EXE_ktlab-engine")
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    Some(Run::from(child.wait_with_output().ok()?))
}

#[test]
fn gc_on_a_terminal_lists_and_asks_first() {
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    p.write("exps/small.toml", SMALL);
    p.ktlab(&["run", "exps/small.toml", "-q"]).ok();
    // Keeps feat only: clusters is the one entry to remove.
    p.write("exps/keep.toml", &SMALL[..SMALL.find("[stages.clusters]").unwrap()]);
    let before = p.entries();
    let Some(r) = on_a_terminal(&p, "gc exps/keep.toml", "n\n") else {
        eprintln!("SKIPPED gc_on_a_terminal_lists_and_asks_first: no `script` to make a terminal");
        return;
    };
    // `script` merges the terminal's output into its stdout.
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("gc will remove:"), "{}", r.stdout);
    assert!(r.stdout.contains("  kmeans/"), "{}", r.stdout);
    assert!(r.stdout.contains("remove these 1 entries"), "{}", r.stdout);
    assert!(r.stdout.contains("nothing removed"), "{}", r.stdout);
    assert_eq!(p.entries(), before, "removed without a yes");
    let r = on_a_terminal(&p, "gc exps/keep.toml", "y\n").unwrap();
    assert!(r.stdout.contains("removed 1 entries"), "{}", r.stdout);
    assert_eq!(p.entries().len(), 1, "{:?}", p.entries());
    // --yes does not ask.
    p.ktlab(&["run", "exps/small.toml", "-q"]).ok();
    let r = on_a_terminal(&p, "gc --yes exps/keep.toml", "").unwrap();
    assert!(!r.stdout.contains("remove these"), "{}", r.stdout);
    assert!(r.stdout.contains("removed 1 entries"), "{}", r.stdout);
}

/// `ktlab kmeans` on a stage's own features matrix, with the stage's parameters and seed,
/// writes exactly the stage's centroids, assignments and inertia history.
#[test]
fn kmeans_command_equals_the_kmeans_stage() {
    let p = Project::new();
    let exp = crate::common::CONTRACT_HOG.replace("iterations = 20", "iterations = 7\ninit = \"random\"");
    p.write("e.toml", &exp);
    p.ktlab(&["run", "e.toml"]).ok();
    let store = p.path("store");
    let features: Vec<_> = std::fs::read_dir(store.join("features"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(features.len(), 1, "{features:?}");
    let input = features[0].join("features.npy");
    let mut compared = 0;
    for entry in std::fs::read_dir(store.join("kmeans")).unwrap() {
        let dir = entry.unwrap().path();
        let key = dir.file_name().unwrap().to_string_lossy().into_owned();
        let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        let k = manifest["key_input"]["params"]["k"].as_u64().unwrap().to_string();
        // A stage's seed is the first 8 bytes of its key (src/seed.rs).
        let digest: Vec<u8> = (0..8).map(|i| u8::from_str_radix(&key[2 * i..2 * i + 2], 16).unwrap()).collect();
        let seed = u64::from_le_bytes(digest[..8].try_into().unwrap()).to_string();
        let out = p.path(&format!("out-{k}"));
        let r = p.ktlab(&[
            "kmeans",
            input.to_str().unwrap(),
            "--k",
            &k,
            "--iterations",
            "7",
            "--init",
            "random",
            "--seed",
            &seed,
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]);
        let r = r.ok();
        assert!(r.stdout.contains(&format!("k = {k} on 1000 x")), "{}", r.stdout);
        for file in ["centroids.npy", "assignments.npy", "inertia.csv"] {
            assert_eq!(
                std::fs::read(out.join(file)).unwrap(),
                std::fs::read(dir.join(file)).unwrap(),
                "k = {k}: {file} differs"
            );
        }
        compared += 1;
    }
    assert_eq!(compared, 2);
    // Bad input is exit 2 naming the file.
    p.write("bad.npy", "not a numpy file");
    let r = p
        .ktlab(&["kmeans", p.path("bad.npy").to_str().unwrap(), "--k", "2", "--out", "o"])
        .fails(2);
    r.stderr_has("bad.npy");
}

#[test]
fn a_subset_dataset_is_a_fixed_seeded_sample_of_another() {
    // Two disjoint subset splits of one synthetic split: `datasets` lists them with their
    // sizes and classes, stages read them with the parent's labels, and the subset seed
    // is part of their identity (another seed: other keys).
    let p = Project::new();
    let datasets = |seed: u64| {
        format!(
            "[tiny]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = {{ train = 200 }}\n\n\
             [few]\nformat = \"subset\"\nof = \"tiny\"\nseed = {seed}\n\
             splits = {{ a = {{ split = \"train\", take = 120 }}, b = {{ split = \"train\", skip = 120, take = 80 }} }}\n"
        )
    };
    p.write("datasets.toml", &datasets(5));
    let r = p.ktlab(&["datasets"]).ok();
    assert!(r.stdout.contains("few (subset): drawn from `tiny`, seed 5"), "{}", r.stdout);
    assert!(r.stdout.contains("a: 120 images, 8 classes"), "{}", r.stdout);
    assert!(r.stdout.contains("b: 80 images, 8 classes"), "{}", r.stdout);
    p.write(
        "exp.toml",
        &SMALL.replace("tiny:train", "few:a").replace("iterations = 5", "iterations = 5\n\n[stages.labels]\nkind = \"assign\"\ncentroids = \"clusters\"\nfeatures = \"feat\"\n\n[stages.quality]\nkind = \"cluster-metrics\"\nlabels = \"labels\"\ntruth = \"few:a\"\n"),
    );
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let csv = p.read("results/small/results.csv");
    assert!(csv.contains(",nmi,"), "{csv}");
    assert!(p.ktlab(&["plan", "exp.toml"]).ok().stdout.contains("0 to run"));
    p.write("datasets.toml", &datasets(6));
    assert!(p.ktlab(&["plan", "exp.toml"]).ok().stdout.contains("4 to run"));
    // A split that runs past its parent's end is refused before anything runs.
    p.write("datasets.toml", &datasets(5).replace("take = 120", "skip = 81, take = 120"));
    p.ktlab(&["run", "exp.toml"])
        .fails(2)
        .stderr_has("split `a` takes images 81..201 of split `train`, which has 200");
}

#[cfg(unix)]
#[test]
fn results_and_entries_are_readable_by_others_under_umask_022() {
    // Under umask 022, results files are 0644 and store entries 0755 folders of 0644
    // files, as with any tool a colleague on a shared machine reads after.
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    p.write("exp.toml", SMALL);
    let bin = env!("CARGO_BIN_EXE_ktlab-engine");
    let out = Command::new("sh")
        .current_dir(p.path(""))
        .args([
            "-c",
            &format!("umask 022 && '{bin}' --store store --results results run exp.toml -q"),
        ])
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mode = |rel: &str| std::fs::metadata(p.path(rel)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("results/small/results.csv"), 0o644);
    assert_eq!(mode("results/small/results.md"), 0o644);
    let entry = p.entries().into_iter().find(|e| e.starts_with("kmeans/")).unwrap();
    assert_eq!(mode(&format!("store/{entry}")), 0o755, "{entry}");
    assert_eq!(mode(&format!("store/{entry}/manifest.json")), 0o644, "{entry}");
    assert_eq!(mode(&format!("store/{entry}/centroids.npy")), 0o644, "{entry}");
}

#[test]
fn two_experiment_files_with_one_name_do_not_overwrite_each_others_results() {
    // The results folder keeps a copy of the file that wrote it; another existing file of
    // the same name is refused before anything runs (exit 2, both named), the same file
    // runs again, and once the first file is gone its name is free.
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    p.write("a.toml", SMALL);
    p.write("b.toml", &SMALL.replace("k = 3", "k = 4"));
    p.ktlab(&["run", "a.toml", "-q"]).ok();
    let copy = p.read("results/small/experiment.toml");
    assert!(
        copy.starts_with("# ktlab: results of ../../a.toml\n") && copy.ends_with(SMALL),
        "the copy names the file relative to the results folder, no machine's path: {copy}"
    );
    let csv = p.read("results/small/results.csv");
    let before = p.entries();
    let r = p.ktlab(&["run", "b.toml"]).fails(2);
    r.stderr_has("b.toml").stderr_has("a.toml").stderr_has("both named `small`");
    assert_eq!(p.entries(), before, "the refused run computed something");
    assert_eq!(p.read("results/small/results.csv"), csv);
    p.ktlab(&["report", "b.toml"]).fails(2).stderr_has("both named `small`");
    p.ktlab(&["run", "a.toml", "-q"]).ok();
    p.ktlab(&["run", "b.toml", "-q", "--results", "elsewhere"]).ok();
    std::fs::remove_file(p.path("a.toml")).unwrap();
    p.ktlab(&["run", "b.toml", "-q"]).ok();
    assert!(p.read("results/small/experiment.toml").contains("b.toml\n"));
}
