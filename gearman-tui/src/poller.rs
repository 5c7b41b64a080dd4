//! Polling the admin interface: one thread per server sends snapshots and errors over a std
//! mpsc channel and runs the operator's actions. Every connect and read is bounded by the
//! timeout, so a dead server only ever delays its own thread.

use std::fs;
use std::io;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use gearman_shared::admin::{AdminClient, AdminError};
use gearman_shared::tls::TlsConnector;

use crate::cli::ServerAddr;
use crate::event::{Action, Event};
use crate::snapshot::{merge_functions, JobRow, Snapshot, Stats, WorkerRow};

/// How to connect, what to ask for and how long to wait.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Bound on the connect (and the TLS handshake) and on every reply.
    pub timeout: Duration,
    /// Ask for `show jobs`.
    pub jobs: bool,
    /// `-S`: connect over TLS with this configuration (files already read); each server's
    /// certificate must name its host as given, unless `--ssl-server-name` says otherwise.
    pub tls: Option<TlsConnector>,
}

/// An open admin connection and what was learnt about the server on it.
#[derive(Debug)]
pub struct Session {
    client: AdminClient,
    version: Option<String>,
    pid: Option<u32>,
    /// `stats` has not been refused on this connection.
    stats: bool,
    /// `prioritystatus` has not been refused on this connection.
    priority: bool,
    /// `show jobs` has not been refused on this connection.
    jobs: bool,
}

impl Session {
    /// Connects (over TLS with `options.tls`) and asks once for the version and process ID.
    pub fn connect(addr: &ServerAddr, options: &PollOptions) -> Result<Session, AdminError> {
        let target = (addr.host.as_str(), addr.port);
        let timeout = Some(options.timeout);
        let mut client = match &options.tls {
            None => AdminClient::connect(target, timeout)?,
            Some(tls) => AdminClient::connect_host_tls(target, &addr.host, timeout, tls)?,
        };
        let version = optional(client.version())?;
        let pid = optional(client.getpid())?;
        Ok(Session {
            client,
            version,
            pid,
            stats: true,
            priority: true,
            jobs: true,
        })
    }

    /// Polls every listing once; a command the server refuses (`ERR`) is dropped for the
    /// rest of the connection instead of failing the poll.
    pub fn poll(
        &mut self,
        addr: &ServerAddr,
        options: &PollOptions,
    ) -> Result<Snapshot, AdminError> {
        let status = self.client.status()?;
        let priority = if self.priority {
            let p = optional(self.client.priority_status())?;
            self.priority = p.is_some();
            p
        } else {
            None
        };
        let workers = self.client.workers()?;
        let jobs = if options.jobs && self.jobs {
            let j = optional(self.client.show_jobs())?;
            self.jobs = j.is_some();
            j
        } else {
            None
        };
        let stats = if self.stats {
            let s = match self.client.stats_report() {
                // A listing this version cannot read: the connection is still in step.
                Err(AdminError::Reply(_)) => None,
                other => optional(other)?,
            };
            self.stats = s.is_some();
            s.as_ref().map(Stats::from)
        } else {
            None
        };
        let uptime = stats.as_ref().map(|s| s.uptime).or_else(|| {
            self.pid
                .filter(|_| addr.is_loopback())
                .and_then(process_uptime)
        });
        Ok(Snapshot {
            at: Instant::now(),
            version: self.version.clone(),
            pid: self.pid,
            uptime,
            functions: merge_functions(status, priority),
            workers: workers.into_iter().map(WorkerRow::from).collect(),
            jobs: jobs.map(|j| j.into_iter().map(JobRow::from).collect()),
            stats,
        })
    }

    /// Runs one operator action.
    pub fn run(&mut self, action: &Action) -> Result<(), AdminError> {
        match action {
            Action::CancelJob(handle) => self.client.cancel_job(handle),
            Action::DropFunction(name) => self.client.drop_function(name),
            Action::Shutdown => self.client.shutdown(true),
        }
    }
}

/// `Ok(None)` for a command the server answered with `ERR` (unknown or refused).
fn optional<T>(result: Result<T, AdminError>) -> Result<Option<T>, AdminError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(AdminError::Server { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Connects, polls once and hangs up (for `--once`).
pub fn poll_once(addr: &ServerAddr, options: &PollOptions) -> Result<Snapshot, String> {
    Session::connect(addr, options)
        .and_then(|mut s| s.poll(addr, options))
        .map_err(|e| e.to_string())
}

/// How long a local gearmand has been running, from /proc (Linux; `None` elsewhere or when
/// the process is not a gearmand, e.g. a server in another PID namespace).
pub fn process_uptime(pid: u32) -> Option<Duration> {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if !comm.contains("gearmand") {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (the name) may hold spaces and parentheses: count from the last ')'.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    // Field 22, starttime, in clock ticks after boot; field 3 is the first after the name.
    let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot = fs::read_to_string("/proc/uptime").ok()?;
    let since_boot: f64 = boot.split_whitespace().next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture's user ABI.
    let secs = since_boot - start_ticks / 100.0;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// The sending side of one server's poller thread.
#[derive(Debug)]
pub struct Poller {
    actions: Sender<Action>,
}

impl Poller {
    /// Starts polling `addr` every `interval`; the thread stops when this handle is dropped
    /// (at its next wake-up) or when the event receiver is gone.
    pub fn spawn(
        server: usize,
        addr: ServerAddr,
        options: PollOptions,
        interval: Duration,
        events: Sender<Event>,
    ) -> io::Result<Poller> {
        let (actions, commands) = std::sync::mpsc::channel();
        thread::Builder::new()
            .name(format!("poll-{server}"))
            .spawn(move || poll_loop(server, &addr, &options, interval, &events, &commands))?;
        Ok(Poller { actions })
    }

    /// Queues an action; it runs before the next poll. `false` if the thread is gone.
    pub fn send(&self, action: Action) -> bool {
        self.actions.send(action).is_ok()
    }
}

fn poll_loop(
    server: usize,
    addr: &ServerAddr,
    options: &PollOptions,
    interval: Duration,
    events: &Sender<Event>,
    commands: &Receiver<Action>,
) {
    let mut session: Option<Session> = None;
    loop {
        let started = Instant::now();
        let event = match poll_with_retry(&mut session, addr, options) {
            Ok(snapshot) => Event::Snapshot {
                server,
                snapshot: Box::new(snapshot),
            },
            Err(e) => Event::PollError {
                server,
                at: Instant::now(),
                error: e.to_string(),
            },
        };
        if events.send(event).is_err() {
            return;
        }
        let left = (started + interval).saturating_duration_since(Instant::now());
        match commands.recv_timeout(left) {
            Ok(action) => {
                let result = run_action(&mut session, addr, options, &action);
                let done = Event::ActionDone {
                    server,
                    action,
                    result: result.map_err(|e| action_error(&e)),
                };
                if events.send(done).is_err() {
                    return;
                }
                // Poll again at once, to show the action's effect.
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Polls on the open session, reconnecting once if it had gone stale (e.g. the server
/// restarted since the last poll).
fn poll_with_retry(
    session: &mut Option<Session>,
    addr: &ServerAddr,
    options: &PollOptions,
) -> Result<Snapshot, AdminError> {
    if let Some(s) = session.as_mut() {
        match s.poll(addr, options) {
            Ok(snapshot) => return Ok(snapshot),
            Err(AdminError::Timeout) => {
                *session = None;
                return Err(AdminError::Timeout);
            }
            Err(_) => *session = None,
        }
    }
    let mut fresh = Session::connect(addr, options)?;
    let snapshot = fresh.poll(addr, options)?;
    *session = Some(fresh);
    Ok(snapshot)
}

/// An action's failure in the operator's words.
pub fn action_error(e: &AdminError) -> String {
    match e {
        AdminError::Server { code, .. } if code == "UNKNOWN_COMMAND" => {
            "this server does not have that command".into()
        }
        AdminError::Server { code, text } if text.is_empty() => code.clone(),
        AdminError::Server { code, text } => {
            format!(
                "{code} {}",
                gearman_shared::admin::reply::decode_error_text(text)
            )
        }
        other => other.to_string(),
    }
}

fn run_action(
    session: &mut Option<Session>,
    addr: &ServerAddr,
    options: &PollOptions,
    action: &Action,
) -> Result<(), AdminError> {
    if session.is_none() {
        *session = Some(Session::connect(addr, options)?);
    }
    let Some(s) = session.as_mut() else {
        return Err(AdminError::Closed);
    };
    let result = s.run(action);
    if matches!(
        result,
        Err(AdminError::Io(_) | AdminError::Closed | AdminError::Timeout)
    ) {
        *session = None;
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A fake C-like server: answers the listings, refuses `stats` and `show jobs`.
    fn fake_server() -> (ServerAddr, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let Ok((conn, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut conn = conn;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let reply: &[u8] = match line.trim_end() {
                    "version" => b"OK 1.1.20\n",
                    "getpid" => b"OK 1\n",
                    "status" => b"fn\t3\t1\t0\n.\n",
                    "prioritystatus" => b"fn\t0\t2\t0\t0\n.\n",
                    "workers" => b"7 127.0.0.1 w1 : fn\n.\n",
                    "show jobs" => b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n",
                    "cancel job H:x:1" => b"OK\r\n",
                    "drop function nosuch" => b"ERR there are+still+workers\r\n",
                    _ => b"ERR UNKNOWN_COMMAND Unknown+server+command\r\n",
                };
                if conn.write_all(reply).is_err() {
                    return;
                }
                line.clear();
            }
        });
        let addr = ServerAddr {
            host: "127.0.0.1".into(),
            port,
        };
        (addr, handle)
    }

    #[test]
    fn refused_commands_degrade_and_actions_run() {
        let (addr, server) = fake_server();
        let options = PollOptions {
            timeout: Duration::from_secs(5),
            jobs: true,
            tls: None,
        };
        let mut s = Session::connect(&addr, &options).unwrap();
        let snap = s.poll(&addr, &options).unwrap();
        assert_eq!(snap.version.as_deref(), Some("1.1.20"));
        assert_eq!(snap.functions[0].waiting(), 2);
        assert_eq!(snap.functions[0].priority, Some([0, 2, 0]));
        assert_eq!(snap.workers[0].client_id, "w1");
        assert_eq!((snap.jobs, snap.stats), (None, None));
        // Refused commands are not asked again on this connection.
        assert!(!s.stats && !s.jobs && s.priority);
        s.run(&Action::CancelJob("H:x:1".into())).unwrap();
        let err = s.run(&Action::Shutdown).unwrap_err();
        assert_eq!(action_error(&err), "this server does not have that command");
        let err = s.run(&Action::DropFunction("nosuch".into())).unwrap_err();
        assert_eq!(action_error(&err), "there are still workers");
        drop(s);
        server.join().unwrap();
    }

    #[test]
    fn dead_server_reports_an_error_within_the_timeout() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            ServerAddr {
                host: "127.0.0.1".into(),
                port: l.local_addr().unwrap().port(),
            }
        };
        let options = PollOptions {
            timeout: Duration::from_millis(300),
            jobs: true,
            tls: None,
        };
        assert!(poll_once(&addr, &options).is_err());

        // A server that accepts and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ServerAddr {
            host: "127.0.0.1".into(),
            port: silent.local_addr().unwrap().port(),
        };
        let started = Instant::now();
        let err = poll_once(&addr, &options).unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn poller_thread_sends_errors_and_stops_when_dropped() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            ServerAddr {
                host: "127.0.0.1".into(),
                port: l.local_addr().unwrap().port(),
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let options = PollOptions {
            timeout: Duration::from_millis(200),
            jobs: false,
            tls: None,
        };
        let poller = Poller::spawn(3, addr, options, Duration::from_millis(50), tx).unwrap();
        match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Event::PollError { server, .. } => assert_eq!(server, 3),
            other => panic!("expected a poll error, got {other:?}"),
        }
        drop(poller);
        // The thread ends and drops its sender.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Err(RecvTimeoutError::Disconnected) => break,
                _ => assert!(Instant::now() < deadline, "poller did not stop"),
            }
        }
    }

    #[test]
    fn own_process_is_not_a_gearmand() {
        assert_eq!(process_uptime(std::process::id()), None);
    }
}
