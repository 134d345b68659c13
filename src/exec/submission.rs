//! A submission's snapshot under the store (`<store>/<scheduler>/submissions/<id>/`):
//! the experiment file, the datasets file and the `--set` values its jobs re-plan from,
//! so that editing the experiment while jobs are queued changes nothing for them.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::FingerprintMode;

/// A submission folder that cannot be written or read back.
#[derive(Debug, Error)]
pub enum SubmissionError {
    #[error("cannot write the submission under {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create a submission folder under {} (1000 names taken)", root.display())]
    NoFreeName { root: PathBuf },
    #[error("not a submission folder: {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a submission folder: {}", path.display())]
    Info {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> SubmissionError + '_ {
    move |source| SubmissionError::Write {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmissionInfo {
    pub experiment: String,
    /// The experiment file as the user named it (absolute), for messages.
    pub experiment_file: PathBuf,
    /// Where the datasets file's relative roots resolve (its original folder).
    pub datasets_base: Option<PathBuf>,
    pub set: Vec<String>,
    /// How the submitting plan fingerprinted datasets; its jobs plan the same way.
    /// (Submissions written before contents became the default were metadata.)
    #[serde(default = "metadata")]
    pub fingerprint: FingerprintMode,
    /// Seconds since the Unix epoch.
    pub created: f64,
}

fn metadata() -> FingerprintMode {
    FingerprintMode::Metadata
}

#[derive(Clone, Debug)]
pub struct Submission {
    pub dir: PathBuf,
    pub info: SubmissionInfo,
}

const INFO: &str = "submission.json";
const EXPERIMENT: &str = "experiment.toml";
const DATASETS: &str = "datasets.toml";
const SCRIPT: &str = "job.sh";

impl Submission {
    /// Copies the files into a new folder under `root` and writes the job script
    /// (`script` is given the folder).
    pub fn create(
        root: &Path,
        info: SubmissionInfo,
        datasets: Option<&Path>,
        script: impl FnOnce(&Path) -> String,
    ) -> Result<Submission, SubmissionError> {
        std::fs::create_dir_all(root).map_err(write_err(root))?;
        let stem = format!("{}-{}-{}", info.experiment, info.created as u64, std::process::id());
        let dir = (0..1000)
            .map(|n| root.join(if n == 0 { stem.clone() } else { format!("{stem}.{n}") }))
            .find(|d| std::fs::create_dir(d).is_ok())
            .ok_or_else(|| SubmissionError::NoFreeName { root: root.to_path_buf() })?;
        let copy = |from: &Path, name: &str| {
            let to = dir.join(name);
            std::fs::copy(from, &to).map(|_| ()).map_err(write_err(&to))
        };
        copy(&info.experiment_file, EXPERIMENT)?;
        if let Some(d) = datasets {
            copy(d, DATASETS)?;
        }
        let script_path = dir.join(SCRIPT);
        std::fs::write(&script_path, script(&dir)).map_err(write_err(&script_path))?;
        let info_path = dir.join(INFO);
        let text = serde_json::to_vec_pretty(&info).map_err(|e| SubmissionError::Write {
            path: info_path.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&info_path, text).map_err(write_err(&info_path))?;
        Ok(Submission { dir, info })
    }

    pub fn load(dir: &Path) -> Result<Submission, SubmissionError> {
        let path = dir.join(INFO);
        let bytes = std::fs::read(&path).map_err(|source| SubmissionError::Read {
            path: path.clone(),
            source,
        })?;
        let info = serde_json::from_slice(&bytes).map_err(|source| SubmissionError::Info { path, source })?;
        Ok(Submission {
            dir: dir.to_path_buf(),
            info,
        })
    }

    pub fn experiment_path(&self) -> PathBuf {
        self.dir.join(EXPERIMENT)
    }

    pub fn datasets_path(&self) -> Option<PathBuf> {
        Some(self.dir.join(DATASETS)).filter(|p| p.is_file())
    }

    pub fn script_path(&self) -> PathBuf {
        self.dir.join(SCRIPT)
    }
}

/// Quotes a string for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The job script: the environment a ktlab job needs, the user's set-up lines, then
/// `ktlab exec-stage` on the key given as arguments.
pub fn job_script(ktlab: &Path, store: &Path, submission_dir: &Path, setup: &[String]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # A ktlab job: computes one stage instance into the store (arguments: --key KEY).\n\
         # libtorch's OpenMP spin-waits by default, which wastes a shared node's cores.\n\
         export OMP_WAIT_POLICY=PASSIVE\n\
         if [ -n \"$SLURM_CPUS_PER_TASK\" ]; then export OMP_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"; fi\n",
    );
    for line in setup {
        s.push_str(line);
        s.push('\n');
    }
    s.push_str(&format!(
        "exec {} --store {} exec-stage --submission {} \"$@\"\n",
        shell_quote(&ktlab.to_string_lossy()),
        shell_quote(&store.to_string_lossy()),
        shell_quote(&submission_dir.to_string_lossy())
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn snapshot_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("e.toml");
        std::fs::write(&exp, "name = \"e\"\n").unwrap();
        let info = SubmissionInfo {
            experiment: "e".into(),
            experiment_file: exp.clone(),
            datasets_base: None,
            set: vec!["seed=3".into()],
            fingerprint: FingerprintMode::Contents,
            created: 1.0,
        };
        let script = |d: &Path| job_script(Path::new("/bin/ktlab"), Path::new("/st"), d, &["module load x".into()]);
        let a = Submission::create(&tmp.path().join("subs"), info.clone(), None, script).unwrap();
        let b = Submission::create(&tmp.path().join("subs"), info.clone(), None, script).unwrap();
        let text = std::fs::read_to_string(a.script_path()).unwrap();
        assert!(text.contains("OMP_WAIT_POLICY=PASSIVE\n"), "{text}");
        assert!(
            text.contains("module load x\nexec '/bin/ktlab' --store '/st' exec-stage --submission '"),
            "{text}"
        );
        assert_ne!(a.dir, b.dir);
        std::fs::write(&exp, "name = \"edited\"\n").unwrap();
        let back = Submission::load(&a.dir).unwrap();
        assert_eq!(back.info, info);
        assert_eq!(std::fs::read_to_string(back.experiment_path()).unwrap(), "name = \"e\"\n");
        assert!(back.datasets_path().is_none());
    }
}
