//! Four concurrent `ktlab run` on overlapping experiments with one store, while `ktlab gc`
//! loops with an experiment list that does not name them (so gc would like to delete all
//! their entries): every run succeeds, every stage instance is computed exactly once, and
//! no entry a run holds or is about to use disappears.
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Project, CONTRACT_HOG};
use crate::soak::verify_store;

#[test]
fn four_runs_and_a_gc_loop_share_one_store() {
    let p = Project::new();
    // Enough images that the runs last a few seconds, for gc to run many times meanwhile.
    p.write(
        "datasets.toml",
        "[shapes]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 10000, test = 100 }\n",
    );
    let experiments = [
        ("a.toml", "contract-hog", "[4, 16]"),
        ("b.toml", "other", "[16, 24]"),
        ("c.toml", "third", "[4, 24]"),
        ("d.toml", "fourth", "[8, 16, 24]"),
    ];
    for (file, name, ks) in experiments {
        p.write(file, &CONTRACT_HOG.replace("contract-hog", name).replace("[4, 16]", ks));
    }
    // What gc is told to keep: nothing the runs use (--all-experiments: not even what
    // the experiments' records name).
    p.write(
        "keep.toml",
        "name = \"keep\"\n[stages.f]\nkind = \"features\"\nmodel = \"pixels\"\ndata = \"shapes:test\"\n",
    );
    let logs: Vec<_> = experiments.iter().map(|(f, _, _)| p.path(&format!("{f}.log"))).collect();
    let mut children: Vec<_> = experiments
        .iter()
        .zip(&logs)
        .map(|((file, _, _), log)| {
            p.cmd()
                .args(["run", file, "--log-format", "json"])
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
                .spawn()
                .unwrap()
        })
        .collect();
    // Each run pins its keys before its first event; start gc once all have one.
    let t = Instant::now();
    while !logs.iter().all(|l| std::fs::metadata(l).map(|m| m.len() > 0).unwrap_or(false)) {
        assert!(t.elapsed() < Duration::from_secs(120), "runs never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut gcs = 0;
    let mut gc_skipped_busy = 0;
    let mut statuses = vec![None; children.len()];
    while statuses.iter().any(Option::is_none) {
        let r = p.ktlab(&["gc", "--all-experiments", "keep.toml"]);
        assert_eq!(r.code, 0, "gc failed: {}", r.stderr);
        gcs += 1;
        if r.stdout.contains("in use") {
            gc_skipped_busy += 1;
        }
        for (i, c) in children.iter_mut().enumerate() {
            if statuses[i].is_none() {
                statuses[i] = c.try_wait().unwrap();
            }
        }
    }
    let mut started = Vec::new();
    for ((status, log), (file, name, ks)) in statuses.iter().zip(&logs).zip(experiments) {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(status.unwrap().success(), "{file} failed:\n{text}");
        started.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|v| v["event"] == "started")
                .map(|v| v["key"].as_str().unwrap_or("").to_string()),
        );
        // Every variant's metrics made it into the results, whatever gc did meanwhile.
        let csv = p.read(&format!("results/{name}/results.csv"));
        let variants = ks.matches(',').count() + 1;
        // Seven cluster metrics per variant.
        assert_eq!(csv.lines().count(), 1 + 7 * variants, "{file}:\n{csv}");
    }
    let n = started.len();
    started.sort();
    started.dedup();
    assert_eq!(n, started.len(), "a stage instance was computed twice");
    // feat + 3 stages for each k in {4, 8, 16, 24}.
    assert_eq!(n, 13);
    eprintln!("gc ran {gcs} times while the runs went, {gc_skipped_busy} times finding entries in use");
    assert!(
        gcs >= 2 && gc_skipped_busy >= 1,
        "gc ran {gcs} times, {gc_skipped_busy} saw entries in use"
    );
    let (problems, _) = verify_store(&p.path("store"));
    assert!(problems.is_empty(), "{problems:?}");
    // With no run left, gc removes what nobody keeps: it did want these entries. Without
    // --all-experiments, it keeps those the four experiments are recorded to have used.
    // (The loop may have removed some after their run ended: those left are kept.)
    let left = p.entries();
    let r = p.ktlab(&["gc", "keep.toml"]).ok();
    assert!(r.stdout.contains("removed 0 entries"), "{}", r.stdout);
    if !left.is_empty() {
        let kept = format!("kept {} entries other experiments used: ", left.len());
        assert!(r.stdout.contains(&kept), "{}", r.stdout);
    }
    assert_eq!(p.entries(), left);
    p.ktlab(&["gc", "--all-experiments", "keep.toml"]).ok();
    assert!(p.entries().is_empty(), "{:?}", p.entries());
    assert_eq!(std::fs::read_dir(p.path("store/pins")).unwrap().count(), 0, "pin files left behind");
}
