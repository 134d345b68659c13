//! Fuzzes configuration parsing and planning: the input is an experiment TOML, optionally
//! followed by a line `---` and one `--set` argument per line. The datasets file is fixed
//! (the built-in synthetic dataset), so planning never reads anything else from disk.
#![no_main]
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

use ktlab::config::{expand_experiment, load_datasets, Datasets, Override, SourceFile};
use ktlab::data::{Cache, FingerprintMode};
use ktlab::plan::{build_plan, PlanEnv};

const DATASETS: &str = "[shapes]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { unlabeled = 2000, train = 1000, test = 1000 }\n\n[tiny]\nformat = \"synthetic\"\nsplits = { train = 10 }\n";

fn datasets() -> &'static Datasets {
    static D: OnceLock<Datasets> = OnceLock::new();
    D.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ktlab-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("datasets.toml");
        std::fs::write(&path, DATASETS).expect("datasets.toml");
        let d = load_datasets(&path).expect("fixed datasets.toml loads");
        let _ = std::fs::remove_dir_all(&dir);
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (experiment, sets) = match text.split_once("\n---\n") {
        Some((e, s)) => (e, s.lines().collect::<Vec<_>>()),
        None => (text, Vec::new()),
    };
    let Ok(overrides) = sets.iter().map(|s| s.parse::<Override>()).collect::<Result<Vec<_>, _>>() else {
        return;
    };
    let file = SourceFile::inline("fuzz.toml", experiment.to_string());
    let Ok(variants) = expand_experiment(file, &overrides) else {
        return;
    };
    // Sweeps can be huge products; planning each is what a user would wait for anyway.
    if variants.len() > 64 {
        return;
    }
    let mut env = PlanEnv::new(
        datasets(),
        FingerprintMode::Contents,
        Cache::Use(Path::new("/nonexistent/ktlab-fuzz")),
    );
    if let Ok(plan) = build_plan(variants, &mut env) {
        let _ = ktlab::plan::render_explain(
            &plan,
            &plan.variants[0].name,
            plan.variants[0].stages.keys().next().map(String::as_str).unwrap_or(""),
        );
    }
});
