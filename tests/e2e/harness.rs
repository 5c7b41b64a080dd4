//! Test harness: starts a real `gearmand` on a free loopback port and talks to it over TCP.
//!
//! Every read is bounded (see [`TIMEOUT`]) so a misbehaving server fails a test instead of
//! hanging the suite. The binary is `target/<profile>/gearmand`, or `$GEARMAND_BIN` (set it to
//! `/usr/sbin/gearmand` to run the suite against the C server for comparison).

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::server_process::ServerProcess;
use bytes::Bytes;
use gearman_shared::connection::{Connection, ConnectionError};
use gearman_shared::protocol::{
    ErrorCode, Frame, GrabKind, JobMode, Magic, Packet, PacketType, Priority, Request, Response,
    SubmitJob,
};

/// Upper bound for every read that expects an answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// How long a server gets to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The handle prefix the harness passes unless a test chooses its own.
pub const PREFIX: &str = "H:host";

/// `H:host:<n>`: the n-th job handle the server creates.
pub fn h(n: u32) -> Bytes {
    Bytes::from(format!("{PREFIX}:{n}"))
}

/// Owned bytes from anything byte-like.
pub fn b(x: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(x.as_ref())
}

/// Printable form of a byte string for assertion messages.
pub fn esc(x: &[u8]) -> String {
    x.escape_ascii().to_string()
}

/// The server binary under test.
pub fn gearmand_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("GEARMAND_BIN") {
        return PathBuf::from(path);
    }
    // The test executable lives in target/<profile>/deps/; the binaries one level up.
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is inside target/<profile>/deps");
    profile_dir.join("gearmand")
}

/// Makes a nested `cargo` command run as from a shell. cargo gives a test process the
/// variables of the e2e crate (CARGO_MANIFEST_DIR, CARGO_PKG_*, ...); inherited, they reach
/// build scripts that track them (ring's tracks CARGO_MANIFEST_DIR), so a release build
/// would differ from the one tests/run.sh made and start over, taking minutes.
pub fn as_from_a_shell(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let from_cargo_test = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name.starts_with("CARGO_BIN_")
            || matches!(
                &*name,
                "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR"
            );
        if from_cargo_test {
            cmd.env_remove(&*name);
        }
    }
}

/// Fails when our binary is older than one of its source files: `cargo test` does not rebuild
/// another package's binary, and a stale one would make every result meaningless. Cargo's
/// dep-info file next to the binary lists exactly the files it was built from.
fn check_fresh(bin: &Path) {
    static FRESH: OnceLock<Result<(), String>> = OnceLock::new();
    let verdict = FRESH.get_or_init(|| {
        let (Ok(dep_info), Ok(built)) = (
            fs::read_to_string(bin.with_extension("d")),
            fs::metadata(bin).and_then(|m| m.modified()),
        ) else {
            return Ok(());
        };
        // `target: dep dep ...`, spaces inside paths escaped as `\ `.
        let deps = dep_info
            .lines()
            .next()
            .unwrap_or_default()
            .replace("\\ ", "\0");
        let newer = deps
            .split_once(": ")
            .map(|(_, list)| list)
            .unwrap_or_default()
            .split_whitespace()
            .map(|p| PathBuf::from(p.replace('\0', " ")))
            .find(|p| {
                fs::metadata(p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t > built)
            });
        match newer {
            Some(p) => Err(format!(
                "{} is older than its source {}: rebuild it with `cargo build --workspace --bins`",
                bin.display(),
                p.display()
            )),
            None => Ok(()),
        }
    });
    if let Err(why) = verdict {
        panic!("{why}");
    }
}

fn wait_ready(process: &mut ServerProcess, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = process.exit_status() {
            return Err(format!("server exited early with {status}"));
        }
        if echo_answered(addr) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "server did not answer ECHO within {START_TIMEOUT:?}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Ready means serving, not just listening: the port accepts connections as soon as it is
/// bound, possibly before the server has set up everything else (signal handlers, say).
fn echo_answered(addr: SocketAddr) -> bool {
    let Ok(mut conn) = Connection::connect(addr, Some(Duration::from_millis(200))) else {
        return false;
    };
    if conn.set_read_timeout(Some(Duration::from_secs(1))).is_err() {
        return false;
    }
    let ping = Request::Echo {
        data: Bytes::from_static(b"ready?"),
    };
    conn.send(ping).is_ok()
        && matches!(conn.read_response(), Ok(Response::Echo { data }) if data == "ready?")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for a free port");
    listener.local_addr().expect("local_addr").port()
}

static SERVER_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A running `gearmand`; killed when dropped.
pub struct Server {
    process: ServerProcess,
    port: u16,
    dir: PathBuf,
}

impl Server {
    /// Starts the server with extra `args`, on 127.0.0.1 and a free port, logging to a file
    /// that is printed if the test fails.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &OsStr)]) -> Server {
        let bin = gearmand_bin();
        assert!(
            bin.is_file(),
            "gearmand binary not found at {}: build it with `cargo build --workspace --bins` \
             (or point GEARMAND_BIN at a server binary)",
            bin.display()
        );
        if std::env::var_os("GEARMAND_BIN").is_none() {
            check_fresh(&bin);
        }
        Server::start_bin(&bin, args, env)
    }

    /// Starts the server binary `bin` (the packaged one of `package`, say) the way
    /// [`Server::start`] starts the one under test, with extra environment variables.
    pub fn start_bin(bin: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Server {
        let dir = std::env::temp_dir().join(format!(
            "gearman-e2e-{}-{}",
            std::process::id(),
            SERVER_SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).expect("create the server's temp dir");

        // The port is free when we look but could be taken before the server binds it;
        // a few attempts make that race harmless.
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(bin);
            cmd.arg("-L")
                .arg("127.0.0.1")
                .arg("-p")
                .arg(port.to_string())
                .arg("-l")
                .arg("stderr")
                .arg("-P")
                .arg(dir.join("gearmand.pid"));
            let own_prefix = args.iter().any(|a| a.starts_with("--job-handle-prefix"));
            if !own_prefix {
                cmd.arg("--job-handle-prefix").arg(PREFIX);
            }
            if let Some(level) = std::env::var_os("E2E_VERBOSE") {
                cmd.arg("--verbose").arg(level);
            }
            cmd.args(args).envs(env.iter().copied());
            let mut process = ServerProcess::spawn(cmd, dir.join("server.log"));
            match wait_ready(&mut process, port) {
                Ok(()) => return Server { process, port, dir },
                Err(why) => {
                    process.stop("gearmand");
                    last_log = format!("{why}\n--- server log:\n{}", process.log());
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!(
            "{} {:?} did not start: {last_log}",
            bin.display(),
            args.join(" ")
        );
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// A new connection with bounded reads.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Whether the process has exited (and how).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.process.exit_status()
    }

    /// Sends a signal (`TERM`, `USR1`, ...) to the server process.
    pub fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    /// Waits at most `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        self.process.wait_exit(limit)
    }

    /// Asserts the process is still running: a crash must not pass as "connection closed".
    pub fn assert_alive(&mut self) {
        self.process.assert_alive();
    }

    /// Asserts the server still serves a fresh connection normally.
    pub fn assert_healthy(&mut self) {
        self.assert_alive();
        let mut c = self.connect();
        c.echo(b"still alive\0?");
        c.expect_nothing(50);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Before the log's directory goes.
        self.process.stop(&format!("gearmand (port {})", self.port));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Wire form of a packet for messages: `NAME "escaped payload"`.
pub fn show(p: &Packet) -> String {
    let magic = match p.magic {
        Magic::Req => "REQ ",
        Magic::Res => "",
    };
    format!("{magic}{} \"{}\"", p.kind.name(), esc(&payload(p)))
}

/// A packet's payload as it was on the wire (arguments joined by NULs).
pub fn payload(p: &Packet) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.payload_len());
    for (i, arg) in p.args.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(arg);
    }
    out
}

/// A size in KiB from `/proc/<pid>/status`: `VmRSS` (all resident memory), `RssAnon` (the
/// heap and stacks, without the binary's pages), ….
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A plain foreground NORMAL job.
pub fn job(function: &str, unique: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> SubmitJob {
    SubmitJob::new(b(function), b(unique), b(data))
}

/// A background job of the given priority.
pub fn bg_job(
    function: &str,
    unique: impl AsRef<[u8]>,
    data: impl AsRef<[u8]>,
    priority: Priority,
) -> SubmitJob {
    SubmitJob {
        priority,
        mode: JobMode::Background,
        ..job(function, unique, data)
    }
}

/// A connection to the server (client, worker or admin: the server does not care).
pub struct Client {
    conn: Connection,
}

impl Client {
    /// Connects with the default read bound.
    pub fn connect(addr: SocketAddr) -> Client {
        let conn = Connection::connect(addr, Some(TIMEOUT))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        conn.set_read_timeout(Some(TIMEOUT))
            .expect("set read timeout");
        conn.stream()
            .set_write_timeout(Some(TIMEOUT))
            .expect("set write timeout");
        Client { conn }
    }

    /// The raw socket (for deliberately odd I/O).
    pub fn stream(&self) -> &TcpStream {
        self.conn.stream()
    }

    /// Sends a request.
    pub fn send(&mut self, req: Request) {
        let name = req.clone().into_packet().kind.name();
        self.conn
            .send(req)
            .unwrap_or_else(|e| panic!("send {name}: {e}"));
    }

    /// Sends an arbitrary packet.
    pub fn send_packet(&mut self, p: &Packet) {
        self.conn
            .send_packet(p)
            .unwrap_or_else(|e| panic!("send {}: {e}", show(p)));
    }

    /// Sends a `\0REQ` packet of any type with these arguments.
    pub fn send_req(&mut self, kind: PacketType, args: &[&[u8]]) {
        let p = Packet::new(Magic::Req, kind, args.iter().map(b).collect());
        self.send_packet(&p);
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.conn
            .send_raw(bytes)
            .unwrap_or_else(|e| panic!("send {} raw bytes: {e}", bytes.len()));
    }

    /// Reads one frame within `timeout`.
    pub fn try_frame(&mut self, timeout: Duration) -> Result<Frame, ConnectionError> {
        self.conn
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("set read timeout");
        let r = self.conn.read_frame();
        self.conn
            .set_read_timeout(Some(TIMEOUT))
            .expect("set read timeout");
        r
    }

    /// Reads the next binary packet, failing the test after [`TIMEOUT`].
    pub fn recv_packet(&mut self) -> Packet {
        match self.try_frame(TIMEOUT) {
            Ok(Frame::Packet(p)) => p,
            Ok(Frame::Text { line, .. }) => {
                panic!("expected a packet, got text line \"{}\"", esc(&line))
            }
            Err(e) if is_timeout(&e) => panic!("no packet from the server within {TIMEOUT:?}"),
            Err(e) => panic!("reading a packet: {e}"),
        }
    }

    /// Reads the next packet as a response.
    pub fn recv(&mut self) -> Response {
        let p = self.recv_packet();
        let shown = show(&p);
        Response::try_from(p).unwrap_or_else(|e| panic!("not a response: {shown}: {e}"))
    }

    /// Reads the next packet and checks it equals `expected` byte for byte.
    pub fn expect(&mut self, expected: Response) {
        let want = expected.into_packet();
        let got = self.recv_packet();
        assert!(
            got.magic == want.magic && got.kind == want.kind && payload(&got) == payload(&want),
            "expected {}\n     got {}",
            show(&want),
            show(&got)
        );
    }

    /// Reads the next packet and checks its type and raw payload.
    pub fn expect_packet(&mut self, kind: PacketType, raw_payload: &[u8]) {
        let got = self.recv_packet();
        assert!(
            got.magic == Magic::Res && got.kind == kind && payload(&got) == raw_payload,
            "expected {} \"{}\"\n     got {}",
            kind.name(),
            esc(raw_payload),
            show(&got)
        );
    }

    /// Reads the next packet and checks it is ERROR `code\0text`.
    pub fn expect_error(&mut self, code: ErrorCode, text: &str) {
        self.expect(Response::Error {
            code: b(code.as_str()),
            text: b(text),
        });
    }

    /// Reads the next packet and checks it is ERROR with this code (any text).
    pub fn expect_error_code(&mut self, code: ErrorCode) {
        let got = self.recv_packet();
        assert!(
            got.kind == PacketType::Error && got.arg(0) == code.as_str().as_bytes(),
            "expected ERROR {}, got {}",
            code.as_str(),
            show(&got)
        );
    }

    /// Checks the server sends nothing for `ms` milliseconds (and keeps the connection open).
    pub fn expect_nothing(&mut self, ms: u64) {
        match self.try_frame(Duration::from_millis(ms)) {
            Err(e) if is_timeout(&e) => {}
            Ok(Frame::Packet(p)) => panic!("expected silence, got {}", show(&p)),
            Ok(Frame::Text { line, .. }) => {
                panic!("expected silence, got text \"{}\"", esc(&line))
            }
            Err(e) => panic!("expected silence, got {e}"),
        }
    }

    /// Checks the server closes the connection (EOF or reset) within [`TIMEOUT`]
    /// without sending anything first.
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0u8; 4096];
        let mut stream = self.conn.stream();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "server did not close the connection within {TIMEOUT:?}"
            );
            stream
                .set_read_timeout(Some(left))
                .expect("set read timeout");
            match stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => panic!(
                    "expected the connection to close, got {n} bytes: \"{}\"",
                    esc(&buf[..n])
                ),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    return
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted) => {}
                Err(e) if is_timeout_io(&e) => {
                    panic!("server did not close the connection within {TIMEOUT:?}")
                }
                Err(e) => panic!("reading while waiting for close: {e}"),
            }
        }
    }

    /// ECHO round trip with this payload.
    pub fn echo(&mut self, data: &[u8]) {
        self.send(Request::Echo { data: b(data) });
        self.expect(Response::Echo { data: b(data) });
    }

    /// Proves every earlier packet on this connection was processed: requests are handled
    /// in order per connection, and ECHO has no side effect.
    pub fn sync(&mut self) {
        self.echo(b"sync");
    }

    /// Submits and returns the handle from JOB_CREATED.
    pub fn submit(&mut self, job: SubmitJob) -> Bytes {
        self.send(Request::Submit(job));
        match self.recv_packet() {
            p if p.kind == PacketType::JobCreated => b(p.arg(0)),
            p => panic!("expected JOB_CREATED, got {}", show(&p)),
        }
    }

    /// Submits a foreground NORMAL job.
    pub fn submit_fg(&mut self, function: &str, unique: &str, data: &str) -> Bytes {
        self.submit(job(function, unique, data))
    }

    /// Submits a background NORMAL job.
    pub fn submit_bg(&mut self, function: &str, unique: &str, data: &str) -> Bytes {
        self.submit(bg_job(function, unique, data, Priority::Normal))
    }

    /// Sends an admin line (`\r\n` is added) and returns the reply: one line for `OK`/`ERR`
    /// replies, else every line up to and including `.\n`.
    pub fn admin(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\r\n").as_bytes());
        let mut out = Vec::new();
        loop {
            let l = self
                .conn
                .read_line()
                .unwrap_or_else(|e| panic!("admin {line:?}: {e}"));
            let single = out.is_empty() && (l.starts_with(b"OK") || l.starts_with(b"ERR"));
            out.extend_from_slice(&l);
            if single || l == b".\n" {
                break;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The `status` admin line of one function: `(total, running, workers)`, or `None`.
    pub fn status_of(&mut self, function: &str) -> Option<(u64, u64, u64)> {
        let text = self.admin("status");
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() == 4 && f[0] == function {
                let n = |s: &str| s.parse::<u64>().expect("status counters are numbers");
                Some((n(f[1]), n(f[2]), n(f[3])))
            } else {
                None
            }
        })
    }

    /// `show jobs` as `(handle, retries, ignore, queued)` rows.
    pub fn show_jobs(&mut self) -> Vec<(String, u64, u64, u64)> {
        let text = self.admin("show jobs");
        text.lines()
            .filter(|l| *l != ".")
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                assert_eq!(f.len(), 4, "show jobs line {l:?}");
                let n = |s: &str| s.parse::<u64>().expect("show jobs counters are numbers");
                (f[0].to_string(), n(f[1]), n(f[2]), n(f[3]))
            })
            .collect()
    }

    // --- worker side ---

    /// CAN_DO `function`.
    pub fn can_do(&mut self, function: &str) {
        self.send(Request::CanDo {
            function: b(function),
        });
    }

    /// CAN_DO for each function, then a sync so the registrations are in place.
    pub fn register(&mut self, functions: &[&str]) {
        for f in functions {
            self.can_do(f);
        }
        self.sync();
    }

    /// PRE_SLEEP.
    pub fn pre_sleep(&mut self) {
        self.send(Request::PreSleep);
    }

    /// GRAB_JOB (or a variant) and the reply packet.
    pub fn grab_with(&mut self, kind: GrabKind) -> Packet {
        self.send(Request::Grab(kind));
        self.recv_packet()
    }

    /// GRAB_JOB, expecting JOB_ASSIGN; returns `(handle, function, data)`.
    pub fn grab(&mut self) -> (Bytes, Bytes, Bytes) {
        let p = self.grab_with(GrabKind::Plain);
        assert_eq!(p.kind, PacketType::JobAssign, "got {}", show(&p));
        (b(p.arg(0)), b(p.arg(1)), b(p.arg(2)))
    }

    /// GRAB_JOB_UNIQ, expecting JOB_ASSIGN_UNIQ; returns `(handle, function, unique, data)`.
    pub fn grab_uniq(&mut self) -> (Bytes, Bytes, Bytes, Bytes) {
        let p = self.grab_with(GrabKind::Uniq);
        assert_eq!(p.kind, PacketType::JobAssignUniq, "got {}", show(&p));
        (b(p.arg(0)), b(p.arg(1)), b(p.arg(2)), b(p.arg(3)))
    }

    /// GRAB_JOB, expecting NO_JOB.
    pub fn grab_none(&mut self) {
        let p = self.grab_with(GrabKind::Plain);
        assert_eq!(
            p.kind,
            PacketType::NoJob,
            "expected NO_JOB, got {}",
            show(&p)
        );
    }

    /// WORK_COMPLETE.
    pub fn complete(&mut self, handle: &Bytes, data: &[u8]) {
        self.send(Request::WorkComplete {
            handle: handle.clone(),
            data: b(data),
        });
    }

    /// GET_STATUS and the parsed reply `(known, running, num, den)`, after checking the
    /// reply is for this handle.
    pub fn get_status(&mut self, handle: &[u8]) -> (bool, bool, u32, u32) {
        self.send(Request::GetStatus { handle: b(handle) });
        match self.recv() {
            Response::Status {
                handle: got,
                known,
                running,
                numerator,
                denominator,
            } => {
                assert_eq!(got, handle, "STATUS_RES for another handle");
                (known, running, numerator, denominator)
            }
            other => panic!("expected STATUS_RES, got {other:?}"),
        }
    }
}

fn is_timeout_io(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Whether a read failed only because nothing arrived in time.
pub fn is_timeout(e: &ConnectionError) -> bool {
    matches!(e, ConnectionError::Io(io) if is_timeout_io(io))
}

/// Waits until `cond` holds, polling every 20 ms; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A child process that is killed when dropped, so a failing test leaves nothing behind.
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Spawns `cmd` with stdout and stderr captured.
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        let what = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        ChildGuard {
            child: Some(child),
            what,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits at most `limit` for the process to exit and returns its output; on time-out the
    /// process is killed and the test fails, showing what it printed.
    pub fn wait_output(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("child not yet waited for");
        let (out, err) = (
            drain(child.stdout.take().expect("piped stdout")),
            drain(child.stderr.take().expect("piped stderr")),
        );
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        // A grandchild may still hold the pipes open: do not wait for EOF forever.
        let stdout = out.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
        let stderr = err.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
        match status {
            Some(status) => Output {
                status,
                stdout,
                stderr,
            },
            None => panic!(
                "{} did not exit within {limit:?}\n--- stdout:\n{}\n--- stderr:\n{}",
                self.what,
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            ),
        }
    }
}

fn drain(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
