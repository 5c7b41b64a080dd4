//! The persistent queue (`-q libsqlite3`, shared/docs/protocol.md §7): acknowledged background jobs
//! survive SIGKILL at any moment, replay at start-up, read and write the C server's tables in
//! both directions, and a store that cannot be read or written is reported, never ignored.
//!
//! These tests start their own server processes (ours and the C `/usr/sbin/gearmand`) so a
//! test can SIGKILL one and start the next on the same database file.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use gearman_shared::connection::Connection;
use gearman_shared::protocol::{
    encode, ErrorCode, Frame, GrabKind, JobMode, PacketType, Priority, Request, Response, SubmitJob,
};
use rusqlite::types::ValueRef;

use crate::harness::{
    b, bg_job, esc, gearmand_bin, h, is_timeout, job, show, wait_until, ChildGuard, Client, PREFIX,
};
use crate::server_process::{self, ServerProcess};

const C_GEARMAND: &str = "/usr/sbin/gearmand";
const C_GEARMAN: &str = "/usr/bin/gearman";
const C_GEARADMIN: &str = "/usr/bin/gearadmin";

/// How long a server gets to accept connections, and to exit when asked.
const START_LIMIT: Duration = Duration::from_secs(10);
const EXIT_LIMIT: Duration = Duration::from_secs(10);
/// How long a change made by the store thread may take to show in the table.
const STORE_LIMIT: Duration = Duration::from_secs(10);

/// The exact statement the C server creates its table with (shared/docs/protocol.md §7.2).
const C_TABLE: &str = "CREATE TABLE gearman_queue ( unique_key TEXT, function_name TEXT, \
                       priority INTEGER, data BLOB, when_to_run INTEGER, \
                       PRIMARY KEY (unique_key, function_name))";

// ---- processes, files, databases -------------------------------------------------------

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "gearman-persist-{}-{}-{name}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test's temp dir");
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The database file of this test.
    fn db(&self) -> PathBuf {
        self.join("queue.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn text(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for a free port");
    listener.local_addr().expect("local_addr").port()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Our gearmand, built from this workspace.
    Ours,
    /// The C gearmand 1.1.20.
    C,
}

/// A server process of either flavor; SIGKILLed when dropped.
struct Daemon {
    process: ServerProcess,
    port: u16,
    /// The C server's log file, beside the output the process writes.
    c_log: Option<PathBuf>,
    flavor: Flavor,
}

impl Daemon {
    /// Our gearmand on `db` with `-q libsqlite3` and `extra` arguments.
    fn ours(dir: &TempDir, db: &Path, extra: &[&str]) -> Daemon {
        let mut args = vec!["-q", "libsqlite3", "--libsqlite3-db", text(db)];
        args.extend_from_slice(extra);
        Daemon::start(Flavor::Ours, dir, &args)
    }

    /// The C gearmand on `db` with `-q libsqlite3`.
    fn c(dir: &TempDir, db: &Path) -> Daemon {
        assert!(
            Path::new(C_GEARMAND).is_file(),
            "{C_GEARMAND} is missing: install the Debian package gearman-job-server"
        );
        Daemon::start(
            Flavor::C,
            dir,
            &["-q", "libsqlite3", "--libsqlite3-db", text(db)],
        )
    }

    fn start(flavor: Flavor, dir: &TempDir, args: &[&str]) -> Daemon {
        let bin = match flavor {
            Flavor::Ours => gearmand_bin(),
            Flavor::C => PathBuf::from(C_GEARMAND),
        };
        assert!(
            bin.is_file(),
            "{} not found: build it with `cargo build -p gearmand --bins`",
            bin.display()
        );
        let mut failures = String::new();
        // A free port can be taken before the server binds it: a few attempts make that
        // race harmless.
        for _attempt in 0..3 {
            let port = free_port();
            let tag = format!("{flavor:?}-{port}-{}", SEQ.fetch_add(1, Ordering::SeqCst));
            let out = dir.join(&format!("{tag}.out"));
            let mut cmd = Command::new(&bin);
            cmd.arg("-L")
                .arg("127.0.0.1")
                .arg("-p")
                .arg(port.to_string())
                .arg("-P")
                .arg(dir.join(&format!("{tag}.pid")));
            let c_log = match flavor {
                Flavor::Ours => {
                    cmd.args(["-l", "stderr", "--job-handle-prefix", PREFIX]);
                    None
                }
                Flavor::C => {
                    let log = dir.join(&format!("{tag}.log"));
                    cmd.arg("-l").arg(&log).args(["--verbose", "INFO"]);
                    Some(log)
                }
            };
            cmd.args(args);
            let mut daemon = Daemon {
                process: ServerProcess::spawn(cmd, out),
                port,
                c_log,
                flavor,
            };
            match daemon.wait_ready() {
                Ok(()) => return daemon,
                Err(why) => {
                    failures.push_str(&format!("{why}\n--- log:\n{}\n", daemon.log()));
                    // Dropping kills it.
                }
            }
        }
        panic!("{} {args:?} did not start:\n{failures}", bin.display());
    }

    /// Waits until the server answers `getpid` with its own pid: the C server retries a
    /// busy port for 20 s instead of failing, so "something accepts" is not enough.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.process.exit_status() {
                return Err(format!("server exited early with {status}"));
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                let reply = self.connect().admin("getpid");
                let pid = reply.trim().strip_prefix("OK ").unwrap_or(reply.trim());
                if pid == self.process.pid().to_string() {
                    return Ok(());
                }
                return Err(format!(
                    "port {} is served by another process (getpid: {reply:?})",
                    self.port
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("no connection accepted within {START_LIMIT:?}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// What the process wrote, then the C server's log file.
    fn log(&self) -> String {
        let mut log = self.process.log();
        if let Some(c_log) = &self.c_log {
            log.push('\n');
            log.push_str(&String::from_utf8_lossy(
                &fs::read(c_log).unwrap_or_default(),
            ));
        }
        log
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        self.process.wait_exit(limit)
    }

    /// SIGKILL, sent directly (no helper process), and reaped.
    fn kill(&mut self) {
        self.process.sigkill(EXIT_LIMIT);
    }

    /// SIGTERM, then wait for a clean exit.
    fn terminate(&mut self) -> ExitStatus {
        self.process.signal("TERM");
        self.wait_exit(EXIT_LIMIT)
    }

    /// Fails the test if the process died.
    fn assert_alive(&mut self) {
        if let Some(status) = self.process.exit_status() {
            panic!("server died with {status}\n--- log:\n{}", self.log());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let label = format!("{:?} gearmand (port {})", self.flavor, self.port);
        self.process.stop(&label);
        if let (true, Some(c_log)) = (thread::panicking(), &self.c_log) {
            let text = String::from_utf8_lossy(&fs::read(c_log).unwrap_or_default()).into_owned();
            eprintln!("--- its log file:\n{}", server_process::tail(&text));
        }
    }
}

/// Our gearmand run to completion (it is expected to exit by itself): `(success, stderr)`.
fn run_ours_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let port = free_port().to_string();
    let mut cmd = Command::new(gearmand_bin());
    cmd.args(["-L", "127.0.0.1", "-p", &port, "-l", "stderr"])
        .args(args);
    let out = ChildGuard::spawn(cmd).wait_output(EXIT_LIMIT);
    let mut all = String::from_utf8_lossy(&out.stderr).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stdout));
    (out.status, all)
}

/// A row of the queue table, bytes as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    unique: Vec<u8>,
    function: Vec<u8>,
    priority: i64,
    data: Option<Vec<u8>>,
    /// `typeof(data)`: the C server replays only BLOB.
    data_type: String,
    when: i64,
}

fn open_db(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).expect("open the queue database");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy_timeout");
    conn
}

fn bytes_of(v: ValueRef<'_>) -> Option<Vec<u8>> {
    match v {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(t.to_vec()),
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string().into_bytes()),
        ValueRef::Real(r) => Some(r.to_string().into_bytes()),
    }
}

/// Every row, in rowid (replay) order.
fn rows(db: &Path) -> Vec<Row> {
    let conn = open_db(db);
    let mut stmt = conn
        .prepare(
            "SELECT unique_key, function_name, priority, data, typeof(data), when_to_run \
             FROM gearman_queue ORDER BY rowid",
        )
        .expect("prepare SELECT");
    let rows = stmt
        .query_map([], |r| {
            Ok(Row {
                unique: bytes_of(r.get_ref(0)?).unwrap_or_default(),
                function: bytes_of(r.get_ref(1)?).unwrap_or_default(),
                priority: r.get(2)?,
                data: bytes_of(r.get_ref(3)?),
                data_type: r.get(4)?,
                when: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
            })
        })
        .expect("SELECT rows")
        .collect::<Result<Vec<_>, _>>()
        .expect("read rows");
    rows
}

/// Waits until the table holds exactly `n` rows (the store thread writes asynchronously
/// to the processing of completions and cancels).
fn wait_rows(db: &Path, n: usize, what: &str) -> Vec<Row> {
    let deadline = Instant::now() + STORE_LIMIT;
    loop {
        let now = rows(db);
        if now.len() == n {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: expected {n} rows within {STORE_LIMIT:?}, have {}: {now:?}",
            now.len()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A fresh random number (per run), for the kill points.
fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn epoch_job(function: &str, unique: &str, data: &str, epoch: i64) -> SubmitJob {
    SubmitJob {
        epoch: Some(epoch),
        mode: JobMode::Background,
        ..job(function, unique, data)
    }
}

/// The `prioritystatus` line of `function`: `(high, normal, low, workers)`.
fn priority_status(c: &mut Client, function: &str) -> Option<(u64, u64, u64, u64)> {
    let text = c.admin("prioritystatus");
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() == 5 && f[0] == function {
            let n = |s: &str| {
                s.parse::<u64>()
                    .expect("prioritystatus counters are numbers")
            };
            Some((n(f[1]), n(f[2]), n(f[3]), n(f[4])))
        } else {
            None
        }
    })
}

/// Waits (at most 8 s) for the NOOP that tells a sleeping worker an epoch job fell due.
fn wait_noop(w: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        match w.try_frame(Duration::from_millis(200)) {
            Ok(Frame::Packet(p)) if p.kind == PacketType::Noop => return,
            Ok(other) => panic!("expected NOOP, got {other:?}"),
            Err(err) if is_timeout(&err) => {
                assert!(Instant::now() < deadline, "the epoch job never became due")
            }
            Err(err) => panic!("waiting for NOOP: {err}"),
        }
    }
}

// ---- pipelined clients and workers -------------------------------------------------------

/// What one pipelined submitter saw.
#[derive(Debug)]
struct Submitted {
    /// JOB_CREATEDs received: the first `acked` jobs of the connection (replies keep order).
    acked: usize,
    /// Anything other than JOB_CREATED, or a read time-out.
    error: Option<String>,
}

/// Sends every job of `jobs` on one new connection without waiting, while a second thread
/// counts the JOB_CREATEDs (also into `counter`); stops at the first other packet or when
/// the server goes away.
fn submit_pipelined(
    addr: SocketAddr,
    jobs: Vec<SubmitJob>,
    counter: Arc<AtomicUsize>,
) -> Submitted {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("write timeout");
    let mut writer = stream.try_clone().expect("clone the socket");
    let total = jobs.len();
    let sender = thread::spawn(move || {
        let mut buf = BytesMut::new();
        for job in jobs {
            encode(&Request::Submit(job).into_packet(), &mut buf);
        }
        // The server may be killed at any moment: a failed write is expected then.
        let _ = writer.write_all(&buf);
    });
    let mut conn = Connection::from_stream(stream);
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("read timeout");
    let mut acked = 0;
    let mut error = None;
    while acked < total {
        match conn.read_packet() {
            Ok(p) if p.kind == PacketType::JobCreated => {
                acked += 1;
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Ok(p) => {
                error = Some(show(&p));
                break;
            }
            Err(e) if is_timeout(&e) => {
                error = Some(format!("no reply within 15 s after {acked} JOB_CREATEDs"));
                break;
            }
            // Closed or reset: the server is gone.
            Err(_) => break,
        }
    }
    // Unblocks the writer if the server is gone.
    let _ = conn.stream().shutdown(std::net::Shutdown::Both);
    sender.join().expect("submission writer thread");
    Submitted { acked, error }
}

/// Grabs (GRAB_JOB_UNIQ, pipelined) and completes every job of `functions` until the server
/// has none left; returns `(unique, data)` in the order they were handed out.
fn drain(addr: SocketAddr, functions: &[&str]) -> Vec<(Bytes, Bytes)> {
    const BATCH: usize = 64;
    let mut w = Client::connect(addr);
    w.register(functions);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        assert!(Instant::now() < deadline, "drain did not finish");
        let mut buf = BytesMut::new();
        for _ in 0..BATCH {
            encode(&Request::Grab(GrabKind::Uniq).into_packet(), &mut buf);
        }
        w.send_raw(&buf);
        let mut handles = Vec::new();
        let mut empty = false;
        for _ in 0..BATCH {
            let p = w.recv_packet();
            match p.kind {
                PacketType::JobAssignUniq => {
                    handles.push(b(p.arg(0)));
                    got.push((b(p.arg(2)), b(p.arg(3))));
                }
                PacketType::NoJob => empty = true,
                _ => panic!("draining: unexpected {}", show(&p)),
            }
        }
        let mut buf = BytesMut::new();
        for handle in handles {
            let complete = Request::WorkComplete {
                handle,
                data: Bytes::new(),
            };
            encode(&complete.into_packet(), &mut buf);
        }
        w.send_raw(&buf);
        if empty {
            break;
        }
    }
    w.sync();
    got
}

/// The data of drained jobs.
fn datas(jobs: &[(Bytes, Bytes)]) -> Vec<Bytes> {
    jobs.iter().map(|(_, d)| d.clone()).collect()
}

/// Counts of each item.
fn counts<T: std::hash::Hash + Eq + Clone>(items: &[T]) -> HashMap<T, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

// ---- 1. crash during submission ----------------------------------------------------------

#[test]
fn fix_sigkill_during_submission_loses_no_acknowledged_job() {
    const CONNS: usize = 4;
    const PER_CONN: usize = 2500;
    let dir = TempDir::new("crash-submit");
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &[]);
    let target = 2000 + (random_u64() % 6001) as usize;
    eprintln!("SIGKILL after {target} JOB_CREATEDs");

    // Every storage-key path at once: empty uniques (generated keys), `-` with distinct data
    // (generated keys), explicit uniques; all priorities.
    let payload = |c: usize, i: usize| format!("crash-{c}-{i}");
    let jobs_of = |c: usize| -> Vec<SubmitJob> {
        (0..PER_CONN)
            .map(|i| {
                let data = payload(c, i);
                let unique = match c {
                    0 => String::new(),
                    1 => "-".to_string(),
                    _ => format!("u-{data}"),
                };
                let priority = Priority::ALL[i % 3];
                bg_job("crash", unique, data, priority)
            })
            .collect()
    };
    let counter = Arc::new(AtomicUsize::new(0));
    let addr = server.addr();
    let submitters: Vec<_> = (0..CONNS)
        .map(|c| {
            let jobs = jobs_of(c);
            let counter = counter.clone();
            thread::spawn(move || submit_pipelined(addr, jobs, counter))
        })
        .collect();
    // (Or until every submitter stopped: its error is reported below.)
    wait_until(
        Duration::from_secs(40),
        "enough JOB_CREATEDs before the kill",
        || counter.load(Ordering::SeqCst) >= target || submitters.iter().all(|t| t.is_finished()),
    );
    server.kill();
    let results: Vec<Submitted> = submitters
        .into_iter()
        .map(|t| t.join().expect("submitter thread"))
        .collect();
    for (c, r) in results.iter().enumerate() {
        assert!(r.error.is_none(), "connection {c}: {:?}", r.error);
    }
    let acked: Vec<String> = results
        .iter()
        .enumerate()
        .flat_map(|(c, r)| (0..r.acked).map(move |i| payload(c, i)))
        .collect();
    eprintln!(
        "acknowledged {} jobs: {:?}",
        acked.len(),
        results.iter().map(|r| r.acked).collect::<Vec<_>>()
    );
    assert!(acked.len() >= target);

    // The restarted server recovers the WAL itself (nothing opened the file meanwhile).
    let server = Daemon::ours(&dir, &db, &[]);
    let mut admin = server.connect();
    let (total, running, _) = admin.status_of("crash").expect("the function is back");
    assert_eq!(running, 0);
    assert!(
        total as usize >= acked.len() && total as usize <= CONNS * PER_CONN,
        "replayed {total}, acknowledged {}",
        acked.len()
    );
    assert_eq!(admin.show_jobs().len(), total as usize);

    let ran = datas(&drain(server.addr(), &["crash"]));
    assert_eq!(ran.len(), total as usize, "every replayed job runs");
    // Each job kept its priority: the drain hands out every HIGH job, then NORMAL, then LOW.
    let priority_of = |d: &Bytes| -> usize {
        let text = String::from_utf8_lossy(d);
        let i: usize = text
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected payload {text:?}"));
        i % 3
    };
    let order: Vec<usize> = ran.iter().map(priority_of).collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "replayed jobs did not keep their priorities"
    );
    let ran_counts = counts(&ran);
    let twice: Vec<_> = ran_counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "jobs replayed twice: {twice:?}");
    let submitted: HashSet<String> = (0..CONNS)
        .flat_map(|c| (0..PER_CONN).map(move |i| payload(c, i)))
        .collect();
    for d in &ran {
        let d = String::from_utf8_lossy(d).into_owned();
        assert!(submitted.contains(&d), "a job nobody submitted ran: {d:?}");
    }
    let lost: Vec<_> = acked
        .iter()
        .filter(|d| !ran_counts.contains_key(d.as_bytes()))
        .take(10)
        .collect();
    assert!(lost.is_empty(), "acknowledged jobs lost: {lost:?} ...");
    admin.echo(b"alive");
    wait_rows(&db, 0, "completed jobs are deleted");
}

// ---- 2. crash during drain ---------------------------------------------------------------

/// What a crash-test worker saw: jobs handed to it, and completions the server processed.
#[derive(Default)]
struct WorkLog {
    grabbed: Vec<Bytes>,
    confirmed: Vec<Bytes>,
}

/// Grabs a job, sends WORK_COMPLETE and an ECHO_REQ together and waits for the ECHO_RES:
/// requests are processed in order, so then the server has processed the completion.
fn confirming_worker(
    addr: SocketAddr,
    function: &str,
    log: Arc<Mutex<WorkLog>>,
    done: Arc<AtomicUsize>,
) {
    let Ok(mut conn) = Connection::connect(addr, Some(Duration::from_secs(5))) else {
        return;
    };
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    if conn
        .send(Request::CanDo {
            function: b(function),
        })
        .is_err()
    {
        return;
    }
    loop {
        if conn.send(Request::Grab(GrabKind::Plain)).is_err() {
            return;
        }
        let (handle, data) = match conn.read_packet() {
            Ok(p) if p.kind == PacketType::JobAssign => (b(p.arg(0)), b(p.arg(2))),
            Ok(p) if p.kind == PacketType::NoJob => return,
            Ok(p) => panic!("worker: unexpected {}", show(&p)),
            Err(_) => return,
        };
        log.lock().expect("work log").grabbed.push(data.clone());
        conn.queue(
            &Request::WorkComplete {
                handle,
                data: Bytes::new(),
            }
            .into_packet(),
        );
        conn.queue(&Request::Echo { data: data.clone() }.into_packet());
        if conn.flush().is_err() {
            return;
        }
        match conn.read_packet() {
            Ok(p) if p.kind == PacketType::EchoRes && p.arg(0) == data => {
                log.lock().expect("work log").confirmed.push(data);
                done.fetch_add(1, Ordering::SeqCst);
            }
            Ok(p) => panic!("worker: expected ECHO_RES, got {}", show(&p)),
            Err(_) => return,
        }
    }
}

/// The outcome of a crash during a drain: see [`crash_during_drain`].
struct DrainCrash {
    /// Completions the server had processed (ECHO_RES received) before the kill.
    confirmed: HashSet<Bytes>,
    /// Jobs handed to a worker whose completion was not confirmed.
    in_flight: HashSet<Bytes>,
    /// What the restarted server then ran, in order.
    rest: Vec<Bytes>,
    /// Every job submitted (all acknowledged).
    submitted: Vec<Bytes>,
}

/// Queues jobs, lets three confirming workers drain them, SIGKILLs the server after a
/// random number of confirmed completions, restarts it on the same file and drains the rest.
fn crash_during_drain(name: &str) -> DrainCrash {
    const JOBS: usize = 1500;
    const WORKERS: usize = 3;
    let dir = TempDir::new(name);
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &[]);
    let submitted: Vec<Bytes> = (0..JOBS).map(|i| b(format!("drain-{i}"))).collect();
    let jobs: Vec<SubmitJob> = submitted
        .iter()
        .enumerate()
        .map(|(i, d)| bg_job("drain", format!("u{i}"), d, Priority::Normal))
        .collect();
    let r = submit_pipelined(server.addr(), jobs, Arc::new(AtomicUsize::new(0)));
    assert_eq!((r.acked, r.error), (JOBS, None));

    let target = 200 + (random_u64() % 1001) as usize;
    eprintln!("SIGKILL after {target} confirmed completions");
    let log = Arc::new(Mutex::new(WorkLog::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (addr, log, done) = (server.addr(), log.clone(), done.clone());
            thread::spawn(move || confirming_worker(addr, "drain", log, done))
        })
        .collect();
    wait_until(
        Duration::from_secs(40),
        "enough confirmed completions before the kill",
        || done.load(Ordering::SeqCst) >= target || workers.iter().all(|t| t.is_finished()),
    );
    assert!(
        done.load(Ordering::SeqCst) >= target,
        "the workers stopped early"
    );
    server.kill();
    for w in workers {
        w.join().expect("worker thread");
    }
    let log = std::mem::take(&mut *log.lock().expect("work log"));
    let confirmed: HashSet<Bytes> = log.confirmed.iter().cloned().collect();
    assert_eq!(
        confirmed.len(),
        log.confirmed.len(),
        "a job was handed out twice before the kill"
    );
    let in_flight: HashSet<Bytes> = log
        .grabbed
        .iter()
        .filter(|d| !confirmed.contains(*d))
        .cloned()
        .collect();
    assert!(in_flight.len() <= WORKERS, "in flight: {in_flight:?}");

    let server = Daemon::ours(&dir, &db, &[]);
    let rest = datas(&drain(server.addr(), &["drain"]));
    wait_rows(&db, 0, "completed jobs are deleted");
    let rerun = rest.iter().filter(|d| confirmed.contains(*d)).count();
    eprintln!(
        "confirmed {} completions, {} in flight at the kill; after the restart {} ran, \
         {rerun} of them confirmed before the kill",
        confirmed.len(),
        in_flight.len(),
        rest.len()
    );
    DrainCrash {
        confirmed,
        in_flight,
        rest,
        submitted,
    }
}

#[test]
fn sigkill_during_drain_loses_no_acknowledged_job() {
    let crash = crash_during_drain("crash-drain");
    let rest_counts = counts(&crash.rest);
    let twice: Vec<_> = rest_counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "replayed twice: {twice:?}");
    let lost: Vec<String> = crash
        .submitted
        .iter()
        // A job in flight at the kill may have been completed (its WORK_COMPLETE processed
        // and deleted) without the worker seeing the confirmation: done, not lost.
        .filter(|d| {
            !crash.confirmed.contains(*d)
                && !crash.in_flight.contains(*d)
                && !rest_counts.contains_key(*d)
        })
        .map(|d| esc(d))
        .collect();
    assert!(lost.is_empty(), "acknowledged jobs lost: {lost:?}");
    // Jobs handed out before the kill may come back (at least once); that a confirmed
    // completion does not is the test below.
    let strangers: Vec<String> = crash
        .rest
        .iter()
        .filter(|d| !crash.submitted.contains(*d))
        .map(|d| esc(d))
        .collect();
    assert!(strangers.is_empty(), "jobs nobody submitted: {strangers:?}");
}

/// KNOWN BUG (reported, not fixed): the row of a completed job is deleted by the store
/// thread after the server has already answered the worker's next request, so a SIGKILL
/// right after the worker's ECHO_RES can bring back jobs whose WORK_COMPLETE the server had
/// processed; the C server deletes the row before reading the next packet. Run with
/// `cargo test --test e2e known_bug_ -- --ignored`.
#[test]
fn sigkill_during_drain_does_not_rerun_confirmed_completions() {
    let crash = crash_during_drain("crash-drain-confirmed");
    let rerun: Vec<String> = crash
        .rest
        .iter()
        .filter(|d| crash.confirmed.contains(*d))
        .map(|d| esc(d))
        .collect();
    assert!(
        rerun.is_empty(),
        "{} jobs whose WORK_COMPLETE the server had processed (ECHO_RES received) ran again \
         after the restart: {rerun:?}; in flight at the kill were only {:?}",
        rerun.len(),
        crash.in_flight
    );
}

// ---- 3. interop with the C server ------------------------------------------------------------

fn c_tool(tool: &str, port: u16, args: &[&str]) -> Command {
    assert!(
        Path::new(tool).is_file(),
        "{tool} is missing: install the Debian package gearman-tools"
    );
    let mut cmd = Command::new(tool);
    cmd.arg("-h")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(args);
    cmd.env_remove("GEARMAN_SERVER");
    cmd
}

#[test]
fn c_server_queue_is_replayed_by_ours_in_priority_order() {
    let dir = TempDir::new("c-to-ours");
    let db = dir.db();
    let due = unix_now() + 4;
    let mut c_server = Daemon::c(&dir, &db);
    {
        let mut c = c_server.connect();
        // The C server overwrites rows with equal uniques: give each job its own.
        for (data, priority) in [
            ("l1", Priority::Low),
            ("n1", Priority::Normal),
            ("h1", Priority::High),
            ("l2", Priority::Low),
            ("h2", Priority::High),
        ] {
            c.submit(bg_job("ia", format!("u-{data}"), data, priority));
        }
        c.submit(epoch_job("ia_epoch", "u-e1", "e1", due));
        assert_eq!(c.status_of("ia"), Some((5, 0, 0)));
    }
    let status = c_server.terminate();
    assert!(status.success(), "C gearmand exited with {status}");
    let table = rows(&db);
    let summary: Vec<_> = table
        .iter()
        .map(|r| (esc(&r.unique), esc(&r.function), r.priority, r.when))
        .collect();
    assert_eq!(
        summary,
        [
            ("u-l1", "ia", 2, 0),
            ("u-n1", "ia", 1, 0),
            ("u-h1", "ia", 0, 0),
            ("u-l2", "ia", 2, 0),
            ("u-h2", "ia", 0, 0),
            ("u-e1", "ia_epoch", 1, due),
        ]
        .map(|(u, f, p, w)| (u.to_string(), f.to_string(), p, w)),
        "what the C server stored"
    );

    let server = Daemon::ours(&dir, &db, &[]);
    let mut admin = server.connect();
    assert_eq!(admin.status_of("ia"), Some((5, 0, 0)));
    assert_eq!(priority_status(&mut admin, "ia"), Some((2, 1, 2, 0)));
    assert_eq!(admin.status_of("ia_epoch"), Some((1, 0, 0)));
    let mut w = server.connect();
    w.register(&["ia"]);
    let mut got = Vec::new();
    for _ in 0..5 {
        let (handle, function, unique, data) = w.grab_uniq();
        assert_eq!(function, "ia");
        got.push((esc(&unique), esc(&data)));
        w.complete(&handle, b"");
    }
    w.grab_none();
    assert_eq!(
        got,
        ["h1", "h2", "n1", "l1", "l2"].map(|d| (format!("u-{d}"), d.to_string())),
        "HIGH first, then NORMAL, then LOW, each in stored order"
    );

    // The epoch job waits for its time, then runs.
    let mut e = server.connect();
    e.register(&["ia_epoch"]);
    if unix_now() < due {
        e.grab_none();
    }
    e.pre_sleep();
    wait_noop(&mut e);
    assert!(unix_now() >= due, "the epoch job ran before its time");
    let (handle, _, unique, data) = e.grab_uniq();
    assert_eq!((unique, data), (b("u-e1"), b("e1")));
    e.complete(&handle, b"");
    e.sync();
    wait_rows(&db, 0, "completed jobs are deleted");
}

#[test]
fn our_queue_is_replayed_by_the_c_server_after_sigkill() {
    let dir = TempDir::new("ours-to-c");
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &[]);
    {
        let mut c = server.connect();
        c.submit(bg_job("cr", "c-l", "ll", Priority::Low));
        c.submit(bg_job("cr", "c-n", "nn", Priority::Normal));
        c.submit(bg_job("cr", "c-h", "hh", Priority::High));
        // The C server stores empty data as NULL and then cannot start; ours stores X''.
        c.submit(bg_job("cr_empty", "c-e", "", Priority::Normal));
        // Stored under a generated key, which the C server takes for the unique.
        c.submit(bg_job("cr_gen", "", "g", Priority::Normal));
    }
    // No checkpoint: the C server must recover our WAL.
    server.kill();
    let c_server = Daemon::c(&dir, &db);
    let out = ChildGuard::spawn(c_tool(C_GEARADMIN, c_server.port, &["--status"]))
        .wait_output(Duration::from_secs(10));
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "gearadmin failed: {out:?}");
    for line in ["cr\t3\t0\t0", "cr_empty\t1\t0\t0", "cr_gen\t1\t0\t0"] {
        assert!(
            status.lines().any(|l| l == line),
            "no {line:?} in gearadmin --status:\n{status}"
        );
    }
    let out = ChildGuard::spawn(c_tool(
        C_GEARMAN,
        c_server.port,
        &["-w", "-c", "3", "-f", "cr"],
    ))
    .wait_output(Duration::from_secs(10));
    assert!(out.status.success(), "C worker failed: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hhnnll",
        "the C worker gets the jobs by priority"
    );
    // The C server deletes a row when its job completes.
    let left = wait_rows(&db, 2, "the C server deletes completed jobs");
    let left: Vec<_> = left.iter().map(|r| esc(&r.function)).collect();
    assert_eq!(left, ["cr_empty", "cr_gen"]);
}

// ---- 4. the C quirks we fix ----------------------------------------------------------------

#[test]
fn fix_empty_and_dash_uniques_and_empty_data_survive_a_restart() {
    let dir = TempDir::new("fixes");
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &[]);
    let dash_c;
    {
        let mut c = server.connect();
        c.submit(bg_job("fx", "", "a", Priority::Normal));
        c.submit(bg_job("fx", "", "b", Priority::Normal));
        dash_c = c.submit(bg_job("fx", "-", "c", Priority::Normal));
        c.submit(bg_job("fx", "-", "d", Priority::Normal));
        // `-` with equal data coalesces: still one job.
        assert_eq!(c.submit(bg_job("fx", "-", "c", Priority::Normal)), dash_c);
        c.submit(bg_job("fx", "", "", Priority::Low));
        c.submit(bg_job("fx", "empty", "", Priority::High));
        assert_eq!(c.status_of("fx"), Some((6, 0, 0)));
    }
    let table = rows(&db);
    assert_eq!(table.len(), 6, "{table:?}");
    for r in &table {
        assert_eq!(
            r.data_type, "blob",
            "data is always a BLOB, never NULL: {r:?}"
        );
        if r.unique != b"empty" {
            assert_eq!(r.unique[0], 1, "generated key for {r:?}");
        }
    }
    server.kill();

    let server = Daemon::ours(&dir, &db, &[]);
    let mut c = server.connect();
    assert_eq!(c.status_of("fx"), Some((6, 0, 0)));
    // The replayed `-` job still coalesces with an equal submission.
    let again = c.submit(bg_job("fx", "-", "c", Priority::Normal));
    assert_eq!(c.status_of("fx"), Some((6, 0, 0)));
    let ran = drain(server.addr(), &["fx"]);
    let mut got: Vec<(String, String)> = ran.iter().map(|(u, d)| (esc(u), esc(d))).collect();
    got.sort();
    let mut expected = [
        ("", "a"),
        ("", "b"),
        ("-", "c"),
        ("-", "d"),
        ("", ""),
        ("empty", ""),
    ]
    .map(|(u, d)| (u.to_string(), d.to_string()));
    expected.sort();
    assert_eq!(got, expected);
    // Replay numbers handles from 1 in stored order: the `-`/c job was the third row.
    assert_eq!(again, h(3), "coalesced with the replayed job");
    // The HIGH job comes first.
    assert_eq!(ran[0], (b("empty"), Bytes::new()));
    wait_rows(&db, 0, "completed jobs are deleted");
}

#[test]
fn fix_a_null_data_row_replays_as_an_empty_payload() {
    let dir = TempDir::new("null-data");
    let db = dir.db();
    {
        let conn = open_db(&db);
        conn.execute_batch(C_TABLE).expect("create the C table");
        conn.execute(
            "INSERT INTO gearman_queue (unique_key, function_name, priority, data, when_to_run) \
             VALUES ('nulljob', 'fnull', 1, NULL, 0), ('blobjob', 'fnull', 0, X'00FF', 0)",
            [],
        )
        .expect("insert rows by hand");
    }
    let server = Daemon::ours(&dir, &db, &[]);
    let mut c = server.connect();
    assert_eq!(c.status_of("fnull"), Some((2, 0, 0)));
    let ran = drain(server.addr(), &["fnull"]);
    assert_eq!(
        ran,
        [(b("blobjob"), b([0u8, 0xff])), (b("nulljob"), Bytes::new())]
    );
    wait_rows(&db, 0, "completed jobs are deleted");
}

/// `(name, type, pk)` of each column of `table`.
fn columns(db: &Path, table: &str) -> Vec<(String, String, i64)> {
    let conn = open_db(db);
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .expect("prepare PRAGMA table_info");
    let cols = stmt
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(5)?)))
        .expect("PRAGMA table_info")
        .collect::<Result<Vec<_>, _>>()
        .expect("read columns");
    cols
}

#[test]
fn a_custom_table_has_the_c_layout_and_is_replayed() {
    let dir = TempDir::new("custom-table");
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &["--libsqlite3-table", "my_jobs"]);
    server
        .connect()
        .submit(bg_job("ct", "ct-1", "payload", Priority::Low));
    server.kill();
    let expected = [
        ("unique_key", "TEXT", 1),
        ("function_name", "TEXT", 2),
        ("priority", "INTEGER", 0),
        ("data", "BLOB", 0),
        ("when_to_run", "INTEGER", 0),
    ]
    .map(|(n, t, pk)| (n.to_string(), t.to_string(), pk));
    assert_eq!(columns(&db, "my_jobs"), expected);
    assert!(
        columns(&db, "gearman_queue").is_empty(),
        "only the named table"
    );

    let server = Daemon::ours(&dir, &db, &["--libsqlite3-table", "my_jobs"]);
    let mut c = server.connect();
    assert_eq!(priority_status(&mut c, "ct"), Some((0, 0, 1, 0)));
    assert_eq!(drain(server.addr(), &["ct"]), [(b("ct-1"), b("payload"))]);
}

#[test]
fn a_table_without_when_to_run_gets_the_column_and_is_replayed() {
    let dir = TempDir::new("old-table");
    let db = dir.db();
    {
        let conn = open_db(&db);
        conn.execute_batch(
            "CREATE TABLE gearman_queue ( unique_key TEXT, function_name TEXT, \
             priority INTEGER, data BLOB, PRIMARY KEY (unique_key, function_name)); \
             INSERT INTO gearman_queue VALUES ('old-1', 'old', 0, X'6F6C64');",
        )
        .expect("create a table of gearmand before epoch support");
    }
    let server = Daemon::ours(&dir, &db, &[]);
    assert_eq!(columns(&db, "gearman_queue").len(), 5, "when_to_run added");
    assert_eq!(drain(server.addr(), &["old"]), [(b("old-1"), b("old"))]);
    let mut c = server.connect();
    c.submit(epoch_job("old", "old-2", "later", unix_now() + 3600));
    assert_eq!(
        wait_rows(&db, 1, "the epoch job is stored")[0].unique,
        b"old-2"
    );
}

// ---- 5. failures -------------------------------------------------------------------------

#[test]
fn ours_a_database_in_a_missing_directory_stops_the_start() {
    let dir = TempDir::new("missing-dir");
    let db = dir.join("no/such/dir/queue.db");
    let (status, stderr) = run_ours_to_exit(&["-q", "libsqlite3", "--libsqlite3-db", text(&db)]);
    assert!(!status.success(), "started anyway: {stderr}");
    assert!(
        stderr.contains("queue") && stderr.contains("no/such/dir"),
        "message should name the queue and the file: {stderr}"
    );
}

#[test]
fn ours_a_corrupt_database_stops_the_start_and_is_left_alone() {
    let dir = TempDir::new("corrupt");
    let db = dir.db();
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(&db, &garbage).expect("write garbage");
    let (status, stderr) = run_ours_to_exit(&["-q", "libsqlite3", "--libsqlite3-db", text(&db)]);
    assert!(!status.success(), "started anyway: {stderr}");
    assert!(
        stderr.contains("queue") && stderr.contains("not a database"),
        "message should say the queue's file is not a database: {stderr}"
    );
    assert_eq!(
        fs::read(&db).expect("read back"),
        garbage,
        "the file was changed"
    );
}

#[test]
fn ours_an_unreadable_row_stops_the_start() {
    let dir = TempDir::new("bad-row");
    let db = dir.db();
    {
        let conn = open_db(&db);
        conn.execute_batch(C_TABLE).expect("create the C table");
        conn.execute(
            "INSERT INTO gearman_queue VALUES ('u', 'f', 7, X'00', 0)",
            [],
        )
        .expect("insert a row with an impossible priority");
    }
    let (status, stderr) = run_ours_to_exit(&["-q", "libsqlite3", "--libsqlite3-db", text(&db)]);
    assert!(!status.success(), "started anyway: {stderr}");
    assert!(stderr.contains("reload queue"), "{stderr}");
    assert_eq!(rows(&db).len(), 1, "the row must be left for the operator");
}

#[test]
fn libsqlite3_without_a_database_fails_check_args() {
    let mut cmd = Command::new(gearmand_bin());
    cmd.args(["--check-args", "-q", "libsqlite3"]);
    let out = ChildGuard::spawn(cmd).wait_output(EXIT_LIMIT);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("libsqlite3"), "{stderr}");
}

#[test]
fn fix_a_store_that_cannot_write_refuses_the_job_and_the_server_keeps_serving() {
    let dir = TempDir::new("locked");
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &[]);
    let mut c = server.connect();
    c.submit(bg_job("lk", "before", "1", Priority::Normal));
    wait_rows(&db, 1, "the first job is stored");

    let mut w = server.connect();
    w.register(&["lk"]);

    // Another process holds the write lock longer than the server's 6 s busy timeout.
    let locker = open_db(&db);
    locker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    let started = Instant::now();
    c.send(Request::Submit(bg_job(
        "lk",
        "during",
        "2",
        Priority::Normal,
    )));
    // A foreground submission of the same unique joins the waiting job. Connections are
    // served independently, so wait until the background job exists (it counts in
    // `status` while it waits for the store) before the joiner submits.
    let mut watcher = server.connect();
    wait_until(
        Duration::from_secs(5),
        "the background job waits for the store",
        || {
            watcher
                .status_of("lk")
                .is_some_and(|(total, _, _)| total == 2)
        },
    );
    let mut joiner = server.connect();
    joiner.send(Request::Submit(job("lk", "during", "2")));
    // Meanwhile the server serves everybody else; the waiting job is not runnable.
    thread::sleep(Duration::from_millis(300));
    let mut other = server.connect();
    other.echo(b"still serving while the store waits");
    assert_eq!(w.grab_uniq().2, "before");
    w.grab_none();
    // Foreground jobs do not touch the store.
    let fg = other.submit_fg("lk", "", "foreground");
    assert_eq!(w.grab().0, fg);
    w.complete(&fg, b"done");
    other.expect(Response::WorkComplete {
        handle: fg,
        data: b("done"),
    });
    match c.try_frame(Duration::from_secs(12)) {
        Ok(Frame::Packet(p)) => {
            assert!(
                p.kind == PacketType::Error
                    && p.arg(0) == ErrorCode::QueueError.as_str().as_bytes(),
                "expected ERROR QUEUE_ERROR, got {}",
                show(&p)
            );
        }
        other => panic!("expected ERROR QUEUE_ERROR, got {other:?}"),
    }
    eprintln!("QUEUE_ERROR after {:?}", started.elapsed());
    joiner.expect_error_code(ErrorCode::QueueError);
    joiner.expect_nothing(100);
    locker.execute_batch("ROLLBACK").expect("release the lock");
    drop(locker);

    server.assert_alive();
    c.echo(b"the connection still works");
    assert_eq!(
        c.status_of("lk"),
        Some((1, 1, 1)),
        "the refused job was not created"
    );
    w.grab_none();
    c.submit(bg_job("lk", "after", "3", Priority::Normal));
    let stored: Vec<_> = rows(&db).into_iter().map(|r| esc(&r.unique)).collect();
    assert_eq!(stored, ["before", "after"]);
    let (handle, _, unique, _) = w.grab_uniq();
    assert_eq!(unique, "after");
    w.complete(&handle, b"");
    w.sync();
    wait_rows(&db, 1, "the completed job is deleted");
}

/// Descriptors run out while a client submits background jobs: each job is either
/// acknowledged and on disk (it survives kill -9 and is replayed) or refused with an ERROR.
/// (The store keeps its database and WAL files open, so today every job is acknowledged.)
#[test]
fn ours_out_of_descriptors_during_submission_loses_no_acknowledged_job() {
    let dir = TempDir::new("nofile");
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &[]);
    let mut c = server.connect();
    c.submit(bg_job("nf", "first", "1", Priority::Normal));
    let pid = server.process.pid();
    let open = crate::security::open_descriptors(pid);
    crate::security::set_open_files_limit(pid, open);
    let mut acknowledged = vec![b("first")];
    let mut refused = 0;
    for i in 0..50 {
        let unique = format!("u{i}");
        c.send(Request::Submit(bg_job(
            "nf",
            &unique,
            "x",
            Priority::Normal,
        )));
        let p = c.recv_packet();
        match p.kind {
            PacketType::JobCreated => acknowledged.push(b(unique)),
            PacketType::Error => refused += 1,
            _ => panic!("expected JOB_CREATED or ERROR, got {}", show(&p)),
        }
    }
    c.echo(b"the connection still works");
    eprintln!("{} acknowledged, {refused} refused", acknowledged.len());
    server.kill();
    let stored: HashSet<Bytes> = rows(&db).into_iter().map(|r| b(r.unique)).collect();
    for unique in &acknowledged {
        assert!(stored.contains(unique), "acknowledged job {unique:?} lost");
    }
    let restarted = Daemon::ours(&dir, &db, &[]);
    let mut replayed: Vec<Bytes> = drain(restarted.addr(), &["nf"])
        .into_iter()
        .map(|(unique, _)| unique)
        .collect();
    replayed.sort();
    acknowledged.sort();
    assert_eq!(replayed, acknowledged);
}

// ---- 6. --store-queue-on-shutdown ----------------------------------------------------------

#[test]
fn store_queue_on_shutdown_writes_jobs_only_at_sigterm() {
    let dir = TempDir::new("on-shutdown");
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &["--store-queue-on-shutdown"]);
    let mut c = server.connect();
    for u in ["done", "running", "queued"] {
        c.submit(bg_job("sh", u, format!("data-{u}"), Priority::Normal));
    }
    let mut w = server.connect();
    w.register(&["sh"]);
    let (handle, _, unique, _) = w.grab_uniq();
    assert_eq!(unique, "done");
    w.complete(&handle, b"");
    let (_, _, unique, _) = w.grab_uniq();
    assert_eq!(unique, "running");
    w.sync();
    assert_eq!(c.status_of("sh"), Some((2, 1, 1)));
    // JOB_CREATED came after the store thread took the jobs: nothing was written.
    thread::sleep(Duration::from_millis(200));
    assert!(rows(&db).is_empty(), "{:?}", rows(&db));

    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    let mut stored: Vec<_> = rows(&db)
        .into_iter()
        .map(|r| (esc(&r.unique), esc(&r.data.unwrap_or_default())))
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        [("queued", "data-queued"), ("running", "data-running")]
            .map(|(u, d)| (u.to_string(), d.to_string()))
    );

    let mut server = Daemon::ours(&dir, &db, &["--store-queue-on-shutdown"]);
    let mut c = server.connect();
    assert_eq!(c.status_of("sh"), Some((2, 0, 0)));
    let mut ran: Vec<String> = drain(server.addr(), &["sh"])
        .iter()
        .map(|(u, _)| esc(u))
        .collect();
    ran.sort();
    assert_eq!(ran, ["queued", "running"]);
    // done() still deletes rows in this mode.
    wait_rows(&db, 0, "completed jobs are deleted");
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(rows(&db).is_empty());
}

// ---- 7. rows deleted by hand ---------------------------------------------------------------

#[test]
fn rows_deleted_while_running_do_not_remove_jobs() {
    let dir = TempDir::new("deleted");
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &[]);
    let mut c = server.connect();
    for i in 0..3 {
        c.submit(bg_job(
            "del",
            format!("d{i}"),
            format!("x{i}"),
            Priority::Normal,
        ));
    }
    wait_rows(&db, 3, "jobs are stored");
    let deleted = open_db(&db)
        .execute("DELETE FROM gearman_queue", [])
        .expect("delete rows by hand");
    assert_eq!(deleted, 3);
    assert_eq!(c.status_of("del"), Some((3, 0, 0)));
    let ran = datas(&drain(server.addr(), &["del"]));
    assert_eq!(ran, [b("x0"), b("x1"), b("x2")]);
    server.assert_alive();
    c.echo(b"fine");
    server.kill();
    let server = Daemon::ours(&dir, &db, &[]);
    assert_eq!(server.connect().status_of("del"), None);
}

// ---- 8. cancel, completion, epoch ------------------------------------------------------------

#[test]
fn cancelled_failed_and_completed_jobs_leave_the_table() {
    let dir = TempDir::new("ends");
    let db = dir.db();
    let mut server = Daemon::ours(&dir, &db, &[]);
    let mut c = server.connect();
    let cancelled = c.submit(bg_job("end", "cancel-me", "1", Priority::Normal));
    for u in ["complete-me", "fail-me", "throw-me", "keep-me"] {
        c.submit(bg_job("end", u, "x", Priority::Normal));
    }
    wait_rows(&db, 5, "jobs are stored");
    let line = format!("cancel job {}", esc(&cancelled));
    assert_eq!(c.admin(&line), "OK\r\n");
    let remaining = wait_rows(&db, 4, "cancel deletes the row");
    assert!(remaining.iter().all(|r| r.unique != b"cancel-me"));

    let mut w = server.connect();
    w.register(&["end"]);
    for (expected, end) in [
        ("complete-me", PacketType::WorkComplete),
        ("fail-me", PacketType::WorkFail),
        ("throw-me", PacketType::WorkException),
    ] {
        let (handle, _, unique, _) = w.grab_uniq();
        assert_eq!(unique, expected);
        let request = match end {
            PacketType::WorkComplete => Request::WorkComplete {
                handle,
                data: b("r"),
            },
            PacketType::WorkFail => Request::WorkFail { handle },
            _ => Request::WorkException {
                handle,
                data: b("e"),
            },
        };
        w.send(request);
    }
    w.sync();
    let left = wait_rows(&db, 1, "ended jobs are deleted");
    assert_eq!(left[0].unique, b"keep-me");
    // keep-me is queued: after a crash, only it comes back.
    server.kill();
    let server = Daemon::ours(&dir, &db, &[]);
    let ran: Vec<Bytes> = drain(server.addr(), &["end"])
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(ran, [b("keep-me")]);
}

#[test]
fn an_epoch_job_keeps_its_time_across_a_restart() {
    let dir = TempDir::new("epoch");
    let db = dir.db();
    let due = unix_now() + 3;
    let mut server = Daemon::ours(&dir, &db, &[]);
    let mut c = server.connect();
    c.submit(epoch_job("ep", "ep-1", "later", due));
    let stored = wait_rows(&db, 1, "the epoch job is stored");
    assert_eq!((stored[0].priority, stored[0].when), (1, due));
    server.kill();

    let server = Daemon::ours(&dir, &db, &[]);
    assert_eq!(rows(&db)[0].when, due, "replay does not rewrite the row");
    let mut w = server.connect();
    assert_eq!(w.status_of("ep"), Some((1, 0, 0)));
    w.register(&["ep"]);
    if unix_now() < due {
        w.grab_none();
    }
    w.pre_sleep();
    wait_noop(&mut w);
    assert!(unix_now() >= due, "the epoch job ran before its time");
    let (handle, _, data) = w.grab();
    assert_eq!(data, "later");
    w.complete(&handle, b"");
    w.sync();
    wait_rows(&db, 0, "the completed epoch job is deleted");
}
