//! The key snapshot: every stage kind's keyed JSON for one fixed configuration
//! (`tests/data/keys/fixture.toml`), compared with `tests/data/keys/expected.txt`. A
//! refactor that moves what a stage keys fails here instead of silently invalidating every
//! store. After a deliberate change (a stage's `VERSION`, a new keyed parameter), rewrite
//! the expected file with `KTLAB_BLESS=1` and say in the commit why keys moved.
use std::collections::HashMap;
use std::path::Path;

use ktlab::config::{expand_experiment, load_datasets, SourceFile};
use ktlab::data::{Cache, FingerprintMode};
use ktlab::plan::{build_plan, PlanEnv};
use ktlab::store::{canonical_json, Key};
use serde_json::Value;

const FIXTURE: &str = "tests/data/keys/fixture.toml";
const EXPECTED: &str = "tests/data/keys/expected.txt";

/// The key input with the build's versions replaced by fixed strings (a release or a new
/// libtorch moves every key by design; that is not what this test guards) and every upstream
/// key replaced by the upstream's normalised key.
fn normalised(key_input: &Value, upstream: &HashMap<String, String>) -> Value {
    let mut v = key_input.clone();
    v["ktlab"] = Value::from("<ktlab>");
    v["libtorch"] = Value::from("<libtorch>");
    if let Some(inputs) = v.get_mut("inputs").and_then(Value::as_object_mut) {
        for input in inputs.values_mut() {
            if let Some(key) = input.get("key").and_then(Value::as_str) {
                let key = upstream
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| panic!("upstream key {key} not planned before"));
                input["key"] = Value::from(key);
            }
        }
    }
    v
}

fn snapshot() -> String {
    let dir = tempfile::tempdir().unwrap();
    let datasets_path = dir.path().join("datasets.toml");
    std::fs::write(&datasets_path, crate::common::DATASETS).unwrap();
    let datasets = load_datasets(&datasets_path).expect("datasets load");
    let text = std::fs::read_to_string(FIXTURE).expect("fixture");
    let variants = expand_experiment(SourceFile::inline("fixture.toml", text), &[]).expect("fixture parses");
    let cache = dir.path().join("fingerprints");
    let mut env = PlanEnv::new(&datasets, FingerprintMode::Contents, Cache::Use(&cache));
    let plan = build_plan(variants, &mut env).expect("fixture plans");

    let mut normal: HashMap<String, String> = HashMap::new();
    let mut by_index = Vec::new();
    for inst in &plan.instances {
        let v = normalised(&inst.key_input, &normal);
        let key = Key::of(&v).hex();
        normal.insert(inst.key.hex(), key.clone());
        by_index.push((key, v));
    }
    let mut out = String::new();
    for variant in &plan.variants {
        for (name, &i) in &variant.stages {
            let (key, v) = &by_index[i];
            let kind = plan.instances[i].kind;
            out.push_str(&format!("{name} {} v{} {}\n", kind.name(), kind.version(), &key[..16]));
            out.push_str(&format!("  {}\n", canonical_json(&v["params"])));
        }
    }
    out
}

#[test]
fn keyed_json_of_every_stage_kind_is_pinned() {
    let got = snapshot();
    // Every kind is in the fixture, so a new kind must be added to it.
    for kind in ktlab::stages::StageKind::ALL {
        assert!(
            got.contains(&format!(" {} v", kind.name())),
            "the key fixture has no `{}` stage: add one to {FIXTURE}",
            kind.name()
        );
    }
    if std::env::var_os("KTLAB_BLESS").is_some() {
        std::fs::write(EXPECTED, &got).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(Path::new(EXPECTED)).unwrap_or_default();
    if got != expected {
        let diff: Vec<String> = expected
            .lines()
            .zip(got.lines())
            .filter(|(a, b)| a != b)
            .take(8)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "keys moved against {EXPECTED} (rewrite it with KTLAB_BLESS=1 only for a deliberate change, \
             and re-run what the committed results need):\n{}\n(lines: expected {}, got {})",
            diff.join("\n"),
            expected.lines().count(),
            got.lines().count()
        );
    }
}
