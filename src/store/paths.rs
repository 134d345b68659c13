//! Where things live under the store besides entries: the one place that joins store
//! paths, so that no other module builds them by hand.
use std::path::PathBuf;

use super::{Key, KindName, Store};

impl Store {
    /// Dataset fingerprint caches (`<store>/fingerprints`).
    pub fn fingerprints_dir(&self) -> PathBuf {
        self.root.join("fingerprints")
    }

    /// What each stage of `experiment` was keyed on when it last ran.
    pub fn records_path(&self, experiment: &str) -> PathBuf {
        self.records_dir().join(format!("{experiment}.json"))
    }

    /// The records of every experiment that ran on this store.
    pub fn records_dir(&self) -> PathBuf {
        self.root.join("records")
    }

    /// A cluster scheduler's folder (`<store>/<scheduler>`).
    pub fn scheduler_dir(&self, scheduler: &str) -> PathBuf {
        self.root.join(scheduler)
    }

    /// The job submitted for each key (`<store>/<scheduler>/jobs`).
    pub fn jobs_dir(&self, scheduler: &str) -> PathBuf {
        self.scheduler_dir(scheduler).join("jobs")
    }

    /// Job logs of one experiment (`<store>/<scheduler>/logs/<experiment>`).
    pub fn job_logs_dir(&self, scheduler: &str, experiment: &str) -> PathBuf {
        self.scheduler_dir(scheduler).join("logs").join(experiment)
    }

    /// Snapshots that queued jobs re-plan from (`<store>/<scheduler>/submissions`).
    pub fn submissions_dir(&self, scheduler: &str) -> PathBuf {
        self.scheduler_dir(scheduler).join("submissions")
    }

    /// Held while submitting, so that two submitters never both submit one key.
    pub fn submit_lock_path(&self, scheduler: &str) -> PathBuf {
        self.scheduler_dir(scheduler).join("submit.lock")
    }

    /// Decoded-image caches of splits (`<store>/decoded`): a split resized once to a
    /// stage's input side, memory-mapped by the stages that read it (`KTLAB_DECODE_CACHE`).
    pub fn decoded_dir(&self) -> PathBuf {
        self.root.join("decoded")
    }

    /// Training checkpoints of every key (`<store>/checkpoints`).
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// TensorBoard event files of every training instance (`<store>/tensorboard`): the
    /// `--logdir` that shows them all, each run named `<kind>/<key>`.
    pub fn tensorboard_root(&self) -> PathBuf {
        self.root.join("tensorboard")
    }

    /// The TensorBoard event files of one training instance
    /// (`<store>/tensorboard/<kind>/<key>`): written while it trains, kept with its entry.
    pub fn tensorboard_dir(&self, kind: impl KindName, key: &Key) -> PathBuf {
        self.tensorboard_root().join(kind.kind_name()).join(key.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_paths_sit_under_the_scheduler_folder() {
        let s = Store::new("/st");
        assert_eq!(s.jobs_dir("slurm"), PathBuf::from("/st/slurm/jobs"));
        assert_eq!(s.job_logs_dir("slurm", "e"), PathBuf::from("/st/slurm/logs/e"));
        assert_eq!(s.submissions_dir("slurm"), PathBuf::from("/st/slurm/submissions"));
        assert_eq!(s.submit_lock_path("slurm"), PathBuf::from("/st/slurm/submit.lock"));
        assert_eq!(s.fingerprints_dir(), PathBuf::from("/st/fingerprints"));
        assert_eq!(s.records_path("e"), PathBuf::from("/st/records/e.json"));
        let key = Key::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(
            s.tensorboard_dir("train", &key),
            PathBuf::from(format!("/st/tensorboard/train/{}", "ab".repeat(32)))
        );
    }
}
