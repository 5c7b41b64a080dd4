//! `-d` and `-i`: detach from the terminal, and keep a pidfile for the life of the process.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Which side of the fork this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    /// The original process: it should exit 0 at once.
    Parent,
    /// The daemon: in its own session, with stdin, stdout and stderr on /dev/null.
    Child,
}

/// Forks; the child starts a new session and points stdio at /dev/null (as the C tool's
/// `-d`). The working directory is kept, so relative paths (`-i`, the command) still work.
///
/// Must be called before any thread is started.
#[allow(unsafe_code)]
pub fn daemonize() -> Result<Fork, Error> {
    // SAFETY: `run` calls this before it starts any thread, so the child is a complete
    // single-threaded copy of the process and may keep running ordinary Rust code (no lock
    // can be held by a thread that does not exist in the child).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => return Err(Error::Daemon(io::Error::last_os_error())),
        0 => {}
        _ => return Ok(Fork::Parent),
    }
    // SAFETY: setsid takes no arguments and touches no memory of ours.
    if unsafe { libc::setsid() } == -1 {
        return Err(Error::Daemon(io::Error::last_os_error()));
    }
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(Error::Daemon)?;
    for fd in 0..=2 {
        // SAFETY: `null` stays open for the whole loop, so its descriptor is valid; dup2
        // atomically replaces descriptor 0, 1 or 2, which std's stdio handles refer to by
        // number only, so no Rust object is left pointing at a closed file.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } == -1 {
            return Err(Error::Daemon(io::Error::last_os_error()));
        }
    }
    Ok(Fork::Child)
}

/// A pidfile holding this process's id; removed when dropped.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    /// Writes `<pid>\n` to `path`.
    pub fn create(path: &Path) -> Result<Pidfile, Error> {
        fs::write(path, format!("{}\n", std::process::id())).map_err(|source| Error::Pidfile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Pidfile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_lives_as_long_as_the_guard() {
        let path = std::env::temp_dir().join(format!("gearman-cli-pid-{}", std::process::id()));
        let guard = Pidfile::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text, format!("{}\n", std::process::id()));
        drop(guard);
        assert!(!path.exists());
        let bad = Path::new("/nonexistent-dir/x.pid");
        assert!(matches!(Pidfile::create(bad), Err(Error::Pidfile { .. })));
    }
}
