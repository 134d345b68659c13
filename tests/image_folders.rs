//! scripts/make_imagenet_like.py: the generated ImageNet-like folders (what the memory and
//! throughput measurements of large splits read) are reproducible from their seed, have
//! ImageNet's image sizes, and are read by ktlab as an image folder.
use std::path::Path;
use std::process::Command;

use crate::common::Project;

fn generate(python: &str, out: &Path, seed: u32) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make_imagenet_like.py");
    let r = Command::new(python)
        .args([
            script,
            "--out",
            out.to_str().unwrap(),
            "--train",
            "40",
            "--val",
            "8",
            "--classes",
            "4",
        ])
        .args(["--seed", &seed.to_string(), "--workers", "2"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn generated_image_folders_are_reproducible_imagenet_sized_and_readable() {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    if !Path::new(python).exists() {
        ktlab::skip::skip(
            "generated_image_folders_are_reproducible_imagenet_sized_and_readable",
            &format!("the generator needs the project's Python: {python} not found (make build)"),
        );
        return;
    }
    let p = Project::new();
    let (a, b, c) = (p.path("a"), p.path("b"), p.path("c"));
    generate(python, &a, 0);
    generate(python, &b, 0);
    generate(python, &c, 1);
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert_eq!(fa.len(), 48, "{:?}", fa.iter().map(|f| &f.0).collect::<Vec<_>>());
    assert!(fa == fb, "the same seed made other files");
    assert!(fa != fc, "another seed made the same files");
    for (name, bytes) in &fa {
        let img = image::load_from_memory(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (w, h) = (img.width(), img.height());
        assert!((300..=640).contains(&w.max(h)) && w.min(h) * 2 >= w.max(h), "{name}: {w} x {h}");
    }
    p.write("datasets.toml", "[inet]\nformat = \"image-folder\"\nroot = \"a\"\n");
    let r = p.ktlab(&["datasets"]).ok();
    assert!(r.stdout.contains("train: 40 images, 4 classes"), "{}", r.stdout);
    assert!(r.stdout.contains("val: 8 images"), "{}", r.stdout);
}
