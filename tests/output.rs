//! What a run prints: in a pipe one line per finished instance (`[3/9] done ...`) and per
//! failure, epochs only with `-v`; on a terminal a bar per running instance above an
//! overall line; at the end the named tables (not the long form), one summary line and
//! where the results are; `--log-format json` events as they were.
use std::process::Command;

use crate::common::{Project, Run, TINY_DATASETS};

/// Nine instances: the pixel features are shared by both seeds; clusters, labels, their
/// quality and a network trained on them, per seed. The table has the layers as columns,
/// which NMI does not have, and a reference given by the column's old name, `-`.
const SHOWN: &str = r#"
name = "shown"
seeds = [0, 1]

[stages.feat]
kind = "features"
model = "pixels"
data = "tiny:train"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 3
iterations = 5

[stages.labels]
kind = "assign"
centroids = "clusters"
features = "feat"

[stages.quality]
kind = "cluster-metrics"
label = "pixel clusters"
labels = "labels"
truth = "tiny:train"

[stages.net]
kind = "train"
arch = "alexnet-small"
width = 0.25
labels = "labels"
epochs = 2
batch_size = 32

[[tables]]
name = "cluster_nmi"
metric = "nmi"
rows = "stage"
columns = "layer"

[[tables.reference]]
row = "pixel clusters"
column = "-"
value = 0.5
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    p.write("exp.toml", SHOWN);
    p
}

/// `[n/total] done label (kind key) in 1.23s: summary` as (n, total, label, kind, key).
fn done_line(line: &str) -> Option<(usize, usize, String, String, String)> {
    let (counter, rest) = line.strip_prefix('[')?.split_once("] done ")?;
    let (n, total) = counter.split_once('/')?;
    let (label, rest) = rest.split_once(" (")?;
    let (what, rest) = rest.split_once(") in ")?;
    let (kind, key) = what.split_once(' ')?;
    let (time, summary) = rest.split_once("s: ")?;
    if key.len() != 12 || summary.is_empty() || time.parse::<f64>().is_err() {
        return None;
    }
    Some((n.parse().ok()?, total.parse().ok()?, label.into(), kind.into(), key.into()))
}

#[test]
fn in_a_pipe_each_finished_instance_is_one_counted_line_and_the_end_shows_the_tables_a_summary_and_the_folder() {
    let p = project();
    let r = p.ktlab(&["run", "exp.toml"]).ok();
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(lines[0].starts_with("store: "), "{}", r.stderr);
    assert_eq!(lines.len(), 10, "the store and one line per instance:\n{}", r.stderr);
    let done: Vec<_> = lines[1..]
        .iter()
        .map(|l| done_line(l).unwrap_or_else(|| panic!("not a done line: {l}\n{}", r.stderr)))
        .collect();
    for (i, (n, total, ..)) in done.iter().enumerate() {
        assert_eq!((*n, *total), (i + 1, 9), "{}", r.stderr);
    }
    // Each line names its instance: kind and short key of an entry now in the store.
    let mut named: Vec<String> = done.iter().map(|(.., kind, key)| format!("{kind}/{key}")).collect();
    let mut stored: Vec<String> = p.entries().iter().map(|e| e[..e.find('/').unwrap() + 13].to_string()).collect();
    named.sort();
    stored.sort();
    assert_eq!(named, stored);
    assert!(done.iter().any(|(_, _, label, ..)| label == "net[seed=1]"), "{}", r.stderr);
    assert!(!r.stderr.contains("epoch 1/2"), "epochs only with -v:\n{}", r.stderr);

    // The end: the named table (its column named after the metric), no long-form table,
    // the summary, and the folder with what is in it.
    let out: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(out[0], "### cluster_nmi (nmi)", "{}", r.stdout);
    assert!(out.contains(&"| stage | nmi | nmi ref. | Δ |"), "{}", r.stdout);
    assert!(!r.stdout.contains("| variant |") && !r.stdout.contains("# shown\n"), "{}", r.stdout);
    let summary = out[out.len() - 2];
    assert!(summary.starts_with("9 computed, 0 cached, 0 failed, 0 skipped in "), "{}", r.stdout);
    assert!(summary.ends_with('s'), "{summary}");
    assert_eq!(
        out[out.len() - 1],
        "results in results/shown/: index.html (the report in one page), results.md and results.csv (every value), tables cluster_nmi (.md .csv .tex), \
         plots training_curves (.svg .png), provenance.json, curves/ (2 epochs.csv), \
         tensorboard.txt (the training stages' TensorBoard folders)"
    );
    let md = p.read("results/shown/cluster_nmi.md");
    assert!(md.contains("| stage | nmi | nmi ref. | Δ |"), "{md}");
    assert!(p
        .read("results/shown/cluster_nmi.csv")
        .starts_with("stage,nmi_mean,nmi_std,nmi_n,nmi_reference\n"));
    assert!(
        p.read("results/shown/results.md").contains("| quality | - |"),
        "the long form keeps `-`"
    );

    // Fully cached: nothing per instance; the same end.
    let again = p.ktlab(&["run", "exp.toml"]).ok();
    assert_eq!(again.stderr.lines().count(), 1, "{}", again.stderr);
    assert!(
        again.stdout.contains("\n0 computed, 9 cached, 0 failed, 0 skipped in "),
        "{}",
        again.stdout
    );

    // `-v`: every instance started, cached, and every epoch, as lines.
    let v = p.ktlab(&["run", "exp.toml", "--force", "net", "-v"]).ok();
    for needle in [
        "cached feat (",
        "started net[seed=0] (train ",
        "net[seed=0]: epoch 1/2: loss ",
        "net[seed=1]: epoch 2/2: loss ",
        "[2/2] done net[seed=1] (train ",
    ] {
        v.stderr_has(needle);
    }
}

#[test]
fn a_failure_is_one_counted_line_and_its_dependents_are_counted_as_skipped() {
    let p = project();
    p.write(
        "bad.toml",
        "name = \"bad\"\nseed = 1\n[stages.feat]\nkind = \"features\"\nmodel = \"pixels\"\ndata = \"tiny:train\"\n\
         [stages.clusters]\nkind = \"kmeans\"\nfeatures = \"feat\"\nk = 100\n\
         [stages.labels]\nkind = \"assign\"\ncentroids = \"clusters\"\nfeatures = \"feat\"\n",
    );
    let r = p.ktlab(&["run", "bad.toml"]).fails(2);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(lines[1].starts_with("[1/3] done feat (features "), "{}", r.stderr);
    assert!(lines[2].starts_with("[2/3] FAILED clusters (kmeans "), "{}", r.stderr);
    assert!(
        lines[2].ends_with("): k = 100 is larger than the number of points (60)"),
        "{}",
        r.stderr
    );
    assert_eq!(lines[3], "[3/3] skipped labels: input `clusters` failed", "{}", r.stderr);
    assert!(r.stdout.contains("1 computed, 0 cached, 1 failed, 1 skipped in "), "{}", r.stdout);
}

#[test]
fn json_events_keep_their_fields() {
    let p = project();
    let r = p.ktlab(&["run", "exp.toml", "--only", "net", "--log-format", "json"]).ok();
    let mut seen = std::collections::BTreeMap::new();
    for line in r.stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        seen.insert(v["event"].as_str().unwrap().to_string(), keys.join(","));
    }
    let expected = [
        ("epoch", "accuracy,accuracy_name,chance,epoch,epochs,event,loss,lr,seconds,stage"),
        ("finished", "event,seconds,stage,summary"),
        ("started", "event,key,kind,stage"),
        ("store", "event,path"),
    ];
    assert_eq!(
        seen.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
        expected,
        "{}",
        r.stderr
    );
}

/// `ktlab ARGS` in `p` on a pseudo-terminal (util-linux `script`, which merges the
/// terminal's output into its stdout); `None` where `script` is missing.
fn on_a_terminal(p: &Project, env: &str, args: &str) -> Option<Run> {
    let cmd = format!(
        "cd '{}' && env -u CI {env} OMP_WAIT_POLICY=PASSIVE '{}' --store store --results results {args}",
        p.dir.path().display(),
        env!("CARGO_BIN_EXE_ktlab-engine")
    );
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().ok()?;
    Some(Run::from(out))
}

#[test]
fn on_a_terminal_instances_have_bars_above_an_overall_line_and_ci_gets_lines() {
    let p = project();
    let Some(r) = on_a_terminal(&p, "", "run exp.toml") else {
        ktlab::skip::skip(
            "on_a_terminal_instances_have_bars_above_an_overall_line_and_ci_gets_lines",
            "no `script` (util-linux) to make a terminal",
        );
        return;
    };
    assert_eq!(r.code, 0, "{}", r.stdout);
    // Cursor movements aside, the text drawn.
    let text = r.stdout.replace('\r', "\n");
    assert!(text.contains(" instances, "), "the overall line:\n{text}");
    assert!(text.contains("/9 instances, "), "{text}");
    assert!(
        text.contains(" elapsed, about ") && text.contains("s left"),
        "the time left:\n{text}"
    );
    assert!(text.contains("[9/9] done "), "finished instances stay above the bars:\n{text}");
    assert!(text.contains("9 computed, 0 cached, 0 failed, 0 skipped in "), "{text}");
    // A CI runner's pseudo-terminal gets the lines of a pipe.
    let ci = on_a_terminal(&p, "CI=true", "run exp.toml --force net").unwrap();
    assert_eq!(ci.code, 0, "{}", ci.stdout);
    assert!(!ci.stdout.contains(" instances, "), "{}", ci.stdout);
    assert!(ci.stdout.contains("[2/2] done net[seed=1] (train "), "{}", ci.stdout);
}
