//! What a test does when this machine lacks what it needs (a dataset under `../shared`, a tool
//! such as `pdflatex`, the project's Python, a Slurm cluster): it says so on stderr and in the
//! log that `make test` prints at its end (`KTLAB_SKIP_LOG`), and it fails instead where the
//! environment promises everything (`KTLAB_REQUIRE_ALL=1`, which `.ci/run` sets after
//! installing what the tests need), so that no CI run skips a test silently.

/// Records that `test` did not run because of `reason`; panics under `KTLAB_REQUIRE_ALL=1`.
pub fn skip(test: &str, reason: &str) {
    let line = record(test, reason);
    if std::env::var_os("KTLAB_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{line} (KTLAB_REQUIRE_ALL=1: this environment is meant to run every test)");
    }
}

/// Records a skip that no environment can avoid (CUDA tests on a machine without a GPU).
pub fn skip_unavoidable(test: &str, reason: &str) {
    record(test, reason);
}

fn record(test: &str, reason: &str) -> String {
    let line = format!("skipped: {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("KTLAB_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
    line
}
