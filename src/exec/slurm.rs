//! Slurm behind the `Scheduler` interface: `sbatch` with `afterok` dependencies and
//! `--kill-on-invalid-dep=yes`; states from `squeue`, then `sacct` (accounting, or
//! `sacct -c` with jobcomp/filetxt) for jobs `squeue` no longer shows.
use std::collections::HashMap;
use std::process::Command;

use super::scheduler::{JobRequest, JobState, JobStatus, Scheduler, SchedulerError, Submitted};

#[derive(Debug, Default)]
pub struct Slurm;

impl Slurm {
    /// Fails with a clear message where `sbatch` cannot be run.
    pub fn detect() -> Result<Slurm, SchedulerError> {
        match Command::new("sbatch").arg("--version").output() {
            Ok(o) if o.status.success() => Ok(Slurm),
            Ok(o) => Err(SchedulerError::Broken {
                command: "sbatch --version".into(),
                stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
            }),
            Err(source) => Err(SchedulerError::Unavailable {
                scheduler: "Slurm",
                command: "sbatch".into(),
                source,
            }),
        }
    }
}

/// Slurm's job states in the executor's words.
pub fn state_of(raw: &str) -> Option<JobState> {
    // sacct writes "CANCELLED by 0"; squeue writes "CANCELLED".
    let word = raw.split_whitespace().next().unwrap_or("");
    Some(match word {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_FED" | "REQUEUE_HOLD" | "RESIZING" | "SUSPENDED" | "STOPPED" => JobState::Queued,
        "RUNNING" | "COMPLETING" | "SIGNALING" | "STAGE_OUT" => JobState::Running,
        "COMPLETED" => JobState::Succeeded,
        "CANCELLED" | "REVOKED" => JobState::Cancelled,
        "FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "BOOT_FAIL" | "DEADLINE" | "PREEMPTED" | "SPECIAL_EXIT" => JobState::Failed,
        _ => return None,
    })
}

fn run(cmd: &mut Command) -> Result<(bool, String, String), SchedulerError> {
    let o = cmd.output().map_err(|source| SchedulerError::Spawn {
        command: format!("{cmd:?}"),
        source,
    })?;
    Ok((
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).trim().to_string(),
    ))
}

impl Scheduler for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn submit(&self, job: &JobRequest) -> Result<Submitted, SchedulerError> {
        std::fs::create_dir_all(&job.log_dir).map_err(|source| SchedulerError::LogDir {
            path: job.log_dir.clone(),
            source,
        })?;
        let log_pattern = job.log_dir.join(format!("{}-%j.log", job.log_stem));
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable")
            .arg(format!("--job-name={}", job.name))
            .arg(format!("--output={}", log_pattern.display()))
            .arg(format!("--chdir={}", job.workdir.display()))
            .arg("--kill-on-invalid-dep=yes")
            .args(job.resources.sbatch_args())
            .args(&job.extra_args);
        if !job.after_ok.is_empty() {
            cmd.arg(format!("--dependency=afterok:{}", job.after_ok.join(":")));
        }
        cmd.arg(&job.script).args(&job.args);
        let (ok, out, err) = run(&mut cmd)?;
        if !ok {
            return Err(SchedulerError::Refused {
                command: "sbatch".into(),
                job: job.name.clone(),
                stderr: err,
            });
        }
        // `--parsable` prints `<id>` or `<id>;<cluster>`.
        let id = out.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(SchedulerError::NoJobId {
                command: "sbatch".into(),
                job: job.name.clone(),
                stdout: out,
                stderr: err,
            });
        }
        let log = job.log_dir.join(format!("{}-{id}.log", job.log_stem));
        Ok(Submitted { id, log })
    }

    fn query(&self, ids: &[String]) -> Result<HashMap<String, JobStatus>, SchedulerError> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let list = ids.join(",");
        let (ok, stdout, err) = run(Command::new("squeue").args(["-h", "-t", "all", "-j", &list, "-o", "%i|%T|%r|%j"]))?;
        // A list of only unknown ids is an error for squeue; others are just left out.
        if !ok && !err.contains("Invalid job id") {
            return Err(SchedulerError::Query {
                command: "squeue".into(),
                stderr: err,
            });
        }
        for line in stdout.lines() {
            let f: Vec<&str> = line.splitn(4, '|').collect();
            if let [id, raw, reason, name] = f.as_slice() {
                if let Some(state) = state_of(raw) {
                    out.insert(
                        id.to_string(),
                        JobStatus {
                            state,
                            raw: raw.to_string(),
                            reason: if *reason == "None" { String::new() } else { reason.to_string() },
                            exit_code: String::new(),
                            name: name.to_string(),
                        },
                    );
                }
            }
        }
        // squeue gives no exit code: ask sacct about failed jobs too (an exit code of 2
        // means the stage failed on its input).
        let missing: Vec<&String> = ids
            .iter()
            .filter(|i| out.get(*i).is_none_or(|s| s.state == JobState::Failed && s.exit_code.is_empty()))
            .collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let list = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        // Accounting first; without slurmdbd, the job completion log (-c).
        for extra in [&["-X"][..], &["-c"][..]] {
            let Ok((true, stdout, _)) =
                run(Command::new("sacct")
                    .args(extra)
                    .args(["-n", "-P", "-j", &list, "-o", "JobID,State,ExitCode,JobName"]))
            else {
                continue;
            };
            for line in stdout.lines() {
                let f: Vec<&str> = line.splitn(4, '|').collect();
                if let [id, raw, exit, name] = f.as_slice() {
                    // The last record of a requeued job wins.
                    if let Some(state) = state_of(raw).filter(|_| !id.contains('.')) {
                        let reason = out.get(*id).map(|s| s.reason.clone()).unwrap_or_default();
                        out.insert(
                            id.to_string(),
                            JobStatus {
                                state,
                                raw: raw.split_whitespace().next().unwrap_or("").to_string(),
                                reason,
                                exit_code: exit.to_string(),
                                name: name.to_string(),
                            },
                        );
                    }
                }
            }
            break;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_states_map_to_executor_states() {
        assert_eq!(state_of("PENDING"), Some(JobState::Queued));
        assert_eq!(state_of("COMPLETING"), Some(JobState::Running));
        assert_eq!(state_of("COMPLETED"), Some(JobState::Succeeded));
        assert_eq!(state_of("CANCELLED by 0"), Some(JobState::Cancelled));
        assert_eq!(state_of("TIMEOUT"), Some(JobState::Failed));
        assert_eq!(state_of("OUT_OF_MEMORY"), Some(JobState::Failed));
        assert_eq!(state_of("what"), None);
        assert!(JobState::Queued.is_alive() && !JobState::Failed.is_alive());
    }
}
