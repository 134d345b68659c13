//! How far a run is: the instances finished of those it computes (`[12/44]`), and the
//! time left as the instances finished so far suggest; durations as a person reads them.
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The instances a run computes and how many of them have finished (computed, failed or
/// skipped). The total may change while it runs: an entry found corrupt is computed after
/// all, one that another process published meanwhile is not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    total: usize,
    done: usize,
}

impl Tally {
    /// `[done/total]`, the total never below the count.
    pub fn counter(&self) -> String {
        format!("[{}/{}]", self.done, self.total())
    }

    pub fn total(&self) -> usize {
        self.total.max(self.done)
    }

    pub fn done(&self) -> usize {
        self.done
    }

    pub fn set_total(&mut self, total: usize) {
        self.total = total;
    }

    /// One more instance finished.
    pub fn finish_one(&mut self) {
        self.done += 1;
    }
}

/// The time the rest of a run should take if each instance left takes as long as the
/// finished ones did on average: `finished` is when the last of the `done` instances
/// finished (from the run's start), `running` how long the next one has been running
/// since. The one running is due the mean less what it has run (none once it overruns),
/// each after it the mean. `None` before the first has finished.
pub fn eta(finished: Duration, done: u64, total: u64, running: Duration) -> Option<Duration> {
    if done == 0 {
        return None;
    }
    let mean = finished.div_f64(done as f64);
    let left = total.saturating_sub(done);
    if left == 0 {
        return Some(Duration::ZERO);
    }
    Some(mean.saturating_sub(running) + mean.mul_f64((left - 1) as f64))
}

/// The plan's estimates of the instances a run computes (`ktlab plan`'s), by label: the
/// time left is the estimates of the instances not finished, less what the running ones
/// have run (at most their estimate). Without estimates, [`eta`]'s mean of the finished.
#[derive(Clone, Debug, Default)]
pub struct Estimates {
    left: HashMap<String, f64>,
    running: HashMap<String, Instant>,
}

impl Estimates {
    pub fn new(by_label: HashMap<String, f64>) -> Estimates {
        Estimates {
            left: by_label,
            running: HashMap::new(),
        }
    }

    pub fn started(&mut self, label: &str, at: Instant) {
        if self.left.contains_key(label) {
            self.running.insert(label.to_string(), at);
        }
    }

    /// Finished, failed or skipped: no time left for it.
    pub fn finished(&mut self, label: &str) {
        self.left.remove(label);
        self.running.remove(label);
    }

    /// The time left at `now`; `None` without estimates.
    pub fn left(&self, now: Instant) -> Option<Duration> {
        if self.left.is_empty() {
            return None;
        }
        let seconds: f64 = self
            .left
            .iter()
            .map(|(label, &est)| match self.running.get(label) {
                Some(&since) => (est - now.saturating_duration_since(since).as_secs_f64()).max(0.0),
                None => est,
            })
            .sum();
        Some(Duration::from_secs_f64(seconds.max(0.0)))
    }
}

/// `0.38s`, `59.90s`, `1m 05s`, `2h 03m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        return format!("{s:.2}s");
    }
    let whole = d.as_secs();
    if whole < 3600 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h {:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// Like [`human`], to the second: for times that tick on a terminal (`45s`, `1m 05s`).
pub fn human_whole(d: Duration) -> String {
    if d.as_secs() < 60 {
        format!("{}s", d.as_secs())
    } else {
        human(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_never_shows_more_done_than_in_total() {
        let mut t = Tally::default();
        t.set_total(2);
        assert_eq!(t.counter(), "[0/2]");
        t.finish_one();
        assert_eq!(t.counter(), "[1/2]");
        t.finish_one();
        t.finish_one();
        assert_eq!(t.counter(), "[3/3]", "a corrupt entry recomputed beyond the plan");
        t.set_total(5);
        assert_eq!((t.done(), t.total()), (3, 5));
    }

    #[test]
    fn the_eta_is_the_mean_time_of_the_finished_instances_for_each_one_left() {
        let s = Duration::from_secs;
        assert_eq!(eta(s(10), 0, 4, s(3)), None, "nothing finished: unknown");
        assert_eq!(eta(s(10), 2, 4, s(0)), Some(s(10)), "5 s each, two left");
        assert_eq!(eta(s(10), 2, 4, s(3)), Some(s(7)), "the running one has 2 s to go");
        assert_eq!(eta(s(10), 2, 4, s(9)), Some(s(5)), "it overruns: the last one's 5 s");
        assert_eq!(eta(s(30), 4, 4, s(1)), Some(Duration::ZERO));
        assert_eq!(eta(s(30), 5, 4, s(1)), Some(Duration::ZERO), "more done than planned");
    }

    #[test]
    fn the_eta_with_estimates_is_what_is_left_of_them() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut e = Estimates::new(HashMap::from([("a".to_string(), 10.0), ("b".to_string(), 30.0)]));
        assert_eq!(e.left(t0), Some(s(40)));
        e.started("a", t0);
        assert_eq!(e.left(t0 + s(4)), Some(s(36)), "a has run 4 of its 10 s");
        assert_eq!(e.left(t0 + s(15)), Some(s(30)), "a overruns: only b's 30 s");
        e.finished("a");
        e.started("b", t0 + s(15));
        assert_eq!(e.left(t0 + s(25)), Some(s(20)));
        e.finished("b");
        assert_eq!(e.left(t0 + s(25)), None, "nothing left to estimate: the mean takes over");
        assert!(Estimates::default().left(t0).is_none());
    }

    #[test]
    fn durations_read_as_seconds_minutes_or_hours() {
        assert_eq!(human(Duration::from_millis(380)), "0.38s");
        assert_eq!(human(Duration::from_secs_f64(59.9)), "59.90s");
        assert_eq!(human(Duration::from_secs(65)), "1m 05s");
        assert_eq!(human(Duration::from_secs(2 * 3600 + 3 * 60 + 59)), "2h 03m");
        assert_eq!(human_whole(Duration::from_millis(45_900)), "45s");
        assert_eq!(human_whole(Duration::from_secs(65)), "1m 05s");
    }
}
