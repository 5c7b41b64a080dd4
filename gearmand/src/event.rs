//! What flows between the threads: events from I/O threads to the processing thread,
//! and outgoing frames back to a connection's writer.
//!
//! Both run on `futures`' channels: a message is a lock-free push and a wake of the one
//! receiver. async-channel, async-std's, takes a mutex shared by all senders and the
//! receiver whenever the receiver waits, which four I/O threads and the processing
//! thread contended for on every message (futex calls: ~3 per foreground job).

use async_std::channel::Sender;
use bytes::Bytes;
use futures::channel::mpsc;
use gearman_shared::protocol::{Request, Response};

use crate::state::{ConnId, JobId, Outgoing, PeerInfo};

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

/// The processing thread's inbox, bounded: readers wait while the processor lags.
pub type Events = mpsc::Sender<Event>;
/// The processing thread's end of its inbox.
pub type EventQueue = mpsc::Receiver<Event>;
/// What the processing thread sends a connection's writer, a batch at a time.
pub type Outbox = mpsc::UnboundedSender<Vec<Outgoing>>;
/// The writer's end of its outbox.
pub type Replies = mpsc::UnboundedReceiver<Vec<Outgoing>>;

/// An event for the processing thread.
#[derive(Debug)]
pub enum Event {
    /// A connection was accepted; `outbox` reaches its writer.
    Connected {
        conn: ConnId,
        info: PeerInfo,
        outbox: Outbox,
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
        jobs: Vec<JobId>,
        barriers: Vec<(ConnId, JobId)>,
        error: Option<String>,
    },
}
