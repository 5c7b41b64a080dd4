//! Worker mode: register every `-f` with every server and run jobs from all of them.
//!
//! One thread per server speaks CAN_DO, GRAB_JOB_ALL, PRE_SLEEP/NOOP on its own connection.
//! The threads share one [`Tally`]: the `-c` budget (a job slot is taken *before* GRAB, so
//! `-c 1` with two servers never takes two jobs), the count of live connections, and the
//! time of the last job for `-t`. The calling thread only watches the tally and decides when
//! the run is over; returning ends the process, and with it the other threads.

use std::ffi::OsString;
use std::io::{self, BufReader, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearman_shared::protocol::{ErrorCode, GrabKind, Request, Response};
use gearman_shared::tls::TlsConnector;

use crate::config::{Config, WorkerOptions};
use crate::error::{printable, Error};
use crate::lines::{read_line, LineMode};
use crate::link::{Link, LinkError};
use crate::servers::{ServerAddr, ServerListError};
use crate::Outcome;

/// How long a thread waits before reconnecting to its server.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// How often the main thread looks at the tally even without a change (for `-t`).
const TICK: Duration = Duration::from_millis(50);

/// What the server threads share.
struct Tally {
    state: Mutex<TallyState>,
    changed: Condvar,
}

struct TallyState {
    /// Jobs that may still be taken; `None` without `-c`.
    slots: Option<u64>,
    /// Jobs completed or failed.
    finished: u64,
    /// Jobs being run now.
    running: usize,
    /// Connections registered and working.
    alive: usize,
    /// When a job last started or ended (or the run started).
    last_activity: Instant,
    /// A failure that ends the run.
    fatal: Option<Error>,
    /// The last connection loss, reported if every connection is lost.
    last_loss: Option<Error>,
}

impl Tally {
    fn new(slots: Option<u64>, alive: usize) -> Self {
        Tally {
            state: Mutex::new(TallyState {
                slots,
                finished: 0,
                running: 0,
                alive,
                last_activity: Instant::now(),
                fatal: None,
                last_loss: None,
            }),
            changed: Condvar::new(),
        }
    }

    /// The state; a thread that panicked while holding the lock left it consistent enough
    /// (every update is a single field write), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, TallyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut TallyState)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Takes a job slot, waiting while `-c` slots are all taken; false once the run is over.
    fn reserve(&self) -> bool {
        let mut s = self.lock();
        loop {
            if s.fatal.is_some() {
                return false;
            }
            match s.slots {
                None => return true,
                Some(0) => {}
                Some(n) => {
                    s.slots = Some(n - 1);
                    return true;
                }
            }
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Gives back a slot that did not become a job.
    fn release(&self) {
        self.update(|s| {
            if let Some(n) = s.slots.as_mut() {
                *n += 1;
            }
        });
    }

    fn started(&self) {
        self.update(|s| {
            s.running += 1;
            s.last_activity = Instant::now();
        });
    }

    fn finished(&self) {
        self.update(|s| {
            s.running = s.running.saturating_sub(1);
            s.finished += 1;
            s.last_activity = Instant::now();
        });
    }

    /// A job that could not be reported (connection lost): its slot is free again.
    fn abandoned(&self) {
        self.update(|s| {
            s.running = s.running.saturating_sub(1);
            if let Some(n) = s.slots.as_mut() {
                *n += 1;
            }
        });
    }

    fn connected(&self) {
        self.update(|s| s.alive += 1);
    }

    fn lost(&self, e: Error) {
        self.update(|s| {
            s.alive = s.alive.saturating_sub(1);
            s.last_loss = Some(e);
        });
    }

    fn fail(&self, e: Error) {
        self.update(|s| {
            if s.fatal.is_none() {
                s.fatal = Some(e);
            }
        });
    }

    /// Whether reconnecting is still worth it: the run goes on and another connection lives.
    fn others_alive(&self) -> bool {
        let s = self.lock();
        s.fatal.is_none() && s.alive > 0
    }
}

/// Settings every server thread needs.
struct Setup {
    functions: Vec<Bytes>,
    timeout: Option<Duration>,
    tls: Option<TlsConnector>,
    lines: LineMode,
    command: Option<(OsString, Vec<OsString>)>,
}

/// Runs worker mode until `-c` jobs are done, or until every server is gone.
pub fn run(config: &Config, opts: &WorkerOptions) -> Result<Outcome, Error> {
    if config.servers.is_empty() {
        return Err(ServerListError::Empty.into());
    }
    let setup = Arc::new(Setup {
        functions: config.functions.clone(),
        timeout: config.timeout,
        tls: config.tls.clone(),
        lines: opts.lines,
        command: opts.command.clone(),
    });
    let mut links = Vec::new();
    let mut reasons = Vec::new();
    for server in &config.servers {
        match connect(server, &setup) {
            Ok(link) => links.push((server.clone(), Some(link))),
            Err(reason) => {
                reasons.push(format!("{server}: {reason}"));
                links.push((server.clone(), None));
            }
        }
    }
    let alive = links.iter().filter(|(_, l)| l.is_some()).count();
    if alive == 0 {
        return Err(Error::Connect { reasons });
    }
    for reason in &reasons {
        eprintln!("gearman: cannot connect to {reason} (will retry)");
    }
    let tally = Arc::new(Tally::new(opts.count, alive));
    for (server, link) in links {
        let (tally, setup) = (Arc::clone(&tally), Arc::clone(&setup));
        thread::Builder::new()
            .name(format!("worker {server}"))
            .spawn(move || serve(&server, link, &tally, &setup))
            .map_err(Error::Thread)?;
    }
    watch(&tally, opts.count, config)
}

/// Waits until the run is over and says how it ended.
fn watch(tally: &Tally, count: Option<u64>, config: &Config) -> Result<Outcome, Error> {
    let mut s = tally.lock();
    loop {
        if let Some(e) = s.fatal.take() {
            return Err(e);
        }
        if count.is_some_and(|c| s.finished >= c) {
            return Ok(Outcome::Success);
        }
        if s.alive == 0 {
            return Err(s.last_loss.take().unwrap_or_else(|| Error::Lost {
                server: server_list(config),
                reason: "every connection was lost".into(),
            }));
        }
        if let Some(t) = config.timeout {
            if s.running == 0 && s.last_activity.elapsed() >= t {
                return Err(Error::Idle {
                    servers: server_list(config),
                    ms: t.as_millis(),
                });
            }
        }
        s = tally
            .changed
            .wait_timeout(s, TICK)
            .map(|(s, _)| s)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

/// `host:port,host:port` for messages.
fn server_list(config: &Config) -> String {
    let servers: Vec<String> = config.servers.iter().map(ToString::to_string).collect();
    servers.join(",")
}

/// Connects and registers every function.
fn connect(server: &ServerAddr, setup: &Setup) -> Result<Link, String> {
    let mut link = Link::connect(server, setup.timeout, setup.tls.as_ref())?;
    // `-t` bounds connecting; idle waits are watched by the main thread instead.
    link.set_read_timeout(None).map_err(|e| e.to_string())?;
    for function in &setup.functions {
        link.queue(Request::CanDo {
            function: function.clone(),
        });
    }
    link.flush().map_err(|e| e.to_string())?;
    Ok(link)
}

/// Why a connection's work loop ended.
enum Stop {
    /// The run is over (a failure elsewhere).
    Done,
    /// This connection failed; others may go on.
    Lost(Error),
    /// A failure that ends the run.
    Fatal(Error),
}

/// A server thread: work on `link`; when it breaks, reconnect while other servers keep
/// the worker alive.
fn serve(server: &ServerAddr, mut link: Option<Link>, tally: &Tally, setup: &Setup) {
    loop {
        if let Some(mut l) = link.take() {
            match work(&mut l, tally, setup) {
                Stop::Done => return,
                Stop::Lost(e) => tally.lost(e),
                Stop::Fatal(e) => {
                    tally.fail(e);
                    return;
                }
            }
        }
        thread::sleep(RECONNECT_DELAY);
        if !tally.others_alive() {
            return;
        }
        if let Ok(l) = connect(server, setup) {
            tally.connected();
            link = Some(l);
        }
    }
}

/// A job handed out by the server.
struct Assigned {
    handle: Bytes,
    data: Bytes,
}

/// GRAB / run / PRE_SLEEP loop on one connection.
fn work(link: &mut Link, tally: &Tally, setup: &Setup) -> Stop {
    loop {
        if !tally.reserve() {
            return Stop::Done;
        }
        let assigned = match grab(link) {
            Ok(a) => a,
            Err(stop) => {
                tally.release();
                return stop;
            }
        };
        let Some(assigned) = assigned else {
            tally.release();
            if let Err(stop) = sleep(link) {
                return stop;
            }
            continue;
        };
        tally.started();
        match run_job(link, setup, &assigned) {
            Ok(()) => tally.finished(),
            Err(stop) => {
                tally.abandoned();
                return stop;
            }
        }
    }
}

fn lost(link: &Link, e: LinkError) -> Stop {
    match e {
        LinkError::Protocol(_) => Stop::Fatal(link.error(e)),
        _ => Stop::Lost(link.error(e)),
    }
}

/// Reads the next packet that is not a NOOP, handling late ERRORs for earlier results.
fn next_reply(link: &mut Link) -> Result<Response, Stop> {
    loop {
        match link.recv() {
            Ok(Response::Noop) => {}
            Ok(Response::Error { code, text }) => check_error(link, &code, &text)?,
            Ok(other) => return Ok(other),
            Err(e) => return Err(lost(link, e)),
        }
    }
}

/// JOB_NOT_FOUND answers a result for a job the server no longer gives us (e.g. it was
/// requeued); the worker can go on. Any other ERROR ends the run.
fn check_error(link: &Link, code: &[u8], text: &[u8]) -> Result<(), Stop> {
    let server = link.server().to_string();
    if code == ErrorCode::JobNotFound.as_str().as_bytes() {
        eprintln!(
            "gearman: job server {server}: {} {} (result dropped)",
            printable(code),
            printable(text)
        );
        return Ok(());
    }
    Err(Stop::Fatal(Error::Server {
        server,
        code: printable(code),
        text: printable(text),
    }))
}

/// GRAB_JOB_ALL (as the C tool): a job, or `None` for NO_JOB.
fn grab(link: &mut Link) -> Result<Option<Assigned>, Stop> {
    link.send(Request::Grab(GrabKind::All))
        .map_err(|e| lost(link, e))?;
    match next_reply(link)? {
        Response::NoJob => Ok(None),
        Response::JobAssign { handle, data, .. }
        | Response::JobAssignUniq { handle, data, .. }
        | Response::JobAssignAll { handle, data, .. } => Ok(Some(Assigned { handle, data })),
        other => Err(Stop::Fatal(Error::Protocol {
            server: link.server().to_string(),
            what: format!("{} after GRAB_JOB_ALL", other.packet_type().name()),
        })),
    }
}

/// PRE_SLEEP, then wait for the NOOP that says there may be work.
fn sleep(link: &mut Link) -> Result<(), Stop> {
    link.send(Request::PreSleep).map_err(|e| lost(link, e))?;
    loop {
        match link.recv() {
            Ok(Response::Noop) => return Ok(()),
            Ok(Response::Error { code, text }) => check_error(link, &code, &text)?,
            // A stray NO_JOB or similar: nothing to do until the NOOP.
            Ok(_) => {}
            Err(LinkError::Timeout) => {}
            Err(e) => return Err(lost(link, e)),
        }
    }
}

fn send(link: &mut Link, request: Request) -> Result<(), Stop> {
    link.send(request).map_err(|e| lost(link, e))
}

/// Runs one job and reports its result.
fn run_job(link: &mut Link, setup: &Setup, assigned: &Assigned) -> Result<(), Stop> {
    let handle = assigned.handle.clone();
    let Some((program, args)) = &setup.command else {
        // No command: print the workload, complete with nothing.
        let mut out = io::stdout().lock();
        out.write_all(&assigned.data)
            .and_then(|()| out.flush())
            .map_err(|e| Stop::Fatal(Error::Output(e)))?;
        drop(out);
        return send(
            link,
            Request::WorkComplete {
                handle,
                data: Bytes::new(),
            },
        );
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("gearman: cannot run {}: {e}", program.to_string_lossy());
            return send(link, Request::WorkFail { handle });
        }
    };
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let output = thread::scope(|scope| {
        if let Some(mut stdin) = stdin {
            let data = assigned.data.clone();
            // A command that exits without reading its input is not an error.
            scope.spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        match stdout {
            Some(stdout) => relay_output(link, setup.lines, &handle, stdout),
            None => Ok(Vec::new()),
        }
    });
    let status = child.wait();
    let output = output?;
    match status {
        Ok(status) if status.success() => {
            let data = if setup.lines.per_line() {
                Bytes::new()
            } else {
                Bytes::from(output)
            };
            send(link, Request::WorkComplete { handle, data })
        }
        status => {
            eprintln!(
                "gearman: {} failed: {}",
                program.to_string_lossy(),
                describe(&status)
            );
            if !output.is_empty() {
                send(
                    link,
                    Request::WorkData {
                        handle: handle.clone(),
                        data: Bytes::from(output),
                    },
                )?;
            }
            send(link, Request::WorkFail { handle })
        }
    }
}

fn describe(status: &io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("cannot wait for it: {e}"),
    }
}

/// Reads the command's output. Per line (`-n`/`-N`): each line goes out at once as its own
/// WORK_DATA and nothing is kept. Otherwise all of it is returned for WORK_COMPLETE.
fn relay_output(
    link: &mut Link,
    lines: LineMode,
    handle: &Bytes,
    stdout: impl Read,
) -> Result<Vec<u8>, Stop> {
    let mut reader = BufReader::new(stdout);
    if !lines.per_line() {
        let mut all = Vec::new();
        // A read error ends the output like EOF: what arrived is the result.
        let _ = reader.read_to_end(&mut all);
        return Ok(all);
    }
    while let Ok(Some(line)) = read_line(&mut reader) {
        send(
            link,
            Request::WorkData {
                handle: handle.clone(),
                data: Bytes::copy_from_slice(lines.trim(&line)),
            },
        )?;
    }
    Ok(Vec::new())
}
