//! The admin text protocol (`status`, `workers`, `cancel job H`, …) spoken on the Gearman port.
//!
//! Shared by both ends so they agree byte for byte with gearmand 1.1.20:
//! - [`command`]: the server's tokenizer and command table, turning one text line into an
//!   [`AdminCommand`] or a fixed error reply;
//! - [`reply`]: typed reply lines with exact rendering (server) and parsing (tools);
//! - [`client`]: a blocking [`AdminClient`] for gearadmin, gearman-tui and tests.

pub mod client;
pub mod command;
pub mod reply;
pub mod stats;

pub use client::{AdminClient, AdminError};
pub use command::{parse, AdminCommand, Parsed, MAX_TOKENS};
pub use reply::{
    ErrorReply, FunctionPriorityStatus, FunctionStatus, JobInfo, Reply, ReplyError, ReplyShape,
    UniqueJob, WorkerInfo,
};
pub use stats::{FunctionStats, ServerStats, StatsReport};
