//! `gearmand`: the Gearman job server.
//!
//! Data path: [`listener`] accepts → [`io_thread`] reads and decodes ([`connection`]) →
//! [`event::Event`] → [`processor`] applies it to the [`state::State`] → [`state::Outgoing`]
//! → the connection's writer encodes and writes.
//!
//! Only what the binary and the fuzz target (gearmand/fuzz) use is `pub`; the rest is
//! `pub(crate)`, so the compiler reports what nothing uses.

// The docs are for this crate's maintainers (`cargo doc --document-private-items`), and
// link to the crate-private modules freely.
#![allow(rustdoc::private_intra_doc_links)]

/// The protocol version we answer as, so tools that check it keep working.
pub const PROTOCOL_VERSION: &str = "1.1.20";

pub(crate) mod acl;
pub mod cli;
pub(crate) mod clock;
pub mod config;
pub(crate) mod connection;
pub(crate) mod event;
pub mod fatal;
pub(crate) mod fault;
pub mod http;
pub(crate) mod io_thread;
pub(crate) mod listener;
pub(crate) mod logging;
pub(crate) mod memory;
pub(crate) mod net_range;
pub(crate) mod notify;
pub(crate) mod processor;
pub(crate) mod queue;
pub(crate) mod reactor;
pub mod server;
pub(crate) mod socket;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod system;
pub(crate) mod tls;
