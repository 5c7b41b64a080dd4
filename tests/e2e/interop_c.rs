//! Interoperability with the C tools of gearmand 1.1.20 (`/usr/bin/gearman`, Debian package
//! gearman-tools): the C client and C worker against our server (shared/docs/protocol.md §9.1).

use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use gearman_shared::protocol::Request;

use crate::harness::{b, ChildGuard, Server};

const GEARMAN: &str = "/usr/bin/gearman";

/// Every C tool run is bounded; the CLI itself has no overall time limit.
const RUN_LIMIT: Duration = Duration::from_secs(15);

fn gearman(server: &Server, args: &[&str]) -> Command {
    assert!(
        Path::new(GEARMAN).is_file(),
        "{GEARMAN} is missing: install the Debian package gearman-tools \
         (`apt-get install gearman-tools`, or run tests/run.sh as root)"
    );
    let mut cmd = Command::new(GEARMAN);
    cmd.arg("-h")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(server.port().to_string())
        .args(args);
    // GEARMAN_SERVER would override -h/-p.
    cmd.env_remove("GEARMAN_SERVER");
    cmd
}

fn run(server: &Server, args: &[&str]) -> Output {
    ChildGuard::spawn(gearman(server, args)).wait_output(RUN_LIMIT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn c_worker_and_c_client_reverse_a_string() {
    let server = Server::start(&[]);
    let _worker = ChildGuard::spawn(gearman(&server, &["-w", "-f", "reverse", "--", "rev"]));
    let out = run(&server, &["-f", "reverse", "hello"]);
    assert!(out.status.success(), "client failed: {out:?}");
    assert_eq!(text(&out.stdout).trim(), "olleh", "{out:?}");
    // One job per word, run in order; `rev` adds no newline to input that has none.
    let out = run(&server, &["-f", "reverse", "second", "third"]);
    assert_eq!(text(&out.stdout).trim(), "dnocesdriht", "{out:?}");
}

#[test]
fn c_worker_consumes_a_background_job() {
    let server = Server::start(&[]);
    let out = run(&server, &["-b", "-f", "bgfn", "bgdata"]);
    assert!(out.status.success(), "background submit failed: {out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let mut admin = server.connect();
    assert_eq!(admin.status_of("bgfn"), Some((1, 0, 0)));
    // Without a command the worker prints the workload; -c 1 exits after one job.
    let out = run(&server, &["-w", "-c", "1", "-f", "bgfn"]);
    assert!(out.status.success(), "worker failed: {out:?}");
    assert_eq!(text(&out.stdout), "bgdata");
    assert_eq!(admin.status_of("bgfn"), Some((0, 0, 0)));
}

#[test]
fn c_client_reports_a_failed_job() {
    let server = Server::start(&[]);
    let _worker = ChildGuard::spawn(gearman(&server, &["-w", "-f", "fails", "--", "false"]));
    let out = run(&server, &["-f", "fails", "x"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("Job failed"), "{out:?}");
}

/// A Rust worker that serves one job of `function` with `respond`.
fn serve_one(
    server: &Server,
    function: &str,
    respond: impl FnOnce(&mut crate::harness::Client, bytes::Bytes) + Send + 'static,
) -> thread::JoinHandle<()> {
    let mut w = server.connect();
    w.register(&[function]);
    thread::spawn(move || {
        w.pre_sleep();
        w.expect(gearman_shared::protocol::Response::Noop);
        let (handle, _, _) = w.grab();
        respond(&mut w, handle);
        w.expect_nothing(200);
    })
}

#[test]
fn c_client_prints_status_data_and_warnings_from_a_worker() {
    let server = Server::start(&[]);
    let worker = serve_one(&server, "chatty", |w, handle| {
        w.send(Request::WorkStatus {
            handle: handle.clone(),
            numerator: b("1"),
            denominator: b("4"),
        });
        w.send(Request::WorkData {
            handle: handle.clone(),
            data: b("data1\n"),
        });
        w.send(Request::WorkWarning {
            handle: handle.clone(),
            data: b("warn1\n"),
        });
        w.complete(&handle, b"final\n");
    });
    let out = run(&server, &["-f", "chatty", "x"]);
    worker.join().expect("worker thread");
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    for line in ["25% Complete", "data1", "final"] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no {line:?} in {stdout:?}"
        );
    }
    assert_eq!(text(&out.stderr), "warn1\n");
}

#[test]
fn fix_c_client_sees_a_work_exception_as_a_failure() {
    // The C server's WORK_FAIL with a trailing NUL makes this client hang forever
    // (shared/docs/protocol.md §4.9).
    let server = Server::start(&[]);
    let worker = serve_one(&server, "throws", |w, handle| {
        w.send(Request::WorkException {
            handle,
            data: b("boom"),
        });
    });
    let out = run(&server, &["-f", "throws", "x"]);
    worker.join().expect("worker thread");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("Job failed"), "{out:?}");
}
