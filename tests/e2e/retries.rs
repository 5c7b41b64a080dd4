//! CAN_DO / CANT_DO / RESET_ABILITIES, the requeue they cause for running jobs, and the
//! `-j` retry limit (shared/docs/protocol.md §3.1 rows 1–3, §4.12).

use std::time::Duration;

use gearman_shared::protocol::{PacketType, Request, Response};

use crate::harness::{b, h, wait_until, Server};

#[test]
fn cant_do_requeues_only_the_jobs_of_that_function() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let hf = c.submit_fg("f", "", "f-job");
    let hg = c.submit_fg("g", "", "g-job");
    let mut w = server.connect();
    w.register(&["f", "g"]);
    assert_eq!(w.grab().0, hg);
    assert_eq!(w.grab().0, hf);
    let mut sleeper = server.connect();
    sleeper.can_do("f");
    sleeper.pre_sleep();
    sleeper.sync();

    w.send(Request::CantDo { function: b("f") });
    sleeper.expect(Response::Noop);
    let mut admin = server.connect();
    assert_eq!(admin.status_of("f"), Some((1, 0, 1)));
    assert_eq!(admin.status_of("g"), Some((1, 1, 1)));
    let jobs = admin.show_jobs();
    assert!(jobs.contains(&("H:host:1".into(), 1, 0, 0)), "{jobs:?}");
    assert!(jobs.contains(&("H:host:2".into(), 0, 0, 0)), "{jobs:?}");

    // The g job is still this worker's; the f job went back to the queue.
    w.complete(&hg, b"g done");
    w.expect_nothing(100);
    w.grab_none();
    assert_eq!(sleeper.grab().0, hf);
    c.expect(Response::WorkComplete {
        handle: hg,
        data: b("g done"),
    });
}

#[test]
fn cant_do_of_an_unregistered_function_changes_nothing() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let handle = c.submit_fg("f", "", "d");
    let mut w = server.connect();
    w.register(&["f"]);
    assert_eq!(w.grab().0, handle);
    w.send(Request::CantDo {
        function: b("nope"),
    });
    w.expect_nothing(100);
    assert_eq!(c.get_status(&handle), (true, true, 0, 0));
}

#[test]
fn reset_abilities_drops_every_registration_and_requeues_every_job() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let hf = c.submit_fg("f", "", "f-job");
    let hg = c.submit_fg("g", "", "g-job");
    let mut w = server.connect();
    w.register(&["f", "g"]);
    w.grab();
    w.grab();
    w.send(Request::ResetAbilities);
    w.expect_nothing(100);
    w.grab_none();
    let mut admin = server.connect();
    assert_eq!(admin.status_of("f"), Some((1, 0, 0)));
    assert_eq!(admin.status_of("g"), Some((1, 0, 0)));
    for handle in [&hf, &hg] {
        assert_eq!(c.get_status(handle), (true, false, 0, 0));
    }
    let mut w2 = server.connect();
    w2.register(&["f", "g"]);
    let mut got = vec![w2.grab().0, w2.grab().0];
    got.sort();
    assert_eq!(got, [h(1), h(2)]);
}

#[test]
fn job_retries_1_fails_the_job_on_its_first_requeue() {
    let server = Server::start(&["-j", "1"]);
    let mut c = server.connect();
    let fg = c.submit_fg("f", "", "fg");
    let bg = c.submit_bg("f", "", "bg");
    let mut w = server.connect();
    w.register(&["f"]);
    assert_eq!(w.grab().0, fg);
    assert_eq!(w.grab().0, bg);
    w.send(Request::CantDo { function: b("f") });
    c.expect_packet(PacketType::WorkFail, b"H:host:1");
    c.expect_nothing(100);
    let mut admin = server.connect();
    wait_until(Duration::from_secs(5), "both jobs dropped", || {
        admin.show_jobs().is_empty()
    });
    w.register(&["f"]);
    w.grab_none();
}

#[test]
fn job_retries_counts_requeues_of_any_cause() {
    let server = Server::start(&["-j", "3"]);
    let mut c = server.connect();
    let handle = c.submit_fg("f", "", "d");
    // 1: CANT_DO, 2: RESET_ABILITIES, 3: disconnect → the third requeue fails it.
    let mut w = server.connect();
    w.register(&["f"]);
    assert_eq!(w.grab().0, handle);
    w.send(Request::CantDo { function: b("f") });
    w.register(&["f"]);
    assert_eq!(w.grab().0, handle);
    w.send(Request::ResetAbilities);
    w.register(&["f"]);
    assert_eq!(w.grab().0, handle);
    let mut admin = server.connect();
    assert_eq!(admin.show_jobs(), [("H:host:1".to_string(), 2, 0, 0)]);
    c.expect_nothing(50);
    drop(w);
    c.expect_packet(PacketType::WorkFail, b"H:host:1");
}
