//! What flows between the threads: events from I/O threads to the processing thread,
//! and outgoing frames back to a connection's writer.

use async_std::channel::Sender;
use bytes::Bytes;
use gearman_shared::protocol::{Request, Response};

use crate::state::PeerInfo;

/// Server-wide connection number, never reused while the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// One decoded unit of a connection's input, in arrival order.
#[derive(Debug)]
pub enum Incoming {
    /// A typed binary request.
    Request(Request),
    /// An admin text line.
    Admin { line: Bytes, terminator_len: usize },
    /// A packet the protocol answers with an ERROR; sent back in order with the replies.
    Reject(Response),
}

/// An event for the processing thread.
#[derive(Debug)]
pub enum Event {
    /// A connection was accepted; `outbox` reaches its writer.
    Connected {
        conn: ConnId,
        info: PeerInfo,
        outbox: Sender<Vec<Outgoing>>,
    },
    /// What one read of a connection produced.
    Input { conn: ConnId, items: Vec<Incoming> },
    /// The connection is gone (EOF, error, or closed for bad input).
    Disconnected { conn: ConnId },
    /// SIGUSR1 or `shutdown graceful`: stop accepting, exit once no job is left.
    GracefulShutdown,
    /// SIGHUP re-read the `--acl` file.
    AclReload(crate::acl::Acl),
    /// `/metrics` or `/status` asks for the statistics.
    Stats {
        reply: Sender<gearman_shared::admin::StatsReport>,
    },
    /// The store thread wrote a batch: its added jobs are durable and its deletions
    /// done, unless `error`.
    Stored {
        jobs: Vec<crate::state::JobId>,
        barriers: Vec<(ConnId, crate::state::JobId)>,
        error: Option<String>,
    },
}

/// Something to write to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A binary packet.
    Packet(Response),
    /// Admin reply bytes, terminators included.
    Text(Bytes),
    /// Close the connection after what was queued before.
    Close,
}
