//! Renders events: progress bars on a terminal, plain lines otherwise, JSON on request.
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::Event;
use crate::config::LogFormat;

pub struct Reporter {
    mode: Mode,
    quiet: bool,
    bars: Mutex<HashMap<String, ProgressBar>>,
    multi: MultiProgress,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Bars,
    Lines,
    Json,
}

impl Reporter {
    pub fn new(format: LogFormat, quiet: bool) -> Reporter {
        let mode = match format {
            LogFormat::Json => Mode::Json,
            // Quiet: no bars, only the failures as lines.
            LogFormat::Text if !quiet && std::io::stderr().is_terminal() => Mode::Bars,
            LogFormat::Text => Mode::Lines,
        };
        Reporter {
            mode,
            quiet,
            bars: Mutex::new(HashMap::new()),
            multi: MultiProgress::new(),
        }
    }

    pub fn emit(&self, event: Event) {
        match self.mode {
            Mode::Json => self.json(&event),
            Mode::Lines => self.line(&event),
            Mode::Bars => self.bar(&event),
        }
    }

    fn line(&self, e: &Event) {
        let text = match e {
            Event::Started { label, kind, key } => format!("[run]     {label} ({kind} {})", &key[..12.min(key.len())]),
            Event::Progress { .. } => return,
            Event::Cached { label, key } => format!("[cached]  {label} ({})", &key[..12.min(key.len())]),
            Event::Submitted { label, job, reused: false } => format!("[queued]  {label}: job {job}"),
            Event::Submitted { label, job, reused: true } => format!("[queued]  {label}: job {job} (already queued)"),
            Event::Finished { label, seconds, summary } => format!("[done]    {label} in {seconds:.2}s: {summary}"),
            Event::Failed { label, error } => format!("[FAILED]  {label}: {error}"),
            Event::Skipped { label, because } => format!("[skipped] {label}: {because}"),
            Event::Note { label, message } => format!("[note]    {label}: {message}"),
            Event::Epoch { label, figures } => format!("[note]    {label}: {figures}"),
        };
        // Quiet prints errors only: not epochs, notes or other events.
        if !self.quiet || matches!(e, Event::Failed { .. }) {
            eprintln!("{text}");
        }
    }

    fn bar(&self, e: &Event) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Started { label, .. } => {
                let pb = self.multi.add(ProgressBar::new(1));
                pb.set_style(
                    ProgressStyle::with_template("{spinner} {msg:32} [{bar:30}] {pos}/{len} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                pb.set_message(label.clone());
                pb.enable_steady_tick(std::time::Duration::from_millis(200));
                bars.insert(label.clone(), pb);
            }
            Event::Progress { label, done, total } => {
                if let Some(pb) = bars.get(label) {
                    pb.set_length(*total);
                    pb.set_position(*done);
                }
            }
            Event::Epoch { label, figures } => {
                // The latest epoch's figures (loss, accuracy) stay on the stage's bar.
                if let Some(pb) = bars.get(label) {
                    pb.set_message(format!(
                        "{label} | epoch {}/{}: loss {:.4}, {} {:.3}",
                        figures.epoch, figures.epochs, figures.loss, figures.accuracy_name, figures.accuracy
                    ));
                }
                drop(bars);
                self.multi.suspend(|| self.line(e));
            }
            Event::Finished { label, .. } | Event::Failed { label, .. } => {
                if let Some(pb) = bars.remove(label) {
                    pb.finish_and_clear();
                }
                drop(bars);
                self.multi.suspend(|| self.line(e));
            }
            _ => {
                drop(bars);
                self.multi.suspend(|| self.line(e));
            }
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
            Event::Finished { label, seconds, summary } => {
                serde_json::json!({"event": "finished", "stage": label, "seconds": seconds, "summary": summary})
            }
            Event::Failed { label, error } => serde_json::json!({"event": "failed", "stage": label, "error": error}),
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

impl Reporter {
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }
}
