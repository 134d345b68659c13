//! The store never recomputes what it has and never reuses what is stale.
use std::time::Instant;

use crate::common::{Project, CONTRACT_HOG};

#[test]
fn contract_runs_then_is_fully_cached() {
    let p = Project::new();
    p.write("exp.toml", CONTRACT_HOG);
    p.ktlab(&["run", "exp.toml"]).ok();
    let first = p.entries();
    // feat shared by both variants: 1 + 3 x 2 entries.
    assert_eq!(first.len(), 7, "{first:?}");
    let csv = p.read("results/contract-hog/results.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "variant,stages.clusters.k,stage,layer,metric,value");
    // NMI beside AMI (corrected for chance), and the balance of the cluster sizes.
    let metrics = ["nmi", "ami", "ari", "purity", "accuracy", "size_entropy", "largest_share"];
    assert_eq!(lines.len(), 1 + 2 * metrics.len(), "{csv}");
    for (i, metric) in metrics.iter().enumerate() {
        assert!(lines[1 + i].starts_with(&format!("k=4,4,quality,,{metric},")), "{csv}");
        assert!(lines[8 + i].starts_with(&format!("k=16,16,quality,,{metric},")), "{csv}");
    }
    let value = |line: &str| -> f64 { line.rsplit(',').next().unwrap().parse().unwrap() };
    for (k, first) in [(4f64, 1), (16f64, 8)] {
        let (ami, entropy, largest) = (value(lines[first + 1]), value(lines[first + 5]), value(lines[first + 6]));
        assert!(ami > -0.1 && ami <= value(lines[first]) + 1e-9, "AMI {ami} above NMI: {csv}");
        assert!(entropy > 0.0 && entropy <= k.ln() + 1e-9, "size entropy {entropy} for k = {k}");
        assert!(largest >= 1.0 / k - 1e-9 && largest <= 1.0, "largest share {largest} for k = {k}");
    }
    // Fully cached: no new entry, and quick. Most of the time is loading libtorch
    // (0.4-0.6 s on an idle 2-core machine, 2.3 s seen with the cores 6x oversubscribed);
    // tests share the cores, so the bound only catches a run that computes again.
    let mut fastest = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        p.ktlab(&["run", "exp.toml"]).ok();
        fastest = fastest.min(t.elapsed().as_secs_f64());
    }
    assert_eq!(p.entries(), first, "cached runs created entries");
    assert!(fastest < 5.0, "cached run took {fastest:.2}s");
    assert_eq!(p.read("results/contract-hog/results.csv"), csv, "results changed");
    let plan = p.ktlab(&["plan", "exp.toml"]).ok().stdout;
    assert_eq!(
        plan.lines()
            .filter(|l| l.ends_with("  cached") || l.ends_with("  cached (shared)"))
            .count(),
        8,
        "{plan}"
    );
    assert!(plan.contains("7 stage instances: 7 cached, 0 to run"), "{plan}");

    // Changing one parameter: feat stays cached, the three later stages of each variant are due.
    let plan = p.ktlab(&["plan", "exp.toml", "--set", "stages.clusters.iterations=5"]).ok().stdout;
    let of = |stage: &str| -> Vec<String> {
        plan.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(stage))
            .map(String::from)
            .collect()
    };
    let feat_lines = of("feat");
    assert_eq!(feat_lines.len(), 2, "{plan}");
    assert!(feat_lines.iter().all(|l| l.contains("cached")), "{plan}");
    for stage in ["clusters", "labels", "quality"] {
        let due = of(stage);
        assert_eq!(due.len(), 2, "{plan}");
        assert!(due.iter().all(|l| l.contains("will run")), "{plan}");
    }
    assert!(plan.contains("parameter iterations changed from 20 to 5"), "{plan}");
    assert!(plan.contains("upstream clusters changed"), "{plan}");
    p.ktlab(&["run", "exp.toml", "--set", "stages.clusters.iterations=5"]).ok();
    let after = p.entries();
    assert_eq!(after.len(), first.len() + 6, "{after:?}");
}

#[test]
fn explain_shows_the_key_input() {
    let p = Project::new();
    p.write("exp.toml", CONTRACT_HOG);
    let out = p.ktlab(&["explain", "exp.toml", "clusters", "--variant", "k=16"]).ok().stdout;
    for needle in [
        "\"kind\": \"kmeans\"",
        "\"k\": 16",
        "\"iterations\": 20",
        "\"restarts\": 1",
        "\"libtorch\"",
        "\"ktlab\"",
        "\"device\"",
        "\"seed\": 7",
    ] {
        assert!(out.contains(needle), "missing {needle}:\n{out}");
    }
    let feat = p.ktlab(&["explain", "exp.toml", "feat"]).ok().stdout;
    assert!(
        feat.contains("\"fingerprint\"") && feat.contains("\"cell\": 8") && !feat.contains("\"device\""),
        "{feat}"
    );
    p.ktlab(&["explain", "exp.toml", "clusterz"])
        .fails(2)
        .stderr_has("did you mean `clusters`?");
}

/// A stage's own `device` overrides the experiment's for that stage alone: its key names
/// its device class (an explicit CUDA device is kept where CUDA is absent, for a plan run
/// elsewhere), the other stages keep the experiment's, and a bad value exits 2 at its key.
#[test]
fn a_stage_device_overrides_the_experiments_for_that_stage() {
    let p = Project::new();
    p.write("exp.toml", &CONTRACT_HOG.replace("device = \"auto\"", "device = \"cpu\""));
    let device_of = |args: &[&str]| {
        let out = p.ktlab(args).ok().stdout;
        out.lines()
            .find_map(|l| l.trim().strip_prefix("\"device\": ").map(|v| v.trim_end_matches(',').to_string()))
            .unwrap_or_else(|| panic!("no device in:\n{out}"))
    };
    let explain = |stage: &'static str, set: &'static str| {
        let mut args = vec!["explain", "exp.toml", stage, "--variant", "k=16"];
        if !set.is_empty() {
            args.extend(["--set", set]);
        }
        args
    };
    assert_eq!(device_of(&explain("clusters", "")), "\"cpu\"");
    assert_eq!(device_of(&explain("clusters", "stages.clusters.device=cuda")), "\"cuda\"");
    assert_eq!(device_of(&explain("labels", "stages.clusters.device=cuda")), "\"cpu\"");
    p.write("exp.toml", &CONTRACT_HOG.replace("device = \"auto\"", "device = \"cuda\""));
    assert_eq!(device_of(&explain("clusters", "stages.clusters.device=cpu")), "\"cpu\"");
    assert_eq!(device_of(&explain("labels", "stages.clusters.device=cpu")), "\"cuda\"");
    p.ktlab(&["plan", "exp.toml", "--set", "stages.clusters.device=gpu"])
        .fails(2)
        .stderr_has("stages.clusters.device")
        .stderr_has("expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", found \"gpu\"");
}

#[test]
fn only_and_force() {
    let p = Project::new();
    p.write("exp.toml", CONTRACT_HOG);
    p.ktlab(&["run", "exp.toml", "--only", "clusters"]).ok();
    let e = p.entries();
    assert_eq!(e.iter().filter(|x| x.starts_with("features/")).count(), 1, "{e:?}");
    assert_eq!(e.iter().filter(|x| x.starts_with("kmeans/")).count(), 2, "{e:?}");
    assert_eq!(e.len(), 3, "{e:?}");
    let r = p.ktlab(&["run", "exp.toml", "--force", "feat", "--only", "feat"]).ok();
    assert!(r.stderr.contains("[1/1] done feat (features "), "{}", r.stderr);
    p.ktlab(&["run", "exp.toml", "--force", "fet"])
        .fails(2)
        .stderr_has("did you mean `feat`?");
}

#[test]
fn corrupt_entry_is_detected_and_recomputed() {
    let p = Project::new();
    p.write("exp.toml", CONTRACT_HOG);
    p.ktlab(&["run", "exp.toml"]).ok();
    let feat = p.entries().into_iter().find(|e| e.starts_with("features/")).unwrap();
    let path = p.path(&format!("store/{feat}/features.npy"));
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    // Forcing a consumer makes the corrupt input be read: it must be recomputed first.
    let r = p.ktlab(&["run", "exp.toml", "--force", "clusters"]).ok();
    assert!(r.stderr.contains("corrupt"), "{}", r.stderr);
    assert!(r.stderr.contains("] done feat (features "), "{}", r.stderr);
    let fixed = std::fs::read(&path).unwrap();
    assert_ne!(fixed, bytes);
}

#[test]
fn settings_from_environment_and_options_after_the_subcommand() {
    let p = Project::new();
    p.write("exp.toml", CONTRACT_HOG);
    // KTLAB_STORE through figment; --results after the subcommand.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ktlab-engine"))
        .current_dir(p.path(""))
        .env("KTLAB_STORE", "envstore")
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .args(["run", "exp.toml", "--only", "feat", "--results", "out"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(crate::common::entries(&p.path("envstore")).len(), 1);
    // Part of the instances: the results folder (under `out`) is named, not written.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("out/contract-hog not rewritten: 6 of 7"), "{stdout}");
    assert!(!p.path("out/contract-hog").exists());
    // The command-line flag wins over the environment.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ktlab-engine"))
        .current_dir(p.path(""))
        .env("KTLAB_STORE", "envstore")
        .args(["--store", "flagstore", "plan", "exp.toml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("will run: new"));
}

#[test]
fn gc_removes_only_unreferenced_entries() {
    let p = Project::new();
    p.write("experiments/a.toml", CONTRACT_HOG);
    p.ktlab(&["run", "experiments/a.toml", "--datasets", "datasets.toml"]).ok();
    assert_eq!(p.entries().len(), 7);
    // A smaller experiment keeps feat and the k=4 chain only.
    p.write("keep.toml", &CONTRACT_HOG.replace("[4, 16]", "[4]"));
    let dry = p.ktlab(&["gc", "--dry-run", "keep.toml"]).ok();
    assert!(dry.stdout.contains("would remove 3 entries"), "{}", dry.stdout);
    assert_eq!(p.entries().len(), 7);
    let r = p.ktlab(&["gc", "keep.toml"]).ok();
    assert!(r.stdout.contains("removed 3 entries"), "{}", r.stdout);
    assert_eq!(p.entries().len(), 4);
    // With no files, experiments/ is read: nothing more to remove.
    let r = p.ktlab(&["gc", "--datasets", "datasets.toml"]).ok();
    assert!(r.stdout.contains("removed 0 entries"), "{}", r.stdout);
    p.ktlab(&["plan", "keep.toml"]).ok();
}

#[test]
fn gc_keeps_the_entries_other_experiments_used_unless_asked() {
    // Two experiments share a store (and their features stage); gc of one keeps what the
    // other used until it is named (--forget) or --all-experiments is given.
    let p = Project::new();
    p.write(
        "datasets.toml",
        "[tiny]\nformat = \"synthetic\"\nimage_size = 16\nseed = 0\nsplits = { train = 40 }\n",
    );
    let exp = |name: &str, k: u32| {
        format!(
            "name = \"{name}\"\n[stages.feat]\nkind = \"features\"\nmodel = \"pixels\"\ndata = \"tiny:train\"\n\
             [stages.clusters]\nkind = \"kmeans\"\nfeatures = \"feat\"\nk = {k}\niterations = 3\n"
        )
    };
    p.write("a.toml", &exp("alpha", 3));
    p.ktlab(&["run", "a.toml", "-q"]).ok();
    let alpha = p.entries();
    p.write("b.toml", &exp("beta", 4));
    p.ktlab(&["run", "b.toml", "-q"]).ok();
    let all = p.entries();
    assert_eq!(all.len(), 3, "{all:?}");
    let beta_own = all.iter().find(|e| !alpha.contains(e)).unwrap().clone();
    let r = p.ktlab(&["gc", "--yes", "a.toml"]).ok();
    assert!(r.stdout.contains("removed 0 entries"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("kept 1 entries other experiments used: beta (1); `--forget NAME` or `--all-experiments` removes them"),
        "{}",
        r.stdout
    );
    assert_eq!(p.entries(), all);
    // Named, they are listed with their experiment.
    let r = p.ktlab(&["gc", "--dry-run", "--forget", "beta", "a.toml"]).ok();
    assert!(r.stdout.contains(&format!("  {beta_own} (used by beta)\n")), "{}", r.stdout);
    assert!(r.stdout.contains("would remove 1 entries"), "{}", r.stdout);
    assert_eq!(p.entries(), all);
    p.ktlab(&["gc", "--yes", "--forget", "gamma", "a.toml"])
        .fails(2)
        .stderr_has("the store has no records of an experiment named `gamma` (recorded: alpha, beta)");
    let r = p.ktlab(&["gc", "--yes", "--all-experiments", "a.toml"]).ok();
    assert!(r.stdout.contains("removed 1 entries"), "{}", r.stdout);
    assert_eq!(p.entries(), alpha);
}

/// Two copies of one image folder, written at different times in different places, plan
/// to the same keys (contents are the default identity); `--fingerprint metadata` keys
/// them apart, and a changed byte changes the key.
#[test]
fn dataset_keys_follow_contents_not_location_or_time() {
    let write_copy = |p: &Project, mtime: std::time::SystemTime| {
        for (class, shade) in [("a", 10u8), ("b", 200)] {
            for i in 0..2u8 {
                let rel = format!("mine/train/{class}/{i}.png");
                let img = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([shade + i, x as u8, y as u8]));
                let path = p.path(&rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                img.save(&path).unwrap();
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_modified(mtime)
                    .unwrap();
            }
        }
        p.write(
            "datasets.toml",
            &format!("{}\n[mine]\nformat = \"image-folder\"\nroot = \"mine\"\n", crate::common::DATASETS),
        );
        p.write(
            "exp.toml",
            "name = \"data\"\n[stages.f]\nkind = \"features\"\nmodel = \"pixels\"\ndata = \"mine:train\"\n",
        );
    };
    let key = |p: &Project, args: &[&str]| -> String {
        let out = p.ktlab(&[&["plan", "exp.toml"][..], args].concat()).ok().stdout;
        let row = out.lines().find(|l| l.contains(" features ")).unwrap_or_else(|| panic!("{out}"));
        row.split_whitespace().nth(3).unwrap().to_string()
    };
    let epoch = std::time::UNIX_EPOCH;
    let (a, b) = (Project::new(), Project::new());
    write_copy(&a, epoch + std::time::Duration::from_secs(1_000_000));
    write_copy(&b, epoch + std::time::Duration::from_secs(2_000_000));
    assert_eq!(key(&a, &[]), key(&b, &[]));
    assert_eq!(key(&a, &["--verify-data"]), key(&b, &[]));
    assert_ne!(key(&a, &["--fingerprint", "metadata"]), key(&b, &["--fingerprint", "metadata"]));
    assert_ne!(key(&a, &["--fingerprint", "metadata"]), key(&a, &[]));
    // A rewritten file (new bytes, same size, new time) is hashed again.
    let before = key(&b, &[]);
    let path = b.path("mine/train/a/0.png");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert_ne!(key(&b, &[]), before);
    b.ktlab(&["plan", "exp.toml", "--fingerprint", "sizes"])
        .fails(2)
        .stderr_has("not a fingerprint mode");
}
