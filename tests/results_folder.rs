//! A results folder is complete and consistent, or left as it was: a run with part of the
//! instances (`--only`, a failed stage) does not touch it, and a `report` killed at any
//! moment leaves the old folder or the new one, never a mix, with no leftovers after the
//! next write. Files ktlab does not write (a script's run.txt) survive every rewrite.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::common::{Project, TINY_DATASETS};

/// Two seeds and a sweep over k: default tables per metric, each with a plot.
const EXP: &str = r#"
name = "folder"
seeds = [0, 1]

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
label = "pixels then k-means"

[sweep]
"stages.clusters.k" = [2, 3]
"#;

/// Every file under `dir` (relative path -> bytes).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn hidden_under(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path().display().to_string())
        .collect()
}

fn project() -> Project {
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    p.write("exp.toml", EXP);
    p
}

#[test]
fn a_partial_or_failed_run_leaves_a_complete_folder_byte_identical() {
    let p = project();
    // A first run with part of the instances writes no folder at all.
    let r = p.ktlab(&["run", "exp.toml", "--only", "feat"]).ok();
    assert!(
        r.stdout.contains("results/folder not rewritten: 12 of 13 stage instances are not in the store (run `ktlab run exp.toml` without --only to complete it)"),
        "{}",
        r.stdout
    );
    assert!(!p.path("results/folder").exists());
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    p.write("results/folder/run.txt", "wall_seconds: 1.5\n");
    let complete = snapshot(&p.path("results/folder"));
    for f in [
        "results.csv",
        "results.md",
        "experiment.toml",
        "provenance.json",
        "nmi.csv",
        "nmi.svg",
        "run.txt",
    ] {
        assert!(complete.contains_key(f), "{f}: {:?}", complete.keys());
    }
    // --only with an entry gone (a gc, a corrupt entry): one stage recomputed, the
    // folder left as it was.
    let gone = p.entries().into_iter().find(|e| e.starts_with("cluster-metrics/")).unwrap();
    std::fs::remove_dir_all(p.path(&format!("store/{gone}"))).unwrap();
    let r = p.ktlab(&["run", "exp.toml", "--only", "feat", "--force", "feat"]).ok();
    assert!(r.stdout.contains("results/folder not rewritten: 1 of 13"), "{}", r.stdout);
    assert!(
        snapshot(&p.path("results/folder")) == complete,
        "a run with --only rewrote the folder"
    );
    // Stages that fail (k beyond the number of images): nothing is rewritten either.
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let complete = snapshot(&p.path("results/folder"));
    p.write("exp.toml", &EXP.replace("= [2, 3]", "= [2, 100]"));
    let r = p.ktlab(&["run", "exp.toml"]).fails(2);
    r.stderr_has("k = 100 is larger than the number of points (60)");
    assert!(
        r.stdout
            .contains("results/folder not rewritten: 6 of 13 stage instances are not in the store (2 stages failed)"),
        "{}",
        r.stdout
    );
    assert!(snapshot(&p.path("results/folder")) == complete, "a failed run rewrote the folder");
    // `report` with instances missing fails and leaves it too.
    p.ktlab(&["report", "exp.toml"]).fails(1).stderr_has("results/folder not rewritten");
    assert!(snapshot(&p.path("results/folder")) == complete, "report rewrote the folder");
    // A complete rewrite keeps the file ktlab does not write, and leaves nothing hidden.
    p.write("exp.toml", &EXP.replace("pixels then k-means", "pixels, then k-means"));
    p.ktlab(&["report", "exp.toml", "-q"]).ok();
    let rewritten = snapshot(&p.path("results/folder"));
    assert_eq!(rewritten.keys().collect::<Vec<_>>(), complete.keys().collect::<Vec<_>>());
    assert_eq!(rewritten["run.txt"], b"wall_seconds: 1.5\n");
    assert_ne!(rewritten["nmi.md"], complete["nmi.md"]);
    assert_eq!(hidden_under(&p.path("results")), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn report_killed_at_any_moment_leaves_the_old_or_the_new_folder() {
    let p = project();
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    p.write("results/folder/run.txt", "kept\n");
    // Two versions of the file (a label: the same keys, other tables and plots).
    let versions = [EXP.to_string(), EXP.replace("pixels then k-means", "pixels, then k-means")];
    let mut expected = Vec::new();
    let mut took = Duration::ZERO;
    for v in &versions {
        p.write("exp.toml", v);
        let t0 = Instant::now();
        p.ktlab(&["report", "exp.toml", "-q"]).ok();
        took = took.max(t0.elapsed());
        expected.push(snapshot(&p.path("results/folder")));
    }
    assert!(expected[0] != expected[1]);
    let seed = rand::thread_rng().gen::<u64>();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut killed, mut mixed) = (0, Vec::new());
    for trial in 0..40 {
        p.write("exp.toml", &versions[trial % 2]);
        let mut child = p
            .cmd()
            .args(["report", "exp.toml", "-q"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(took.mul_f64(rng.gen_range(0.0..1.2)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        let now = snapshot(&p.path("results/folder"));
        if !expected.contains(&now) {
            mixed.push(trial);
        }
    }
    assert!(
        mixed.is_empty(),
        "seed {seed}: the folder was neither version after trials {mixed:?}"
    );
    assert!(killed > 0, "no report was killed (each took up to {took:?})");
    // The next write removes what the killed ones left.
    p.write("exp.toml", &versions[0]);
    p.ktlab(&["report", "exp.toml", "-q"]).ok();
    assert_eq!(hidden_under(&p.path("results")), Vec::<String>::new(), "seed {seed}");
    assert!(snapshot(&p.path("results/folder")) == expected[0]);
}
