//! `gearman-tui --once` against live servers (ours and the C gearmand 1.1.20): the printed
//! snapshot must show the numbers the workers and jobs set up here imply.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use gearman_shared::protocol::{Priority, Request};

use crate::harness::{b, bg_job, ChildGuard, Client, Server};

/// Bound on one `--once` run (it polls with a 2 s timeout per reply).
const RUN_LIMIT: Duration = Duration::from_secs(20);

const C_GEARMAND: &str = "/usr/sbin/gearmand";

fn tui_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is inside target/<profile>/deps");
    let bin = profile_dir.join("gearman-tui");
    assert!(
        bin.is_file(),
        "{} not found: build it with `cargo build --workspace --bins`",
        bin.display()
    );
    bin
}

fn tui(args: &[&str]) -> Command {
    let mut cmd = Command::new(tui_bin());
    cmd.args(args).env_remove("GEARMAN_SERVER");
    cmd
}

fn run(cmd: Command) -> (Output, String) {
    let out = ChildGuard::spawn(cmd).wait_output(RUN_LIMIT);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

/// The whitespace-separated fields of the first line of `section` (0: servers, 1: functions,
/// 2: connections) whose first two fields match.
fn fields(text: &str, section: usize, first: &str, second: Option<&str>) -> Vec<String> {
    let part = text.split("\n\n").nth(section).unwrap_or_default();
    part.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|f| {
            f.first().map(String::as_str) == Some(first)
                && second.is_none_or(|s| f.get(1).map(String::as_str) == Some(s))
        })
        .unwrap_or_else(|| panic!("no line {first} {second:?} in section {section} of:\n{text}"))
}

/// A worker with a client ID running one job, and queued jobs for a function with no worker:
/// `reverse` has 3 waiting (all NORMAL), 1 running, 1 worker; `orphan` has 2 waiting, none.
/// Returns the connections, which must stay open while the snapshot is taken.
fn load(addr: SocketAddr) -> (Client, Client) {
    let mut worker = Client::connect(addr);
    worker.send(Request::SetClientId {
        id: b("tui-worker"),
    });
    worker.register(&["reverse"]);
    let mut client = Client::connect(addr);
    client.submit(bg_job("reverse", "", "first", Priority::High));
    for i in 0..3 {
        client.submit(bg_job("reverse", "", format!("n{i}"), Priority::Normal));
    }
    for i in 0..2 {
        client.submit(bg_job("orphan", "", format!("o{i}"), Priority::Low));
    }
    // The HIGH job goes first.
    let (_, function, data) = worker.grab();
    assert_eq!((&function[..], &data[..]), (&b"reverse"[..], &b"first"[..]));
    worker.sync();
    (worker, client)
}

/// `stats` (ours only) gives the oldest job's age in seconds; the C server leaves it `-`.
fn check_loaded(text: &str, server: &str, has_stats: bool) {
    let s = fields(text, 0, server, None);
    // SERVER STATE VERSION PID UPTIME FUNCTIONS WAITING RUNNING WORKERS JOBS ERROR
    assert_eq!(s[1], "up", "{text}");
    assert!(s[2].starts_with("1.1.20"), "version in {text}");
    assert!(s[3].parse::<u32>().is_ok(), "pid in {text}");
    assert_eq!(&s[5..11], ["2", "5", "1", "1", "6", "-"], "{text}");

    // SERVER FUNCTION WAITING RUNNING WORKERS HIGH NORMAL LOW OLDEST ALERT
    let oldest_ok = |f: &str| {
        if has_stats {
            f.parse::<u64>().is_ok_and(|s| s < 60)
        } else {
            f == "-"
        }
    };
    let f = fields(text, 1, server, Some("reverse"));
    assert_eq!(&f[2..8], ["3", "1", "1", "0", "3", "0"], "{text}");
    assert!(oldest_ok(&f[8]) && f[9] == "-", "{text}");
    let f = fields(text, 1, server, Some("orphan"));
    assert_eq!(&f[2..8], ["2", "0", "0", "0", "0", "2"], "{text}");
    assert!(oldest_ok(&f[8]) && f[9] == "no-workers", "{text}");
    let t = fields(text, 1, "TOTAL", None);
    assert_eq!(&t[2..], ["5", "1", "1", "0", "3", "2", "-", "-"], "{text}");

    // SERVER FD ADDRESS CLIENT-ID FUNCTIONS
    let part = text.split("\n\n").nth(2).unwrap_or_default();
    let w = part
        .lines()
        .find(|l| l.contains("tui-worker"))
        .unwrap_or_else(|| panic!("no worker line in:\n{text}"));
    let w: Vec<&str> = w.split_whitespace().collect();
    assert_eq!(
        (w[0], w[2], w[4]),
        (server, "127.0.0.1", "reverse"),
        "{text}"
    );
}

/// Whether the server answers `stats` (ours does; `GEARMAND_BIN` may name another).
fn has_stats(addr: SocketAddr) -> bool {
    !Client::connect(addr).admin("stats").starts_with("ERR")
}

fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local_addr").port()
}

#[test]
fn once_shows_the_numbers_of_our_server() {
    let server = Server::start(&[]);
    let _conns = load(server.addr());
    let addr = format!("127.0.0.1:{}", server.port());
    let (out, text) = run(tui(&["--once", "-h", &addr]));
    assert!(out.status.success(), "{out:?}");
    check_loaded(&text, &addr, has_stats(server.addr()));

    // GEARMAN_SERVER names the servers when -h is not given.
    let mut cmd = tui(&["--batch"]);
    cmd.env("GEARMAN_SERVER", &addr);
    let (out, text) = run(cmd);
    assert!(out.status.success(), "{out:?}");
    check_loaded(&text, &addr, has_stats(server.addr()));
}

#[test]
fn once_with_a_dead_server_reports_it_and_fails() {
    let server = Server::start(&[]);
    let live = format!("127.0.0.1:{}", server.port());
    let dead = format!("127.0.0.1:{}", dead_port());
    let started = Instant::now();
    let (out, text) = run(tui(&["--once", "-t", "1", "-h", &format!("{live},{dead}")]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(fields(&text, 0, &live, None)[1], "up", "{text}");
    let d = fields(&text, 0, &dead, None);
    assert_eq!(d[1], "down", "{text}");
    assert!(text.contains("cannot connect"), "{text}");
}

#[test]
fn usage_errors_and_help() {
    let (out, _) = run(tui(&["--interval", "soon"]));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let (out, text) = run(tui(&["--help"]));
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("--once") && text.contains("-h, --host"),
        "{text}"
    );
}

/// The C gearmand, killed when dropped.
struct CServer {
    child: Child,
    pid_file: PathBuf,
}

impl Drop for CServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

fn start_c_server() -> Option<(CServer, u16)> {
    if !Path::new(C_GEARMAND).is_file() {
        eprintln!("{C_GEARMAND} is missing (Debian package gearman-job-server): skipped");
        return None;
    }
    for _attempt in 0..3 {
        let port = dead_port();
        let pid_file = PathBuf::from(format!("/tmp/tui-{port}.pid"));
        let child = Command::new(C_GEARMAND)
            .args([
                "-L",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-l",
                "none",
                "-P",
            ])
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {C_GEARMAND}: {e}"));
        let mut server = CServer { child, pid_file };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Some((server, port));
            }
            if Instant::now() > deadline || matches!(server.child.try_wait(), Ok(Some(_))) {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("{C_GEARMAND} did not start");
}

#[test]
fn once_against_the_c_gearmand() {
    let Some((_server, port)) = start_c_server() else {
        return;
    };
    let sock = SocketAddr::from(([127, 0, 0, 1], port));
    let _conns = load(sock);
    let addr = format!("127.0.0.1:{port}");
    let (out, text) = run(tui(&["--once", "-h", &addr]));
    assert!(out.status.success(), "{out:?}");
    check_loaded(&text, &addr, false);
}
