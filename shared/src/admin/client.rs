//! A blocking admin-protocol client over `std::net::TcpStream`, plain or TLS, for gearadmin,
//! gearman-tui and tests.
//!
//! Each call sends one command line and reads exactly one complete reply. How the reply is
//! delimited comes from the command itself ([`AdminCommand::reply_shape`]), parsed with the
//! server's own tokenizer, never from guessing at the bytes.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::command::{self, AdminCommand, Parsed};
use super::reply::{
    self, FunctionPriorityStatus, FunctionStatus, JobInfo, Reply, ReplyError, ReplyShape,
    WorkerInfo,
};
use crate::tls::{Stream, TlsConnector, TlsError, TlsOptions};

/// The largest reply accepted, so that a misbehaving peer cannot exhaust memory.
pub const MAX_REPLY_LEN: usize = 256 << 20;

/// Sent right after `drop function`, whose reply has one line per matching function and no
/// terminator: the sentinel's `OK <version>\n` (LF only, unlike the `\r\n` of the drop lines)
/// marks the end deterministically, where waiting for silence would be a guess.
const DROP_SENTINEL: &[u8] = b"version\r\n";

/// Errors of an admin connection.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address could not be resolved.
    #[error("cannot resolve address: {0}")]
    Resolve(#[source] io::Error),
    /// No resolved address accepted the connection.
    #[error("cannot connect: {0}")]
    Connect(#[source] io::Error),
    /// The server sent no complete reply within the read timeout.
    #[error("timed out waiting for the server's reply")]
    Timeout,
    /// The socket failed after connecting.
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The server closed the connection before a complete reply (gearmand does this for lines
    /// of more than five tokens).
    #[error("connection closed by the server")]
    Closed,
    /// A reply line could not be parsed.
    #[error(transparent)]
    Reply(#[from] ReplyError),
    /// A reply grew past [`MAX_REPLY_LEN`].
    #[error("reply longer than {0} bytes")]
    TooLong(usize),
    /// The server answered a typed request with `ERR <code> <text>`.
    #[error("server error: {code} {text}")]
    Server {
        /// The error code, e.g. `UNKNOWN_JOB`.
        code: String,
        /// The error text as sent (`+` for spaces).
        text: String,
    },
    /// The server answered with a well-formed reply of the wrong kind.
    #[error("unexpected reply: {0:?}")]
    UnexpectedReply(Reply),
    /// The command line or an argument cannot be sent as asked.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// TLS could not be set up (files, names, handshake).
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// One blocking TCP connection (plain or TLS) to a Gearman server's admin protocol.
#[derive(Debug)]
pub struct AdminClient {
    stream: Stream,
    buf: BytesMut,
    /// How many leading bytes of `buf` are known to hold no `\n`, so that a long listing
    /// arriving in many reads is scanned once.
    scanned: usize,
}

impl AdminClient {
    /// Connects to `addr`; `timeout` bounds the connect and, afterwards, every read and write.
    pub fn connect(
        addr: impl ToSocketAddrs,
        timeout: Option<Duration>,
    ) -> Result<Self, AdminError> {
        let client = AdminClient::from_stream(tcp_connect(addr, timeout)?);
        client.set_timeout(timeout)?;
        Ok(client)
    }

    /// Connects to `addr` and runs a TLS handshake with `options` (see [`crate::tls`]);
    /// `timeout` bounds the connect, the handshake and, afterwards, every read and write.
    /// The server's certificate must name [`TlsOptions::server_name`], or else the IP
    /// address connected to.
    pub fn connect_tls(
        addr: impl ToSocketAddrs,
        timeout: Option<Duration>,
        options: &TlsOptions,
    ) -> Result<Self, AdminError> {
        let connector = TlsConnector::new(options)?;
        let tcp = tcp_connect(addr, timeout)?;
        let host = tcp.peer_addr().map_err(AdminError::Io)?.ip().to_string();
        let client = AdminClient::with_stream(connector.connect(tcp, &host, timeout)?);
        client.set_timeout(timeout)?;
        Ok(client)
    }

    /// Connects to `addr` and runs a TLS handshake with a prepared `connector` (its files
    /// already read): the server's certificate must name `host`, the name or address the
    /// user gave, unless the connector names another. `timeout` bounds the connect, the
    /// handshake and, afterwards, every read and write.
    pub fn connect_host_tls(
        addr: impl ToSocketAddrs,
        host: &str,
        timeout: Option<Duration>,
        connector: &TlsConnector,
    ) -> Result<Self, AdminError> {
        let tcp = tcp_connect(addr, timeout)?;
        let client = AdminClient::with_stream(connector.connect(tcp, host, timeout)?);
        client.set_timeout(timeout)?;
        Ok(client)
    }

    /// Wraps an already connected stream, keeping its timeouts.
    pub fn from_stream(stream: TcpStream) -> Self {
        AdminClient::with_stream(Stream::Plain(stream))
    }

    /// Wraps an already connected plain or TLS stream, keeping its timeouts.
    pub fn with_stream(stream: Stream) -> Self {
        // Commands are small and each waits for its reply: do not let Nagle delay them.
        let _ = stream.tcp().set_nodelay(true);
        AdminClient {
            stream,
            buf: BytesMut::with_capacity(8192),
            scanned: 0,
        }
    }

    /// Bounds every later read and write (`None` waits forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), AdminError> {
        let tcp = self.stream.tcp();
        tcp.set_read_timeout(timeout).map_err(AdminError::Io)?;
        tcp.set_write_timeout(timeout).map_err(AdminError::Io)
    }

    /// The underlying socket (under TLS, if on: writing to it directly bypasses TLS).
    pub fn stream(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Sends `line` followed by `\r\n` and reads the whole reply.
    ///
    /// The line is parsed as the server will parse it to learn the reply's shape: a listing
    /// ends at `.`, `OK…`/`ERR…` are one line, and `drop function` may get several lines.
    /// A line of more than five tokens makes gearmand close the connection: [`AdminError::Closed`].
    pub fn command(&mut self, line: &str) -> Result<Reply, AdminError> {
        self.command_bytes(line.as_bytes())
    }

    /// [`AdminClient::command`] for a line that need not be UTF-8.
    pub fn command_bytes(&mut self, line: &[u8]) -> Result<Reply, AdminError> {
        if line.contains(&b'\n') {
            return Err(AdminError::InvalidArgument(
                "a command line cannot contain a newline".into(),
            ));
        }
        let shape = match command::parse(line, 2) {
            Parsed::Command(c) => c.reply_shape(),
            Parsed::Reply(_) | Parsed::Close => ReplyShape::Line,
        };
        let mut out = Vec::with_capacity(line.len() + 2 + DROP_SENTINEL.len());
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        if shape == ReplyShape::Lines {
            out.extend_from_slice(DROP_SENTINEL);
        }
        self.stream.write_all(&out).map_err(io_error)?;
        self.stream.flush().map_err(io_error)?;
        self.read_reply(shape)
    }

    /// Sends a typed command in its canonical form and reads the whole reply.
    pub fn run(&mut self, command: &AdminCommand) -> Result<Reply, AdminError> {
        self.command_bytes(&command.to_line())
    }

    /// `status`: one entry per function.
    pub fn status(&mut self) -> Result<Vec<FunctionStatus>, AdminError> {
        self.listing(&AdminCommand::Status, FunctionStatus::parse)
    }

    /// `prioritystatus`: queued jobs per priority for each function.
    pub fn priority_status(&mut self) -> Result<Vec<FunctionPriorityStatus>, AdminError> {
        self.listing(&AdminCommand::PriorityStatus, FunctionPriorityStatus::parse)
    }

    /// `workers`: one entry per connection.
    pub fn workers(&mut self) -> Result<Vec<WorkerInfo>, AdminError> {
        self.listing(&AdminCommand::Workers, WorkerInfo::parse)
    }

    /// `show jobs`: one entry per job.
    pub fn show_jobs(&mut self) -> Result<Vec<JobInfo>, AdminError> {
        self.listing(&AdminCommand::ShowJobs, JobInfo::parse)
    }

    /// `show unique jobs`: the unique ID of every job (possibly empty).
    pub fn show_unique_jobs(&mut self) -> Result<Vec<Bytes>, AdminError> {
        self.listing(&AdminCommand::ShowUniqueJobs, |line| {
            Ok(reply::UniqueJob::parse(line).unique)
        })
    }

    /// `stats` (our server's extension): the raw listing lines.
    pub fn stats(&mut self) -> Result<Vec<Vec<u8>>, AdminError> {
        match self.run(&AdminCommand::Stats)? {
            Reply::List(lines) => Ok(lines),
            other => Err(unexpected(other)),
        }
    }

    /// `stats` (our server's extension), parsed.
    pub fn stats_report(&mut self) -> Result<super::StatsReport, AdminError> {
        let lines = self.stats()?;
        super::StatsReport::parse(&lines).map_err(AdminError::Reply)
    }

    /// `version`: the server's version string.
    pub fn version(&mut self) -> Result<String, AdminError> {
        self.value(&AdminCommand::Version)
    }

    /// `verbose`: the server's log level name, e.g. `ERROR`.
    pub fn verbose(&mut self) -> Result<String, AdminError> {
        self.value(&AdminCommand::Verbose)
    }

    /// `getpid`: the server's process ID.
    pub fn getpid(&mut self) -> Result<u32, AdminError> {
        let value = self.value(&AdminCommand::Getpid)?;
        value.parse().map_err(|_| {
            AdminError::Reply(ReplyError::Malformed {
                what: "getpid",
                line: value,
            })
        })
    }

    /// `cancel job HANDLE`.
    pub fn cancel_job(&mut self, handle: impl AsRef<[u8]>) -> Result<(), AdminError> {
        let handle = argument("handle", handle.as_ref())?;
        self.ok(&AdminCommand::CancelJob { handle })
    }

    /// `drop function NAME`. The server drops every idle function whose name matches
    /// case-insensitively; this fails with the first `ERR` line if any match was refused.
    pub fn drop_function(&mut self, name: impl AsRef<[u8]>) -> Result<(), AdminError> {
        let name = argument("function name", name.as_ref())?;
        self.ok(&AdminCommand::DropFunction { name })
    }

    /// `create function NAME` (sent with `\r\n`, so the whole name is used).
    pub fn create_function(&mut self, name: impl AsRef<[u8]>) -> Result<(), AdminError> {
        let name = argument("function name", name.as_ref())?;
        self.ok(&AdminCommand::CreateFunction { name })
    }

    /// `maxqueue FN HIGH NORMAL LOW`; 0 means unlimited, values above `i32::MAX` are sent as
    /// `i32::MAX`. The server replies `OK` even when the function does not exist.
    pub fn maxqueue(
        &mut self,
        function: impl AsRef<[u8]>,
        limits: [u32; 3],
    ) -> Result<(), AdminError> {
        let function = argument("function name", function.as_ref())?;
        if function.is_empty() {
            // "maxqueue  1 2 3" would name the function "1".
            return Err(AdminError::InvalidArgument(
                "maxqueue needs a non-empty function name".into(),
            ));
        }
        self.ok(&AdminCommand::MaxQueue { function, limits })
    }

    /// `shutdown` or `shutdown graceful` (our server only; gearmand 1.1.20 answers
    /// `ERR UNKNOWN_COMMAND`, returned as [`AdminError::Server`]).
    pub fn shutdown(&mut self, graceful: bool) -> Result<(), AdminError> {
        self.ok(&AdminCommand::Shutdown { graceful })
    }

    fn listing<T>(
        &mut self,
        command: &AdminCommand,
        parse: impl Fn(&[u8]) -> Result<T, ReplyError>,
    ) -> Result<Vec<T>, AdminError> {
        match self.run(command)? {
            Reply::List(lines) => Ok(lines
                .iter()
                .map(|line| parse(line))
                .collect::<Result<_, _>>()?),
            other => Err(unexpected(other)),
        }
    }

    fn value(&mut self, command: &AdminCommand) -> Result<String, AdminError> {
        match self.run(command)? {
            Reply::Value(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    fn ok(&mut self, command: &AdminCommand) -> Result<(), AdminError> {
        match self.run(command)? {
            Reply::Ok => Ok(()),
            Reply::Multi(replies) => match replies.into_iter().find(|r| *r != Reply::Ok) {
                None => Ok(()),
                Some(other) => Err(unexpected(other)),
            },
            other => Err(unexpected(other)),
        }
    }

    fn read_reply(&mut self, shape: ReplyShape) -> Result<Reply, AdminError> {
        match shape {
            ReplyShape::Line => Ok(Reply::parse_line(&self.read_line()?)?),
            ReplyShape::Listing => {
                let first = self.read_line()?;
                if reply::is_error_line(&first) {
                    return Ok(Reply::parse_line(&first)?);
                }
                let mut lines = Vec::new();
                let mut total = 0usize;
                let mut line = first;
                while !reply::is_list_end(&line) {
                    total += line.len();
                    if total > MAX_REPLY_LEN {
                        return Err(AdminError::TooLong(MAX_REPLY_LEN));
                    }
                    lines.push(line[..line.len() - 1].to_vec());
                    line = self.read_line()?;
                }
                Ok(Reply::List(lines))
            }
            ReplyShape::Lines => {
                let mut replies = Vec::new();
                loop {
                    match Reply::parse_line(&self.read_line()?)? {
                        // The sentinel's reply: everything before it answered the drop.
                        Reply::Value(_) => break,
                        other => replies.push(other),
                    }
                }
                Ok(match replies.len() {
                    1 => replies.swap_remove(0),
                    _ => Reply::Multi(replies),
                })
            }
        }
    }

    /// Reads one line, its `\n` included.
    fn read_line(&mut self) -> Result<Bytes, AdminError> {
        loop {
            if let Some(i) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(self.scanned + i + 1).freeze();
                self.scanned = 0;
                return Ok(line);
            }
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_REPLY_LEN {
                return Err(AdminError::TooLong(MAX_REPLY_LEN));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = loop {
                match self.stream.read(&mut chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_error(e)),
                }
            };
            if n == 0 {
                return Err(AdminError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Connects to the first address of `addr` that accepts.
fn tcp_connect(
    addr: impl ToSocketAddrs,
    timeout: Option<Duration>,
) -> Result<TcpStream, AdminError> {
    let mut last = None;
    for a in addr.to_socket_addrs().map_err(AdminError::Resolve)? {
        let attempt = match timeout {
            Some(t) => TcpStream::connect_timeout(&a, t),
            None => TcpStream::connect(a),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(AdminError::Connect(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing")
    })))
}

/// Checks that an argument survives the server's tokenizer as one token.
fn argument(what: &str, bytes: &[u8]) -> Result<Bytes, AdminError> {
    match bytes.iter().find(|&&b| matches!(b, b' ' | b'\n' | b'\0')) {
        Some(&b) => Err(AdminError::InvalidArgument(format!(
            "the {what} cannot contain {:?}",
            char::from(b)
        ))),
        None => Ok(Bytes::copy_from_slice(bytes)),
    }
}

fn unexpected(reply: Reply) -> AdminError {
    match reply {
        Reply::Error { code, text } => AdminError::Server { code, text },
        other => AdminError::UnexpectedReply(other),
    }
}

fn io_error(e: io::Error) -> AdminError {
    match e.kind() {
        // A read timeout shows up as WouldBlock on Unix and TimedOut on Windows.
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => AdminError::Timeout,
        _ => AdminError::Io(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, TcpListener};
    use std::thread::{self, JoinHandle};

    /// How the fake server writes each reply.
    #[derive(Clone, Copy)]
    enum Delivery {
        Whole,
        ByteByByte,
    }

    /// A one-connection server that checks each request's exact bytes and replays a reply.
    /// An empty reply means: close the connection.
    fn fake_server(
        script: Vec<(&'static [u8], &'static [u8])>,
        delivery: Delivery,
    ) -> (SocketAddr, JoinHandle<Result<(), String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut conn, _) = listener.accept().map_err(|e| e.to_string())?;
            conn.set_nodelay(true).map_err(|e| e.to_string())?;
            for (request, reply) in script {
                let mut got = vec![0u8; request.len()];
                conn.read_exact(&mut got).map_err(|e| e.to_string())?;
                if got != request {
                    return Err(format!(
                        "expected {:?}, got {:?}",
                        String::from_utf8_lossy(request),
                        String::from_utf8_lossy(&got)
                    ));
                }
                if reply.is_empty() {
                    return Ok(());
                }
                match delivery {
                    Delivery::Whole => conn.write_all(reply).map_err(|e| e.to_string())?,
                    Delivery::ByteByByte => {
                        for b in reply {
                            conn.write_all(&[*b]).map_err(|e| e.to_string())?;
                            thread::sleep(Duration::from_micros(200));
                        }
                    }
                }
            }
            // Wait for the client to hang up, so no reply is cut short by our close.
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest);
            Ok(())
        });
        (addr, handle)
    }

    fn client(addr: SocketAddr) -> AdminClient {
        AdminClient::connect(addr, Some(Duration::from_secs(5))).unwrap()
    }

    fn list(lines: &[&str]) -> Reply {
        Reply::List(lines.iter().map(|l| l.as_bytes().to_vec()).collect())
    }

    fn err(code: &str, text: &str) -> Reply {
        Reply::Error {
            code: code.into(),
            text: text.into(),
        }
    }

    /// The replies of a capture of the C server's admin port (shared/docs/protocol.md §5),
    /// in capture order.
    fn capture_script() -> Vec<(&'static [u8], &'static [u8])> {
        vec![
            (b"status\r\n", b"upper\t1\t1\t1\nreverse\t3\t0\t2\n.\n"),
            (b"prioritystatus\r\n", b"upper\t0\t0\t0\t1\nreverse\t1\t1\t1\t2\n.\n"),
            (b"workers\r\n", b"37 127.0.0.1 worker-1 : upper reverse\n38 127.0.0.1 - : reverse\n39 127.0.0.1 - :\n40 127.0.0.1 - :\n.\n"),
            (b"show jobs\r\n", b"H:host:1\t0\t0\t1\nH:host:2\t0\t0\t1\nH:host:3\t0\t0\t1\nH:host:4\t0\t0\t1\n.\n"),
            (b"show unique jobs\r\n", b"\n\nu-1\n-\n.\n"),
            (b"version\r\n", b"OK 1.1.20+ds\n"),
            (b"verbose\r\n", b"OK ERROR\n"),
            (b"getpid\r\n", b"OK 27233\n"),
            (b"maxqueue reverse 10\r\n", b"OK\r\n"),
            (b"maxqueue\r\n", b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n"),
            (b"create function newfunc\r\n", b"OK\r\n"),
            (b"drop function newfunc\r\nversion\r\n", b"OK\r\nOK 1.1.20+ds\n"),
            (b"drop function newfunc\r\nversion\r\n", b"ERR function not found\r\nOK 1.1.20+ds\n"),
            (b"cancel job H:host:3\r\n", b"OK\r\n"),
            (b"cancel job\r\n", b"ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n"),
            (b"show foo\r\n", b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n"),
            (b"shutdown\r\n", b"ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n"),
            (b"\r\n", b"ERR UNKNOWN_COMMAND Unknown+server+command\r\n"),
            (b"a b c d e f\r\n", b""),
        ]
    }

    fn replay_capture(delivery: Delivery) {
        let (addr, server) = fake_server(capture_script(), delivery);
        let mut c = client(addr);
        assert_eq!(
            c.command("status").unwrap(),
            list(&["upper\t1\t1\t1", "reverse\t3\t0\t2"])
        );
        assert_eq!(
            c.command("prioritystatus").unwrap(),
            list(&["upper\t0\t0\t0\t1", "reverse\t1\t1\t1\t2"])
        );
        let Reply::List(workers) = c.command("workers").unwrap() else {
            panic!("workers is a listing")
        };
        assert_eq!(workers.len(), 4);
        assert_eq!(
            c.command("show jobs").unwrap(),
            list(&[
                "H:host:1\t0\t0\t1",
                "H:host:2\t0\t0\t1",
                "H:host:3\t0\t0\t1",
                "H:host:4\t0\t0\t1"
            ])
        );
        assert_eq!(
            c.command("show unique jobs").unwrap(),
            list(&["", "", "u-1", "-"])
        );
        assert_eq!(
            c.command("version").unwrap(),
            Reply::Value("1.1.20+ds".into())
        );
        assert_eq!(c.command("verbose").unwrap(), Reply::Value("ERROR".into()));
        assert_eq!(c.command("getpid").unwrap(), Reply::Value("27233".into()));
        assert_eq!(c.command("maxqueue reverse 10").unwrap(), Reply::Ok);
        assert_eq!(
            c.command("maxqueue").unwrap(),
            err(
                "INVALID_ARGUMENTS",
                "An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue"
            )
        );
        assert_eq!(c.command("create function newfunc").unwrap(), Reply::Ok);
        assert_eq!(c.command("drop function newfunc").unwrap(), Reply::Ok);
        assert_eq!(
            c.command("drop function newfunc").unwrap(),
            err("function", "not found")
        );
        assert_eq!(c.command("cancel job H:host:3").unwrap(), Reply::Ok);
        assert_eq!(
            c.command("cancel job").unwrap(),
            err("UNKNOWN_COMMAND", "Unknown+server+commandcancel")
        );
        assert_eq!(
            c.command("show foo").unwrap(),
            err("UNKNOWN_SHOW_ARGUMENTS", "")
        );
        assert_eq!(
            c.command("shutdown").unwrap(),
            err("UNKNOWN_COMMAND", "Unknown+server+commandshutdown")
        );
        assert_eq!(
            c.command("").unwrap(),
            err("UNKNOWN_COMMAND", "Unknown+server+command")
        );
        assert!(matches!(c.command("a b c d e f"), Err(AdminError::Closed)));
        server.join().unwrap().unwrap();
    }

    #[test]
    fn replays_the_capture() {
        replay_capture(Delivery::Whole);
    }

    #[test]
    fn replays_the_capture_one_byte_at_a_time() {
        replay_capture(Delivery::ByteByByte);
    }

    #[test]
    fn typed_helpers() {
        let script = vec![
            (&b"status\r\n"[..], &b"upper\t1\t1\t1\nreverse\t3\t0\t2\n.\n"[..]),
            (b"prioritystatus\r\n", b"upper\t0\t0\t0\t1\n.\n"),
            (b"workers\r\n", b"37 127.0.0.1 worker-1 : upper reverse\n39 127.0.0.1 - :\n.\n"),
            (b"show jobs\r\n", b"H:host:1\t0\t0\t1\n.\n"),
            (b"show unique jobs\r\n", b"\nu-1\n.\n"),
            (b"version\r\n", b"OK 1.1.20+ds\n"),
            (b"verbose\r\n", b"OK INFO\n"),
            (b"getpid\r\n", b"OK 16779\n"),
            (b"cancel job H:vm:5\r\n", b"OK\r\n"),
            (b"cancel job H:vm:nosuch\r\n", b"ERR UNKNOWN_JOB\r\n"),
            (b"create function newfn\r\n", b"OK\r\n"),
            (b"drop function foo\r\nversion\r\n", b"OK\r\nOK\r\nOK\r\nOK 1.1.20+ds\n"),
            (b"drop function x\r\nversion\r\n", b"ERR there are still connected workers or executing clients\r\nOK\r\nOK 1.1.20+ds\n"),
            (b"maxqueue reverse 1 2 3\r\n", b"OK\r\n"),
            (b"shutdown graceful\r\n", b"OK\r\n"),
            (b"stats\r\n", b"ERR UNKNOWN_COMMAND Unknown+server+commandstats\r\n"),
        ];
        let (addr, server) = fake_server(script, Delivery::Whole);
        let mut c = client(addr);

        let status = c.status().unwrap();
        assert_eq!(status.len(), 2);
        assert_eq!(
            status[1],
            FunctionStatus {
                name: "reverse".into(),
                total: 3,
                running: 0,
                workers: 2
            }
        );
        assert_eq!(c.priority_status().unwrap()[0].workers, 1);
        let workers = c.workers().unwrap();
        assert_eq!(workers[0].client_id, "worker-1");
        assert_eq!(
            workers[0].functions,
            vec![Bytes::from("upper"), Bytes::from("reverse")]
        );
        assert!(workers[1].functions.is_empty());
        let jobs = c.show_jobs().unwrap();
        assert_eq!(jobs[0].handle, "H:host:1");
        assert!(jobs[0].queued && !jobs[0].ignore);
        assert_eq!(
            c.show_unique_jobs().unwrap(),
            vec![Bytes::new(), Bytes::from("u-1")]
        );
        assert_eq!(c.version().unwrap(), "1.1.20+ds");
        assert_eq!(c.verbose().unwrap(), "INFO");
        assert_eq!(c.getpid().unwrap(), 16779);
        c.cancel_job("H:vm:5").unwrap();
        assert!(matches!(
            c.cancel_job("H:vm:nosuch"),
            Err(AdminError::Server { code, .. }) if code == "UNKNOWN_JOB"
        ));
        c.create_function("newfn").unwrap();
        c.drop_function("foo").unwrap();
        assert!(matches!(
            c.drop_function("x"),
            Err(AdminError::Server { code, .. }) if code == "there"
        ));
        c.maxqueue("reverse", [1, 2, 3]).unwrap();
        c.shutdown(true).unwrap();
        assert!(matches!(c.stats(), Err(AdminError::Server { .. })));
        drop(c);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn several_drop_lines_come_back_together() {
        let script = vec![(
            &b"DROP FUNCTION foo\r\nversion\r\n"[..],
            &b"OK\r\nOK\r\nOK\r\nOK 1.1.20\n"[..],
        )];
        let (addr, server) = fake_server(script, Delivery::ByteByByte);
        let mut c = client(addr);
        assert_eq!(
            c.command("DROP FUNCTION foo").unwrap(),
            Reply::Multi(vec![Reply::Ok, Reply::Ok, Reply::Ok])
        );
        drop(c);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn arguments_that_would_change_the_command_are_refused() {
        let (addr, server) = fake_server(vec![], Delivery::Whole);
        let mut c = client(addr);
        assert!(matches!(
            c.command("status\nworkers"),
            Err(AdminError::InvalidArgument(_))
        ));
        assert!(matches!(
            c.cancel_job("a b"),
            Err(AdminError::InvalidArgument(_))
        ));
        assert!(matches!(
            c.create_function("a\0b"),
            Err(AdminError::InvalidArgument(_))
        ));
        assert!(matches!(
            c.maxqueue("", [1, 1, 1]),
            Err(AdminError::InvalidArgument(_))
        ));
        drop(c);
        // Nothing reached the server.
        server.join().unwrap().unwrap();
    }

    #[test]
    fn read_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = AdminClient::connect(addr, Some(Duration::from_millis(100))).unwrap();
        assert!(matches!(c.command("status"), Err(AdminError::Timeout)));
    }

    #[test]
    fn connect_refused() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        assert!(matches!(
            AdminClient::connect(addr, Some(Duration::from_secs(1))),
            Err(AdminError::Connect(_))
        ));
    }

    #[test]
    fn truncated_listing_is_closed() {
        let script = vec![(&b"status\r\n"[..], &b"upper\t1\t1\t1\n"[..]), (b"x", b"")];
        let (addr, server) = fake_server(script, Delivery::Whole);
        let mut c = client(addr);
        let mut c2 = c.stream().try_clone().unwrap();
        let t = thread::spawn(move || {
            // Let the server close after the partial listing.
            thread::sleep(Duration::from_millis(50));
            c2.write_all(b"x").unwrap();
        });
        assert!(matches!(c.command("status"), Err(AdminError::Closed)));
        t.join().unwrap();
        server.join().unwrap().unwrap();
    }
}
