//! The bad-input corpus: every case must fail with the right exit code, a message naming
//! the culprit (file and line, key, stage or image path), no panic, and no new store entry.
//!
//! Configuration cases are data: `tests/corpus/<case>/experiment.toml` (and optionally
//! `datasets.toml`) with `expect.toml` (`code`, `stderr` substrings, optional `args` and
//! `entries`). Data cases need files that git cannot hold (FIFOs, symbolic link loops,
//! files changed mid-run) and are built in code below.
use std::path::{Path, PathBuf};

use crate::common::{Project, Run, DATASETS};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    code: i32,
    stderr: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    /// Entries the run may publish (stages before the culprit); default 0.
    #[serde(default)]
    entries: usize,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Checks one failed run; returns what is wrong, if anything.
fn check(case: &str, p: &Project, r: &Run, code: i32, needles: &[String], entries: usize) -> Option<String> {
    let mut wrong = Vec::new();
    if r.code != code {
        wrong.push(format!("exit code {} (expected {code})", r.code));
    }
    if r.stderr.contains("panicked") {
        wrong.push("panicked".to_string());
    }
    for n in needles {
        if !r.stderr.contains(n.as_str()) {
            wrong.push(format!("stderr lacks {n:?}"));
        }
    }
    let e = p.entries();
    if e.len() != entries {
        wrong.push(format!("{} store entries (expected {entries}): {e:?}", e.len()));
    }
    (!wrong.is_empty()).then(|| format!("{case}: {}\n--- stderr:\n{}", wrong.join("; "), r.stderr))
}

#[test]
fn configuration_corpus() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 60, "corpus shrank to {} cases", cases.len());
    let mut failures = Vec::new();
    for dir in &cases {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expect: Expect = toml::from_str(&std::fs::read_to_string(dir.join("expect.toml")).unwrap())
            .unwrap_or_else(|e| panic!("{case}/expect.toml: {e}"));
        let p = Project::new();
        for f in ["experiment.toml", "datasets.toml"] {
            if dir.join(f).exists() {
                std::fs::copy(dir.join(f), p.path(f)).unwrap();
            }
        }
        let mut args = vec!["run", "experiment.toml"];
        args.extend(expect.args.iter().map(String::as_str));
        let r = p.ktlab(&args);
        failures.extend(check(&case, &p, &r, expect.code, &expect.stderr, expect.entries));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

const FEATURES_OF_MINE: &str = "name = \"data\"\n[stages.f]\nkind = \"features\"\nmodel = \"pixels\"\ndata = \"mine:train\"\n";

/// A project whose `mine` image-folder dataset has two classes of three 16x16 PNGs.
fn image_project() -> Project {
    let p = Project::new();
    for (class, shade) in [("a", 10u8), ("b", 200)] {
        for i in 0..3 {
            write_png(&p, &format!("mine/train/{class}/{i}.png"), 16, 16, shade + i as u8);
        }
    }
    p.write(
        "datasets.toml",
        &format!("{DATASETS}\n[mine]\nformat = \"image-folder\"\nroot = \"mine\"\n"),
    );
    p.write("exp.toml", FEATURES_OF_MINE);
    p
}

fn write_png(p: &Project, rel: &str, w: u32, h: u32, shade: u8) {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([shade, (x * 9) as u8, (y * 13) as u8]));
    let path = p.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(&path).unwrap();
}

fn jpeg_bytes() -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 16) as u8, (y * 16) as u8, 7]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A data case: builds a project, runs it, and names what must appear in stderr.
struct DataCase {
    name: &'static str,
    code: i32,
    entries: usize,
    setup: fn(&Project) -> Vec<String>,
    args: &'static [&'static str],
}

fn data_cases() -> Vec<DataCase> {
    let run = &["run", "exp.toml"][..];
    vec![
        DataCase {
            name: "missing_root_folder",
            code: 2,
            entries: 0,
            setup: |p| {
                std::fs::remove_dir_all(p.path("mine")).unwrap();
                vec![p.path("mine").display().to_string(), "No such file or directory".into()]
            },
            args: run,
        },
        DataCase {
            name: "root_is_a_file",
            code: 2,
            entries: 0,
            setup: |p| {
                std::fs::remove_dir_all(p.path("mine")).unwrap();
                p.write("mine", "not a folder");
                vec![p.path("mine").display().to_string()]
            },
            args: run,
        },
        DataCase {
            name: "split_without_class_folders",
            code: 2,
            entries: 0,
            setup: |p| {
                std::fs::remove_dir_all(p.path("mine/train")).unwrap();
                std::fs::create_dir_all(p.path("mine/train")).unwrap();
                vec!["mine/train has no class folders".into()]
            },
            args: run,
        },
        DataCase {
            name: "empty_class_folder",
            code: 2,
            entries: 0,
            setup: |p| {
                std::fs::create_dir_all(p.path("mine/train/c")).unwrap();
                p.write("mine/train/c/readme.txt", "no images here");
                vec!["mine/train/c is empty".into()]
            },
            args: run,
        },
        DataCase {
            name: "truncated_jpeg",
            code: 2,
            entries: 0,
            setup: |p| {
                let bytes = jpeg_bytes();
                std::fs::write(p.path("mine/train/a/cut.jpg"), &bytes[..bytes.len() / 2]).unwrap();
                vec!["mine/train/a/cut.jpg".into()]
            },
            args: run,
        },
        DataCase {
            name: "truncated_png",
            code: 2,
            entries: 0,
            setup: |p| {
                let bytes = std::fs::read(p.path("mine/train/b/0.png")).unwrap();
                std::fs::write(p.path("mine/train/b/0.png"), &bytes[..bytes.len() - 20]).unwrap();
                vec!["mine/train/b/0.png".into()]
            },
            args: run,
        },
        DataCase {
            name: "zero_byte_file",
            code: 2,
            entries: 0,
            setup: |p| {
                std::fs::write(p.path("mine/train/a/empty.png"), b"").unwrap();
                vec!["mine/train/a/empty.png".into(), "the file is empty".into()]
            },
            args: run,
        },
        DataCase {
            name: "text_file_named_jpg",
            code: 2,
            entries: 0,
            setup: |p| {
                p.write("mine/train/b/notes.jpg", "these are my notes, not a picture\n");
                vec!["mine/train/b/notes.jpg".into(), "not a JPEG or PNG file".into()]
            },
            args: run,
        },
        DataCase {
            name: "mixed_sizes_where_one_size_is_required",
            code: 2,
            entries: 0,
            setup: |p| {
                write_png(p, "mine/train/b/wide.png", 24, 16, 3);
                vec!["mine/train/b/wide.png".into(), "set `image_size`".into()]
            },
            args: run,
        },
        DataCase {
            name: "symlink_loop",
            code: 2,
            entries: 0,
            setup: |p| {
                std::os::unix::fs::symlink(p.path("mine/train/a"), p.path("mine/train/a/loop")).unwrap();
                vec!["mine/train/a/loop".into()]
            },
            args: run,
        },
        DataCase {
            name: "dangling_symlink",
            code: 2,
            entries: 0,
            setup: |p| {
                std::os::unix::fs::symlink(p.path("nowhere.png"), p.path("mine/train/a/gone.png")).unwrap();
                vec!["mine/train/a/gone.png".into()]
            },
            args: run,
        },
        // Tests run as root, where permission bits do not stop reads. Honest stand-ins for
        // an unreadable file: a FIFO named like an image (reading would block forever) ...
        DataCase {
            name: "fifo_named_png",
            code: 2,
            entries: 0,
            setup: |p| {
                let path = p.path("mine/train/a/pipe.png");
                let ok = std::process::Command::new("mkfifo").arg(&path).status().unwrap().success();
                assert!(ok, "mkfifo failed");
                vec!["mine/train/a/pipe.png".into(), "not a regular file".into()]
            },
            args: run,
        },
        // ... and a file whose read fails with EIO: a link to /proc/self/mem, which every
        // process can open but not read at offset 0.
        DataCase {
            name: "unreadable_file",
            code: 2,
            entries: 0,
            setup: |p| {
                std::os::unix::fs::symlink("/proc/self/mem", p.path("mine/train/b/mem.png")).unwrap();
                vec!["mine/train/b/mem.png".into()]
            },
            args: run,
        },
        DataCase {
            name: "folder_named_like_an_image",
            code: 2,
            entries: 0,
            setup: |p| {
                std::fs::create_dir_all(p.path("mine/train/c/photo.jpg")).unwrap();
                vec!["mine/train/c is empty".into()]
            },
            args: run,
        },
        DataCase {
            name: "cifar10_binary_without_files",
            code: 2,
            entries: 0,
            setup: |p| {
                std::fs::create_dir_all(p.path("cifar")).unwrap();
                p.write(
                    "datasets.toml",
                    &format!("{DATASETS}\n[mine]\nformat = \"cifar10-binary\"\nroot = \"cifar\"\n"),
                );
                vec!["data_batch_1.bin".into()]
            },
            args: run,
        },
        DataCase {
            name: "k_larger_than_the_data",
            code: 2,
            entries: 1,
            setup: |p| {
                p.write(
                    "exp.toml",
                    &format!("{FEATURES_OF_MINE}[stages.c]\nkind = \"kmeans\"\nfeatures = \"f\"\nk = 7\n"),
                );
                vec!["c: k = 7 is larger than the number of points (6)".into()]
            },
            args: run,
        },
        DataCase {
            name: "missing_datasets_file",
            code: 2,
            entries: 0,
            setup: |_| vec!["nope.toml".into(), "No such file or directory".into()],
            args: &["run", "exp.toml", "--datasets", "nope.toml"],
        },
        DataCase {
            name: "missing_experiment_file",
            code: 2,
            entries: 0,
            setup: |_| vec!["absent.toml".into(), "No such file or directory".into()],
            args: &["run", "absent.toml"],
        },
        DataCase {
            name: "experiment_is_a_folder",
            code: 2,
            entries: 0,
            setup: |p| {
                std::fs::create_dir_all(p.path("dir.toml")).unwrap();
                vec!["dir.toml: is a directory".into()]
            },
            args: &["run", "dir.toml"],
        },
        DataCase {
            name: "non_utf8_experiment",
            code: 2,
            entries: 0,
            setup: |p| {
                std::fs::write(p.path("exp.toml"), b"name = \"data\"\n# caf\xe9\n").unwrap();
                vec!["exp.toml:2:".into(), "not valid UTF-8".into()]
            },
            args: run,
        },
        DataCase {
            name: "enormous_experiment",
            code: 2,
            entries: 0,
            setup: |p| {
                let mut text = String::from(FEATURES_OF_MINE);
                while text.len() <= 5 << 20 {
                    text.push_str("# padding padding padding padding padding padding padding padding\n");
                }
                p.write("exp.toml", &text);
                vec!["exp.toml".into(), "configuration files are limited to".into()]
            },
            args: run,
        },
        DataCase {
            name: "enormous_datasets_file",
            code: 2,
            entries: 0,
            setup: |p| {
                let mut text = std::fs::read_to_string(p.path("datasets.toml")).unwrap();
                while text.len() <= 5 << 20 {
                    text.push_str("# padding padding padding padding padding padding padding padding\n");
                }
                p.write("datasets.toml", &text);
                vec!["datasets.toml".into(), "configuration files are limited to".into()]
            },
            args: run,
        },
        DataCase {
            // A train stage scored on a split of other classes: refused before it trains.
            name: "train_test_of_other_classes",
            code: 2,
            entries: 0,
            setup: |p| {
                for (class, shade) in [("a", 10u8), ("c", 120)] {
                    write_png(p, &format!("mine/test/{class}/0.png"), 16, 16, shade);
                }
                p.write(
                    "exp.toml",
                    "name = \"data\"\n[stages.t]\nkind = \"train\"\narch = \"alexnet-small\"\nwidth = 0.25\n\
                     data = \"mine:train\"\nlabels = \"truth\"\ntest = \"mine:test\"\nepochs = 1\n",
                );
                vec![
                    "`stages.t.test`".into(),
                    "the test split `mine:test` has classes [a, c], the train split `mine:train` has [a, b]".into(),
                    "`c` is not among the training classes".into(),
                ]
            },
            args: run,
        },
    ]
}

#[test]
fn data_corpus() {
    let cases = data_cases();
    let mut failures = Vec::new();
    for c in &cases {
        let p = image_project();
        let needles = (c.setup)(&p);
        let r = p.ktlab(c.args);
        failures.extend(check(c.name, &p, &r, c.code, &needles, c.entries));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The dataset changes after planning, while an earlier stage runs: the stage reading it
/// must not publish an entry keyed on the old fingerprint.
#[test]
fn dataset_changed_between_planning_and_running() {
    use std::io::BufRead;
    let p = image_project();
    p.write(
        "datasets.toml",
        &format!(
            "{DATASETS}\n[big]\nformat = \"synthetic\"\nimage_size = 64\nsplits = {{ train = 3000 }}\n\n[mine]\nformat = \"image-folder\"\nroot = \"mine\"\n"
        ),
    );
    p.write(
        "exp.toml",
        "name = \"changed\"\n[stages.slow]\nkind = \"features\"\nmodel = \"hog\"\ndata = \"big:train\"\n[stages.f]\nkind = \"features\"\nmodel = \"pixels\"\ndata = \"mine:train\"\n",
    );
    let mut child = p
        .cmd()
        .args(["run", "exp.toml", "--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    let mut changed = false;
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if !changed && line.contains("\"started\"") && line.contains("\"slow\"") {
            write_png(&p, "mine/train/a/new.png", 16, 16, 99);
            changed = true;
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(changed, "the slow stage never started:\n{stderr}");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("dataset `mine:train` changed while ktlab was running"), "{stderr}");
    // Only the slow stage's entry exists; a new run plans with the new files and succeeds.
    assert_eq!(p.entries().len(), 1, "{:?}", p.entries());
    p.ktlab(&["run", "exp.toml"]).ok();
    assert_eq!(p.entries().len(), 2, "{:?}", p.entries());
}
