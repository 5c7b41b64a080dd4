//! The HTTP protocol (`-r http --http-port P`, shared/docs/protocol.md §6 with our fixes): job
//! submission through `surf` and raw sockets, results and errors as status codes, headers,
//! keep-alive, size limits, abandoned requests, and the C `gearman` worker serving HTTP-submitted
//! jobs.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use async_std::task::block_on;
use bytes::Bytes;
use gearman_shared::connection::Connection;
use gearman_shared::protocol::{GrabKind, Priority, Request, Response};
use surf::http::Method;

use crate::harness::{b, bg_job, esc, h, is_timeout, wait_until, ChildGuard, Server, TIMEOUT};

// --- helpers shared with stats.rs ---

/// A free loopback port for the HTTP listener (the harness picks the Gearman port itself).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for a free port");
    listener.local_addr().expect("local_addr").port()
}

/// A server with the HTTP listener on a second free port, and that port.
pub fn start_http(extra: &[&str]) -> (Server, u16) {
    let port = free_port().to_string();
    let mut args = vec!["-r", "http", "--http-port", port.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    (server, port.parse().expect("a port number"))
}

/// `http://127.0.0.1:<port><path>`.
pub fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// A whole HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// `(lower-case name, value)`, one entry per value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The value of a header (any case), if present exactly once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        let mut values = self.headers.iter().filter(|(n, _)| *n == name);
        let first = values.next().map(|(_, v)| v.as_str());
        assert!(values.next().is_none(), "header {name} repeated: {self:?}");
        first
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `req` on a client of its own (no connection shared with other tests) and reads the
/// whole response, within [`TIMEOUT`].
pub fn send(req: surf::RequestBuilder) -> Reply {
    let req = req.build();
    let what = format!("{} {}", req.method(), req.url());
    block_on(async {
        let client = surf::Client::new();
        let exchange = async {
            let mut res = client.send(req).await?;
            let body = res.body_bytes().await?;
            let headers = res
                .iter()
                .flat_map(|(name, values)| {
                    let name = name.as_str().to_ascii_lowercase();
                    values
                        .iter()
                        .map(move |v| (name.clone(), v.as_str().to_string()))
                })
                .collect();
            Ok::<_, surf::Error>(Reply {
                status: res.status().into(),
                headers,
                body,
            })
        };
        match async_std::future::timeout(TIMEOUT, exchange).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => panic!("{what}: {e}"),
            Err(_) => panic!("{what}: no response within {TIMEOUT:?}"),
        }
    })
}

/// `GET <path>`.
pub fn get(port: u16, path: &str) -> Reply {
    send(surf::get(url(port, path)))
}

/// `POST <path>` with this body and extra headers.
pub fn post(port: u16, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
    let mut req = surf::post(url(port, path)).body(surf::Body::from_bytes(body.to_vec()));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    send(req)
}

/// Sends a request on another thread, so the test can act while it waits for its result.
pub fn spawn_send(req: surf::RequestBuilder) -> JoinHandle<Reply> {
    thread::spawn(move || send(req))
}

/// Joins a helper thread; its reads are bounded, so this is too.
pub fn finish<T>(thread: JoinHandle<T>) -> T {
    thread
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The checks every response of ours passes: our Server header, a Content-Length that is the
/// body length.
fn assert_framing(r: &Reply) {
    assert_eq!(r.header("Server"), Some("Gearman/1.1.20"), "{r:?}");
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str()),
        "{r:?}"
    );
}

/// Asserts a Gearman result response: status, command, handle and body.
fn assert_result(r: &Reply, status: u16, command: &str, handle: &Bytes, body: &[u8]) {
    let shown = format!("{r:?} (body \"{}\")", esc(&r.body));
    assert_eq!(r.status, status, "{shown}");
    assert_eq!(r.header("X-Gearman-Command"), Some(command), "{shown}");
    let handle = String::from_utf8_lossy(handle);
    assert_eq!(
        r.header("X-Gearman-Job-Handle"),
        Some(handle.as_ref()),
        "{shown}"
    );
    assert_eq!(esc(&r.body), esc(body), "{shown}");
    assert_framing(r);
}

// --- a raw-packet worker ---

/// One job as the worker received it.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub handle: Bytes,
    pub function: Bytes,
    pub unique: Bytes,
    pub data: Bytes,
}

/// How long a worker thread waits for all its jobs.
const WORKER_LIMIT: Duration = Duration::from_secs(10);

/// A worker thread on a raw [`Connection`]: registers `functions` (done when this returns),
/// then serves `jobs` jobs with GRAB_JOB_UNIQ, sending what `script` returns for each, and
/// sleeps (PRE_SLEEP, NOOP) when there is nothing to do. Every read is bounded, so the thread
/// always ends; it returns the jobs in the order it got them.
pub fn worker(
    addr: SocketAddr,
    functions: &[&str],
    jobs: usize,
    script: impl Fn(&Assigned) -> Vec<Request> + Send + 'static,
) -> JoinHandle<Vec<Assigned>> {
    let mut conn = Connection::connect(addr, Some(TIMEOUT)).expect("worker connects");
    conn.set_read_timeout(Some(TIMEOUT))
        .expect("set read timeout");
    for function in functions {
        conn.send(Request::CanDo {
            function: b(function),
        })
        .expect("worker sends CAN_DO");
    }
    conn.send(Request::Echo {
        data: b("registered"),
    })
    .expect("worker sends ECHO");
    match conn.read_response() {
        Ok(Response::Echo { .. }) => {}
        other => panic!("worker: expected ECHO_RES after CAN_DO, got {other:?}"),
    }
    thread::spawn(move || {
        let deadline = Instant::now() + WORKER_LIMIT;
        let mut got = Vec::new();
        while got.len() < jobs {
            assert!(
                Instant::now() < deadline,
                "worker: {} of {jobs} jobs within {WORKER_LIMIT:?}: {got:?}",
                got.len()
            );
            conn.send(Request::Grab(GrabKind::Uniq))
                .expect("worker sends GRAB_JOB_UNIQ");
            match conn.read_response().expect("worker reads the GRAB reply") {
                Response::JobAssignUniq {
                    handle,
                    function,
                    unique,
                    data,
                } => {
                    let job = Assigned {
                        handle,
                        function,
                        unique,
                        data,
                    };
                    for request in script(&job) {
                        conn.send(request).expect("worker sends a WORK_* packet");
                    }
                    got.push(job);
                }
                Response::NoJob => {
                    conn.send(Request::PreSleep)
                        .expect("worker sends PRE_SLEEP");
                    conn.set_read_timeout(Some(Duration::from_millis(500)))
                        .expect("set read timeout");
                    match conn.read_response() {
                        Ok(Response::Noop) => {}
                        Err(e) if is_timeout(&e) => {}
                        other => panic!("worker: expected NOOP, got {other:?}"),
                    }
                    conn.set_read_timeout(Some(TIMEOUT))
                        .expect("set read timeout");
                }
                other => panic!("worker: unexpected reply to GRAB_JOB_UNIQ: {other:?}"),
            }
        }
        // Every packet sent was processed before the thread ends (and the connection closes).
        conn.send(Request::Echo { data: b("done") })
            .expect("worker sends ECHO");
        match conn.read_response() {
            Ok(Response::Echo { .. }) => {}
            other => panic!("worker: expected ECHO_RES at the end, got {other:?}"),
        }
        got
    })
}

/// WORK_COMPLETE with this result.
pub fn complete(job: &Assigned, data: &[u8]) -> Request {
    Request::WorkComplete {
        handle: job.handle.clone(),
        data: b(data),
    }
}

// --- raw HTTP, for what surf would not send or would hide ---

/// A raw TCP connection to the HTTP port.
struct RawHttp {
    stream: TcpStream,
    /// Received and not yet consumed.
    buf: Vec<u8>,
}

impl RawHttp {
    fn connect(port: u16) -> RawHttp {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP port");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(TIMEOUT))
            .expect("set write timeout");
        RawHttp {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send an HTTP request");
    }

    /// Reads more bytes; `false` at EOF or reset.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => false,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!(
                    "no complete HTTP response within {TIMEOUT:?}; got \"{}\"",
                    esc(&self.buf)
                )
            }
            Err(e) => panic!("reading an HTTP response: {e}"),
        }
    }

    /// Reads one response. Its body is framed by Content-Length, except after HEAD, which has
    /// none.
    fn response(&mut self, head: bool) -> Reply {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(
                self.fill(),
                "connection closed before a complete response head: \"{}\"",
                esc(&self.buf)
            );
        };
        let head_text = String::from_utf8(self.buf[..end].to_vec()).expect("ASCII head");
        self.buf.drain(..end + 4);
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (name, value) = l.split_once(':').expect("header line with a colon");
                (name.to_ascii_lowercase(), value.trim().to_string())
            })
            .collect();
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if !head {
            let len: usize = reply
                .header("Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no Content-Length in {reply:?}"));
            while self.buf.len() < len {
                assert!(self.fill(), "connection closed inside a body");
            }
            reply.body = self.buf.drain(..len).collect();
        }
        reply
    }

    /// Checks nothing more arrives for `ms` milliseconds and the connection stays open.
    fn expect_silence(&mut self, ms: u64) {
        assert!(self.buf.is_empty(), "extra bytes \"{}\"", esc(&self.buf));
        self.stream
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .expect("set read timeout");
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Ok(0) => panic!("the server closed the connection"),
            Ok(n) => panic!("unexpected bytes \"{}\"", esc(&chunk[..n])),
            Err(e) => panic!("reading: {e}"),
        }
        self.stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("set read timeout");
    }

    /// Everything the server sends until it closes the connection (within [`TIMEOUT`]).
    fn until_closed(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }
}

/// `function\ttotal\trunning\tworkers` via the admin protocol.
fn status_of(server: &Server, function: &str) -> Option<(u64, u64, u64)> {
    server.connect().status_of(function)
}

// --- foreground results ---

/// Out of descriptors, the HTTP listener backs off like the Gearman one: the job port's
/// open connections stay served, and the waiting HTTP request is answered once the limit
/// is raised.
#[test]
fn ours_http_out_of_descriptors_backs_off_and_recovers() {
    let (mut server, port) = start_http(&["--verbose", "WARNING"]);
    let mut client = server.connect();
    client.echo(b"before");
    // Not the count of open descriptors: a gap below the highest one (a connection closed
    // since the HTTP thread made its event loop) would let the accept succeed.
    let free = crate::security::lowest_free_descriptor(server.pid());
    crate::security::set_open_files_limit(server.pid(), free);
    let mut waiting = TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP port");
    waiting
        .set_read_timeout(Some(TIMEOUT))
        .expect("set read timeout");
    waiting
        .write_all(b"GET /status HTTP/1.0\r\n\r\n")
        .expect("send a request");
    wait_until(TIMEOUT, "the failed HTTP accept is logged", || {
        server.log().contains("HTTP accept failed")
    });
    client.echo(b"still served");
    crate::security::set_open_files_limit(server.pid(), 1024);
    let mut answer = Vec::new();
    waiting
        .read_to_end(&mut answer)
        .expect("the waiting request is answered");
    let answer = String::from_utf8_lossy(&answer);
    // An HTTP/1.0 request is answered in HTTP/1.0 (hyper's choice).
    assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer}");
    assert_eq!(get(port, "/status").status, 200);
    server.assert_healthy();
}

#[test]
fn fix_post_returns_every_work_data_chunk_then_the_complete_data() {
    let (server, port) = start_http(&[]);
    let w = worker(server.addr(), &["f"], 1, |job| {
        let handle = job.handle.clone();
        vec![
            Request::WorkData {
                handle: handle.clone(),
                data: b("chunk1,"),
            },
            // Neither status nor a warning ends the request.
            Request::WorkStatus {
                handle: handle.clone(),
                numerator: b("1"),
                denominator: b("2"),
            },
            Request::WorkWarning {
                handle: handle.clone(),
                data: b("careful"),
            },
            Request::WorkData {
                handle,
                data: b("chunk2,"),
            },
            complete(job, b"done"),
        ]
    });
    let r = post(port, "/f", b"the workload", &[]);
    assert_result(&r, 200, "WORK_COMPLETE", &h(1), b"chunk1,chunk2,done");
    let jobs = finish(w);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].function, "f");
    assert_eq!(jobs[0].data, "the workload");
    // The default unique is empty (the C server uses `-`, coalescing on the data).
    assert_eq!(jobs[0].unique, "");
    assert_eq!(status_of(&server, "f"), Some((0, 0, 0)));
}

#[test]
fn fix_put_sends_its_body_and_get_and_head_send_an_empty_workload() {
    let (server, port) = start_http(&[]);
    let w = worker(server.addr(), &["echo"], 3, |job| {
        let mut out = b"RESULT:".to_vec();
        out.extend_from_slice(&job.data);
        vec![complete(job, &out)]
    });
    let r = send(surf::put(url(port, "/echo")).body(surf::Body::from_bytes(b"abc".to_vec())));
    assert_result(&r, 200, "WORK_COMPLETE", &h(1), b"RESULT:abc");
    let r = get(port, "/echo");
    assert_result(&r, 200, "WORK_COMPLETE", &h(2), b"RESULT:");

    // HEAD: the same headers, and no body at all (raw socket: surf would hide stray bytes).
    // The connection stays usable, which proves no body bytes were left behind.
    let mut raw = RawHttp::connect(port);
    raw.send(b"HEAD /echo HTTP/1.1\r\nHost: test\r\n\r\n");
    let r = raw.response(true);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("X-Gearman-Command"),
        Some("WORK_COMPLETE"),
        "{r:?}"
    );
    assert_eq!(r.header("X-Gearman-Job-Handle"), Some("H:host:3"), "{r:?}");
    assert_eq!(r.header("Server"), Some("Gearman/1.1.20"), "{r:?}");
    raw.expect_silence(300);
    raw.send(b"GET /status HTTP/1.1\r\nHost: test\r\n\r\n");
    let r = raw.response(false);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text().starts_with('{'), "{r:?}");

    let workloads: Vec<Bytes> = finish(w).into_iter().map(|j| j.data).collect();
    assert_eq!(workloads, [b("abc"), b(""), b("")]);
}

#[test]
fn fix_work_fail_is_a_500_with_the_whole_handle_and_no_body() {
    let (server, port) = start_http(&[]);
    let w = worker(server.addr(), &["fails"], 1, |job| {
        vec![
            Request::WorkData {
                handle: job.handle.clone(),
                data: b("partial"),
            },
            Request::WorkFail {
                handle: job.handle.clone(),
            },
        ]
    });
    // Handle 1 would be shortened to `H:host:` by the C server's bug; use a two-digit one.
    let mut c = server.connect();
    for i in 0..9 {
        c.submit(bg_job("filler", "", i.to_string(), Priority::Normal));
    }
    let r = post(port, "/fails", b"x", &[]);
    assert_result(&r, 500, "WORK_FAIL", &h(10), b"");
    finish(w);
}

#[test]
fn fix_work_exception_is_a_500_with_the_exception_text() {
    let (server, port) = start_http(&[]);
    let w = worker(server.addr(), &["throws"], 1, |job| {
        vec![Request::WorkException {
            handle: job.handle.clone(),
            data: b("boom: it broke"),
        }]
    });
    let r = post(port, "/throws", b"x", &[]);
    assert_result(&r, 500, "WORK_EXCEPTION", &h(1), b"boom: it broke");
    finish(w);
}

#[test]
fn ours_a_full_queue_is_a_503_with_the_error_code_and_text() {
    let (server, port) = start_http(&[]);
    let mut c = server.connect();
    assert_eq!(c.submit_bg("q", "", "first"), h(1));
    assert_eq!(c.admin("maxqueue q 1"), "OK\r\n");
    for background in ["false", "true"] {
        let r = post(port, "/q", b"x", &[("X-Gearman-Background", background)]);
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.header("X-Gearman-Command"), Some("ERROR"), "{r:?}");
        assert_eq!(r.text(), "QUEUE_ERROR: Job queue is full", "{r:?}");
        assert_framing(&r);
    }
    // The refusals created nothing and used no handle number.
    assert_eq!(status_of(&server, "q"), Some((1, 0, 0)));
    assert_eq!(c.admin("maxqueue q 0"), "OK\r\n");
    let r = post(port, "/q", b"x", &[("X-Gearman-Background", "true")]);
    assert_result(&r, 200, "JOB_CREATED", &h(2), b"");
}

// --- background and priorities ---

#[test]
fn ours_background_requests_answer_at_job_created_and_the_job_waits_for_a_worker() {
    let (server, port) = start_http(&[]);
    let r = post(port, "/bg", b"payload", &[("X-Gearman-Background", "true")]);
    assert_result(&r, 200, "JOB_CREATED", &h(1), b"");
    let r = send(surf::get(url(port, "/bg")).header("X-Gearman-Background", "true"));
    assert_result(&r, 200, "JOB_CREATED", &h(2), b"");
    assert_eq!(status_of(&server, "bg"), Some((2, 0, 0)));
    // Anything but `true` is a foreground request: it waits for its result.
    let fg = spawn_send(
        surf::post(url(port, "/bg"))
            .header("X-Gearman-Background", "yes")
            .body(surf::Body::from_bytes(b"fg".to_vec())),
    );
    wait_until(TIMEOUT, "the third job queued", || {
        status_of(&server, "bg") == Some((3, 0, 0))
    });
    let w = worker(server.addr(), &["bg"], 3, |job| vec![complete(job, b"ok")]);
    assert_result(&finish(fg), 200, "WORK_COMPLETE", &h(3), b"ok");
    let workloads: Vec<Bytes> = finish(w).into_iter().map(|j| j.data).collect();
    assert_eq!(workloads, [b("payload"), b(""), b("fg")]);
}

#[test]
fn ours_priority_headers_queue_high_before_normal_before_low() {
    let (server, port) = start_http(&[]);
    for (priority, data) in [
        (Some("low"), "low"),
        (None, "normal"),
        (Some("high"), "high"),
    ] {
        let mut headers = vec![("X-Gearman-Background", "true")];
        if let Some(p) = priority {
            headers.push(("X-Gearman-Priority", p));
        }
        let r = post(port, "/prio", data.as_bytes(), &headers);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let mut admin = server.connect();
    assert_eq!(
        admin.admin("prioritystatus"),
        "prio\t1\t1\t1\t0\n.\n",
        "one job at each priority"
    );
    let w = worker(server.addr(), &["prio"], 3, |job| vec![complete(job, b"")]);
    let order: Vec<Bytes> = finish(w).into_iter().map(|j| j.data).collect();
    assert_eq!(order, [b("high"), b("normal"), b("low")]);
}

// --- unique IDs ---

#[test]
fn fix_without_a_unique_header_identical_requests_are_separate_jobs() {
    let (server, port) = start_http(&[]);
    for n in 1..=2 {
        let r = post(port, "/same", b"data", &[("X-Gearman-Background", "true")]);
        assert_result(&r, 200, "JOB_CREATED", &h(n), b"");
    }
    // With the header, background requests coalesce.
    for _ in 0..2 {
        let r = post(
            port,
            "/same",
            b"other",
            &[("X-Gearman-Background", "true"), ("X-Gearman-Unique", "u1")],
        );
        assert_result(&r, 200, "JOB_CREATED", &h(3), b"");
    }
    let w = worker(server.addr(), &["same"], 3, |_| Vec::new());
    let uniques: Vec<Bytes> = finish(w).into_iter().map(|j| j.unique).collect();
    assert_eq!(uniques, [b(""), b(""), b("u1")]);
}

#[test]
fn ours_the_unique_header_coalesces_concurrent_foreground_requests_into_one_job() {
    let (server, port) = start_http(&[]);
    let request = |data: &str| {
        surf::post(url(port, "/co"))
            .header("X-Gearman-Unique", "shared")
            .body(surf::Body::from_bytes(data.as_bytes().to_vec()))
    };
    let first = spawn_send(request("first"));
    wait_until(TIMEOUT, "the first request's job queued", || {
        status_of(&server, "co") == Some((1, 0, 0))
    });
    let second = spawn_send(request("second"));
    // GET_STATUS_UNIQUE counts the clients attached to the job.
    let mut c = server.connect();
    wait_until(TIMEOUT, "the second request attached", || {
        c.send(Request::GetStatusUnique {
            unique: b("shared"),
        });
        matches!(c.recv(), Response::StatusUnique { clients: 2, .. })
    });
    assert_eq!(status_of(&server, "co"), Some((1, 0, 0)), "still one job");
    let w = worker(server.addr(), &["co"], 1, |job| {
        vec![
            Request::WorkData {
                handle: job.handle.clone(),
                data: b("for both:"),
            },
            complete(job, &job.data),
        ]
    });
    for reply in [finish(first), finish(second)] {
        assert_result(&reply, 200, "WORK_COMPLETE", &h(1), b"for both:first");
    }
    let jobs = finish(w);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].unique, "shared");
    let mut admin = gearman_shared::admin::AdminClient::connect(server.addr(), Some(TIMEOUT))
        .expect("admin connects");
    let stats = admin.stats_report().expect("stats");
    assert_eq!(stats.functions.len(), 1);
    assert_eq!(stats.functions[0].submitted, 1, "{stats:?}");
    assert_eq!(stats.functions[0].completed, 1, "{stats:?}");
}

// --- request form ---

#[test]
fn ours_the_path_is_percent_decoded_into_the_function_name() {
    let (server, port) = start_http(&[]);
    let w = worker(server.addr(), &["caf\u{e9} au/lait"], 1, |job| {
        vec![complete(job, &job.function)]
    });
    let r = post(port, "/caf%C3%A9%20au%2Flait", b"", &[]);
    assert_result(
        &r,
        200,
        "WORK_COMPLETE",
        &h(1),
        "caf\u{e9} au/lait".as_bytes(),
    );
    finish(w);
}

#[test]
fn fix_an_empty_function_is_404() {
    let (mut server, port) = start_http(&[]);
    for (method, path) in [
        (Method::Get, "/"),
        (Method::Post, "/"),
        (Method::Put, "//"),
        (Method::Head, "/"),
    ] {
        let r = send(surf::RequestBuilder::new(
            method,
            url(port, path).parse().expect("url"),
        ));
        assert_eq!(r.status, 404, "{method} {path}: {r:?}");
        assert_eq!(r.header("Server"), Some("Gearman/1.1.20"), "{r:?}");
        assert!(r.body.is_empty(), "{r:?}");
        assert_eq!(r.header("X-Gearman-Job-Handle"), None, "{r:?}");
    }
    assert_eq!(
        server.connect().admin("status"),
        ".\n",
        "no job, no function"
    );
    server.assert_healthy();
}

#[test]
fn fix_other_methods_are_405_with_allow() {
    let (server, port) = start_http(&[]);
    for method in [
        Method::Delete,
        Method::Patch,
        Method::Options,
        Method::Trace,
    ] {
        let r = send(surf::RequestBuilder::new(
            method,
            url(port, "/f").parse().expect("url"),
        ));
        assert_eq!(r.status, 405, "{method}: {r:?}");
        let allow: Vec<String> = r
            .header("Allow")
            .unwrap_or_else(|| panic!("{method}: no Allow header: {r:?}"))
            .split(',')
            .map(|m| m.trim().to_string())
            .collect();
        for m in ["GET", "HEAD", "POST", "PUT"] {
            assert!(allow.iter().any(|a| a == m), "{method}: Allow {allow:?}");
        }
        assert_eq!(r.header("Server"), Some("Gearman/1.1.20"), "{r:?}");
    }
    assert_eq!(
        server.connect().admin("status"),
        ".\n",
        "no job, no function"
    );
}

#[test]
fn ours_a_body_over_http_max_body_is_413_and_creates_nothing() {
    let (mut server, port) = start_http(&["--http-max-body", "1000"]);
    let background = [("X-Gearman-Background", "true")];
    // With a Content-Length.
    let r = post(port, "/big", &[b'x'; 1001], &background);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.header("Server"), Some("Gearman/1.1.20"), "{r:?}");
    // Chunked: the size is known only while reading.
    let chunked = surf::Body::from_reader(async_std::io::Cursor::new(vec![b'y'; 1500]), None);
    let r = send(
        surf::put(url(port, "/big"))
            .header("X-Gearman-Background", "true")
            .body(chunked),
    );
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(
        server.connect().admin("status"),
        ".\n",
        "no job, no function"
    );
    // The limit itself is accepted, chunked or not.
    let r = post(port, "/big", &[b'x'; 1000], &background);
    assert_result(&r, 200, "JOB_CREATED", &h(1), b"");
    let chunked = surf::Body::from_reader(async_std::io::Cursor::new(vec![b'y'; 1000]), None);
    let r = send(
        surf::put(url(port, "/big"))
            .header("X-Gearman-Background", "true")
            .body(chunked),
    );
    assert_result(&r, 200, "JOB_CREATED", &h(2), b"");
    let w = worker(server.addr(), &["big"], 2, |_| Vec::new());
    let sizes: Vec<usize> = finish(w).into_iter().map(|j| j.data.len()).collect();
    assert_eq!(sizes, [1000, 1000]);
    server.assert_healthy();
}

// --- connections ---

#[test]
fn ours_keep_alive_serves_several_requests_on_one_connection() {
    let (server, port) = start_http(&[]);
    let w = worker(server.addr(), &["ka"], 3, |job| {
        let mut out = job.data.to_vec();
        out.extend_from_slice(b"!");
        vec![complete(job, &out)]
    });
    let mut raw = RawHttp::connect(port);
    for (n, data) in [(1, "one"), (2, "two"), (3, "three")] {
        raw.send(
            format!(
                "POST /ka HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{data}",
                data.len()
            )
            .as_bytes(),
        );
        let r = raw.response(false);
        assert_result(
            &r,
            200,
            "WORK_COMPLETE",
            &h(n),
            format!("{data}!").as_bytes(),
        );
    }
    // A background request and the status page on the same connection too.
    raw.send(b"GET /ka HTTP/1.1\r\nHost: test\r\nX-Gearman-Background: true\r\n\r\n");
    let r = raw.response(false);
    assert_result(&r, 200, "JOB_CREATED", &h(4), b"");
    raw.send(b"GET /status HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(raw.response(false).status, 200);
    raw.expect_silence(100);
    finish(w);
}

/// Pipelining: the second request is sent before the first is answered.
#[test]
fn ours_pipelined_requests_are_all_answered() {
    let (_server, port) = start_http(&[]);
    let mut raw = RawHttp::connect(port);
    raw.send(
        b"GET /p HTTP/1.1\r\nHost: test\r\nX-Gearman-Background: true\r\n\r\n\
          GET /p HTTP/1.1\r\nHost: test\r\nX-Gearman-Background: true\r\n\r\n",
    );
    assert_result(&raw.response(false), 200, "JOB_CREATED", &h(1), b"");
    assert_result(&raw.response(false), 200, "JOB_CREATED", &h(2), b"");
}

/// HTTP/1.0 is what the C server's documentation and clients such as ApacheBench use.
#[test]
fn http_1_0_requests_are_answered() {
    let (_server, port) = start_http(&[]);
    let mut raw = RawHttp::connect(port);
    raw.send(b"POST /old HTTP/1.0\r\nContent-Length: 5\r\nX-Gearman-Background: true\r\n\r\nhello");
    let reply = raw.until_closed();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1."), "{text:?}");
    assert!(text.contains(" 200 "), "{text:?}");
}

#[test]
fn fix_malformed_requests_are_closed_or_400_and_the_server_carries_on() {
    let (mut server, port) = start_http(&[]);
    let long_header = format!(
        "GET /f HTTP/1.1\r\nHost: t\r\nX-Long: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let cases: [&[u8]; 8] = [
        b"GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /x HTTP/9.9\r\nHost: t\r\n\r\n",
        b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n",
        b"\x00\x00\x00\x00\xff\xfe\r\n\r\n",
        // async-h1 panicked on this one: header values must be ASCII for http-types.
        b"GET /x HTTP/1.1\r\nHost: t\r\nX-Gearman-Unique: \xc3\xa9\r\n\r\n",
        long_header.as_bytes(),
    ];
    for request in cases {
        let mut raw = RawHttp::connect(port);
        raw.send(request);
        let reply = raw.until_closed();
        let too_large = request.len() > 16 * 1024;
        assert!(
            reply.is_empty()
                || reply.starts_with(b"HTTP/1.1 400 ")
                || (too_large && reply.starts_with(b"HTTP/1.1 431 ")),
            "request \"{}\": expected close or 400 (431 when too large), got \"{}\"",
            esc(&request[..request.len().min(60)]),
            esc(&reply)
        );
    }
    // A Gearman packet on the HTTP port is no HTTP either.
    let mut raw = RawHttp::connect(port);
    raw.send(b"\0REQ\0\0\0\x10\0\0\0\x04ping");
    raw.send(b"\r\n\r\n");
    let reply = raw.until_closed();
    assert!(
        reply.is_empty() || reply.starts_with(b"HTTP/1.1 400 "),
        "{}",
        esc(&reply)
    );
    server.assert_healthy();
    assert_eq!(get(port, "/status").status, 200);
    assert_eq!(
        server.connect().admin("status"),
        ".\n",
        "no job, no function"
    );
}

/// A body in a transfer coding other than chunked is not handed to a worker still
/// encoded: 501, and no job.
#[test]
fn fix_transfer_codings_other_than_chunked_are_501() {
    let (mut server, port) = start_http(&[]);
    for coding in ["gzip, chunked", "deflate,chunked"] {
        let mut raw = RawHttp::connect(port);
        raw.send(
            format!(
                "POST /coded HTTP/1.1\r\nHost: test\r\nX-Gearman-Background: true\r\n\
                 Transfer-Encoding: {coding}\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            )
            .as_bytes(),
        );
        // Answered, then closed: the rest of the refused body must not pass for a request.
        let reply = raw.until_closed();
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("HTTP/1.1 501 "), "{coding}: {text}");
        assert!(text.contains("Gearman/1.1.20"), "{coding}: {text}");
    }
    assert_eq!(
        server.connect().admin("status"),
        ".\n",
        "no job, no function"
    );
    // Plain chunked still works.
    let mut raw = RawHttp::connect(port);
    raw.send(
        b"POST /coded HTTP/1.1\r\nHost: test\r\nX-Gearman-Background: true\r\n\
          Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_result(&raw.response(false), 200, "JOB_CREATED", &h(1), b"");
    server.assert_healthy();
}

#[test]
fn a_client_that_disconnects_abandons_its_queued_job() {
    let (server, port) = start_http(&[]);
    let mut raw = RawHttp::connect(port);
    raw.send(b"POST /gone HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nwork");
    wait_until(TIMEOUT, "the job queued", || {
        status_of(&server, "gone") == Some((1, 0, 0))
    });
    let mut admin = server.connect();
    assert_eq!(admin.show_jobs(), [("H:host:1".to_string(), 0, 0, 0)]);
    drop(raw);
    wait_until(TIMEOUT, "the job marked IGNORE", || {
        admin.show_jobs() == [("H:host:1".to_string(), 0, 1, 0)]
    });
    // Until a worker meets it, it still counts as queued.
    assert_eq!(admin.status_of("gone"), Some((1, 0, 0)));
    let mut w = server.connect();
    w.register(&["gone"]);
    w.grab_none();
    assert_eq!(admin.show_jobs(), []);
    assert_eq!(admin.status_of("gone"), Some((0, 0, 1)));
}

#[test]
fn a_client_that_disconnects_while_its_job_runs_leaves_the_worker_alone() {
    let (server, port) = start_http(&[]);
    let mut raw = RawHttp::connect(port);
    raw.send(b"GET /gone HTTP/1.1\r\nHost: test\r\n\r\n");
    wait_until(TIMEOUT, "the job queued", || {
        status_of(&server, "gone") == Some((1, 0, 0))
    });
    let mut w = server.connect();
    w.register(&["gone"]);
    let (handle, _, _) = w.grab();
    drop(raw);
    let mut admin = server.connect();
    wait_until(TIMEOUT, "the job marked IGNORE", || {
        admin.show_jobs() == [("H:host:1".to_string(), 0, 1, 0)]
    });
    // The result is accepted and dropped, without an error to the worker.
    w.complete(&handle, b"nobody listens");
    w.expect_nothing(200);
    assert_eq!(admin.show_jobs(), []);
    assert_eq!(admin.status_of("gone"), Some((0, 0, 1)));
}

// --- the C worker ---

const GEARMAN: &str = "/usr/bin/gearman";

fn c_gearman(server: &Server, args: &[&str]) -> Command {
    assert!(
        Path::new(GEARMAN).is_file(),
        "{GEARMAN} is missing: install the Debian package gearman-tools \
         (`apt-get install gearman-tools`, or run tests/run.sh as root)"
    );
    let mut cmd = Command::new(GEARMAN);
    cmd.arg("-h")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(server.port().to_string())
        .args(args)
        .env_remove("GEARMAN_SERVER");
    cmd
}

#[test]
fn ours_the_c_worker_serves_http_submitted_jobs() {
    let (server, port) = start_http(&[]);
    // Foreground: the command's output comes back as the body.
    let _worker = ChildGuard::spawn(c_gearman(&server, &["-w", "-f", "rev", "--", "rev"]));
    wait_until(TIMEOUT, "the C worker registered", || {
        status_of(&server, "rev").is_some_and(|(_, _, workers)| workers == 1)
    });
    let r = post(port, "/rev", b"hello", &[]);
    assert_result(&r, 200, "WORK_COMPLETE", &h(1), b"olleh");
    let r = post(port, "/rev", b"stressed", &[]);
    assert_eq!((r.status, r.text()), (200, "desserts".to_string()), "{r:?}");

    // Background: the C worker prints the workload (-c 1: one job, then exit).
    let r = post(port, "/bgc", b"bgdata", &[("X-Gearman-Background", "true")]);
    assert_result(&r, 200, "JOB_CREATED", &h(3), b"");
    let out = ChildGuard::spawn(c_gearman(&server, &["-w", "-c", "1", "-f", "bgc"]))
        .wait_output(Duration::from_secs(15));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bgdata");
    assert_eq!(status_of(&server, "bgc"), Some((0, 0, 0)));
}
