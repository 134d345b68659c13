//! Crash safety: `ktlab run` killed with SIGKILL at random moments over an experiment with
//! every stage kind, re-run after each kill. Every re-run completes, no store entry is ever
//! incomplete (the whole store is deep-verified after every kill and every re-run), and
//! the final results.csv equals that of an uninterrupted run.
//!
//! CI runs a few trials; `make soak` runs `KTLAB_SOAK_TRIALS=25` (and `KTLAB_SOAK_SEED`
//! replays a sequence of kill times).
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::common::Project;

pub const SMALL_DATASETS: &str = r#"
[small]
format = "synthetic"
image_size = 32
seed = 5
splits = { train = 400, test = 200 }
"#;

/// Every stage kind on main: features (hog, pixels, of a model), kmeans, assign,
/// cluster-metrics, init, train, pretext, linear-probe; a few seconds on two cores.
pub const ALL_KINDS: &str = r#"
name = "all-kinds"
seed = 3

[stages.hog]
kind = "features"
model = "hog"
data = "small:train"

[stages.pix]
kind = "features"
model = "pixels"
data = "small:train"

[stages.clusters]
kind = "kmeans"
features = "hog"
k = 8
iterations = 10

[stages.labels]
kind = "assign"
centroids = "clusters"
features = "hog"

[stages.quality]
kind = "cluster-metrics"
labels = "labels"
truth = "small:train"

[stages.pix_clusters]
kind = "kmeans"
features = "pix"
k = 8
iterations = 10

[stages.pix_labels]
kind = "assign"
centroids = "pix_clusters"
features = "pix"

[stages.pix_quality]
kind = "cluster-metrics"
labels = "pix_labels"
truth = "small:train"

[stages.net0]
kind = "init"
arch = "alexnet-small"
width = 0.25

[stages.student]
kind = "train"
arch = "alexnet-small"
width = 0.25
init = "net0"
labels = "labels"
epochs = 2
batch_size = 64

[stages.pretext]
kind = "pretext"
task = "rotation"
arch = "alexnet-small"
width = 0.25
data = "small:train"
epochs = 2
batch_size = 64

[stages.deep]
kind = "features"
model = "pretext"
layer = "conv3"
data = "small:train"

[stages.deep_clusters]
kind = "kmeans"
features = "deep"
k = 8
iterations = 10

[stages.deep_labels]
kind = "assign"
centroids = "deep_clusters"
features = "deep"

[stages.deep_quality]
kind = "cluster-metrics"
labels = "deep_labels"
truth = "small:train"

[stages.probe]
kind = "linear-probe"
solver = "adam"
model = "student"
train = "small:train"
test = "small:test"
layers = ["conv2", "conv5"]
epochs = 2
"#;

/// The stages of [`ALL_KINDS`].
const STAGES: [&str; 16] = [
    "hog",
    "pix",
    "clusters",
    "labels",
    "quality",
    "pix_clusters",
    "pix_labels",
    "pix_quality",
    "net0",
    "student",
    "pretext",
    "deep",
    "deep_clusters",
    "deep_labels",
    "deep_quality",
    "probe",
];

/// A project with the small dataset and the all-kinds experiment as `exp.toml`.
pub fn all_kinds_project() -> Project {
    let p = Project::new();
    p.write("datasets.toml", SMALL_DATASETS);
    p.write("exp.toml", ALL_KINDS);
    p
}

/// Deep-verifies every entry of a store: a parseable kind and key, a manifest whose
/// checksum verifies, every artefact's size and SHA-256, and no file the manifest does not
/// list. Returns the problems found (empty when the store is sound) and the entry count.
pub fn verify_store(store: &Path) -> (Vec<String>, usize) {
    let s = ktlab::store::Store::new(store);
    let mut problems = Vec::new();
    let mut n = 0;
    for e in crate::common::entries(store) {
        n += 1;
        let (kind, key) = e.split_once('/').unwrap();
        let (Some(kind), Some(key)) = (ktlab::stages::StageKind::parse(kind), ktlab::store::Key::parse(key)) else {
            problems.push(format!("{e}: not a kind/key entry"));
            continue;
        };
        match s.state(kind, &key, true) {
            ktlab::store::EntryState::Valid(m) => {
                for f in walkdir::WalkDir::new(store.join(&e)).min_depth(1) {
                    let f = f.unwrap();
                    if !f.file_type().is_file() {
                        continue;
                    }
                    let rel = f.path().strip_prefix(store.join(&e)).unwrap().to_string_lossy().into_owned();
                    if rel != "manifest.json" && rel != ktlab::store::MANIFEST_DIGEST && !m.artefacts.contains_key(&rel) {
                        problems.push(format!("{e}: {rel} is not in the manifest"));
                    }
                }
            }
            other => problems.push(format!("{e}: {other:?}")),
        }
    }
    (problems, n)
}

/// The stage (and kind) a killed run was computing, from its JSON events.
fn running_at_kill(log: &str) -> String {
    let mut running: Vec<(String, String)> = Vec::new();
    for v in log.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        let stage = v["stage"].as_str().unwrap_or("").to_string();
        match v["event"].as_str() {
            Some("started") => running.push((stage, v["kind"].as_str().unwrap_or("").to_string())),
            Some("finished") | Some("failed") => running.retain(|(s, _)| *s != stage),
            _ => {}
        }
    }
    match running.last() {
        Some((s, k)) => format!("{k} ({s})"),
        None if log.contains("\"started\"") => "between stages".to_string(),
        None => "before the first stage".to_string(),
    }
}

#[derive(Debug, Default)]
pub struct SoakReport {
    pub trials: usize,
    pub kills: usize,
    /// Runs that ended on their own before their kill time.
    pub finished_before_kill: usize,
    pub completions: usize,
    pub mismatches: usize,
    pub incomplete_entries: usize,
    pub killed_in: std::collections::BTreeMap<String, usize>,
}

pub fn soak(trials: usize, seed: u64) -> SoakReport {
    // The reference: one uninterrupted run.
    let reference = all_kinds_project();
    let t = Instant::now();
    reference.ktlab(&["run", "exp.toml", "-q"]).ok();
    let full = t.elapsed().as_secs_f64();
    let expected = reference.read("results/all-kinds/results.csv");

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut report = SoakReport::default();
    let p = all_kinds_project();
    let log_path = p.path("killed.log");
    // Each stage's kind and short key (from `ktlab plan`), to aim kills at stages still due.
    let plan = p.ktlab(&["plan", "exp.toml"]).ok().stdout;
    let entry_of: std::collections::HashMap<String, (String, String)> = plan
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 4).then(|| (cols[1].to_string(), (cols[2].to_string(), cols[3].to_string())))
        })
        .collect();
    let published = |stage: &str| -> bool {
        let (kind, short) = &entry_of[stage];
        std::fs::read_dir(p.path(&format!("store/{kind}")))
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(short.as_str())))
            .unwrap_or(false)
    };
    for trial in 0..trials {
        report.trials += 1;
        // Start most trials from an empty store; some from what the last one left.
        if rng.gen_bool(0.75) {
            let _ = std::fs::remove_dir_all(p.path("store"));
        }
        for _ in 0..rng.gen_range(1..=3) {
            let delay = Duration::from_secs_f64(rng.gen_range(0.0..full * 1.1));
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = p
                .cmd()
                .args(["run", "exp.toml", "--log-format", "json"])
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap();
            // Half the kills at a random time, half just after a random stage starts, so
            // that short stages are hit too.
            let due: Vec<&str> = STAGES.iter().copied().filter(|s| !published(s)).collect();
            let target = (!due.is_empty() && rng.gen_bool(0.5)).then(|| due[rng.gen_range(0..due.len())]);
            let after_start = Duration::from_millis(rng.gen_range(0..40));
            let t = Instant::now();
            let mut ended = None;
            let mut deadline = if target.is_some() { Duration::from_secs(600) } else { delay };
            while t.elapsed() < deadline {
                if let Some(status) = child.try_wait().unwrap() {
                    ended = Some(status);
                    break;
                }
                if let Some(stage) = target {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if deadline > delay && log.contains(&format!("\"event\":\"started\",\"stage\":\"{stage}\"")) {
                        deadline = t.elapsed() + after_start;
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            match ended {
                Some(status) => {
                    assert!(
                        status.success(),
                        "trial {trial}: run failed:\n{}",
                        std::fs::read_to_string(&log_path).unwrap()
                    );
                    report.finished_before_kill += 1;
                }
                None => {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    report.kills += 1;
                    let at = running_at_kill(&std::fs::read_to_string(&log_path).unwrap_or_default());
                    *report.killed_in.entry(at).or_default() += 1;
                }
            }
            let (problems, _) = verify_store(&p.path("store"));
            if !problems.is_empty() {
                eprintln!("trial {trial}: after a kill at {delay:?}: {problems:?}");
                report.incomplete_entries += problems.len();
            }
        }
        let r = p.ktlab(&["run", "exp.toml", "-q"]);
        if r.code == 0 && !r.stderr.contains("panicked") {
            report.completions += 1;
        } else {
            eprintln!("trial {trial}: re-run failed ({}):\n{}", r.code, r.stderr);
        }
        let (problems, n) = verify_store(&p.path("store"));
        if !problems.is_empty() || n != STAGES.len() {
            eprintln!("trial {trial}: after the re-run, {n} entries: {problems:?}");
            report.incomplete_entries += problems.len().max(1);
        }
        if std::fs::read_to_string(p.path("results/all-kinds/results.csv")).ok().as_deref() != Some(expected.as_str()) {
            eprintln!("trial {trial}: results.csv differs from the uninterrupted run's");
            report.mismatches += 1;
        }
    }
    report
}

fn run_soak(default_trials: usize) {
    let trials = std::env::var("KTLAB_SOAK_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_trials);
    let seed = std::env::var("KTLAB_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    let t = Instant::now();
    let r = soak(trials, seed);
    eprintln!(
        "soak (KTLAB_SOAK_SEED={seed}): {} trials, {} kills, {} runs ended before their kill, {} completions, {} mismatches, {} incomplete entries, {:.0}s",
        r.trials,
        r.kills,
        r.finished_before_kill,
        r.completions,
        r.mismatches,
        r.incomplete_entries,
        t.elapsed().as_secs_f64()
    );
    eprintln!("killed while computing: {:?}", r.killed_in);
    assert_eq!(r.completions, r.trials, "{r:?}");
    assert_eq!(r.mismatches, 0, "{r:?}");
    assert_eq!(r.incomplete_entries, 0, "{r:?}");
}

/// A few trials in CI; `make soak` sets KTLAB_SOAK_TRIALS.
#[test]
fn soak_sigkill_at_random_moments() {
    run_soak(3);
}
