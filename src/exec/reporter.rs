//! Renders events: on a terminal, a progress bar per running instance above an overall
//! line (instances finished, elapsed time, time left); in a pipe or CI, one line per
//! finished instance (`[12/44] done ...`); JSON on request.
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};

use super::tally::{eta, human, human_whole, Estimates, Tally};
use super::Event;
use crate::config::LogFormat;

pub struct Reporter {
    mode: Mode,
    quiet: bool,
    /// Every event as a line (started, cached, each epoch): with `-v`, and in a cluster
    /// job's log, which is the only place a job's epochs show.
    detailed: bool,
    state: Mutex<State>,
    multi: MultiProgress,
}

/// What the reporter keeps between events.
#[derive(Default)]
struct State {
    tally: Tally,
    /// The bar of each running instance, by label.
    bars: HashMap<String, ProgressBar>,
    /// The overall line under them (terminal only), once the run has said its total.
    overall: Option<ProgressBar>,
    /// When (milliseconds into the overall line) the last instance finished, for its
    /// estimate of the time left.
    finished_at: Arc<AtomicU64>,
    /// The plan's estimates of the instances to compute, for the time left.
    estimates: Arc<Mutex<Estimates>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Bars,
    Lines,
    Json,
}

/// The first 12 characters of a key, as listings show it.
fn short(key: &str) -> &str {
    &key[..12.min(key.len())]
}

impl Reporter {
    /// `verbose`: the count of `-v` (one or more prints every event as a line).
    pub fn new(format: LogFormat, quiet: bool, verbose: u8) -> Reporter {
        // CI runners that give a pseudo-terminal still want lines in their logs.
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        let mode = match format {
            LogFormat::Json => Mode::Json,
            // Quiet: no bars, only the failures as lines.
            LogFormat::Text if !quiet && !ci && std::io::stderr().is_terminal() => Mode::Bars,
            LogFormat::Text => Mode::Lines,
        };
        Reporter {
            mode,
            quiet,
            detailed: verbose > 0,
            state: Mutex::new(State::default()),
            multi: MultiProgress::new(),
        }
    }

    /// Prints every event as a line, as `-v` does (a cluster job's log).
    pub fn show_details(&mut self) {
        self.detailed = true;
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The number of instances the run computes (again when it changes: an entry found
    /// corrupt, one another process published). On a terminal the overall line appears.
    pub fn expect(&self, total: usize) {
        let mut state = self.state();
        state.tally.set_total(total);
        if self.mode != Mode::Bars {
            return;
        }
        let total = state.tally.total() as u64;
        match &state.overall {
            Some(bar) => bar.set_length(total),
            None if total > 0 => {
                let bar = self.multi.add(ProgressBar::new(total));
                bar.set_style(overall_style(Arc::clone(&state.finished_at), Arc::clone(&state.estimates)));
                bar.set_position(state.tally.done() as u64);
                bar.enable_steady_tick(Duration::from_millis(500));
                state.overall = Some(bar);
            }
            None => {}
        }
    }

    /// The plan's estimated seconds of each instance to compute, by label: the overall
    /// line's time left comes from them (from the mean of the finished ones without).
    pub fn expect_seconds(&self, by_label: HashMap<String, f64>) {
        let state = self.state();
        *state.estimates.lock().unwrap_or_else(|p| p.into_inner()) = Estimates::new(by_label);
    }

    /// The run is over: the bars leave the terminal to what follows.
    pub fn end(&self) {
        let mut state = self.state();
        for (_, bar) in state.bars.drain() {
            bar.finish_and_clear();
        }
        if let Some(bar) = state.overall.take() {
            bar.finish_and_clear();
        }
    }

    pub fn emit(&self, event: Event) {
        let counter = {
            let mut state = self.state();
            {
                let mut estimates = state.estimates.lock().unwrap_or_else(|p| p.into_inner());
                match &event {
                    Event::Started { label, .. } => estimates.started(label, std::time::Instant::now()),
                    Event::Finished { label, .. } | Event::Failed { label, .. } | Event::Skipped { label, .. } => estimates.finished(label),
                    _ => {}
                }
            }
            if matches!(event, Event::Finished { .. } | Event::Failed { .. } | Event::Skipped { .. }) {
                state.tally.finish_one();
                if let Some(bar) = &state.overall {
                    let at = u64::try_from(bar.elapsed().as_millis()).unwrap_or(u64::MAX);
                    state.finished_at.store(at, Ordering::Relaxed);
                    bar.set_length(state.tally.total() as u64);
                    bar.set_position(state.tally.done() as u64);
                }
            }
            state.tally.counter()
        };
        match self.mode {
            Mode::Json => self.json(&event),
            Mode::Lines => {
                if let Some(text) = self.line(&event, &counter) {
                    eprintln!("{text}");
                }
            }
            Mode::Bars => self.bar(&event, &counter),
        }
    }

    /// The line an event prints in a pipe (and above the bars on a terminal), if any:
    /// finished, failed and skipped instances with the counter, notes, jobs submitted;
    /// started and cached instances and every epoch only when detailed; quiet, failures only.
    fn line(&self, e: &Event, counter: &str) -> Option<String> {
        let text = match e {
            Event::Finished {
                label,
                kind,
                key,
                seconds,
                summary,
            } => {
                let took = human(Duration::from_secs_f64(seconds.max(0.0)));
                let summary = if summary.is_empty() {
                    String::new()
                } else {
                    format!(": {summary}")
                };
                format!("{counter} done {label} ({kind} {}) in {took}{summary}", short(key))
            }
            Event::Failed { label, kind, key, error } => format!("{counter} FAILED {label} ({kind} {}): {error}", short(key)),
            Event::Skipped { label, because } => format!("{counter} skipped {label}: {because}"),
            Event::Note { label, message } => format!("note: {label}: {message}"),
            Event::Submitted { label, job, reused: false } => format!("queued {label}: job {job}"),
            Event::Submitted { label, job, reused: true } => format!("queued {label}: job {job} (already queued)"),
            Event::Started { label, kind, key } if self.detailed => format!("started {label} ({kind} {})", short(key)),
            Event::Cached { label, key } if self.detailed => format!("cached {label} ({})", short(key)),
            Event::Epoch { label, figures } if self.detailed => format!("{label}: {figures}"),
            Event::Started { .. } | Event::Cached { .. } | Event::Epoch { .. } | Event::Progress { .. } => return None,
        };
        // Quiet prints errors only.
        (!self.quiet || matches!(e, Event::Failed { .. })).then_some(text)
    }

    fn bar(&self, e: &Event, counter: &str) {
        let mut state = self.state();
        match e {
            Event::Started { label, .. } => {
                let pb = ProgressBar::new(1);
                let pb = match &state.overall {
                    Some(overall) => self.multi.insert_before(overall, pb),
                    None => self.multi.add(pb),
                };
                pb.set_style(
                    ProgressStyle::with_template("{spinner} {msg:40} [{bar:30}] {pos}/{len} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                pb.set_message(label.clone());
                pb.enable_steady_tick(Duration::from_millis(200));
                state.bars.insert(label.clone(), pb);
            }
            Event::Progress { label, done, total } => {
                if let Some(pb) = state.bars.get(label) {
                    pb.set_length(*total);
                    pb.set_position(*done);
                }
            }
            // The latest epoch's figures (loss, accuracy) stay on the instance's bar.
            Event::Epoch { label, figures } => {
                if let Some(pb) = state.bars.get(label) {
                    pb.set_message(format!(
                        "{label} | epoch {}/{}: loss {:.4}, {} {:.3}",
                        figures.epoch, figures.epochs, figures.loss, figures.accuracy_name, figures.accuracy
                    ));
                }
            }
            Event::Finished { label, .. } | Event::Failed { label, .. } => {
                if let Some(pb) = state.bars.remove(label) {
                    pb.finish_and_clear();
                }
            }
            _ => {}
        }
        drop(state);
        if let Some(text) = self.line(e, counter) {
            self.multi.suspend(|| eprintln!("{text}"));
        }
    }

    fn json(&self, e: &Event) {
        let v = match e {
            Event::Started { label, kind, key } => serde_json::json!({"event": "started", "stage": label, "kind": kind, "key": key}),
            Event::Progress { label, done, total } => {
                serde_json::json!({"event": "progress", "stage": label, "done": done, "total": total})
            }
            Event::Cached { label, key } => serde_json::json!({"event": "cached", "stage": label, "key": key}),
            Event::Submitted { label, job, reused } => {
                serde_json::json!({"event": "submitted", "stage": label, "job": job, "reused": reused})
            }
            Event::Finished {
                label, seconds, summary, ..
            } => {
                serde_json::json!({"event": "finished", "stage": label, "seconds": seconds, "summary": summary})
            }
            Event::Failed { label, error, .. } => serde_json::json!({"event": "failed", "stage": label, "error": error}),
            Event::Skipped { label, because } => serde_json::json!({"event": "skipped", "stage": label, "because": because}),
            Event::Note { label, message } => serde_json::json!({"event": "note", "stage": label, "message": message}),
            Event::Epoch { label, figures } => serde_json::json!({
                "event": "epoch", "stage": label, "epoch": figures.epoch, "epochs": figures.epochs,
                "loss": figures.loss, "accuracy": figures.accuracy, "accuracy_name": figures.accuracy_name,
                "chance": figures.chance, "lr": figures.lr, "seconds": figures.seconds,
            }),
        };
        if matches!(e, Event::Progress { .. }) || (self.quiet && !matches!(e, Event::Failed { .. })) {
            return;
        }
        eprintln!("{v}");
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.end();
    }
}

/// The overall line: `[=======>    ] 1/4 instances, 20s elapsed, about 47s left`;
/// `finished_at`: when the last instance finished, in milliseconds into the line; the
/// time left from `estimates` where the plan gave them, else from the finished ones' mean.
fn overall_style(finished_at: Arc<AtomicU64>, estimates: Arc<Mutex<Estimates>>) -> ProgressStyle {
    let elapsed = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = w.write_str(&human_whole(s.elapsed()));
    };
    // Nothing before the first instance has finished: there is no estimate yet.
    let left = move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let finished = Duration::from_millis(finished_at.load(Ordering::Relaxed));
        let running = s.elapsed().saturating_sub(finished);
        let estimated = estimates.lock().unwrap_or_else(|p| p.into_inner()).left(std::time::Instant::now());
        if let Some(d) = estimated.or_else(|| eta(finished, s.pos(), s.len().unwrap_or(0), running)) {
            let _ = write!(w, ", about {} left", human_whole(d));
        }
    };
    ProgressStyle::with_template("[{bar:30}] {pos}/{len} instances, {ktlab_elapsed} elapsed{ktlab_left}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("ktlab_elapsed", elapsed)
        .with_key("ktlab_left", left)
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(quiet: bool, verbose: u8) -> Reporter {
        let mut r = Reporter::new(LogFormat::Text, quiet, verbose);
        r.mode = Mode::Lines;
        r
    }

    fn finished(label: &str) -> Event {
        Event::Finished {
            label: label.into(),
            kind: "kmeans",
            key: "971bc28f5ffa0123456789".into(),
            seconds: 0.384,
            summary: "k = 16 on 2000 x 324".into(),
        }
    }

    #[test]
    fn a_finished_instance_is_one_line_with_the_counter_kind_short_key_time_and_summary() {
        let r = lines(false, 0);
        assert_eq!(
            r.line(&finished("clusters"), "[12/44]").as_deref(),
            Some("[12/44] done clusters (kmeans 971bc28f5ffa) in 0.38s: k = 16 on 2000 x 324")
        );
        let failed = Event::Failed {
            label: "clusters".into(),
            kind: "kmeans",
            key: "971bc28f5ffa0123".into(),
            error: "k = 100 is larger than the number of points (60)".into(),
        };
        assert_eq!(
            r.line(&failed, "[3/4]").as_deref(),
            Some("[3/4] FAILED clusters (kmeans 971bc28f5ffa): k = 100 is larger than the number of points (60)")
        );
        let skipped = Event::Skipped {
            label: "labels".into(),
            because: "input `clusters` failed".into(),
        };
        assert_eq!(
            r.line(&skipped, "[4/4]").as_deref(),
            Some("[4/4] skipped labels: input `clusters` failed")
        );
    }

    #[test]
    fn epochs_started_and_cached_instances_print_only_when_detailed() {
        let figures = crate::stages::EpochFigures {
            epoch: 1,
            epochs: 3,
            loss: 2.5,
            accuracy: 0.1,
            accuracy_name: "accuracy",
            chance: None,
            lr: 0.01,
            seconds: 1.0,
        };
        let quiet_ones = [
            Event::Epoch {
                label: "net".into(),
                figures,
            },
            Event::Started {
                label: "net".into(),
                kind: "train",
                key: "abc".into(),
            },
            Event::Cached {
                label: "feat".into(),
                key: "abc".into(),
            },
        ];
        let (plain, verbose) = (lines(false, 0), lines(false, 1));
        for e in &quiet_ones {
            assert_eq!(plain.line(e, "[0/1]"), None, "{e:?}");
            assert!(verbose.line(e, "[0/1]").is_some(), "{e:?}");
        }
        assert_eq!(
            verbose.line(&quiet_ones[0], "[0/1]").as_deref(),
            Some("net: epoch 1/3: loss 2.5000, accuracy 0.100, lr 0.0100, 1.0s")
        );
        let mut job = lines(false, 0);
        job.show_details();
        assert!(job.line(&quiet_ones[0], "").is_some(), "a cluster job's log");
        let quiet = lines(true, 0);
        assert_eq!(quiet.line(&finished("c"), "[1/1]"), None);
        let failed = Event::Failed {
            label: "c".into(),
            kind: "kmeans",
            key: "k".into(),
            error: "bad".into(),
        };
        assert!(quiet.line(&failed, "[1/1]").is_some(), "quiet still prints failures");
    }

    #[test]
    fn the_counter_counts_finished_failed_and_skipped_instances_against_the_expected_total() {
        let r = lines(true, 0);
        r.expect(3);
        r.emit(finished("a"));
        assert_eq!(r.state().tally.counter(), "[1/3]");
        r.emit(Event::Cached {
            label: "b".into(),
            key: "k".into(),
        });
        assert_eq!(r.state().tally.counter(), "[1/3]", "cached instances are not counted");
        r.emit(Event::Skipped {
            label: "c".into(),
            because: "x".into(),
        });
        r.expect(2);
        assert_eq!(r.state().tally.counter(), "[2/2]");
    }
}
