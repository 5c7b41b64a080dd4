//! Running the server (shared/docs/protocol.md §8): the admin `shutdown` commands and who may use
//! them, signals, log reopening, the pid file, `--check-args` and option errors, `-V`, `-h`,
//! `-d`, configuration files, `GEARMAND_PORT`, keepalive, `-u` and `-f`.
//!
//! These tests start the binary themselves ([`Proc`]) to control its whole command line,
//! environment and output files. Every wait has a deadline and every process started here
//! is killed at the end, also when a test fails.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearman_shared::protocol::{Request, Response};

use crate::harness::{b, gearmand_bin, wait_until, ChildGuard, Client, Server};
use crate::server_process::ServerProcess;

/// How long a server gets to answer its first ECHO.
const START_LIMIT: Duration = Duration::from_secs(10);
/// How long a shutdown may take.
const EXIT_LIMIT: Duration = Duration::from_secs(5);
/// How long a command that must exit at once (`--check-args`, `-V`, …) may take.
const RUN_LIMIT: Duration = Duration::from_secs(10);

const DENIED: &str = "ERR PERMISSION_DENIED shutdown+is+not+allowed+from+this+address\r\n";

// ---------------------------------------------------------------------------------------------
// Helpers

/// True when the suite runs against another server binary (`GEARMAND_BIN`, e.g. the C one).
fn foreign_server() -> bool {
    std::env::var_os("GEARMAND_BIN").is_some()
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory, removed when dropped (kept when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "gearman-ops-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `path(name)` as a string argument.
    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("--- scratch directory kept: {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Whether the port refuses connections (nothing listens any more).
fn refuses(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
}

/// Whether an ECHO round trip works on `addr`.
fn answers_echo(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let mut conn = gearman_shared::connection::Connection::from_stream(stream);
    if conn
        .set_read_timeout(Some(Duration::from_millis(500)))
        .is_err()
    {
        return false;
    }
    conn.send(gearman_shared::protocol::Request::Echo { data: b("ready") })
        .is_ok()
        && matches!(conn.read_response(), Ok(Response::Echo { data }) if data == "ready")
}

/// The harness refuses to test a binary older than its sources; run that check once here too,
/// since these tests start the binary themselves.
fn ensure_fresh_binary() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    if std::env::var_os("GEARMAND_BIN").is_none() && CHECKED.get().is_none() {
        drop(Server::start(&[]));
        let _ = CHECKED.set(());
    }
}

fn bin() -> PathBuf {
    ensure_fresh_binary();
    let bin = gearmand_bin();
    assert!(
        bin.is_file(),
        "gearmand binary not found at {}: build it with `cargo build --workspace --bins`",
        bin.display()
    );
    bin
}

/// A command for the server binary, run as `gearmand` (the C server prefixes its messages
/// with `argv[0]`), without a `GEARMAND_PORT` from the test's environment.
fn command() -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg0("gearmand").env_remove("GEARMAND_PORT");
    cmd
}

/// Runs gearmand with `args` to completion (it must exit within [`RUN_LIMIT`]).
fn run(args: &[&str]) -> Output {
    run_in(args, None)
}

fn run_in(args: &[&str], cwd: Option<&Path>) -> Output {
    let mut cmd = command();
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    ChildGuard::spawn(cmd).wait_output(RUN_LIMIT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks a run failed with exit code 1, nothing on stdout and exactly `stderr`.
fn assert_fails_with(args: &[&str], out: &Output, stderr: &str) {
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (Some(1), String::new(), stderr.to_string()),
        "gearmand {}",
        args.join(" ")
    );
}

/// A running gearmand started by a test; killed when dropped.
struct Proc {
    process: ServerProcess,
    /// Where it listens (connect here).
    addr: SocketAddr,
}

impl Proc {
    /// Starts gearmand with exactly `args` and extra environment, its output going to a
    /// file in `dir`, and waits until `addr` answers ECHO.
    fn spawn(dir: &Scratch, args: &[String], env: &[(&str, String)], addr: SocketAddr) -> Proc {
        let mut cmd = command();
        cmd.args(args);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut proc = Proc {
            process: ServerProcess::spawn(cmd, dir.path("output")),
            addr,
        };
        let deadline = Instant::now() + START_LIMIT;
        while !answers_echo(addr) {
            if let Some(status) = proc.exit_status() {
                panic!(
                    "gearmand {} exited with {status} before serving:\n{}",
                    args.join(" "),
                    proc.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "gearmand {} did not answer ECHO on {addr} within {START_LIMIT:?}:\n{}",
                args.join(" "),
                proc.output()
            );
            thread::sleep(Duration::from_millis(20));
        }
        proc
    }

    /// Starts gearmand on 127.0.0.1 and a free port with `-l stderr`, the pid file in `dir`
    /// and the handle prefix `H:host`, unless `extra` gives those options itself (the C
    /// server refuses repeated options), then `extra`.
    fn start(dir: &Scratch, extra: &[&str]) -> Proc {
        let port = free_port();
        let given = |names: &[&str]| {
            extra.iter().any(|a| {
                names
                    .iter()
                    .any(|n| a == n || a.starts_with(&format!("{n}=")))
            })
        };
        let mut args: Vec<String> = vec!["-L".into(), "127.0.0.1".into()];
        args.extend(["-p".into(), port.to_string()]);
        if !given(&["-l", "--log-file"]) {
            args.extend(["-l".into(), "stderr".into()]);
        }
        if !given(&["-P", "--pid-file"]) {
            args.extend(["-P".into(), dir.arg("gearmand.pid")]);
        }
        if !given(&["--job-handle-prefix"]) {
            args.extend(["--job-handle-prefix".into(), "H:host".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Proc::spawn(dir, &args, &[], loopback(port))
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// What it wrote to stdout and stderr.
    fn output(&self) -> String {
        self.process.log()
    }

    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.process.exit_status()
    }

    fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        self.process.wait_exit(limit)
    }

    fn assert_alive(&mut self) {
        self.process.assert_alive();
    }
}

fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg("-s")
        .arg(name)
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -s {name} {pid} failed");
}

/// Whether a process exists and is not a zombie (a daemon is not our child: whoever adopts
/// it may not reap it at once).
fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// A process that is not our child (a daemon): SIGKILLed when dropped if still alive.
struct Detached(Option<u32>);

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            if process_alive(pid) {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// The pid in a pid file, once it is there.
fn read_pid_file(path: &Path) -> u32 {
    let mut pid = None;
    wait_until(
        Duration::from_secs(5),
        &format!("pid file {} written", path.display()),
        || {
            pid = fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            pid.is_some()
        },
    );
    pid.unwrap_or_default()
}

/// Runs `python3` to open a connection from `source` to `target`, send each line with
/// `\r\n` and collect the replies (single `OK`/`ERR` lines or `.`-terminated listings).
fn talk_from(source: &str, target: SocketAddr, lines: &[&str]) -> String {
    const SCRIPT: &str = r#"
import socket, sys
source, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind((source, 0))
s.settimeout(5)
s.connect((host, port))
out = b""
for line in sys.argv[4:]:
    s.sendall(line.encode() + b"\r\n")
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        if buf.startswith((b"OK", b"ERR")) and buf.endswith(b"\n"):
            break
        if buf == b".\n" or buf.endswith(b"\n.\n"):
            break
    out += buf
sys.stdout.buffer.write(out)
"#;
    let python = std::env::var("E2E_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let mut cmd = Command::new(&python);
    cmd.arg("-c")
        .arg(SCRIPT)
        .arg(source)
        .arg(target.ip().to_string())
        .arg(target.port().to_string())
        .args(lines);
    let out = ChildGuard::spawn(cmd).wait_output(Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{python} (needed to bind a client socket to {source}; tests/run.sh installs it) \
         failed: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

// ---------------------------------------------------------------------------------------------
// Admin shutdown

#[test]
fn ours_admin_shutdown_from_loopback_exits_0() {
    let dir = Scratch::new();
    let mut p = Proc::start(&dir, &[]);
    let pid_file = dir.path("gearmand.pid");
    assert_eq!(read_pid_file(&pid_file), p.pid());
    let mut c = p.connect();
    c.submit_fg("f", "", "pending work does not delay an immediate shutdown");
    let mut a = p.connect();
    assert_eq!(a.admin("shutdown"), "OK\r\n");
    assert_eq!(p.wait_exit(EXIT_LIMIT).code(), Some(0));
    a.expect_closed();
    assert!(!pid_file.exists(), "pid file left behind");
}

/// A worker holds one job, a background and a foreground job are queued; a graceful
/// shutdown is started by `start_graceful`. New connections must be refused, the existing ones
/// keep working, the worker finishes every job, the client gets every result (the last one
/// included), and the process then exits 0 by itself.
fn graceful_shutdown_finishes_the_work(start_graceful: impl FnOnce(&Proc, &mut Client)) {
    let dir = Scratch::new();
    let mut p = Proc::start(&dir, &[]);
    let pid_file = dir.path("gearmand.pid");
    let mut c = p.connect();
    let mut w = p.connect();
    let mut a = p.connect();
    w.register(&["f"]);
    let held = c.submit_fg("f", "", "held");
    assert_eq!(w.grab().0, held);
    let background = c.submit_bg("f", "", "background");
    let queued = c.submit_fg("f", "", "queued");

    start_graceful(&p, &mut a);
    wait_until(Duration::from_secs(5), "the listener closes", || {
        refuses(p.addr)
    });
    thread::sleep(Duration::from_millis(200));
    p.assert_alive();
    // Existing connections are still served, admin included.
    assert_eq!(a.admin("status"), "f\t3\t1\t1\n.\n");
    c.echo(b"client still served");

    w.complete(&held, b"r1");
    c.expect(Response::WorkComplete {
        handle: held,
        data: b("r1"),
    });
    assert_eq!(w.grab().0, background);
    w.complete(&background, b"");
    w.sync();
    p.assert_alive();
    assert_eq!(w.grab().0, queued);
    w.complete(&queued, b"r2");
    // The result of the last job still reaches its client.
    c.expect(Response::WorkComplete {
        handle: queued,
        data: b("r2"),
    });
    assert_eq!(p.wait_exit(EXIT_LIMIT).code(), Some(0));
    assert!(!pid_file.exists(), "pid file left behind");
}

#[test]
fn ours_admin_shutdown_graceful_finishes_held_and_queued_jobs_then_exits_0() {
    graceful_shutdown_finishes_the_work(|_, a| {
        assert_eq!(a.admin("shutdown graceful"), "OK\r\n");
    });
}

#[test]
fn ours_admin_shutdown_graceful_on_an_idle_server_exits_at_once() {
    let dir = Scratch::new();
    let mut p = Proc::start(&dir, &[]);
    let mut a = p.connect();
    assert_eq!(a.admin("SHUTDOWN GRACEFUL"), "OK\r\n");
    assert_eq!(p.wait_exit(EXIT_LIMIT).code(), Some(0));
}

/// The exit waits for the last replies to be written, but a client that never reads must not
/// hold it up for ever: after 5 s the server exits without them.
#[test]
fn ours_admin_shutdown_is_not_held_up_by_a_client_that_never_reads() {
    let mut server = Server::start(&[]);
    let mut stuck = server.connect();
    // 32 echoes of 1 MiB: far more than the kernel's socket buffers hold, so the server's
    // writer for this connection is left waiting with replies unwritten.
    // The sends return once the server has read all but what the buffers hold.
    let data = Bytes::from(vec![b'x'; 1 << 20]);
    for _ in 0..32 {
        stuck.send(Request::Echo { data: data.clone() });
    }
    let mut admin = server.connect();
    let started = Instant::now();
    assert_eq!(admin.admin("shutdown"), "OK\r\n");
    assert_eq!(server.wait_exit(Duration::from_secs(15)).code(), Some(0));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(10),
        "the exit took {took:?}; it should wait about 5 s for the stuck writer, then go"
    );
}

#[test]
fn ours_shutdown_is_refused_from_an_address_not_allowed() {
    let dir = Scratch::new();
    let port = free_port();
    let args: Vec<String> = [
        "-L",
        "0.0.0.0",
        "-p",
        &port.to_string(),
        "-l",
        "stderr",
        "-P",
        &dir.arg("gearmand.pid"),
        "--allow-shutdown-from",
        "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut p = Proc::spawn(&dir, &args, &[], loopback(port));

    let target = SocketAddr::from(([127, 0, 0, 2], port));
    let got = talk_from(
        "127.0.0.2",
        target,
        &["shutdown", "shutdown graceful", "workers"],
    );
    let (denials, workers) = got.split_at(got.len().min(2 * DENIED.len()));
    assert_eq!(denials, DENIED.repeat(2), "replies from 127.0.0.2: {got:?}");
    assert!(
        workers.lines().any(|l| l.ends_with(" 127.0.0.2 - :")),
        "the connection did come from 127.0.0.2: {workers:?}"
    );
    thread::sleep(Duration::from_millis(200));
    p.assert_alive();
    let mut c = p.connect();
    c.echo(b"still serving");

    // From the allowed address it works.
    assert_eq!(c.admin("shutdown"), "OK\r\n");
    assert_eq!(p.wait_exit(EXIT_LIMIT).code(), Some(0));
}

#[test]
fn ours_allow_shutdown_from_a_network_range() {
    let dir = Scratch::new();
    let port = free_port();
    let args: Vec<String> = [
        "-L",
        "0.0.0.0",
        "-p",
        &port.to_string(),
        "-l",
        "stderr",
        "-P",
        &dir.arg("gearmand.pid"),
        "--allow-shutdown-from",
        "10.0.0.0/8,127.0.0.2/31",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut p = Proc::spawn(&dir, &args, &[], loopback(port));
    // 127.0.0.1 is outside 127.0.0.2/31.
    let mut c = p.connect();
    assert_eq!(c.admin("shutdown"), DENIED);
    p.assert_alive();
    let got = talk_from(
        "127.0.0.3",
        SocketAddr::from(([127, 0, 0, 3], port)),
        &["shutdown"],
    );
    assert_eq!(got, "OK\r\n");
    assert_eq!(p.wait_exit(EXIT_LIMIT).code(), Some(0));
}

#[test]
fn ours_allow_shutdown_from_none_refuses_even_loopback() {
    let dir = Scratch::new();
    let mut p = Proc::start(&dir, &["--allow-shutdown-from", "none"]);
    let mut a = p.connect();
    assert_eq!(a.admin("shutdown"), DENIED);
    assert_eq!(a.admin("shutdown graceful"), DENIED);
    thread::sleep(Duration::from_millis(200));
    p.assert_alive();
    // Not even graceful: new connections are still accepted.
    let mut c = p.connect();
    c.echo(b"still accepting");
    assert_eq!(a.admin("version"), "OK 1.1.20\n");
    p.signal("TERM");
    assert_eq!(p.wait_exit(EXIT_LIMIT).code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// Signals

#[test]
fn sigterm_exits_0_quickly_and_removes_the_pid_file() {
    let dir = Scratch::new();
    let mut p = Proc::start(&dir, &[]);
    let pid_file = dir.path("gearmand.pid");
    assert_eq!(read_pid_file(&pid_file), p.pid());
    let mut c = p.connect();
    c.submit_fg("f", "", "queued");
    let mut w = p.connect();
    w.register(&["g"]);
    let started = Instant::now();
    p.signal("TERM");
    assert_eq!(p.wait_exit(Duration::from_secs(2)).code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "SIGTERM took {:?}",
        started.elapsed()
    );
    assert!(!pid_file.exists(), "pid file left behind after SIGTERM");
    c.expect_closed();
}

#[test]
fn sigusr1_finishes_held_and_queued_jobs_then_exits_0() {
    graceful_shutdown_finishes_the_work(|p, _| p.signal("USR1"));
}

#[test]
fn sighup_reopens_the_log_file() {
    let dir = Scratch::new();
    let log = dir.path("gearmand.log");
    let rotated = dir.path("gearmand.log.1");
    let mut p = Proc::start(&dir, &["-l", &dir.arg("gearmand.log"), "--verbose", "INFO"]);
    let len = |path: &Path| fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    wait_until(Duration::from_secs(5), "the log file gets lines", || {
        len(&log) > 0
    });
    fs::rename(&log, &rotated).expect("rotate the log file");
    p.connect().echo(b"logged to the rotated file");
    p.signal("HUP");
    wait_until(
        Duration::from_secs(5),
        "SIGHUP recreates the log file",
        || log.exists(),
    );
    // Once the new file gets lines, later ones go there and not to the rotated file.
    let mut c = p.connect();
    c.echo(b"after the reopen");
    wait_until(
        Duration::from_secs(5),
        "the new log file gets lines",
        || len(&log) > 0,
    );
    let (new_before, old_before) = (len(&log), len(&rotated));
    for _ in 0..3 {
        p.connect().echo(b"more lines");
    }
    wait_until(Duration::from_secs(5), "the new log file grows", || {
        len(&log) > new_before
    });
    assert_eq!(
        len(&rotated),
        old_before,
        "the rotated file still gets lines after SIGHUP"
    );
    p.assert_alive();
    c.echo(b"still serving");
}

#[test]
fn ours_sighup_without_the_log_directory_keeps_serving_and_says_why() {
    let dir = Scratch::new();
    let logs = dir.path("logs");
    fs::create_dir_all(&logs).expect("create the log directory");
    let log = logs.join("gearmand.log");
    let log_arg = log.to_str().expect("a UTF-8 scratch path").to_string();
    let mut p = Proc::start(&dir, &["-l", &log_arg, "--verbose", "INFO"]);
    let mut c = p.connect();
    c.echo(b"before");
    fs::remove_dir_all(&logs).expect("remove the log directory");
    p.signal("HUP");
    wait_until(
        Duration::from_secs(5),
        "the failed reopen is reported on stderr",
        || p.output().contains("cannot reopen"),
    );
    p.assert_alive();
    c.echo(b"after the failed reopen");
    p.connect().echo(b"a new connection");
    // Once the directory is back, the next SIGHUP logs there again.
    fs::create_dir_all(&logs).expect("recreate the log directory");
    p.signal("HUP");
    wait_until(
        Duration::from_secs(5),
        "SIGHUP recreates the log file",
        || log.exists(),
    );
    p.connect().echo(b"logged again");
    p.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Pid file

#[test]
fn pid_file_is_written_at_start_and_removed_at_exit() {
    let dir = Scratch::new();
    let path = dir.path("custom.pid");
    let mut p = Proc::start(&dir, &["-P", &dir.arg("custom.pid")]);
    let content = fs::read_to_string(&path).expect("pid file exists once the server serves");
    assert_eq!(content.trim(), p.pid().to_string(), "pid file {content:?}");
    p.signal("TERM");
    assert_eq!(p.wait_exit(EXIT_LIMIT).code(), Some(0));
    assert!(!path.exists(), "pid file left behind");
}

#[test]
fn an_unwritable_explicit_pid_file_is_fatal() {
    let dir = Scratch::new();
    let pid_file = dir.arg("no/such/dir/gearmand.pid");
    let port = free_port().to_string();
    let args = [
        "-L",
        "127.0.0.1",
        "-p",
        &port,
        "-l",
        "none",
        "-P",
        &pid_file,
    ];
    let out = run(&args);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success() && stderr.starts_with("gearmand: ") && stderr.contains(&pid_file),
        "gearmand {}: expected a failure naming the pid file, got {} with stderr {stderr:?}",
        args.join(" "),
        out.status
    );
}

// ---------------------------------------------------------------------------------------------
// Option checking and information

#[test]
fn check_args_accepts_valid_options_and_exits_0() {
    let dir = Scratch::new();
    let db = dir.arg("queue.db");
    let port = free_port().to_string();
    for args in [
        vec!["--check-args"],
        vec![
            "--check-args",
            "-p",
            &port,
            "-L",
            "127.0.0.1",
            "-t",
            "2",
            "-j",
            "3",
            "--verbose",
            "DEBUG",
            "--job-handle-prefix",
            "X",
            "-q",
            "libsqlite3",
            "--libsqlite3-db",
            &db,
            "--keepalive",
            "--keepalive-idle",
            "30",
            "-b",
            "64",
            "-w",
            "1",
            "-R",
            "--exceptions",
        ],
        vec!["--check-args", "-q", "BUILTIN", "--hashtable-buckets", "1"],
    ] {
        let out = run(&args);
        assert_eq!(
            (out.status.code(), text(&out.stdout), text(&out.stderr)),
            (Some(0), String::new(), String::new()),
            "gearmand {}",
            args.join(" ")
        );
    }
    // Only checked: the port is not bound, nothing is written.
    assert!(refuses(loopback(port.parse().expect("port"))));
}

/// The messages of the C server's start-up errors as captured (shared/docs/protocol.md §8.1), byte for byte, with exit code 1.
const OPTION_ERRORS: [(&[&str], &str); 8] = [
    (&["--bogus"], "gearmand: unrecognised option '--bogus'\n"),
    (
        &["--verbose", "LOUD"],
        "gearmand: Invalid value for --verbose supplied\n",
    ),
    (
        &["-q", "nosuchqueue"],
        "gearmand: Error while initializing the queue : nosuchqueue\n",
    ),
    (
        &["-r", "nosuchproto"],
        "gearmand: Unknown protocol module : nosuchproto\n",
    ),
    (
        &["-t", "abc"],
        "gearmand: the argument ('abc') for option '--threads' is invalid\n",
    ),
    (
        &["--hashtable-buckets", "0"],
        "gearmand: hashtable-buckets has to be greater than 0\n",
    ),
    (
        &["extra_positional"],
        "gearmand: unrecognised option 'extra_positional'\n",
    ),
    (
        &["-q", "libsqlite3"],
        "gearmand: Error while initializing the queue : libsqlite3\n",
    ),
];

#[test]
fn ours_check_args_reports_invalid_options_like_the_c_server() {
    for (bad, message) in OPTION_ERRORS {
        let args: Vec<&str> = std::iter::once("--check-args")
            .chain(bad.iter().copied())
            .collect();
        assert_fails_with(&args, &run(&args), message);
    }
}

#[test]
fn invalid_options_stop_the_start_with_the_c_servers_messages() {
    let dir = Scratch::new();
    let pid_file = dir.arg("gearmand.pid");
    for (bad, message) in OPTION_ERRORS {
        let port = free_port().to_string();
        let mut args: Vec<&str> = bad.to_vec();
        args.extend([
            "-L",
            "127.0.0.1",
            "-p",
            &port,
            "-l",
            "none",
            "-P",
            &pid_file,
        ]);
        assert_fails_with(&args, &run(&args), message);
    }
}

#[test]
fn ours_other_invalid_options_are_refused_with_a_message() {
    for args in [
        vec!["--check-args", "--ssl"],
        vec!["--check-args", "--allow-shutdown-from", "bogus"],
        vec!["--check-args", "--allow-shutdown-from", "10.0.0.0/33"],
        vec!["--check-args", "-u", "nosuchuser"],
        vec!["--check-args", "-p", "notaport"],
    ] {
        let out = run(&args);
        let stderr = text(&out.stderr);
        assert!(
            out.status.code() == Some(1) && stderr.starts_with("gearmand: ") && out.stdout.is_empty(),
            "gearmand {}: expected exit 1 and a `gearmand: ` message, got {} with stderr {stderr:?}",
            args.join(" "),
            out.status
        );
    }
}

#[test]
fn a_missing_explicit_config_file_fails_with_exit_1() {
    for args in [
        vec!["--config-file", "/nonexistent/gearmand.conf"],
        vec!["--config-file=/nonexistent/gearmand.conf"],
        vec!["@/nonexistent/gearmand.conf"],
    ] {
        if args[0].starts_with('@') && foreign_server() {
            continue; // `@FILE` is ours
        }
        assert_fails_with(
            &args,
            &run(&args),
            "gearmand: Could not open configuration file.\n",
        );
    }
}

#[test]
fn ours_version_flag() {
    let want = format!(
        "\ngearmand 1.1.20 - https://github.com/gearman/gearmand/issues (gearman-rs {})\n",
        env!("CARGO_PKG_VERSION")
    );
    for flag in ["-V", "--version"] {
        let out = run(&[flag]);
        assert_eq!(
            (out.status.code(), text(&out.stdout), text(&out.stderr)),
            (Some(0), want.clone(), String::new()),
            "gearmand {flag}"
        );
    }
}

#[test]
fn help_is_printed_on_stdout_with_exit_0() {
    for flag in ["-h", "--help"] {
        let out = run(&[flag]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "gearmand {flag}: {}",
            out.status
        );
        assert!(
            out.stderr.is_empty(),
            "gearmand {flag}: {}",
            text(&out.stderr)
        );
        for option in [
            "--port",
            "--listen",
            "--verbose",
            "--job-handle-prefix",
            "--pid-file",
            "--log-file",
            "--queue-type",
            "--daemon",
        ] {
            assert!(
                stdout.contains(option),
                "gearmand {flag} does not mention {option}:\n{stdout}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Daemon mode

#[test]
fn daemon_mode_detaches_and_serves() {
    let dir = Scratch::new();
    let pid_file = dir.path("daemon.pid");
    let port = free_port();
    let args = [
        "-d",
        "-L",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-P",
        &dir.arg("daemon.pid"),
        "-l",
        &dir.arg("daemon.log"),
        "--job-handle-prefix",
        "H:daemon",
    ];
    let started = Instant::now();
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "gearmand {}: {}\n{}",
        args.join(" "),
        out.status,
        text(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the command took {:?} to return",
        started.elapsed()
    );
    let pid = read_pid_file(&pid_file);
    let mut daemon = Detached(Some(pid));
    assert!(
        process_alive(pid),
        "pid file names {pid}, not a live process"
    );

    wait_until(Duration::from_secs(5), "the daemon serves", || {
        answers_echo(loopback(port))
    });
    let mut c = Client::connect(loopback(port));
    assert_eq!(c.admin("getpid"), format!("OK {pid}\n"));
    assert_eq!(c.submit_bg("f", "", "d"), b("H:daemon:1"));

    send_signal(pid, "TERM");
    wait_until(
        Duration::from_secs(5),
        "the daemon exits on SIGTERM",
        || !process_alive(pid),
    );
    daemon.0 = None;
    assert!(!pid_file.exists(), "pid file left behind");
}

#[test]
fn daemon_mode_keeps_relative_paths_relative_to_the_start_directory() {
    // The C server writes a relative pid file (and log file) relative to the directory it
    // was started in, although it changes to `/` when it detaches.
    let dir = Scratch::new();
    let name = format!("gearman-ops-{}-relative.pid", std::process::id());
    let port = free_port();
    let args = [
        "-d",
        "-L",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-P",
        &name,
        "-l",
        "relative.log",
    ];
    let out = run_in(&args, Some(&dir.0));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    wait_until(Duration::from_secs(5), "the daemon serves", || {
        answers_echo(loopback(port))
    });
    let mut c = Client::connect(loopback(port));
    let reply = c.admin("getpid");
    let pid: u32 = reply
        .trim()
        .strip_prefix("OK ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("getpid: {reply:?}"));
    let _daemon = Detached(Some(pid));
    let misplaced = Path::new("/").join(&name);
    let expected = dir.path(&name);
    wait_until(Duration::from_secs(5), "a pid file is written", || {
        expected.exists() || misplaced.exists()
    });
    let wrong = misplaced.exists();
    if wrong {
        let _ = fs::remove_file(&misplaced);
    }
    assert!(
        !wrong && expected.exists(),
        "`-d -P {name}` started in {} wrote {} instead of {}",
        dir.0.display(),
        misplaced.display(),
        expected.display()
    );
    assert!(
        dir.path("relative.log").exists(),
        "`-d -l relative.log` did not write the log in the start directory"
    );
    send_signal(pid, "TERM");
    wait_until(Duration::from_secs(5), "the daemon exits", || {
        !process_alive(pid)
    });
}

// ---------------------------------------------------------------------------------------------
// Configuration sources

#[test]
fn config_file_options_apply_and_the_command_line_wins() {
    let dir = Scratch::new();
    let conf = dir.path("gearmand.conf");
    fs::write(
        &conf,
        "# options for the test\n--job-handle-prefix FROMFILE\n-j 3\n\n--verbose   INFO\n",
    )
    .expect("write the config file");
    let conf_arg = dir.arg("gearmand.conf");
    let at = format!("@{conf_arg}");
    let eq = format!("--config-file={conf_arg}");
    let cases: [(Vec<&str>, &str); 4] = [
        (vec!["--config-file", &conf_arg], "FROMFILE:1"),
        (vec![&eq], "FROMFILE:1"),
        (vec![&at], "FROMFILE:1"),
        (
            vec!["--config-file", &conf_arg, "--job-handle-prefix", "CLI"],
            "CLI:1",
        ),
    ];
    for (extra, handle) in cases {
        if extra[0].starts_with('@') && foreign_server() {
            continue; // `@FILE` is ours
        }
        let port = free_port();
        let mut args: Vec<String> = [
            "-L",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-l",
            "stderr",
            "-P",
            &dir.arg("gearmand.pid"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let p = Proc::spawn(&dir, &args, &[], loopback(port));
        let mut c = p.connect();
        assert_eq!(
            c.submit_bg("f", "", "d"),
            b(handle),
            "gearmand {}",
            args.join(" ")
        );
        assert_eq!(
            c.admin("verbose"),
            "OK INFO\n",
            "gearmand {}",
            args.join(" ")
        );
    }
}

#[test]
fn gearmand_port_sets_the_port_when_p_is_absent() {
    let dir = Scratch::new();
    let env_port = free_port();
    let args: Vec<String> = ["-L", "127.0.0.1", "-l", "stderr", "-P", &dir.arg("a.pid")]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let p = Proc::spawn(
        &dir,
        &args,
        &[("GEARMAND_PORT", env_port.to_string())],
        loopback(env_port),
    );
    p.connect().echo(b"on the GEARMAND_PORT port");
    drop(p);

    // `-p` wins over the environment.
    let cli_port = free_port();
    let mut args = args;
    args.extend(["-p".to_string(), cli_port.to_string()]);
    let p = Proc::spawn(
        &dir,
        &args,
        &[("GEARMAND_PORT", env_port.to_string())],
        loopback(cli_port),
    );
    p.connect().echo(b"on the -p port");
    assert!(
        refuses(loopback(env_port)),
        "also listening on GEARMAND_PORT"
    );
}

// ---------------------------------------------------------------------------------------------
// Sockets and process limits

/// The `ss` lines of established TCP sockets whose local port is `port`, or `None` without
/// `ss`.
fn ss_server_sockets(port: u16) -> Option<Vec<String>> {
    let out = Command::new("ss")
        .args([
            "-tnoe",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    assert!(out.status.success(), "ss failed: {}", text(&out.stderr));
    Some(
        text(&out.stdout)
            .lines()
            .filter(|l| l.contains(&format!(":{port} ")))
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn keepalive_sets_so_keepalive_on_accepted_sockets() {
    let dir = Scratch::new();
    let p = Proc::start(&dir, &["--keepalive", "--keepalive-idle", "30"]);
    let port = p.addr.port();
    let mut c = p.connect();
    c.echo(b"accepted");
    let Some(lines) = ss_server_sockets(port) else {
        eprintln!(
            "SKIPPED keepalive assertion: the `ss` tool (iproute2) is not installed, \
             so the server socket's SO_KEEPALIVE cannot be inspected"
        );
        return;
    };
    assert!(!lines.is_empty(), "ss shows no socket on port {port}");
    for line in &lines {
        let timer = line
            .split_whitespace()
            .find(|f| f.starts_with("timer:(keepalive,"))
            .unwrap_or_else(|| panic!("no keepalive timer on the server socket: {line}"));
        // `timer:(keepalive,29sec,0)`: the first probe is due within the 30 s idle time.
        let secs: u64 = timer
            .trim_start_matches("timer:(keepalive,")
            .split(',')
            .next()
            .and_then(|t| t.strip_suffix("sec"))
            .and_then(|t| t.split('.').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("keepalive timer not in seconds (idle 30 s?): {timer}"));
        assert!(secs <= 30, "keepalive idle is not 30 s: {timer}");
    }
}

#[test]
fn an_unknown_user_is_fatal() {
    let port = free_port().to_string();
    let args = [
        "-u",
        "nosuchuser",
        "-L",
        "127.0.0.1",
        "-p",
        &port,
        "-l",
        "none",
    ];
    let out = run(&args);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success() && stderr.starts_with("gearmand: ") && stderr.contains("nosuchuser"),
        "gearmand {}: expected a failure naming the user, got {} with stderr {stderr:?}",
        args.join(" "),
        out.status
    );
}

#[test]
fn file_descriptors_sets_the_open_files_limit() {
    let dir = Scratch::new();
    let p = Proc::start(&dir, &["-f", "64"]);
    let limits = fs::read_to_string(format!("/proc/{}/limits", p.pid())).expect("read limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()
        .unwrap_or_default();
    assert_eq!(soft, "64", "{line}");
    // Still serving within the limit.
    let mut conns: Vec<Client> = (0..10).map(|_| p.connect()).collect();
    for c in &mut conns {
        c.echo(b"within 64 descriptors");
    }
}
