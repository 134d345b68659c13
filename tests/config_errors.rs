//! One test per class of configuration error: exit code 2, the file, line, column and
//! key path named, a "did you mean" where a near name exists, and no store entry.
use crate::common::{Project, CONTRACT_HOG};

/// Writes `exp.toml` = the contract with `from` replaced by `to`, runs `plan` and `run`,
/// and checks both fail with exit 2 and a message pointing at the line of `to`.
fn expect_error(from: &str, to: &str, key: &str, message: &str) -> String {
    expect_error_at(from, to, to.lines().next().unwrap_or(to), key, message)
}

/// As `expect_error`, with the line given by the first line containing `marker`.
fn expect_error_at(from: &str, to: &str, marker: &str, key: &str, message: &str) -> String {
    assert!(CONTRACT_HOG.contains(from), "test bug: {from:?} not in the contract");
    let text = CONTRACT_HOG.replacen(from, to, 1);
    let p = Project::new();
    p.write("exp.toml", &text);
    let offset = text.find(marker).expect("marker");
    let line = text[..offset].matches('\n').count() + 1;
    for cmd in ["plan", "run"] {
        let r = p.ktlab(&[cmd, "exp.toml"]).fails(2);
        r.stderr_has(&format!("exp.toml:{line}:"));
        r.stderr_has(&format!("`{key}`"));
        r.stderr_has(message);
        assert!(p.entries().is_empty(), "{cmd} created entries: {:?}", p.entries());
    }
    p.ktlab(&["run", "exp.toml"]).stderr
}

#[test]
fn unknown_key_suggests_the_near_one() {
    let err = expect_error("iterations = 20", "iteratons = 20", "stages.clusters.iteratons", "unknown key");
    assert!(err.contains("did you mean `iterations`?"), "{err}");
}

#[test]
fn unknown_top_level_key() {
    let err = expect_error("seed = 7", "sed = 7", "sed", "unknown key");
    assert!(err.contains("did you mean `seed`?"), "{err}");
}

#[test]
fn wrong_type_names_key_and_line() {
    expect_error(
        "iterations = 20",
        "iterations = \"many\"",
        "stages.clusters.iterations",
        "invalid type: string \"many\"",
    );
}

#[test]
fn missing_required_key() {
    // An assign stage without `features`: the error points at its table.
    expect_error_at(
        "features = \"feat\"\n\n[stages.quality]",
        "\n[stages.quality]",
        "[stages.labels]",
        "stages.labels",
        "missing required key `features`",
    );
}

#[test]
fn unknown_stage_reference_suggests() {
    let err = expect_error(
        "features = \"feat\"\nk = 16",
        "features = \"fet\"\nk = 16",
        "stages.clusters.features",
        "no stage named `fet`",
    );
    assert!(err.contains("did you mean `feat`?"), "{err}");
}

#[test]
fn unknown_dataset_reference_suggests() {
    let err = expect_error(
        "data = \"shapes:train\"",
        "data = \"shape:train\"",
        "stages.feat.data",
        "no dataset named `shape`",
    );
    assert!(err.contains("did you mean `shapes`?"), "{err}");
}

#[test]
fn unknown_split_suggests() {
    let err = expect_error(
        "data = \"shapes:train\"",
        "data = \"shapes:trian\"",
        "stages.feat.data",
        "has no split `trian`",
    );
    assert!(err.contains("did you mean `train`?"), "{err}");
}

#[test]
fn kmeans_fed_by_a_dataset_is_the_wrong_kind() {
    expect_error(
        "features = \"feat\"\nk = 16",
        "features = \"shapes:train\"\nk = 16",
        "stages.clusters.features",
        "expected a features stage, but `shapes:train` is a dataset split",
    );
}

#[test]
fn input_from_a_stage_of_the_wrong_kind() {
    expect_error(
        "centroids = \"clusters\"",
        "centroids = \"feat\"",
        "stages.labels.centroids",
        "expected a kmeans stage, but `feat` is a features stage",
    );
}

#[test]
fn unknown_stage_kind_suggests() {
    let err = expect_error(
        "kind = \"kmeans\"",
        "kind = \"kmean\"",
        "stages.clusters.kind",
        "unknown stage kind `kmean`",
    );
    assert!(err.contains("did you mean `kmeans`?"), "{err}");
}

#[test]
fn cycle_is_named_in_full() {
    let p = Project::new();
    p.write(
        "exp.toml",
        r#"name = "cyc"
[stages.a]
kind = "kmeans"
features = "c"
k = 2
[stages.b]
kind = "assign"
centroids = "a"
features = "c"
[stages.c]
kind = "kmeans"
features = "a"
k = 2
"#,
    );
    let r = p.ktlab(&["plan", "exp.toml"]).fails(2);
    r.stderr_has("exp.toml:2:");
    r.stderr_has("dependency cycle: a -> c -> a");
    p.write(
        "self.toml",
        "name = \"s\"\n[stages.q]\nkind = \"cluster-metrics\"\nlabels = \"q\"\ntruth = \"shapes:train\"\n",
    );
    p.ktlab(&["plan", "self.toml"]).fails(2).stderr_has("dependency cycle: q -> q");
    assert!(p.entries().is_empty());
}

#[test]
fn toml_syntax_error_and_duplicate_key() {
    let p = Project::new();
    p.write("exp.toml", "name = \"x\"\nseed = 1\nseed = 2\n");
    let r = p.ktlab(&["plan", "exp.toml"]).fails(2);
    r.stderr_has("exp.toml:3:");
    r.stderr_has("duplicate key");
    p.write("exp.toml", "name = \"x\"\n[stages.a\nkind = 1\n");
    let r = p.ktlab(&["plan", "exp.toml"]).fails(2);
    r.stderr_has("exp.toml:2:");
    r.stderr_has("invalid TOML");
}

#[test]
fn bad_set_and_sweep() {
    let p = Project::new();
    p.write("exp.toml", CONTRACT_HOG);
    p.ktlab(&["plan", "exp.toml", "--set", "stages.clusters.k"])
        .fails(2)
        .stderr_has("expected KEY=VALUE");
    p.ktlab(&["plan", "exp.toml", "--set", "stages.clustrs.k=3"])
        .fails(2)
        .stderr_has("did you mean `clusters`?");
    p.ktlab(&["plan", "exp.toml", "--set", "stages.clusters.k=0"])
        .fails(2)
        .stderr_has("expected 1..=1000000 clusters, found 0");
    p.ktlab(&["plan", "exp.toml", "--set", "stages.clusters.k=-3"])
        .fails(2)
        .stderr_has("stages.clusters.k");
    p.write("exp2.toml", &CONTRACT_HOG.replace("[4, 16]", "[]"));
    p.ktlab(&["plan", "exp2.toml"])
        .fails(2)
        .stderr_has("a sweep needs at least one value");
    p.write("exp3.toml", &CONTRACT_HOG.replace("\"stages.clusters.k\"", "\"stages.clusterz.k\""));
    p.ktlab(&["plan", "exp3.toml"]).fails(2).stderr_has("did you mean `clusters`?");
    assert!(p.entries().is_empty());
}

#[test]
fn unknown_dataset_format_and_missing_file() {
    let p = Project::new();
    p.write("datasets.toml", "[shapes]\nformat = \"synthetc\"\n");
    p.write("exp.toml", CONTRACT_HOG);
    let r = p.ktlab(&["plan", "exp.toml"]).fails(2);
    r.stderr_has("datasets.toml:2:");
    r.stderr_has("did you mean `synthetic`?");
    p.ktlab(&["plan", "nope.toml"]).fails(2).stderr_has("nope.toml");
}

#[test]
fn non_utf8_file() {
    let p = Project::new();
    std::fs::write(p.path("exp.toml"), b"name = \"a\xff\"\n").unwrap();
    p.ktlab(&["plan", "exp.toml"]).fails(2).stderr_has("not valid UTF-8");
}

#[test]
fn a_set_on_a_swept_key_says_it_replaces_the_sweep() {
    let p = Project::new();
    p.write("exp.toml", CONTRACT_HOG);
    let r = p.ktlab(&["plan", "exp.toml", "--set", "stages.clusters.k=8"]).ok();
    r.stderr_has("--set `stages.clusters.k=8` replaces the sweep over `stages.clusters.k` (2 values)");
    // One variant: the key left the sweep.
    assert!(!r.stdout.contains("k=4") && !r.stdout.contains("k=16"), "{}", r.stdout);
}

#[test]
fn the_natural_sweep_form_plans_like_the_quoted_one() {
    let p = Project::new();
    p.write("quoted.toml", CONTRACT_HOG);
    let natural = CONTRACT_HOG.replace("\"stages.clusters.k\" = [4, 16]", "stages.clusters.k = [4, 16]");
    assert_ne!(natural, CONTRACT_HOG);
    p.write("natural.toml", &natural);
    let quoted = p.ktlab(&["plan", "quoted.toml"]).ok().stdout;
    let nested = p.ktlab(&["plan", "natural.toml"]).ok().stdout;
    assert!(quoted.contains("k=4") && quoted.contains("k=16"), "{quoted}");
    assert_eq!(nested.replace("natural.toml", "quoted.toml"), quoted);
}
