//! `gearmand`: the Gearman job server.
//!
//! Data path: [`listener`] accepts → [`io_thread`] reads and decodes ([`connection`]) →
//! [`event::Event`] → [`processor`] applies it to the [`state::State`] → [`state::Outgoing`]
//! → the connection's writer encodes and writes.

/// The protocol version we answer as, so tools that check it keep working.
pub const PROTOCOL_VERSION: &str = "1.1.20";

pub mod acl;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod event;
pub mod fatal;
pub mod fault;
pub mod http;
pub mod io_thread;
pub mod listener;
pub mod logging;
pub mod memory;
pub mod net_range;
pub mod notify;
pub mod processor;
pub mod queue;
pub mod reactor;
pub mod server;
pub mod socket;
pub mod state;
pub mod stats;
pub mod system;
pub mod tls;
