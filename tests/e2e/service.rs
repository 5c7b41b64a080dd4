//! Running under a supervisor: systemd's notify protocol (`READY=1` after the port listens
//! and the queue is replayed, `STOPPING=1` at shutdown, `WATCHDOG=1` only while the
//! processing thread turns), and a panic on any server thread ending the process at once
//! with exit code 70, its message and location in the log, and no acknowledged job lost.
//!
//! Faults are set off with `GEARMAND_TEST_FAULT`, which only debug builds honour
//! (gearmand/src/fault.rs); every test here is `ours_`.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use gearman_shared::protocol::{Priority, Request};

use crate::harness::{bg_job, gearmand_bin, Client, Server};
use crate::server_process::ServerProcess;

/// What the fault hooks react to (gearmand/src/fault.rs).
const TRIGGER: &str = "gearmand-test-fault";
/// The exit code after a panic (gearmand/src/fatal.rs).
const EXIT_PANIC: i32 = 70;
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gearman-service-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).expect("create a scratch directory");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The socket a service manager listens on for `sd_notify` messages.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(dir: &Scratch) -> NotifySocket {
        let path = dir.path("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket { socket, path }
    }

    /// The next message, or `None` after `limit`.
    fn recv(&self, limit: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(limit))
            .expect("set the notify socket's timeout");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Waits (bounded) for a message containing the line `line`; returns it.
    fn expect(&self, line: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.recv(left) {
                Some(message) if message.lines().any(|l| l == line) => return message,
                Some(other) => seen.push(other),
                None => break,
            }
        }
        panic!("no {line:?} within {limit:?}; got {seen:?}");
    }

    /// How many `WATCHDOG=1` messages arrive within `span`.
    fn count_pings(&self, span: Duration) -> usize {
        let deadline = Instant::now() + span;
        let mut pings = 0;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.recv(left) {
                Some(message) if message.lines().any(|l| l == "WATCHDOG=1") => pings += 1,
                Some(_) => {}
                None => break,
            }
        }
        pings
    }
}

/// A server started directly (not through the harness, which probes the port first), with
/// `NOTIFY_SOCKET` and `env` set; returns it and its port.
fn spawn_notified(
    dir: &Scratch,
    notify: &NotifySocket,
    args: &[&str],
    env: &[(&str, &str)],
) -> (ServerProcess, u16) {
    let port = crate::http::free_port();
    let mut cmd = Command::new(gearmand_bin());
    cmd.args(["-L", "127.0.0.1", "-p", &port.to_string(), "-l", "stderr"])
        .args(["--verbose", "INFO", "-P"])
        .arg(dir.path("gearmand.pid"))
        .args(args)
        .env("NOTIFY_SOCKET", &notify.path)
        .envs(env.iter().copied());
    (ServerProcess::spawn(cmd, dir.path("server.log")), port)
}

fn exit_code(status: ExitStatus) -> Option<i32> {
    status.code()
}

/// `READY=1` comes once the port listens and the replayed jobs are in; `STOPPING=1` comes
/// at SIGTERM, before the process exits 0.
#[test]
fn ours_notify_ready_after_replay_and_stopping_at_sigterm() {
    let dir = Scratch::new("ready");
    let db = dir.path("queue.sqlite3");
    let db_arg = db.display().to_string();
    let queue = ["-q", "libsqlite3", "--libsqlite3-db", db_arg.as_str()];
    {
        let server = Server::start(&queue);
        let mut client = server.connect();
        for i in 0..3 {
            client.submit(bg_job("replayed", format!("u{i}"), "x", Priority::Normal));
        }
    }
    let notify = NotifySocket::bind(&dir);
    let (mut process, port) = spawn_notified(&dir, &notify, &queue, &[]);
    let ready = notify.expect("READY=1", Duration::from_secs(15));
    // At READY the port answers and the replayed jobs are already queued.
    let mut client = Client::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(client.status_of("replayed"), Some((3, 0, 0)), "{ready}");
    process.assert_alive();
    process.signal("TERM");
    notify.expect("STOPPING=1", EXIT_LIMIT);
    let status = process.wait_exit(EXIT_LIMIT);
    assert_eq!(exit_code(status), Some(0), "{}", process.log());
}

/// With `WATCHDOG_USEC` the pings come while the processing thread turns, and stop when
/// it is blocked: systemd would then restart the service.
#[test]
fn ours_watchdog_pings_stop_when_the_processing_thread_is_blocked() {
    let dir = Scratch::new("watchdog");
    let notify = NotifySocket::bind(&dir);
    // A ping every 100 ms while healthy.
    let env = [
        ("WATCHDOG_USEC", "400000"),
        ("GEARMAND_TEST_FAULT", "proc-stall"),
    ];
    let (mut process, port) = spawn_notified(&dir, &notify, &[], &env);
    notify.expect("READY=1", Duration::from_secs(15));
    // Idle, the processor still beats: pings keep coming.
    let healthy = notify.count_pings(Duration::from_secs(1));
    assert!(healthy >= 5, "only {healthy} pings in 1 s while healthy");

    let mut client = Client::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    client.send(Request::Submit(bg_job(TRIGGER, "", "", Priority::Normal)));
    // Pings sent before the stall was seen may still be in flight for two periods.
    notify.count_pings(Duration::from_millis(500));
    let stalled = notify.count_pings(Duration::from_millis(1500));
    assert_eq!(stalled, 0, "pings went on while the processor was blocked");
    process.assert_alive();
    let log = process.log();
    assert!(
        log.contains("withholding the watchdog ping"),
        "the stall is not logged:\n{log}"
    );
}

/// Starts a server with the fault `site` armed.
fn armed(site: &str, args: &[&str]) -> Server {
    Server::start_with_env(args, &[("GEARMAND_TEST_FAULT", OsStr::new(site))])
}

/// The server exited with [`EXIT_PANIC`] (not a signal, not 0) within [`EXIT_LIMIT`],
/// having logged which thread panicked, where and why.
fn assert_died_of_panic(server: &mut Server, thread: &str) {
    let status = server.wait_exit(EXIT_LIMIT);
    let log = server.log();
    assert_eq!(
        exit_code(status),
        Some(EXIT_PANIC),
        "exit {status:?} (signal {:?})\n{log}",
        status.signal()
    );
    let line = log
        .lines()
        .find(|l| l.contains("panicked at"))
        .unwrap_or_else(|| panic!("no panic message in the log:\n{log}"));
    assert!(
        line.contains(&format!("thread '{thread}")) && line.contains("test fault"),
        "{line}"
    );
    assert!(line.contains(".rs:"), "no location in {line}");
}

#[test]
fn ours_panic_on_the_listener_thread_ends_the_process() {
    let mut server = armed("listener", &["-t", "4"]);
    // The harness's readiness probe was the first connection; this is the second.
    let _second = TcpStream::connect(server.addr());
    assert_died_of_panic(&mut server, "gearmand-listen");
}

#[test]
fn ours_panic_on_an_io_thread_ends_the_process() {
    for threads in ["4", "0"] {
        let mut server = armed("io", &["-t", threads]);
        let mut client = server.connect();
        client.send(Request::Echo {
            data: TRIGGER.into(),
        });
        let thread = if threads == "0" {
            "gearmand-main"
        } else {
            "gearmand-io-"
        };
        assert_died_of_panic(&mut server, thread);
    }
}

/// The processing thread dies after three acknowledged background jobs: the restart
/// replays all three.
#[test]
fn ours_panic_on_the_processing_thread_ends_the_process_and_loses_no_job() {
    died_with_jobs_kept("proc", "gearmand-proc");
}

/// The store thread dies writing a job it had not acknowledged: the three before it are
/// replayed, the one it died on was never acknowledged.
#[test]
fn ours_panic_on_the_store_thread_ends_the_process_and_loses_no_job() {
    died_with_jobs_kept("store", "gearmand-store");
}

fn died_with_jobs_kept(site: &str, thread: &str) {
    let dir = Scratch::new(site);
    let db = dir.path("queue.sqlite3");
    let db_arg = db.display().to_string();
    let queue = ["-q", "libsqlite3", "--libsqlite3-db", db_arg.as_str()];
    let mut server = armed(site, &queue);
    let mut client = server.connect();
    for i in 0..3 {
        client.submit(bg_job("kept", format!("u{i}"), "x", Priority::Normal));
    }
    client.send(Request::Submit(bg_job(TRIGGER, "t", "", Priority::Normal)));
    assert_died_of_panic(&mut server, thread);
    drop(server);
    let restarted = Server::start(&queue);
    let mut admin = restarted.connect();
    assert_eq!(admin.status_of("kept"), Some((3, 0, 0)));
    assert_eq!(
        admin.status_of(TRIGGER),
        None,
        "an unacknowledged job came back"
    );
}

#[test]
fn ours_panic_on_the_http_thread_ends_the_process() {
    let http_port = crate::http::free_port().to_string();
    let mut server = armed("http", &["-r", "http", "--http-port", &http_port]);
    let mut stream = TcpStream::connect(("127.0.0.1", http_port.parse::<u16>().expect("a port")))
        .expect("connect to the HTTP port");
    stream
        .set_read_timeout(Some(EXIT_LIMIT))
        .expect("set a read timeout");
    let request = format!("POST /{TRIGGER} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    // The HTTP connections, handlers included, run on the `gearmand-http` thread's own
    // event loop.
    assert_died_of_panic(&mut server, "gearmand-http");
}
