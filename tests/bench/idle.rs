//! Idle connections for the `idle` scenario: many open TCP connections that sent one
//! ECHO_REQ and then nothing, held while the foreground load runs, and the file
//! descriptors they need.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use gearman_shared::protocol::{Request, Response};
use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::load::{self, Ctx};

/// What `idle` measured besides its run with the connections open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdleProfile {
    /// Idle connections held open.
    pub conns: u64,
    /// Jobs/s of the same load without them, in the same round.
    pub baseline_jobs_per_s: Option<f64>,
    /// The server's RSS growth from opening them, bytes per connection.
    pub rss_per_conn: Option<f64>,
}

/// Connections opened before their ECHO_RES are awaited: well below the listen backlog
/// (32 by default in both servers), so no connect waits for a SYN retransmission.
const BATCH: usize = 16;

/// Descriptors beyond the idle connections: the load's own connections, listeners,
/// log and pid files, with room to spare.
const FD_MARGIN: u64 = 1024;

/// How many descriptors each side needs for `conns` idle connections.
pub fn fds_needed(conns: usize) -> u64 {
    conns as u64 + FD_MARGIN
}

/// Raises this process's soft RLIMIT_NOFILE to at least `needed` (the servers inherit
/// it), failing with advice if the hard limit is lower.
pub fn raise_fd_limit(needed: u64) -> Result<()> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit(RLIMIT_NOFILE)")?;
    if hard < needed {
        bail!(
            "the idle scenario needs {needed} file descriptors, but the hard RLIMIT_NOFILE is {hard}: raise it (`ulimit -Hn`, as root) or lower --idle-conns"
        );
    }
    if soft < needed {
        setrlimit(Resource::RLIMIT_NOFILE, needed, hard)
            .with_context(|| format!("raising RLIMIT_NOFILE from {soft} to {needed}"))?;
    }
    Ok(())
}

/// Opens `count` connections, each answered one ECHO_REQ, so the server has accepted
/// and registered every one of them (a connection still in the listen backlog would
/// cost the server nothing). Returns the bare sockets: nothing more is sent on them.
pub fn open(ctx: &Ctx, count: usize) -> Result<Vec<TcpStream>> {
    let mut streams = Vec::with_capacity(count);
    while streams.len() < count {
        ctx.check()?;
        let batch = BATCH.min(count - streams.len());
        let mut conns = Vec::with_capacity(batch);
        for _ in 0..batch {
            let mut conn = ctx.connect().with_context(|| {
                format!(
                    "opening idle connection {}",
                    streams.len() + conns.len() + 1
                )
            })?;
            conn.send(Request::Echo {
                data: Bytes::from_static(b"bench-idle"),
            })?;
            conns.push(conn);
        }
        for mut conn in conns {
            match ctx.recv(&mut conn, "ECHO_RES on an idle connection")? {
                Response::Echo { .. } => {}
                other => bail!("idle connection got {other:?} instead of ECHO_RES"),
            }
            // Keep only the socket, not the connection's buffers.
            streams.push(
                conn.stream()
                    .try_clone()
                    .context("keeping an idle socket")?,
            );
        }
    }
    Ok(streams)
}

/// Waits until the server lists at most `at_most` connections (the closed idle ones are
/// gone), for at most `ctx.io_timeout`. Returns the last count if it never got there.
pub fn wait_closed(ctx: &Ctx, at_most: u64) -> Result<Option<u64>> {
    let limit = Instant::now() + ctx.io_timeout;
    loop {
        let count = load::connection_count(ctx)?;
        if count <= at_most {
            return Ok(None);
        }
        if Instant::now() >= limit {
            return Ok(Some(count));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
