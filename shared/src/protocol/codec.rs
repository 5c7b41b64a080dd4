//! Sans-I/O framing: bytes in, [`Frame`]s out, and packets back to bytes.
//!
//! A connection's stream mixes binary packets (first byte `\0`) and admin text lines
//! (any other first byte). [`decode`] never touches a socket: it looks at a buffer,
//! returns `Ok(None)` when it needs more bytes, and checks every size against
//! [`Limits`] before it reserves or copies anything.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::packet::{payload_len, Magic, Packet, PacketType, HEADER_LEN};

/// Default largest payload accepted in one packet: 64 MiB. The C server has no limit;
/// we keep one so a single size field cannot make us reserve gigabytes.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 64 * 1024 * 1024;

/// Default largest admin text line, terminator included: the C server's 8192-byte buffer.
pub const DEFAULT_MAX_TEXT_LINE: usize = 8192;

/// Size limits the decoder enforces before allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted payload of a binary packet, in bytes.
    pub max_packet_size: usize,
    /// Largest accepted admin text line, terminator included.
    pub max_text_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            max_text_line: DEFAULT_MAX_TEXT_LINE,
        }
    }
}

/// One unit of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A binary packet, its payload split into arguments.
    Packet(Packet),
    /// An admin text line without its terminator.
    Text {
        /// The line, without `\n` and without one `\r` before it.
        line: Bytes,
        /// How many terminator bytes the line had: 1 for `\n`, 2 for `\r\n`.
        terminator_len: usize,
    },
}

/// Input that cannot be framed: the connection that sent it must be closed, because
/// nothing after it can be trusted to start on a frame boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The magic is neither `\0REQ` nor `\0RES`.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// The packet type number is 0 or above 42.
    #[error("unknown packet type {0}")]
    UnknownType(u32),
    /// The size field is over the configured limit.
    #[error("packet payload of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// A required NUL separator is missing inside the declared payload.
    #[error("{0:?} payload lacks a required NUL separator")]
    MissingSeparator(PacketType),
    /// A text line grew past the limit without a newline.
    #[error("admin text line longer than {0} bytes")]
    LineTooLong(usize),
}

/// Takes one frame off the front of `buf`, or returns `Ok(None)` if `buf` holds only
/// part of one (the bytes stay in `buf` for the next call).
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, DecodeError> {
    match buf.first() {
        None => Ok(None),
        Some(0) => decode_packet(buf, limits),
        Some(_) => decode_text(buf, limits),
    }
}

fn decode_packet(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut magic_bytes = [0u8; 4];
    magic_bytes.copy_from_slice(&buf[..4]);
    let magic = Magic::from_bytes(&magic_bytes).ok_or(DecodeError::BadMagic(magic_bytes))?;
    let number = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let kind = PacketType::from_u32(number).ok_or(DecodeError::UnknownType(number))?;
    let size = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
    if size > limits.max_packet_size {
        return Err(DecodeError::TooLarge {
            size,
            limit: limits.max_packet_size,
        });
    }
    if buf.len() < HEADER_LEN + size {
        // Reserve only what this (size-checked) packet still needs.
        buf.reserve(HEADER_LEN + size - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let payload = buf.split_to(size).freeze();
    let args = Packet::split(kind, payload).ok_or(DecodeError::MissingSeparator(kind))?;
    Ok(Some(Frame::Packet(Packet { magic, kind, args })))
}

fn decode_text(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, DecodeError> {
    let window = &buf[..buf.len().min(limits.max_text_line)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= limits.max_text_line {
            return Err(DecodeError::LineTooLong(limits.max_text_line));
        }
        return Ok(None);
    };
    let mut line = buf.split_to(newline + 1).freeze();
    line.truncate(newline);
    let mut terminator_len = 1;
    if line.last() == Some(&b'\r') {
        line.truncate(newline - 1);
        terminator_len = 2;
    }
    Ok(Some(Frame::Text {
        line,
        terminator_len,
    }))
}

/// Appends `packet` to `buf` in wire format: header, then the arguments joined by NULs.
pub fn encode(packet: &Packet, buf: &mut BytesMut) {
    encode_args(packet.magic, packet.kind, &packet.args, buf);
}

/// Appends the packet made of these parts to `buf`, as [`encode`] does for a [`Packet`].
pub fn encode_args(magic: Magic, kind: PacketType, args: &[Bytes], buf: &mut BytesMut) {
    let len = payload_len(args);
    buf.reserve(HEADER_LEN + len);
    buf.put_slice(magic.bytes());
    buf.put_u32(kind.as_u32());
    // The payload length is bounded by what a peer could send us or what we built,
    // both far below 4 GiB; saturate rather than wrap if that ever stops being true.
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            buf.put_u8(0);
        }
        buf.put_slice(arg);
    }
}

/// Appends an admin text line (its terminator included by the caller) to `buf`.
pub fn encode_text(text: &[u8], buf: &mut BytesMut) {
    buf.put_slice(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit() -> Packet {
        Packet::new(
            Magic::Req,
            PacketType::SubmitJob,
            vec![
                "reverse".into(),
                "u-1".into(),
                Bytes::from_static(b"he\0llo"),
            ],
        )
    }

    fn wire(p: &Packet) -> BytesMut {
        let mut buf = BytesMut::new();
        encode(p, &mut buf);
        buf
    }

    #[test]
    fn round_trip() {
        let p = submit();
        let mut buf = wire(&p);
        assert_eq!(&buf[..4], b"\0REQ");
        assert_eq!(
            decode(&mut buf, &Limits::default()),
            Ok(Some(Frame::Packet(p)))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn every_split_point_needs_more_bytes() {
        let full = wire(&submit());
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert_eq!(
                decode(&mut part, &Limits::default()),
                Ok(None),
                "cut at {cut}"
            );
            assert_eq!(part.len(), cut, "nothing consumed at {cut}");
        }
    }

    #[test]
    fn several_frames_in_one_buffer() {
        let mut buf = wire(&submit());
        buf.extend_from_slice(b"status\r\nversion\n");
        buf.extend_from_slice(&wire(&submit()));
        let limits = Limits::default();
        assert!(matches!(
            decode(&mut buf, &limits),
            Ok(Some(Frame::Packet(_)))
        ));
        assert_eq!(
            decode(&mut buf, &limits),
            Ok(Some(Frame::Text {
                line: "status".into(),
                terminator_len: 2
            }))
        );
        assert_eq!(
            decode(&mut buf, &limits),
            Ok(Some(Frame::Text {
                line: "version".into(),
                terminator_len: 1
            }))
        );
        assert!(matches!(
            decode(&mut buf, &limits),
            Ok(Some(Frame::Packet(_)))
        ));
        assert_eq!(decode(&mut buf, &limits), Ok(None));
    }

    #[test]
    fn oversized_size_field_is_rejected_before_allocation() {
        let mut buf = BytesMut::from(&b"\0REQ\0\0\0\x10\xff\xff\xff\xff"[..]);
        let limits = Limits {
            max_packet_size: 1024,
            ..Limits::default()
        };
        assert_eq!(
            decode(&mut buf, &limits),
            Err(DecodeError::TooLarge {
                size: 0xffff_ffff,
                limit: 1024
            })
        );
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn bad_magic_and_unknown_types_are_errors() {
        let mut bad = BytesMut::from(&b"\0XYZ\0\0\0\x10\0\0\0\0"[..]);
        assert_eq!(
            decode(&mut bad, &Limits::default()),
            Err(DecodeError::BadMagic(*b"\0XYZ"))
        );
        for n in [0u32, 43, 1000] {
            let mut buf = BytesMut::from(&b"\0REQ"[..]);
            buf.put_u32(n);
            buf.put_u32(0);
            assert_eq!(
                decode(&mut buf, &Limits::default()),
                Err(DecodeError::UnknownType(n))
            );
        }
    }

    #[test]
    fn missing_separator_inside_payload_is_an_error() {
        let mut buf = BytesMut::from(&b"\0REQ"[..]);
        buf.put_u32(PacketType::SubmitJob.as_u32());
        buf.put_u32(3);
        buf.put_slice(b"f\0u");
        // The next packet's NUL must not be borrowed to complete this one.
        buf.put_slice(b"\0REQ\0\0\0\x09\0\0\0\0");
        assert_eq!(
            decode(&mut buf, &Limits::default()),
            Err(DecodeError::MissingSeparator(PacketType::SubmitJob))
        );
    }

    #[test]
    fn text_lines_are_bounded() {
        let limits = Limits {
            max_text_line: 16,
            ..Limits::default()
        };
        let mut buf = BytesMut::from(&b"status"[..]);
        assert_eq!(decode(&mut buf, &limits), Ok(None));
        let mut long = BytesMut::from(&[b'a'; 16][..]);
        assert_eq!(
            decode(&mut long, &limits),
            Err(DecodeError::LineTooLong(16))
        );
        let mut exact = BytesMut::from(&b"aaaaaaaaaaaaaaa\n"[..]);
        assert!(matches!(
            decode(&mut exact, &limits),
            Ok(Some(Frame::Text { .. }))
        ));
    }
}
