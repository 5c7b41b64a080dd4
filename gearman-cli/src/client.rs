//! Client mode: submit one job per function for each data item, print what comes back.
//!
//! Per item, every job is submitted at once (pipelined), then results are read until all of
//! them have finished; only then is the next item read, so `-n` streams line by line. The
//! connection asks for WORK_EXCEPTION packets first (OPTION_REQ `exceptions`), so an
//! exception ends the job instead of hanging it. When a server is down, or its connection
//! breaks before any of the item's foreground jobs was created there, the jobs go to the
//! next server of the list.

use std::io::{BufRead, Write};

use bytes::Bytes;
use gearman_shared::protocol::{
    parse_u32_lenient, ErrorCode, JobMode, Request, Response, SubmitJob,
};

use crate::config::{ClientOptions, Config, DataSource};
use crate::error::{printable, Error};
use crate::lines::{read_line, LineMode};
use crate::link::{Link, LinkError};
use crate::servers::ServerListError;
use crate::unique::UniqueGen;
use crate::Outcome;

/// Writes results the way the C tool does: data raw to stdout, warnings and failures to
/// stderr, each optionally prefixed with `FUNCTION: ` (`-P`).
pub struct Printer<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    prefix: bool,
}

impl<'a> Printer<'a> {
    /// A printer writing to `out` and `err`.
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write, prefix: bool) -> Self {
        Printer { out, err, prefix }
    }

    fn line(&self, function: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(function.len() + body.len() + 2);
        if self.prefix {
            v.extend_from_slice(function);
            v.extend_from_slice(b": ");
        }
        v.extend_from_slice(body);
        v
    }

    fn write_out(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.out
            .write_all(bytes)
            .and_then(|()| self.out.flush())
            .map_err(Error::Output)
    }

    fn write_err(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.err
            .write_all(bytes)
            .and_then(|()| self.err.flush())
            .map_err(Error::Output)
    }

    /// `-v`: `Task created: <handle>` (never prefixed, as in the C tool).
    pub fn created(&mut self, handle: &[u8]) -> Result<(), Error> {
        let mut v = b"Task created: ".to_vec();
        v.extend_from_slice(handle);
        v.push(b'\n');
        self.write_out(&v)
    }

    /// WORK_DATA or WORK_COMPLETE payload, raw.
    pub fn data(&mut self, function: &[u8], data: &[u8]) -> Result<(), Error> {
        if data.is_empty() && !self.prefix {
            return Ok(());
        }
        let v = self.line(function, data);
        self.write_out(&v)
    }

    /// WORK_STATUS as `N% Complete`; a zero denominator counts as 0%.
    pub fn status(
        &mut self,
        function: &[u8],
        numerator: u32,
        denominator: u32,
    ) -> Result<(), Error> {
        let text = format!("{}% Complete\n", percent(numerator, denominator));
        let v = self.line(function, text.as_bytes());
        self.write_out(&v)
    }

    /// WORK_WARNING payload, raw, on stderr.
    pub fn warning(&mut self, function: &[u8], data: &[u8]) -> Result<(), Error> {
        let v = self.line(function, data);
        self.write_err(&v)
    }

    /// `Job failed` on stderr.
    pub fn failed(&mut self, function: &[u8]) -> Result<(), Error> {
        let v = self.line(function, b"Job failed\n");
        self.write_err(&v)
    }

    /// WORK_EXCEPTION: its text on its own line on stderr, then `Job failed`.
    pub fn exception(&mut self, function: &[u8], data: &[u8]) -> Result<(), Error> {
        if !data.is_empty() {
            let mut v = self.line(function, data);
            if !data.ends_with(b"\n") {
                v.push(b'\n');
            }
            self.write_err(&v)?;
        }
        self.failed(function)
    }
}

/// `numerator * 100 / denominator`, without overflow, and 0 for a zero denominator.
pub fn percent(numerator: u32, denominator: u32) -> u64 {
    match denominator {
        0 => 0,
        d => u64::from(numerator) * 100 / u64::from(d),
    }
}

/// Where one job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not yet sent to the current server.
    Pending,
    /// Sent, waiting for JOB_CREATED (or ERROR).
    Submitted,
    /// Created; waiting for its final packet.
    Running(Bytes),
    /// Finished (or a background job that was created).
    Done,
}

struct Job {
    function: Bytes,
    unique: Bytes,
    state: State,
}

/// Why driving an item's jobs on one connection stopped early.
enum Stop {
    /// The connection failed; the caller decides whether another server can take over.
    Link(LinkError),
    /// Nothing to retry: report and exit.
    Fatal(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fatal(e)
    }
}

impl From<LinkError> for Stop {
    fn from(e: LinkError) -> Self {
        Stop::Link(e)
    }
}

struct Client<'a> {
    config: &'a Config,
    opts: &'a ClientOptions,
    link: Option<Link>,
    /// Index of the server to try first.
    next: usize,
    uniques: UniqueGen,
    printer: Printer<'a>,
    failed: bool,
}

/// Runs client mode, reading data from `input` when the options say so.
pub fn run(
    config: &Config,
    opts: &ClientOptions,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, Error> {
    if config.servers.is_empty() {
        return Err(ServerListError::Empty.into());
    }
    let mut client = Client {
        config,
        opts,
        link: None,
        next: 0,
        uniques: UniqueGen::new(),
        printer: Printer::new(out, err, opts.prefix),
        failed: false,
    };
    match &opts.source {
        DataSource::Words(words) => {
            for word in words {
                client.run_item(word.clone())?;
            }
        }
        DataSource::Empty => client.run_item(Bytes::new())?,
        DataSource::Stdin(LineMode::Whole) => {
            let mut all = Vec::new();
            input.read_to_end(&mut all).map_err(Error::Stdin)?;
            client.run_item(Bytes::from(all))?;
        }
        DataSource::Stdin(mode) => {
            while let Some(line) = read_line(input).map_err(Error::Stdin)? {
                client.run_item(Bytes::copy_from_slice(mode.trim(&line)))?;
            }
        }
    }
    Ok(if client.failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

impl Client<'_> {
    /// Submits `data` once per function and waits for all of those jobs.
    fn run_item(&mut self, data: Bytes) -> Result<(), Error> {
        // libgearman runs the tasks of one item newest first, so the C tool submits the
        // functions in reverse command-line order; we keep that order (and so the handles).
        let mut jobs: Vec<Job> = self
            .config
            .functions
            .iter()
            .rev()
            .map(|function| Job {
                function: function.clone(),
                unique: match &self.opts.unique {
                    Some(u) => u.clone(),
                    None => Bytes::from(self.uniques.next_unique()),
                },
                state: State::Pending,
            })
            .collect();
        let servers = self.config.servers.len();
        let mut failovers = 0;
        loop {
            let mut link = self.connect()?;
            match self.drive(&mut link, &mut jobs, &data) {
                Ok(()) => {
                    self.link = Some(link);
                    return Ok(());
                }
                Err(Stop::Fatal(e)) => return Err(e),
                Err(Stop::Link(LinkError::Lost(_)))
                    if failovers < servers
                        && !jobs.iter().any(|j| matches!(j.state, State::Running(_))) =>
                {
                    // No job of this item is waiting on the lost server: hand the
                    // unacknowledged ones to the next server.
                    for job in &mut jobs {
                        if job.state == State::Submitted {
                            job.state = State::Pending;
                        }
                    }
                    self.next = (self.next + 1) % servers;
                    failovers += 1;
                }
                Err(Stop::Link(e)) => return Err(link.error(e)),
            }
        }
    }

    /// The current connection, or a new one to the first server (from `next`) that answers.
    fn connect(&mut self) -> Result<Link, Error> {
        if let Some(link) = self.link.take() {
            return Ok(link);
        }
        let servers = &self.config.servers;
        let mut reasons = Vec::new();
        for k in 0..servers.len() {
            let index = (self.next + k) % servers.len();
            let server = &servers[index];
            let mut link =
                match Link::connect(server, self.config.timeout, self.config.tls.as_ref()) {
                    Ok(link) => link,
                    Err(reason) => {
                        reasons.push(format!("{server}: {reason}"));
                        continue;
                    }
                };
            match enable_exceptions(&mut link) {
                Ok(()) => {
                    self.next = index;
                    return Ok(link);
                }
                Err(LinkError::Lost(reason)) => reasons.push(format!("{server}: {reason}")),
                Err(e) => return Err(link.error(e)),
            }
        }
        Err(Error::Connect { reasons })
    }

    /// Submits the item's pending jobs on `link` and reads until every job is done.
    fn drive(&mut self, link: &mut Link, jobs: &mut [Job], data: &Bytes) -> Result<(), Stop> {
        for job in jobs.iter_mut().filter(|j| j.state == State::Pending) {
            link.queue(Request::Submit(SubmitJob {
                priority: self.opts.priority,
                mode: self.opts.job_mode,
                ..SubmitJob::new(job.function.clone(), job.unique.clone(), data.clone())
            }));
            job.state = State::Submitted;
        }
        link.flush()?;
        while jobs.iter().any(|j| j.state != State::Done) {
            match link.recv()? {
                Response::JobCreated { handle } => {
                    // The server answers submissions in order.
                    let Some(job) = jobs.iter_mut().find(|j| j.state == State::Submitted) else {
                        return Err(Stop::Fatal(Error::Protocol {
                            server: link.server().to_string(),
                            what: format!("JOB_CREATED {}", printable(&handle)),
                        }));
                    };
                    if self.opts.verbose {
                        self.printer.created(&handle)?;
                    }
                    job.state = match self.opts.job_mode {
                        JobMode::Background => State::Done,
                        JobMode::Foreground => State::Running(handle),
                    };
                }
                Response::Error { code, text } => {
                    return Err(Stop::Fatal(Error::Server {
                        server: link.server().to_string(),
                        code: printable(&code),
                        text: printable(&text),
                    }));
                }
                Response::WorkData { handle, data } => {
                    if let Some(job) = running(jobs, &handle) {
                        self.printer.data(&job.function, &data)?;
                    }
                }
                Response::WorkWarning { handle, data } => {
                    if let Some(job) = running(jobs, &handle) {
                        self.printer.warning(&job.function, &data)?;
                    }
                }
                Response::WorkStatus {
                    handle,
                    numerator,
                    denominator,
                } => {
                    if let Some(job) = running(jobs, &handle) {
                        let (n, d) = (
                            parse_u32_lenient(&numerator),
                            parse_u32_lenient(&denominator),
                        );
                        self.printer.status(&job.function, n, d)?;
                    }
                }
                Response::WorkComplete { handle, data } => {
                    if let Some(job) = running(jobs, &handle) {
                        job.state = State::Done;
                        self.printer.data(&job.function, &data)?;
                    }
                }
                Response::WorkFail { handle } => {
                    // A server that ignored OPTION_REQ turns exceptions into WORK_FAIL with a
                    // trailing NUL (shared/docs/protocol.md §4.9): accept that handle too.
                    let handle = handle.strip_suffix(b"\0").unwrap_or(&handle);
                    if let Some(job) = running(jobs, handle) {
                        job.state = State::Done;
                        self.failed = true;
                        self.printer.failed(&job.function)?;
                    }
                }
                Response::WorkException { handle, data } => {
                    if let Some(job) = running(jobs, &handle) {
                        job.state = State::Done;
                        self.failed = true;
                        self.printer.exception(&job.function, &data)?;
                    }
                }
                // Nothing else is addressed to a client; ignore stray packets.
                _ => {}
            }
        }
        Ok(())
    }
}

/// The running job with this handle.
fn running<'j>(jobs: &'j mut [Job], handle: &[u8]) -> Option<&'j mut Job> {
    jobs.iter_mut()
        .find(|j| matches!(&j.state, State::Running(h) if h.as_ref() == handle))
}

/// OPTION_REQ `exceptions`, so the server sends WORK_EXCEPTION rather than WORK_FAIL. A
/// server that does not know the option (ERROR UNKNOWN_OPTION) is used without it.
fn enable_exceptions(link: &mut Link) -> Result<(), LinkError> {
    link.send(Request::Option {
        name: Bytes::from_static(b"exceptions"),
    })?;
    match link.recv()? {
        Response::Option { .. } => Ok(()),
        Response::Error { code, .. }
            if code.as_ref() == ErrorCode::UnknownOption.as_str().as_bytes() =>
        {
            Ok(())
        }
        other => Err(LinkError::Protocol(format!(
            "{} instead of OPTION_RES",
            other.packet_type().name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::ServerAddr;
    use gearman_shared::connection::Connection;
    use gearman_shared::protocol::{Packet, Priority};
    use std::net::TcpListener;
    use std::thread;
    use std::time::Duration;

    /// A one-connection fake server on a free port running `script`.
    fn fake(script: impl FnOnce(Connection) + Send + 'static) -> ServerAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                let conn = Connection::from_stream(stream);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                script(conn);
            }
        });
        ServerAddr::new("127.0.0.1", port)
    }

    fn read(conn: &mut Connection) -> Packet {
        conn.read_packet()
            .unwrap_or_else(|e| panic!("fake server read: {e}"))
    }

    fn reply(conn: &mut Connection, r: Response) {
        conn.send_packet(&r.into_packet())
            .unwrap_or_else(|e| panic!("fake server write: {e}"));
    }

    /// Answers OPTION_REQ, then reads one SUBMIT and returns it.
    fn accept_option_and_submit(conn: &mut Connection) -> Packet {
        let option = read(conn);
        assert_eq!(option.arg(0), b"exceptions");
        reply(
            conn,
            Response::Option {
                name: "exceptions".into(),
            },
        );
        read(conn)
    }

    fn client_run(
        servers: Vec<ServerAddr>,
        words: &[&str],
    ) -> (Result<Outcome, Error>, String, String) {
        let opts = ClientOptions {
            job_mode: JobMode::Foreground,
            priority: Priority::Normal,
            prefix: false,
            verbose: false,
            unique: Some("u".into()),
            source: DataSource::Words(
                words
                    .iter()
                    .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                    .collect(),
            ),
        };
        let config = Config {
            functions: vec!["f".into()],
            servers,
            timeout: Some(Duration::from_secs(5)),
            pidfile: None,
            daemon: false,
            tls: None,
            mode: crate::config::Mode::Client(opts.clone()),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = run(&config, &opts, &mut std::io::empty(), &mut out, &mut err);
        (
            r,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[test]
    fn fails_over_when_the_connection_drops_before_job_created() {
        let dead = fake(|mut conn| {
            accept_option_and_submit(&mut conn);
            // Closes without JOB_CREATED.
        });
        let good = fake(|mut conn| {
            let submit = accept_option_and_submit(&mut conn);
            assert_eq!(
                (submit.arg(0), submit.arg(1), submit.arg(2)),
                (&b"f"[..], &b"u"[..], &b"x"[..])
            );
            reply(
                &mut conn,
                Response::JobCreated {
                    handle: "H:2".into(),
                },
            );
            reply(
                &mut conn,
                Response::WorkComplete {
                    handle: "H:2".into(),
                    data: "done".into(),
                },
            );
        });
        let (r, out, err) = client_run(vec![dead, good], &["x"]);
        assert!(matches!(r, Ok(Outcome::Success)), "{r:?} {err}");
        assert_eq!(out, "done");
    }

    #[test]
    fn no_failover_once_the_job_runs_on_the_lost_server() {
        let lost = fake(|mut conn| {
            accept_option_and_submit(&mut conn);
            reply(
                &mut conn,
                Response::JobCreated {
                    handle: "H:1".into(),
                },
            );
        });
        let unused = fake(|_| panic!("must not be used"));
        let (r, _, _) = client_run(vec![lost, unused], &["x"]);
        assert!(matches!(r, Err(Error::Lost { .. })), "{r:?}");
    }

    #[test]
    fn error_packet_is_a_failure() {
        let full = fake(|mut conn| {
            accept_option_and_submit(&mut conn);
            reply(
                &mut conn,
                Response::error(ErrorCode::QueueError, "Job queue is full"),
            );
        });
        let (r, _, _) = client_run(vec![full], &["x"]);
        let Err(e) = r else {
            panic!("expected an error")
        };
        assert!(
            e.to_string().ends_with(": QUEUE_ERROR Job queue is full"),
            "{e}"
        );
    }

    #[test]
    fn old_server_without_the_exceptions_option() {
        let old = fake(|mut conn| {
            read(&mut conn);
            reply(
                &mut conn,
                Response::error(
                    ErrorCode::UnknownOption,
                    "Server does not recognize given option",
                ),
            );
            read(&mut conn);
            reply(
                &mut conn,
                Response::JobCreated {
                    handle: "H:1".into(),
                },
            );
            // WORK_FAIL with the trailing NUL such servers send for exceptions.
            conn.send_packet(&Packet::new(
                gearman_shared::protocol::Magic::Res,
                gearman_shared::protocol::PacketType::WorkFail,
                vec!["H:1\0".into()],
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        });
        let (r, _, err) = client_run(vec![old], &["x"]);
        assert!(matches!(r, Ok(Outcome::Failed)), "{r:?}");
        assert_eq!(err, "Job failed\n");
    }

    #[test]
    fn percent_guards_zero_and_overflow() {
        assert_eq!(percent(1, 4), 25);
        assert_eq!(percent(1, 0), 0);
        assert_eq!(percent(u32::MAX, u32::MAX), 100);
        assert_eq!(percent(3, 2), 150);
    }

    #[test]
    fn printer_formats() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        {
            let mut p = Printer::new(&mut out, &mut err, false);
            p.created(b"H:x:1").ok();
            p.data(b"f", b"raw").ok();
            p.status(b"f", 1, 2).ok();
            p.warning(b"f", b"w").ok();
            p.failed(b"f").ok();
            p.exception(b"f", b"boom").ok();
        }
        assert_eq!(out, b"Task created: H:x:1\nraw50% Complete\n");
        assert_eq!(err, b"wJob failed\nboom\nJob failed\n");

        let (mut out, mut err) = (Vec::new(), Vec::new());
        {
            let mut p = Printer::new(&mut out, &mut err, true);
            p.created(b"H:x:1").ok();
            p.data(b"f", b"raw\n").ok();
            p.status(b"f", 1, 0).ok();
            p.failed(b"f").ok();
        }
        assert_eq!(out, b"Task created: H:x:1\nf: raw\nf: 0% Complete\n");
        assert_eq!(err, b"f: Job failed\n");
    }
}
