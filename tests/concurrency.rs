//! Two `ktlab run` processes on overlapping experiments share one store: every shared
//! stage is computed once and both succeed. A run killed mid-stage leaves no entry.
use crate::common::{Project, CONTRACT_HOG};

#[test]
fn overlapping_runs_compute_shared_stages_once() {
    let p = Project::new();
    p.write("a.toml", CONTRACT_HOG);
    // Same stages, another name and one more k: shares feat and the k=16 chain.
    p.write(
        "b.toml",
        &CONTRACT_HOG.replace("contract-hog", "other").replace("[4, 16]", "[16, 24]"),
    );
    let a = p
        .cmd()
        .args(["run", "a.toml", "--log-format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = p
        .cmd()
        .args(["run", "b.toml", "--log-format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let started = |o: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "started")
            .map(|v| v["key"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let mut all = started(&a);
    all.extend(started(&b));
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(n, all.len(), "a stage was computed twice");
    // a: feat + 2x3; b adds the k=24 chain (3): 10 entries, each computed once.
    assert_eq!(p.entries().len(), 10, "{:?}", p.entries());
    assert_eq!(n, 10);
}

#[test]
fn sigkill_during_a_stage_leaves_no_entry() {
    let p = Project::new();
    // A features stage over many images takes long enough to be killed in.
    p.write(
        "datasets.toml",
        "[big]\nformat = \"synthetic\"\nimage_size = 64\nsplits = { train = 200000 }\n",
    );
    p.write(
        "exp.toml",
        "name = \"kill\"\n[stages.f]\nkind = \"features\"\nmodel = \"hog\"\ndata = \"big:train\"\n",
    );
    let mut child = p
        .cmd()
        .args(["run", "exp.toml"])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the stage's work folder exists, then kill.
    let tmp = p.path("store/tmp");
    let t0 = std::time::Instant::now();
    while std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(t0.elapsed().as_secs() < 60, "stage never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(p.entries().is_empty(), "{:?}", p.entries());
    // Re-run on a smaller set (same store): completes, and nothing half-written is used.
    p.write(
        "datasets.toml",
        "[big]\nformat = \"synthetic\"\nimage_size = 64\nsplits = { train = 500 }\n",
    );
    p.ktlab(&["run", "exp.toml"]).ok();
    assert_eq!(p.entries().len(), 1);
    let e = &p.entries()[0];
    assert!(p.path(&format!("store/{e}/manifest.json")).exists());
}
