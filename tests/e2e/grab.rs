//! Job selection: GRAB_JOB / GRAB_JOB_UNIQ / GRAB_JOB_ALL and their JOB_ASSIGN variants, NO_JOB,
//! newest-registered function first, and `-R` rotation (shared/docs/protocol.md §3.1, §4.6, §4.15).

use bytes::Bytes;
use gearman_shared::protocol::{
    GrabKind, JobMode, PacketType, Priority, Request, Response, SubmitJob,
};

use crate::harness::{b, bg_job, h, job, Server};

fn reduce_bg(unique: &str, reducer: &str, data: &str) -> SubmitJob {
    SubmitJob {
        reducer: Some(b(reducer)),
        mode: JobMode::Background,
        ..job("f", unique, data)
    }
}

#[test]
fn each_grab_variant_gets_its_assign_packet() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    assert_eq!(c.submit_bg("f", "", "a\0data"), h(1));
    assert_eq!(c.submit_bg("f", "-", "b-data"), h(2));
    assert_eq!(c.submit(reduce_bg("ru", "myreducer", "mapdata")), h(3));
    assert_eq!(c.submit_bg("f", "cu", "c-data"), h(4));
    let mut w = server.connect();
    w.register(&["f"]);

    w.send(Request::Grab(GrabKind::Plain));
    w.expect_packet(PacketType::JobAssign, b"H:host:1\0f\0a\0data");
    w.send(Request::Grab(GrabKind::Uniq));
    w.expect_packet(PacketType::JobAssignUniq, b"H:host:2\0f\0-\0b-data");
    w.send(Request::Grab(GrabKind::All));
    w.expect_packet(
        PacketType::JobAssignAll,
        b"H:host:3\0f\0ru\0myreducer\0mapdata",
    );
    // GRAB_JOB_ALL shows JOB_ASSIGN_ALL only for jobs with a reducer.
    w.send(Request::Grab(GrabKind::All));
    w.expect_packet(PacketType::JobAssignUniq, b"H:host:4\0f\0cu\0c-data");

    for kind in [GrabKind::Plain, GrabKind::Uniq, GrabKind::All] {
        w.send(Request::Grab(kind));
        w.expect(Response::NoJob);
    }
}

#[test]
fn grab_job_uniq_shows_an_empty_unique() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.submit_bg("f", "", "");
    let mut w = server.connect();
    w.register(&["f"]);
    w.send(Request::Grab(GrabKind::Uniq));
    w.expect_packet(PacketType::JobAssignUniq, b"H:host:1\0f\0\0");
}

#[test]
fn plain_and_uniq_grabs_hand_out_reduce_jobs_without_the_reducer() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.submit(reduce_bg("r1", "red", "d1"));
    c.submit(reduce_bg("r2", "red", "d2"));
    let mut w = server.connect();
    w.register(&["f"]);
    w.send(Request::Grab(GrabKind::Plain));
    w.expect_packet(PacketType::JobAssign, b"H:host:1\0f\0d1");
    w.send(Request::Grab(GrabKind::Uniq));
    w.expect_packet(PacketType::JobAssignUniq, b"H:host:2\0f\0r2\0d2");
}

#[test]
fn no_job_without_a_matching_registration() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.submit_bg("f", "", "d");
    let mut w = server.connect();
    w.grab_none();
    w.register(&["g"]);
    w.grab_none();
    // Function names compare as exact bytes.
    w.register(&["F"]);
    w.grab_none();
    w.register(&["f"]);
    assert_eq!(w.grab().0, h(1));
    w.grab_none();
}

#[test]
fn newest_registered_function_is_served_first() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for data in ["a1", "b1", "c1", "a2", "b2", "c2"] {
        c.submit_bg(&data[..1], "", data);
    }
    let mut w = server.connect();
    w.register(&["a", "b", "c"]);
    let order: Vec<Bytes> = (0..6).map(|_| w.grab().2).collect();
    assert_eq!(order, ["c1", "c2", "b1", "b2", "a1", "a2"].map(b));
}

#[test]
fn function_order_comes_before_priority() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.submit(bg_job("a", "", "a-high", Priority::High));
    c.submit(bg_job("b", "", "b-low", Priority::Low));
    let mut w = server.connect();
    w.register(&["a", "b"]);
    assert_eq!(w.grab().2, b("b-low"));
    assert_eq!(w.grab().2, b("a-high"));
}

#[test]
fn round_robin_rotates_between_functions() {
    let server = Server::start(&["-R"]);
    let mut c = server.connect();
    for data in ["a1", "a2", "a3", "b1", "b2", "b3"] {
        c.submit_bg(&data[..1], "", data);
    }
    let mut w = server.connect();
    w.register(&["a", "b"]);
    let order: Vec<Bytes> = (0..6).map(|_| w.grab().2).collect();
    assert_eq!(order, ["b1", "a1", "b2", "a2", "b3", "a3"].map(b));
}

#[test]
fn round_robin_skips_functions_without_jobs() {
    let server = Server::start(&["-R"]);
    let mut c = server.connect();
    for data in ["a1", "a2", "c1"] {
        c.submit_bg(&data[..1], "", data);
    }
    let mut w = server.connect();
    w.register(&["a", "b", "c"]);
    let order: Vec<Bytes> = (0..3).map(|_| w.grab().2).collect();
    assert_eq!(order, ["c1", "a1", "a2"].map(b));
    w.grab_none();
}

#[test]
fn a_worker_may_run_several_jobs_at_once() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let h1 = c.submit_fg("f", "", "one");
    let h2 = c.submit_fg("f", "", "two");
    let mut w = server.connect();
    w.register(&["f"]);
    assert_eq!(w.grab().0, h1);
    assert_eq!(w.grab().0, h2);
    w.complete(&h2, b"2");
    w.complete(&h1, b"1");
    c.expect(Response::WorkComplete {
        handle: h2,
        data: b("2"),
    });
    c.expect(Response::WorkComplete {
        handle: h1,
        data: b("1"),
    });
}
