//! Log output: levels from `--verbose`, lines to a file or stderr (and syslog with
//! `--syslog`), written by background threads so no server thread blocks on a disk or
//! socket. The log file is reopened on SIGHUP, for logrotate.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::{Config, LogTarget};

/// The installed logger; dropping it flushes what is still queued.
pub struct Logger {
    file: Option<Arc<LogFile>>,
}

/// The logging threads' guards: dropping one writes out what its thread still holds.
/// Global rather than in [`Logger`] so that the panic hook can flush before the process
/// exits (see [`flush`]).
static GUARDS: Mutex<Vec<WorkerGuard>> = Mutex::new(Vec::new());

/// Whether the log goes to stderr, so that a fatal message is not printed there twice.
static LOGS_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Writes out every queued log line (waiting a bounded time for the logging threads);
/// nothing is logged after this.
pub fn flush() {
    // `try_lock`: a panic while the lock is held must not deadlock the exit.
    let guards = match GUARDS.try_lock() {
        Ok(mut guards) => std::mem::take(&mut *guards),
        Err(_) => Vec::new(),
    };
    drop(guards);
}

/// Whether the log already goes to stderr.
pub fn logs_to_stderr() -> bool {
    LOGS_TO_STDERR.load(Ordering::Relaxed)
}

impl Drop for Logger {
    fn drop(&mut self) {
        flush();
    }
}

impl Logger {
    /// Reopens the log file (after logrotate moved it away).
    pub fn reopen(&self) {
        if let Some(file) = &self.file {
            match file.reopen() {
                Ok(()) => tracing::info!(path = %file.path.display(), "log file reopened"),
                Err(e) => eprintln!("gearmand: cannot reopen {}: {e}", file.path.display()),
            }
        }
    }
}

/// Installs the global logger.
pub fn init(config: &Config) -> anyhow::Result<Logger> {
    let level = LevelFilter::from_level(config.verbose);
    let mut guards = Vec::new();
    let mut file = None;
    let main = match &config.log {
        LogTarget::None => None,
        LogTarget::Stderr => {
            LOGS_TO_STDERR.store(true, Ordering::Relaxed);
            Some(tracing_appender::non_blocking(io::stderr()))
        }
        LogTarget::File(path) => match LogFile::open(path) {
            Ok(f) => {
                let f = Arc::new(f);
                file = Some(Arc::clone(&f));
                Some(tracing_appender::non_blocking(SharedFile(f)))
            }
            Err(e) if config.log_is_default => {
                eprintln!(
                    "gearmand: cannot open {} ({e}); logging to stderr",
                    path.display()
                );
                LOGS_TO_STDERR.store(true, Ordering::Relaxed);
                Some(tracing_appender::non_blocking(io::stderr()))
            }
            Err(e) => anyhow::bail!("Could not open log file {}: {e}", path.display()),
        },
    };
    let main_layer = main.map(|(writer, guard)| {
        guards.push(guard);
        tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_thread_names(true)
            .with_target(false)
            .with_filter(level)
    });
    let syslog_layer = if config.syslog {
        match Syslog::connect() {
            Ok(sink) => {
                let (writer, guard) = tracing_appender::non_blocking(sink);
                guards.push(guard);
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(writer)
                        .with_ansi(false)
                        .without_time()
                        .with_target(false)
                        .with_filter(level),
                )
            }
            Err(e) => {
                eprintln!("gearmand: cannot reach syslog at /dev/log: {e}");
                None
            }
        }
    } else {
        None
    };
    tracing_subscriber::registry()
        .with(main_layer)
        .with(syslog_layer)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    if let Ok(mut kept) = GUARDS.lock() {
        kept.extend(guards);
    }
    Ok(Logger { file })
}

/// An append-mode log file that can be swapped for a fresh one.
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    fn open(path: &Path) -> io::Result<LogFile> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(Self::open_file(path)?),
        })
    }

    fn open_file(path: &Path) -> io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }

    fn reopen(&self) -> io::Result<()> {
        let fresh = Self::open_file(&self.path)?;
        let mut file = self
            .file
            .lock()
            .map_err(|_| io::Error::other("log lock poisoned"))?;
        *file = fresh;
        Ok(())
    }
}

/// The writer handed to the logging thread.
struct SharedFile(Arc<LogFile>);

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = self
            .0
            .file
            .lock()
            .map_err(|_| io::Error::other("log lock poisoned"))?;
        file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut file = self
            .0
            .file
            .lock()
            .map_err(|_| io::Error::other("log lock poisoned"))?;
        file.flush()
    }
}

/// The local syslog daemon's socket.
const SYSLOG_SOCKET: &str = "/dev/log";

/// Sends each formatted line to the local syslog daemon as one datagram. When the daemon
/// restarts, its socket is a new one at the same path: a failed send connects again and
/// retries once, so the log does not go silent for good.
struct Syslog {
    socket: UnixDatagram,
    path: PathBuf,
    pid: u32,
}

impl Syslog {
    fn connect() -> io::Result<Syslog> {
        Syslog::connect_to(Path::new(SYSLOG_SOCKET))
    }

    fn connect_to(path: &Path) -> io::Result<Syslog> {
        Ok(Syslog {
            socket: Syslog::open(path)?,
            path: path.to_path_buf(),
            pid: std::process::id(),
        })
    }

    fn open(path: &Path) -> io::Result<UnixDatagram> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(socket)
    }

    /// Sends one message; after a failure, once more on a fresh connection.
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        if self.socket.send(message).is_ok() {
            return Ok(());
        }
        self.socket = Syslog::open(&self.path)?;
        self.socket.send(message).map(drop)
    }
}

/// Facility daemon (3), severity from the level word the formatter puts first.
fn syslog_priority(line: &str) -> u8 {
    let severity = match line.split_whitespace().next() {
        Some("ERROR") => 3,
        Some("WARN") => 4,
        Some("INFO") => 6,
        _ => 7,
    };
    3 * 8 + severity
}

impl Write for Syslog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        let line = line.trim_end();
        let message = format!(
            "<{}>gearmand[{}]: {}",
            syslog_priority(line),
            self.pid,
            line
        );
        // A full or missing syslog must not stop the logging thread.
        let _ = self.send(message.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A syslog daemon that restarts (a new socket at the same path) gets the lines
    /// written after its restart.
    #[test]
    fn syslog_reconnects_after_the_daemon_restarts() {
        let dir = std::env::temp_dir().join(format!("gearmand-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let path = dir.join("log");
        let daemon = UnixDatagram::bind(&path).expect("bind the first daemon");
        let mut sink = Syslog::connect_to(&path).expect("connect");
        sink.write_all(b" INFO gearmand-main first\n")
            .expect("write");
        let mut buf = [0u8; 256];
        let n = daemon.recv(&mut buf).expect("first line");
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("first"));
        drop(daemon);
        std::fs::remove_file(&path).expect("the old socket goes");
        let restarted = UnixDatagram::bind(&path).expect("bind the restarted daemon");
        restarted
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        sink.write_all(b" WARN gearmand-main second\n")
            .expect("write");
        let n = restarted
            .recv(&mut buf)
            .expect("the line after the restart");
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            line.starts_with("<28>gearmand[") && line.ends_with("second"),
            "{line}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn syslog_priorities() {
        assert_eq!(syslog_priority(" ERROR gearmand-proc boom"), 27);
        assert_eq!(syslog_priority("  INFO x"), 30);
        assert_eq!(syslog_priority("DEBUG x"), 31);
    }
}
