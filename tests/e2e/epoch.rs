//! SUBMIT_JOB_EPOCH: background jobs that may not run before a unix time; due jobs run at
//! once, future ones wait without blocking other work, and wake sleepers when due
//! (shared/docs/protocol.md §3.1 row 36, §4.6, §4.14).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gearman_shared::protocol::{
    Frame, GrabKind, JobMode, PacketType, Priority, Request, Response, SubmitJob,
};

use crate::harness::{b, bg_job, h, is_timeout, job, show, Server};

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn epoch_job(function: &str, data: &str, epoch: i64) -> SubmitJob {
    SubmitJob {
        epoch: Some(epoch),
        mode: JobMode::Background,
        ..job(function, "", data)
    }
}

#[test]
fn epoch_jobs_that_are_due_run_at_once() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    assert_eq!(c.submit(epoch_job("f", "zero", 0)), h(1));
    assert_eq!(c.submit(epoch_job("f", "past", unix_now() - 100)), h(2));
    // An unparsable epoch counts as 0 (strtoll).
    c.send_req(
        PacketType::SubmitJobEpoch,
        &[b"f", b"", b"not-a-number", b"garbage"],
    );
    c.expect_packet(PacketType::JobCreated, b"H:host:3");
    let mut w = server.connect();
    w.register(&["f"]);
    let got: Vec<_> = (0..3).map(|_| w.grab().2).collect();
    assert_eq!(got, ["zero", "past", "garbage"].map(b));
    // Background: the submitter hears nothing of the results.
    w.complete(&h(1), b"r");
    c.expect_nothing(100);
}

#[test]
fn a_future_epoch_job_waits_until_it_is_due() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let due = unix_now() + 2;
    let handle = c.submit(epoch_job("f", "later", due));
    let mut w = server.connect();
    w.register(&["f"]);
    w.grab_none();
    let mut admin = server.connect();
    assert_eq!(admin.status_of("f"), Some((1, 0, 1)), "counted as queued");
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let p = w.grab_with(GrabKind::Plain);
        if p.kind == PacketType::JobAssign {
            assert!(unix_now() >= due, "ran before its epoch");
            assert_eq!(b(p.arg(0)), handle);
            break;
        }
        assert_eq!(p.kind, PacketType::NoJob, "got {}", show(&p));
        assert!(Instant::now() < deadline, "epoch job never became due");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn fix_a_future_epoch_job_does_not_block_lower_priorities() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.submit(epoch_job("f", "far future", unix_now() + 3600));
    let low = c.submit(bg_job("f", "", "low", Priority::Low));
    let mut w = server.connect();
    w.register(&["f"]);
    let (handle, _, data) = w.grab();
    assert_eq!((handle, data), (low, b("low")));
    w.grab_none();
}

#[test]
fn fix_a_sleeping_worker_is_woken_when_an_epoch_job_falls_due() {
    let server = Server::start(&[]);
    let mut w = server.connect();
    w.can_do("f");
    w.pre_sleep();
    w.sync();
    let due = unix_now() + 2;
    let handle = server.connect().submit(epoch_job("f", "wake me", due));
    // A NOOP at submission time is allowed (the C server sends one); the worker then finds
    // nothing to do and sleeps again. What matters is the NOOP once the job is due.
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut early_wakeups = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match w.try_frame(left) {
            Ok(Frame::Packet(p)) if p.kind == PacketType::Noop => {}
            Ok(other) => panic!("expected NOOP, got {other:?}"),
            Err(e) if is_timeout(&e) => panic!("no NOOP once the epoch job was due"),
            Err(e) => panic!("waiting for NOOP: {e}"),
        }
        w.send(Request::Grab(GrabKind::Plain));
        match w.recv() {
            Response::JobAssign { handle: got, .. } => {
                assert_eq!(got, handle);
                assert!(unix_now() >= due);
                break;
            }
            Response::NoJob => {
                early_wakeups += 1;
                assert!(
                    early_wakeups <= 3,
                    "woken repeatedly before the job was due"
                );
                w.pre_sleep();
            }
            other => panic!("expected JOB_ASSIGN or NO_JOB, got {other:?}"),
        }
    }
}
