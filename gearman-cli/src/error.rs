//! Why a `gearman` run fails. Each error prints as one line (`gearman: <error>`) and makes
//! the process exit 1, where the C tool often printed a line and exited 0.

use std::io;
use std::path::PathBuf;

use crate::servers::ServerListError;

/// A failure that ends the run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every server in the list refused or timed out (`reasons` has one entry per server).
    #[error("cannot connect to {}", .reasons.join("; "))]
    Connect {
        /// `host:port: reason` for each server tried.
        reasons: Vec<String>,
    },
    /// Nothing arrived within `-t` milliseconds.
    #[error("timed out after {ms} ms waiting for job server {server}")]
    Timeout {
        /// The server (or servers) we waited for.
        server: String,
        /// The `-t` value.
        ms: u128,
    },
    /// Worker `-t`: no job arrived for that long.
    #[error("no job within {ms} ms from job server {servers}")]
    Idle {
        /// The servers served, comma-separated.
        servers: String,
        /// The `-t` value.
        ms: u128,
    },
    /// The connection broke and the job cannot be moved to another server.
    #[error("lost connection to job server {server}: {reason}")]
    Lost {
        /// The server whose connection broke.
        server: String,
        /// What the socket said.
        reason: String,
    },
    /// The server answered with an ERROR packet (e.g. `QUEUE_ERROR Job queue is full`).
    #[error("job server {server}: {code} {text}")]
    Server {
        /// The server that sent it.
        server: String,
        /// The ERROR code, printable.
        code: String,
        /// The ERROR text, printable.
        text: String,
    },
    /// The server sent something that makes no sense at this point.
    #[error("job server {server} sent an unexpected reply: {what}")]
    Protocol {
        /// The server that sent it.
        server: String,
        /// What arrived.
        what: String,
    },
    /// `-S`: the TLS files cannot be used (no CA file, unreadable PEM, bad key).
    #[error("TLS (-S): {0}")]
    Tls(#[from] gearman_shared::tls::TlsError),
    /// An `--ssl-*` option without `-S`.
    #[error("{0} needs -S")]
    TlsOptionWithoutS(&'static str),
    /// A numeric option that is not a number.
    #[error("invalid {option} value '{value}'")]
    InvalidNumber {
        /// The option letter with its dash, e.g. `-t`.
        option: &'static str,
        /// What was given.
        value: String,
    },
    /// A bad `-h`, `-p` or `GEARMAN_SERVER`.
    #[error(transparent)]
    Servers(#[from] ServerListError),
    /// Standard input could not be read.
    #[error("cannot read standard input: {0}")]
    Stdin(#[source] io::Error),
    /// Standard output or standard error could not be written.
    #[error("cannot write output: {0}")]
    Output(#[source] io::Error),
    /// `-i` could not be written.
    #[error("cannot write pidfile {}: {source}", .path.display())]
    Pidfile {
        /// The `-i` path.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// `-d` failed (fork, setsid or /dev/null).
    #[error("cannot daemonize: {0}")]
    Daemon(#[source] io::Error),
    /// A worker thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Thread(#[source] io::Error),
}

/// Printable form of bytes from the network: no control characters, so a message stays on
/// one line.
pub fn printable(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}
