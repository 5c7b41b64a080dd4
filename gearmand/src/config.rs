//! Validated server configuration, built from the command line.

use std::path::PathBuf;

use bytes::Bytes;
use gearman_shared::protocol::Limits;

use crate::cli::{Cli, VERBOSE_LEVELS};
use crate::state::StateConfig;

/// The protocol version we answer as, so tools that check it keep working.
pub const PROTOCOL_VERSION: &str = "1.1.20";

/// The C server's default pid file; failing to write it is not an error.
const DEFAULT_PID_FILE: &str = "/var/gearmand.pid";

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// `-l none`.
    None,
    /// `-l stderr`.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

/// How the work is spread over threads (`-t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadModel {
    /// `-t 0`: one thread listens, does I/O and processes.
    Single,
    /// `-t 1`: a listener thread and one I/O thread that also processes.
    OneIo,
    /// `-t N≥2`: a listener thread, N I/O threads and a processing thread.
    Pool(usize),
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `-L`: address to bind; `None` binds every address.
    pub listen: Option<String>,
    /// `-p`.
    pub port: u16,
    /// `-b`.
    pub backlog: i32,
    /// `-t`.
    pub threads: ThreadModel,
    /// Job-model options.
    pub state: StateConfig,
    /// `-l`.
    pub log: LogTarget,
    /// Whether `-l` was left at its default (then an unwritable file falls back to stderr).
    pub log_is_default: bool,
    /// `--verbose` as a tracing level.
    pub verbose: tracing::Level,
    /// The `--verbose` name, as the `verbose` admin command reports it.
    pub verbose_name: String,
    /// `-P`, and whether it is the default (whose failure is ignored).
    pub pid_file: PathBuf,
    /// Whether `-P` was left at its default.
    pub pid_file_is_default: bool,
    /// Decoder limits.
    pub limits: Limits,
    /// Bytes queued for one connection before it is dropped as not reading.
    pub max_outbox: usize,
}

/// A configuration problem, reported as `gearmand: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--verbose` with an unknown level.
    #[error("Invalid value for --verbose supplied")]
    Verbose,
}

impl Config {
    /// Validates the parsed command line.
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let Some(rank) = VERBOSE_LEVELS.iter().position(|l| *l == cli.verbose) else {
            return Err(ConfigError::Verbose);
        };
        let verbose = match rank {
            0..=3 => tracing::Level::ERROR,
            4 => tracing::Level::WARN,
            5 | 6 => tracing::Level::INFO,
            _ => tracing::Level::DEBUG,
        };
        let log = match cli.log_file.as_str() {
            "none" => LogTarget::None,
            "stderr" => LogTarget::Stderr,
            path => LogTarget::File(PathBuf::from(path)),
        };
        let threads = match cli.threads {
            0 => ThreadModel::Single,
            1 => ThreadModel::OneIo,
            n => ThreadModel::Pool(n as usize),
        };
        let handle_prefix = cli
            .job_handle_prefix
            .clone()
            .unwrap_or_else(|| format!("H:{}", gethostname::gethostname().to_string_lossy()));
        let limits = Limits::default();
        Ok(Config {
            listen: cli.listen.clone(),
            port: cli.port,
            backlog: cli.backlog,
            threads,
            state: StateConfig {
                handle_prefix: Bytes::from(handle_prefix),
                job_retries: cli.job_retries,
                worker_wakeup: cli.worker_wakeup,
                round_robin: cli.round_robin,
                exceptions: cli.exceptions,
            },
            log_is_default: cli.log_file == "/var/log/gearmand.log",
            log,
            verbose,
            verbose_name: cli.verbose.clone(),
            pid_file_is_default: cli.pid_file.is_none(),
            pid_file: cli
                .pid_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_PID_FILE)),
            max_outbox: 2 * limits.max_packet_size,
            limits,
        })
    }
}
