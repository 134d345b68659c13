//! Inputs found by (or written for) the fuzz target `fuzz/fuzz_targets/plan.rs`, replayed
//! through the same library calls: configuration parsing, `--set`, sweep expansion and
//! planning must return an error (or a plan), never panic, overflow the stack or hang.
use std::path::Path;

use ktlab::config::{expand_experiment, load_datasets, Override, SourceFile};
use ktlab::data::{Cache, FingerprintMode};
use ktlab::plan::{build_plan, PlanEnv};

const DATASETS: &str = "[shapes]\nformat = \"synthetic\"\nimage_size = 32\nseed = 0\nsplits = { unlabeled = 2000, train = 1000, test = 1000 }\n\n[tiny]\nformat = \"synthetic\"\nsplits = { train = 10 }\n";

/// What the fuzz target does with one input; `Err` carries the message a user would see.
fn plan_text(text: &str) -> Result<usize, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("datasets.toml");
    std::fs::write(&path, DATASETS).unwrap();
    let datasets = load_datasets(&path).unwrap();
    let (experiment, sets) = match text.split_once("\n---\n") {
        Some((e, s)) => (e, s.lines().collect::<Vec<_>>()),
        None => (text, Vec::new()),
    };
    let overrides = sets
        .iter()
        .map(|s| s.parse::<Override>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let variants = expand_experiment(SourceFile::inline("fuzz.toml", experiment.to_string()), &overrides).map_err(|e| e.to_string())?;
    let mut env = PlanEnv::new(
        &datasets,
        FingerprintMode::Contents,
        Cache::Use(Path::new("/nonexistent/ktlab-fuzz")),
    );
    build_plan(variants, &mut env).map(|p| p.instances.len()).map_err(|e| e.to_string())
}

/// Runs `f` on a thread with a small stack, as the fuzzer's, so deep recursion shows.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no panic")
}

#[test]
fn fuzz_seeds_plan() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/plan");
    let mut n = 0;
    for e in std::fs::read_dir(seeds).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let r = plan_text(&text);
        assert!(r.is_ok(), "{r:?}");
        n += 1;
    }
    assert!(n >= 3);
}

#[test]
fn deeply_nested_values_are_an_error_not_a_stack_overflow() {
    for depth in [100, 10_000] {
        let text = format!("name = \"x\"\nseed = {}1{}\n", "[".repeat(depth), "]".repeat(depth));
        let r = on_small_stack(move || plan_text(&text));
        assert!(r.is_err(), "depth {depth}: {r:?}");
        let text = format!("name = \"x\"\nseed = {}1{}\n", "{a = ".repeat(depth), "}".repeat(depth));
        let r = on_small_stack(move || plan_text(&text));
        assert!(r.is_err(), "depth {depth}: {r:?}");
    }
}

#[test]
fn odd_but_valid_toml_shapes_are_errors_with_keys() {
    let cases = [
        ("name = \"x\"\n[[stages]]\nkind = \"features\"\n", "stages"),
        ("name = \"x\"\nstages = []\n", "stages"),
        ("name = \"x\"\n[stages.a]\nkind = 3\n", "stages.a.kind"),
        (
            "name = \"x\"\n[stages.a]\nkind = \"kmeans\"\nfeatures = \"a\"\nk = 2\n[sweep]\n\"stages.a\" = [1]\n",
            "stages.a",
        ),
        (
            "name = \"x\"\n[stages.a]\nkind = \"kmeans\"\nfeatures = \"a\"\nk = 2\n[sweep]\n\"stages.a.k.z\" = [1]\n",
            "stages.a.k.z",
        ),
        (
            "name = \"x\"\n[stages.a]\nkind = \"kmeans\"\nfeatures = \"a\"\nk = 2\n[sweep]\n\"stages..k\" = [1]\n",
            "stages..k",
        ),
        (
            "name = \"x\"\nsweep = 3\n[stages.a]\nkind = \"init\"\narch = \"alexnet-small\"\n",
            "sweep",
        ),
        (
            "name = \"x\"\ndevice = \"cuda:99999999999999999999\"\n[stages.a]\nkind = \"init\"\narch = \"alexnet-small\"\n",
            "device",
        ),
        (
            "name = \"x\"\nseed = 9223372036854775807\n[stages.a]\nkind = \"init\"\narch = \"alexnet\"\nimage_size = 8\n",
            "image_size",
        ),
    ];
    for (text, key) in cases {
        let r = plan_text(text);
        match r {
            Err(m) => assert!(m.contains(key), "{text:?}: {m}"),
            Ok(n) => panic!("{text:?}: planned {n} instances"),
        }
    }
}

#[test]
fn set_arguments_of_every_shape_are_errors_or_applied() {
    let base = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/plan/set.toml")).unwrap();
    let base = base.split("\n---\n").next().unwrap();
    for set in [
        "=",
        "==",
        "stages.c.k==3",
        ".=1",
        "stages.c.=1",
        "stages.c.k=[",
        "stages.c.k={",
        "stages.c.k=\"",
        "seed=-1",
        "seed=1e400",
        "stages.c.k=\u{0}",
        "stages.c.k=3\u{0}",
        "name=\u{202e}",
        "description=[[[[]]]]",
        "stages.c.k=[1, 2]",
        "stages.c.k={a = 1}",
        "stages.f.data=tiny",
        "stages.f.data=:",
        "stages.f.data=tiny:",
        "stages.f.data=:train",
    ] {
        // Whatever the outcome, no panic: that is what the fuzzer checks too.
        let _ = plan_text(&format!("{base}\n---\n{set}\n"));
    }
}
