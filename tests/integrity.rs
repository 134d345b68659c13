//! Store integrity and determinism: a flipped byte in any artefact (npy, json, csv,
//! safetensors) or manifest is detected when the entry is used, logged, and the entry
//! recomputed; the same experiment twice gives byte-identical results; `ktlab verify`
//! re-executes a cached stage and compares its bytes.
use std::collections::BTreeSet;

use crate::common::Project;
use crate::soak::{all_kinds_project, verify_store};

fn flip_byte(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// `kind/key` of the entry a stage of the all-kinds experiment uses.
fn entry_of(p: &Project, stage: &str) -> String {
    let out = p.ktlab(&["explain", "exp.toml", stage]).ok().stdout;
    let line = out.lines().find(|l| l.starts_with("entry:")).unwrap_or_else(|| panic!("{out}"));
    line["entry:".len()..].trim().to_string()
}

fn notes(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "note" && v["message"].as_str().is_some_and(|m| m.contains("corrupt")))
        .map(|v| format!("{}: {}", v["stage"].as_str().unwrap_or(""), v["message"].as_str().unwrap_or("")))
        .collect()
}

#[test]
fn flipped_byte_in_any_artefact_is_detected_logged_and_recomputed() {
    let p = all_kinds_project();
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let csv = p.read("results/all-kinds/results.csv");
    // One artefact of each type, each with the stage that reads it.
    let targets = [
        ("hog", "features.npy", "clusters"),
        ("pix", "index.json", "pix_clusters"),
        ("clusters", "inertia.csv", "labels"),
        ("labels", "labels.npy", "quality"),
        ("net0", "model.safetensors", "student"),
        ("student", "model.json", "probe"),
        ("pretext", "model.safetensors", "deep"),
        ("deep", "features.npy", "deep_clusters"),
        ("deep_clusters", "centroids.npy", "deep_labels"),
    ];
    let mut damaged = BTreeSet::new();
    for (stage, artefact, _) in targets {
        let e = entry_of(&p, stage);
        let path = p.path(&format!("store/{e}/{artefact}"));
        assert!(path.exists(), "{stage}: no {artefact} in {e}");
        flip_byte(&path);
        damaged.insert(stage.to_string());
    }
    let (problems, _) = verify_store(&p.path("store"));
    assert_eq!(problems.len(), targets.len(), "{problems:?}");
    // Recomputing the stages that read them makes the run use (and re-hash) every one.
    let mut args = vec!["run", "exp.toml", "--log-format", "json"];
    for (_, _, reader) in targets {
        args.extend(["--force", reader]);
    }
    let r = p.ktlab(&args).ok();
    let logged: BTreeSet<String> = notes(&r.stderr).iter().map(|n| n.split(':').next().unwrap().to_string()).collect();
    assert_eq!(logged, damaged, "corrupt entries logged:\n{}", notes(&r.stderr).join("\n"));
    assert!(r.stderr.contains("checksum mismatch"), "{}", r.stderr);
    let (problems, n) = verify_store(&p.path("store"));
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(n, 16);
    assert_eq!(p.read("results/all-kinds/results.csv"), csv, "recomputed results differ");
}

#[test]
fn flipped_byte_in_a_manifest_is_detected_on_a_cached_run() {
    let p = all_kinds_project();
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let csv = p.read("results/all-kinds/results.csv");
    // The manifest holds the metrics the report reads: change one digit of a value.
    let e = entry_of(&p, "quality");
    let path = p.path(&format!("store/{e}/manifest.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("\"value\": 0.").unwrap() + "\"value\": 0.".len();
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'9' { b'8' } else { bytes[at] + 1 };
    std::fs::write(&path, bytes).unwrap();
    let r = p.ktlab(&["run", "exp.toml", "--log-format", "json"]).ok();
    let n = notes(&r.stderr);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].starts_with("quality: store entry") && n[0].contains("manifest.json: checksum mismatch"),
        "{n:?}"
    );
    assert!(r.stdout.contains("1 computed, 15 cached"), "{}", r.stdout);
    assert_eq!(p.read("results/all-kinds/results.csv"), csv);
}

#[test]
fn same_experiment_twice_from_empty_stores_gives_identical_results() {
    let a = all_kinds_project();
    let b = all_kinds_project();
    a.ktlab(&["run", "exp.toml", "-q"]).ok();
    b.ktlab(&["run", "exp.toml", "-q"]).ok();
    let (ra, rb) = (a.read("results/all-kinds/results.csv"), b.read("results/all-kinds/results.csv"));
    // 3 cluster-metrics stages x 7 metrics, the pretext stage's two accuracies, 2 probe layers
    // x 2, the train stage's last-epoch loss and accuracy.
    assert_eq!(ra.lines().count(), 1 + 3 * 7 + 2 + 2 * 2 + 2, "{ra}");
    assert_eq!(ra.as_bytes(), rb.as_bytes(), "results differ:\n{ra}\n{rb}");
    // Every artefact too, not only the metrics.
    assert_eq!(a.entries(), b.entries());
    for e in a.entries() {
        let m = |p: &Project| {
            let text = p.read(&format!("store/{e}/manifest.json"));
            serde_json::from_str::<serde_json::Value>(&text).unwrap()["artefacts"].clone()
        };
        assert_eq!(m(&a), m(&b), "{e}");
    }
}

#[test]
fn verify_reexecutes_a_cached_stage_and_compares_bytes() {
    let p = all_kinds_project();
    // Not cached yet: exit 2, the store untouched.
    let r = p.ktlab(&["verify", "exp.toml", "clusters"]).fails(2);
    r.stderr_has("clusters (kmeans ");
    r.stderr_has("is not in the store");
    assert!(p.entries().is_empty());

    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let before: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(p.path("store"))
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && !e.path().starts_with(p.path("store/locks")))
        .map(|e| (e.path().display().to_string(), std::fs::read(e.path()).unwrap()))
        .collect();
    for stage in ["clusters", "student", "probe"] {
        let r = p.ktlab(&["verify", "exp.toml", stage]).ok();
        assert!(r.stdout.contains("re-executed in a scratch folder"), "{}", r.stdout);
        assert!(r.stdout.contains("artefacts identical"), "{}", r.stdout);
        assert!(!r.stdout.contains("DIFFERS"), "{}", r.stdout);
    }
    let r = p.ktlab(&["verify", "exp.toml", "clusters"]).ok();
    for a in ["assignments.npy", "centroids.npy", "inertia.csv"] {
        assert!(r.stdout.lines().any(|l| l.contains(a) && l.ends_with("same")), "{}", r.stdout);
    }
    let after: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(p.path("store"))
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && !e.path().starts_with(p.path("store/locks")))
        .map(|e| (e.path().display().to_string(), std::fs::read(e.path()).unwrap()))
        .collect();
    assert!(before == after, "verify changed the store");

    // A stored artefact that a (hypothetical) non-deterministic run wrote differently:
    // rewrite it and its checksums consistently, so the entry itself still verifies.
    let e = entry_of(&p, "clusters");
    let dir = p.path(&format!("store/{e}"));
    let csv = dir.join("inertia.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("# another run\n");
    std::fs::write(&csv, &text).unwrap();
    let mpath = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["artefacts"]["inertia.csv"]["bytes"] = text.len().into();
    m["artefacts"]["inertia.csv"]["sha256"] = ktlab::store::sha256_file(&csv).unwrap().into();
    let bytes = serde_json::to_vec_pretty(&m).unwrap();
    std::fs::write(&mpath, &bytes).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    std::fs::write(dir.join(ktlab::store::MANIFEST_DIGEST), format!("{digest}\n")).unwrap();
    assert!(verify_store(&p.path("store")).0.is_empty());
    let r = p.ktlab(&["verify", "exp.toml", "clusters"]).fails(1);
    assert!(
        r.stdout.lines().any(|l| l.contains("inertia.csv") && l.ends_with("DIFFERS")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("1 of 5 artefacts differ: this stage is not deterministic"),
        "{}",
        r.stdout
    );
    println!("{}", r.stdout);
}
