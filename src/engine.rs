//! The two builds of the command line. `ktlab-engine` links libtorch and runs every command
//! itself. `ktlab` (cli/, built without the `torch` feature) starts without libtorch: it
//! plans, reports and manages the store itself and hands the commands that compute (`run`,
//! `verify`, `exec-stage`, `kmeans`) to the engine beside it, with the same arguments.
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The engine's file name, next to the front end's.
pub const ENGINE_NAME: &str = "ktlab-engine";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("this command computes, and the engine that computes is missing: {} (build it with `make build`, or set KTLAB_ENGINE)", .0.display())]
    Missing(PathBuf),
    #[error("cannot start {}", path.display())]
    Start {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the engine is: `KTLAB_ENGINE` when set, else `ktlab-engine` beside this binary.
pub fn engine_path() -> Result<PathBuf, EngineError> {
    if let Some(p) = std::env::var_os("KTLAB_ENGINE") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|source| EngineError::Start {
        path: PathBuf::from(ENGINE_NAME),
        source,
    })?;
    Ok(exe.with_file_name(ENGINE_NAME))
}

fn engine() -> Result<(PathBuf, Command), EngineError> {
    let path = engine_path()?;
    if !path.is_file() {
        return Err(EngineError::Missing(path));
    }
    let cmd = Command::new(&path);
    Ok((path, cmd))
}

/// Runs this process's command line in the engine: on Unix the engine replaces this
/// process (same arguments, environment, terminal, signals and exit code).
pub fn hand_over() -> Result<ExitCode, EngineError> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (path, mut cmd) = engine()?;
    cmd.args(&args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let source = cmd.exec();
        Err(EngineError::Start { path, source })
    }
    #[cfg(not(unix))]
    {
        let status = cmd.status().map_err(|source| EngineError::Start { path, source })?;
        Ok(ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8))
    }
}

/// The number of CUDA devices libtorch offers, as the engine reports it (`None` when it
/// cannot be asked).
pub fn cuda_device_count() -> Option<usize> {
    let (_, mut cmd) = engine().ok()?;
    let out = cmd.arg("cuda-devices").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}
