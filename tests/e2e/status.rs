//! GET_STATUS / STATUS_RES and GET_STATUS_UNIQUE / STATUS_RES_UNIQUE through a job's life, plus the
//! admin `status` counters they correspond to (shared/docs/protocol.md §3.1 rows 15, 41, 42; §4.10;
//! §4.17).

use bytes::Bytes;
use gearman_shared::protocol::{PacketType, Request, Response};

use crate::harness::{b, Server};

#[test]
fn get_status_follows_a_job_from_queued_to_gone() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(Request::GetStatus {
        handle: b("H:host:999"),
    });
    c.expect_packet(PacketType::StatusRes, b"H:host:999\x000\x000\x000\x000");

    let handle = c.submit_fg("f", "", "d");
    c.send(Request::GetStatus {
        handle: handle.clone(),
    });
    c.expect_packet(PacketType::StatusRes, b"H:host:1\x001\x000\x000\x000");

    let mut w = server.connect();
    w.register(&["f"]);
    w.grab();
    assert_eq!(c.get_status(&handle), (true, true, 0, 0));

    w.send(Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("1"),
        denominator: b("3"),
    });
    c.expect_packet(PacketType::WorkStatus, b"H:host:1\x001\x003");
    c.send(Request::GetStatus {
        handle: handle.clone(),
    });
    c.expect_packet(PacketType::StatusRes, b"H:host:1\x001\x001\x001\x003");

    // Stored as numbers (atoi), though forwarded as sent.
    w.send(Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("7x"),
        denominator: b("9"),
    });
    c.expect_packet(PacketType::WorkStatus, b"H:host:1\x007x\x009");
    assert_eq!(c.get_status(&handle), (true, true, 7, 9));

    // A requeue resets the progress.
    w.send(Request::CantDo { function: b("f") });
    w.sync();
    assert_eq!(c.get_status(&handle), (true, false, 0, 0));

    w.register(&["f"]);
    w.grab();
    w.complete(&handle, b"r");
    c.expect(Response::WorkComplete {
        handle: handle.clone(),
        data: b("r"),
    });
    c.send(Request::GetStatus { handle });
    c.expect_packet(PacketType::StatusRes, b"H:host:1\x000\x000\x000\x000");
}

#[test]
fn get_status_unique_reports_the_unique_first_and_the_client_count_last() {
    let server = Server::start(&[]);
    let mut c1 = server.connect();
    let mut c2 = server.connect();
    let q = |c: &mut crate::harness::Client, unique: &str, raw: &[u8]| {
        c.send(Request::GetStatusUnique { unique: b(unique) });
        c.expect_packet(PacketType::StatusResUnique, raw);
    };
    q(&mut c1, "nope", b"nope\x000\x000\x000\x000\x000");
    q(&mut c1, "", b"\x000\x000\x000\x000\x000");

    let handle = c1.submit_fg("f", "u1", "d");
    assert_eq!(c2.submit_fg("f", "u1", "d"), handle);
    q(&mut c1, "u1", b"u1\x001\x000\x000\x000\x002");

    let mut w = server.connect();
    w.register(&["f"]);
    w.grab();
    w.send(Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("1"),
        denominator: b("3"),
    });
    for c in [&mut c1, &mut c2] {
        c.expect_packet(PacketType::WorkStatus, b"H:host:1\x001\x003");
    }
    q(&mut c2, "u1", b"u1\x001\x001\x001\x003\x002");

    // Background jobs have no clients; the function is not part of the lookup.
    c1.submit_bg("g", "bg-u", "d");
    q(&mut c1, "bg-u", b"bg-u\x001\x000\x000\x000\x000");

    w.complete(&handle, b"");
    for c in [&mut c1, &mut c2] {
        c.expect_packet(PacketType::WorkComplete, b"H:host:1\x00");
    }
    q(&mut c1, "u1", b"u1\x000\x000\x000\x000\x000");
}

#[test]
fn fix_get_status_with_a_handle_of_64_bytes_or_more_reports_unknown() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for len in [64, 200] {
        let handle = Bytes::from(vec![b'H'; len]);
        c.send(Request::GetStatus { handle });
        match c.recv() {
            Response::Status { known, running, .. } => assert!(!known && !running),
            other => panic!("expected STATUS_RES, got {other:?}"),
        }
    }
    c.echo(b"still open");
}

#[test]
fn fix_get_status_unique_with_a_unique_of_64_bytes_or_more_reports_zeros() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for len in [64, 200] {
        c.send(Request::GetStatusUnique {
            unique: Bytes::from(vec![b'u'; len]),
        });
        match c.recv() {
            Response::StatusUnique {
                known,
                running,
                numerator,
                denominator,
                clients,
                ..
            } => assert_eq!(
                (known, running, numerator, denominator, clients),
                (false, false, 0, 0, 0)
            ),
            other => panic!("expected STATUS_RES_UNIQUE, got {other:?}"),
        }
    }
    c.echo(b"still open");
}

#[test]
fn admin_status_counts_jobs_running_jobs_and_registrations() {
    let server = Server::start(&[]);
    let mut admin = server.connect();
    let mut w = server.connect();
    // Duplicate registrations are not merged: they count twice.
    w.register(&["f", "f"]);
    assert_eq!(admin.status_of("f"), Some((0, 0, 2)));
    let mut c = server.connect();
    c.submit_bg("f", "", "1");
    c.submit_fg("f", "", "2");
    assert_eq!(admin.status_of("f"), Some((2, 0, 2)));
    w.grab();
    assert_eq!(admin.status_of("f"), Some((2, 1, 2)));
    // CANT_DO removes every registration of the function at once (and requeues).
    w.send(Request::CantDo { function: b("f") });
    w.sync();
    assert_eq!(admin.status_of("f"), Some((2, 0, 0)));
    w.grab_none();
}
