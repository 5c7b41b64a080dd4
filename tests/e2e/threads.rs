//! The `-t` thread model: every thread count serves a full round trip, and our server names its
//! threads `gearmand-listen`, `gearmand-io-N` and `gearmand-proc` as the mode requires
//! (shared/docs/protocol.md §8.3).

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use gearman_shared::protocol::{Request, Response};

use crate::harness::{b, Server};

/// Names (`comm`) of the server's threads.
fn thread_names(server: &Server) -> Vec<String> {
    let dir = format!("/proc/{}/task", server.pid());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|entry| {
            let path = entry.ok()?.path().join("comm");
            Some(fs::read_to_string(path).ok()?.trim_end().to_string())
        })
        .collect();
    names.sort();
    names
}

/// Submit, grab, report progress and complete across three connections.
fn round_trip(server: &Server) {
    let mut c = server.connect();
    let mut w = server.connect();
    w.can_do("reverse");
    w.pre_sleep();
    w.sync();
    let handle = c.submit_fg("reverse", "", "hello");
    w.expect(Response::Noop);
    let (got, function, data) = w.grab();
    assert_eq!((&got, function, data), (&handle, b("reverse"), b("hello")));
    w.send(Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("1"),
        denominator: b("2"),
    });
    w.complete(&handle, b"olleh");
    c.expect(Response::WorkStatus {
        handle: handle.clone(),
        numerator: b("1"),
        denominator: b("2"),
    });
    c.expect(Response::WorkComplete {
        handle: handle.clone(),
        data: b("olleh"),
    });
    assert_eq!(server.connect().get_status(&handle), (false, false, 0, 0));
}

/// Several clients at once, so that connections land on different I/O threads.
fn round_trips_on_many_connections(server: &Server) {
    let mut workers: Vec<_> = (0..4).map(|_| server.connect()).collect();
    for w in &mut workers {
        w.register(&["f"]);
    }
    let mut clients: Vec<_> = (0..4).map(|_| server.connect()).collect();
    let handles: Vec<_> = clients
        .iter_mut()
        .enumerate()
        .map(|(i, c)| c.submit_fg("f", &format!("u{i}"), &format!("d{i}")))
        .collect();
    for w in &mut workers {
        let (handle, _, data) = w.grab();
        let mut reply = data.to_vec();
        reply.reverse();
        w.complete(&handle, &reply);
    }
    for (i, (c, handle)) in clients.iter_mut().zip(handles).enumerate() {
        c.expect(Response::WorkComplete {
            handle,
            data: b(format!("{i}d")),
        });
    }
}

/// A worker that dies holding a job: the job goes to the next worker, whose result reaches
/// the client.
fn a_dead_workers_job_goes_to_another(server: &Server) {
    let mut c = server.connect();
    let mut dying = server.connect();
    dying.register(&["g"]);
    let mut next = server.connect();
    next.register(&["g"]);
    next.pre_sleep();
    next.sync();
    let handle = c.submit_fg("g", "", "again");
    // Woken by the submission, it finds the job taken and sleeps again (a worker is woken
    // once per sleep in which it has grabbed: the GRAB_JOB re-arms the NOOP).
    next.expect(Response::Noop);
    let (held, _, _) = dying.grab();
    assert_eq!(held, handle);
    next.grab_none();
    next.pre_sleep();
    next.sync();
    drop(dying);
    next.expect(Response::Noop);
    let (got, _, data) = next.grab();
    assert_eq!((&got, data), (&handle, b("again")));
    next.complete(&handle, b"done");
    c.expect(Response::WorkComplete {
        handle,
        data: b("done"),
    });
}

fn check_mode(threads: &str) -> Server {
    let server = Server::start(&["-t", threads]);
    round_trip(&server);
    round_trips_on_many_connections(&server);
    a_dead_workers_job_goes_to_another(&server);
    server
}

#[test]
fn every_thread_count_serves_a_round_trip() {
    for threads in ["0", "1", "2", "4"] {
        check_mode(threads);
    }
}

/// Waits for the expected set of names (threads may still be starting when the port opens).
fn wait_for_names(server: &Server, what: &str, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let names = thread_names(server);
        if ok(&names) {
            return names;
        }
        assert!(
            Instant::now() < deadline,
            "expected {what}, threads are {names:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == name)
}

#[test]
fn ours_t4_has_a_listener_four_io_threads_and_a_processor() {
    let server = check_mode("4");
    let expected = [
        "gearmand-listen",
        "gearmand-io-0",
        "gearmand-io-1",
        "gearmand-io-2",
        "gearmand-io-3",
        "gearmand-proc",
    ];
    let names = wait_for_names(&server, "all -t 4 threads named", |names| {
        expected.iter().all(|e| has(names, e))
    });
    assert!(!has(&names, "gearmand-io-4"), "{names:?}");
}

#[test]
fn ours_t1_has_one_io_thread_that_also_processes() {
    let server = check_mode("1");
    let names = wait_for_names(&server, "gearmand-io-0 named", |names| {
        has(names, "gearmand-io-0")
    });
    assert!(!has(&names, "gearmand-io-1"), "{names:?}");
    assert!(!has(&names, "gearmand-proc"), "{names:?}");
}

#[test]
fn ours_t0_has_no_io_threads() {
    let server = check_mode("0");
    let names = thread_names(&server);
    assert!(
        !names.iter().any(|n| n.starts_with("gearmand-io")),
        "{names:?}"
    );
}

/// With every part running (HTTP, a persistent queue, a timer on a partial packet), a
/// `-t 4` server has only its own named threads: no async-io reactor thread and no
/// async-std runtime or blocking pool, whose work the threads' own event loops now do.
/// (`tracing-appender` is the log writer's thread, named by that crate.)
#[test]
fn ours_t4_with_http_and_sqlite_runs_only_its_own_threads() {
    use std::io::{Read, Write};
    let dir = std::env::temp_dir().join(format!("gearman-threads-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("scratch directory");
    let db = dir.join("queue.sqlite3").display().to_string();
    let http_port = crate::http::free_port().to_string();
    let server = Server::start(&[
        "-t",
        "4",
        "-r",
        "http",
        "--http-port",
        &http_port,
        "-q",
        "libsqlite3",
        "--libsqlite3-db",
        &db,
        "--partial-timeout",
        "1",
    ]);
    // An HTTP submission stored in the queue.
    let mut http = std::net::TcpStream::connect(("127.0.0.1", http_port.parse().expect("port")))
        .expect("connect to the HTTP port");
    http.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    http.write_all(
        b"POST /f HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\n\
          Content-Length: 1\r\nConnection: close\r\n\r\nx",
    )
    .expect("send the request");
    let mut reply = String::new();
    let _ = http.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // Half a packet, which the partial-packet timer closes.
    let mut partial = server.connect();
    partial.send_raw(b"\0REQ");
    round_trip(&server);
    let names = thread_names(&server);
    let foreign: Vec<&String> = names
        .iter()
        .filter(|n| !(n.as_str() == "gearmand" || n.starts_with("gearmand-")))
        .filter(|n| !n.starts_with("tracing-append"))
        .collect();
    assert!(
        foreign.is_empty(),
        "threads not our own: {foreign:?} in {names:?}"
    );
    partial.expect_closed();
    let _ = fs::remove_dir_all(dir);
}
