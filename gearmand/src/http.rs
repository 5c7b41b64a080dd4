//! The HTTP protocol (`-r http`, `--http-port`): job submission as the C server's HTTP
//! plugin offers it, with its faults fixed, plus `GET /metrics` (Prometheus) and
//! `GET /status` (JSON).
//!
//! hyper's HTTP/1 server does the framing (heads, bodies, keep-alive, pipelining,
//! `Expect: 100-continue`); routing is a `match` on method and path. Every connection
//! runs on the `gearmand-http` thread's own event loop ([`crate::reactor`]): the
//! listener and the sockets are registered there, hyper reads and writes through
//! [`io::HyperIo`], and the connections are futures of one set polled by that thread,
//! so no other runtime is involved. Time comes from [`timer`].
//!
//! Each HTTP request becomes a connection of its own as far as the processing thread
//! knows: it registers, submits, and receives JOB_CREATED and WORK_* packets through an
//! outbox like any TCP client, so the job model has one path for both.

mod io;
pub mod timer;

use std::convert::Infallible;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_std::channel::{self, Receiver};
use bytes::{Bytes, BytesMut};
use futures::future::LocalBoxFuture;
use futures::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use futures::stream::StreamExt;
use futures::FutureExt;
use futures_rustls::TlsAcceptor;
use gearman_shared::admin::StatsReport;
use gearman_shared::protocol::{JobMode, Priority, Request, Response, SubmitJob};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming as IncomingBody};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::{Method, StatusCode};

use crate::event::{Event, Events, Incoming, Replies};
use crate::reactor::{Direction, Registered};
use crate::socket::Socket;
use crate::state::{ConnId, Outgoing, PeerInfo};
use crate::stats;

use self::io::HyperIo;

/// HTTP pseudo-connections number from here, apart from TCP connection numbers.
const HTTP_CONN_BASE: u64 = 1 << 62;
/// Longest request head (request line and headers) accepted; longer ones get 431. Also
/// hyper's read buffer limit, so an unfinished head is not buffered past it either.
const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted in one request; more get 431.
const MAX_HEADERS: usize = 64;
/// How long the accept loop waits after a failed accept (out of descriptors and the
/// like), rather than spinning.
const ACCEPT_BACK_OFF: Duration = Duration::from_millis(100);

/// A request's answer: always a whole body, so it goes out with a Content-Length.
type HttpResponse = hyper::Response<Full<Bytes>>;
type HttpRequest = hyper::Request<IncomingBody>;

/// How long each part of an exchange may take.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// A request head, counted from when the server is ready to read one (so it is also
    /// the keep-alive idle time). A partly received head then gets 408; an idle
    /// connection is closed.
    pub head: Duration,
    /// A request body; a slower one gets 408.
    pub body: Duration,
    /// An HTTPS client's handshake.
    pub handshake: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            head: Duration::from_secs(60),
            body: Duration::from_secs(30),
            handshake: Duration::from_secs(10),
        }
    }
}

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpContext {
    /// The processing thread's inbox.
    pub events: Events,
    /// Largest accepted request body; larger ones get 413.
    pub max_body: usize,
    /// The time limits of an exchange.
    pub timeouts: Timeouts,
    next_conn: Arc<AtomicU64>,
}

impl HttpContext {
    /// A context feeding `events`.
    pub fn new(events: Events, max_body: usize) -> HttpContext {
        HttpContext {
            events,
            max_body,
            timeouts: Timeouts::default(),
            next_conn: Arc::new(AtomicU64::new(HTTP_CONN_BASE)),
        }
    }
}

/// The client of one HTTP connection: its socket, to notice when it goes away, and
/// what the access-control list knows it by.
struct Client {
    socket: Socket,
    /// The peer's IP address as text, `-` if unknown.
    address: String,
    /// The verified TLS client certificate's identity, if any.
    identity: Option<String>,
}

pub(crate) fn server_header() -> String {
    format!("Gearman/{}", crate::PROTOCOL_VERSION)
}

/// Serves HTTP (HTTPS with `tls`) on `listener` until `stop` closes. Runs on a thread's
/// [`crate::reactor::Reactor`]: every connection is a task of that loop
/// ([`crate::reactor::spawn`]), polled when its socket or its job wakes it, and the loop
/// lets the open connections finish after the stop.
pub async fn run(
    listener: std::net::TcpListener,
    context: HttpContext,
    tls: Option<TlsAcceptor>,
    stop: Receiver<()>,
) {
    let listener = match Registered::new(mio::net::TcpListener::from_std(listener)) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "cannot register the HTTP listening socket");
            return;
        }
    };
    // Kept across turns of the loop, so the stop signal is never lost.
    let mut stopped = pin!(stop.recv().fuse());
    loop {
        futures::select! {
            stream = accept(&listener).fuse() => {
                crate::reactor::spawn(serve(stream, context.clone(), tls.clone()));
            }
            _ = stopped => break,
        }
    }
    drop(listener);
    tracing::info!("HTTP no longer accepting connections");
}

/// The next connection; failed accepts are logged and retried after a pause.
async fn accept(listener: &Registered<mio::net::TcpListener>) -> mio::net::TcpStream {
    loop {
        let accepted =
            poll_fn(|cx| listener.poll_io(Direction::Read, cx, |l| l.accept().map(|(s, _)| s)))
                .await;
        match accepted {
            Ok(stream) => return stream,
            Err(e) => {
                tracing::error!(error = %e, "HTTP accept failed");
                timer::sleep(ACCEPT_BACK_OFF).await;
            }
        }
    }
}

/// One connection, from the TLS handshake (with `tls`) to its close.
async fn serve(stream: mio::net::TcpStream, context: HttpContext, tls: Option<TlsAcceptor>) {
    // Answers are written whole, one write each: Nagle would only delay the next one
    // of a pipelined series.
    let _ = stream.set_nodelay(true);
    let address = stream
        .peer_addr()
        .map_or_else(|_| "-".to_string(), |a: SocketAddr| a.ip().to_string());
    let socket = match Socket::new(stream) {
        Ok(socket) => socket,
        Err(e) => {
            tracing::warn!(error = %e, "cannot register an HTTP connection");
            return;
        }
    };
    let mut client = Client {
        socket: socket.clone(),
        address,
        identity: None,
    };
    let Some(acceptor) = tls else {
        return serve_http(socket, client, context).await;
    };
    match timer::timeout(context.timeouts.handshake, acceptor.accept(socket)).await {
        Some(Ok(stream)) => {
            client.identity = crate::tls::peer_identity(stream.get_ref().1);
            serve_http(stream, client, context).await
        }
        Some(Err(e)) => tracing::warn!(error = %e, "HTTPS handshake failed, closing"),
        None => tracing::warn!("HTTPS handshake timed out, closing"),
    }
}

/// Runs hyper's HTTP/1 server on `stream` until either side closes.
async fn serve_http<S>(stream: S, client: Client, context: HttpContext)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let timeouts = context.timeouts;
    let service = Service(Rc::new((context, client)));
    let mut builder = http1::Builder::new();
    builder
        .timer(timer::HyperTimer)
        .header_read_timeout(timeouts.head)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_HEAD);
    let mut connection = builder.serve_connection(HyperIo(stream), service);
    // Without hyper's shutdown, so that the socket is ours again at the end: hyper closes
    // a connection whose head timed out without a word, and we answer 408 when part of
    // a head had arrived.
    let ended = poll_fn(|cx| connection.poll_without_shutdown(cx)).await;
    let parts = connection.into_parts();
    let HyperIo(mut stream) = parts.io;
    let finish = async {
        match ended {
            Err(e) if e.is_timeout() && !parts.read_buf.is_empty() => {
                tracing::debug!("HTTP request head timed out");
                let answer = format!(
                    "HTTP/1.1 408 Request Timeout\r\nserver: {}\r\ncontent-length: 0\r\n\
                     connection: close\r\n\r\n",
                    server_header()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
            Err(e) => tracing::debug!(error = %e, "HTTP connection ended"),
            Ok(()) => {}
        }
        let _ = stream.close().await;
    };
    // A client that reads nothing must not hold the answer or the TLS close_notify
    // forever.
    let _ = timer::timeout(timeouts.handshake, finish).await;
}

/// hyper's view of our handlers: one per connection.
struct Service(Rc<(HttpContext, Client)>);

impl hyper::service::Service<HttpRequest> for Service {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = LocalBoxFuture<'static, Result<HttpResponse, Infallible>>;

    fn call(&self, request: HttpRequest) -> Self::Future {
        let shared = Rc::clone(&self.0);
        async move {
            let (context, client) = &*shared;
            Ok(respond(request, context, client).await)
        }
        .boxed_local()
    }
}

/// Routes a request.
async fn respond(request: HttpRequest, context: &HttpContext, client: &Client) -> HttpResponse {
    // Header values are used as text (uniques, flags); bytes beyond visible ASCII are
    // refused as a malformed head rather than guessed at.
    if request.headers().values().any(|v| v.to_str().is_err()) {
        return refuse(StatusCode::BAD_REQUEST);
    }
    // The workload is the body as sent: a coding we would have to undo is refused, not
    // handed to the worker still encoded.
    if !plain_chunked(request.headers()) {
        return refuse(StatusCode::NOT_IMPLEMENTED);
    }
    // Only origin-form (`/name`) and absolute-form targets name a function; `*` does not.
    if !request.uri().path().starts_with('/') {
        return refuse(StatusCode::BAD_REQUEST);
    }
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    match (request.method(), request.uri().path()) {
        (_, "/metrics") if reading => monitor(context, metrics).await,
        (_, "/status") if reading => monitor(context, status).await,
        (_, "/metrics" | "/status") => not_allowed("GET, HEAD"),
        (&Method::GET | &Method::HEAD | &Method::POST | &Method::PUT, _) => {
            submit(request, context, client).await
        }
        _ => not_allowed("GET, HEAD, POST, PUT"),
    }
}

/// Whether every Transfer-Encoding the request has is `chunked` (or it has none).
fn plain_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(hyper::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .all(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// An answer to a request that could not be taken (malformed, too large, too slow, in a
/// coding we do not undo): the connection closes after it, as what follows on it may
/// be the rest of the refused request rather than a new one.
fn refuse(status: StatusCode) -> HttpResponse {
    let mut response = reply(status, None, "", Bytes::new());
    response
        .headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 405 with the methods the path takes.
fn not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, None, "", Bytes::new());
    response
        .headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Asks the processing thread for its statistics.
async fn report(context: &HttpContext) -> Option<StatsReport> {
    let (reply, answer) = channel::bounded(1);
    let mut events = context.events.clone();
    futures::SinkExt::send(&mut events, Event::Stats { reply })
        .await
        .ok()?;
    answer.recv().await.ok()
}

/// A monitoring page rendered from the statistics; 503 once the server is stopping.
async fn monitor(
    context: &HttpContext,
    render: fn(&StatsReport) -> (&'static str, Bytes),
) -> HttpResponse {
    let Some(report) = report(context).await else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, None, "", Bytes::new());
    };
    let (content_type, body) = render(&report);
    let mut response = reply(StatusCode::OK, None, "", body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

fn metrics(report: &StatsReport) -> (&'static str, Bytes) {
    (
        "text/plain; version=0.0.4; charset=utf-8",
        Bytes::from(stats::prometheus(report)),
    )
}

fn status(report: &StatsReport) -> (&'static str, Bytes) {
    let json = stats::json(report);
    ("application/json", Bytes::from(json.to_string()))
}

/// A response with the Gearman headers. hyper adds Content-Length (and, after HEAD,
/// sends the length without the body).
fn reply(status: StatusCode, handle: Option<&Bytes>, command: &str, body: Bytes) -> HttpResponse {
    let has_body = !body.is_empty();
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(server) = HeaderValue::from_str(&server_header()) {
        headers.insert(hyper::header::SERVER, server);
    }
    if let Some(handle) = handle.and_then(|h| HeaderValue::from_bytes(h).ok()) {
        headers.insert(HeaderName::from_static("x-gearman-job-handle"), handle);
    }
    if let Ok(command) = HeaderValue::from_str(command) {
        if !command.is_empty() {
            headers.insert(HeaderName::from_static("x-gearman-command"), command);
        }
    }
    if has_body {
        headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    response
}

/// The whole body, within `--http-max-body` and the body timeout; otherwise the answer
/// to send instead (413, 408, or 400 for a broken chunked body).
async fn read_body(body: IncomingBody, context: &HttpContext) -> Result<Bytes, HttpResponse> {
    // A Content-Length over the limit is refused before anything is read (and before
    // `100 Continue`, which hyper sends only once the body is read).
    if body.size_hint().lower() > context.max_body as u64 {
        return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let collect = Limited::new(body, context.max_body).collect();
    match timer::timeout(context.timeouts.body, collect).await {
        Some(Ok(collected)) => Ok(collected.to_bytes()),
        Some(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(refuse(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "HTTP request body unreadable");
            Err(refuse(StatusCode::BAD_REQUEST))
        }
        None => Err(refuse(StatusCode::REQUEST_TIMEOUT)),
    }
}

/// Percent-decodes the path into a function name.
pub fn function_name(path: &str) -> Bytes {
    let raw = path.trim_start_matches('/').as_bytes();
    let mut out = BytesMut::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            raw[i],
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.extend_from_slice(&[(hi * 16 + lo) as u8]);
                i += 3;
            }
            (b, _, _) => {
                out.extend_from_slice(&[b]);
                i += 1;
            }
        }
    }
    out.freeze()
}

/// Tells the processing thread the request is gone, whatever way the handler ends.
struct Registration {
    conn: ConnId,
    events: Events,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // A fresh clone of a `futures` sender has a slot of its own in the channel, so
        // `try_send` on it fails only once the processor is gone.
        let event = Event::Disconnected { conn: self.conn };
        let _ = self.events.clone().try_send(event);
    }
}

/// The value of a request header (the last one if repeated).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a HeaderValue> {
    headers.get_all(name).iter().next_back()
}

/// A request for a job: submits it, waits for its outcome (or only for JOB_CREATED in
/// the background) while watching for the client going away, and answers.
async fn submit(request: HttpRequest, context: &HttpContext, client: &Client) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let data = if matches!(parts.method, Method::POST | Method::PUT) {
        match read_body(body, context).await {
            Ok(body) => body,
            Err(response) => return response,
        }
    } else {
        Bytes::new()
    };
    let function = function_name(parts.uri.path());
    crate::fault::check(crate::fault::Site::Http, &function);
    if function.is_empty() {
        return reply(StatusCode::NOT_FOUND, None, "", Bytes::new());
    }
    let text = |name| header(&parts.headers, name).and_then(|v| v.to_str().ok());
    let background = text("x-gearman-background").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let priority = match text("x-gearman-priority") {
        Some(p) if p.eq_ignore_ascii_case("high") => Priority::High,
        Some(p) if p.eq_ignore_ascii_case("low") => Priority::Low,
        _ => Priority::Normal,
    };
    let job = SubmitJob {
        function,
        unique: header(&parts.headers, "x-gearman-unique")
            .map(|v| Bytes::copy_from_slice(v.as_bytes()))
            .unwrap_or_default(),
        data,
        priority,
        mode: if background {
            JobMode::Background
        } else {
            JobMode::Foreground
        },
        epoch: None,
        reducer: None,
    };
    let conn = ConnId(context.next_conn.fetch_add(1, Ordering::Relaxed));
    let (outbox, mut replies) = futures::channel::mpsc::unbounded();
    let info = PeerInfo {
        fd: i64::from(client.socket.as_raw_fd()),
        address: client.address.clone(),
        identity: client.identity.clone(),
    };
    let unavailable = || reply(StatusCode::SERVICE_UNAVAILABLE, None, "", Bytes::new());
    let mut events = context.events.clone();
    let connected = Event::Connected { conn, info, outbox };
    if futures::SinkExt::send(&mut events, connected)
        .await
        .is_err()
    {
        return unavailable();
    }
    let _registration = Registration {
        conn,
        events: events.clone(),
    };
    let items = vec![
        // The HTTP client always wants exceptions: they become a 500 with the message.
        Incoming::Request(Request::Option {
            name: Bytes::from_static(b"exceptions"),
        }),
        Incoming::Request(Request::Submit(job)),
    ];
    let input = Event::Input { conn, items };
    if futures::SinkExt::send(&mut events, input).await.is_err() {
        return unavailable();
    }
    let outcome = futures::select! {
        outcome = wait_for_result(&mut replies, background).fuse() => outcome,
        () = client.socket.peer_gone().fuse() => {
            tracing::info!(conn = conn.0, "HTTP client went away; its job is abandoned");
            None
        }
    };
    match outcome {
        Some(Outcome {
            status,
            handle,
            command,
            body,
        }) => reply(status, handle.as_ref(), command, body),
        None => unavailable(),
    }
}

/// How a submission ended.
struct Outcome {
    status: StatusCode,
    handle: Option<Bytes>,
    command: &'static str,
    body: Bytes,
}

/// Collects the replies of one submission: JOB_CREATED ends a background request;
/// WORK_DATA accumulates; WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION or ERROR end it.
async fn wait_for_result(replies: &mut Replies, background: bool) -> Option<Outcome> {
    let mut handle = None;
    let mut body = BytesMut::new();
    while let Some(batch) = replies.next().await {
        for outgoing in batch {
            let Outgoing::Packet(response) = outgoing else {
                continue;
            };
            let done = |status, command, handle: &Option<Bytes>, body| {
                Some(Outcome {
                    status,
                    handle: handle.clone(),
                    command,
                    body,
                })
            };
            match response {
                Response::JobCreated { handle: h } => {
                    handle = Some(h);
                    if background {
                        return done(StatusCode::OK, "JOB_CREATED", &handle, Bytes::new());
                    }
                }
                Response::WorkData { data, .. } => body.extend_from_slice(&data),
                Response::WorkComplete { data, .. } => {
                    body.extend_from_slice(&data);
                    return done(StatusCode::OK, "WORK_COMPLETE", &handle, body.freeze());
                }
                Response::WorkFail { .. } => {
                    let status = StatusCode::INTERNAL_SERVER_ERROR;
                    return done(status, "WORK_FAIL", &handle, Bytes::new());
                }
                Response::WorkException { data, .. } => {
                    let status = StatusCode::INTERNAL_SERVER_ERROR;
                    return done(status, "WORK_EXCEPTION", &handle, data);
                }
                Response::Error { code, text } => {
                    let mut message = BytesMut::from(&code[..]);
                    message.extend_from_slice(b": ");
                    message.extend_from_slice(&text);
                    let status = StatusCode::SERVICE_UNAVAILABLE;
                    return done(status, "ERROR", &handle, message.freeze());
                }
                // WORK_STATUS and WORK_WARNING do not end the request.
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
