//! One client connection inside an I/O thread: the reader decodes frames into
//! [`Incoming`] items for the processing thread, the writer encodes what comes back.

use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use async_std::channel::{Receiver, Sender};
use async_std::net::TcpStream;
use bytes::{Buf, BytesMut};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::{FutureExt, StreamExt};
use futures_rustls::TlsAcceptor;
use gearman_shared::protocol::{
    decode, encode, encode_text, ErrorCode, Frame, Limits, ProtocolError, Request, Response,
};

use crate::event::{ConnId, Event, Incoming, Outgoing};
use crate::state::PeerInfo;
use crate::stats::Traffic;
use crate::tls;

/// Size of a connection's first read buffer.
const MIN_READ: usize = 4 * 1024;
/// Largest read buffer a busy connection grows to.
const MAX_READ: usize = 64 * 1024;
/// An idle connection keeps at most this much write buffer.
const KEEP_WRITE_CAPACITY: usize = 64 * 1024;

/// What every connection of an I/O thread shares.
#[derive(Clone)]
pub struct Context {
    /// The processing thread's inbox.
    pub events: Sender<Event>,
    /// Decoder limits.
    pub limits: Limits,
    /// Unread output after which a peer is dropped.
    pub max_outbox: usize,
    /// Byte counters for statistics.
    pub traffic: Arc<Traffic>,
    /// How long an incomplete frame may wait for its rest.
    pub partial_timeout: Option<Duration>,
    /// `--ssl`: every connection starts with a TLS handshake.
    pub tls: Option<TlsAcceptor>,
}

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection until both directions are done.
pub async fn serve(stream: TcpStream, conn: ConnId, context: Context) {
    let address = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "-".into());
    let fd = i64::from(stream.as_raw_fd());
    tracing::info!(conn = conn.0, peer = %address, "accepted connection");
    let Some(acceptor) = context.tls.clone() else {
        let info = PeerInfo {
            fd,
            address,
            identity: None,
        };
        let (mut reader, mut writer) = (&stream, &stream);
        return run(&stream, &mut reader, &mut writer, conn, info, context).await;
    };
    let tls = match async_std::future::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream.clone()))
        .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::warn!(conn = conn.0, peer = %address, error = %e, "TLS handshake failed, closing");
            return;
        }
        Err(_) => {
            tracing::warn!(conn = conn.0, peer = %address, "TLS handshake timed out, closing");
            return;
        }
    };
    let identity = tls::peer_identity(tls.get_ref().1);
    tracing::info!(conn = conn.0, peer = %address, identity = ?identity, "TLS established");
    let info = PeerInfo {
        fd,
        address,
        identity,
    };
    let (mut reader, mut writer) = tls.split();
    run(&stream, &mut reader, &mut writer, conn, info, context).await;
}

/// Registers the connection with the processing thread, then reads and writes until
/// both directions are done. `tcp` is the socket under `reader` and `writer`.
async fn run<R, W>(
    tcp: &TcpStream,
    reader: &mut R,
    writer: &mut W,
    conn: ConnId,
    info: PeerInfo,
    context: Context,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Context {
        events,
        limits,
        max_outbox,
        traffic,
        partial_timeout,
        ..
    } = context;
    let (outbox, replies) = async_std::channel::unbounded();
    if events
        .send(Event::Connected { conn, info, outbox })
        .await
        .is_err()
    {
        return;
    }
    futures::join!(
        read_side(
            tcp,
            reader,
            conn,
            &events,
            limits,
            &traffic,
            partial_timeout
        ),
        write_side(tcp, writer, conn, replies, max_outbox, &traffic)
    );
    tracing::info!(conn = conn.0, "closed connection");
}

/// Reads, frames and forwards input; always ends with a `Disconnected` event, after
/// which the processing thread drops the outbox and the writer finishes.
async fn read_side<R: AsyncRead + Unpin>(
    stream: &TcpStream,
    reader: &mut R,
    conn: ConnId,
    events: &Sender<Event>,
    limits: Limits,
    traffic: &Traffic,
    partial_timeout: Option<Duration>,
) {
    // Reads land in `scratch`, which stays initialised, and are copied into `buf`, where
    // frames are cut out: a memcpy of what arrived instead of zero-filling a fresh
    // region before every read. `scratch` grows while reads fill it.
    let mut scratch = vec![0u8; MIN_READ];
    let mut buf = BytesMut::new();
    loop {
        let start = buf.len();
        let read = reader.read(&mut scratch);
        // Only a connection holding half a frame is on the clock: sleeping workers and
        // idle clients may stay as long as they like.
        let read = match partial_timeout.filter(|_| start > 0) {
            Some(limit) => match async_std::future::timeout(limit, read).await {
                Ok(read) => read,
                Err(_) => {
                    tracing::warn!(
                        conn = conn.0,
                        bytes = start,
                        "incomplete frame timed out, closing"
                    );
                    let _ = stream.shutdown(Shutdown::Both);
                    break;
                }
            },
            None => read.await,
        };
        let n = match read {
            Ok(0) => {
                if !buf.is_empty() {
                    tracing::info!(conn = conn.0, bytes = buf.len(), "peer closed mid-frame");
                }
                break;
            }
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(conn = conn.0, error = %e, "read failed");
                break;
            }
        };
        buf.extend_from_slice(&scratch[..n]);
        if n == scratch.len() && scratch.len() < MAX_READ {
            scratch.resize(scratch.len() * 2, 0);
        }
        traffic.read(n);
        let mut items = Vec::new();
        let failure = loop {
            match decode(&mut buf, &limits) {
                Ok(Some(frame)) => items.push(incoming(frame)),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        if !items.is_empty() && events.send(Event::Input { conn, items }).await.is_err() {
            return;
        }
        if let Some(e) = failure {
            tracing::warn!(conn = conn.0, error = %e, "bad input, closing connection");
            let _ = stream.shutdown(Shutdown::Both);
            break;
        }
    }
    let _ = events.send(Event::Disconnected { conn }).await;
}

/// Gives a frame its meaning; packets the protocol answers with an ERROR become
/// [`Incoming::Reject`] so the answer keeps its place among the replies.
fn incoming(frame: Frame) -> Incoming {
    match frame {
        Frame::Text {
            line,
            terminator_len,
        } => Incoming::Admin {
            line,
            terminator_len,
        },
        Frame::Packet(packet) => match Request::try_from(packet) {
            Ok(request) => Incoming::Request(request),
            Err(ProtocolError::WrongMagic) => Incoming::Reject(Response::error(
                ErrorCode::InvalidMagic,
                "Request magic expected",
            )),
            Err(_) => Incoming::Reject(Response::error(
                ErrorCode::InvalidCommand,
                "Command not expected",
            )),
        },
    }
}

/// What to do after encoding a batch.
enum Next {
    Continue,
    Close,
}

fn encode_batch(batch: Vec<Outgoing>, out: &mut BytesMut) -> Next {
    for item in batch {
        match item {
            Outgoing::Packet(response) => encode(&response.into_packet(), out),
            Outgoing::Text(text) => encode_text(&text, out),
            Outgoing::Close => return Next::Close,
        }
    }
    Next::Continue
}

/// Writes replies, coalescing everything queued into one write, and drops a peer whose
/// unread output passes `max_outbox` bytes.
async fn write_side<W: AsyncWrite + Unpin>(
    stream: &TcpStream,
    writer: &mut W,
    conn: ConnId,
    mut replies: Receiver<Vec<Outgoing>>,
    max_outbox: usize,
    traffic: &Traffic,
) {
    let mut out = BytesMut::new();
    let mut closing = false;
    // Bytes handed to `writer` that a TLS layer may still hold: flushed before waiting.
    let mut unflushed = false;
    loop {
        if out.is_empty() && !unflushed {
            if closing {
                let _ = stream.shutdown(Shutdown::Both);
                break;
            }
            if out.capacity() > KEEP_WRITE_CAPACITY {
                out = BytesMut::new();
            }
            let Ok(batch) = replies.recv().await else {
                return;
            };
            closing = matches!(encode_batch(batch, &mut out), Next::Close);
            while !closing {
                let Ok(batch) = replies.try_recv() else { break };
                closing = matches!(encode_batch(batch, &mut out), Next::Close);
            }
            continue;
        }
        let mut more = None;
        let io = async {
            if out.is_empty() {
                writer.flush().await.map(|()| None)
            } else {
                writer.write(&out).await.map(Some)
            }
        };
        futures::select! {
            written = io.fuse() => match written {
                Ok(Some(0)) | Err(_) => break,
                Ok(Some(n)) => {
                    traffic.written(n);
                    out.advance(n);
                    unflushed = true;
                }
                Ok(None) => unflushed = false,
            },
            batch = replies.next() => match batch {
                Some(batch) => more = Some(batch),
                None => {
                    // The processing thread is done with us: write what is left.
                    if writer.write_all(&out).await.is_ok() && writer.flush().await.is_ok() {
                        traffic.written(out.len());
                    }
                    return;
                }
            },
        }
        if let Some(batch) = more {
            if !closing {
                closing = matches!(encode_batch(batch, &mut out), Next::Close);
            }
        }
        if out.len() > max_outbox {
            tracing::warn!(
                conn = conn.0,
                bytes = out.len(),
                "peer is not reading its replies, closing connection"
            );
            let _ = stream.shutdown(Shutdown::Both);
            break;
        }
    }
    // Discard whatever still arrives until the processing thread lets go of us.
    while replies.recv().await.is_ok() {}
}
