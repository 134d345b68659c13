//! Names never become paths outside the store and results folders: experiment, stage,
//! dataset and split names and `--set` values with `../`, absolute paths, separators, NUL
//! or hundreds of characters are refused (exit 2) before anything is written; values that
//! only label things (variant names, descriptions) stay inside the results.
use std::path::Path;

use crate::common::{Project, CONTRACT_HOG};

/// Every file under `dir`, relative, skipping the store and results folders.
fn files_outside_store_and_results(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.depth() != 1 || !["store", "results"].contains(&e.file_name().to_str().unwrap_or("")))
        .flatten()
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

/// Nothing named `token` anywhere near the project (its parent, two levels down).
fn no_stray(p: &Project, token: &str) {
    let parent = p.dir.path().parent().unwrap();
    for e in walkdir::WalkDir::new(parent).max_depth(3).into_iter().flatten() {
        assert!(
            !e.file_name().to_string_lossy().contains(token),
            "written outside: {}",
            e.path().display()
        );
    }
}

#[test]
fn hostile_names_are_refused_before_anything_is_written() {
    let token = format!("ktlabescape{}", std::process::id());
    let long = "x".repeat(300);
    let names = [
        format!("../{token}"),
        format!("../../{token}"),
        format!("/tmp/{token}"),
        format!("a/{token}"),
        format!("{token}\\u0000x"),
        format!("{token}{long}"),
        "..".to_string(),
    ];
    for name in &names {
        // As the experiment name, in the file and through --set; as a stage name.
        let p = Project::new();
        p.write(
            "exp.toml",
            &CONTRACT_HOG.replace("name = \"contract-hog\"", &format!("name = \"{name}\"")),
        );
        let r = p.ktlab(&["run", "exp.toml"]).fails(2);
        r.stderr_has("exp.toml:2:");
        r.stderr_has("`name`: invalid name");
        p.write("ok.toml", CONTRACT_HOG);
        let set = format!("name={}", name.replace("\\u0000", "\0x").replace('\0', ""));
        if !name.contains("\\u0000") {
            p.ktlab(&["run", "ok.toml", "--set", &set]).fails(2).stderr_has("invalid");
        }
        p.write(
            "stage.toml",
            &CONTRACT_HOG.replace("[stages.labels]", &format!("[stages.\"{name}\"]")),
        );
        p.ktlab(&["run", "stage.toml"]).fails(2).stderr_has("invalid name");
        p.write(
            "datasets.toml",
            &format!("[\"{name}\"]\nformat = \"synthetic\"\nsplits = {{ train = 10 }}\n"),
        );
        p.ktlab(&["run", "ok.toml"]).fails(2).stderr_has("datasets.toml:1:");
        assert!(p.entries().is_empty(), "{name:?}: {:?}", p.entries());
        assert!(!p.path("results").exists(), "{name:?}: results written");
        let mut written = files_outside_store_and_results(p.dir.path());
        written.sort();
        assert_eq!(written, ["datasets.toml", "exp.toml", "ok.toml", "stage.toml"], "{name:?}");
        no_stray(&p, &token);
    }
}

#[test]
fn labels_from_values_stay_inside_the_results() {
    // Swept strings (here the description) name variants; they never become paths.
    let p = Project::new();
    let token = format!("ktlabescape{}", std::process::id());
    let exp = CONTRACT_HOG.replace(
        "\"stages.clusters.k\" = [4, 16]",
        &format!(
            "description = [\"../../{token}\", \"/tmp/{token}\", \"a\\u0000b\", \"{}\"]",
            "y".repeat(500)
        ),
    );
    p.write("exp.toml", &exp);
    let r = p.ktlab(&["run", "exp.toml", "-q"]).ok();
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let csv = p.read("results/contract-hog/results.csv");
    assert!(csv.contains(&format!("description=.._.._{token}")), "{csv}");
    let mut written = files_outside_store_and_results(p.dir.path());
    written.sort();
    assert_eq!(written, ["datasets.toml", "exp.toml"]);
    let results: Vec<_> = walkdir::WalkDir::new(p.path("results"))
        .min_depth(1)
        .into_iter()
        .flatten()
        .map(|e| e.path().strip_prefix(p.path("results")).unwrap().display().to_string())
        .collect();
    // The folder, results.csv, results.md, the copy of the experiment file and index.html.
    assert_eq!(results.len(), 5, "{results:?}");
    no_stray(&p, &token);
}
