//! The load generator: blocking Gearman clients and workers on std threads, and the
//! loads the scenarios are built from. Every read is bounded by the I/O timeout, every loop
//! by a job count or the scenario deadline, and any failing thread aborts the others.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::{self, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use gearman_shared::connection::{Connection, ConnectionError};
use gearman_shared::protocol::{GrabKind, JobMode, Request, Response, SubmitJob};

use crate::flood::FloodProfile;
use crate::memory::MemProfile;

/// How long a blocking socket read waits before the caller re-checks abort and deadline.
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// Whether a socket error is a read/write time-out.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Marks errors that only say "another thread failed first".
#[derive(Debug)]
pub struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("aborted because another load-generator thread failed")
    }
}

impl std::error::Error for Aborted {}

/// What every thread of one scenario run shares.
pub struct Ctx {
    /// The server under test.
    pub addr: SocketAddr,
    /// Longest wait for any single reply (or for a sleeping worker's NOOP).
    pub io_timeout: Duration,
    /// When the whole scenario run must be over.
    pub deadline: Instant,
    /// How long the scenario may take, for the error message.
    pub time_limit: Duration,
    /// Set by the first thread that fails.
    pub abort: AtomicBool,
}

impl Ctx {
    /// A context for one scenario run starting now.
    pub fn new(addr: SocketAddr, io_timeout: Duration, time_limit: Duration) -> Ctx {
        Ctx {
            addr,
            io_timeout,
            deadline: Instant::now() + time_limit,
            time_limit,
            abort: AtomicBool::new(false),
        }
    }

    /// Fails if another thread failed or the scenario is out of time.
    pub fn check(&self) -> Result<()> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(Aborted.into());
        }
        if Instant::now() >= self.deadline {
            bail!(
                "scenario timed out: not finished within {} s (raise --timeout?)",
                self.time_limit.as_secs()
            );
        }
        Ok(())
    }

    /// Opens a connection whose reads and writes are bounded.
    pub fn connect(&self) -> Result<Connection> {
        let conn = Connection::connect(self.addr, Some(self.io_timeout))
            .with_context(|| format!("connecting to {}", self.addr))?;
        conn.set_read_timeout(Some(POLL))?;
        conn.stream().set_write_timeout(Some(self.io_timeout))?;
        Ok(conn)
    }

    /// Reads the next response, waiting at most `io_timeout` and checking abort, the
    /// deadline and `stop` every [`POLL`]. An ERROR packet is an error.
    fn poll(&self, conn: &mut Connection, stop: Option<&AtomicBool>) -> Result<Polled> {
        let limit = Instant::now() + self.io_timeout;
        loop {
            match conn.read_response() {
                Ok(Response::Error { code, text }) => bail!(
                    "server sent ERROR {} ({})",
                    String::from_utf8_lossy(&code),
                    String::from_utf8_lossy(&text)
                ),
                Ok(response) => return Ok(Polled::Got(response)),
                Err(ConnectionError::Io(e)) if is_timeout(&e) => {
                    self.check()?;
                    if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                        return Ok(Polled::Stop);
                    }
                    if Instant::now() >= limit {
                        return Ok(Polled::Idle);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads the next response; failing after `io_timeout` without one.
    pub fn recv(&self, conn: &mut Connection, what: &str) -> Result<Response> {
        match self.poll(conn, None) {
            Ok(Polled::Got(response)) => Ok(response),
            Ok(Polled::Stop | Polled::Idle) => {
                bail!("no {what} within {} s", self.io_timeout.as_secs())
            }
            Err(e) => Err(e.context(format!("waiting for {what}"))),
        }
    }

    /// A sleeping worker's wait after PRE_SLEEP: for NOOP, for `stop`, or at most
    /// `io_timeout`.
    fn wait_noop(&self, conn: &mut Connection, stop: &AtomicBool) -> Result<Wake> {
        match self
            .poll(conn, Some(stop))
            .context("sleeping worker waiting for NOOP")?
        {
            Polled::Got(Response::Noop) => Ok(Wake::Noop),
            Polled::Got(other) => bail!("sleeping worker got {other:?} instead of NOOP"),
            Polled::Stop => Ok(Wake::Stop),
            Polled::Idle => Ok(Wake::Idle),
        }
    }

    /// Sends ECHO_REQ and waits for its ECHO_RES, skipping NOOP and NO_JOB: once it
    /// returns, the server has handled everything sent before on this connection.
    fn sync(&self, conn: &mut Connection) -> Result<()> {
        conn.send(Request::Echo {
            data: Bytes::from_static(b"bench-sync"),
        })?;
        for _ in 0..1000 {
            match self.recv(conn, "ECHO_RES")? {
                Response::Echo { .. } => return Ok(()),
                Response::Noop | Response::NoJob => {}
                other => bail!("unexpected reply while waiting for ECHO_RES: {other:?}"),
            }
        }
        bail!("no ECHO_RES among 1000 replies")
    }
}

/// What [`Ctx::poll`] saw.
enum Polled {
    /// A response.
    Got(Response),
    /// `stop` was set.
    Stop,
    /// Nothing for `io_timeout`.
    Idle,
}

/// Why a sleeping worker woke up.
enum Wake {
    /// The server sent NOOP.
    Noop,
    /// The scenario no longer needs workers.
    Stop,
    /// Nothing arrived for `io_timeout`.
    Idle,
}

/// A start line: every thread connects and registers first, then all start together.
/// Unlike `std::sync::Barrier` the wait is bounded and gives up when a thread fails.
struct Gate {
    parties: usize,
    arrived: Mutex<usize>,
    cv: Condvar,
}

impl Gate {
    fn new(parties: usize) -> Gate {
        Gate {
            parties,
            arrived: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    fn wait(&self, ctx: &Ctx) -> Result<()> {
        let limit = Instant::now() + ctx.io_timeout;
        let mut arrived = self.arrived.lock().unwrap_or_else(PoisonError::into_inner);
        *arrived += 1;
        if *arrived >= self.parties {
            self.cv.notify_all();
            return Ok(());
        }
        loop {
            ctx.check()?;
            if Instant::now() >= limit {
                bail!("threads not ready within {} s", ctx.io_timeout.as_secs());
            }
            arrived = self
                .cv
                .wait_timeout(arrived, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if *arrived >= self.parties {
                return Ok(());
            }
        }
    }
}

/// Runs `f`; on failure tells the other threads to stop.
pub(crate) fn guarded<T>(ctx: &Ctx, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let result = f();
    if result.is_err() {
        ctx.abort.store(true, Ordering::Relaxed);
    }
    result
}

/// Joins a scoped thread, turning a panic into an error.
pub(crate) fn join<T>(handle: ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle
        .join()
        .map_err(|_| anyhow!("a load-generator thread panicked"))?
}

/// Keeps the most telling error: a real failure beats "aborted because of another".
pub(crate) fn first_real_error(errors: Vec<anyhow::Error>) -> Result<()> {
    let mut aborted = None;
    for e in errors {
        if e.downcast_ref::<Aborted>().is_none() {
            return Err(e);
        }
        aborted = Some(e);
    }
    match aborted {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// How submissions look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UniqueMode {
    /// A distinct unique key per job (what libgearman clients send).
    Distinct,
    /// An empty unique key (never coalesced).
    Empty,
}

/// The job shape shared by every scenario.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Function name, distinct per scenario run.
    pub function: Bytes,
    /// Workload bytes.
    pub payload: Bytes,
    /// Unique key style.
    pub unique: UniqueMode,
}

impl JobSpec {
    fn submit(&self, mode: JobMode, index: usize) -> Request {
        let unique = match self.unique {
            UniqueMode::Distinct => Bytes::from(format!(
                "{}-{index}",
                String::from_utf8_lossy(&self.function)
            )),
            UniqueMode::Empty => Bytes::new(),
        };
        let mut job = SubmitJob::new(self.function.clone(), unique, self.payload.clone());
        job.mode = mode;
        Request::Submit(job)
    }
}

/// What one scenario run measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Jobs finished.
    pub jobs: u64,
    /// From the start line to the last job.
    pub wall: Duration,
    /// Submit → WORK_COMPLETE per job, in microseconds (foreground scenarios only).
    pub latencies_us: Vec<u64>,
    /// The server's memory over the run (`mem` only).
    pub mem: Option<MemProfile>,
    /// What the flooding connection did (`flood` only).
    pub flood: Option<FloodProfile>,
}

/// A worker: CAN_DO, then GRAB_JOB / JOB_ASSIGN → WORK_COMPLETE (+ the next GRAB_JOB
/// in the same write); on NO_JOB, PRE_SLEEP and wait for NOOP. Ends when `stop` is set
/// while it has nothing to do. With `finish`, the worker whose completion brings the
/// shared count to `finish.total` sets `stop` and records when the server acknowledged it.
fn worker(
    ctx: &Ctx,
    spec: &JobSpec,
    gate: &Gate,
    stop: &AtomicBool,
    finish: Option<&Finish>,
) -> Result<u64> {
    let mut conn = ctx.connect()?;
    conn.queue(
        &Request::CanDo {
            function: spec.function.clone(),
        }
        .into_packet(),
    );
    ctx.sync(&mut conn).context("worker registering")?;
    gate.wait(ctx)?;
    let grab = Request::Grab(GrabKind::Plain).into_packet();
    conn.send_packet(&grab)?;
    let mut done = 0u64;
    loop {
        ctx.check()?;
        match ctx.recv(&mut conn, "JOB_ASSIGN or NO_JOB")? {
            Response::JobAssign { handle, data, .. } => {
                conn.queue(&Request::WorkComplete { handle, data }.into_packet());
                conn.queue(&grab);
                conn.flush()?;
                done += 1;
                if let Some(finish) = finish {
                    let completed = finish.completed.fetch_add(1, Ordering::AcqRel) + 1;
                    if completed == finish.total {
                        // Everything is handed back; let the server acknowledge it.
                        ctx.sync(&mut conn)?;
                        *finish.at.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(Instant::now());
                        stop.store(true, Ordering::Relaxed);
                        return Ok(done);
                    }
                }
            }
            Response::NoJob => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(done);
                }
                conn.send(Request::PreSleep)?;
                match ctx.wait_noop(&mut conn, stop)? {
                    Wake::Stop => return Ok(done),
                    // No NOOP for a long while: poll with GRAB_JOB, as libgearman does.
                    Wake::Noop | Wake::Idle => {}
                }
                conn.send_packet(&grab)?;
            }
            // A NOOP left over from an earlier sleep; the GRAB_JOB answer is still coming.
            Response::Noop => {}
            other => bail!("worker got {other:?} after GRAB_JOB"),
        }
    }
}

/// Completion tracking for a drain.
struct Finish {
    total: u64,
    completed: AtomicU64,
    at: Mutex<Option<Instant>>,
}

/// A foreground client: takes job numbers from `next` until `total`, and for each sends
/// SUBMIT_JOB and waits for JOB_CREATED then WORK_COMPLETE. Returns the latencies.
fn fg_client(
    ctx: &Ctx,
    spec: &JobSpec,
    gate: &Gate,
    next: &AtomicUsize,
    total: usize,
) -> Result<Vec<u64>> {
    let mut conn = ctx.connect()?;
    gate.wait(ctx)?;
    let mut latencies = Vec::with_capacity(total / 8 + 1);
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= total {
            return Ok(latencies);
        }
        ctx.check()?;
        let started = Instant::now();
        conn.send(spec.submit(JobMode::Foreground, index))?;
        let handle = match ctx.recv(&mut conn, "JOB_CREATED")? {
            Response::JobCreated { handle } => handle,
            other => bail!("client got {other:?} instead of JOB_CREATED"),
        };
        match ctx.recv(&mut conn, "WORK_COMPLETE")? {
            Response::WorkComplete { handle: h, data } if h == handle => {
                if data != spec.payload {
                    bail!("WORK_COMPLETE for {handle:?} carried the wrong data");
                }
            }
            other => bail!("client waiting for WORK_COMPLETE of {handle:?} got {other:?}"),
        }
        latencies.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
}

/// A pipelining foreground client: keeps up to `window` SUBMIT_JOBs in flight on its
/// connection. The server answers one connection's packets in order, so each JOB_CREATED
/// belongs to the oldest submission still waiting for one; WORK_COMPLETEs come in any
/// order and are matched by their handle. Latency runs from queueing the SUBMIT_JOB to
/// its WORK_COMPLETE, so it includes the wait behind the connection's other jobs.
fn pipe_client(
    ctx: &Ctx,
    spec: &JobSpec,
    gate: &Gate,
    next: &AtomicUsize,
    total: usize,
    window: usize,
) -> Result<Vec<u64>> {
    let mut conn = ctx.connect()?;
    gate.wait(ctx)?;
    let mut latencies = Vec::with_capacity(total / 8 + 1);
    let mut awaiting_created: VecDeque<Instant> = VecDeque::with_capacity(window);
    let mut running: HashMap<Bytes, Instant> = HashMap::with_capacity(window);
    let mut exhausted = false;
    loop {
        ctx.check()?;
        // Top the window up in one write, as a pipelining client library does.
        let mut queued = false;
        while !exhausted && awaiting_created.len() + running.len() < window {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= total {
                exhausted = true;
                break;
            }
            conn.queue(&spec.submit(JobMode::Foreground, index).into_packet());
            awaiting_created.push_back(Instant::now());
            queued = true;
        }
        if queued {
            conn.flush()?;
        }
        if awaiting_created.is_empty() && running.is_empty() {
            return Ok(latencies);
        }
        match ctx.recv(&mut conn, "JOB_CREATED or WORK_COMPLETE")? {
            Response::JobCreated { handle } => {
                let Some(started) = awaiting_created.pop_front() else {
                    bail!("pipelining client got JOB_CREATED {handle:?} with no submission waiting for one");
                };
                if running.insert(handle.clone(), started).is_some() {
                    bail!("pipelining client got JOB_CREATED {handle:?} twice");
                }
            }
            Response::WorkComplete { handle, data } => {
                let Some(started) = running.remove(&handle) else {
                    bail!("pipelining client got WORK_COMPLETE for {handle:?}, which it has no JOB_CREATED for");
                };
                if data != spec.payload {
                    bail!("WORK_COMPLETE for {handle:?} carried the wrong data");
                }
                latencies.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            other => {
                bail!("pipelining client got {other:?} instead of JOB_CREATED or WORK_COMPLETE")
            }
        }
    }
}

/// `clients` foreground clients and `workers` workers, `total` jobs. With `window` 1
/// each client waits for a job's WORK_COMPLETE before submitting the next; with more it
/// keeps `window` jobs in flight on its connection.
pub fn foreground(
    ctx: &Ctx,
    spec: &JobSpec,
    clients: usize,
    workers: usize,
    total: usize,
    window: usize,
) -> Result<Measured> {
    let gate = Gate::new(clients + workers + 1);
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    thread::scope(|s| {
        let worker_handles: Vec<_> = (0..workers)
            .map(|_| s.spawn(|| guarded(ctx, || worker(ctx, spec, &gate, &stop, None))))
            .collect();
        let client_handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    guarded(ctx, || {
                        if window <= 1 {
                            fg_client(ctx, spec, &gate, &next, total)
                        } else {
                            pipe_client(ctx, spec, &gate, &next, total, window)
                        }
                    })
                })
            })
            .collect();
        let mut errors = Vec::new();
        if let Err(e) = guarded(ctx, || gate.wait(ctx)) {
            errors.push(e);
        }
        let started = Instant::now();
        let mut measured = Measured::default();
        for handle in client_handles {
            match join(handle) {
                Ok(lat) => measured.latencies_us.extend(lat),
                Err(e) => errors.push(e),
            }
        }
        measured.wall = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        for handle in worker_handles {
            if let Err(e) = join(handle) {
                errors.push(e);
            }
        }
        first_real_error(errors)?;
        measured.jobs = measured.latencies_us.len() as u64;
        if measured.jobs != total as u64 {
            bail!("only {} of {total} jobs completed", measured.jobs);
        }
        Ok(measured)
    })
}

/// A background submitter: SUBMIT_JOB_BG with up to `window` requests in flight,
/// refilled when half have been answered with JOB_CREATED.
fn bg_client(
    ctx: &Ctx,
    spec: &JobSpec,
    gate: &Gate,
    next: &AtomicUsize,
    total: usize,
    window: usize,
) -> Result<u64> {
    let mut conn = ctx.connect()?;
    gate.wait(ctx)?;
    let window = window.max(1);
    let refill_at = window / 2;
    let mut in_flight = 0usize;
    let mut exhausted = false;
    let mut created = 0u64;
    loop {
        ctx.check()?;
        if !exhausted && in_flight <= refill_at {
            while in_flight < window {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    exhausted = true;
                    break;
                }
                conn.queue(&spec.submit(JobMode::Background, index).into_packet());
                in_flight += 1;
            }
            conn.flush()?;
        }
        if in_flight == 0 {
            return Ok(created);
        }
        match ctx.recv(&mut conn, "JOB_CREATED")? {
            Response::JobCreated { .. } => {
                in_flight -= 1;
                created += 1;
            }
            other => bail!("background client got {other:?} instead of JOB_CREATED"),
        }
    }
}

/// `clients` connections submit `total` background jobs, no workers.
pub fn background(
    ctx: &Ctx,
    spec: &JobSpec,
    clients: usize,
    window: usize,
    total: usize,
) -> Result<Measured> {
    let gate = Gate::new(clients + 1);
    let next = AtomicUsize::new(0);
    thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| s.spawn(|| guarded(ctx, || bg_client(ctx, spec, &gate, &next, total, window))))
            .collect();
        let mut errors = Vec::new();
        if let Err(e) = guarded(ctx, || gate.wait(ctx)) {
            errors.push(e);
        }
        let started = Instant::now();
        let mut measured = Measured::default();
        for handle in handles {
            match join(handle) {
                Ok(n) => measured.jobs += n,
                Err(e) => errors.push(e),
            }
        }
        measured.wall = started.elapsed();
        first_real_error(errors)?;
        if measured.jobs != total as u64 {
            bail!(
                "only {} of {total} background jobs were created",
                measured.jobs
            );
        }
        Ok(measured)
    })
}

/// `workers` workers grab and complete `total` queued jobs.
pub fn drain(ctx: &Ctx, spec: &JobSpec, workers: usize, total: usize) -> Result<Measured> {
    let gate = Gate::new(workers + 1);
    let stop = AtomicBool::new(total == 0);
    let finish = Finish {
        total: total as u64,
        completed: AtomicU64::new(0),
        at: Mutex::new(None),
    };
    thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| s.spawn(|| guarded(ctx, || worker(ctx, spec, &gate, &stop, Some(&finish)))))
            .collect();
        let mut errors = Vec::new();
        if let Err(e) = guarded(ctx, || gate.wait(ctx)) {
            errors.push(e);
        }
        let started = Instant::now();
        let mut measured = Measured::default();
        for handle in handles {
            match join(handle) {
                Ok(n) => measured.jobs += n,
                Err(e) => errors.push(e),
            }
        }
        let ended = finish
            .at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_else(Instant::now);
        measured.wall = ended.saturating_duration_since(started);
        first_real_error(errors)?;
        if measured.jobs != total as u64 {
            bail!("workers completed {} of {total} queued jobs", measured.jobs);
        }
        Ok(measured)
    })
}

/// The lines of the reply to admin `command` (a list ended by `.`), terminators removed,
/// at most `max_lines`.
fn admin_lines(ctx: &Ctx, command: &str, max_lines: usize) -> Result<Vec<Vec<u8>>> {
    let mut conn = ctx.connect()?;
    conn.set_read_timeout(Some(ctx.io_timeout))?;
    conn.send_raw(format!("{command}\n").as_bytes())?;
    let mut lines = Vec::new();
    while lines.len() < max_lines {
        let line = match conn.read_line() {
            Ok(line) => line,
            Err(ConnectionError::Io(e)) if is_timeout(&e) => bail!(
                "no complete admin {command} reply within {} s",
                ctx.io_timeout.as_secs()
            ),
            Err(e) => return Err(anyhow!(e).context(format!("reading the admin {command} reply"))),
        };
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"." {
            return Ok(lines);
        }
        if line.starts_with(b"ERR ") {
            bail!(
                "admin {command} answered {:?}",
                String::from_utf8_lossy(line)
            );
        }
        lines.push(line.to_vec());
    }
    bail!("admin {command} reply did not end within {max_lines} lines")
}

/// Asks the admin `status` command how many jobs of `function` are queued, if the
/// server answers it.
pub fn queued_jobs(ctx: &Ctx, function: &[u8]) -> Result<Option<u64>> {
    let lines = admin_lines(ctx, "status", 100_000)?;
    Ok(lines.iter().find_map(|line| {
        let mut fields = line.split(|&b| b == b'\t');
        (fields.next() == Some(function)).then(|| {
            fields
                .next()
                .and_then(|n| std::str::from_utf8(n).ok())
                .and_then(|n| n.parse().ok())
        })?
    }))
}

/// How many connections the server has, this one included: the admin `workers` command
/// lists every connection, worker or not, one per line, in both servers.
pub fn connection_count(ctx: &Ctx) -> Result<u64> {
    Ok(admin_lines(ctx, "workers", 10_000_000)?.len() as u64)
}
