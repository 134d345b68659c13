//! The front end (`ktlab`, built without libtorch) against the engine beside it: it loads no
//! libtorch, plans with the engine's keys, hands the commands that compute over with their
//! arguments and exit codes, and says so when the engine is missing. `make test` builds the
//! engine first (`target/<profile>/ktlab-engine`).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DATASETS: &str = r#"
[shapes]
format = "synthetic"
image_size = 32
seed = 0
splits = { train = 200 }
"#;

const EXPERIMENT: &str = r#"
name = "front"
seed = 3
device = "auto"

[stages.feat]
kind = "features"
model = "pixels"
size = 8
data = "shapes:train"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 4
iterations = 5

[sweep]
"stages.clusters.k" = [4, 8]
"#;

fn front() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ktlab"))
}

fn engine() -> PathBuf {
    let e = front().with_file_name("ktlab-engine");
    assert!(
        e.is_file(),
        "{} is missing: build it first (`make build`, which `make test` runs)",
        e.display()
    );
    e
}

struct Project(tempfile::TempDir);

impl Project {
    fn new() -> Project {
        let p = Project(tempfile::tempdir().unwrap());
        std::fs::write(p.0.path().join("datasets.toml"), DATASETS).unwrap();
        std::fs::write(p.0.path().join("exp.toml"), EXPERIMENT).unwrap();
        p
    }

    fn run(&self, bin: &Path, args: &[&str]) -> Output {
        Command::new(bin)
            .current_dir(self.0.path())
            .env_remove("KTLAB_STORE")
            .env_remove("KTLAB_RESULTS")
            .env_remove("KTLAB_DATASETS")
            .env_remove("KTLAB_ENGINE")
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .args(["--store", "store", "--results", "results"])
            .args(args)
            .output()
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn the_front_end_does_not_link_libtorch() {
    let bytes = std::fs::read(front()).unwrap();
    for lib in ["libtorch_cpu.so", "libtorch.so", "libc10.so", "libtorch_cuda.so"] {
        let found = bytes.windows(lib.len()).any(|w| w == lib.as_bytes());
        assert!(!found, "the front end names {lib}: it would load libtorch at start-up");
    }
    // And the engine does (the same scan sees it there).
    let engine = std::fs::read(engine()).unwrap();
    assert!(engine.windows(15).any(|w| w == b"libtorch_cpu.so"));
}

#[test]
fn plans_like_the_engine_and_hands_run_over() {
    let p = Project::new();
    let planned = p.run(&front(), &["plan", "exp.toml"]);
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));
    let by_engine = p.run(&engine(), &["plan", "exp.toml"]);
    assert_eq!(planned.stdout, by_engine.stdout, "the two builds plan differently");
    assert!(text(&planned).contains("3 to run"), "{}", text(&planned));

    // `run` is computed by the engine, with this process's arguments.
    let ran = p.run(&front(), &["run", "exp.toml"]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran));
    assert!(text(&ran).contains("3 computed"), "{}", text(&ran));
    let again = p.run(&front(), &["plan", "exp.toml"]);
    assert!(text(&again).contains("3 cached, 0 to run"), "{}", text(&again));
    let status = p.run(&front(), &["status", "exp.toml"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
}

#[test]
fn exit_codes_come_back_from_the_engine() {
    let p = Project::new();
    std::fs::write(p.0.path().join("bad.toml"), EXPERIMENT.replace("k = 4\n", "k = 0\n")).unwrap();
    // Planned here and there: bad configuration is exit 2 in both.
    for args in [&["plan", "bad.toml"][..], &["run", "bad.toml"][..]] {
        let o = p.run(&front(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("stages.clusters.k"), "{args:?}: {}", text(&o));
    }
}

#[test]
fn a_missing_engine_is_named() {
    let p = Project::new();
    let without_engine = |command: &str| {
        Command::new(front())
            .current_dir(p.0.path())
            .env("KTLAB_ENGINE", p.0.path().join("no-engine"))
            .args(["--store", "store", command, "exp.toml"])
            .output()
            .unwrap()
    };
    let o = without_engine("run");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no-engine"), "{}", text(&o));
    // Commands that compute nothing do not need it.
    let o = without_engine("plan");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
