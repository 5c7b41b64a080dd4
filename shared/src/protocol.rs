//! The Gearman binary protocol: packet types, framing, and the typed messages built on them.
//!
//! The data path reads `bytes → Frame → Request` on the server and `Response → Packet → bytes`
//! on the way back; clients use the same types in the other direction.

mod codec;
mod number;
mod packet;
mod request;
mod response;

pub use codec::{
    decode, encode, encode_text, DecodeError, Frame, Limits, DEFAULT_MAX_PACKET_SIZE,
    DEFAULT_MAX_TEXT_LINE,
};
pub use number::{parse_i64_prefix, parse_u32_lenient};
pub use packet::{Magic, Packet, PacketType, HEADER_LEN};
pub use request::{GrabKind, JobMode, Priority, Request, SubmitJob};
pub use response::{ErrorCode, Response};

/// A packet that is well framed but does not make a valid message of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The payload lacks a NUL separator that its type requires.
    #[error("{kind:?} needs {expected} NUL-separated arguments")]
    MissingArguments { kind: PacketType, expected: usize },
    /// The packet type is valid but never travels in this direction.
    #[error("{0:?} is not expected in this direction")]
    UnexpectedType(PacketType),
    /// The packet carries the magic of the other direction.
    #[error("packet has the wrong magic for this direction")]
    WrongMagic,
}
