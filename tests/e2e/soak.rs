//! Soak tests, bounded in time (`SOAK_SECS`, default 45) and on loopback only:
//!
//! - `soak_mixed_load_with_persistent_queue`: our gearmand with `-q libsqlite3` under clients
//!   submitting foreground and background jobs, workers completing them, workers dying while
//!   holding jobs, and admin pollers, all at once. Then submission stops, the workers drain the
//!   queue until `status` is all zero, and the ledger of every thread is checked: each
//!   acknowledged job ran (exactly once unless a dying worker held it), each foreground client
//!   got its one WORK_COMPLETE, memory came back to a sane size, nothing panicked, and SIGTERM
//!   exits 0 leaving the queue table empty.
//! - `soak_http_malformed_requests`: random malformed HTTP requests against `-r http` for a
//!   bounded time; the server must stay up, still serve well-formed requests, decode
//!   percent-encoded function names exactly, and exit 0 on SIGTERM.
//!
//! Randomness comes from a seed printed at the start; `SOAK_SEED=<n>` replays a run.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearman_shared::admin::AdminClient;
use gearman_shared::connection::{Connection, ConnectionError};
use gearman_shared::protocol::{GrabKind, JobMode, Priority, Request, Response, SubmitJob};

use crate::harness::{esc, is_timeout, status_kib, Server};

// --- configuration and small helpers ---

/// The soak's length: `SOAK_SECS` seconds of load (default 45), then the drain.
fn soak_secs() -> u64 {
    std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(45)
        .max(3)
}

/// The random seed: `SOAK_SEED`, or the clock.
fn soak_seed() -> u64 {
    std::env::var("SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        })
}

/// SplitMix64: small, deterministic per seed, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gearman-soak-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).expect("create the soak temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// --- the mixed-load soak ---

/// The functions every job goes to; every worker can do all of them.
const FUNCTIONS: [&str; 2] = ["soak.a", "soak.b"];
const SUBMITTERS: usize = 4;
const WORKERS: usize = 4;
const DYING_WORKERS: usize = 2;
const ADMIN_POLLERS: usize = 2;
/// Foreground jobs one submitter may have in flight.
const MAX_FG_IN_FLIGHT: usize = 12;
/// Submitters pause while the server holds more jobs than this.
const MAX_SERVER_JOBS: u64 = 600;
/// Reads wake up this often to look at the clock and the stop flags.
const POLL: Duration = Duration::from_millis(200);
/// Longest wait for an answer the server owes right away (JOB_CREATED, ECHO_RES, …).
const ANSWER: Duration = Duration::from_secs(15);
/// Longest time the drain may take once submission has stopped.
const DRAIN: Duration = Duration::from_secs(60);

/// What every thread shares.
struct Shared {
    addr: SocketAddr,
    /// Submitters stop submitting, and dying workers stop dying, at this instant.
    submit_until: Instant,
    /// From here to `submit_until` the completing workers pause and only background jobs are
    /// submitted, so that the drain starts from a real backlog.
    pause_from: Instant,
    /// Nothing runs past this; reaching it is a failure.
    hard_deadline: Instant,
    stop_workers: AtomicBool,
    stop_admin: AtomicBool,
    /// Jobs the server holds, from the admin pollers' latest `status` (for pacing).
    server_jobs: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Shared {
    fn fail(&self, who: &str, what: String) {
        let message = format!("{who}: {what}");
        eprintln!("soak failure: {message}");
        self.failures.lock().expect("failures lock").push(message);
    }

    fn paused(&self) -> bool {
        let now = Instant::now();
        now >= self.pause_from && now < self.submit_until
    }

    fn past_hard_deadline(&self) -> bool {
        Instant::now() >= self.hard_deadline
    }
}

/// The payload of a job: its ID, then padding of a random size.
fn payload(id: &str, rng: &mut Rng) -> Bytes {
    let pad = rng.below(2048) as usize;
    let mut data = Vec::with_capacity(id.len() + 1 + pad);
    data.extend_from_slice(id.as_bytes());
    data.push(b'|');
    data.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
    Bytes::from(data)
}

/// The job ID at the start of a payload.
fn payload_id(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == b'|').unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// What a worker answers for a job: derived from its ID, so clients can check it.
fn result_for(id: &str) -> Bytes {
    Bytes::from(format!("done:{id}"))
}

fn connect(shared: &Shared) -> Result<Connection, String> {
    let conn = Connection::connect(shared.addr, Some(ANSWER)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(POLL))
        .map_err(|e| e.to_string())?;
    conn.stream()
        .set_write_timeout(Some(ANSWER))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Reads the next response, waking every [`POLL`] to see whether `give_up` holds; `Ok(None)`
/// once it does.
fn read_until(
    conn: &mut Connection,
    mut give_up: impl FnMut() -> bool,
) -> Result<Option<Response>, String> {
    loop {
        match conn.read_response() {
            Ok(response) => return Ok(Some(response)),
            Err(e) if is_timeout(&e) => {
                if give_up() {
                    return Ok(None);
                }
            }
            Err(ConnectionError::Closed) => return Err("connection closed by the server".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Reads the next response other than NOOP within [`ANSWER`].
fn answer(conn: &mut Connection, shared: &Shared) -> Result<Response, String> {
    let deadline = Instant::now() + ANSWER;
    loop {
        let now = Instant::now();
        match read_until(conn, || {
            Instant::now() >= deadline || shared.past_hard_deadline()
        })? {
            Some(Response::Noop) => continue,
            Some(response) => return Ok(response),
            None => {
                return Err(format!(
                    "no answer within {:?}",
                    Instant::now().duration_since(now)
                ))
            }
        }
    }
}

/// What one submitter saw.
#[derive(Default)]
struct SubmitterLedger {
    /// Background jobs whose JOB_CREATED arrived.
    acked_bg: Vec<String>,
    /// Foreground jobs whose JOB_CREATED arrived.
    acked_fg: Vec<String>,
    /// WORK_COMPLETE per foreground job (with the right result).
    fg_completed: HashMap<String, u32>,
    /// Foreground jobs that got WORK_FAIL.
    fg_failed: Vec<String>,
}

fn submitter(shared: Arc<Shared>, index: usize, seed: u64) -> SubmitterLedger {
    let who = format!("submitter {index}");
    let mut ledger = SubmitterLedger::default();
    if let Err(e) = run_submitter(&shared, index, seed, &mut ledger) {
        shared.fail(&who, e);
    }
    ledger
}

fn run_submitter(
    shared: &Shared,
    index: usize,
    seed: u64,
    ledger: &mut SubmitterLedger,
) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let mut conn = connect(shared)?;
    // Submissions waiting for JOB_CREATED, in order: (id, background).
    let mut pending: VecDeque<(String, bool)> = VecDeque::new();
    // Foreground jobs waiting for their result: handle → id.
    let mut waiting: HashMap<Bytes, String> = HashMap::new();
    let mut seq = 0u64;

    let handle_response = |response: Response,
                           pending: &mut VecDeque<(String, bool)>,
                           waiting: &mut HashMap<Bytes, String>,
                           ledger: &mut SubmitterLedger|
     -> Result<(), String> {
        match response {
            Response::JobCreated { handle } => {
                let (id, background) = pending
                    .pop_front()
                    .ok_or_else(|| format!("JOB_CREATED {} unasked", esc(&handle)))?;
                if background {
                    ledger.acked_bg.push(id);
                } else {
                    ledger.acked_fg.push(id.clone());
                    if let Some(other) = waiting.insert(handle.clone(), id) {
                        return Err(format!("handle {} given twice ({other})", esc(&handle)));
                    }
                }
            }
            Response::WorkComplete { handle, data } => {
                let id = waiting
                    .remove(&handle)
                    .ok_or_else(|| format!("WORK_COMPLETE for unknown {}", esc(&handle)))?;
                if data != result_for(&id) {
                    return Err(format!("{id} completed with {:?}", esc(&data)));
                }
                *ledger.fg_completed.entry(id).or_default() += 1;
            }
            Response::WorkFail { handle } => {
                let id = waiting
                    .remove(&handle)
                    .ok_or_else(|| format!("WORK_FAIL for unknown {}", esc(&handle)))?;
                ledger.fg_failed.push(id);
            }
            Response::WorkStatus { handle, .. } | Response::WorkData { handle, .. } => {
                if !waiting.contains_key(&handle) {
                    return Err(format!("WORK_* for unknown {}", esc(&handle)));
                }
            }
            other => return Err(format!("unexpected {other:?}")),
        }
        Ok(())
    };

    while Instant::now() < shared.submit_until {
        if shared.server_jobs.load(Ordering::Relaxed) < MAX_SERVER_JOBS {
            // A batch of submissions, written at once.
            for _ in 0..=rng.below(5) {
                let background = shared.paused()
                    || waiting.len() + pending.len() >= MAX_FG_IN_FLIGHT
                    || rng.below(5) < 3;
                seq += 1;
                let id = format!("{}-{index}-{seq}", if background { "bg" } else { "fg" });
                let priority = match rng.below(3) {
                    0 => Priority::High,
                    1 => Priority::Normal,
                    _ => Priority::Low,
                };
                let function = FUNCTIONS[rng.below(FUNCTIONS.len() as u64) as usize];
                let job = SubmitJob {
                    priority,
                    mode: if background {
                        JobMode::Background
                    } else {
                        JobMode::Foreground
                    },
                    ..SubmitJob::new(function, id.clone(), payload(&id, &mut rng))
                };
                conn.queue(&Request::Submit(job).into_packet());
                pending.push_back((id, background));
            }
            conn.flush().map_err(|e| format!("submitting: {e}"))?;
        }
        // Every JOB_CREATED, and enough results to go below the in-flight limit (not during
        // the pause, when no result comes and only background jobs are submitted).
        let deadline = Instant::now() + ANSWER;
        while !pending.is_empty() || (waiting.len() >= MAX_FG_IN_FLIGHT && !shared.paused()) {
            match read_until(&mut conn, || Instant::now() >= deadline)? {
                Some(r) => handle_response(r, &mut pending, &mut waiting, ledger)?,
                None => {
                    return Err(format!(
                        "{} JOB_CREATED and {} results outstanding for {ANSWER:?}",
                        pending.len(),
                        waiting.len()
                    ))
                }
            }
        }
        // Whatever else has arrived, without waiting long.
        conn.set_read_timeout(Some(Duration::from_millis(1)))
            .map_err(|e| e.to_string())?;
        while let Ok(r) = conn.read_response() {
            handle_response(r, &mut pending, &mut waiting, ledger)?;
        }
        conn.set_read_timeout(Some(POLL))
            .map_err(|e| e.to_string())?;
        if shared.server_jobs.load(Ordering::Relaxed) >= MAX_SERVER_JOBS {
            thread::sleep(Duration::from_millis(5));
        }
    }
    // Submission is over: wait for the foreground results still owed.
    while !waiting.is_empty() {
        match read_until(&mut conn, || shared.past_hard_deadline())? {
            Some(r) => handle_response(r, &mut pending, &mut waiting, ledger)?,
            None => {
                return Err(format!(
                    "{} foreground results never came: {:?}",
                    waiting.len(),
                    waiting.values().take(5).collect::<Vec<_>>()
                ))
            }
        }
    }
    Ok(())
}

/// What one completing worker did.
#[derive(Default)]
struct WorkerLedger {
    /// Jobs completed, each confirmed by the ECHO round trip that followed WORK_COMPLETE.
    completed: Vec<String>,
    /// Jobs whose WORK_COMPLETE was sent but not confirmed.
    unconfirmed: Vec<String>,
}

fn worker(shared: Arc<Shared>, index: usize, seed: u64) -> WorkerLedger {
    let who = format!("worker {index}");
    let mut ledger = WorkerLedger::default();
    if let Err(e) = run_worker(&shared, index, seed, &mut ledger) {
        shared.fail(&who, e);
    }
    ledger
}

fn run_worker(
    shared: &Shared,
    index: usize,
    seed: u64,
    ledger: &mut WorkerLedger,
) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let mut conn = connect(shared)?;
    let send = |conn: &mut Connection, r: Request| conn.send(r).map_err(|e| e.to_string());
    send(
        &mut conn,
        Request::SetClientId {
            id: Bytes::from(format!("soak-worker-{index}")),
        },
    )?;
    for f in FUNCTIONS {
        send(&mut conn, Request::CanDo { function: f.into() })?;
    }
    let stop = || shared.stop_workers.load(Ordering::Relaxed) || shared.past_hard_deadline();
    while !stop() {
        if shared.paused() {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        send(&mut conn, Request::Grab(GrabKind::Uniq))?;
        match answer(&mut conn, shared)? {
            Response::NoJob => {
                send(&mut conn, Request::PreSleep)?;
                // Sleep until a NOOP, waking to look at the stop flag.
                match read_until(&mut conn, stop)? {
                    None | Some(Response::Noop) => {}
                    Some(other) => return Err(format!("asleep, got {other:?}")),
                }
            }
            Response::JobAssignUniq {
                handle,
                function,
                unique,
                data,
            } => {
                let id = payload_id(&data);
                if unique != id.as_bytes() || !FUNCTIONS.iter().any(|f| function == f.as_bytes()) {
                    return Err(format!(
                        "job {} of {} has unique {} and payload id {id}",
                        esc(&handle),
                        esc(&function),
                        esc(&unique)
                    ));
                }
                // Some jobs take a while, so that a backlog builds up for the drain.
                if rng.chance(6) {
                    thread::sleep(Duration::from_millis(1 + rng.below(10)));
                }
                if rng.chance(4) {
                    send(
                        &mut conn,
                        Request::WorkStatus {
                            handle: handle.clone(),
                            numerator: "1".into(),
                            denominator: "2".into(),
                        },
                    )?;
                }
                conn.queue(
                    &Request::WorkComplete {
                        handle,
                        data: result_for(&id),
                    }
                    .into_packet(),
                );
                conn.queue(&Request::Echo { data: "ack".into() }.into_packet());
                conn.flush().map_err(|e| e.to_string())?;
                match answer(&mut conn, shared) {
                    Ok(Response::Echo { data }) if data == "ack" => ledger.completed.push(id),
                    Ok(other) => {
                        ledger.unconfirmed.push(id);
                        return Err(format!("after WORK_COMPLETE, got {other:?}"));
                    }
                    Err(e) => {
                        ledger.unconfirmed.push(id);
                        return Err(format!("after WORK_COMPLETE: {e}"));
                    }
                }
            }
            other => return Err(format!("GRAB_JOB_UNIQ answered with {other:?}")),
        }
    }
    Ok(())
}

/// What one dying worker did.
#[derive(Default)]
struct DyingLedger {
    /// Every job it was assigned (and then died holding).
    held: Vec<String>,
    /// Jobs whose WORK_COMPLETE it sent right before closing (possibly lost).
    completed_then_died: Vec<String>,
    deaths: u64,
}

fn dying_worker(shared: Arc<Shared>, index: usize, seed: u64) -> DyingLedger {
    let who = format!("dying worker {index}");
    let mut ledger = DyingLedger::default();
    if let Err(e) = run_dying_worker(&shared, seed, &mut ledger) {
        shared.fail(&who, e);
    }
    ledger
}

fn run_dying_worker(shared: &Shared, seed: u64, ledger: &mut DyingLedger) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    while Instant::now() < shared.submit_until {
        let mut conn = connect(shared)?;
        let send = |conn: &mut Connection, r: Request| conn.send(r).map_err(|e| e.to_string());
        for f in FUNCTIONS {
            send(&mut conn, Request::CanDo { function: f.into() })?;
        }
        // A few grabs on this connection; the first job it gets, it dies holding.
        for _ in 0..5 {
            send(&mut conn, Request::Grab(GrabKind::Uniq))?;
            match answer(&mut conn, shared)? {
                Response::NoJob => thread::sleep(Duration::from_millis(10)),
                Response::JobAssignUniq { handle, data, .. } => {
                    let id = payload_id(&data);
                    ledger.held.push(id.clone());
                    ledger.deaths += 1;
                    match rng.below(4) {
                        0 => {}
                        1 => send(
                            &mut conn,
                            Request::WorkStatus {
                                handle,
                                numerator: "1".into(),
                                denominator: "3".into(),
                            },
                        )?,
                        2 => send(
                            &mut conn,
                            Request::WorkData {
                                handle,
                                data: "partial".into(),
                            },
                        )?,
                        _ => {
                            ledger.completed_then_died.push(id.clone());
                            send(
                                &mut conn,
                                Request::WorkComplete {
                                    handle,
                                    data: result_for(&id),
                                },
                            )?;
                        }
                    }
                    break;
                }
                other => return Err(format!("GRAB_JOB_UNIQ answered with {other:?}")),
            }
        }
        // Sometimes a reset rather than an orderly close.
        if rng.chance(2) {
            let _ = conn.stream().shutdown(Shutdown::Both);
        }
        drop(conn);
        thread::sleep(Duration::from_millis(rng.below(30)));
    }
    Ok(())
}

/// Admin commands in a loop; returns how many rounds it made.
fn admin_poller(shared: Arc<Shared>, index: usize) -> u64 {
    let who = format!("admin poller {index}");
    let mut rounds = 0;
    let result = (|| -> Result<(), String> {
        let mut admin =
            AdminClient::connect(shared.addr, Some(ANSWER)).map_err(|e| e.to_string())?;
        while !shared.stop_admin.load(Ordering::Relaxed) && !shared.past_hard_deadline() {
            let status = admin.status().map_err(|e| format!("status: {e}"))?;
            for s in &status {
                if s.running > s.total {
                    return Err(format!("status says {s:?}"));
                }
            }
            let held: u64 = status.iter().map(|s| s.total).sum();
            shared.server_jobs.store(held, Ordering::Relaxed);
            admin.workers().map_err(|e| format!("workers: {e}"))?;
            admin.show_jobs().map_err(|e| format!("show jobs: {e}"))?;
            admin
                .priority_status()
                .map_err(|e| format!("prioritystatus: {e}"))?;
            admin.stats_report().map_err(|e| format!("stats: {e}"))?;
            if rounds % 10 == 0 {
                admin
                    .show_unique_jobs()
                    .map_err(|e| format!("show unique jobs: {e}"))?;
                admin.version().map_err(|e| format!("version: {e}"))?;
            }
            rounds += 1;
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    })();
    if let Err(e) = result {
        shared.fail(&who, e);
    }
    rounds
}

/// Joins a soak thread, turning a panic into a failure.
fn join<T: Default>(shared: &Shared, handle: JoinHandle<T>, who: &str) -> T {
    match handle.join() {
        Ok(value) => value,
        Err(_) => {
            shared.fail(who, "thread panicked".into());
            T::default()
        }
    }
}

#[test]
fn soak_mixed_load_with_persistent_queue() {
    let secs = soak_secs();
    let seed = soak_seed();
    eprintln!("soak: {secs} s of load, seed {seed} (SOAK_SECS / SOAK_SEED to change)");
    let dir = TempDir::new("sqlite");
    let db = dir.0.join("queue.sqlite");
    let db_arg = db.to_str().expect("temp path is UTF-8").to_owned();
    let mut server = Server::start(&["-q", "libsqlite3", "--libsqlite3-db", &db_arg]);
    let pid = server.pid();
    let rss_start = status_kib(pid, "VmRSS");

    let start = Instant::now();
    let submit_until = start + Duration::from_secs(secs);
    let pause = Duration::from_millis((secs * 1000 / 6).clamp(500, 4000));
    let shared = Arc::new(Shared {
        addr: server.addr(),
        submit_until,
        pause_from: submit_until - pause,
        hard_deadline: submit_until + DRAIN,
        stop_workers: AtomicBool::new(false),
        stop_admin: AtomicBool::new(false),
        server_jobs: AtomicU64::new(0),
        failures: Mutex::new(Vec::new()),
    });
    let mut seeds = Rng::new(seed);
    let spawn = |name: String| thread::Builder::new().name(name);

    let admins: Vec<_> = (0..ADMIN_POLLERS)
        .map(|i| {
            let s = Arc::clone(&shared);
            spawn(format!("soak-admin-{i}"))
                .spawn(move || admin_poller(s, i))
                .expect("spawn admin poller")
        })
        .collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let (s, seed) = (Arc::clone(&shared), seeds.next());
            spawn(format!("soak-worker-{i}"))
                .spawn(move || worker(s, i, seed))
                .expect("spawn worker")
        })
        .collect();
    let dying: Vec<_> = (0..DYING_WORKERS)
        .map(|i| {
            let (s, seed) = (Arc::clone(&shared), seeds.next());
            spawn(format!("soak-dying-{i}"))
                .spawn(move || dying_worker(s, i, seed))
                .expect("spawn dying worker")
        })
        .collect();
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|i| {
            let (s, seed) = (Arc::clone(&shared), seeds.next());
            spawn(format!("soak-submitter-{i}"))
                .spawn(move || submitter(s, i, seed))
                .expect("spawn submitter")
        })
        .collect();

    // The baseline: after start-up and a warm-up under the full load.
    let warm_up = Duration::from_secs((secs / 5).clamp(2, 8));
    thread::sleep(warm_up);
    let rss_warm = status_kib(pid, "VmRSS");

    // Load runs until `submit_until`, ending with the workers paused: the backlog then is what
    // the drain starts from. The submitters return once their foreground jobs are done.
    thread::sleep(submit_until.saturating_duration_since(Instant::now()));
    let backlog = shared.server_jobs.load(Ordering::Relaxed);
    let fg_ledgers: Vec<SubmitterLedger> = submitters
        .into_iter()
        .enumerate()
        .map(|(i, h)| join(&shared, h, &format!("submitter {i}")))
        .collect();
    let dying_ledgers: Vec<DyingLedger> = dying
        .into_iter()
        .enumerate()
        .map(|(i, h)| join(&shared, h, &format!("dying worker {i}")))
        .collect();

    // Drain: the workers run until the server holds no job at all.
    let mut admin = AdminClient::connect(shared.addr, Some(ANSWER)).expect("admin connection");
    let mut last_status = Vec::new();
    let drained = loop {
        let status = admin.status().expect("status during the drain");
        let jobs = admin.show_jobs().expect("show jobs during the drain");
        if status.iter().all(|s| s.total == 0 && s.running == 0) && jobs.is_empty() {
            break true;
        }
        last_status = status;
        if shared.past_hard_deadline() {
            break false;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let drain_time = submit_until.elapsed();
    let rss_drained = status_kib(pid, "VmRSS");
    let stats = admin.stats_report().expect("stats after the drain");

    shared.stop_workers.store(true, Ordering::Relaxed);
    let worker_ledgers: Vec<WorkerLedger> = workers
        .into_iter()
        .enumerate()
        .map(|(i, h)| join(&shared, h, &format!("worker {i}")))
        .collect();
    shared.stop_admin.store(true, Ordering::Relaxed);
    let admin_rounds: u64 = admins
        .into_iter()
        .enumerate()
        .map(|(i, h)| join(&shared, h, &format!("admin poller {i}")))
        .sum();

    // --- the ledger ---
    let mut problems: Vec<String> = shared.failures.lock().expect("failures lock").clone();
    if !drained {
        problems.push(format!(
            "the queue did not drain within {DRAIN:?}; last status {last_status:?}"
        ));
    }
    let acked_bg: Vec<&String> = fg_ledgers.iter().flat_map(|l| &l.acked_bg).collect();
    let acked_fg: Vec<&String> = fg_ledgers.iter().flat_map(|l| &l.acked_fg).collect();
    let mut completions: HashMap<&str, u32> = HashMap::new();
    for id in worker_ledgers.iter().flat_map(|l| &l.completed) {
        *completions.entry(id).or_default() += 1;
    }
    let unconfirmed: Vec<&String> = worker_ledgers.iter().flat_map(|l| &l.unconfirmed).collect();
    let held: HashSet<&str> = dying_ledgers
        .iter()
        .flat_map(|l| &l.held)
        .map(String::as_str)
        .collect();
    let mut completed_by_dying: HashMap<&str, u32> = HashMap::new();
    for id in dying_ledgers.iter().flat_map(|l| &l.completed_then_died) {
        *completed_by_dying.entry(id).or_default() += 1;
    }
    let deaths: u64 = dying_ledgers.iter().map(|l| l.deaths).sum();
    let submitted: HashSet<&str> = acked_bg
        .iter()
        .chain(&acked_fg)
        .map(|s| s.as_str())
        .collect();
    if !unconfirmed.is_empty() {
        problems.push(format!("unconfirmed completions: {unconfirmed:?}"));
    }
    let mut omitted = 0usize;
    let mut report = |what: String| {
        if problems.len() < 40 {
            problems.push(what);
        } else {
            omitted += 1;
        }
    };
    for id in acked_bg.iter().chain(&acked_fg) {
        let id = id.as_str();
        let by_workers = completions.get(id).copied().unwrap_or(0);
        let by_dying = completed_by_dying.get(id).copied().unwrap_or(0);
        if by_workers + by_dying == 0 {
            report(format!("{id} was acknowledged but never completed"));
        }
        if by_workers > 1 {
            report(format!("{id} completed {by_workers} times by live workers"));
        }
        if !held.contains(id) && by_workers + by_dying != 1 {
            report(format!(
                "{id} completed {} times though no worker died holding it",
                by_workers + by_dying
            ));
        }
    }
    for id in completions.keys().chain(held.iter()) {
        if !submitted.contains(id) {
            report(format!(
                "a worker got {id}, which no client saw acknowledged"
            ));
        }
    }
    for ledger in &fg_ledgers {
        for id in &ledger.acked_fg {
            match ledger.fg_completed.get(id) {
                Some(1) => {}
                Some(n) => report(format!("{id}: {n} WORK_COMPLETE for one foreground job")),
                None if ledger.fg_failed.contains(id) => {
                    report(format!("{id} failed, yet retries are unlimited"))
                }
                None => report(format!("{id}: foreground job never completed")),
            }
        }
    }
    if omitted > 0 {
        problems.push(format!("… and {omitted} more job problems"));
    }
    if acked_bg.is_empty() || acked_fg.is_empty() || deaths == 0 || admin_rounds == 0 {
        problems.push(format!(
            "the soak did too little: {} bg, {} fg, {deaths} deaths, {admin_rounds} admin rounds",
            acked_bg.len(),
            acked_fg.len()
        ));
    }
    // Memory after the drain against the warm baseline: under 3×, or under +64 MiB.
    let limit = (rss_warm * 3).max(rss_warm + 64 * 1024);
    if rss_drained > limit {
        problems.push(format!(
            "RSS {rss_drained} KiB after the drain, baseline {rss_warm} KiB (limit {limit} KiB)"
        ));
    }
    let counted: u64 = stats.functions.iter().map(|f| f.submitted).sum();
    eprintln!(
        "soak: {} bg + {} fg jobs acknowledged ({counted} created per stats), {deaths} workers \
         died holding a job ({} after WORK_COMPLETE), {admin_rounds} admin rounds; drain of \
         {backlog} jobs in {:?}; RSS {rss_start} KiB at start, {rss_warm} KiB warm, {rss_drained} KiB drained",
        acked_bg.len(),
        acked_fg.len(),
        completed_by_dying.len(),
        drain_time,
    );

    // No panic anywhere: the server still answers, nothing in its log, SIGTERM exits 0.
    server.assert_healthy();
    let log = server.log();
    if log.contains("panicked") {
        problems.push("the server log reports a panic".into());
    }
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(20));
    if !status.success() {
        problems.push(format!("gearmand exited with {status} on SIGTERM"));
    }
    // Every acknowledged background job was deleted from the persistent queue.
    match rusqlite::Connection::open(&db).and_then(|c| {
        c.query_row("SELECT COUNT(*) FROM gearman_queue", [], |r| {
            r.get::<_, i64>(0)
        })
    }) {
        Ok(0) => {}
        Ok(n) => problems.push(format!("{n} rows left in the queue table")),
        Err(e) => problems.push(format!("reading the queue table: {e}")),
    }
    assert!(
        problems.is_empty(),
        "soak (seed {seed}) found {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// --- malformed HTTP ---

/// Well-formed requests the mutations start from.
const HTTP_TEMPLATES: &[&[u8]] = &[
    b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /soak.http HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /a%20b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Gearman-Background: true\r\nX-Gearman-Priority: high\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /soak.http HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nX-Gearman-Unique: u1\r\nX-Gearman-Background: true\r\nContent-Length: 3\r\n\r\nabc",
    b"HEAD / HTTP/1.0\r\n\r\n",
    b"DELETE /soak.http HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /soak.fg HTTP/1.1\r\nHost: x\r\n\r\n",
];

/// Replacement values that parsers get wrong.
const HTTP_ODDITIES: &[&[u8]] = &[
    b"-1",
    b"99999999999999999999",
    b"0x10",
    b"1, 2",
    b" 5 ",
    b"ffffffffffffffff",
    b"%",
    b"%zz",
    b"%%%",
    b"/%00x",
    b"\xff\xfe",
    b"\0",
    b"\r",
    b"\n",
    b"\r\n\r\n",
    b"HTTP/9.9",
    b"*",
    b"http://x/y",
    b"Transfer-Encoding: chunked\r\nContent-Length: 4",
    b"Content-Length: 1\r\nContent-Length: 2",
];

/// A random malformed request: a template put through a few mutations.
fn malformed_request(rng: &mut Rng) -> Vec<u8> {
    let mut req = HTTP_TEMPLATES[rng.below(HTTP_TEMPLATES.len() as u64) as usize].to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(req.len() as u64 + 1) as usize;
        match rng.below(9) {
            0 if !req.is_empty() => {
                let i = at.min(req.len() - 1);
                req[i] = rng.byte();
            }
            1 => {
                let junk: Vec<u8> = (0..=rng.below(8)).map(|_| rng.byte()).collect();
                req.splice(at..at, junk);
            }
            2 => {
                let end = (at + rng.below(16) as usize).min(req.len());
                req.drain(at..end);
            }
            3 => req.truncate(at),
            4 => {
                let odd = HTTP_ODDITIES[rng.below(HTTP_ODDITIES.len() as u64) as usize];
                let end = (at + rng.below(6) as usize).min(req.len());
                req.splice(at..end, odd.iter().copied());
            }
            5 => {
                // A very long header line, or very many headers.
                let extra = if rng.chance(2) {
                    let mut h = b"X-Long: ".to_vec();
                    h.resize(8 + rng.below(200_000) as usize, b'a');
                    h.extend_from_slice(b"\r\n");
                    h
                } else {
                    b"X-H: v\r\n".repeat(1 + rng.below(2000) as usize)
                };
                let line_end = req
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(req.len(), |p| p + 2);
                req.splice(line_end..line_end, extra);
            }
            6 => {
                // A second request pipelined after the first.
                let other = HTTP_TEMPLATES[rng.below(HTTP_TEMPLATES.len() as u64) as usize];
                req.extend_from_slice(other);
            }
            7 => req.retain(|&b| b != b'\r'),
            _ => {
                let path: Vec<u8> = (0..rng.below(24)).map(|_| rng.byte() | 0x20).collect();
                let space = req.iter().position(|&b| b == b' ').map_or(0, |p| p + 1);
                req.splice(space..space, path);
            }
        }
    }
    req
}

/// Sends `request` on a new connection, in pieces, and reads what comes back for a moment.
fn throw_request(port: u16, request: &[u8], rng: &mut Rng) {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    ) else {
        return;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
    let mut rest = request;
    while !rest.is_empty() {
        let n = (1 + rng.below(rest.len() as u64 * 2)).min(rest.len() as u64) as usize;
        if stream.write_all(&rest[..n]).is_err() {
            return;
        }
        rest = &rest[n..];
        if rng.chance(8) {
            thread::sleep(Duration::from_millis(rng.below(20)));
        }
    }
    if rng.chance(2) {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    while total < 1 << 20 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// One well-formed request with `Connection: close`; the whole response.
fn http_exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP port");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set read timeout");
    stream.write_all(request).expect("send an HTTP request");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    response
}

#[test]
fn soak_http_malformed_requests() {
    let secs = (soak_secs() / 4).clamp(3, 15);
    let seed = soak_seed();
    eprintln!("soak http: {secs} s of malformed requests, seed {seed}");
    let http_port = crate::http::free_port();
    let port_arg = http_port.to_string();
    let mut server = Server::start(&["-r", "http", "--http-port", &port_arg]);

    let until = Instant::now() + Duration::from_secs(secs);
    let sent = Arc::new(AtomicU64::new(0));
    let mut seeds = Rng::new(seed);
    let throwers: Vec<_> = (0..4)
        .map(|_| {
            let (sent, seed) = (Arc::clone(&sent), seeds.next());
            thread::spawn(move || {
                let mut rng = Rng::new(seed);
                while Instant::now() < until {
                    let request = malformed_request(&mut rng);
                    throw_request(http_port, &request, &mut rng);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Meanwhile the server keeps answering on its Gearman port.
    while Instant::now() < until {
        server.assert_healthy();
        thread::sleep(Duration::from_millis(500));
    }
    for t in throwers {
        t.join().expect("request thread");
    }
    server.assert_healthy();

    // Well-formed requests still work.
    let status = http_exchange(
        http_port,
        b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        status.starts_with(b"HTTP/1.1 200"),
        "GET /status after the garbage: {:?}",
        esc(&status[..status.len().min(200)])
    );
    // Percent-encoded function names reach the worker byte for byte.
    let mut rng = Rng::new(seeds.next());
    let mut worker = server.connect();
    for round in 0..16 {
        let mut name = format!("pct{round}/").into_bytes();
        name.extend((0..1 + rng.below(10)).map(|_| match rng.byte() {
            0 => b'%',
            b => b,
        }));
        let path: String = name.iter().map(|b| format!("%{b:02X}")).collect();
        worker.send(Request::CanDo {
            function: Bytes::from(name.clone()),
        });
        worker.sync();
        let request = format!(
            "POST /{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             X-Gearman-Background: true\r\nContent-Length: 2\r\n\r\nhi"
        );
        let response = http_exchange(http_port, request.as_bytes());
        assert!(
            response.starts_with(b"HTTP/1.1 200"),
            "POST /{path}: {:?}",
            esc(&response[..response.len().min(200)])
        );
        let (_, function, data) = worker.grab();
        assert_eq!(function, name, "function of POST /{path}");
        assert_eq!(data, "hi");
        worker.send(Request::ResetAbilities);
    }
    eprintln!(
        "soak http: {} malformed requests thrown",
        sent.load(Ordering::Relaxed)
    );

    assert!(
        !server.log().contains("panicked"),
        "the server log reports a panic"
    );
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "gearmand exited with {status} on SIGTERM");
}
