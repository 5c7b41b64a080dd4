//! `gearman`: the Gearman command-line client and worker, a drop-in for the C tool of
//! gearmand 1.1.20 (shared/docs/protocol.md §9.1), with its known faults fixed
//! (see [`cli::DIFFERENCES`]).
//!
//! - [`cli`]: the flags, the usage text, the clap definition for the man page;
//! - [`config`]: the validated settings; [`servers`]: host lists;
//! - [`client`] and [`worker`]: the two modes, over [`link`] connections;
//! - [`lines`], [`unique`], [`daemon`]: small helpers.

pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod error;
pub mod lines;
pub mod link;
pub mod servers;
pub mod unique;
pub mod worker;

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};

pub use error::Error;

use cli::Parsed;
use config::{Config, Mode};
use daemon::Pidfile;

/// How a run ended, short of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: a job failed, or the command line was wrong.
    Failed,
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failed => 1,
        }
    }
}

/// Runs `gearman` with `argv` (program name first); `gearman_server` is the value of the
/// `GEARMAN_SERVER` environment variable.
pub fn run<I, T>(argv: I, gearman_server: Option<&OsStr>) -> Result<Outcome, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args = match cli::parse(argv) {
        Parsed::Run(args) => args,
        Parsed::Usage(usage) => {
            let written = if usage.to_stdout {
                io::stdout().write_all(usage.text.as_bytes())
            } else {
                io::stderr().write_all(usage.text.as_bytes())
            };
            written.map_err(Error::Output)?;
            return Ok(if usage.success {
                Outcome::Success
            } else {
                Outcome::Failed
            });
        }
    };
    let config = Config::from_args(&args, gearman_server)?;
    if config.daemon {
        daemon::daemonize()?;
    }
    let _pidfile = config.pidfile.as_deref().map(Pidfile::create).transpose()?;
    match &config.mode {
        Mode::Client(opts) => {
            let stdin = io::stdin();
            let mut input = stdin.lock();
            client::run(
                &config,
                opts,
                &mut input,
                &mut io::stdout(),
                &mut io::stderr(),
            )
        }
        Mode::Worker(opts) => worker::run(&config, opts),
    }
}
