//! `-d` and `-i`: detach from the terminal, and keep a pidfile for the life of the process.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Detaches as the C tool's `-d` does: daemon(3) forks (the original process exits 0
/// there and then), starts a new session and points stdin, stdout and stderr at
/// /dev/null. The working directory is kept, so relative paths (`-i`, the command) still
/// work.
///
/// Must be called before any thread is started: only the calling thread survives a fork.
pub fn daemonize() -> Result<(), Error> {
    nix::unistd::daemon(true, false).map_err(|errno| Error::Daemon(io::Error::from(errno)))
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
