//! Files and folders created with the permissions the user's umask allows (a colleague on
//! a shared cluster can read results and store entries under umask 022), not the 0600 and
//! 0700 of a bare temporary file or folder, and files replaced atomically.
use std::path::{Path, PathBuf};

/// `rw-rw-rw-` and `rwxrwxrwx` before the umask, as `File::create` and `create_dir` use.
#[cfg(unix)]
fn mode(dir: bool) -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(if dir { 0o777 } else { 0o666 })
}

fn builder<'a>(dir: bool) -> tempfile::Builder<'a, 'a> {
    let mut b = tempfile::Builder::new();
    #[cfg(unix)]
    b.permissions(mode(dir));
    #[cfg(not(unix))]
    let _ = dir;
    b
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so
/// that readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = builder(false).tempfile_in(dir)?;
    std::fs::write(tmp.path(), bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A new folder under `parent` named `<prefix><random>`, kept (not removed on drop).
pub fn new_folder(parent: &Path, prefix: &str) -> std::io::Result<PathBuf> {
    Ok(builder(true).prefix(prefix).tempdir_in(parent)?.keep())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn permissions_follow_the_umask_not_tempfiles_private_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        write_atomic(&file, b"x").unwrap();
        let folder = new_folder(dir.path(), "f.").unwrap();
        // Whatever the umask, group and others get what it allows: at least as much as
        // a plain File::create / create_dir gives.
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, b"x").unwrap();
        let plain_dir = dir.path().join("plain");
        std::fs::create_dir(&plain_dir).unwrap();
        let m = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(m(&file), m(&plain));
        assert_eq!(m(&folder), m(&plain_dir));
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }
}
