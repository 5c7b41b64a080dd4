//! Log output: levels from `--verbose`, lines to a file or stderr, written by a
//! background thread so no server thread blocks on the disk.

use std::fs::OpenOptions;

use tracing_appender::non_blocking::WorkerGuard;

use crate::config::{Config, LogTarget};

/// Installs the global logger. Keep the guard alive: dropping it flushes the log.
pub fn init(config: &Config) -> anyhow::Result<Option<WorkerGuard>> {
    let (writer, guard) = match &config.log {
        LogTarget::None => return Ok(None),
        LogTarget::Stderr => tracing_appender::non_blocking(std::io::stderr()),
        LogTarget::File(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => tracing_appender::non_blocking(file),
            Err(e) if config.log_is_default => {
                eprintln!(
                    "gearmand: cannot open {} ({e}); logging to stderr",
                    path.display()
                );
                tracing_appender::non_blocking(std::io::stderr())
            }
            Err(e) => anyhow::bail!("Could not open log file {}: {e}", path.display()),
        },
    };
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(config.verbose)
        .with_ansi(false)
        .with_thread_names(true)
        .with_target(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(Some(guard))
}
