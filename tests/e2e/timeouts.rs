//! CAN_DO_TIMEOUT: a job not finished within the timeout is requeued (minimum 1000 ms), a job
//! finished in time is left alone, and bad timeout values (shared/docs/protocol.md §3.1 row 23,
//! §4.13).

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearman_shared::protocol::{ErrorCode, Magic, Packet, PacketType, Request, Response};

use crate::harness::{b, Client, Server};

/// Registers `function` with this raw timeout string, as a worker library would send it.
fn can_do_timeout(w: &mut Client, function: &str, timeout: &str) {
    w.send_packet(&Packet::new(
        Magic::Req,
        PacketType::CanDoTimeout,
        vec![b(function), b(timeout)],
    ));
}

fn sleeper(server: &Server, function: &str) -> Client {
    let mut w = server.connect();
    w.can_do(function);
    w.pre_sleep();
    w.sync();
    w
}

/// Waits for the sleeper's NOOP and returns how long after `since` it came.
fn noop_after(w: &mut Client, since: Instant) -> Duration {
    w.expect(Response::Noop);
    since.elapsed()
}

#[test]
fn a_job_not_finished_in_time_is_requeued() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let handle = c.submit_fg("f", "", "slow");
    let mut w = server.connect();
    can_do_timeout(&mut w, "f", "1000");
    w.sync();
    let grabbed_at = Instant::now();
    assert_eq!(w.grab().0, handle);
    let mut other = sleeper(&server, "f");
    let after = noop_after(&mut other, grabbed_at);
    assert!(
        after >= Duration::from_millis(900),
        "requeued after {after:?}"
    );
    let (again, _, data) = other.grab();
    assert_eq!((&again, data), (&handle, b("slow")));
    let mut admin = server.connect();
    assert_eq!(admin.show_jobs(), [("H:host:1".to_string(), 1, 0, 0)]);
    // Nobody was told; the first worker's late result is refused.
    c.expect_nothing(10);
    w.expect_nothing(10);
    w.complete(&handle, b"late");
    w.expect_error(ErrorCode::JobNotFound, "Job given in work result not found");
    other.complete(&handle, b"on time");
    c.expect(Response::WorkComplete {
        handle,
        data: b("on time"),
    });
}

#[test]
fn timeouts_below_1000_ms_count_as_1000() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.submit_bg("f", "", "d");
    let mut w = server.connect();
    can_do_timeout(&mut w, "f", "100");
    w.sync();
    let grabbed_at = Instant::now();
    w.grab();
    let mut other = sleeper(&server, "f");
    let after = noop_after(&mut other, grabbed_at);
    assert!(
        after >= Duration::from_millis(900),
        "requeued after {after:?}"
    );
}

#[test]
fn a_timeout_requeue_counts_against_job_retries() {
    let server = Server::start(&["-j", "1"]);
    let mut c = server.connect();
    let handle = c.submit_fg("f", "", "d");
    let mut w = server.connect();
    can_do_timeout(&mut w, "f", "1000");
    w.sync();
    assert_eq!(w.grab().0, handle);
    c.expect_packet(PacketType::WorkFail, b"H:host:1");
}

#[test]
fn zero_or_non_numeric_timeouts_mean_no_timeout() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let h1 = c.submit_fg("f", "", "1");
    let h2 = c.submit_fg("f", "", "2");
    let mut w1 = server.connect();
    can_do_timeout(&mut w1, "f", "0");
    let mut w2 = server.connect();
    can_do_timeout(&mut w2, "f", "abc");
    assert_eq!(w1.grab().0, h1);
    assert_eq!(w2.grab().0, h2);
    thread::sleep(Duration::from_millis(1600));
    assert_eq!(c.get_status(&h1), (true, true, 0, 0));
    assert_eq!(c.get_status(&h2), (true, true, 0, 0));
}

#[test]
fn fix_a_job_finished_in_time_is_not_touched_by_its_timer() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let handle = c.submit_fg("f", "", "quick");
    let mut w = server.connect();
    can_do_timeout(&mut w, "f", "1000");
    w.sync();
    let start = Instant::now();
    assert_eq!(w.grab().0, handle);
    w.complete(&handle, b"");
    c.expect_packet(PacketType::WorkComplete, b"H:host:1\0");
    let mut other = sleeper(&server, "f");
    thread::sleep(Duration::from_millis(1600).saturating_sub(start.elapsed()));
    // The C server's stale timer fires here and wraps the running count to 4294967295.
    other.expect_nothing(10);
    c.expect_nothing(10);
    w.expect_nothing(10);
    let mut admin = server.connect();
    assert_eq!(admin.status_of("f"), Some((0, 0, 2)));
    assert!(admin.show_jobs().is_empty());
}

#[test]
fn the_next_job_gets_its_own_full_timeout() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let h1 = c.submit_bg("f", "", "quick");
    let h2 = c.submit_bg("f", "", "slow");
    let mut w = server.connect();
    can_do_timeout(&mut w, "f", "2000");
    w.sync();
    let start = Instant::now();
    assert_eq!(w.grab().0, h1);
    w.complete(&h1, b"");
    w.sync();
    // The next job gets its own full timeout, counted from its own grab.
    thread::sleep(Duration::from_millis(1000).saturating_sub(start.elapsed()));
    let second_grab = Instant::now();
    assert_eq!(w.grab().0, h2);
    let mut other = sleeper(&server, "f");
    thread::sleep(Duration::from_millis(2400).saturating_sub(start.elapsed()));
    // Past h1's deadline: nothing happened to h2 or to the counters.
    other.expect_nothing(10);
    assert_eq!(c.get_status(&h2), (true, true, 0, 0));
    let mut admin = server.connect();
    assert_eq!(admin.status_of("f"), Some((1, 1, 2)));
    // h2's own deadline does requeue it.
    let after = noop_after(&mut other, second_grab);
    assert!(
        after >= Duration::from_millis(1900),
        "requeued after {after:?}"
    );
    assert_eq!(admin.status_of("f"), Some((1, 0, 2)));
}

#[test]
fn fix_a_timer_does_not_requeue_a_job_that_moved_to_another_worker() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let handle = c.submit_fg("f", "", "d");
    let mut w1 = server.connect();
    can_do_timeout(&mut w1, "f", "1000");
    w1.sync();
    let start = Instant::now();
    assert_eq!(w1.grab().0, handle);
    // Requeued by CANT_DO long before the timeout, then taken by a worker without one.
    w1.send(Request::CantDo { function: b("f") });
    // Requests of different connections have no order between them: make sure the job
    // is back in the queue before the other worker asks.
    w1.sync();
    let mut w2 = server.connect();
    w2.register(&["f"]);
    assert_eq!(w2.grab().0, handle);
    let mut sleeper = sleeper(&server, "f");
    thread::sleep(Duration::from_millis(1600).saturating_sub(start.elapsed()));
    sleeper.expect_nothing(10);
    assert_eq!(c.get_status(&handle), (true, true, 0, 0));
    w2.complete(&handle, b"ok");
    c.expect(Response::WorkComplete {
        handle,
        data: b("ok"),
    });
    w2.expect_nothing(10);
}

#[test]
fn fix_a_timeout_that_does_not_fit_is_invalid_argument() {
    let server = Server::start(&[]);
    let mut w = server.connect();
    for timeout in ["1".repeat(30), "9".repeat(20), "9".repeat(19)] {
        can_do_timeout(&mut w, "f", &timeout);
        w.expect_error_code(ErrorCode::InvalidArgument);
        w.echo(b"still open");
    }
    let mut w = server.connect();
    w.send(Request::CanDoTimeout {
        function: Bytes::from_static(b"g"),
        timeout_ms: None,
    });
    w.expect_error_code(ErrorCode::InvalidArgument);
    w.echo(b"still open");
}
