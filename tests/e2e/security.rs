//! Security end to end (all `ours_`-style: the C server has none of it): TLS on the job port
//! with and without client certificates, the access-control list (`--acl`), and the
//! resource limits — each refusal shown to leave every other client unharmed.
//!
//! Certificates are made at test time with rcgen: a CA, a server certificate for 127.0.0.1
//! and localhost, client certificates signed by the CA, one signed by another CA (with a
//! real client's CN), and an expired one. Address sections of the ACL are exercised by
//! binding the client socket to 127.0.0.2/127.0.0.5 before connecting to a server that
//! listens on 0.0.0.0 (connections only ever go to 127.0.0.x).

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearman_shared::admin::{AdminClient, AdminError};
use gearman_shared::connection::{Connection, ConnectionError};
use gearman_shared::protocol::{GrabKind, JobMode, Priority, Request, Response, SubmitJob};
use gearman_shared::tls::{TlsError, TlsOptions};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::harness::{self, b, wait_until, ChildGuard, Server, TIMEOUT};
use crate::server_process::ServerProcess;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh scratch directory for one test.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gearman-e2e-security-{}-{tag}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for a free port");
    listener.local_addr().expect("local_addr").port()
}

/// `target/<profile>/gearman`, next to the server under test.
fn gearman_bin() -> PathBuf {
    let bin = harness::gearmand_bin().with_file_name("gearman");
    assert!(
        bin.is_file(),
        "gearman binary not found at {}: build it with `cargo build --workspace --bins`",
        bin.display()
    );
    bin
}

// ---- certificates ------------------------------------------------------------------

/// A certificate authority made for one test.
struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// What a certificate is for.
#[derive(Clone, Copy, PartialEq)]
enum Usage {
    Server,
    Client,
    ExpiredClient,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let key = KeyPair::generate().expect("generate a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Authority { cert, key }
    }

    /// A certificate for `cn` and its key, both PEM.
    fn issue(&self, cn: &str, usage: Usage) -> (String, String) {
        let key = KeyPair::generate().expect("generate a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        match usage {
            Usage::Server => {
                params.subject_alt_names = vec![
                    SanType::DnsName("localhost".try_into().expect("DNS name")),
                    SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
                    SanType::IpAddress(IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])),
                ];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            Usage::Client | Usage::ExpiredClient => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        if usage == Usage::ExpiredClient {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign a certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// The files of one test's PKI, removed when dropped.
///
/// - `ca.pem`, `other-ca.pem`: the trusted CA and an unrelated one;
/// - `server.pem`/`.key`: gearmand, for localhost, 127.0.0.1 and ::1;
/// - `worker-1`, `client-1`, `admin-1` `.pem`/`.key`: clients signed by the CA;
/// - `rogue.pem`/`.key`: CN worker-1, signed by the other CA;
/// - `expired.pem`/`.key`: signed by the CA, expired in 2020.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = scratch("pki");
        let ca = Authority::new("gearman test CA");
        let other = Authority::new("some other CA");
        let write = |name: &str, text: &str| {
            fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"))
        };
        write("ca.pem", &ca.cert.pem());
        write("other-ca.pem", &other.cert.pem());
        let pairs = [
            ("server", ca.issue("gearmand", Usage::Server)),
            ("worker-1", ca.issue("worker-1", Usage::Client)),
            ("client-1", ca.issue("client-1", Usage::Client)),
            ("admin-1", ca.issue("admin-1", Usage::Client)),
            ("rogue", other.issue("worker-1", Usage::Client)),
            ("expired", ca.issue("expired-1", Usage::ExpiredClient)),
        ];
        for (name, (cert, key)) in pairs {
            write(&format!("{name}.pem"), &cert);
            write(&format!("{name}.key"), &key);
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Trusts the test CA, presents `who`'s certificate.
    fn client(&self, who: &str) -> TlsOptions {
        TlsOptions {
            ca_file: Some(self.path("ca.pem")),
            certificate: Some(self.path(&format!("{who}.pem"))),
            key: Some(self.path(&format!("{who}.key"))),
            server_name: None,
        }
    }

    /// Trusts the test CA, presents no certificate.
    fn anonymous(&self) -> TlsOptions {
        TlsOptions {
            ca_file: Some(self.path("ca.pem")),
            ..TlsOptions::default()
        }
    }

    /// `--ssl` with the server's files; with `require_client_certs`, `--ssl-ca-file` too.
    fn server_args(&self, require_client_certs: bool) -> Vec<String> {
        let mut args = vec![
            "--ssl".to_string(),
            "--ssl-certificate".to_string(),
            self.arg("server.pem"),
            "--ssl-key".to_string(),
            self.arg("server.key"),
        ];
        if require_client_certs {
            args.push("--ssl-ca-file".into());
            args.push(self.arg("ca.pem"));
        }
        args
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

// ---- a server on any listen address, plain or TLS -----------------------------------

/// A running `gearmand` (killed when dropped) listening on `listen`, logging at INFO.
/// Unlike `harness::Server` it can listen on 0.0.0.0 and wait for readiness over TLS.
struct Gearmand {
    process: ServerProcess,
    port: u16,
    dir: PathBuf,
}

impl Gearmand {
    /// Starts the server; `probe` is how to reach it (TLS options, or plain when `None`).
    fn start<S: AsRef<OsStr>>(listen: &str, args: &[S], probe: Option<&TlsOptions>) -> Gearmand {
        let bin = harness::gearmand_bin();
        let dir = scratch("server");
        let mut last = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args(["-L", listen, "-p", &port.to_string(), "-l", "stderr"])
                .args(["--verbose", "INFO", "--job-handle-prefix", harness::PREFIX])
                .args(args);
            let mut process = ServerProcess::spawn(cmd, dir.join("server.log"));
            match wait_ready(&mut process, port, probe) {
                Ok(()) => return Gearmand { process, port, dir },
                Err(why) => {
                    process.stop("gearmand");
                    last = format!("{why}\n--- server log:\n{}", process.log());
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!("gearmand did not start: {last}");
    }

    fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// How many log lines contain `needle`.
    fn log_count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits (bounded) until the log has at least `n` lines containing `needle`.
    fn wait_log(&self, needle: &str, n: usize) {
        wait_until(TIMEOUT, &format!("{n} log line(s) with {needle:?}"), || {
            self.log_count(needle) >= n
        });
    }

    fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    fn assert_alive(&mut self) {
        self.process.assert_alive();
    }
}

impl Drop for Gearmand {
    fn drop(&mut self) {
        // Before the log's directory goes.
        self.process.stop(&format!("gearmand (port {})", self.port));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn wait_ready(
    process: &mut ServerProcess,
    port: u16,
    probe: Option<&TlsOptions>,
) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = process.exit_status() {
            return Err(format!("server exited early with {status}"));
        }
        let conn = match probe {
            None => Connection::connect(addr, Some(Duration::from_millis(200))),
            Some(options) => Connection::connect_tls(addr, Some(Duration::from_secs(2)), options),
        };
        if let Ok(conn) = conn {
            let mut peer = Peer::new(conn);
            if peer.try_echo(b"ready?").is_ok() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err("server did not answer ECHO within 10 s".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---- one connection, plain or TLS, from any loopback address ------------------------

/// A connection with bounded reads and writes.
struct Peer {
    conn: Connection,
}

impl Peer {
    fn new(conn: Connection) -> Peer {
        conn.set_read_timeout(Some(TIMEOUT))
            .expect("set read timeout");
        conn.stream()
            .set_write_timeout(Some(TIMEOUT))
            .expect("set write timeout");
        Peer { conn }
    }

    fn plain(addr: SocketAddr) -> Peer {
        Peer::new(
            Connection::connect(addr, Some(TIMEOUT))
                .unwrap_or_else(|e| panic!("connect to {addr}: {e}")),
        )
    }

    /// A plain connection to 127.0.0.1:`port` whose source address is `source`.
    fn plain_from(source: Ipv4Addr, port: u16) -> Peer {
        Peer::new(Connection::from_stream(connect_from(source, port)))
    }

    fn tls(addr: SocketAddr, options: &TlsOptions) -> Result<Peer, ConnectionError> {
        Connection::connect_tls(addr, Some(TIMEOUT), options).map(Peer::new)
    }

    fn tls_ok(addr: SocketAddr, options: &TlsOptions) -> Peer {
        let peer = Peer::tls(addr, options).unwrap_or_else(|e| panic!("TLS to {addr}: {e}"));
        assert!(peer.conn.is_tls());
        peer
    }

    fn send(&mut self, request: Request) {
        self.conn
            .send(request)
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    fn recv(&mut self) -> Response {
        self.conn
            .read_response()
            .unwrap_or_else(|e| panic!("read a response: {e}"))
    }

    /// ECHO round trip; the error says what came instead.
    fn try_echo(&mut self, data: &[u8]) -> Result<(), String> {
        self.conn
            .send(Request::Echo { data: b(data) })
            .map_err(|e| format!("send: {e}"))?;
        match self.conn.read_response() {
            Ok(Response::Echo { data: got }) if got == data => Ok(()),
            Ok(other) => Err(format!("got {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    fn echo(&mut self, data: &[u8]) {
        if let Err(e) = self.try_echo(data) {
            panic!("ECHO failed: {e}");
        }
    }

    fn can_do(&mut self, function: &str) {
        self.send(Request::CanDo {
            function: b(function),
        });
    }

    fn submit(&mut self, job: SubmitJob) -> Response {
        self.send(Request::Submit(job));
        self.recv()
    }

    /// A background job; returns the handle.
    fn submit_bg(&mut self, function: &str, data: &str) -> Bytes {
        match self.submit(bg(function, data)) {
            Response::JobCreated { handle } => handle,
            other => panic!("submit to {function}: expected JOB_CREATED, got {other:?}"),
        }
    }

    /// The next response is ERROR PERMISSION_DENIED with this text.
    fn expect_denied(&mut self, text: &str) {
        match self.recv() {
            Response::Error { code, text: got } if code == "PERMISSION_DENIED" && got == text => {}
            other => panic!("expected ERROR PERMISSION_DENIED {text:?}, got {other:?}"),
        }
    }

    /// An admin line and its reply (one line for OK/ERR, else up to `.`).
    fn admin(&mut self, line: &str) -> String {
        self.conn
            .send_raw(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("send {line:?}: {e}"));
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
}

fn bg(function: &str, data: &str) -> SubmitJob {
    SubmitJob {
        mode: JobMode::Background,
        ..SubmitJob::new(b(function), Bytes::new(), b(data))
    }
}

fn fg(function: &str, data: &str) -> SubmitJob {
    SubmitJob::new(b(function), Bytes::new(), b(data))
}

/// A TCP connection to 127.0.0.1:`port` from the source address `source`.
fn connect_from(source: Ipv4Addr, port: u16) -> TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket
        .connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)).into(), TIMEOUT)
        .unwrap_or_else(|e| panic!("connect from {source}: {e}"));
    socket.into()
}

const DENIED_ADMIN: &str = "ERR PERMISSION_DENIED not+allowed+by+the+access+control+list\r\n";
const DENIED_CAN_DO: &str = "Not allowed to register this function";
const DENIED_SUBMIT: &str = "Not allowed to submit to this function";

/// The attempt must fail: at the handshake, or at the first ECHO. Returns why.
fn refused(attempt: Result<Peer, ConnectionError>) -> String {
    match attempt {
        Err(e) => e.to_string(),
        Ok(mut peer) => match peer.try_echo(b"let me in") {
            Ok(()) => panic!("the server accepted a connection it should have refused"),
            Err(why) => why,
        },
    }
}

// ---- TLS -----------------------------------------------------------------------------

/// `gearman -S` as worker and client: the worker takes libgearman's variables, the client
/// the long options; the tool's own refusals (no CA, wrong CA, wrong name) are one line.
#[test]
fn ours_tls_round_trip_with_the_gearman_tool() {
    let pki = Pki::new();
    let mut server = Gearmand::start(
        "127.0.0.1",
        &pki.server_args(true),
        Some(&pki.client("admin-1")),
    );
    let port = server.port().to_string();
    let mut worker = Command::new(gearman_bin());
    worker
        .args([
            "-w",
            "-S",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-f",
            "upper",
            "-c",
            "1",
        ])
        .args(["--", "tr", "a-z", "A-Z"])
        .env("GEARMAND_CA_CERTIFICATE", pki.path("ca.pem"))
        .env("GEARMAN_CLIENT_PEM", pki.path("worker-1.pem"))
        .env("GEARMAN_CLIENT_KEY", pki.path("worker-1.key"));
    let worker = ChildGuard::spawn(worker);

    let mut admin = AdminClient::connect_tls(server.addr(), Some(TIMEOUT), &pki.client("admin-1"))
        .unwrap_or_else(|e| panic!("admin over TLS: {e}"));
    assert!(admin.is_tls());
    wait_until(TIMEOUT, "the TLS worker registers `upper`", || {
        admin
            .status()
            .is_ok_and(|s| s.iter().any(|f| f.name == "upper" && f.workers == 1))
    });

    let gearman = |args: &[&str]| {
        let mut cmd = Command::new(gearman_bin());
        cmd.args(args);
        for var in [
            "GEARMAND_CA_CERTIFICATE",
            "GEARMAN_CLIENT_PEM",
            "GEARMAN_CLIENT_KEY",
        ] {
            cmd.env_remove(var);
        }
        ChildGuard::spawn(cmd).wait_output(Duration::from_secs(10))
    };
    let (ca, cert, key) = (
        pki.arg("ca.pem"),
        pki.arg("client-1.pem"),
        pki.arg("client-1.key"),
    );
    // localhost: the certificate's DNS name is checked, not only its address.
    let out = gearman(&[
        "-S",
        "--ssl-ca-file",
        &ca,
        "--ssl-certificate",
        &cert,
        "--ssl-key",
        &key,
        "-h",
        "localhost",
        "-p",
        &port,
        "-f",
        "upper",
        "hello tls",
    ]);
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), "HELLO TLS");
    let done = worker.wait_output(Duration::from_secs(10));
    assert!(
        done.status.success(),
        "worker failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );

    // -S needs a CA file.
    let out = gearman(&["-S", "-h", "127.0.0.1", "-p", &port, "-f", "upper", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ssl-ca-file"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A CA that did not sign the server's certificate: the tool refuses the server.
    let other = pki.arg("other-ca.pem");
    let out = gearman(&[
        "-S",
        "--ssl-ca-file",
        &other,
        "--ssl-certificate",
        &cert,
        "--ssl-key",
        &key,
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-f",
        "upper",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect") && err.contains("certificate"),
        "{err}"
    );
    // A name the certificate does not carry.
    let out = gearman(&[
        "-S",
        "--ssl-ca-file",
        &ca,
        "--ssl-certificate",
        &cert,
        "--ssl-key",
        &key,
        "--ssl-server-name",
        "elsewhere.example",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-f",
        "upper",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("elsewhere.example"), "{err}");
    // No client certificate, but the server requires one.
    let out = gearman(&[
        "-S",
        "--ssl-ca-file",
        &ca,
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-f",
        "upper",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    // --ssl-* without -S is a usage mistake.
    let out = gearman(&[
        "--ssl-ca-file",
        &ca,
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-f",
        "upper",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs -S"));

    server.assert_alive();
    assert_eq!(admin.version().ok().as_deref(), Some("1.1.20"));
}

/// `Connection` and `AdminClient` over TLS with client certificates: a whole job, a payload
/// of many TLS records, admin lines; the client checks the server's CA and name.
#[test]
fn ours_tls_connection_with_a_client_certificate() {
    let pki = Pki::new();
    let server = Gearmand::start(
        "127.0.0.1",
        &pki.server_args(true),
        Some(&pki.client("admin-1")),
    );
    let addr = server.addr();
    let mut worker = Peer::tls_ok(addr, &pki.client("worker-1"));
    let mut client = Peer::tls_ok(addr, &pki.client("client-1"));
    worker.can_do("reverse");
    worker.echo(b"sync");
    let handle = match client.submit(fg("reverse", "abc")) {
        Response::JobCreated { handle } => handle,
        other => panic!("expected JOB_CREATED, got {other:?}"),
    };
    worker.send(Request::Grab(GrabKind::Plain));
    match worker.recv() {
        Response::JobAssign {
            handle: h, data, ..
        } => {
            assert_eq!(h, handle);
            assert_eq!(data, "abc");
        }
        other => panic!("expected JOB_ASSIGN, got {other:?}"),
    }
    worker.send(Request::WorkComplete {
        handle: handle.clone(),
        data: b("cba"),
    });
    match client.recv() {
        Response::WorkComplete { handle: h, data } => {
            assert_eq!((h, data), (handle, b("cba")));
        }
        other => panic!("expected WORK_COMPLETE, got {other:?}"),
    }
    // 1 MiB: many TLS records each way.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    client.echo(&big);
    assert!(client.admin("status").contains("reverse\t0\t0\t1\n"));

    let mut admin = AdminClient::connect_tls(addr, Some(TIMEOUT), &pki.client("admin-1"))
        .unwrap_or_else(|e| panic!("admin over TLS: {e}"));
    assert_eq!(admin.workers().map(|w| w.len()).ok(), Some(3));

    // The client side refuses: no CA file, another CA, a name the certificate lacks.
    assert!(matches!(
        Peer::tls(addr, &TlsOptions::default()),
        Err(ConnectionError::Tls(TlsError::NoCaFile))
    ));
    let untrusted = TlsOptions {
        ca_file: Some(pki.path("other-ca.pem")),
        ..pki.client("client-1")
    };
    let why = refused(Peer::tls(addr, &untrusted));
    assert!(why.contains("certificate"), "{why}");
    let misnamed = TlsOptions {
        server_name: Some("elsewhere.example".into()),
        ..pki.client("client-1")
    };
    let why = refused(Peer::tls(addr, &misnamed));
    assert!(why.contains("elsewhere.example"), "{why}");
    let half = TlsOptions {
        key: None,
        ..pki.client("client-1")
    };
    assert!(matches!(
        Peer::tls(addr, &half),
        Err(ConnectionError::Tls(TlsError::HalfClientIdentity))
    ));

    server.wait_log("TLS established", 3);
    let log = server.log();
    assert!(
        log.contains("worker-1") && log.contains("client-1"),
        "{log}"
    );
    client.echo(b"still here");
}

// ---- gearadmin -S and gearman-tui -S ---------------------------------------------------

/// `target/<profile>/<name>`: the tools are built next to the test executable's `deps/`.
fn tool_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is inside target/<profile>/deps")
        .join(name);
    assert!(
        bin.is_file(),
        "{name} binary not found at {}: build it with `cargo build --workspace --bins`",
        bin.display()
    );
    bin
}

/// Runs the tool `name` with `args` (bounded), without libgearman's TLS variables or
/// GEARMAN_SERVER unless `env` sets them; returns (exit code, stdout, stderr).
fn run_tool(name: &str, args: &[&str], env: &[(&str, PathBuf)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(tool_bin(name));
    cmd.args(args);
    for var in [
        "GEARMAND_CA_CERTIFICATE",
        "GEARMAN_CLIENT_PEM",
        "GEARMAN_CLIENT_KEY",
        "GEARMAN_SERVER",
    ] {
        cmd.env_remove(var);
    }
    for (var, value) in env {
        cmd.env(var, value);
    }
    let out = ChildGuard::spawn(cmd).wait_output(Duration::from_secs(20));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Two queued jobs for `resize`, submitted over TLS with `options`: the status the tools
/// must show is `resize\t2\t0\t0`.
fn queue_two_jobs(addr: SocketAddr, options: &TlsOptions) {
    let mut client = Peer::tls_ok(addr, options);
    client.submit_bg("resize", "a.png");
    client.submit_bg("resize", "b.png");
}

/// `gearadmin -S` against a TLS gearmand: the status over TLS (the name `localhost` and the
/// address 127.0.0.1 both checked against the certificate), the files from libgearman's
/// variables, and one-line refusals: no CA, another CA, a wrong name, a plain server.
#[test]
fn ours_tls_gearadmin_status() {
    let pki = Pki::new();
    let mut server = Gearmand::start("127.0.0.1", &pki.server_args(false), Some(&pki.anonymous()));
    queue_two_jobs(server.addr(), &pki.anonymous());
    let port = server.port().to_string();
    let ca = pki.arg("ca.pem");
    let expected = "resize\t2\t0\t0\n.\n";
    for host in ["localhost", "127.0.0.1"] {
        let (code, out, err) = run_tool(
            "gearadmin",
            &[
                "-S",
                "--ssl-ca-file",
                &ca,
                "-h",
                host,
                "-p",
                &port,
                "--status",
            ],
            &[],
        );
        assert_eq!((code, err.as_str()), (Some(0), ""), "{host}: {out}");
        assert_eq!(out, expected, "{host}");
    }
    // The CA from GEARMAND_CA_CERTIFICATE, several operations over the one connection.
    let (code, out, err) = run_tool(
        "gearadmin",
        &[
            "--ssl",
            "-h",
            "localhost",
            "-p",
            &port,
            "--server-version",
            "--status",
        ],
        &[("GEARMAND_CA_CERTIFICATE", pki.path("ca.pem"))],
    );
    assert_eq!((code, err.as_str()), (Some(0), ""), "{out}");
    assert_eq!(out, format!("1.1.20\n{expected}"));

    let refusal = |args: &[&str]| {
        let mut all = vec!["-h", "localhost", "-p", &port, "--status"];
        all.extend_from_slice(args);
        let (code, out, err) = run_tool("gearadmin", &all, &[]);
        assert_eq!(code, Some(1), "{args:?}: {out}{err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("Error: "), "{args:?}: {err}");
        err
    };
    let err = refusal(&["-S"]);
    assert!(err.contains("--ssl-ca-file"), "{err}");
    let other = pki.arg("other-ca.pem");
    let err = refusal(&["-S", "--ssl-ca-file", &other]);
    assert!(
        err.contains(&format!(
            "Error connecting to localhost port {port}: TLS handshake failed"
        )) && err.contains("UnknownIssuer"),
        "{err}"
    );
    let err = refusal(&[
        "-S",
        "--ssl-ca-file",
        &ca,
        "--ssl-server-name",
        "elsewhere.example",
    ]);
    assert!(
        err.contains("TLS handshake failed") && err.contains("\"elsewhere.example\""),
        "{err}"
    );
    server.assert_alive();

    let plain = Gearmand::start("127.0.0.1", &[] as &[&str], None);
    let (code, out, err) = run_tool(
        "gearadmin",
        &[
            "-S",
            "--ssl-ca-file",
            &ca,
            "-h",
            "127.0.0.1",
            "-p",
            &plain.port().to_string(),
            "--status",
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("TLS handshake failed"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A gearmand that requires client certificates: gearadmin presents one from the options or
/// from libgearman's variables; without one it is refused with a one-line error.
#[test]
fn ours_tls_gearadmin_with_a_client_certificate() {
    let pki = Pki::new();
    let mut server = Gearmand::start(
        "127.0.0.1",
        &pki.server_args(true),
        Some(&pki.client("admin-1")),
    );
    queue_two_jobs(server.addr(), &pki.client("client-1"));
    let port = server.port().to_string();
    let (ca, cert, key) = (
        pki.arg("ca.pem"),
        pki.arg("admin-1.pem"),
        pki.arg("admin-1.key"),
    );
    let (code, out, err) = run_tool(
        "gearadmin",
        &[
            "-S",
            "--ssl-ca-file",
            &ca,
            "--ssl-certificate",
            &cert,
            "--ssl-key",
            &key,
            "-h",
            "localhost",
            "-p",
            &port,
            "--status",
        ],
        &[],
    );
    assert_eq!((code, err.as_str()), (Some(0), ""), "{out}");
    assert_eq!(out, "resize\t2\t0\t0\n.\n");
    let (code, out, err) = run_tool(
        "gearadmin",
        &["-S", "-h", "127.0.0.1", "-p", &port, "--status"],
        &[
            ("GEARMAND_CA_CERTIFICATE", pki.path("ca.pem")),
            ("GEARMAN_CLIENT_PEM", pki.path("admin-1.pem")),
            ("GEARMAN_CLIENT_KEY", pki.path("admin-1.key")),
        ],
    );
    assert_eq!((code, err.as_str()), (Some(0), ""), "{out}");
    assert_eq!(out, "resize\t2\t0\t0\n.\n");

    // No client certificate: TLS 1.3 reports the refusal at the first read.
    let (code, out, err) = run_tool(
        "gearadmin",
        &[
            "-S",
            "--ssl-ca-file",
            &ca,
            "-h",
            "localhost",
            "-p",
            &port,
            "--status",
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with("Error: --status: ") && err.contains("CertificateRequired"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // A certificate without its key.
    let (code, _, err) = run_tool(
        "gearadmin",
        &[
            "-S",
            "--ssl-ca-file",
            &ca,
            "--ssl-certificate",
            &cert,
            "-h",
            "localhost",
            "-p",
            &port,
            "--status",
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("Error: TLS (-S): ") && err.contains("--ssl-key"),
        "{err}"
    );
    server.wait_log("peer sent no certificates", 1);
    server.assert_alive();
}

/// The fields of the first line of `section` of a `gearman-tui --once` output (0: servers,
/// 1: functions, 2: connections) whose first two fields are `first` and `second`.
fn once_row(text: &str, section: usize, first: &str, second: &str) -> Vec<String> {
    text.split("\n\n")
        .nth(section)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|f| {
            f.first().map(String::as_str) == Some(first)
                && f.get(1).map(String::as_str) == Some(second)
        })
        .unwrap_or_else(|| panic!("no line {first} {second} in section {section} of:\n{text}"))
}

/// `gearman-tui --once -S` prints the snapshot of a TLS server (with and without a client
/// certificate required), and shows a server it cannot verify as down.
#[test]
fn ours_tls_gearman_tui_once() {
    let pki = Pki::new();
    let ca = pki.arg("ca.pem");
    for require_client_certs in [false, true] {
        let probe = if require_client_certs {
            pki.client("admin-1")
        } else {
            pki.anonymous()
        };
        let mut server = Gearmand::start(
            "127.0.0.1",
            &pki.server_args(require_client_certs),
            Some(&probe),
        );
        queue_two_jobs(server.addr(), &probe);
        let target = format!("localhost:{}", server.port());
        let mut args = vec!["--once", "-S", "--ssl-ca-file", &ca, "-h", &target];
        let (cert, key) = (pki.arg("admin-1.pem"), pki.arg("admin-1.key"));
        if require_client_certs {
            args.extend(["--ssl-certificate", &cert, "--ssl-key", &key]);
        }
        let (code, out, err) = run_tool("gearman-tui", &args, &[]);
        assert_eq!(code, Some(0), "{out}{err}");
        // SERVER STATE VERSION PID UPTIME FUNCTIONS WAITING RUNNING WORKERS JOBS ERROR
        let s = once_row(&out, 0, &target, "up");
        assert!(s[2].starts_with("1.1.20"), "{out}");
        assert_eq!(&s[5..10], ["1", "2", "0", "0", "2"], "{out}");
        // SERVER FUNCTION WAITING RUNNING WORKERS HIGH NORMAL LOW OLDEST ALERT
        let f = once_row(&out, 1, &target, "resize");
        assert_eq!(&f[2..8], ["2", "0", "0", "0", "2", "0"], "{out}");

        // Another CA: the server is shown as down, with why, and the exit status is 1.
        let other = pki.arg("other-ca.pem");
        let mut args = vec!["--once", "-S", "--ssl-ca-file", &other, "-h", &target];
        if require_client_certs {
            args.extend(["--ssl-certificate", &cert, "--ssl-key", &key]);
        }
        let (code, out, err) = run_tool("gearman-tui", &args, &[]);
        assert_eq!(code, Some(1), "{out}{err}");
        let s = once_row(&out, 0, &target, "down");
        assert!(s.join(" ").contains("UnknownIssuer"), "{out}");
        server.assert_alive();
    }

    // The files from libgearman's variables; without a CA, one line and exit 1.
    let server = Gearmand::start("127.0.0.1", &pki.server_args(false), Some(&pki.anonymous()));
    let target = format!("127.0.0.1:{}", server.port());
    let (code, out, err) = run_tool(
        "gearman-tui",
        &["--once", "--ssl", "-h", &target],
        &[("GEARMAND_CA_CERTIFICATE", pki.path("ca.pem"))],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&target) && l.contains(" up ")),
        "{out}"
    );
    let (code, out, err) = run_tool("gearman-tui", &["--once", "-S", "-h", &target], &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--ssl-ca-file"), "{err}");
    // The TLS options need -S: a usage error.
    let (code, _, err) = run_tool("gearman-tui", &["--once", "--ssl-ca-file", &ca], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--ssl"), "{err}");
}

/// Checks that a bad TLS attempt is refused and logged, and that a good connection opened
/// before it and one opened after it both work.
fn refused_without_harm(
    pki: &Pki,
    require_client_certs: bool,
    attempt: impl FnOnce(SocketAddr) -> Result<Peer, ConnectionError>,
    log_has: &[&str],
) -> String {
    let probe = if require_client_certs {
        pki.client("admin-1")
    } else {
        pki.anonymous()
    };
    let mut server = Gearmand::start(
        "127.0.0.1",
        &pki.server_args(require_client_certs),
        Some(&probe),
    );
    let addr = server.addr();
    let mut before = Peer::tls_ok(addr, &probe);
    before.can_do("steady");
    before.echo(b"before");
    let why = refused(attempt(addr));
    server.wait_log("TLS handshake failed, closing", 1);
    let log = server.log();
    for needle in log_has {
        assert!(
            log.to_lowercase().contains(&needle.to_lowercase()),
            "log lacks {needle:?}:\n{log}"
        );
    }
    server.assert_alive();
    before.echo(b"before, still");
    let mut after = Peer::tls_ok(addr, &probe);
    after.echo(b"after");
    assert!(after.admin("status").contains("steady\t0\t0\t1\n"));
    why
}

#[test]
fn ours_tls_client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    // Same CN as the real worker-1: the name alone proves nothing.
    let why = refused_without_harm(
        &pki,
        true,
        |addr| Peer::tls(addr, &pki.client("rogue")),
        &["invalid peer certificate: UnknownIssuer"],
    );
    assert!(why.contains("UnknownCA"), "{why}");
}

#[test]
fn ours_tls_expired_client_certificate_is_refused() {
    let pki = Pki::new();
    let why = refused_without_harm(
        &pki,
        true,
        |addr| Peer::tls(addr, &pki.client("expired")),
        &["invalid peer certificate: certificate expired"],
    );
    assert!(why.contains("CertificateExpired"), "{why}");
}

#[test]
fn ours_tls_missing_client_certificate_is_refused_when_the_server_has_a_ca() {
    let pki = Pki::new();
    let why = refused_without_harm(
        &pki,
        true,
        |addr| Peer::tls(addr, &pki.anonymous()),
        &["peer sent no certificates"],
    );
    assert!(why.contains("CertificateRequired"), "{why}");
}

#[test]
fn ours_plaintext_client_on_the_tls_port_is_refused() {
    let pki = Pki::new();
    for require_client_certs in [false, true] {
        let why = refused_without_harm(
            &pki,
            require_client_certs,
            |addr| Ok(Peer::plain(addr)),
            &["corrupt message"],
        );
        assert!(why.contains("closed") || why.contains("reset"), "{why}");
    }
}

/// Unusable TLS files stop the server at start (and `--check-args`), naming the problem.
#[test]
fn ours_tls_bad_files_fail_at_start() {
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.arg("server.pem"),
        pki.arg("server.key"),
        pki.arg("ca.pem"),
    );
    let other_key = pki.arg("worker-1.key");
    let missing = pki.arg("missing.key");
    let cases: [(&[&str], &str); 4] = [
        (&["--ssl", "--ssl-certificate", &cert], "--ssl-key"),
        (
            &["--ssl", "--ssl-certificate", &cert, "--ssl-key", &missing],
            "missing.key",
        ),
        (
            &["--ssl", "--ssl-certificate", &cert, "--ssl-key", &other_key],
            "KeyMismatch",
        ),
        (
            &[
                "--ssl",
                "--ssl-certificate",
                &cert,
                "--ssl-key",
                &key,
                "--ssl-ca-file",
                &key,
            ],
            "no certificate",
        ),
    ];
    for (args, needle) in cases {
        for check in [true, false] {
            let mut all = if check { vec!["--check-args"] } else { vec![] };
            all.extend_from_slice(args);
            let (ok, err) = run_gearmand(&all);
            assert!(!ok, "{all:?} succeeded");
            assert_eq!(err.matches(needle).count(), 1, "{all:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{all:?}: {err}");
        }
    }
    let (ok, err) = run_gearmand(&[
        "--check-args",
        "--ssl",
        "--ssl-certificate",
        &cert,
        "--ssl-key",
        &key,
        "--ssl-ca-file",
        &ca,
    ]);
    assert!(ok, "{err}");
}

// ---- access control ----------------------------------------------------------------

/// Writes `text` as an ACL file in `dir`.
fn acl_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("gearmand.acl");
    fs::write(&path, text).expect("write the ACL file");
    path
}

/// A plain server on 127.0.0.1 with this ACL (and extra args).
fn acl_server(dir: &Path, acl: &str, extra: &[&str]) -> Gearmand {
    let path = acl_file(dir, acl);
    let mut args = vec!["--acl".to_string(), path.display().to_string()];
    args.extend(extra.iter().map(ToString::to_string));
    Gearmand::start("127.0.0.1", &args, None)
}

/// The names of the functions with at least one worker in `status`.
fn registered(status: &str) -> Vec<String> {
    status
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 4 && f[3] != "0").then(|| f[0].to_string())
        })
        .collect()
}

#[test]
fn ours_acl_can_do_and_submit_by_pattern() {
    let dir = scratch("acl");
    let acl = "# workers may register these\n\
               [any]\n\
               can_do = resize, thumb_*\n\
               submit = thumb_*, report   # and submit to these\n\
               admin = read\n";
    let mut server = acl_server(&dir, acl, &[]);
    let addr = server.addr();
    let mut worker = Peer::plain(addr);
    worker.can_do("resize");
    worker.can_do("thumb_small");
    worker.can_do("evil");
    worker.expect_denied(DENIED_CAN_DO);
    worker.send(Request::CanDoTimeout {
        function: b("evil_too"),
        timeout_ms: Some(1000),
    });
    worker.expect_denied(DENIED_CAN_DO);
    worker.echo(b"sync");
    let status = worker.admin("status");
    assert_eq!(registered(&status), ["resize", "thumb_small"], "{status}");

    let mut client = Peer::plain(addr);
    client.submit_bg("thumb_small", "pic");
    client.submit_bg("report", "q3");
    match client.submit(fg("resize", "pic")) {
        Response::Error { code, text } => {
            assert_eq!((code, text), (b("PERMISSION_DENIED"), b(DENIED_SUBMIT)))
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    client.send(Request::Submit(SubmitJob {
        priority: Priority::High,
        ..bg("evil", "x")
    }));
    client.expect_denied(DENIED_SUBMIT);
    // The denied submissions left nothing behind; the allowed job reaches the worker.
    assert_eq!(
        client.admin("show jobs").lines().count(),
        3,
        "two jobs and `.`"
    );
    worker.send(Request::Grab(GrabKind::Plain));
    assert!(matches!(
        worker.recv(),
        Response::JobAssign { function, .. } if function == "thumb_small"
    ));
    server.wait_log("ACL:", 4);
    let log = server.log();
    assert!(log.contains("may not register evil_too"), "{log}");
    assert!(log.contains("may not submit to resize"), "{log}");
    server.assert_alive();
    let _ = fs::remove_dir_all(dir);
}

/// A many-star pattern against a 20,000-byte name costs the processing thread next to
/// nothing: a neighbour's ECHO right after the hostile CAN_DO and SUBMIT comes back promptly.
/// (A backtracking glob took minutes here, stalling every client.)
#[test]
fn ours_acl_hostile_pattern_and_long_name_stall_no_one() {
    let dir = scratch("acl");
    let acl = "[any]\ncan_do = a*a*a*a*a*a*a*a*b\nsubmit = a*a*a*a*a*a*a*a*b\n";
    let mut server = acl_server(&dir, acl, &[]);
    let addr = server.addr();
    let name = "a".repeat(20_000);
    let mut hostile = Peer::plain(addr);
    let mut neighbour = Peer::plain(addr);
    hostile.can_do(&name);
    hostile.send(Request::Submit(bg(&name, "x")));
    let started = Instant::now();
    // Let the hostile packets reach the processing thread first.
    thread::sleep(Duration::from_millis(100));
    neighbour.echo(b"still there?");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "a neighbour's ECHO waited {waited:?} behind a hostile name"
    );
    hostile.expect_denied(DENIED_CAN_DO);
    hostile.expect_denied(DENIED_SUBMIT);
    // A matching name is still granted.
    let mut fine = Peer::plain(addr);
    fine.submit_bg(&format!("{name}b"), "x");
    server.assert_alive();
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn ours_acl_admin_families() {
    let dir = scratch("acl");
    let acl = "[any]\ncan_do = *\nsubmit = *\nadmin = read\n";
    let mut server = acl_server(&dir, acl, &[]);
    let addr = server.addr();
    let mut c = Peer::plain(addr);
    let handle = c.submit_bg("f", "x");
    let handle = String::from_utf8_lossy(&handle).into_owned();
    for read in ["status", "workers", "show jobs", "prioritystatus"] {
        assert!(c.admin(read).ends_with(".\n"), "{read}");
    }
    assert!(c.admin("version").starts_with("OK "));
    assert!(c.admin("getpid").starts_with("OK "));
    let refused = [
        format!("cancel job {handle}"),
        "shutdown".into(),
        "shutdown graceful".into(),
        "maxqueue f 1 1 1".into(),
        "create function g".into(),
        "drop function f".into(),
    ];
    for line in &refused {
        assert_eq!(c.admin(line), DENIED_ADMIN, "{line}");
    }
    // Nothing happened: the job is there, the server runs.
    assert!(c.admin("show jobs").contains(&handle));
    let mut admin = AdminClient::connect(addr, Some(TIMEOUT)).expect("admin connect");
    assert!(matches!(
        admin.cancel_job(&handle),
        Err(AdminError::Server { code, .. }) if code == "PERMISSION_DENIED"
    ));
    assert_eq!(admin.status().map(|s| s.len()).ok(), Some(1));
    server.wait_log("ACL: admin command refused", refused.len() + 1);
    server.assert_alive();
    Peer::plain(addr).echo(b"alive");
    let _ = fs::remove_dir_all(dir);
}

/// `[cert:NAME]` matches the client certificate's CN: worker-1 may register, client-1 may
/// submit, and neither may do the other's part.
#[test]
fn ours_acl_identity_from_the_client_certificate() {
    let pki = Pki::new();
    let acl = acl_file(
        &pki.dir,
        "[cert:worker-1]\ncan_do = resize\n\
         [cert:client-1]\nsubmit = resize\n\
         [cert:admin-1]\nadmin = all\n\
         [any]\nadmin = read\n",
    );
    let mut args = pki.server_args(true);
    args.extend(["--acl".to_string(), acl.display().to_string()]);
    let mut server = Gearmand::start("127.0.0.1", &args, Some(&pki.client("admin-1")));
    let addr = server.addr();
    let mut worker = Peer::tls_ok(addr, &pki.client("worker-1"));
    let mut client = Peer::tls_ok(addr, &pki.client("client-1"));
    client.can_do("resize");
    client.expect_denied(DENIED_CAN_DO);
    worker.submit(fg("resize", "x"));
    worker.can_do("resize");
    worker.echo(b"sync");
    // The worker's SUBMIT was answered with a denial before the echo.
    let handle = match client.submit(fg("resize", "big.png")) {
        Response::JobCreated { handle } => handle,
        other => panic!("expected JOB_CREATED, got {other:?}"),
    };
    worker.send(Request::Grab(GrabKind::Plain));
    assert!(matches!(worker.recv(), Response::JobAssign { handle: h, .. } if h == handle));
    worker.send(Request::WorkComplete {
        handle: handle.clone(),
        data: b("small.png"),
    });
    assert!(matches!(
        client.recv(),
        Response::WorkComplete { data, .. } if data == "small.png"
    ));
    assert_eq!(client.admin("cancel job H:host:1"), DENIED_ADMIN);
    let mut admin = Peer::tls_ok(addr, &pki.client("admin-1"));
    assert_eq!(admin.admin("create function made"), "OK\r\n");
    server.wait_log("may not", 2);
    let log = server.log();
    assert!(log.contains("may not register resize"), "{log}");
    assert!(log.contains("may not submit to resize"), "{log}");
    server.assert_alive();
}

/// `[addr:IP]` and `[addr:IP/BITS]` match the peer's address: connections from 127.0.0.1,
/// .2 and .5 to a server on 0.0.0.0 get different rights.
#[test]
fn ours_acl_address_sections() {
    let dir = scratch("acl");
    let acl = acl_file(
        &dir,
        "[addr:127.0.0.2]\nsubmit = *\nadmin = read, cancel\n\
         [addr:127.0.0.4/30]\ncan_do = *\n\
         [any]\nadmin = read\n",
    );
    let acl = acl.display().to_string();
    let mut server = Gearmand::start("0.0.0.0", &["--acl", &acl], None);
    let port = server.port();
    let localhost = Ipv4Addr::new(127, 0, 0, 1);
    let (two, five) = (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 5));

    let mut one = Peer::plain_from(localhost, port);
    let mut submitter = Peer::plain_from(two, port);
    let mut worker = Peer::plain_from(five, port);
    let handle = submitter.submit_bg("work", "x");
    let handle = String::from_utf8_lossy(&handle).into_owned();
    one.send(Request::Submit(bg("work", "y")));
    one.expect_denied(DENIED_SUBMIT);
    worker.send(Request::Submit(bg("work", "z")));
    worker.expect_denied(DENIED_SUBMIT);
    one.can_do("work");
    one.expect_denied(DENIED_CAN_DO);
    submitter.can_do("work");
    submitter.expect_denied(DENIED_CAN_DO);
    worker.can_do("work");
    worker.echo(b"sync");
    let workers = one.admin("workers");
    assert!(
        workers
            .lines()
            .any(|l| l.contains("127.0.0.5") && l.ends_with(": work")),
        "{workers}"
    );
    assert_eq!(one.admin(&format!("cancel job {handle}")), DENIED_ADMIN);
    assert_eq!(worker.admin(&format!("cancel job {handle}")), DENIED_ADMIN);
    assert_eq!(submitter.admin(&format!("cancel job {handle}")), "OK\r\n");
    server.wait_log("may not", 4);
    let log = server.log();
    assert!(
        log.contains("ACL: 127.0.0.1 may not submit to work"),
        "{log}"
    );
    assert!(
        log.contains("ACL: 127.0.0.5 may not submit to work"),
        "{log}"
    );
    assert!(
        log.contains("ACL: 127.0.0.2 may not register work"),
        "{log}"
    );
    server.assert_alive();
    let _ = fs::remove_dir_all(dir);
}

/// SIGHUP reloads the ACL for new and existing connections; a broken file is refused with
/// its line number in the log and the ACL in force stays.
#[test]
fn ours_acl_reload_on_sighup() {
    let dir = scratch("acl");
    let mut server = acl_server(&dir, "[any]\nsubmit = alpha\nadmin = read\n", &[]);
    let addr = server.addr();
    let mut early = Peer::plain(addr);
    early.submit_bg("alpha", "1");
    early.send(Request::Submit(bg("beta", "1")));
    early.expect_denied(DENIED_SUBMIT);

    acl_file(&dir, "[any]\nsubmit = beta\nadmin = read\n");
    server.signal("HUP");
    server.wait_log("access control list reloaded", 1);
    for peer in [&mut early, &mut Peer::plain(addr)] {
        peer.submit_bg("beta", "2");
        peer.send(Request::Submit(bg("alpha", "2")));
        peer.expect_denied(DENIED_SUBMIT);
    }

    acl_file(
        &dir,
        "[any]\nsubmit = alpha, beta\nadmin = read, everything\n",
    );
    server.signal("HUP");
    server.wait_log("ACL not reloaded", 1);
    let log = server.log();
    assert!(log.contains("line 3"), "{log}");
    assert_eq!(server.log_count("access control list reloaded"), 1);
    for peer in [&mut early, &mut Peer::plain(addr)] {
        peer.submit_bg("beta", "3");
        peer.send(Request::Submit(bg("alpha", "3")));
        peer.expect_denied(DENIED_SUBMIT);
        assert!(peer.admin("status").ends_with(".\n"));
    }
    server.assert_alive();
    let _ = fs::remove_dir_all(dir);
}

/// Runs gearmand with `args` until it exits (bounded); returns (success, stderr).
fn run_gearmand(args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(harness::gearmand_bin());
    let port = free_port().to_string();
    cmd.args(["-L", "127.0.0.1", "-p", &port, "-l", "stderr"])
        .args(args);
    let out = ChildGuard::spawn(cmd).wait_output(Duration::from_secs(10));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ours_acl_broken_at_start_or_check_args_fails_with_the_line() {
    let dir = scratch("acl");
    let bad = acl_file(&dir, "# fine\n[any]\nsubmit = *\ncan_do: x\n");
    let bad = bad.display().to_string();
    let (ok, err) = run_gearmand(&["--acl", &bad]);
    assert!(!ok, "started with a broken ACL");
    assert!(err.contains("line 4"), "{err}");
    let (ok, err) = run_gearmand(&["--check-args", "--acl", &bad]);
    assert!(!ok, "--check-args accepted a broken ACL");
    assert!(err.contains("line 4"), "{err}");
    let bad_section = dir.join("section.acl");
    fs::write(&bad_section, "[any]\n[somebody]\n").expect("write");
    let (ok, err) = run_gearmand(&["--check-args", "--acl", &bad_section.display().to_string()]);
    assert!(!ok && err.contains("line 2"), "{err}");
    let missing = dir.join("missing.acl").display().to_string();
    let (ok, err) = run_gearmand(&["--check-args", "--acl", &missing]);
    assert!(!ok && err.contains("missing.acl"), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "said once: {err}");
    let good = dir.join("good.acl");
    fs::write(&good, "[any]\nadmin = all\n").expect("write");
    let (ok, err) = run_gearmand(&["--check-args", "--acl", &good.display().to_string()]);
    assert!(ok, "{err}");
    let _ = fs::remove_dir_all(dir);
}

// ---- limits ------------------------------------------------------------------------

/// `\0REQ` header of type `kind` announcing `size` payload bytes.
fn header(kind: u32, size: u32) -> Vec<u8> {
    let mut h = b"\0REQ".to_vec();
    h.extend_from_slice(&kind.to_be_bytes());
    h.extend_from_slice(&size.to_be_bytes());
    h
}

const ECHO_REQ: u32 = 16;

/// Waits (bounded) for `needle` in the log of a harness server: lines are written
/// asynchronously.
fn wait_for_log(server: &Server, needle: &str) {
    wait_until(TIMEOUT, &format!("log line {needle:?}"), || {
        server.log().contains(needle)
    });
}

#[test]
fn ours_limit_oversized_packet_closes_only_that_connection() {
    let mut server = Server::start(&["--max-packet-size", "1024", "--verbose", "WARNING"]);
    let mut worker = server.connect();
    worker.register(&["f"]);
    let mut client = server.connect();
    let handle = client.submit_fg("f", "u", "in flight");
    let mut bad = server.connect();
    bad.send_raw(&header(ECHO_REQ, 4096));
    bad.expect_closed();
    // Exactly the limit is fine.
    client.echo(&[b'x'; 1024]);
    let (h, _, data) = worker.grab();
    assert_eq!((&h, &data[..]), (&handle, &b"in flight"[..]));
    worker.complete(&h, b"done");
    client.expect(Response::WorkComplete {
        handle,
        data: b("done"),
    });
    wait_for_log(&server, "bad input, closing connection");
    server.assert_healthy();
}

#[test]
fn ours_limit_long_admin_line_closes_only_that_connection() {
    let mut server = Server::start(&["--max-admin-line", "64", "--verbose", "WARNING"]);
    let mut admin = server.connect();
    assert!(admin.admin("status").ends_with(".\n"));
    let mut bad = server.connect();
    bad.send_raw(format!("show {}\r\n", "x".repeat(100)).as_bytes());
    bad.expect_closed();
    // Without a line end at all, too.
    let mut bad = server.connect();
    bad.send_raw("y".repeat(100).as_bytes());
    bad.expect_closed();
    assert_eq!(
        admin.admin(&format!("cancel job H:host:{}", "9".repeat(40))),
        "ERR UNKNOWN_JOB\r\n"
    );
    assert!(admin.admin("workers").ends_with(".\n"));
    server.assert_healthy();
}

/// A connection that gets past the limit (ECHO answered), or `None` when closed.
fn admitted(addr: SocketAddr) -> Option<Peer> {
    let mut peer = Peer::plain(addr);
    peer.try_echo(b"in?").ok().map(|()| peer)
}

#[test]
fn ours_limit_max_connections_refuses_the_fourth() {
    let mut server = Server::start(&["--max-connections", "3", "--verbose", "WARNING"]);
    let addr = server.addr();
    // The start-up probe's connection may still hold a slot for a moment.
    let take = || {
        let mut got = None;
        wait_until(TIMEOUT, "a connection is admitted", || {
            got = admitted(addr);
            got.is_some()
        });
        got.expect("admitted")
    };
    let mut held: Vec<Peer> = (0..3).map(|_| take()).collect();
    let mut fourth = Peer::plain(addr);
    assert!(fourth.try_echo(b"one too many").is_err());
    wait_for_log(&server, "connection limit reached");
    for (i, peer) in held.iter_mut().enumerate() {
        peer.echo(format!("held {i}").as_bytes());
    }
    // A slot freed is a slot for the next one.
    held.pop();
    held.push(take());
    assert!(admitted(addr).is_none());
    assert!(held[0].admin("status").ends_with(".\n"));
    server.assert_alive();
}

/// How many descriptors the process `pid` has open.
pub fn open_descriptors(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the server's descriptors")
        .count()
}

/// The lowest descriptor number the process `pid` does not use: with the open-files limit
/// set to it, the next descriptor it opens fails with EMFILE, even when a descriptor
/// closed earlier left a gap below the highest one (which counting would miss).
pub fn lowest_free_descriptor(pid: u32) -> usize {
    let used: std::collections::BTreeSet<usize> = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the server's descriptors")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|fd| !used.contains(fd)).unwrap_or_default()
}

/// Sets the soft open-files limit of the running process `pid` (the hard limit stays, so
/// the soft one may be raised again).
pub fn set_open_files_limit(pid: u32, limit: usize) {
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={limit}:"))
        .status()
        .expect("run prlimit (util-linux)");
    assert!(
        status.success(),
        "prlimit --nofile={limit} failed: {status}"
    );
}

#[test]
fn ours_out_of_descriptors_backs_off_and_takes_the_waiting_connections_later() {
    out_of_descriptors("4");
}

/// With `-t 0` the listener shares the one thread with the connections.
#[test]
fn ours_out_of_descriptors_single_threaded() {
    out_of_descriptors("0");
}

/// Out of descriptors (EMFILE): accepting backs off, the open connections stay served,
/// and the connections waiting in the backlog get in as descriptors free up.
fn out_of_descriptors(threads: &str) {
    let mut server = Server::start(&["-t", threads, "--verbose", "WARNING"]);
    let addr = server.addr();
    let mut first = Peer::plain(addr);
    first.echo(b"before");
    let open = open_descriptors(server.pid());
    // Room for two more connections (three if the start-up probe was still counted).
    set_open_files_limit(server.pid(), open + 2);
    let mut admitted: Vec<Peer> = (0..2).map(|_| Peer::plain(addr)).collect();
    for (i, peer) in admitted.iter_mut().enumerate() {
        peer.echo(format!("admitted {i}").as_bytes());
    }
    // These complete the TCP handshake in the listen backlog; accepting them fails.
    let mut waiting: Vec<Peer> = (0..6).map(|_| Peer::plain(addr)).collect();
    wait_for_log(&server, "accept failed");
    // Everyone already in is still served.
    first.echo(b"still served");
    for peer in &mut admitted {
        peer.echo(b"still served");
    }
    // Descriptors freed by closing connections go to the waiting ones, oldest first.
    drop(first);
    drop(admitted);
    for (i, peer) in waiting.iter_mut().take(3).enumerate() {
        peer.echo(format!("in after a close {i}").as_bytes());
    }
    // A raised limit lets the rest in.
    set_open_files_limit(server.pid(), 1024);
    for (i, peer) in waiting.iter_mut().enumerate() {
        peer.echo(format!("in {i}").as_bytes());
    }
    Peer::plain(addr).echo(b"a new one");
    server.assert_alive();
}

#[test]
fn ours_limit_non_reading_client_is_dropped_at_max_outbox() {
    let mut server = Server::start(&["--max-outbox", "65536", "--verbose", "WARNING"]);
    let addr = server.addr();
    let mut other = server.connect();
    other.echo(b"before");
    // Sends 16 MiB of ECHO requests and never reads the replies, then a small ECHO every
    // 50 ms until a write fails because the server dropped it (at most 20 s).
    let (done_tx, done_rx) = mpsc::channel();
    let flooder = thread::spawn(move || {
        let result = (|| -> std::io::Result<bool> {
            let mut s = TcpStream::connect(addr)?;
            s.set_write_timeout(Some(Duration::from_secs(10)))?;
            let mut packet = header(ECHO_REQ, 256 * 1024);
            packet.resize(packet.len() + 256 * 1024, b'z');
            for _ in 0..64 {
                if s.write_all(&packet).is_err() {
                    return Ok(true);
                }
            }
            let mut small = header(ECHO_REQ, 4);
            small.extend_from_slice(b"more");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if s.write_all(&small).is_err() {
                    return Ok(true);
                }
                thread::sleep(Duration::from_millis(50));
            }
            Ok(false)
        })();
        let _ = done_tx.send(result);
    });
    // Meanwhile the other client is answered.
    let big = vec![b'q'; 256 * 1024];
    for _ in 0..4 {
        other.echo(&big);
    }
    let dropped = done_rx
        .recv_timeout(Duration::from_secs(40))
        .expect("the flooding client finishes in time");
    let _ = flooder.join();
    assert!(
        dropped.expect("the flood connected"),
        "the server never dropped the client that does not read"
    );
    wait_for_log(&server, "peer is not reading its replies");
    for _ in 0..2 {
        other.echo(&big);
    }
    server.assert_healthy();
}

#[test]
fn ours_limit_partial_timeout_closes_half_frames_not_idle_connections() {
    let mut server = Server::start(&["--partial-timeout", "1", "--verbose", "WARNING"]);
    let started = Instant::now();
    let mut idle = server.connect();
    idle.echo(b"then nothing");
    let mut sleeper = server.connect();
    sleeper.register(&["nap"]);
    sleeper.pre_sleep();
    let mut silent = server.connect();

    let mut half_packet = server.connect();
    half_packet.send_raw(&header(ECHO_REQ, 16)[..10]);
    let mut half_line = server.connect();
    half_line.send_raw(b"stat");
    half_packet.expect_closed();
    half_line.expect_closed();
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Well past the limit, the idle connections are still served.
    thread::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed()));
    idle.echo(b"still here");
    silent.echo(b"me too");
    let mut client = server.connect();
    client.submit_bg("nap", "u", "wake up");
    sleeper.expect(Response::Noop);
    wait_until(TIMEOUT, "two partial-timeout log lines", || {
        server.log().matches("incomplete frame timed out").count() == 2
    });
    server.assert_healthy();
}

// ---- HTTPS on the HTTP port ------------------------------------------------------------

/// One HTTP/1.1 request over TLS to `port`; the whole response (the server closes it).
fn https_request(port: u16, options: &TlsOptions, request: &str) -> Result<String, String> {
    use std::io::Read;
    let connector = gearman_shared::tls::TlsConnector::new(options).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let mut stream = connector
        .connect(tcp, "127.0.0.1", Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .tcp()
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the header and the announced body are in.
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if response.len() >= end + 4 + length {
                break;
            }
        }
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[test]
fn ours_https_serves_status_and_jobs_and_refuses_plain_http() {
    let pki = Pki::new();
    let http_port = free_port();
    let mut args = pki.server_args(false);
    args.extend([
        "-r".into(),
        "http".into(),
        "--http-port".into(),
        http_port.to_string(),
    ]);
    let mut server = Gearmand::start("127.0.0.1", &args, Some(&pki.anonymous()));
    let anonymous = pki.anonymous();
    wait_until(Duration::from_secs(5), "the HTTPS port answers", || {
        https_request(
            http_port,
            &anonymous,
            "GET /status HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .is_ok()
    });
    let status = https_request(
        http_port,
        &anonymous,
        "GET /status HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .expect("GET /status over TLS");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(status.contains("\"functions\""), "{status}");

    let background = https_request(
        http_port,
        &anonymous,
        "POST /tls-job HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\nContent-Length: 5\r\n\r\nhello",
    )
    .expect("background job over HTTPS");
    assert!(background.starts_with("HTTP/1.1 200"), "{background}");
    assert!(
        background
            .to_ascii_lowercase()
            .contains("x-gearman-command: job_created"),
        "{background}"
    );

    // A plaintext HTTP client on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(("127.0.0.1", http_port)).expect("connect");
    plain.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    plain
        .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plaintext answered: {answer:?}"
    );
    server.wait_log("HTTPS handshake failed", 1);
    server.assert_alive();
}

/// With `--ssl-ca-file` the HTTPS port asks for client certificates too, and the
/// certificate's identity is what the ACL's `[cert:…]` sections see for HTTP submissions.
#[test]
fn ours_https_client_certificates_reach_the_acl() {
    let pki = Pki::new();
    let http_port = free_port();
    let acl = acl_file(
        &pki.dir,
        "[cert:client-1]\nsubmit = resize\n[cert:admin-1]\nadmin = all\n",
    );
    let mut args = pki.server_args(true);
    args.extend([
        "--acl".into(),
        acl.display().to_string(),
        "-r".into(),
        "http".into(),
        "--http-port".into(),
        http_port.to_string(),
    ]);
    let mut server = Gearmand::start("127.0.0.1", &args, Some(&pki.client("admin-1")));
    let submit = "POST /resize HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\n\
                  Connection: close\r\nContent-Length: 3\r\n\r\npng";
    let mut allowed = Err(String::new());
    wait_until(Duration::from_secs(5), "the HTTPS port answers", || {
        allowed = https_request(http_port, &pki.client("client-1"), submit);
        allowed.is_ok()
    });
    let allowed = allowed.expect("client-1 submits over HTTPS");
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(
        allowed
            .to_ascii_lowercase()
            .contains("x-gearman-command: job_created"),
        "{allowed}"
    );
    let denied = https_request(http_port, &pki.client("worker-1"), submit)
        .expect("worker-1 is answered over HTTPS");
    assert!(denied.starts_with("HTTP/1.1 503"), "{denied}");
    assert!(denied.contains("PERMISSION_DENIED"), "{denied}");
    // Without a certificate there is no HTTPS connection at all.
    let anonymous = https_request(http_port, &pki.anonymous(), submit);
    assert!(
        anonymous.as_ref().map_or(true, |r| !r.starts_with("HTTP/")),
        "{anonymous:?}"
    );
    server.wait_log("may not submit to resize", 1);
    let mut admin = Peer::tls_ok(server.addr(), &pki.client("admin-1"));
    assert_eq!(admin.admin("status"), "resize\t1\t0\t0\n.\n");
    server.assert_alive();
}
