//! Two `ktlab run` processes on overlapping experiments share one store: every shared
//! stage is computed once and both succeed. A run killed mid-stage leaves no entry; one
//! interrupted (Ctrl-C, SIGTERM) says what stopped and leaves no work folder either, and
//! the work folder of a SIGKILLed one is removed by the next run or gc.
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

/// A features stage over many images: long enough to be interrupted in.
fn slow_project() -> Project {
    let p = Project::new();
    p.write(
        "datasets.toml",
        "[big]\nformat = \"synthetic\"\nimage_size = 64\nsplits = { train = 200000 }\n",
    );
    p.write(
        "exp.toml",
        "name = \"kill\"\n[stages.f]\nkind = \"features\"\nmodel = \"hog\"\ndata = \"big:train\"\n",
    );
    p
}

/// `ktlab run exp.toml`, started, once its stage's work folder exists.
fn started_run(p: &Project) -> std::process::Child {
    let child = p
        .cmd()
        .args(["run", "exp.toml"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while work_folders(p).is_empty() {
        assert!(t0.elapsed().as_secs() < 60, "stage never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child
}

fn work_folders(p: &Project) -> Vec<String> {
    std::fs::read_dir(p.path("store/tmp"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[cfg(unix)]
#[test]
fn ctrl_c_or_sigterm_during_a_stage_says_what_stopped_and_leaves_no_work_folder() {
    let p = slow_project();
    for (signal, code, said) in [("INT", 130, "interrupted (Ctrl-C)"), ("TERM", 143, "terminated (SIGTERM)")] {
        let child = started_run(&p);
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(
            stderr.contains(&format!("{said}: f was being computed; nothing of it is stored\n")),
            "{stderr}"
        );
        assert!(
            stderr.contains("run `ktlab --store store --results results run exp.toml` again to resume"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(work_folders(&p), Vec::<String>::new(), "{stderr}");
        assert!(p.entries().is_empty(), "{:?}", p.entries());
    }
}

#[test]
fn sigkill_during_a_stage_leaves_no_entry() {
    let p = slow_project();
    let mut child = started_run(&p);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(p.entries().is_empty(), "{:?}", p.entries());
    // The killed run's work folder stays; gc removes it, though the experiment still
    // references its key (nobody holds the key's lock).
    assert_eq!(work_folders(&p).len(), 1);
    let r = p.ktlab(&["gc", "exp.toml"]).ok();
    assert!(r.stdout.contains("removed 1 entries"), "{}", r.stdout);
    assert_eq!(work_folders(&p), Vec::<String>::new());
    // Killed again; a re-run on a smaller set (another key, same store) completes,
    // nothing half-written is used, and the killed run's work folder is gone.
    let mut child = started_run(&p);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(work_folders(&p).len(), 1);
    p.write(
        "datasets.toml",
        "[big]\nformat = \"synthetic\"\nimage_size = 64\nsplits = { train = 500 }\n",
    );
    p.ktlab(&["run", "exp.toml"]).ok();
    assert_eq!(p.entries().len(), 1);
    let e = &p.entries()[0];
    assert!(p.path(&format!("store/{e}/manifest.json")).exists());
    assert_eq!(work_folders(&p), Vec::<String>::new());
}
