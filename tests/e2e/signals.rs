//! Signals: SIGTERM/SIGINT stop at once with exit code 0, SIGUSR1 stops accepting and exits
//! once no job is left, SIGHUP keeps serving (shared/docs/protocol.md §8.2).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearman_shared::protocol::Response;

use crate::harness::{b, wait_until, Client, Server};

const EXIT_LIMIT: Duration = Duration::from_secs(5);

#[test]
fn sigterm_and_sigint_exit_with_code_0() {
    for sig in ["TERM", "INT"] {
        let mut server = Server::start(&[]);
        // With work queued and connections open: shutdown is immediate anyway.
        let mut c = server.connect();
        c.submit_fg("f", "", "d");
        server.signal(sig);
        let status = server.wait_exit(EXIT_LIMIT);
        assert_eq!(status.code(), Some(0), "after SIG{sig}");
    }
}

#[test]
fn sighup_keeps_the_server_running() {
    let mut server = Server::start(&[]);
    let mut c = server.connect();
    server.signal("HUP");
    c.expect_nothing(200);
    c.echo(b"still here");
    server.assert_healthy();
}

fn refuses_connections(server: &Server) -> bool {
    TcpStream::connect_timeout(&server.addr(), Duration::from_millis(200)).is_err()
}

#[test]
fn sigusr1_on_an_idle_server_exits_at_once() {
    let mut server = Server::start(&[]);
    server.signal("USR1");
    assert_eq!(server.wait_exit(EXIT_LIMIT).code(), Some(0));
}

#[test]
fn sigusr1_refuses_new_connections_but_finishes_the_work() {
    let mut server = Server::start(&[]);
    let mut c = server.connect();
    let mut w = server.connect();
    let handle = c.submit_fg("f", "", "last job");
    server.signal("USR1");
    wait_until(Duration::from_secs(3), "listener closed", || {
        refuses_connections(&server)
    });
    // Existing connections keep working.
    w.register(&["f"]);
    assert_eq!(w.grab().0, handle);
    c.echo(b"client still served");
    w.complete(&handle, b"done");
    c.expect(Response::WorkComplete {
        handle,
        data: b("done"),
    });
    assert_eq!(server.wait_exit(EXIT_LIMIT).code(), Some(0));
}

/// A graceful shutdown whose last job has just completed with a 16 MiB result, far more
/// than the loopback socket buffers hold: the server, the client still to read it (it has
/// not read yet), the job's handle and the result.
fn graceful_exit_with_a_large_result_pending() -> (Server, Client, Bytes, Vec<u8>) {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let mut w = server.connect();
    let handle = c.submit_fg("f", "", "big result please");
    w.register(&["f"]);
    assert_eq!(w.grab().0, handle);
    server.signal("USR1");
    wait_until(Duration::from_secs(3), "listener closed", || {
        refuses_connections(&server)
    });
    let data: Vec<u8> = (0..16 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    w.complete(&handle, &data);
    (server, c, handle, data)
}

/// The last result of a graceful shutdown reaches a client that reads it slowly: the
/// exit waits for the writers to finish rather than a fixed moment.
#[test]
fn ours_graceful_exit_delivers_a_large_last_result_to_a_slow_reader() {
    let (mut server, mut c, handle, data) = graceful_exit_with_a_large_result_pending();
    // The writer must keep going while the client, busy elsewhere, starts reading later.
    std::thread::sleep(Duration::from_millis(700));
    c.expect(Response::WorkComplete {
        handle,
        data: Bytes::from(data),
    });
    assert_eq!(server.wait_exit(EXIT_LIMIT).code(), Some(0));
}

/// A client that never reads its last result does not hold the exit up: the server
/// waits for its writers a bounded time (5 s), then exits anyway.
#[test]
fn ours_graceful_exit_gives_up_on_a_client_that_never_reads() {
    let (mut server, c, _, _) = graceful_exit_with_a_large_result_pending();
    let asked = Instant::now();
    assert_eq!(server.wait_exit(EXIT_LIMIT * 2).code(), Some(0));
    assert!(
        asked.elapsed() >= Duration::from_secs(3),
        "the exit should have waited for the writer a while, not dropped it at once"
    );
    drop(c);
}

#[test]
fn fix_sigusr1_exits_when_the_last_background_job_ends() {
    // gearmand 1.1.20 waits for one more request after the last job before it exits.
    let mut server = Server::start(&[]);
    let mut c = server.connect();
    let handle = c.submit_bg("f", "", "d");
    let mut w = server.connect();
    w.register(&["f"]);
    assert_eq!(w.grab().0, handle);
    server.signal("USR1");
    wait_until(Duration::from_secs(3), "listener closed", || {
        refuses_connections(&server)
    });
    server.assert_alive();
    w.complete(&handle, b"");
    assert_eq!(server.wait_exit(EXIT_LIMIT).code(), Some(0));
}
