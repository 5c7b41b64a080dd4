//! The one enum that flows into the UI loop (keys, resizes, snapshots, poll errors, action
//! results, ticks) and the operator actions that flow out to the pollers.

use std::fmt;
use std::time::Instant;

use crossterm::event::KeyEvent;

use crate::snapshot::Snapshot;

/// Everything the UI loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal was resized.
    Resize,
    /// A server answered a poll.
    Snapshot {
        /// Index of the server (order given on the command line).
        server: usize,
        /// What it answered.
        snapshot: Box<Snapshot>,
    },
    /// A server did not answer a poll.
    PollError {
        /// Index of the server.
        server: usize,
        /// When the poll failed.
        at: Instant,
        /// Why, for the operator.
        error: String,
    },
    /// An operator action finished.
    ActionDone {
        /// Index of the server.
        server: usize,
        /// What was asked.
        action: Action,
        /// `Err` holds the reason for the operator.
        result: Result<(), String>,
    },
    /// Nothing happened for a while: redraw ages and clocks.
    Tick,
}

/// An operator action, sent to one server's poller after confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `cancel job HANDLE`.
    CancelJob(String),
    /// `drop function NAME`.
    DropFunction(String),
    /// `shutdown graceful`.
    Shutdown,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CancelJob(handle) => write!(f, "cancel job {handle}"),
            Action::DropFunction(name) => write!(f, "drop function {name}"),
            Action::Shutdown => f.write_str("shutdown graceful"),
        }
    }
}
