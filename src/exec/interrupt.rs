//! Ctrl-C (SIGINT) and SIGTERM during a local run: say which stage instances were
//! interrupted and that running again resumes, remove their work folders, and exit with
//! 128 + the signal (130 for Ctrl-C, 143 for SIGTERM).
//!
//! The signal handler only writes the signal's number into a pipe (all it may safely do);
//! a thread reads it and does the rest. A second signal while that runs exits at once.
//! Store entries are published by one rename, so an interrupted instance simply has none;
//! training checkpoints stay, and the next run resumes from them.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// One instance being computed: its label, its work folder and its checkpoint folder.
struct Running {
    id: u64,
    label: String,
    workdir: PathBuf,
    checkpoints: PathBuf,
}

static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// The command that resumes the run, said when it is interrupted.
static RESUME: OnceLock<String> = OnceLock::new();

/// An instance registered as running until this is dropped.
pub struct Tracked {
    id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        running().retain(|r| r.id != self.id);
    }
}

fn running() -> std::sync::MutexGuard<'static, Vec<Running>> {
    RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers an instance computing into `workdir` (its checkpoints in `checkpoints`), for
/// the message and the clean-up of an interrupted run.
pub fn track(label: &str, workdir: &Path, checkpoints: &Path) -> Tracked {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    running().push(Running {
        id,
        label: label.to_string(),
        workdir: workdir.to_path_buf(),
        checkpoints: checkpoints.to_path_buf(),
    });
    Tracked { id }
}

/// What an interrupted run says: one line per interrupted instance, then how to resume.
fn message(signal: &str, interrupted: &[(String, bool)], resume: &str) -> String {
    let mut out = String::new();
    if interrupted.is_empty() {
        out.push_str(&format!("{signal}: no stage was being computed\n"));
    }
    for (label, checkpoint) in interrupted {
        let kept = if *checkpoint { "; its training checkpoint is kept" } else { "" };
        out.push_str(&format!("{signal}: {label} was being computed; nothing of it is stored{kept}\n"));
    }
    out.push_str(&format!(
        "run `{resume}` again to resume: stages already computed are in the store, and training continues from its last checkpoint\n"
    ));
    out
}

/// Says what was interrupted, removes the work folders and exits with `128 + sig`.
#[cfg(unix)]
fn on_signal(sig: i32) -> ! {
    let signal = if sig == libc::SIGINT {
        "interrupted (Ctrl-C)"
    } else {
        "terminated (SIGTERM)"
    };
    let interrupted: Vec<(String, bool)> = running()
        .iter()
        .filter(|r| r.workdir.exists())
        .map(|r| {
            if let Err(e) = std::fs::remove_dir_all(&r.workdir) {
                tracing::warn!("cannot remove {}: {e}", r.workdir.display());
            }
            (r.label.clone(), r.checkpoints.exists())
        })
        .collect();
    let resume = RESUME.get().map(String::as_str).unwrap_or("ktlab run");
    eprint!("{}", message(signal, &interrupted, resume));
    // Not `exit`: other threads are still computing, and destructors must not run under them.
    // SAFETY: `_exit` ends the process; it has no preconditions.
    unsafe { libc::_exit(128 + sig) }
}

#[cfg(unix)]
mod handler {
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
    static SIGNALLED: AtomicBool = AtomicBool::new(false);

    extern "C" fn handle(sig: libc::c_int) {
        if SIGNALLED.swap(true, Ordering::SeqCst) {
            // SAFETY: `_exit` is async-signal-safe.
            unsafe { libc::_exit(128 + sig) }
        }
        let byte = sig as u8;
        // SAFETY: `write` is async-signal-safe; the pipe lives for the whole process.
        unsafe {
            libc::write(WRITE_FD.load(Ordering::SeqCst), (&byte as *const u8).cast(), 1);
        }
    }

    /// The pipe, the reading thread and the handlers for SIGINT and SIGTERM.
    pub(super) fn install() -> std::io::Result<()> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let [read_fd, write_fd] = fds;
        for fd in fds {
            // SAFETY: fcntl on descriptors just created; children must not inherit them.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        WRITE_FD.store(write_fd, Ordering::SeqCst);
        std::thread::Builder::new().name("ktlab-signals".into()).spawn(move || loop {
            let mut byte = 0u8;
            // SAFETY: reads one byte into `byte`.
            let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
            if n == 1 {
                super::on_signal(i32::from(byte));
            }
            if n == 0 {
                return;
            }
        })?;
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction with a handler that only does async-signal-safe calls.
            let rc = unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = handle as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = libc::SA_RESTART;
                libc::sigaction(sig, &sa, std::ptr::null_mut())
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// From now on, SIGINT and SIGTERM end the run with a message naming the instances being
/// computed and `resume`, the command that continues it. Once per process.
pub fn install(resume: String) {
    if RESUME.set(resume).is_err() {
        return;
    }
    #[cfg(unix)]
    if let Err(e) = handler::install() {
        tracing::warn!("cannot handle Ctrl-C: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_each_interrupted_instance_and_how_to_resume() {
        let text = message(
            "interrupted (Ctrl-C)",
            &[("f".into(), false), ("train[k=4]".into(), true)],
            "ktlab run exp.toml",
        );
        assert_eq!(
            text,
            "interrupted (Ctrl-C): f was being computed; nothing of it is stored\n\
             interrupted (Ctrl-C): train[k=4] was being computed; nothing of it is stored; its training checkpoint is kept\n\
             run `ktlab run exp.toml` again to resume: stages already computed are in the store, and training continues from its last checkpoint\n"
        );
        assert!(message("terminated (SIGTERM)", &[], "ktlab run a.toml").starts_with("terminated (SIGTERM): no stage was being computed\n"));
    }

    #[test]
    fn tracking_ends_when_dropped() {
        let a = track("a", Path::new("/nonexistent/a"), Path::new("/nonexistent/ca"));
        let b = track("b", Path::new("/nonexistent/b"), Path::new("/nonexistent/cb"));
        let labels = || running().iter().map(|r| r.label.clone()).collect::<Vec<_>>();
        assert!(labels().contains(&"a".to_string()) && labels().contains(&"b".to_string()));
        drop(a);
        assert!(!labels().contains(&"a".to_string()) && labels().contains(&"b".to_string()));
        drop(b);
    }
}
