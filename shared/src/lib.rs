//! `gearman-shared`: the Gearman wire protocol without any I/O or async runtime.
//!
//! Every binary in the workspace speaks Gearman through this crate, so the server and the
//! tools share one definition of every message:
//! - [`protocol`]: binary packets, the sans-I/O frame decoder/encoder, and the typed
//!   [`Request`](protocol::Request) / [`Response`](protocol::Response) enums;
//! - admin text lines are framed by the same decoder ([`protocol::Frame::Text`]) and
//!   understood by [`admin`]: command parsing, reply rendering/parsing, a blocking client;
//! - [`connection`] and [`tls`]: the blocking client connection, over plain TCP or TLS;
//! - `cli` (feature `cli`): what the command-line tools share (TLS options, man pages).

pub mod admin;
#[cfg(feature = "cli")]
pub mod cli;
pub mod connection;
pub mod protocol;
pub mod servers;
pub mod tls;

pub use protocol::{
    decode, encode, DecodeError, Frame, Limits, Magic, Packet, PacketType, ProtocolError, Request,
    Response,
};
