//! WORK_DATA / WARNING / STATUS / COMPLETE / FAIL / EXCEPTION: forwarding to attached
//! clients, the `exceptions` option and server flag, and the JOB_NOT_FOUND / ARGUMENT_TOO_LARGE
//! errors (shared/docs/protocol.md §3.1 rows 12–14, 25, 28, 29; §3.2; §4.8; §4.9).

use bytes::Bytes;
use gearman_shared::protocol::{ErrorCode, PacketType, Request, Response};

use crate::harness::{b, h, Client, Server};

/// A client that asked for the `exceptions` option.
fn exceptions_client(server: &Server) -> Client {
    let mut c = server.connect();
    c.send(Request::Option {
        name: b("exceptions"),
    });
    c.expect(Response::Option {
        name: b("exceptions"),
    });
    c
}

/// Submits `u1` from every client in `clients` (they coalesce), then has a fresh worker grab it.
fn running_job(server: &Server, clients: &mut [&mut Client]) -> (Client, Bytes) {
    let mut handle = None;
    for c in clients.iter_mut() {
        let got = c.submit_fg("f", "u1", "data");
        assert_eq!(handle.get_or_insert(got.clone()), &got);
    }
    let handle = handle.expect("at least one client");
    let mut w = server.connect();
    w.register(&["f"]);
    assert_eq!(w.grab().0, handle);
    (w, handle)
}

#[test]
fn work_packets_reach_every_attached_client_byte_for_byte() {
    let server = Server::start(&[]);
    let (mut c1, mut c2) = (server.connect(), server.connect());
    let (mut w, handle) = running_job(&server, &mut [&mut c1, &mut c2]);
    // A background submission of the same unique coalesces but does not attach.
    let mut bg = server.connect();
    assert_eq!(bg.submit_bg("f", "u1", "x"), handle);

    let sent = [
        Request::WorkData {
            handle: handle.clone(),
            data: b("chunk\0with nul"),
        },
        Request::WorkWarning {
            handle: handle.clone(),
            data: b("careful"),
        },
        Request::WorkStatus {
            handle: handle.clone(),
            numerator: b("1"),
            denominator: b("3"),
        },
        // Forwarded as sent, even if the numbers are odd.
        Request::WorkStatus {
            handle: handle.clone(),
            numerator: b("2x"),
            denominator: b(" 3"),
        },
        Request::WorkData {
            handle: handle.clone(),
            data: b(""),
        },
        Request::WorkComplete {
            handle: handle.clone(),
            data: b("result\0bytes"),
        },
    ];
    for r in &sent {
        w.send(r.clone());
    }
    let expected = [
        (PacketType::WorkData, &b"H:host:1\0chunk\0with nul"[..]),
        (PacketType::WorkWarning, b"H:host:1\0careful"),
        (PacketType::WorkStatus, b"H:host:1\x001\x003"),
        (PacketType::WorkStatus, b"H:host:1\x002x\0 3"),
        (PacketType::WorkData, b"H:host:1\0"),
        (PacketType::WorkComplete, b"H:host:1\0result\0bytes"),
    ];
    for c in [&mut c1, &mut c2] {
        for (kind, raw) in expected {
            c.expect_packet(kind, raw);
        }
        c.expect_nothing(100);
    }
    // No errors for the worker, and nothing for the background submitter.
    w.expect_nothing(10);
    bg.expect_nothing(10);
}

#[test]
fn work_fail_is_forwarded_and_ends_the_job() {
    let server = Server::start(&[]);
    let (mut c1, mut c2) = (server.connect(), server.connect());
    let (mut w, handle) = running_job(&server, &mut [&mut c1, &mut c2]);
    w.send(Request::WorkFail {
        handle: handle.clone(),
    });
    c1.expect(Response::WorkFail {
        handle: handle.clone(),
    });
    c2.expect(Response::WorkFail {
        handle: handle.clone(),
    });
    assert_eq!(c1.get_status(&handle), (false, false, 0, 0));
    // The unique is free again.
    assert_eq!(c1.submit_fg("f", "u1", "again"), h(2));
}

#[test]
fn work_exception_reaches_clients_with_the_exceptions_option() {
    let server = Server::start(&[]);
    let mut c = exceptions_client(&server);
    let (mut w, handle) = running_job(&server, &mut [&mut c]);
    w.send(Request::WorkException {
        handle: handle.clone(),
        data: b("boom\0!"),
    });
    c.expect_packet(PacketType::WorkException, b"H:host:1\0boom\0!");
    assert_eq!(c.get_status(&handle), (false, false, 0, 0));
    w.expect_nothing(10);
}

#[test]
fn fix_work_exception_without_the_option_becomes_a_plain_work_fail() {
    let server = Server::start(&[]);
    let mut plain = server.connect();
    let mut exc = exceptions_client(&server);
    let (mut w, handle) = running_job(&server, &mut [&mut plain, &mut exc]);
    w.send(Request::WorkException {
        handle: handle.clone(),
        data: b("boom"),
    });
    // The C server appends a NUL here, which real clients do not recognise
    // (shared/docs/protocol.md §4.9).
    plain.expect_packet(PacketType::WorkFail, b"H:host:1");
    exc.expect_packet(PacketType::WorkException, b"H:host:1\0boom");
}

#[test]
fn exceptions_server_flag_turns_the_option_on_for_every_connection() {
    let server = Server::start(&["--exceptions"]);
    let mut c = server.connect();
    let (mut w, handle) = running_job(&server, &mut [&mut c]);
    w.send(Request::WorkException {
        handle,
        data: b("boom"),
    });
    c.expect_packet(PacketType::WorkException, b"H:host:1\0boom");
}

/// Sends every WORK_* result for `handle` and expects the matching JOB_NOT_FOUND errors.
fn expect_all_results_refused(w: &mut Client, handle: &[u8]) {
    let handle = b(handle);
    let cases = [
        (
            Request::WorkData {
                handle: handle.clone(),
                data: b("x"),
            },
            "Job does not exist on server",
        ),
        (
            Request::WorkWarning {
                handle: handle.clone(),
                data: b("x"),
            },
            "Job does not exist on server",
        ),
        (
            Request::WorkStatus {
                handle: handle.clone(),
                numerator: b("1"),
                denominator: b("2"),
            },
            "Job given in work result not found",
        ),
        (
            Request::WorkComplete {
                handle: handle.clone(),
                data: b("x"),
            },
            "Job given in work result not found",
        ),
        (
            Request::WorkFail {
                handle: handle.clone(),
            },
            "Job given in work result not found",
        ),
        (
            Request::WorkException {
                handle: handle.clone(),
                data: b("x"),
            },
            "An exception was received for a job that does not exist",
        ),
    ];
    for (request, text) in cases {
        w.send(request);
        w.expect_error(ErrorCode::JobNotFound, text);
    }
    w.echo(b"still usable");
}

#[test]
fn results_for_unknown_handles_get_job_not_found() {
    let server = Server::start(&[]);
    let mut w = server.connect();
    expect_all_results_refused(&mut w, b"H:host:999");
    expect_all_results_refused(&mut w, b"");
    expect_all_results_refused(&mut w, &[b'x'; 63]);
}

#[test]
fn results_for_a_job_this_worker_does_not_run_get_job_not_found() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let queued = c.submit_fg("g", "", "queued");
    let (mut owner, running) = running_job(&server, &mut [&mut c]);
    let mut other = server.connect();
    other.register(&["f", "g"]);
    expect_all_results_refused(&mut other, &running);
    // A queued job is not assigned to anyone.
    expect_all_results_refused(&mut other, &queued);
    expect_all_results_refused(&mut owner, &queued);
    // The owner can still finish its job, and the client saw nothing of the refused results.
    owner.complete(&running, b"ok");
    c.expect(Response::WorkComplete {
        handle: running,
        data: b("ok"),
    });
    c.expect_nothing(100);
}

#[test]
fn work_fail_with_a_handle_of_64_bytes_is_too_large() {
    let server = Server::start(&[]);
    let mut w = server.connect();
    for len in [64, 100] {
        w.send(Request::WorkFail {
            handle: Bytes::from(vec![b'H'; len]),
        });
        w.expect_error(
            ErrorCode::ArgumentTooLarge,
            "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
        );
    }
    w.send(Request::WorkFail {
        handle: Bytes::from(vec![b'H'; 63]),
    });
    w.expect_error(ErrorCode::JobNotFound, "Job given in work result not found");
}

#[test]
fn fix_work_status_with_a_long_denominator_keeps_the_connection_open() {
    // gearmand 1.1.20 fails internally on a denominator of 12+ characters and may close.
    let server = Server::start(&[]);
    let mut c = server.connect();
    let (mut w, handle) = running_job(&server, &mut [&mut c]);
    w.send(Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("1"),
        denominator: b("1234567890123"),
    });
    // An ERROR or nothing; either way the connection goes on.
    w.send(Request::Echo { data: b("open") });
    match w.recv() {
        Response::Error { .. } => w.expect(Response::Echo { data: b("open") }),
        Response::Echo { data } => assert_eq!(data, "open"),
        other => panic!("expected ERROR or ECHO_RES, got {other:?}"),
    }
    w.complete(&handle, b"done");
    // The client may or may not have been sent the status; it must get the result.
    loop {
        match c.recv() {
            Response::WorkStatus { .. } => {}
            other => {
                assert_eq!(
                    other,
                    Response::WorkComplete {
                        handle,
                        data: b("done")
                    }
                );
                break;
            }
        }
    }
}

#[test]
fn a_finished_job_accepts_no_more_results() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let (mut w, handle) = running_job(&server, &mut [&mut c]);
    w.complete(&handle, b"done");
    c.expect(Response::WorkComplete {
        handle: handle.clone(),
        data: b("done"),
    });
    expect_all_results_refused(&mut w, &handle);
    c.expect_nothing(100);
}

#[test]
fn background_results_go_nowhere_and_the_job_ends() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let handle = c.submit_bg("f", "u1", "bg");
    let mut w = server.connect();
    w.register(&["f"]);
    assert_eq!(w.grab().0, handle);
    w.send(Request::WorkData {
        handle: handle.clone(),
        data: b("x"),
    });
    w.send(Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("1"),
        denominator: b("2"),
    });
    w.complete(&handle, b"done");
    w.expect_nothing(100);
    c.expect_nothing(10);
    assert_eq!(c.get_status(&handle), (false, false, 0, 0));
    w.grab_none();
}
