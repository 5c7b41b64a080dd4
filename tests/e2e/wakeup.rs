//! PRE_SLEEP and NOOP: who is woken, when, how often, and `-w N` rotation
//! (shared/docs/protocol.md §3.1 row 4, §4.7).

use std::time::{Duration, Instant};

use gearman_shared::protocol::{Frame, PacketType, Priority, Response};

use crate::harness::{bg_job, h, is_timeout, Client, Server};

/// A worker registered for `functions` and asleep (its PRE_SLEEP processed).
fn sleeper(server: &Server, functions: &[&str]) -> Client {
    let mut w = server.connect();
    for f in functions {
        w.can_do(f);
    }
    w.pre_sleep();
    w.sync();
    w
}

#[test]
fn a_submission_wakes_a_sleeper_once_until_it_grabs() {
    let server = Server::start(&[]);
    let mut w = sleeper(&server, &["f"]);
    let mut c = server.connect();
    c.submit_bg("f", "", "1");
    w.expect(Response::Noop);
    // At most one NOOP until the next GRAB.
    c.submit_bg("f", "", "2");
    c.submit_fg("f", "", "3");
    w.expect_nothing(300);
    assert_eq!(w.grab().0, h(1));
    assert_eq!(w.grab().0, h(2));
    assert_eq!(w.grab().0, h(3));
    w.grab_none();
    w.pre_sleep();
    w.sync();
    c.submit_bg("f", "", "4");
    w.expect(Response::Noop);
}

#[test]
fn pre_sleep_with_work_queued_gets_an_immediate_noop() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.submit_bg("f", "", "waiting");
    let mut w = server.connect();
    w.can_do("f");
    w.pre_sleep();
    w.expect(Response::Noop);
    assert_eq!(w.grab().0, h(1));
}

#[test]
fn pre_sleep_with_work_for_any_registered_function_or_priority_gets_a_noop() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.submit(bg_job("b", "", "low", Priority::Low));
    let mut w = server.connect();
    w.register(&["a", "b", "c"]);
    w.pre_sleep();
    w.expect(Response::Noop);
}

#[test]
fn workers_that_are_not_asleep_get_no_noop() {
    let server = Server::start(&[]);
    let mut awake = server.connect();
    awake.register(&["f"]);
    // Asleep, but for another function.
    let mut other = sleeper(&server, &["g"]);
    // Asleep once, but a GRAB since then makes it awake again.
    let mut grabbed = sleeper(&server, &["f"]);
    grabbed.grab_none();
    let mut c = server.connect();
    c.submit_bg("f", "", "d");
    awake.expect_nothing(300);
    other.expect_nothing(10);
    grabbed.expect_nothing(10);
}

#[test]
fn every_sleeper_is_woken_by_default() {
    let server = Server::start(&[]);
    let mut sleepers: Vec<Client> = (0..3).map(|_| sleeper(&server, &["f"])).collect();
    server.connect().submit_bg("f", "", "d");
    for w in &mut sleepers {
        w.expect(Response::Noop);
    }
}

#[test]
fn a_sleeper_registered_for_several_functions_gets_one_noop() {
    let server = Server::start(&[]);
    let mut w = sleeper(&server, &["f", "g"]);
    let mut c = server.connect();
    c.submit_bg("f", "", "1");
    c.submit_bg("g", "", "2");
    w.expect(Response::Noop);
    w.expect_nothing(300);
}

/// Which of two sleepers got the single NOOP; the other must get nothing.
fn woken_one(ws: &mut [Client; 2]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let woken = 'poll: loop {
        for (i, w) in ws.iter_mut().enumerate() {
            match w.try_frame(Duration::from_millis(50)) {
                Ok(Frame::Packet(p)) if p.kind == PacketType::Noop => break 'poll i,
                Err(e) if is_timeout(&e) => {}
                other => panic!("sleeper {i}: expected NOOP or nothing, got {other:?}"),
            }
        }
        assert!(Instant::now() < deadline, "no sleeper got a NOOP");
    };
    ws[1 - woken].expect_nothing(300);
    woken
}

#[test]
fn worker_wakeup_1_wakes_one_sleeper_and_rotates() {
    let server = Server::start(&["-w", "1"]);
    let mut ws = [sleeper(&server, &["f"]), sleeper(&server, &["f"])];
    let mut c = server.connect();
    let mut previous = None;
    for n in 1..=4 {
        c.submit_bg("f", "", "d");
        let woken = woken_one(&mut ws);
        if let Some(p) = previous {
            assert_ne!(woken, p, "NOOP {n} went to the same sleeper again");
        }
        previous = Some(woken);
        let w = &mut ws[woken];
        assert_eq!(w.grab().0, h(n));
        w.grab_none();
        w.pre_sleep();
        w.sync();
    }
}
