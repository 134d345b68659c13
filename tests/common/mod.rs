//! A small builder for end-to-end CLI tests in temporary folders.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const DATASETS: &str = r#"
[shapes]
format = "synthetic"
image_size = 32
seed = 0
splits = { unlabeled = 2000, train = 1000, test = 1000 }
"#;

pub const CONTRACT_HOG: &str = r#"
name = "contract-hog"
seed = 7
device = "auto"

[stages.feat]
kind = "features"
model = "hog"
data = "shapes:train"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 16
iterations = 20

[stages.labels]
kind = "assign"
centroids = "clusters"
features = "feat"

[stages.quality]
kind = "cluster-metrics"
labels = "labels"
truth = "shapes:train"

[sweep]
"stages.clusters.k" = [4, 16]
"#;

/// A synthetic dataset of 60 images in one split, `tiny:train`, for the tests of what a run
/// writes and prints.
pub const TINY_DATASETS: &str = "[tiny]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { train = 60 }\n";

/// A temporary project: datasets.toml, experiment files, a store and a results folder.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let p = Project {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        p.write("datasets.toml", DATASETS);
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ktlab-engine"));
        c.current_dir(self.dir.path());
        c.env_remove("KTLAB_STORE").env_remove("KTLAB_RESULTS").env_remove("KTLAB_DATASETS");
        c.args(["--store", "store", "--results", "results"]);
        // libgomp spin-waits by default, which stalls badly when tests oversubscribe the cores.
        if std::env::var_os("OMP_WAIT_POLICY").is_none() {
            c.env("OMP_WAIT_POLICY", "PASSIVE");
        }
        c
    }

    pub fn ktlab(&self, args: &[&str]) -> Run {
        let out = self.cmd().args(args).output().expect("run ktlab");
        Run::from(out)
    }

    /// Every published entry as "kind/key".
    pub fn entries(&self) -> Vec<String> {
        entries(&self.path("store"))
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

pub fn entries(store: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(kinds) = std::fs::read_dir(store) else { return out };
    for k in kinds.flatten() {
        let kind = k.file_name().to_string_lossy().into_owned();
        if [
            "tmp",
            "locks",
            "pins",
            "records",
            "fingerprints",
            "checkpoints",
            "tensorboard",
            "decoded",
            "slurm",
        ]
        .contains(&kind.as_str())
        {
            continue;
        }
        for e in std::fs::read_dir(k.path()).into_iter().flatten().flatten() {
            out.push(format!("{kind}/{}", e.file_name().to_string_lossy()));
        }
    }
    out.sort();
    out
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn fails(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr);
        self
    }
}

/// Writes a `.npy` file (format 1.0) with the given element type, shape and raw data.
pub fn write_npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}
