//! HTTP/1.0 and HTTP/1.1 framing for the HTTP protocol: reads request heads and bodies
//! off one connection, hands each request to tide, writes each answer back, and keeps
//! the connection for the next request when both sides want that.
//!
//! Ours rather than async-h1's because async-h1 panics on header values that are not
//! ASCII (http-types unwraps the conversion), closes HTTP/1.0 connections without an
//! answer, and drops requests pipelined behind the first. Parsing is httparse's; this
//! module holds only the framing rules of RFC 9112 that a job-submission server needs.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tide::http::headers::{HeaderName, HeaderValue};
use tide::http::{Method, Request, Response, StatusCode, Url, Version};

/// Longest request head (request line and headers) accepted; longer ones get 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted in one request; more get 431.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
/// Read granularity.
const READ_SIZE: usize = 8 * 1024;
/// A buffer this short is parsed before its head is complete, to refuse non-HTTP early.
const EARLY_PARSE: usize = 1024;

/// What one connection may cost.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body; larger ones get 413 and the connection is closed.
    pub max_body: usize,
    /// How long a request head may take, counted from the end of the previous answer
    /// (so it is also the keep-alive idle time).
    pub head_timeout: Duration,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
}

/// Addresses of the connection, passed on to the handlers.
#[derive(Clone, Copy, Debug)]
pub struct Addresses {
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
}

/// Why a request could not be read: answered with `status` (if any) and the
/// connection closed.
#[derive(Debug)]
struct Refusal {
    status: Option<StatusCode>,
    reason: &'static str,
}

impl Refusal {
    fn answer(status: StatusCode, reason: &'static str) -> Refusal {
        Refusal {
            status: Some(status),
            reason,
        }
    }

    fn silent(reason: &'static str) -> Refusal {
        Refusal {
            status: None,
            reason,
        }
    }
}

/// One parsed request, and whether the connection may carry another after it.
struct Parsed {
    request: Request,
    keep_alive: bool,
    head_only: bool,
}

/// A connection's bytes: what has been read and not yet consumed stays here, so a
/// request pipelined behind another is found by the next read of a head.
struct Wire<S> {
    stream: S,
    buf: Vec<u8>,
    /// Where reads land before they join `buf`: zeroed once, not before every read.
    scratch: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    fn new(stream: S) -> Wire<S> {
        Wire {
            stream,
            buf: Vec::new(),
            scratch: vec![0; READ_SIZE],
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        let n = self.stream.read(&mut self.scratch).await?;
        self.buf.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }

    /// Removes and returns the first `n` buffered bytes.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Reads more of a body; the end of the stream is an error there.
    async fn fill_body(&mut self) -> Result<(), Refusal> {
        match self.fill().await {
            Ok(0) => Err(Refusal::silent("connection closed inside the body")),
            Ok(_) => Ok(()),
            Err(_) => Err(Refusal::silent("read failed")),
        }
    }

    /// Reads exactly `n` more bytes.
    async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, Refusal> {
        while self.buf.len() < n {
            self.fill_body().await?;
        }
        Ok(self.take(n))
    }

    /// Reads one CRLF- (or LF-) terminated line, without its terminator.
    async fn read_line(&mut self, max: usize) -> Result<Vec<u8>, Refusal> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line = self.take(end + 1);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > max {
                return Err(Refusal::answer(
                    StatusCode::BadRequest,
                    "chunk line too long",
                ));
            }
            self.fill_body().await?;
        }
    }
}

/// Serves requests on `stream` one after another until either side closes, calling
/// `respond` for each.
pub async fn serve<S, F, Fut>(stream: S, addresses: Addresses, limits: Limits, mut respond: F)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let mut wire = Wire::new(stream);
    loop {
        let head = async_std::future::timeout(limits.head_timeout, read_head(&mut wire));
        let parsed = match head.await {
            Ok(Ok(Some(head))) => {
                let body = read_body(&mut wire, &head, &limits);
                match async_std::future::timeout(limits.body_timeout, body).await {
                    Ok(Ok(body)) => Ok(head.into_request(body, addresses)),
                    Ok(Err(refusal)) => Err(refusal),
                    Err(_) => Err(Refusal::answer(
                        StatusCode::RequestTimeout,
                        "request body timed out",
                    )),
                }
            }
            Ok(Ok(None)) => return,
            Ok(Err(refusal)) => Err(refusal),
            Err(_) if wire.buf.is_empty() => return,
            Err(_) => Err(Refusal::answer(
                StatusCode::RequestTimeout,
                "request head timed out",
            )),
        };
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(refusal) => {
                tracing::debug!(reason = refusal.reason, "HTTP request refused");
                if let Some(status) = refusal.status {
                    let mut response = Response::new(status);
                    response.insert_header("Server", super::server_header());
                    let _ = write_response(&mut wire.stream, response, false, false).await;
                }
                return;
            }
        };
        let response = respond(parsed.request).await;
        let written = write_response(
            &mut wire.stream,
            response,
            parsed.keep_alive,
            parsed.head_only,
        )
        .await;
        if written.is_err() || !parsed.keep_alive {
            return;
        }
    }
}

/// A request head as read off the wire.
struct Head {
    method: Method,
    url: Url,
    version: Version,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: BodyFraming,
    keep_alive: bool,
    expect_continue: bool,
}

/// How the body of a request is delimited.
#[derive(Debug, PartialEq)]
enum BodyFraming {
    Length(usize),
    Chunked,
}

impl Head {
    fn into_request(self, body: Vec<u8>, addresses: Addresses) -> Parsed {
        let head_only = self.method == Method::Head;
        let mut request = Request::new(self.method, self.url);
        request.set_version(Some(self.version));
        request.set_peer_addr(addresses.peer);
        request.set_local_addr(addresses.local);
        for (name, value) in self.headers {
            request.append_header(name, value);
        }
        request.set_body(body);
        Parsed {
            request,
            keep_alive: self.keep_alive,
            head_only,
        }
    }
}

/// Reads and parses the next request head; `None` when the client closed the
/// connection between requests.
async fn read_head<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
) -> Result<Option<Head>, Refusal> {
    // How much of the buffer was searched for the end of the head.
    let mut scanned = 0;
    loop {
        // Blank lines before a request line are to be ignored (RFC 9112 §2.2).
        let blank = wire.buf.iter().take_while(|&&b| b == b'\r' || b == b'\n');
        let blank = blank.count();
        if blank > 0 {
            wire.take(blank);
        }
        // A head arriving in small pieces is parsed once it is complete, not at every
        // piece (that would cost quadratic time); a short buffer is parsed at once so
        // that what is not HTTP at all gets its 400 without waiting.
        let complete = head_end(&wire.buf, scanned).is_some() || wire.buf.len() <= EARLY_PARSE;
        scanned = wire.buf.len();
        if !wire.buf.is_empty() && complete {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&wire.buf) {
                Ok(httparse::Status::Complete(length)) if length <= MAX_HEAD => {
                    let head = parse_head(&request)?;
                    wire.take(length);
                    return Ok(Some(head));
                }
                Ok(_) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(Refusal::answer(
                        StatusCode::RequestHeaderFieldsTooLarge,
                        "too many headers",
                    ))
                }
                Err(_) => {
                    return Err(Refusal::answer(
                        StatusCode::BadRequest,
                        "malformed request head",
                    ))
                }
            }
            if wire.buf.len() > MAX_HEAD {
                return Err(Refusal::answer(
                    StatusCode::RequestHeaderFieldsTooLarge,
                    "request head too long",
                ));
            }
        }
        match wire.fill().await {
            Ok(0) if wire.buf.is_empty() => return Ok(None),
            Ok(0) => return Err(Refusal::silent("connection closed inside a request head")),
            Ok(_) => {}
            Err(_) => return Err(Refusal::silent("read failed")),
        }
    }
}

/// Where the blank line that ends a head is (CRLF CRLF, or bare LFs), searching `buf`
/// from a little before `from`, where the previous search stopped.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let tail = buf.get(start..)?;
    let lf_lf = tail.windows(2).position(|w| w == b"\n\n");
    let crlf_crlf = tail.windows(3).position(|w| w == b"\n\r\n");
    lf_lf
        .into_iter()
        .chain(crlf_crlf)
        .min()
        .map(|at| start + at)
}

/// Checks a complete head and turns it into typed parts.
fn parse_head(request: &httparse::Request<'_, '_>) -> Result<Head, Refusal> {
    let bad = |reason| Refusal::answer(StatusCode::BadRequest, reason);
    let version = match request.version {
        Some(0) => Version::Http1_0,
        Some(1) => Version::Http1_1,
        _ => return Err(bad("unsupported HTTP version")),
    };
    let method = request.method.unwrap_or_default();
    let method = Method::from_str(method)
        .ok()
        .filter(|m| m.to_string() == method)
        .ok_or(Refusal::answer(
            StatusCode::MethodNotAllowed,
            "unknown method",
        ))?;
    let url = target_url(request.path.unwrap_or_default()).ok_or(bad("bad request target"))?;

    let mut headers = Vec::with_capacity(request.headers.len());
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut connection_close = version == Version::Http1_0;
    let mut expect_continue = false;
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes().to_vec())
            .map_err(|_| bad("header name is not ASCII"))?;
        let value = HeaderValue::from_bytes(header.value.to_vec())
            .map_err(|_| bad("header value is not ASCII"))?;
        let text = value.as_str().trim();
        match name.as_str() {
            "content-length" => {
                let parsed = text
                    .parse::<usize>()
                    .ok()
                    .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(bad("bad Content-Length"))?;
                if length.is_some_and(|earlier| earlier != parsed) {
                    return Err(bad("conflicting Content-Length headers"));
                }
                length = Some(parsed);
            }
            "transfer-encoding" => {
                let last = text.rsplit(',').next().unwrap_or_default().trim();
                if !last.eq_ignore_ascii_case("chunked") {
                    return Err(bad("unsupported Transfer-Encoding"));
                }
                chunked = true;
            }
            "connection" => {
                for token in text.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        connection_close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        connection_close = false;
                    }
                }
            }
            "expect" => expect_continue = text.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
        headers.push((name, value));
    }
    let body = match (chunked, length) {
        (true, _) => BodyFraming::Chunked,
        (false, Some(length)) => BodyFraming::Length(length),
        (false, None) => BodyFraming::Length(0),
    };
    // A message with both framings may be a smuggling attempt: serve it, then close.
    let keep_alive = !(connection_close || (chunked && length.is_some()));
    Ok(Head {
        method,
        url,
        version,
        headers,
        body,
        keep_alive,
        expect_continue: expect_continue && version == Version::Http1_1,
    })
}

/// The URL of an origin-form (`/path?query`) or absolute-form request target.
fn target_url(target: &str) -> Option<Url> {
    if !target.starts_with('/') {
        return Url::parse(target)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"));
    }
    // Set the path rather than joining it, so `//name` stays a path and not a host.
    let mut url = Url::parse("http://localhost/").ok()?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    url.set_path(path);
    url.set_query(query);
    Some(url)
}

/// Reads the body `head` announces, within `limits`.
async fn read_body<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    head: &Head,
    limits: &Limits,
) -> Result<Vec<u8>, Refusal> {
    let too_large = || Refusal::answer(StatusCode::PayloadTooLarge, "request body too large");
    if let BodyFraming::Length(length) = head.body {
        if length > limits.max_body {
            return Err(too_large());
        }
        if length == 0 {
            return Ok(Vec::new());
        }
    }
    if head.expect_continue && wire.buf.is_empty() {
        let written = wire
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await;
        written.map_err(|_| Refusal::silent("write failed"))?;
    }
    match head.body {
        BodyFraming::Length(length) => wire.read_exact(length).await,
        BodyFraming::Chunked => {
            let mut body = Vec::new();
            loop {
                let line = wire.read_line(MAX_CHUNK_LINE).await?;
                let size = chunk_size(&line)
                    .ok_or(Refusal::answer(StatusCode::BadRequest, "bad chunk size"))?;
                if size == 0 {
                    // Trailer fields are read and ignored up to the blank line.
                    while !wire.read_line(MAX_HEAD).await?.is_empty() {}
                    return Ok(body);
                }
                if body.len().saturating_add(size) > limits.max_body {
                    return Err(too_large());
                }
                body.extend_from_slice(&wire.read_exact(size).await?);
                if !wire.read_line(2).await?.is_empty() {
                    return Err(Refusal::answer(
                        StatusCode::BadRequest,
                        "chunk longer than its size",
                    ));
                }
            }
        }
    }
}

/// The size of a chunk-size line (`hex[;extensions]`).
fn chunk_size(line: &[u8]) -> Option<usize> {
    let hex = line.split(|&b| b == b';').next()?;
    let hex = std::str::from_utf8(hex).ok()?.trim();
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    usize::from_str_radix(hex, 16).ok()
}

/// Writes `response` with a Content-Length; no body after a HEAD request.
async fn write_response<W: AsyncWrite + Unpin>(
    stream: &mut W,
    mut response: Response,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let body = response
        .take_body()
        .into_bytes()
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
    let status = response.status();
    let mut out = Vec::with_capacity(256 + if head_only { 0 } else { body.len() });
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            u16::from(status),
            status.canonical_reason()
        )
        .as_bytes(),
    );
    for (name, values) in response.iter() {
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        for value in values.iter() {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(if keep_alive {
        b"connection: keep-alive\r\n\r\n"
    } else {
        b"connection: close\r\n\r\n"
    });
    if !head_only {
        out.extend_from_slice(&body);
    }
    stream.write_all(&out).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &[u8]) -> Result<Head, Refusal> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(text) {
            Ok(httparse::Status::Complete(_)) => parse_head(&request),
            other => panic!("not a complete head: {other:?}"),
        }
    }

    #[test]
    fn http_1_0_closes_unless_asked_to_keep_alive() {
        let h = head(b"GET /f HTTP/1.0\r\n\r\n").expect("head");
        assert!(!h.keep_alive);
        let h = head(b"GET /f HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").expect("head");
        assert!(h.keep_alive);
        let h = head(b"GET /f HTTP/1.1\r\nConnection: close\r\n\r\n").expect("head");
        assert!(!h.keep_alive);
    }

    #[test]
    fn non_ascii_header_values_are_a_400_not_a_panic() {
        let refusal = head(b"GET /f HTTP/1.1\r\nX-Gearman-Unique: \xc3\xa9\r\n\r\n")
            .err()
            .expect("refused");
        assert_eq!(refusal.status, Some(StatusCode::BadRequest));
    }

    #[test]
    fn body_framing() {
        let h = head(b"POST /f HTTP/1.1\r\nContent-Length: 12\r\n\r\n").expect("head");
        assert_eq!(h.body, BodyFraming::Length(12));
        let h = head(b"POST /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").expect("head");
        assert_eq!(h.body, BodyFraming::Chunked);
        let h =
            head(b"POST /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
                .expect("head");
        assert_eq!(h.body, BodyFraming::Chunked);
        assert!(!h.keep_alive, "both framings: served, then closed");
        for bad in [
            &b"POST /f HTTP/1.1\r\nContent-Length: +5\r\n\r\n"[..],
            b"POST /f HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST /f HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            let refusal = head(bad).err().expect("refused");
            assert_eq!(refusal.status, Some(StatusCode::BadRequest));
        }
    }

    #[test]
    fn unknown_methods_are_405() {
        let refusal = head(b"BREW /f HTTP/1.1\r\n\r\n").err().expect("refused");
        assert_eq!(refusal.status, Some(StatusCode::MethodNotAllowed));
        let refusal = head(b"get /f HTTP/1.1\r\n\r\n").err().expect("refused");
        assert_eq!(refusal.status, Some(StatusCode::MethodNotAllowed));
    }

    #[test]
    fn targets_keep_double_slashes_and_queries_in_the_path() {
        let url = target_url("//a%20b?x=1").expect("url");
        assert_eq!(url.path(), "//a%20b");
        assert_eq!(url.query(), Some("x=1"));
        let url = target_url("http://example.com/f").expect("url");
        assert_eq!(url.path(), "/f");
        assert!(target_url("*").is_none());
        assert!(target_url("ftp://x/f").is_none());
    }

    #[test]
    fn head_ends_are_found_across_pieces() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", 0), Some(21));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n", 0), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        // The previous search ended in the middle of the blank line.
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n", 17), Some(15));
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"0;ext=1"), Some(0));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"zz"), None);
        assert_eq!(chunk_size(b"ffffffffffffffffff"), None);
    }

    fn serve_bytes(input: &[u8], max_body: usize) -> String {
        serve_in_pieces(input, usize::MAX, max_body)
    }

    /// Serves `input` handed over at most `piece` bytes per read, answering each request
    /// with `<method> <path> <body length>`; returns what was written.
    fn serve_in_pieces(input: &[u8], piece: usize, max_body: usize) -> String {
        let mut stream = Scripted {
            input: input.to_vec(),
            at: 0,
            piece,
            output: Vec::new(),
        };
        let limits = Limits {
            max_body,
            head_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
        };
        let addresses = Addresses {
            peer: None,
            local: None,
        };
        async_std::task::block_on(serve(
            &mut stream,
            addresses,
            limits,
            |mut req| async move {
                let body = req.body_bytes().await.unwrap_or_default();
                let mut response = Response::new(StatusCode::Ok);
                response.set_body(format!(
                    "{} {} {}",
                    req.method(),
                    req.url().path(),
                    body.len()
                ));
                response
            },
        ));
        String::from_utf8_lossy(&stream.output).into_owned()
    }

    /// Reads from a fixed input, `piece` bytes at most per read; records what is written.
    struct Scripted {
        input: Vec<u8>,
        at: usize,
        piece: usize,
        output: Vec<u8>,
    }

    impl AsyncRead for Scripted {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = buf.len().min(self.piece).min(self.input.len() - self.at);
            buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
            self.at += n;
            std::task::Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Scripted {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.output.extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// A head sent a byte at a time is still answered (parsed once, when complete).
    #[test]
    fn a_head_in_one_byte_pieces_is_answered() {
        let out = serve_in_pieces(b"POST /f HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 1, 100);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nPOST /f 2"), "{out}");
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let out = serve_bytes(
            b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz\
              POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n1;x\r\n!\r\n0\r\n\r\n",
            100,
        );
        let bodies: Vec<&str> = out.split("\r\n\r\n").skip(1).collect();
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert!(bodies[0].starts_with("GET /a 0"), "{out}");
        assert!(bodies[1].starts_with("POST /b 3"), "{out}");
        assert!(bodies[2].starts_with("POST /c 3"), "{out}");
    }

    #[test]
    fn oversized_bodies_are_413_and_close() {
        let out = serve_bytes(
            b"POST /a HTTP/1.1\r\nContent-Length: 101\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
            100,
        );
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert_eq!(out.matches("HTTP/1.1").count(), 1, "{out}");
        let out = serve_bytes(
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n",
            100,
        );
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    }

    #[test]
    fn head_answers_carry_no_body() {
        let out = serve_bytes(b"HEAD /a HTTP/1.1\r\n\r\n", 100);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("content-length: 9\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "{out}");
    }
}
