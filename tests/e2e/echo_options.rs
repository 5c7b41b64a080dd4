//! ECHO_REQ, OPTION_REQ, SET_CLIENT_ID, and the packets the server must refuse with an ERROR
//! while keeping the connection usable (shared/docs/protocol.md §2.4, §3.1, §3.2).

use bytes::Bytes;
use gearman_shared::protocol::{ErrorCode, Magic, Packet, PacketType, Request, Response};

use crate::harness::{b, h, Server};

#[test]
fn echo_returns_the_payload_unchanged() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.echo(b"ping\0pong");
    c.echo(b"");
    // No payload limit short of the packet size: 100 kB of every byte value.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
    c.echo(&big);
}

#[test]
fn text_and_binary_mix_on_one_connection() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.echo(b"before");
    let version = c.admin("version");
    assert!(version.starts_with("OK "), "version reply {version:?}");
    c.echo(b"after");
}

#[test]
fn option_exceptions_is_accepted_in_any_case_and_echoed_as_sent() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for name in ["exceptions", "EXCEPTIONS", "Exceptions"] {
        c.send(Request::Option { name: b(name) });
        c.expect(Response::Option { name: b(name) });
    }
}

#[test]
fn unknown_options_are_refused_and_the_connection_stays_usable() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    // Over 64 bytes (the C buffer size) but well within a packet.
    let long = "exceptions".repeat(100);
    for name in ["foo", "", "exception", "exceptions ", long.as_str()] {
        c.send(Request::Option { name: b(name) });
        c.expect_error(
            ErrorCode::UnknownOption,
            "Server does not recognize given option",
        );
    }
    c.echo(b"usable");
}

/// The `workers` line of the connection whose id is `id`, if any.
fn workers_line_with_id(text: &str, id: &str) -> Option<String> {
    text.lines()
        .find(|l| {
            // `FD IP ID : functions`
            let mut parts = l.splitn(4, ' ');
            let (_fd, _ip, got) = (parts.next(), parts.next(), parts.next());
            got == Some(id) && parts.next().is_some_and(|rest| rest.starts_with(':'))
        })
        .map(str::to_string)
}

#[test]
fn set_client_id_has_no_reply_and_names_the_connection_in_workers() {
    let server = Server::start(&[]);
    let mut w = server.connect();
    w.send(Request::SetClientId { id: b("worker-7") });
    w.expect_nothing(200);
    w.register(&["reverse"]);
    let mut admin = server.connect();
    let text = admin.admin("workers");
    let line = workers_line_with_id(&text, "worker-7")
        .unwrap_or_else(|| panic!("no worker-7 in workers output:\n{text}"));
    assert!(line.ends_with(": reverse"), "line {line:?}");
    // The admin connection itself has the default id.
    assert!(
        workers_line_with_id(&text, "-").is_some(),
        "no connection with the default id `-`:\n{text}"
    );
}

#[test]
fn set_client_id_is_truncated_to_127_bytes_and_may_be_empty() {
    let server = Server::start(&[]);
    let mut long = server.connect();
    long.send(Request::SetClientId {
        id: Bytes::from(vec![b'a'; 200]),
    });
    long.sync();
    let mut empty = server.connect();
    empty.send(Request::SetClientId { id: b("") });
    empty.register(&["emptyid"]);

    let text = server.connect().admin("workers");
    let a127 = "a".repeat(127);
    assert!(
        workers_line_with_id(&text, &a127).is_some(),
        "no 127-byte id in workers output:\n{text}"
    );
    // An empty id leaves an empty field: `FD IP  : emptyid`.
    assert!(
        text.lines().any(|l| l.ends_with("  : emptyid")),
        "no empty id in workers output:\n{text}"
    );
}

/// Every type a client must not send: UNUSED, NOOP, ALL_YOURS, SUBMIT_JOB_SCHED and all the
/// server-to-client types (shared/docs/protocol.md §3.1). Each is well formed (all its separators
/// present) so that only the type is wrong.
const NOT_EXPECTED: [PacketType; 14] = [
    PacketType::Unused,
    PacketType::Noop,
    PacketType::JobCreated,
    PacketType::NoJob,
    PacketType::JobAssign,
    PacketType::EchoRes,
    PacketType::Error,
    PacketType::StatusRes,
    PacketType::AllYours,
    PacketType::OptionRes,
    PacketType::JobAssignUniq,
    PacketType::SubmitJobSched,
    PacketType::JobAssignAll,
    PacketType::StatusResUnique,
];

#[test]
fn packets_not_expected_from_a_client_get_invalid_command() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for kind in NOT_EXPECTED {
        let args = vec![b("x"); kind.arg_count()];
        c.send_packet(&Packet::new(Magic::Req, kind, args));
        c.expect_error(ErrorCode::InvalidCommand, "Command not expected");
        c.echo(kind.name().as_bytes());
    }
}

#[test]
fn submit_job_sched_creates_no_job() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send_req(
        PacketType::SubmitJobSched,
        &[b"f", b"u", b"1", b"2", b"3", b"4", b"5", b"data"],
    );
    c.expect_error(ErrorCode::InvalidCommand, "Command not expected");
    // The refused submission neither queued a job nor used a handle number.
    assert_eq!(c.submit_fg("f", "", "d"), h(1));
    let mut w = server.connect();
    w.register(&["f"]);
    let (handle, _, data) = w.grab();
    assert_eq!((handle, data), (h(1), b("d")));
    w.grab_none();
}

#[test]
fn res_magic_gets_invalid_magic_and_the_connection_stays_usable() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send_packet(&Packet::new(Magic::Res, PacketType::EchoReq, vec![b("x")]));
    c.expect_error(ErrorCode::InvalidMagic, "Request magic expected");
    c.send_packet(&Packet::new(
        Magic::Res,
        PacketType::SubmitJob,
        vec![b("f"), b(""), b("d")],
    ));
    c.expect_error(ErrorCode::InvalidMagic, "Request magic expected");
    c.echo(b"usable");
    // The refused submission created nothing.
    assert_eq!(c.submit_fg("f", "", "d"), h(1));
}
