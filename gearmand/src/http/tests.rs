//! The HTTP port against a stand-in processing thread, over loopback sockets: framing
//! (pipelining, chunked bodies, HTTP/1.0, `Expect`), the refusals (400, 405, 408, 413,
//! 431, 501), and that a refused request submits nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use async_std::channel::Sender;
use bytes::Bytes;
use futures::channel::mpsc;

use super::*;
use crate::reactor::Reactor;

/// How long a test waits for any answer.
const LIMIT: Duration = Duration::from_secs(10);

/// A running HTTP port: its address, the submissions it made, and its stop signal
/// (dropping it stops the port).
struct Port {
    addr: SocketAddr,
    submitted: Arc<Mutex<Vec<SubmitJob>>>,
    _stop: Sender<()>,
}

/// Starts the port on a loop thread of its own, with a processor that answers every
/// foreground job with `<function> <workload length>` and background ones at
/// JOB_CREATED.
fn start(max_body: usize, timeouts: Timeouts) -> Port {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("address");
    let (events, mut inbox) = mpsc::channel::<Event>(16);
    let submitted = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&submitted);
    std::thread::spawn(move || {
        let mut outboxes = std::collections::HashMap::new();
        let mut handles = 0;
        while let Some(event) = futures::executor::block_on(inbox.next()) {
            match event {
                Event::Connected { conn, outbox, .. } => {
                    outboxes.insert(conn, outbox);
                }
                Event::Disconnected { conn } => {
                    outboxes.remove(&conn);
                }
                Event::Input { conn, items } => {
                    for item in items {
                        let Incoming::Request(Request::Submit(job)) = item else {
                            continue;
                        };
                        handles += 1;
                        let handle = Bytes::from(format!("H:t:{handles}"));
                        let mut answer = vec![Outgoing::Packet(Response::JobCreated {
                            handle: handle.clone(),
                        })];
                        if job.mode == JobMode::Foreground {
                            let data = format!(
                                "{} {}",
                                String::from_utf8_lossy(&job.function),
                                job.data.len()
                            );
                            answer.push(Outgoing::Packet(Response::WorkComplete {
                                handle,
                                data: Bytes::from(data),
                            }));
                        }
                        record.lock().expect("submissions").push(job);
                        if let Some(outbox) = outboxes.get(&conn) {
                            let _ = outbox.unbounded_send(answer);
                        }
                    }
                }
                _ => {}
            }
        }
    });
    let (stop, stopped) = channel::bounded(1);
    let mut context = HttpContext::new(events, max_body);
    context.timeouts = timeouts;
    let reactor = Reactor::new().expect("event loop");
    std::thread::spawn(move || reactor.block_on(run(listener, context, None, stopped)));
    Port {
        addr,
        submitted,
        _stop: stop,
    }
}

fn start_default() -> Port {
    start(100, Timeouts::default())
}

impl Port {
    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(LIMIT)).expect("read timeout");
        stream
    }

    /// Sends `request` on a new connection and returns all that comes back until the
    /// server closes it.
    fn exchange(&self, request: &[u8]) -> String {
        let mut stream = self.connect();
        stream.write_all(request).expect("send");
        until_closed(&mut stream)
    }

    fn submissions(&self) -> usize {
        self.submitted.lock().expect("submissions").len()
    }
}

/// Everything until the server closes the connection.
fn until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no close within {LIMIT:?} ({e}); got {:?}", lossy(&out)),
        }
    }
    lossy(&out)
}

/// Reads until `count` complete answers (head and Content-Length body) have arrived.
fn answers(stream: &mut TcpStream, count: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < count {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().expect("a length"));
            if buf.len() >= end + 4 + length {
                out.push(lossy(&buf[..end + 4 + length]));
                buf.drain(..end + 4 + length);
                continue;
            }
        }
        let n = stream.read(&mut chunk).expect("an answer");
        assert!(n > 0, "closed after {out:?}, with {:?} left", lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    out
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn function_names_are_percent_decoded() {
    assert_eq!(function_name("/reverse"), "reverse");
    assert_eq!(function_name("//a%20b"), "a b");
    assert_eq!(function_name("/100%"), "100%");
    assert_eq!(function_name("/"), "");
}

#[test]
fn only_plain_chunked_transfer_encodings_are_taken() {
    let mut headers = HeaderMap::new();
    assert!(plain_chunked(&headers));
    headers.insert("transfer-encoding", HeaderValue::from_static("Chunked"));
    assert!(plain_chunked(&headers));
    headers.insert(
        "transfer-encoding",
        HeaderValue::from_static("gzip, chunked"),
    );
    assert!(!plain_chunked(&headers));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let port = start_default();
    let mut stream = port.connect();
    stream
        .write_all(
            b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n\
              POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz\
              POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              2\r\nhi\r\n1;x\r\n!\r\n0\r\n\r\n",
        )
        .expect("send");
    let got = answers(&mut stream, 3);
    for (answer, body) in got.iter().zip(["a 0", "b 3", "c 3"]) {
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
        assert!(answer.ends_with(&format!("\r\n\r\n{body}")), "{got:?}");
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("server: gearman/1.1.20\r\n"), "{answer}");
        assert!(
            lower.contains("x-gearman-command: work_complete\r\n"),
            "{answer}"
        );
    }
}

#[test]
fn a_head_in_one_byte_pieces_is_answered() {
    let port = start_default();
    let mut stream = port.connect();
    stream.set_nodelay(true).expect("nodelay");
    for byte in b"POST /f HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi" {
        stream.write_all(&[*byte]).expect("send a byte");
    }
    let got = answers(&mut stream, 1);
    assert!(got[0].ends_with("\r\n\r\nf 2"), "{got:?}");
}

#[test]
fn http_1_0_is_answered_and_closed_unless_asked_to_keep_alive() {
    let port = start_default();
    let out = port.exchange(b"GET /old HTTP/1.0\r\n\r\n");
    assert!(out.starts_with("HTTP/1.0 200 OK\r\n"), "{out}");
    assert!(out.ends_with("old 0"), "{out}");
    let mut stream = port.connect();
    for _ in 0..2 {
        stream
            .write_all(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .expect("send");
        let got = answers(&mut stream, 1);
        assert!(got[0].contains("ka 0"), "{got:?}");
        assert!(
            got[0]
                .to_ascii_lowercase()
                .contains("connection: keep-alive"),
            "{got:?}"
        );
    }
}

#[test]
fn expect_100_continue_gets_its_interim_answer() {
    let port = start_default();
    let mut stream = port.connect();
    stream
        .write_all(
            b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        )
        .expect("send the head");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"body").expect("send the body");
    let got = answers(&mut stream, 1);
    assert!(got[0].ends_with("e 4"), "{got:?}");
}

#[test]
fn head_answers_carry_the_length_and_no_body() {
    let port = start_default();
    let mut stream = port.connect();
    stream
        .write_all(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /g HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    // The HEAD answer's Content-Length is that of the GET answer; had a body followed,
    // it would show up in front of the second answer.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while lossy(&buf).matches("HTTP/1.1 200 OK").count() < 2 || !lossy(&buf).ends_with("g 0") {
        let n = stream.read(&mut chunk).expect("answers");
        assert!(n > 0, "closed: {:?}", lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = lossy(&buf);
    let (first, second) = text.split_at(text.rfind("HTTP/1.1 200 OK").expect("two"));
    assert!(first.ends_with("\r\n\r\n"), "{text}");
    assert!(
        first.to_ascii_lowercase().contains("content-length: 3\r\n"),
        "{text}"
    );
    assert!(second.ends_with("\r\n\r\ng 0"), "{text}");
}

#[test]
fn oversized_bodies_are_413_submit_nothing_and_close() {
    let port = start_default();
    let out = port.exchange(
        b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert_eq!(out.matches("HTTP/1.1").count(), 1, "{out}");
    let mut chunked = b"POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    chunked.extend_from_slice(b"40\r\n");
    chunked.extend_from_slice(&[b'x'; 64]);
    chunked.extend_from_slice(b"\r\n40\r\n");
    chunked.extend_from_slice(&[b'x'; 64]);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let out = port.exchange(&chunked);
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert_eq!(port.submissions(), 0);
    // The limit itself is fine.
    let mut exact =
        b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_vec();
    exact.extend_from_slice(&[b'x'; 100]);
    let out = port.exchange(&exact);
    assert!(out.ends_with("a 100"), "{out}");
}

#[test]
fn malformed_heads_are_400_or_431_and_submit_nothing() {
    let port = start_default();
    for request in [
        &b"GET /x HTTP/9.9\r\nHost: t\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        // Not ASCII: refused, never a panic.
        b"GET /x HTTP/1.1\r\nHost: t\r\nX-Gearman-Unique: \xc3\xa9\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let out = port.exchange(request);
        assert!(
            out.starts_with("HTTP/1.1 400 "),
            "{:?}: {out}",
            lossy(request)
        );
    }
    let long = format!(
        "GET /x HTTP/1.1\r\nHost: t\r\nX-Long: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let out = port.exchange(long.as_bytes());
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    let out = port.exchange(format!("GET /x HTTP/1.1\r\n{many}\r\n").as_bytes());
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    assert_eq!(port.submissions(), 0);
}

#[test]
fn other_methods_are_405_with_allow() {
    let port = start_default();
    for (request, allow) in [
        (
            &b"DELETE /f HTTP/1.1\r\nHost: t\r\n\r\n"[..],
            "GET, HEAD, POST, PUT",
        ),
        (
            b"BREW /f HTTP/1.1\r\nHost: t\r\n\r\n",
            "GET, HEAD, POST, PUT",
        ),
        (b"POST /status HTTP/1.1\r\nHost: t\r\n\r\n", "GET, HEAD"),
    ] {
        let mut stream = port.connect();
        stream.write_all(request).expect("send");
        let got = answers(&mut stream, 1);
        assert!(got[0].starts_with("HTTP/1.1 405 "), "{got:?}");
        assert!(
            got[0]
                .to_ascii_lowercase()
                .contains(&format!("allow: {}\r\n", allow.to_ascii_lowercase())),
            "{got:?}"
        );
    }
    assert_eq!(port.submissions(), 0);
}

#[test]
fn transfer_codings_other_than_chunked_are_501() {
    let port = start_default();
    let out = port.exchange(
        b"POST /z HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 501 "), "{out}");
    assert_eq!(port.submissions(), 0);
}

#[test]
fn slow_heads_and_bodies_are_408_and_idle_connections_just_close() {
    let timeouts = Timeouts {
        head: Duration::from_millis(300),
        body: Duration::from_millis(300),
        handshake: Duration::from_secs(5),
    };
    let port = start(100, timeouts);
    let out = port.exchange(b"GET /slow HTTP/1.1\r\nHost:");
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("server: gearman/1.1.20"),
        "{out}"
    );
    let out = port.exchange(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    // Idle after an answer: closed without a word.
    let mut stream = port.connect();
    stream
        .write_all(b"GET /idle HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let got = answers(&mut stream, 1);
    assert!(got[0].ends_with("idle 0"), "{got:?}");
    assert_eq!(until_closed(&mut stream), "");
    assert_eq!(port.submissions(), 1);
}
