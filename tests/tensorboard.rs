//! TensorBoard event files of training stages: one folder per instance under the store
//! (`<store>/tensorboard/<kind>/<key>`), readable while the stage runs, holding the epochs of
//! `epochs.csv` and the loss of every few steps (read by ktlab's own reader and by
//! TensorBoard's); listed by `status` and the results folder, left alone by `verify`,
//! removed by `gc` with their entry. Resumption after a kill: `training.rs`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ktlab::train::tensorboard::{event_files, read_events, What};

use crate::common::Project;

/// 1000 images in batches of 50: 20 steps an epoch, 60 in all, so the loss of every step
/// is written (at most 200 points a run).
const LIVE: &str = r#"
name = "live"
seed = 2

[stages.net]
kind = "train"
arch = "alexnet-small"
width = 0.25
data = "shapes:train"
labels = "truth"
epochs = 3
batch_size = 50
"#;

/// Each tag's (step, value) points as TensorBoard combines the folder's files: in name
/// order, a session start at step `s` dropping the points at `s` and after read before
/// it. Every file must read (CRCs included) and begin with the file version and a start.
pub fn scalar_points(dir: &Path) -> BTreeMap<String, Vec<(i64, f32)>> {
    try_scalar_points(dir).unwrap_or_else(|e| panic!("{e}"))
}

fn try_scalar_points(dir: &Path) -> Result<BTreeMap<String, Vec<(i64, f32)>>, String> {
    let mut points: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    for file in event_files(dir) {
        let events = read_events(&file).map_err(|e| e.to_string())?;
        // Read while a training writes it, a file may have been created a moment before its
        // first events: not read yet (after the run, an error).
        if events.len() < 2 {
            return Err(format!(
                "{}: {} events, the file version and a start expected",
                file.display(),
                events.len()
            ));
        }
        assert_eq!(events[0].what, What::FileVersion("brain.Event:2".into()), "{}", file.display());
        assert!(
            matches!(events.get(1).map(|e| &e.what), Some(What::Start { .. })),
            "{}",
            file.display()
        );
        for e in &events[1..] {
            match &e.what {
                What::Scalars(values) => {
                    for (tag, v) in values {
                        points.entry(tag.clone()).or_default().push((e.step, *v));
                    }
                }
                What::Start { .. } => {
                    for p in points.values_mut() {
                        p.retain(|(s, _)| *s < e.step);
                    }
                }
                other => panic!("{}: unexpected event {other:?}", file.display()),
            }
        }
    }
    Ok(points)
}

/// TensorBoard's own reading of a run folder, or `None`, the test skipped, where the
/// project's Python lacks the `tensorboard` package: by `EventAccumulator` and by the
/// reader of `tensorboard --logdir`'s scalar dashboard (tests/reference/tensorboard_scalars.py
/// and its `--dashboard`), which must agree.
pub fn tensorboard_read(test: &str, dir: &Path) -> Option<BTreeMap<String, Vec<(i64, f32)>>> {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/tensorboard_scalars.py");
    if !Path::new(python).exists() {
        ktlab::skip::skip(test, &format!("TensorBoard's reader: {python} not found"));
        return None;
    }
    match Command::new(python).args(["-c", "import tensorboard"]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            ktlab::skip::skip(
                test,
                &format!(
                    "TensorBoard's reader: the `tensorboard` package is not importable (pip install -r requirements.txt): {}",
                    String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default()
                ),
            );
            return None;
        }
        Err(e) => {
            ktlab::skip::skip(test, &format!("TensorBoard's reader: cannot run {python}: {e}"));
            return None;
        }
    }
    let read = |extra: &[&str]| -> BTreeMap<String, Vec<(i64, f32)>> {
        let out = Command::new(python)
            .arg(script)
            .arg(dir)
            .args(extra)
            .output()
            .expect("run tensorboard_scalars.py");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: BTreeMap<String, Vec<(i64, f32, f64)>> = serde_json::from_slice(&out.stdout).expect("the script's JSON");
        json.into_iter()
            .map(|(tag, points)| (tag, points.into_iter().map(|(s, v, _)| (s, v)).collect()))
            .collect()
    };
    let accumulated = read(&[]);
    assert_eq!(
        read(&["--dashboard"]),
        accumulated,
        "the dashboard's reader and EventAccumulator disagree"
    );
    Some(accumulated)
}

/// (loss, accuracy, lr) of each row of an `epochs.csv`.
fn epochs_csv(text: &str) -> Vec<(f64, f64, f64)> {
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            (f[1], f[2], f[3])
        })
        .collect()
}

/// The one instance folder under `<store>/tensorboard/<kind>/`, once there.
fn instance_folder(store: &Path, kind: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(store.join("tensorboard").join(kind))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(dirs.len() <= 1, "{dirs:?}");
    dirs.pop()
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: a plain kill(2) of our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn a_training_stage_writes_tensorboard_events_readable_while_it_runs() {
    let p = Project::new();
    p.write("exp.toml", LIVE);
    let store = p.path("store");
    let mut child = p
        .cmd()
        .args(["run", "exp.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first epoch's scalars, then stop the process mid-run: what the files
    // hold now is what a reader sees while the stage runs.
    let clock = Instant::now();
    let dir = loop {
        let seen = instance_folder(&store, "train")
            .filter(|d| try_scalar_points(d).is_ok_and(|p| p.get("epoch/loss").is_some_and(|e| !e.is_empty())));
        if let Some(dir) = seen {
            break dir;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before any epoch was in its events"
        );
        assert!(clock.elapsed() < Duration::from_secs(300), "no epoch in the events after 300 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    signal(&child, libc::SIGSTOP);
    assert!(child.try_wait().unwrap().is_none(), "the run is still going");
    assert!(p.entries().is_empty(), "the stage has not ended: {:?}", p.entries());
    let live = scalar_points(&dir);
    let live_epochs = live["epoch/loss"].len();
    assert!((1..3).contains(&live_epochs), "{live:?}");
    assert!(live["step/loss"].len() >= 20, "{live:?}");
    let live_read_by_tensorboard = tensorboard_read("a_training_stage_writes_tensorboard_events_readable_while_it_runs", &dir);
    // Meanwhile `status` names the folder of the running training.
    let status = p.ktlab(&["status", "exp.toml"]).ok();
    signal(&child, libc::SIGCONT);
    assert!(child.wait().unwrap().success());
    if let Some(read) = &live_read_by_tensorboard {
        assert!(
            !read["epoch/loss"].is_empty(),
            "TensorBoard saw no epoch of the running stage: {read:?}"
        );
        assert!(read["epoch/loss"].len() <= live_epochs, "{read:?}");
    }
    let dir_shown = dir.display().to_string();
    assert!(
        status.stdout.lines().any(|l| l.contains("running") && l.ends_with(&dir_shown)),
        "{}",
        status.stdout
    );

    // The folder is the instance's: `<store>/tensorboard/train/<key of the entry>`.
    let entry = p.entries().into_iter().find(|e| e.starts_with("train/")).expect("a train entry");
    assert_eq!(dir, store.join("tensorboard").join(&entry));
    let epochs = epochs_csv(&p.read(&format!("store/{entry}/epochs.csv")));
    assert_eq!(epochs.len(), 3);
    let points = scalar_points(&dir);
    assert_eq!(
        points.keys().collect::<Vec<_>>(),
        ["epoch/accuracy", "epoch/loss", "epoch/lr", "step/loss"]
    );
    let at_ends: Vec<i64> = vec![20, 40, 60];
    for (tag, column) in [("epoch/loss", 0), ("epoch/accuracy", 1), ("epoch/lr", 2)] {
        let want: Vec<(i64, f32)> = epochs
            .iter()
            .zip(&at_ends)
            .map(|(e, &s)| (s, [e.0, e.1, e.2][column] as f32))
            .collect();
        assert_eq!(points[tag], want, "{tag}");
    }
    // The loss of every step; an epoch's mean of them is its loss (equal batches).
    let steps = &points["step/loss"];
    assert_eq!(steps.iter().map(|(s, _)| *s).collect::<Vec<_>>(), (1..=60).collect::<Vec<_>>());
    for (e, chunk) in steps.chunks(20).enumerate() {
        let mean = chunk.iter().map(|(_, v)| f64::from(*v)).sum::<f64>() / 20.0;
        assert!(
            (mean - epochs[e].0).abs() < 1e-5 * epochs[e].0,
            "epoch {}: {mean} vs {}",
            e + 1,
            epochs[e].0
        );
    }
    if let Some(read) = tensorboard_read("a_training_stage_writes_tensorboard_events_readable_while_it_runs", &dir) {
        assert_eq!(read, points, "TensorBoard reads what ktlab's reader reads");
    }

    // `status` says it is finished; the results folder lists it, relative to itself.
    let key = entry.trim_start_matches("train/");
    let status = p.ktlab(&["status", "exp.toml"]).ok();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("net ") && l.contains("finished") && l.ends_with(&dir_shown)),
        "{}",
        status.stdout
    );
    let list = p.read("results/live/tensorboard.txt");
    assert!(list.contains("tensorboard --logdir ../../store/tensorboard\n"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("net ") && l.ends_with(&format!(" ../../store/tensorboard/train/{key}"))),
        "{list}"
    );
    // `report` writes the same list again.
    p.ktlab(&["report", "exp.toml"]).ok();
    assert_eq!(p.read("results/live/tensorboard.txt"), list);

    // `verify` re-executes the training without touching its events.
    let files = event_files(&dir);
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    p.ktlab(&["verify", "exp.toml", "net"]).ok();
    assert_eq!(event_files(&dir), files);
    assert_eq!(files.iter().map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>(), bytes);

    // gc removes the events with their entry.
    p.write(
        "other.toml",
        "name = \"other\"\nseed = 1\n[stages.random]\nkind = \"init\"\narch = \"alexnet-small\"\n",
    );
    let gc = p.ktlab(&["gc", "--yes", "--all-experiments", "other.toml"]).ok();
    assert!(!dir.exists(), "{}", gc.stdout);
    assert!(p.entries().is_empty(), "{:?}", p.entries());
}
