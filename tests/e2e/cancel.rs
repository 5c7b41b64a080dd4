//! Admin-driven changes to jobs over the binary protocol's view: `cancel job` fails a queued
//! job for its clients and the job is never handed out (shared/docs/protocol.md §4.16).

use gearman_shared::protocol::PacketType;

use crate::harness::Server;

#[test]
fn cancel_job_fails_a_queued_job_and_it_never_runs() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let handle = c.submit_fg("f", "", "doomed");
    let mut admin = server.connect();
    assert_eq!(admin.admin("cancel job H:host:1"), "OK\r\n");
    // Server-generated WORK_FAIL: the bare handle.
    c.expect_packet(PacketType::WorkFail, b"H:host:1");
    let mut w = server.connect();
    w.register(&["f"]);
    w.grab_none();
    assert_eq!(c.get_status(&handle), (false, false, 0, 0));
    assert!(admin.show_jobs().is_empty());
}

#[test]
fn cancel_job_of_a_background_job() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.submit_bg("f", "", "doomed");
    let mut admin = server.connect();
    assert_eq!(admin.admin("cancel job H:host:1"), "OK\r\n");
    c.expect_nothing(100);
    let mut w = server.connect();
    w.register(&["f"]);
    w.grab_none();
}

#[test]
fn cancel_job_of_an_unknown_handle() {
    let server = Server::start(&[]);
    let mut admin = server.connect();
    assert_eq!(admin.admin("cancel job H:host:99"), "ERR UNKNOWN_JOB\r\n");
}
