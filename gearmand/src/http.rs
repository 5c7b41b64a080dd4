//! The HTTP protocol (`-r http`, `--http-port`): job submission as the C server's HTTP
//! plugin offers it, with its faults fixed, plus `GET /metrics` (Prometheus) and
//! `GET /status` (JSON).
//!
//! Each HTTP request becomes a connection of its own as far as the processing thread
//! knows: it registers, submits, and receives JOB_CREATED and WORK_* packets through an
//! outbox like any TCP client, so the job model has one path for both.

mod h1;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_std::channel::{self, Receiver};
use async_std::net::{TcpListener, TcpStream};
use bytes::{Bytes, BytesMut};
use futures::{FutureExt, SinkExt, StreamExt};
use futures_rustls::TlsAcceptor;
use gearman_shared::admin::StatsReport;
use gearman_shared::protocol::{JobMode, Priority, Request, Response, SubmitJob};
use tide::http::{Method, Mime};
use tide::{Body, StatusCode};

use crate::event::{ConnId, Event, Events, Incoming, Outgoing, Replies};
use crate::state::PeerInfo;
use crate::stats;

/// HTTP pseudo-connections number from here, apart from TCP connection numbers.
const HTTP_CONN_BASE: u64 = 1 << 62;
/// How long a request head may take, and how long a kept-alive connection may idle.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an HTTPS client may take to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a waiting request checks whether its client went away.
const CLIENT_CHECK: Duration = Duration::from_millis(200);

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpContext {
    /// The processing thread's inbox.
    pub events: Events,
    /// Largest accepted request body; larger ones get 413.
    pub max_body: usize,
    next_conn: Arc<AtomicU64>,
}

impl HttpContext {
    /// A context feeding `events`.
    pub fn new(events: Events, max_body: usize) -> HttpContext {
        HttpContext {
            events,
            max_body,
            next_conn: Arc::new(AtomicU64::new(HTTP_CONN_BASE)),
        }
    }
}

/// The client socket of a request, to notice when the client goes away, and the
/// client's TLS identity, for the access-control list.
#[derive(Clone)]
struct ClientSocket(TcpStream, Option<String>);

pub(crate) fn server_header() -> String {
    format!("Gearman/{}", crate::config::PROTOCOL_VERSION)
}

/// Serves HTTP (HTTPS with `tls`) on `listener` until `stop` closes.
pub async fn run(
    listener: std::net::TcpListener,
    context: HttpContext,
    tls: Option<TlsAcceptor>,
    stop: Receiver<()>,
) {
    let listener = TcpListener::from(listener);
    let max_body = context.max_body;
    let mut app = tide::with_state(context);
    app.at("/metrics").get(metrics).head(metrics);
    app.at("/status").get(status).head(status);
    app.at("/").all(submit);
    app.at("/*function").all(submit);
    loop {
        let accepted = futures::select! {
            accepted = listener.accept().fuse() => accepted,
            _ = stop.recv().fuse() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::error!(error = %e, "HTTP accept failed");
                async_std::task::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        let limits = h1::Limits {
            max_body,
            head_timeout: HEAD_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
        };
        async_std::task::spawn(async move {
            let addresses = h1::Addresses {
                peer: stream.peer_addr().ok(),
                local: stream.local_addr().ok(),
            };
            let socket = stream.clone();
            let respond = |identity: Option<String>| {
                move |mut request: tide::http::Request| {
                    request
                        .ext_mut()
                        .insert(ClientSocket(socket.clone(), identity.clone()));
                    let app = app.clone();
                    async move {
                        match app.respond::<_, tide::http::Response>(request).await {
                            Ok(response) => response,
                            Err(e) => reply(e.status(), None, "", Vec::new()).into(),
                        }
                    }
                }
            };
            match tls {
                None => h1::serve(stream, addresses, limits, respond(None)).await,
                Some(acceptor) => {
                    let handshake =
                        async_std::future::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => {
                            let identity = crate::tls::peer_identity(tls.get_ref().1);
                            h1::serve(tls, addresses, limits, respond(identity)).await
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "HTTPS handshake failed, closing"),
                        Err(_) => tracing::warn!("HTTPS handshake timed out, closing"),
                    }
                }
            }
        });
    }
    tracing::info!("HTTP no longer accepting connections");
}

/// Asks the processing thread for its statistics.
async fn report(context: &HttpContext) -> tide::Result<StatsReport> {
    let (reply, answer) = channel::bounded(1);
    context
        .events
        .clone()
        .send(Event::Stats { reply })
        .await
        .map_err(|_| tide::Error::from_str(StatusCode::ServiceUnavailable, "server stopping"))?;
    answer
        .recv()
        .await
        .map_err(|_| tide::Error::from_str(StatusCode::ServiceUnavailable, "server stopping"))
}

async fn metrics(req: tide::Request<HttpContext>) -> tide::Result {
    let text = stats::prometheus(&report(req.state()).await?);
    let mut response = tide::Response::new(StatusCode::Ok);
    response.set_body(text);
    response.set_content_type(Mime::from("text/plain; version=0.0.4; charset=utf-8"));
    response.insert_header("Server", server_header());
    Ok(response)
}

async fn status(req: tide::Request<HttpContext>) -> tide::Result {
    let json = stats::json(&report(req.state()).await?);
    let mut response = tide::Response::new(StatusCode::Ok);
    response.set_body(Body::from_json(&json)?);
    response.insert_header("Server", server_header());
    Ok(response)
}

/// A response with the Gearman headers.
fn reply(
    status: StatusCode,
    handle: Option<&Bytes>,
    command: &str,
    body: Vec<u8>,
) -> tide::Response {
    let mut response = tide::Response::new(status);
    if let Some(handle) = handle {
        response.insert_header(
            "X-Gearman-Job-Handle",
            String::from_utf8_lossy(handle).as_ref(),
        );
    }
    if !command.is_empty() {
        response.insert_header("X-Gearman-Command", command);
    }
    response.insert_header("Server", server_header());
    response.set_body(body);
    response
}

/// The body, which the framing layer has read in whole and within `--http-max-body`.
async fn read_body(req: &mut tide::Request<HttpContext>) -> Result<Vec<u8>, tide::Response> {
    req.body_bytes()
        .await
        .map_err(|_| reply(StatusCode::BadRequest, None, "", Vec::new()))
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
        let event = Event::Disconnected { conn: self.conn };
        if let Err(e) = self.events.try_send(event) {
            let mut events = self.events.clone();
            let event = e.into_inner();
            async_std::task::spawn(async move {
                let _ = events.send(event).await;
            });
        }
    }
}

/// Resolves once the client has closed its side of the connection. A client that sent
/// its next request already is still there, so that counts as present.
async fn client_gone(socket: Option<ClientSocket>) {
    let Some(ClientSocket(stream, _)) = socket else {
        return futures::future::pending().await;
    };
    let mut probe = [0u8; 1];
    loop {
        match async_std::future::timeout(CLIENT_CHECK, stream.peek(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => return futures::future::pending().await,
            Err(_) => {}
        }
    }
}

async fn submit(mut req: tide::Request<HttpContext>) -> tide::Result {
    let method = req.method();
    let data = match method {
        Method::Get | Method::Head => Vec::new(),
        Method::Post | Method::Put => match read_body(&mut req).await {
            Ok(body) => body,
            Err(response) => return Ok(response),
        },
        _ => {
            let mut response = reply(StatusCode::MethodNotAllowed, None, "", Vec::new());
            response.insert_header("Allow", "GET, HEAD, POST, PUT");
            return Ok(response);
        }
    };
    let function = function_name(req.url().path());
    crate::fault::check(crate::fault::Site::Http, &function);
    if function.is_empty() {
        return Ok(reply(StatusCode::NotFound, None, "", Vec::new()));
    }
    let header = |name: &str| req.header(name).map(|v| v.last().as_str().to_string());
    let background = header("X-Gearman-Background").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let priority = match header("X-Gearman-Priority")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        Some("high") => Priority::High,
        Some("low") => Priority::Low,
        _ => Priority::Normal,
    };
    let job = SubmitJob {
        function,
        unique: header("X-Gearman-Unique")
            .map(Bytes::from)
            .unwrap_or_default(),
        data: Bytes::from(data),
        priority,
        mode: if background {
            JobMode::Background
        } else {
            JobMode::Foreground
        },
        epoch: None,
        reducer: None,
    };
    let context = req.state().clone();
    let conn = ConnId(context.next_conn.fetch_add(1, Ordering::Relaxed));
    let address = req
        .peer_addr()
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .map_or_else(|| "-".to_string(), |a| a.ip().to_string());
    let socket = req.ext::<ClientSocket>().cloned();
    let fd = socket.as_ref().map_or(-1, |s| {
        use std::os::fd::AsRawFd;
        i64::from(s.0.as_raw_fd())
    });
    let (outbox, mut replies) = futures::channel::mpsc::unbounded();
    let identity = socket.as_ref().and_then(|s| s.1.clone());
    let info = PeerInfo {
        fd,
        address,
        identity,
    };
    let mut events = context.events.clone();
    if events
        .send(Event::Connected { conn, info, outbox })
        .await
        .is_err()
    {
        return Ok(reply(StatusCode::ServiceUnavailable, None, "", Vec::new()));
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
    if events.send(Event::Input { conn, items }).await.is_err() {
        return Ok(reply(StatusCode::ServiceUnavailable, None, "", Vec::new()));
    }
    let outcome = futures::select! {
        outcome = wait_for_result(&mut replies, background).fuse() => outcome,
        () = client_gone(socket).fuse() => {
            tracing::info!(conn = conn.0, "HTTP client went away; its job is abandoned");
            None
        }
    };
    let head = method == Method::Head;
    Ok(match outcome {
        Some(Outcome {
            status,
            handle,
            command,
            body,
        }) => reply(
            status,
            handle.as_ref(),
            command,
            if head { Vec::new() } else { body },
        ),
        None => reply(StatusCode::ServiceUnavailable, None, "", Vec::new()),
    })
}

/// How a submission ended.
struct Outcome {
    status: StatusCode,
    handle: Option<Bytes>,
    command: &'static str,
    body: Vec<u8>,
}

/// Collects the replies of one submission: JOB_CREATED ends a background request;
/// WORK_DATA accumulates; WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION or ERROR end it.
async fn wait_for_result(replies: &mut Replies, background: bool) -> Option<Outcome> {
    let mut handle = None;
    let mut body = Vec::new();
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
                        return done(StatusCode::Ok, "JOB_CREATED", &handle, Vec::new());
                    }
                }
                Response::WorkData { data, .. } => body.extend_from_slice(&data),
                Response::WorkComplete { data, .. } => {
                    body.extend_from_slice(&data);
                    return done(StatusCode::Ok, "WORK_COMPLETE", &handle, body);
                }
                Response::WorkFail { .. } => {
                    return done(
                        StatusCode::InternalServerError,
                        "WORK_FAIL",
                        &handle,
                        Vec::new(),
                    );
                }
                Response::WorkException { data, .. } => {
                    return done(
                        StatusCode::InternalServerError,
                        "WORK_EXCEPTION",
                        &handle,
                        data.to_vec(),
                    );
                }
                Response::Error { code, text } => {
                    let mut message = code.to_vec();
                    message.extend_from_slice(b": ");
                    message.extend_from_slice(&text);
                    return done(StatusCode::ServiceUnavailable, "ERROR", &handle, message);
                }
                // WORK_STATUS and WORK_WARNING do not end the request.
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_percent_decoded() {
        assert_eq!(function_name("/reverse"), "reverse");
        assert_eq!(function_name("//a%20b"), "a b");
        assert_eq!(function_name("/100%"), "100%");
        assert_eq!(function_name("/"), "");
    }
}
