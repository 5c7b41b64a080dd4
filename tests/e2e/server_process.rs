//! A server process started by a test (ours or the C gearmand), its output going to a log
//! file: signals, bounded waits for its exit, and a kill when the test is done, showing the
//! log's tail when the test failed. The servers' starters (`harness::Server` and the
//! special-purpose ones of `security`, `persistence` and `operations`) build on it.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How much of the log a failed test shows.
const TAIL: usize = 8000;

pub struct ServerProcess {
    child: Child,
    log: PathBuf,
    /// Said in messages: the command line.
    what: String,
    stopped: bool,
}

impl ServerProcess {
    /// Spawns `cmd` with stdin closed and stdout and stderr appended to `log`.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> ServerProcess {
        let what = format!("{cmd:?}");
        let file = fs::File::create(&log)
            .unwrap_or_else(|e| panic!("create the log file {}: {e}", log.display()));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("duplicate the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
        ServerProcess {
            child,
            log,
            what,
            stopped: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process has written so far.
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Whether the process has exited (and how).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends a signal (`TERM`, `USR1`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} {} failed", self.pid());
    }

    /// Waits at most `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {limit:?}\n--- log:\n{}",
                self.what,
                tail(&self.log())
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, sent directly (no helper process), and reaped.
    pub fn sigkill(&mut self, limit: Duration) {
        self.child.kill().expect("SIGKILL the server");
        self.wait_exit(limit);
    }

    /// Asserts the process is still running: a crash must not pass as "connection closed".
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.exit_status() {
            panic!("server died with {status}\n--- log:\n{}", self.log());
        }
    }

    /// Kills the process and, when the test is failing, prints the log's tail under
    /// `label`. Done once; dropping does it too.
    pub fn stop(&mut self, label: &str) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "--- {label} log ({}):\n{}",
                self.log.display(),
                tail(&self.log())
            );
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop("server");
    }
}

/// The last [`TAIL`] bytes of `log`, cut at a character boundary.
pub fn tail(log: &str) -> &str {
    let start = log.len().saturating_sub(TAIL);
    let start = (start..log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(log.len());
    &log[start..]
}
