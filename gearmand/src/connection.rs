//! One client connection inside an I/O thread: the reader decodes frames into
//! [`Incoming`] items for the processing thread, the writer encodes what comes back.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::{FutureExt, SinkExt, StreamExt};
use futures_rustls::TlsAcceptor;
use gearman_shared::protocol::{
    decode, encode_text, ErrorCode, Frame, Limits, ProtocolError, Request, Response,
};

use crate::event::{Event, Events, Incoming, Replies};
use crate::fault;
use crate::reactor;
use crate::socket::{Buffered, ReadChunk, Socket};
use crate::state::{ConnId, Outgoing, PeerInfo};
use crate::stats::Traffic;
use crate::tls;

/// One counted connection; dropping it frees the place.
pub struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// Takes a place if fewer than `max` are taken (`max == 0`: no limit).
    pub fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        let taken = open.fetch_add(1, Ordering::AcqRel);
        if max > 0 && taken >= max {
            open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(Arc::clone(open)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Replies encoded ahead of the socket at most, when more are already queued.
const WRITE_AHEAD: usize = 1 << 20;
/// An idle connection keeps at most this much write buffer.
const KEEP_WRITE_CAPACITY: usize = 16 * 1024;

/// What every connection of an I/O thread shares.
#[derive(Clone)]
pub struct Context {
    /// The processing thread's inbox.
    pub events: Events,
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
    /// The writers still running, which the exit waits for.
    pub writers: Writers,
}

/// Counts the connection writers still running, so that the process exits once the
/// last replies (an admin's `OK`, the final WORK_COMPLETE of a graceful shutdown) are
/// written, rather than after a guessed delay.
#[derive(Clone, Default)]
pub struct Writers(Arc<AtomicUsize>);

/// One running writer; dropping it counts the writer out.
struct Writing(Arc<AtomicUsize>);

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Writers {
    fn enter(&self) -> Writing {
        self.0.fetch_add(1, Ordering::AcqRel);
        Writing(Arc::clone(&self.0))
    }

    /// Resolves when every writer has ended, or after `limit` (a peer that does not
    /// read must not hold the exit up).
    pub async fn finished(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self.0.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            reactor::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection as a whole: alive while its reader or writer is; frees its place in
/// the connection count when both are done.
struct Open {
    conn: ConnId,
    _slot: Slot,
}

impl Drop for Open {
    fn drop(&mut self) {
        tracing::info!(conn = self.conn.0, "closed connection");
    }
}

/// Sets up one connection (TLS handshake, registration with the processing thread),
/// then spawns its reader and its writer as two tasks of the thread's loop, so that a
/// reply arriving wakes only the writer: polled together, every wake-up of one side
/// would cost the other side a read attempt (a system call) as well.
pub async fn serve(stream: mio::net::TcpStream, conn: ConnId, context: Context, slot: Slot) {
    match Socket::new(stream) {
        Ok(stream) => set_up(stream, conn, context, slot).await,
        Err(e) => {
            tracing::error!(conn = conn.0, error = %e, "cannot register a connection, closing it");
        }
    }
}

async fn set_up(stream: Socket, conn: ConnId, context: Context, slot: Slot) {
    let address = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "-".into());
    let fd = i64::from(stream.as_raw_fd());
    tracing::info!(conn = conn.0, peer = %address, "accepted connection");
    let open = Rc::new(Open { conn, _slot: slot });
    let Some(acceptor) = context.tls.clone() else {
        let info = PeerInfo {
            fd,
            address,
            identity: None,
        };
        let (reader, writer) = (stream.clone(), stream.clone());
        return register(stream, reader, writer, info, context, open).await;
    };
    let tls = match reactor::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream.clone())).await {
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
    let (reader, writer) = tls.split();
    register(stream, Buffered::new(reader), writer, info, context, open).await
}

/// Registers the connection with the processing thread and spawns its reader and writer.
/// `tcp` is the socket under `reader` and `writer`.
async fn register<R, W>(
    tcp: Socket,
    mut reader: R,
    mut writer: W,
    info: PeerInfo,
    context: Context,
    open: Rc<Open>,
) where
    R: ReadChunk + 'static,
    W: AsyncWrite + Unpin + 'static,
{
    let Context {
        mut events,
        limits,
        max_outbox,
        traffic,
        partial_timeout,
        writers,
        ..
    } = context;
    let conn = open.conn;
    // Counted before the processing thread can queue anything for this writer.
    let writing = writers.enter();
    let (outbox, replies) = futures::channel::mpsc::unbounded();
    if events
        .send(Event::Connected { conn, info, outbox })
        .await
        .is_err()
    {
        return;
    }
    let (write_tcp, write_traffic, write_open) = (tcp.clone(), Arc::clone(&traffic), open.clone());
    let read = async move {
        let _open = open;
        read_side(
            &tcp,
            &mut reader,
            conn,
            &mut events,
            limits,
            &traffic,
            partial_timeout,
        )
        .await;
    };
    let write = async move {
        let (_open, _writing) = (write_open, writing);
        write_side(
            &write_tcp,
            &mut writer,
            conn,
            replies,
            max_outbox,
            &write_traffic,
        )
        .await;
    };
    reactor::spawn(read);
    reactor::spawn(write);
}

/// Reads, frames and forwards input; always ends with a `Disconnected` event, after
/// which the processing thread drops the outbox and the writer finishes.
async fn read_side<R: ReadChunk>(
    stream: &Socket,
    reader: &mut R,
    conn: ConnId,
    events: &mut Events,
    limits: Limits,
    traffic: &Traffic,
    partial_timeout: Option<Duration>,
) {
    // Bytes of incomplete frames wait here; complete frames are cut from it.
    let mut buf = BytesMut::new();
    loop {
        let start = buf.len();
        let read = reader.read_chunk(&mut buf);
        // Only a connection holding half a frame is on the clock: sleeping workers and
        // idle clients may stay as long as they like.
        let read = match partial_timeout.filter(|_| start > 0) {
            Some(limit) => match reactor::timeout(limit, read).await {
                Ok(read) => read,
                Err(_) => {
                    tracing::warn!(
                        conn = conn.0,
                        bytes = start,
                        "incomplete frame timed out, closing"
                    );
                    stream.shutdown();
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
        traffic.read(n);
        let mut items = Vec::new();
        let failure = loop {
            match decode(&mut buf, &limits) {
                Ok(Some(frame)) => items.push(incoming(frame)),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        if buf.is_empty() {
            // Let go of the read's allocation: the frames cut from it keep what they need.
            buf = BytesMut::new();
        }
        if !items.is_empty() && events.send(Event::Input { conn, items }).await.is_err() {
            return;
        }
        if let Some(e) = failure {
            tracing::warn!(conn = conn.0, error = %e, "bad input, closing connection");
            stream.shutdown();
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
            Ok(request) => {
                if let Request::Echo { data } = &request {
                    fault::check(fault::Site::Io, data);
                }
                Incoming::Request(request)
            }
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
            Outgoing::Packet(response) => response.encode(out),
            Outgoing::Text(text) => encode_text(&text, out),
            Outgoing::Close => return Next::Close,
        }
    }
    Next::Continue
}

/// Writes replies, coalescing everything queued into one write, and drops a peer whose
/// unread output passes `max_outbox` bytes.
async fn write_side<W: AsyncWrite + Unpin>(
    stream: &Socket,
    writer: &mut W,
    conn: ConnId,
    mut replies: Replies,
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
                stream.shutdown();
                break;
            }
            if out.capacity() > KEEP_WRITE_CAPACITY {
                out = BytesMut::new();
            }
            // `next()` keeps its listener in the receiver between waits; a fresh
            // `recv()` would register and drop one for every batch.
            let Some(batch) = replies.next().await else {
                return;
            };
            closing = matches!(encode_batch(batch, &mut out), Next::Close);
            // Bounded: a backlog of replies is encoded a slice at a time between writes,
            // not in one go that would keep the thread from its other connections.
            while !closing && out.len() < WRITE_AHEAD {
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
        // The write first: it is ready at once unless the peer's socket is full, and only
        // then are further batches worth looking at (and counted against max_outbox).
        futures::select_biased! {
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
            stream.shutdown();
            break;
        }
    }
    // Discard whatever still arrives until the processing thread lets go of us.
    while replies.next().await.is_some() {}
}
