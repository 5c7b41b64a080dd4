//! Properties of the codec and the admin parsers over arbitrary input, written once and run
//! two ways: by the proptest suites next to this module (stable, bounded, part of
//! `cargo test`), and by the cargo-fuzz targets in `shared/fuzz/` (nightly, open-ended), which
//! include this file with `#[path]`.
//!
//! Every check panics with a message when a property fails; none of them may panic otherwise,
//! whatever the input.

#![allow(dead_code)]

use bytes::BytesMut;
use gearman_shared::admin::reply::is_error_line;
use gearman_shared::admin::{
    parse, AdminCommand, ErrorReply, FunctionPriorityStatus, FunctionStatus, JobInfo, Parsed,
    Reply, ReplyShape, StatsReport, UniqueJob, WorkerInfo,
};
use gearman_shared::protocol::{
    decode, encode, DecodeError, Frame, Limits, Magic, Packet, ProtocolError, Request, Response,
    HEADER_LEN,
};

/// Small limits chosen by two input bytes, so that the limit checks are reached often.
pub fn small_limits(packet: u8, line: u8) -> Limits {
    Limits {
        max_packet_size: usize::from(packet) * 4,
        max_text_line: usize::from(line % 80),
    }
}

/// What decoding a stream gave: the frames in order, then how it stopped.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub frames: Vec<Frame>,
    /// `Some` if the stream ended in an error; `None` if it ended needing more bytes.
    pub error: Option<DecodeError>,
    /// The bytes left in the buffer after the last frame (when it ended needing more).
    pub rest: Vec<u8>,
}

/// The whole codec property for one input: the first three bytes choose the limits and the
/// chunk size, the rest is the stream.
pub fn check_codec(data: &[u8]) {
    let [packet, line, chunk, stream @ ..] = data else {
        return;
    };
    let limits = small_limits(*packet, *line);
    let whole = decode_all(stream, &limits);
    let chunked = decode_chunked(stream, &limits, usize::from(*chunk % 17) + 1);
    assert_eq!(
        whole,
        chunked,
        "decoding in chunks of {} differs from decoding at once",
        chunk % 17 + 1
    );
    for frame in whole.frames {
        match frame {
            Frame::Packet(packet) => check_packet(packet),
            Frame::Text {
                line,
                terminator_len,
            } => check_admin_line(&line, terminator_len),
        }
    }
}

/// Decodes `stream` all at once, checking each step.
pub fn decode_all(stream: &[u8], limits: &Limits) -> Decoded {
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    loop {
        let before = buf.clone();
        match decode(&mut buf, limits) {
            Ok(Some(frame)) => {
                let used = before.len() - buf.len();
                assert_eq!(&before[used..], &buf[..], "decode consumed from the back");
                check_frame(&frame, &before[..used], limits);
                frames.push(frame);
            }
            Ok(None) => {
                assert_eq!(before, buf, "Ok(None) must leave the buffer alone");
                return Decoded {
                    frames,
                    error: None,
                    rest: buf.to_vec(),
                };
            }
            Err(error) => {
                return Decoded {
                    frames,
                    error: Some(error),
                    rest: Vec::new(),
                }
            }
        }
    }
}

/// Decodes `stream` as it would arrive from a socket, `chunk` bytes per read.
pub fn decode_chunked(stream: &[u8], limits: &Limits, chunk: usize) -> Decoded {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decode(&mut buf, limits) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => {
                    return Decoded {
                        frames,
                        error: Some(error),
                        rest: Vec::new(),
                    }
                }
            }
        }
    }
    Decoded {
        frames,
        error: None,
        rest: buf.to_vec(),
    }
}

/// One decoded frame against the bytes it was decoded from.
fn check_frame(frame: &Frame, wire: &[u8], limits: &Limits) {
    assert!(!wire.is_empty(), "a frame must consume bytes");
    match frame {
        Frame::Packet(packet) => {
            assert_eq!(wire[0], 0, "a packet starts with NUL");
            assert!(wire.len() >= HEADER_LEN);
            let size = wire.len() - HEADER_LEN;
            assert!(size <= limits.max_packet_size, "payload over the limit");
            assert_eq!(
                packet.args.len(),
                packet.kind.arg_count(),
                "argument count of {:?}",
                packet.kind
            );
            let mut again = BytesMut::new();
            encode(packet, &mut again);
            if packet.kind.arg_count() == 0 {
                // Types without arguments drop their payload.
                assert_eq!(&again[..8], &wire[..8]);
                assert_eq!(&again[8..], &[0, 0, 0, 0]);
            } else {
                assert_eq!(&again[..], wire, "re-encoding {:?}", packet.kind);
            }
        }
        Frame::Text {
            line,
            terminator_len,
        } => {
            assert_ne!(wire[0], 0, "a text line never starts with NUL");
            assert!(!line.contains(&b'\n'));
            assert!(wire.len() <= limits.max_text_line, "line over the limit");
            assert_eq!(wire.len(), line.len() + terminator_len);
            assert_eq!(&wire[..line.len()], &line[..]);
            let terminator: &[u8] = if *terminator_len == 2 { b"\r\n" } else { b"\n" };
            assert_eq!(&wire[line.len()..], terminator);
        }
    }
}

/// Encodes and decodes `packet` with the default limits.
pub fn wire_round_trip(packet: &Packet) -> Packet {
    let mut buf = BytesMut::new();
    encode(packet, &mut buf);
    let len = buf.len();
    match decode(&mut buf, &Limits::default()) {
        Ok(Some(Frame::Packet(back))) => {
            assert!(buf.is_empty(), "{len} bytes encoded, {} left", buf.len());
            back
        }
        other => panic!("{packet:?} encoded to bytes that decode to {other:?}"),
    }
}

/// A decoded packet given its meaning, in the direction its magic says.
pub fn check_packet(packet: Packet) {
    match packet.magic {
        Magic::Req => {
            assert_eq!(
                Response::try_from(packet.clone()),
                Err(ProtocolError::WrongMagic)
            );
            match Request::try_from(packet.clone()) {
                Ok(request) => check_request(&request),
                Err(ProtocolError::UnexpectedType(kind)) => assert_eq!(kind, packet.kind),
                Err(e) => panic!("decoded {packet:?} cannot be a request: {e}"),
            }
        }
        Magic::Res => {
            assert_eq!(
                Request::try_from(packet.clone()),
                Err(ProtocolError::WrongMagic)
            );
            match Response::try_from(packet.clone()) {
                Ok(response) => check_response(&response),
                Err(ProtocolError::UnexpectedType(kind)) => assert_eq!(kind, packet.kind),
                Err(e) => panic!("decoded {packet:?} cannot be a response: {e}"),
            }
        }
    }
}

/// A typed request survives packet → bytes → packet → request unchanged. (The packet it came
/// from need not come back: numbers are normalised and the reduce aggregator is dropped.)
pub fn check_request(request: &Request) {
    let packet = request.clone().into_packet();
    assert_eq!(packet.magic, Magic::Req);
    let back = wire_round_trip(&packet);
    assert_eq!(back, packet, "packet of {request:?}");
    assert_eq!(Request::try_from(back).as_ref(), Ok(request));
}

/// The same for a typed response.
pub fn check_response(response: &Response) {
    let packet = response.clone().into_packet();
    assert_eq!(packet.magic, Magic::Res);
    assert_eq!(packet.kind, response.packet_type());
    let back = wire_round_trip(&packet);
    assert_eq!(back, packet, "packet of {response:?}");
    assert_eq!(Response::try_from(back).as_ref(), Ok(response));
}

/// Splits an input into an admin line and its terminator length (1 or 2), as the codec hands
/// them to `admin::parse`.
pub fn check_admin_input(data: &[u8]) {
    let Some((&selector, line)) = data.split_first() else {
        return;
    };
    check_admin_line(line, if selector & 1 == 0 { 1 } else { 2 });
}

/// One admin line through the server's parser: it closes exactly on more than five tokens.
pub fn check_admin_line(line: &[u8], terminator_len: usize) {
    // Leading spaces make an empty first token, trailing spaces an empty last one.
    let tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty()).count()
        + usize::from(line.first() == Some(&b' '))
        + usize::from(line.last() == Some(&b' '));
    let parsed = parse(line, terminator_len);
    assert_eq!(
        parsed == Parsed::Close,
        tokens > 5,
        "{tokens} tokens in {:?}: {parsed:?}",
        line.escape_ascii().to_string()
    );
    match parsed {
        Parsed::Command(command) => check_command(&command),
        Parsed::Reply(error) => check_error_reply(&error),
        Parsed::Close => {}
    }
}

/// A parsed command: its canonical line parses back to it, where `to_line` promises that.
pub fn check_command(command: &AdminCommand) {
    let _ = command.reply_shape();
    let plain = |b: &[u8]| !b.iter().any(|&c| matches!(c, b' ' | 0 | b'\n'));
    let round_trips = match command {
        AdminCommand::CreateFunction { name } | AdminCommand::DropFunction { name } => plain(name),
        AdminCommand::CancelJob { handle } => plain(handle),
        AdminCommand::MaxQueue { function, limits } => {
            !function.is_empty()
                && plain(function)
                && limits.iter().all(|&l| l <= i32::MAX.unsigned_abs())
        }
        _ => true,
    };
    if round_trips {
        let line = command.to_line();
        assert_eq!(
            parse(&line, 2),
            Parsed::Command(command.clone()),
            "canonical line {:?}",
            line.escape_ascii().to_string()
        );
    }
}

/// A fixed error line is well formed and reads back as its client-side view.
pub fn check_error_reply(error: &ErrorReply) {
    let bytes = error.to_bytes();
    assert!(bytes.starts_with(b"ERR "), "{bytes:?}");
    assert!(bytes.ends_with(b"\r\n"));
    assert!(is_error_line(&bytes));
    assert!(!bytes.contains(&0), "error lines stop at a NUL");
    let reply = error.to_reply();
    assert_eq!(Reply::parse_line(&bytes).as_ref(), Ok(&reply));
    if std::str::from_utf8(&bytes).is_ok() {
        // The client-side view holds lossily decoded text, so only UTF-8 renders back exactly.
        assert_eq!(reply.to_bytes(), bytes, "client view renders back");
    }
    if !bytes[..bytes.len() - 1].contains(&b'\n') {
        for shape in [ReplyShape::Line, ReplyShape::Listing, ReplyShape::Lines] {
            assert_eq!(
                Reply::parse(&bytes, shape),
                Ok(Some((reply.clone(), bytes.len())))
            );
        }
    }
}

/// The first byte picks a reply shape; the rest is what a server sent.
pub fn check_reply_input(data: &[u8]) {
    let Some((&selector, buf)) = data.split_first() else {
        return;
    };
    let shape = match selector % 3 {
        0 => ReplyShape::Line,
        1 => ReplyShape::Listing,
        _ => ReplyShape::Lines,
    };
    check_reply(buf, shape);
    check_reply_lines(buf);
}

/// `Reply::parse` of arbitrary bytes: a parsed reply renders to bytes that parse back to it,
/// and every shorter prefix of what it used is incomplete.
pub fn check_reply(buf: &[u8], shape: ReplyShape) {
    let Ok(Some((reply, used))) = Reply::parse(buf, shape) else {
        return;
    };
    assert!(used > 0 && used <= buf.len());
    assert_eq!(buf[used - 1], b'\n', "a reply ends at a newline");
    // Every shorter prefix is incomplete (checked at a bounded number of cut points).
    let step = (used / 64).max(1);
    for cut in (0..used).step_by(step) {
        assert_eq!(
            Reply::parse(&buf[..cut], shape),
            Ok(None),
            "prefix of {cut} bytes"
        );
    }
    if let Reply::Value(value) = &reply {
        // `OK <value>\r\n` is accepted, so a value cannot keep a trailing `\r` of its own.
        if value.ends_with('\r') {
            return;
        }
    }
    let wire = reply.to_bytes();
    assert_eq!(
        Reply::parse(&wire, shape),
        Ok(Some((reply.clone(), wire.len()))),
        "rendered as {:?}",
        wire.escape_ascii().to_string()
    );
}

/// Each listing-line parser over every line of `buf`: what parses renders back to the same
/// value.
pub fn check_reply_lines(buf: &[u8]) {
    let lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
    for line in &lines {
        check_listing_line(line);
    }
    let owned: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
    check_stats(&owned);
}

fn rendered(render: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    render(&mut out);
    out
}

/// One line through every listing-line parser.
pub fn check_listing_line(line: &[u8]) {
    if let Ok(status) = FunctionStatus::parse(line) {
        let wire = rendered(|o| status.render(o));
        assert_eq!(FunctionStatus::parse(&wire), Ok(status));
    }
    if let Ok(status) = FunctionPriorityStatus::parse(line) {
        let wire = rendered(|o| status.render(o));
        assert_eq!(FunctionPriorityStatus::parse(&wire), Ok(status));
    }
    if let Ok(worker) = WorkerInfo::parse(line) {
        // The ID is printed with %s: a NUL ends it.
        if !worker.client_id.contains(&0) {
            let wire = rendered(|o| worker.render(o));
            assert_eq!(WorkerInfo::parse(&wire), Ok(worker));
        }
    }
    if let Ok(job) = JobInfo::parse(line) {
        if !job.handle.contains(&0) {
            let wire = rendered(|o| job.render(o));
            assert_eq!(JobInfo::parse(&wire), Ok(job));
        }
    }
    let unique = UniqueJob::parse(line);
    let wire = rendered(|o| unique.render(o));
    assert_eq!(UniqueJob::parse(&wire), unique);
    let _ = gearman_shared::admin::reply::decode_error_text(&String::from_utf8_lossy(line));
}

/// `StatsReport::parse` of listing lines (no `\n` inside): what parses renders back to it.
pub fn check_stats(lines: &[Vec<u8>]) {
    let Ok(report) = StatsReport::parse(lines) else {
        return;
    };
    let wire = rendered(|o| report.render(o));
    let body = wire
        .strip_suffix(b".\n")
        .expect("a stats listing ends in .");
    let again: Vec<Vec<u8>> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(StatsReport::parse(&again), Ok(report));
}
