//! Persistent queues on database servers (`-q libpq`/`Postgres`, `libdrizzle`/`MySQL`,
//! `libmemcached`, `redis`) and in Tokyo Cabinet files (`-q libtokyocabinet`), against the
//! real servers: round trips through restarts, SIGKILL during submission, the store going
//! away and coming back, bad options, and interop with the C server's modules.
//!
//! The shared servers come from `tests/db_servers.sh start` (tests/run.sh runs it), which
//! exports `GEARMAND_TEST_PG`, `GEARMAND_TEST_MYSQL`, `GEARMAND_TEST_MEMCACHED` and
//! `GEARMAND_TEST_REDIS`; a test whose setting is missing fails, it never skips. Each test
//! uses its own table or key prefix. Outage tests start private `redis-server`/`memcached`
//! instances, or put a TCP proxy they can cut between gearmand and PostgreSQL/MariaDB.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use gearman_shared::connection::Connection;
use gearman_shared::protocol::{
    encode, ErrorCode, GrabKind, PacketType, Priority, Request, SubmitJob,
};

use crate::harness::{b, bg_job, esc, gearmand_bin, is_timeout, show, wait_until, Client};

const C_GEARMAND: &str = "/usr/sbin/gearmand";
const START_LIMIT: Duration = Duration::from_secs(15);

// ---- stores ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Postgres,
    Mysql,
    Memcached,
    Redis,
    TokyoCabinet,
}

/// A setting exported by tests/db_servers.sh; missing → the test fails.
fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start the test database servers with \
             `eval \"$(tests/db_servers.sh start)\"` (as root; tests/run.sh does this)"
        )
    })
}

/// `key=value ...` settings as pairs.
fn pairs(text: &str) -> Vec<(String, String)> {
    text.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("setting {key} missing in {pairs:?}"))
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or earlier run) uses: a table name or key prefix.
fn namespace(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t_{test}_{}_{}_{nanos:x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One test's store: the gearmand options that select it.
struct Store {
    kind: Kind,
    args: Vec<String>,
    _dir: Option<TempDir>,
}

impl Store {
    /// The shared server of `kind`, in a namespace of its own.
    fn new(kind: Kind, test: &str) -> Store {
        let ns = namespace(test);
        let mut dir = None;
        let args: Vec<String> = match kind {
            Kind::Postgres => vec![
                "-q".into(),
                "libpq".into(),
                "--libpq-conninfo".into(),
                setting("GEARMAND_TEST_PG"),
                "--libpq-table".into(),
                ns,
            ],
            Kind::Mysql => {
                let my = pairs(&setting("GEARMAND_TEST_MYSQL"));
                mysql_args("MySQL", get(&my, "host"), get(&my, "port"), &my, &ns)
            }
            Kind::Memcached => vec![
                "-q".into(),
                "libmemcached".into(),
                "--libmemcached-servers".into(),
                setting("GEARMAND_TEST_MEMCACHED"),
                "--libmemcached-prefix".into(),
                format!("{ns}_"),
            ],
            Kind::Redis => {
                let (host, port) = host_port(&setting("GEARMAND_TEST_REDIS"));
                redis_args(&host, port, &ns)
            }
            Kind::TokyoCabinet => {
                let d = TempDir::new(test);
                let file = d.path().join("queue.tch");
                dir = Some(d);
                vec![
                    "-q".into(),
                    "libtokyocabinet".into(),
                    "--libtokyocabinet-file".into(),
                    file.display().to_string(),
                ]
            }
        };
        Store {
            kind,
            args,
            _dir: dir,
        }
    }

    fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// Whether names are kept in text columns (UTF-8 only).
    fn text_names(&self) -> bool {
        matches!(self.kind, Kind::Postgres | Kind::Mysql)
    }
}

fn mysql_args(
    module: &str,
    host: &str,
    port: &str,
    my: &[(String, String)],
    table: &str,
) -> Vec<String> {
    let o = if module == "MySQL" {
        "--mysql"
    } else {
        "--libdrizzle"
    };
    vec![
        "-q".into(),
        module.into(),
        format!("{o}-host"),
        host.into(),
        format!("{o}-port"),
        port.into(),
        format!("{o}-user"),
        get(my, "user").into(),
        format!("{o}-password"),
        get(my, "password").into(),
        format!("{o}-db"),
        get(my, "db").into(),
        format!("{o}-table"),
        table.into(),
    ]
}

fn redis_args(host: &str, port: u16, prefix: &str) -> Vec<String> {
    vec![
        "-q".into(),
        "redis".into(),
        "--redis-server".into(),
        host.into(),
        "--redis-port".into(),
        port.to_string(),
        "--redis-prefix".into(),
        prefix.into(),
    ]
}

fn host_port(text: &str) -> (String, u16) {
    let (host, port) = text.rsplit_once(':').expect("HOST:PORT");
    (host.to_string(), port.parse().expect("a port number"))
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let path = std::env::temp_dir().join(namespace(test));
        fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---- servers -----------------------------------------------------------------------------

/// A gearmand (ours or the C one) on a free port, logging to a file.
struct Daemon {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Daemon {
    fn ours(args: &[&str]) -> Daemon {
        Daemon::start(&gearmand_bin(), args)
    }

    fn c(args: &[&str]) -> Daemon {
        assert!(
            Path::new(C_GEARMAND).is_file(),
            "{C_GEARMAND} is missing: install the Debian package gearman-job-server"
        );
        Daemon::start(Path::new(C_GEARMAND), args)
    }

    fn start(bin: &Path, args: &[&str]) -> Daemon {
        let dir = TempDir::new("gearmand");
        let port = free_port();
        let log = dir.path().join("gearmand.log");
        let child = Command::new(bin)
            .args(["-L", "127.0.0.1", "-p", &port.to_string()])
            .arg("-l")
            .arg(&log)
            .arg("-P")
            .arg(dir.path().join("gearmand.pid"))
            .args(["--job-handle-prefix", "H:host", "--verbose", "INFO"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("stderr")).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut daemon = Daemon { child, port, dir };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = daemon.child.try_wait().ok().flatten() {
                panic!(
                    "{} {args:?} exited with {status} at start-up\n{}",
                    bin.display(),
                    daemon.log()
                );
            }
            if let Ok(stream) = TcpStream::connect(daemon.addr()) {
                drop(stream);
                let mut c = daemon.connect();
                c.echo(b"ready");
                return daemon;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start\n{}",
                bin.display(),
                daemon.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    fn log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- log:\n{}\n--- stderr:\n{}",
            read("gearmand.log"),
            read("stderr")
        )
    }

    fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().ok().flatten() {
            panic!("gearmand died with {status}\n{}", self.log());
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().ok().flatten() {
                return status;
            }
            assert!(Instant::now() < deadline, "gearmand ignored SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("--- gearmand on port {}:\n{}", self.port, self.log());
        }
    }
}

/// Runs our gearmand to its exit (start-up failures, `--check-args`): (status, stderr).
fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    run_to_exit_with_env(args, &[])
}

/// [`run_to_exit`] with extra environment variables.
fn run_to_exit_with_env(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
    let dir = TempDir::new("exit");
    let mut child = Command::new(gearmand_bin())
        .envs(env.iter().copied())
        .args(["-L", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-l", "stderr"])
        .arg("-P")
        .arg(dir.path().join("pid"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gearmand");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gearmand {args:?} did not exit");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    (status, err)
}

fn assert_start_fails(args: &[&str], expected: &[&str]) {
    let (status, stderr) = run_to_exit(args);
    assert_eq!(status.code(), Some(1), "{args:?}: stderr {stderr}");
    for text in expected {
        assert!(
            stderr.contains(text),
            "{args:?}: stderr lacks {text:?}:\n{stderr}"
        );
    }
}

/// A private server process (redis-server, memcached) for a test that stops it.
struct Private {
    child: Option<Child>,
    argv: Vec<String>,
    port: u16,
}

impl Private {
    fn redis(dir: &Path) -> Private {
        let port = free_port();
        let argv = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            &dir.display().to_string(),
            "--loglevel",
            "warning",
        ]
        .map(String::from)
        .to_vec();
        Private::start(argv, port)
    }

    fn memcached() -> Private {
        let port = free_port();
        let mut argv: Vec<String> = ["memcached", "-l", "127.0.0.1", "-p", &port.to_string()]
            .map(String::from)
            .to_vec();
        // memcached refuses to run as root unless told whom to run as.
        if nix_is_root() {
            argv.extend(["-u".to_string(), "memcache".to_string()]);
        }
        Private::start(argv, port)
    }

    fn start(argv: Vec<String>, port: u16) -> Private {
        let mut p = Private {
            child: None,
            argv,
            port,
        };
        p.up();
        p
    }

    fn up(&mut self) {
        let child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} cannot start ({e}): install it (tests/run.sh does)",
                    self.argv[0]
                )
            });
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        wait_until(
            Duration::from_secs(10),
            "the private server listens",
            || TcpStream::connect(addr).is_ok(),
        );
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        self.down();
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// A TCP proxy in front of a database server that the test can cut and restore.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let up = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, stop2, conns2) = (up.clone(), stop.clone(), conns.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                if let (Ok(c1), Ok(c2), Ok(s1), Ok(s2)) = (
                    client.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                    server.try_clone(),
                ) {
                    if let Ok(mut list) = conns2.lock() {
                        list.push(c2);
                        list.push(s2);
                    }
                    pipe(c1, server);
                    pipe(s1, client);
                }
            }
        });
        Proxy {
            port,
            up,
            stop,
            conns,
        }
    }

    /// Closes every proxied connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for conn in self.conns.lock().expect("proxy list").drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

// ---- clients -----------------------------------------------------------------------------

/// Grabs (GRAB_JOB_UNIQ) and completes jobs of `functions` until none is left:
/// (function, unique, data) in the order handed out.
fn drain(addr: SocketAddr, functions: &[&[u8]]) -> Vec<(Bytes, Bytes, Bytes)> {
    let mut w = Client::connect(addr);
    for f in functions {
        w.send(Request::CanDo { function: b(f) });
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "drain did not finish");
        let p = w.grab_with(GrabKind::Uniq);
        match p.kind {
            PacketType::JobAssignUniq => {
                got.push((b(p.arg(1)), b(p.arg(2)), b(p.arg(3))));
                w.complete(&b(p.arg(0)), b"");
            }
            PacketType::NoJob => break,
            _ => panic!("draining: unexpected {}", show(&p)),
        }
    }
    w.sync();
    got
}

/// Sends every job on one connection without waiting, counting JOB_CREATEDs into `acked`
/// until the server goes away; returns how many were acknowledged.
fn submit_pipelined(addr: SocketAddr, jobs: Vec<SubmitJob>, acked: Arc<AtomicUsize>) -> usize {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().expect("clone the socket");
    let total = jobs.len();
    let sender = thread::spawn(move || {
        let mut buf = BytesMut::new();
        for job in jobs {
            encode(&Request::Submit(job).into_packet(), &mut buf);
        }
        let _ = writer.write_all(&buf);
    });
    let mut conn = Connection::from_stream(stream);
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut n = 0;
    while n < total {
        match conn.read_packet() {
            Ok(p) if p.kind == PacketType::JobCreated => {
                n += 1;
                acked.fetch_add(1, Ordering::SeqCst);
            }
            Ok(p) => panic!("submission {n}: unexpected {}", show(&p)),
            Err(e) if is_timeout(&e) => panic!("no reply within 30 s after {n} JOB_CREATEDs"),
            Err(_) => break,
        }
    }
    let _ = conn.stream().shutdown(Shutdown::Both);
    let _ = sender.join();
    n
}

/// Submits a background job and expects ERROR QUEUE_ERROR.
fn expect_queue_error(c: &mut Client, job: SubmitJob) {
    c.send(Request::Submit(job));
    c.expect_error_code(ErrorCode::QueueError);
}

// ---- scenarios ---------------------------------------------------------------------------

/// Background jobs of every priority and unique kind, an odd function name and an epoch
/// job survive a SIGKILL, replay in priority order, and leave the store when done.
fn round_trip(kind: Kind, test: &str) {
    let store = Store::new(kind, test);
    let odd: &[u8] = if store.text_names() {
        "fn é-%/ü".as_bytes()
    } else {
        b"fn \x01\xff-%2D\r\n"
    };
    let due = unix_now() + 3600;
    let jobs: Vec<(&str, &str, &str, Priority)> = vec![
        ("rt", "l1", "low", Priority::Low),
        ("rt", "n1", "normal-1", Priority::Normal),
        ("rt", "", "normal-empty-unique", Priority::Normal),
        ("rt", "-", "normal-dash-unique", Priority::Normal),
        ("rt", "n4", "", Priority::Normal),
        ("rt", "h1", "high", Priority::High),
    ];
    let mut first = Daemon::ours(&store.args());
    {
        let mut c = first.connect();
        for (function, unique, data, priority) in &jobs {
            c.submit(bg_job(function, unique, data, *priority));
        }
        c.submit(SubmitJob {
            function: b(odd),
            ..bg_job("", "odd-u", "odd-data", Priority::Normal)
        });
        c.submit(SubmitJob {
            epoch: Some(due),
            ..bg_job("rt_epoch", "e1", "later", Priority::Normal)
        });
        assert_eq!(c.status_of("rt"), Some((6, 0, 0)));
    }
    first.kill();

    let mut second = Daemon::ours(&store.args());
    {
        let mut admin = second.connect();
        assert_eq!(admin.status_of("rt"), Some((6, 0, 0)), "replayed jobs");
        assert_eq!(admin.status_of("rt_epoch"), Some((1, 0, 0)));
    }
    let got = drain(second.addr(), &[b"rt", odd]);
    let rt: Vec<(String, String)> = got
        .iter()
        .filter(|(f, _, _)| f == "rt")
        .map(|(_, u, d)| (esc(u), esc(d)))
        .collect();
    assert_eq!(rt.len(), 6, "{rt:?}");
    assert_eq!(rt[0], ("h1".into(), "high".into()), "HIGH first: {rt:?}");
    assert_eq!(rt[5], ("l1".into(), "low".into()), "LOW last: {rt:?}");
    let mut middle = rt[1..5].to_vec();
    middle.sort();
    let mut want: Vec<(String, String)> = [
        ("", "normal-empty-unique"),
        ("-", "normal-dash-unique"),
        ("n1", "normal-1"),
        ("n4", ""),
    ]
    .map(|(u, d)| (u.to_string(), d.to_string()))
    .to_vec();
    want.sort();
    assert_eq!(middle, want, "NORMAL jobs with their uniques and data");
    let odd_jobs: Vec<_> = got.iter().filter(|(f, _, _)| f == odd).collect();
    assert_eq!(odd_jobs.len(), 1, "the odd function's job: {got:?}");
    assert_eq!(
        (&odd_jobs[0].1, &odd_jobs[0].2),
        (&b("odd-u"), &b("odd-data"))
    );
    second.assert_alive();
    assert!(second.terminate().success());

    // Completed jobs are gone; the epoch job is still waiting.
    let third = Daemon::ours(&store.args());
    let mut admin = third.connect();
    assert!(
        matches!(admin.status_of("rt"), None | Some((0, 0, 0))),
        "completed jobs came back: {:?}",
        admin.status_of("rt")
    );
    assert_eq!(admin.status_of("rt_epoch"), Some((1, 0, 0)));
}

/// SIGKILL while clients pipeline submissions: every acknowledged job comes back.
fn sigkill_mid_submission(kind: Kind, test: &str) {
    const CONNS: usize = 2;
    const PER_CONN: usize = 600;
    let store = Store::new(kind, test);
    let mut server = Daemon::ours(&store.args());
    let acked = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..CONNS)
        .map(|c| {
            let jobs: Vec<SubmitJob> = (0..PER_CONN)
                .map(|i| {
                    let unique = if i % 5 == 0 {
                        String::new()
                    } else {
                        format!("k{c}-{i}")
                    };
                    bg_job("crash", unique, format!("d{c}-{i}"), Priority::ALL[i % 3])
                })
                .collect();
            let (addr, acked) = (server.addr(), acked.clone());
            thread::spawn(move || submit_pipelined(addr, jobs, acked))
        })
        .collect();
    let target = 300;
    wait_until(
        Duration::from_secs(60),
        "JOB_CREATEDs before the kill",
        || acked.load(Ordering::SeqCst) >= target || submitters.iter().all(|t| t.is_finished()),
    );
    server.kill();
    let counts: Vec<usize> = submitters
        .into_iter()
        .map(|t| t.join().expect("submitter"))
        .collect();
    eprintln!("acknowledged before SIGKILL: {counts:?}");
    let server = Daemon::ours(&store.args());
    let got = drain(server.addr(), &[b"crash"]);
    let datas: std::collections::HashSet<Bytes> = got.iter().map(|(_, _, d)| d.clone()).collect();
    assert_eq!(datas.len(), got.len(), "no job replayed twice");
    for (c, n) in counts.iter().enumerate() {
        for i in 0..*n {
            let d = b(format!("d{c}-{i}"));
            assert!(datas.contains(&d), "acknowledged job {} lost", esc(&d));
        }
    }
}

/// The store goes away: submissions get QUEUE_ERROR, the server keeps serving, and
/// submissions work again once the store is back.
fn store_outage(
    server_args: &[&str],
    mut stop: impl FnMut(),
    mut start: impl FnMut(),
    function: &str,
) {
    let mut server = Daemon::ours(server_args);
    let mut c = server.connect();
    c.submit(bg_job(function, "before", "1", Priority::Normal));
    stop();
    expect_queue_error(&mut c, bg_job(function, "during-1", "2", Priority::Normal));
    expect_queue_error(&mut c, bg_job(function, "during-2", "3", Priority::High));
    // Foreground jobs do not touch the store.
    c.submit(crate::harness::job(function, "fg", "4"));
    server.assert_alive();
    c.echo(b"still serving");
    start();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        c.send(Request::Submit(bg_job(
            function,
            "after",
            "5",
            Priority::Normal,
        )));
        let p = c.recv_packet();
        if p.kind == PacketType::JobCreated {
            break;
        }
        assert!(
            p.kind == PacketType::Error && Instant::now() < deadline,
            "after the store came back: {}",
            show(&p)
        );
        thread::sleep(Duration::from_millis(200));
    }
    let mut admin = server.connect();
    // before, fg, after (the refused ones were never created).
    assert_eq!(admin.status_of(function), Some((3, 0, 0)));
    server.assert_alive();
}

// ---- PostgreSQL --------------------------------------------------------------------------

#[test]
fn postgres_round_trip() {
    round_trip(Kind::Postgres, "pg_rt");
}

#[test]
fn postgres_sigkill_mid_submission_loses_no_acknowledged_job() {
    sigkill_mid_submission(Kind::Postgres, "pg_kill");
}

fn pg_with(host: &str, port: &str) -> String {
    pairs(&setting("GEARMAND_TEST_PG"))
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "host" => format!("host={host}"),
            "port" => format!("port={port}"),
            _ => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn postgres_outage_refuses_jobs_and_recovers() {
    let pg = pairs(&setting("GEARMAND_TEST_PG"));
    let upstream: SocketAddr = format!("{}:{}", get(&pg, "host"), get(&pg, "port"))
        .parse()
        .expect("GEARMAND_TEST_PG host must be an IP address");
    let proxy = Proxy::start(upstream);
    let conninfo = pg_with("127.0.0.1", &proxy.port.to_string());
    let table = namespace("pg_outage");
    store_outage(
        &[
            "-q",
            "Postgres",
            "--libpq-conninfo",
            &conninfo,
            "--libpq-table",
            &table,
        ],
        || proxy.cut(),
        || proxy.restore(),
        "pg_outage",
    );
}

#[test]
fn postgres_bad_connection_options_fail_at_start() {
    let closed = free_port().to_string();
    assert_start_fails(
        &[
            "-q",
            "libpq",
            "--libpq-conninfo",
            &pg_with("127.0.0.1", &closed),
        ],
        &["Error while initializing the queue : libpq"],
    );
    let pg = pairs(&setting("GEARMAND_TEST_PG"));
    let wrong = pg_with(get(&pg, "host"), get(&pg, "port")) + " password=wrong-password";
    assert_start_fails(
        &["-q", "libpq", "--libpq-conninfo", &wrong],
        &["Error while initializing the queue : libpq", "password"],
    );
    assert_start_fails(
        &["-q", "libpq", "--libpq-conninfo", "hots=x", "--check-args"],
        &["--libpq-conninfo", "hots"],
    );
    assert_start_fails(
        &["-q", "libpq", "--libpq-table", "a;drop", "--check-args"],
        &["--libpq-table"],
    );
    // --check-args does not connect.
    let (status, stderr) = run_to_exit(&[
        "-q",
        "Postgres",
        "--libpq-conninfo",
        &pg_with("127.0.0.1", &closed),
        "--check-args",
    ]);
    assert!(status.success(), "{stderr}");
}

/// Several job servers on one PostgreSQL database, each with its own table: each replays
/// exactly its own jobs (generated keys of empty uniques never collide).
#[test]
fn postgres_several_servers_share_one_database() {
    let conninfo = setting("GEARMAND_TEST_PG");
    let tables = [namespace("pg_share_a"), namespace("pg_share_b")];
    let args: Vec<Vec<&str>> = tables
        .iter()
        .map(|t| {
            vec![
                "-q",
                "libpq",
                "--libpq-conninfo",
                conninfo.as_str(),
                "--libpq-table",
                t,
            ]
        })
        .collect();
    let servers: Vec<Daemon> = args.iter().map(|a| Daemon::ours(a)).collect();
    for (i, server) in servers.iter().enumerate() {
        let mut c = server.connect();
        for n in 0..20 {
            c.submit(bg_job("shared", "", format!("{i}-{n}"), Priority::Normal));
        }
    }
    drop(servers);
    for (i, a) in args.iter().enumerate() {
        let server = Daemon::ours(a);
        let mut got: Vec<String> = drain(server.addr(), &[b"shared"])
            .into_iter()
            .map(|(_, u, d)| {
                assert!(u.is_empty(), "a replayed empty unique: {}", esc(&u));
                esc(&d)
            })
            .collect();
        got.sort();
        let mut want: Vec<String> = (0..20).map(|n| format!("{i}-{n}")).collect();
        want.sort();
        assert_eq!(got, want, "server {i} replays its own jobs");
    }
}

/// Each server replays what the other's libpq module stored.
#[test]
fn postgres_interop_with_the_c_server() {
    let conninfo = setting("GEARMAND_TEST_PG");
    let table = namespace("pg_c");
    let c_args = [
        "-q",
        "Postgres",
        "--libpq-conninfo",
        &conninfo,
        "--libpq-table",
        &table,
    ];
    let ours_args = [
        "-q",
        "libpq",
        "--libpq-conninfo",
        &conninfo,
        "--libpq-table",
        &table,
    ];
    interop(&c_args, &ours_args, "pg_c", false);
}

/// `psql` as the test role: the tab-separated rows of `query`.
fn psql(query: &str) -> String {
    let pg = pairs(&setting("GEARMAND_TEST_PG"));
    let out = Command::new("psql")
        .args(["-h", get(&pg, "host"), "-p", get(&pg, "port")])
        .args(["-U", get(&pg, "user"), "-d", get(&pg, "dbname")])
        .args(["-X", "-q", "-A", "-t", "-F", "\t", "-c", query])
        .env("PGPASSWORD", get(&pg, "password"))
        .output()
        .expect("run psql (Debian package postgresql-client)");
    assert!(
        out.status.success(),
        "psql {query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The table ours creates has the columns and the unique constraint of the one the C
/// server creates.
#[test]
fn postgres_table_has_the_c_layout() {
    let conninfo = setting("GEARMAND_TEST_PG");
    let c_table = namespace("pg_layout_c");
    let ours_table = namespace("pg_layout_ours");
    drop(Daemon::c(&[
        "-q",
        "Postgres",
        "--libpq-conninfo",
        &conninfo,
        "--libpq-table",
        &c_table,
    ]));
    drop(Daemon::ours(&[
        "-q",
        "libpq",
        "--libpq-conninfo",
        &conninfo,
        "--libpq-table",
        &ours_table,
    ]));
    let layout = |table: &str| {
        let columns = psql(&format!(
            "SELECT column_name, data_type, character_maximum_length, ordinal_position \
             FROM information_schema.columns WHERE table_name = '{table}' \
             ORDER BY ordinal_position"
        ));
        let unique = psql(&format!(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = '{table}'::regclass"
        ));
        (columns, unique)
    };
    let (c_columns, c_unique) = layout(&c_table);
    assert!(
        c_columns.contains("unique_key\tcharacter varying\t64\t1"),
        "{c_columns}"
    );
    assert_eq!(layout(&ours_table), (c_columns, c_unique));
}

/// `c_reads_priority`: the C server 1.1.20's libpq replay asks for binary results and then
/// parses the priority as text, so every row it replays becomes HIGH; then only the set of
/// jobs is compared.
fn interop(c_args: &[&str], ours_args: &[&str], function: &str, c_reads_priority: bool) {
    // C → ours.
    let mut c_server = Daemon::c(c_args);
    {
        let mut c = c_server.connect();
        c.submit(bg_job(function, "c-low", "L", Priority::Low));
        c.submit(bg_job(function, "c-high", "H", Priority::High));
        c.submit(bg_job(function, "c-normal", "N", Priority::Normal));
    }
    assert!(c_server.terminate().success());
    drop(c_server);
    let ours = Daemon::ours(ours_args);
    let got: Vec<_> = drain(ours.addr(), &[function.as_bytes()])
        .into_iter()
        .map(|(_, u, d)| (esc(&u), esc(&d)))
        .collect();
    assert_eq!(
        got,
        [("c-high", "H"), ("c-normal", "N"), ("c-low", "L")]
            .map(|(u, d)| (u.to_string(), d.to_string()))
    );
    // ours → C (ours killed: nothing is lost on the way).
    let mut c = ours.connect();
    c.submit(bg_job(function, "o-1", "one", Priority::Normal));
    c.submit(bg_job(function, "o-2", "two", Priority::High));
    drop(c);
    drop(ours);
    let c_server = Daemon::c(c_args);
    let mut got: Vec<_> = drain(c_server.addr(), &[function.as_bytes()])
        .into_iter()
        .map(|(_, u, d)| (esc(&u), esc(&d)))
        .collect();
    if !c_reads_priority {
        got.sort_by(|a, b| b.cmp(a));
    }
    assert_eq!(
        got,
        [("o-2", "two"), ("o-1", "one")].map(|(u, d)| (u.to_string(), d.to_string()))
    );
}

// ---- MySQL / MariaDB ---------------------------------------------------------------------

#[test]
fn mysql_round_trip() {
    round_trip(Kind::Mysql, "my_rt");
}

#[test]
fn mysql_sigkill_mid_submission_loses_no_acknowledged_job() {
    sigkill_mid_submission(Kind::Mysql, "my_kill");
}

/// The libdrizzle option names, over the Unix socket.
#[test]
fn mysql_libdrizzle_names_and_unix_socket() {
    let my = pairs(&setting("GEARMAND_TEST_MYSQL"));
    let table = namespace("my_uds");
    let args = [
        "-q",
        "libdrizzle",
        "--libdrizzle-uds",
        get(&my, "socket"),
        "--libdrizzle-user",
        get(&my, "user"),
        "--libdrizzle-password",
        get(&my, "password"),
        "--libdrizzle-db",
        get(&my, "db"),
        "--libdrizzle-table",
        &table,
        "--libdrizzle-mysql",
    ];
    let server = Daemon::ours(&args);
    server
        .connect()
        .submit(bg_job("uds", "u", "x", Priority::Normal));
    drop(server);
    let server = Daemon::ours(&args);
    let got = drain(server.addr(), &[b"uds"]);
    assert_eq!(got, vec![(b("uds"), b("u"), b("x"))]);
}

/// The default host `localhost` means the server's Unix socket, as in libmysqlclient: the
/// port is not used.
#[test]
fn mysql_localhost_is_the_unix_socket() {
    let my = pairs(&setting("GEARMAND_TEST_MYSQL"));
    let table = namespace("my_local");
    let closed = free_port().to_string();
    let args = mysql_args("MySQL", "localhost", &closed, &my, &table);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Daemon::ours(&args);
    server
        .connect()
        .submit(bg_job("local", "u", "x", Priority::Normal));
    drop(server);
    let server = Daemon::ours(&args);
    assert_eq!(
        drain(server.addr(), &[b"local"]),
        vec![(b("local"), b("u"), b("x"))]
    );
}

#[test]
fn mysql_outage_refuses_jobs_and_recovers() {
    let my = pairs(&setting("GEARMAND_TEST_MYSQL"));
    let upstream: SocketAddr = format!("{}:{}", get(&my, "host"), get(&my, "port"))
        .parse()
        .expect("GEARMAND_TEST_MYSQL host must be an IP address");
    let proxy = Proxy::start(upstream);
    let args = mysql_args(
        "libdrizzle",
        "127.0.0.1",
        &proxy.port.to_string(),
        &my,
        &namespace("my_outage"),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    store_outage(&args, || proxy.cut(), || proxy.restore(), "my_outage");
}

#[test]
fn mysql_bad_connection_options_fail_at_start() {
    let my = pairs(&setting("GEARMAND_TEST_MYSQL"));
    let mut wrong = my.clone();
    for (k, v) in &mut wrong {
        if k == "password" {
            *v = "wrong-password".into();
        }
    }
    let args = mysql_args("MySQL", get(&my, "host"), get(&my, "port"), &wrong, "q");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_start_fails(
        &args,
        &[
            "Error while initializing the queue : MySQL",
            "Access denied",
        ],
    );
    let closed = free_port().to_string();
    let args = mysql_args("MySQL", "127.0.0.1", &closed, &my, "q");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_start_fails(&args, &["Error while initializing the queue : MySQL"]);
    assert_start_fails(
        &["-q", "MySQL", "--mysql-host", "127.0.0.1", "--check-args"],
        &["--mysql-db"],
    );
    assert_start_fails(
        &[
            "-q",
            "libdrizzle",
            "--libdrizzle-table",
            "x y",
            "--check-args",
        ],
        &["--libdrizzle-table"],
    );
    let mut ok = args.clone();
    ok.push("--check-args");
    let (status, stderr) = run_to_exit(&ok);
    assert!(status.success(), "{stderr}");
}

#[test]
fn mysql_interop_with_the_c_server() {
    let my = pairs(&setting("GEARMAND_TEST_MYSQL"));
    let table = namespace("my_c");
    let c_args = mysql_args("MySQL", get(&my, "host"), get(&my, "port"), &my, &table);
    let c_args: Vec<&str> = c_args.iter().map(String::as_str).collect();
    let ours = mysql_args(
        "libdrizzle",
        get(&my, "host"),
        get(&my, "port"),
        &my,
        &table,
    );
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    interop(&c_args, &ours, "my_c", true);
}

// ---- memcached ---------------------------------------------------------------------------

#[test]
fn memcached_round_trip() {
    round_trip(Kind::Memcached, "mc_rt");
}

#[test]
fn memcached_sigkill_mid_submission_loses_no_acknowledged_job() {
    sigkill_mid_submission(Kind::Memcached, "mc_kill");
}

#[test]
fn memcached_outage_refuses_jobs_and_recovers() {
    let mc = Arc::new(Mutex::new(Private::memcached()));
    let servers = format!("127.0.0.1:{}", mc.lock().expect("memcached").port);
    let args = ["-q", "libmemcached", "--libmemcached-servers", &servers];
    store_outage(
        &args,
        || mc.lock().expect("memcached").down(),
        || mc.lock().expect("memcached").up(),
        "mc_outage",
    );
}

#[test]
fn memcached_bad_options_fail_at_start() {
    let closed = format!("127.0.0.1:{}", free_port());
    assert_start_fails(
        &["-q", "libmemcached", "--libmemcached-servers", &closed],
        &["Error while initializing the queue : libmemcached"],
    );
    assert_start_fails(
        &["-q", "libmemcached", "--check-args"],
        &["--libmemcached-servers"],
    );
    assert_start_fails(
        &[
            "-q",
            "libmemcached",
            "--libmemcached-servers",
            "h:99999",
            "--check-args",
        ],
        &["--libmemcached-servers"],
    );
    let (status, stderr) = run_to_exit(&[
        "-q",
        "libmemcached",
        "--libmemcached-servers",
        &closed,
        "--check-args",
    ]);
    assert!(status.success(), "{stderr}");
}

/// Many jobs make the index item grow past its compaction point; it is rewritten and the
/// queue still replays exactly.
#[test]
fn memcached_index_compaction_keeps_the_queue() {
    let store = Store::new(Kind::Memcached, "mc_compact");
    let server = Daemon::ours(&store.args());
    let mut c = server.connect();
    let mut w = server.connect();
    w.register(&["mcc"]);
    // Each add+done pair appends two ~70-byte index lines; 2500 pairs pass 256 KiB.
    let unique = "u".repeat(60);
    for i in 0..2500 {
        c.submit(bg_job("mcc", format!("{unique}{i}"), "x", Priority::Normal));
        let (handle, _, _) = w.grab();
        w.complete(&handle, b"");
    }
    for i in 0..3 {
        c.submit(bg_job("mcc", format!("keep{i}"), "k", Priority::Normal));
    }
    drop(server);
    let server = Daemon::ours(&store.args());
    let got: Vec<_> = drain(server.addr(), &[b"mcc"])
        .into_iter()
        .map(|(_, u, _)| esc(&u))
        .collect();
    assert_eq!(got, ["keep0", "keep1", "keep2"]);
}

/// A large queue: group-committed batches too big to append inline go to chunk items, and
/// replay rewrites the index as chunks; every job survives two restarts, then completes.
#[test]
fn memcached_large_queue_uses_index_chunks() {
    const JOBS: usize = 3000;
    let store = Store::new(Kind::Memcached, "mc_chunks");
    let server = Daemon::ours(&store.args());
    let long = "c".repeat(60);
    let jobs: Vec<SubmitJob> = (0..JOBS)
        .map(|i| {
            bg_job(
                "mcchunk",
                format!("{long}{i}"),
                format!("d{i}"),
                Priority::Normal,
            )
        })
        .collect();
    let acked = Arc::new(AtomicUsize::new(0));
    assert_eq!(submit_pipelined(server.addr(), jobs, acked), JOBS);
    drop(server);
    for _ in 0..2 {
        let server = Daemon::ours(&store.args());
        assert_eq!(
            server.connect().status_of("mcchunk"),
            Some((JOBS as u64, 0, 0))
        );
    }
    let mut server = Daemon::ours(&store.args());
    let got = drain(server.addr(), &[b"mcchunk"]);
    assert_eq!(got.len(), JOBS);
    assert!(server.terminate().success());
    let server = Daemon::ours(&store.args());
    assert!(matches!(
        server.connect().status_of("mcchunk"),
        None | Some((0, 0, 0))
    ));
}

// ---- Redis -------------------------------------------------------------------------------

#[test]
fn redis_round_trip() {
    round_trip(Kind::Redis, "rd_rt");
}

#[test]
fn redis_sigkill_mid_submission_loses_no_acknowledged_job() {
    sigkill_mid_submission(Kind::Redis, "rd_kill");
}

/// Redis restarts (with its append-only file): submissions during the outage are refused,
/// the server reconnects, and the queue written before the restart still replays.
#[test]
fn redis_restart_refuses_jobs_then_reconnects() {
    let dir = TempDir::new("rd_restart");
    let redis = Arc::new(Mutex::new(Private::redis(dir.path())));
    let port = redis.lock().expect("redis").port;
    let args = redis_args("127.0.0.1", port, "rq");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    store_outage(
        &args,
        || redis.lock().expect("redis").down(),
        || redis.lock().expect("redis").up(),
        "rd_outage",
    );
    let server = Daemon::ours(&args);
    let got: Vec<_> = drain(server.addr(), &[b"rd_outage"])
        .into_iter()
        .map(|(_, u, _)| esc(&u))
        .collect();
    assert_eq!(got, ["before", "after"]);
}

/// Keys under the prefix that are not jobs (a string, a hash without `data`) are skipped at
/// replay; the server starts and the real job comes back.
#[test]
fn redis_foreign_keys_under_the_prefix_are_ignored() {
    let (host, port) = host_port(&setting("GEARMAND_TEST_REDIS"));
    let prefix = namespace("rd_foreign");
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-h", &host, "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli (Debian package redis-tools)");
        assert!(out.status.success(), "redis-cli {args:?}");
    };
    cli(&["SET", &format!("{prefix}-junk-1"), "x"]);
    cli(&["HSET", &format!("{prefix}-f-u"), "foo", "bar"]);
    let args = redis_args(&host, port, &prefix);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Daemon::ours(&args);
    server
        .connect()
        .submit(bg_job("real", "u", "x", Priority::Normal));
    drop(server);
    let server = Daemon::ours(&args);
    let mut admin = server.connect();
    assert_eq!(admin.status_of("junk"), None);
    assert_eq!(admin.status_of("f"), None);
    assert_eq!(
        drain(server.addr(), &[b"real"]),
        vec![(b("real"), b("u"), b("x"))]
    );
}

/// `--redis-password` authenticates; without it a Redis that requires one is refused at
/// start-up.
#[test]
fn redis_password() {
    let dir = TempDir::new("rd_auth");
    let mut redis = Private::redis(dir.path());
    redis
        .argv
        .extend(["--requirepass".to_string(), "s3cret".to_string()]);
    redis.down();
    redis.up();
    let mut args = redis_args("127.0.0.1", redis.port, "auth");
    let args_without: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_start_fails(
        &args_without,
        &["Error while initializing the queue : redis"],
    );
    args.extend(["--redis-password".to_string(), "s3cret".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Daemon::ours(&args);
    server
        .connect()
        .submit(bg_job("rd_auth", "u", "x", Priority::High));
    drop(server);
    let server = Daemon::ours(&args);
    assert_eq!(
        drain(server.addr(), &[b"rd_auth"]),
        vec![(b("rd_auth"), b("u"), b("x"))]
    );
}

#[test]
fn redis_bad_options_fail_at_start() {
    let closed = free_port().to_string();
    assert_start_fails(
        &[
            "-q",
            "redis",
            "--redis-server",
            "127.0.0.1",
            "--redis-port",
            &closed,
        ],
        &["Error while initializing the queue : redis"],
    );
    let (host, port) = host_port(&setting("GEARMAND_TEST_REDIS"));
    assert_start_fails(
        &[
            "-q",
            "redis",
            "--redis-server",
            &host,
            "--redis-port",
            &port.to_string(),
            "--redis-password",
            "not-configured",
        ],
        &["Error while initializing the queue : redis"],
    );
    assert_start_fails(
        &["-q", "redis", "--redis-port", "0", "--check-args"],
        &["--redis-port"],
    );
    assert_start_fails(
        &["-q", "redis", "--redis-prefix", "", "--check-args"],
        &["--redis-prefix"],
    );
    let (status, stderr) = run_to_exit(&["-q", "redis", "--redis-port", &closed, "--check-args"]);
    assert!(status.success(), "{stderr}");
}

/// On a private Redis: the C module's replay reads every key under its prefix into fixed
/// buffers (a prefix longer than 6 bytes overflows one and crashes it), so it gets its
/// default prefix and no one else's keys.
#[test]
fn redis_interop_with_the_c_server() {
    let dir = TempDir::new("rd_c");
    let redis = Private::redis(dir.path());
    let args = redis_args("127.0.0.1", redis.port, "_gear_");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    interop(&args, &args, "rd_c", true);
}

// ---- Tokyo Cabinet -----------------------------------------------------------------------

#[test]
fn tokyocabinet_round_trip() {
    round_trip(Kind::TokyoCabinet, "tc_rt");
}

#[test]
fn tokyocabinet_sigkill_mid_submission_loses_no_acknowledged_job() {
    sigkill_mid_submission(Kind::TokyoCabinet, "tc_kill");
}

#[test]
fn tokyocabinet_bad_options_fail_at_start() {
    assert_start_fails(
        &[
            "-q",
            "libtokyocabinet",
            "--libtokyocabinet-file",
            "/nonexistent/dir/q.tch",
        ],
        &["Error while initializing the queue : libtokyocabinet"],
    );
    assert_start_fails(
        &["-q", "libtokyocabinet", "--check-args"],
        &["--libtokyocabinet-file"],
    );
    assert_start_fails(
        &[
            "-q",
            "libtokyocabinet",
            "--libtokyocabinet-file",
            "q.db",
            "--check-args",
        ],
        &[".tch"],
    );
    let (status, stderr) = run_to_exit(&[
        "-q",
        "libtokyocabinet",
        "--libtokyocabinet-file",
        "/nonexistent/dir/q.tch",
        "--libtokyocabinet-optimize",
        "false",
        "--check-args",
    ]);
    assert!(status.success(), "{stderr}");
}

/// The library is loaded at run time: without it `-q libtokyocabinet` stops the start and
/// `--check-args` alike with one line naming the package, and nothing else is affected. A
/// debug build loads the soname in `GEARMAND_TEST_TOKYOCABINET_SONAME` instead, which is how
/// a machine that has the library sees it missing; a release build ignores the variable.
#[test]
fn ours_tokyocabinet_missing_library_fails_at_start() {
    let dir = TempDir::new("tc_nolib");
    let file = dir.path().join("q.tch");
    let file = file.to_str().expect("temp path is UTF-8");
    let env = [("GEARMAND_TEST_TOKYOCABINET_SONAME", "libdoesnotexist.so.9")];
    let args = ["-q", "libtokyocabinet", "--libtokyocabinet-file", file];
    let check_args = [&args[..], &["--check-args"]].concat();
    if !cfg!(debug_assertions) {
        // The binary is built with the same profile as this test.
        let (status, stderr) = run_to_exit_with_env(&check_args, &env);
        assert!(
            status.success(),
            "a release build honoured the override: {stderr}"
        );
        return;
    }
    // What glibc's dlerror says for a soname it cannot find (gearmand never calls setlocale,
    // so the message is untranslated).
    let expected = "gearmand: Error while initializing the queue : libtokyocabinet (cannot load \
                    libtokyocabinet.so.9: libdoesnotexist.so.9: cannot open shared object file: \
                    No such file or directory; install libtokyocabinet9)\n";
    for args in [&args[..], &check_args[..]] {
        let (status, stderr) = run_to_exit_with_env(args, &env);
        assert_eq!(status.code(), Some(1), "{args:?}: stderr {stderr}");
        assert_eq!(stderr, expected, "{args:?}");
    }
    assert!(
        !Path::new(file).exists(),
        "nothing is created without the library"
    );
    // The override concerns Tokyo Cabinet alone: the default queue still checks out.
    let (status, stderr) = run_to_exit_with_env(&["--check-args"], &env);
    assert!(status.success(), "{stderr}");
}
