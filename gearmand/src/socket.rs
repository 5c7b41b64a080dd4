//! A client connection's TCP socket on its I/O thread's event loop ([`crate::reactor`]),
//! read so that a message costs one `recv`.
//!
//! A read that returned less than it asked for means the socket is empty, so the next
//! read waits for the kernel's word first instead of finding out with a failed `recv`.
//! Nothing is missed: the registration is edge-triggered, and data arriving after the
//! read is reported as a new edge.
//!
//! A connection's reader takes its bytes through [`ReadChunk`]: a plain socket reads
//! into its I/O thread's one scratch buffer, so an idle connection holds no read buffer
//! at all; a TLS stream reads through a buffer of its own ([`Buffered`]).

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use mio::net::TcpStream;

use crate::reactor::{Direction, Registered};

/// Size of an I/O thread's scratch buffer: the most one read of a plain socket takes.
const SCRATCH_LEN: usize = 64 * 1024;
/// First read buffer of a [`Buffered`] stream.
const MIN_READ: usize = 4 * 1024;
/// Largest read buffer a busy [`Buffered`] stream grows to.
const MAX_READ: usize = 64 * 1024;

thread_local! {
    /// The read buffer every plain connection of this I/O thread shares. Never held
    /// across an await: a read copies what arrived into the connection's frame buffer.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_LEN]);
}

/// Where a connection's reader takes bytes from.
pub(crate) trait ReadChunk {
    /// Appends what one read brings to `buf`; `Ok(0)` at end of stream.
    fn read_chunk(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>>;
}

/// One connection's socket; clones share it (the reader and the writer each hold one).
#[derive(Clone)]
pub struct Socket(Rc<Registered<TcpStream>>);

impl Socket {
    /// Registers an accepted socket with the event loop of the calling thread.
    pub fn new(stream: TcpStream) -> io::Result<Socket> {
        Ok(Socket(Rc::new(Registered::new(stream)?)))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().peer_addr()
    }

    /// Shuts down both directions; the peer sees the close, our reader sees EOF.
    pub fn shutdown(&self) {
        let _ = self.0.get_ref().shutdown(Shutdown::Both);
    }

    /// Resolves once the peer has closed the connection (or it failed) with nothing left
    /// unread; never while unread bytes wait, since a client that sent its next request
    /// already is still there. For the HTTP port, which reads nothing while a request
    /// waits for its job. A `peek`, so the bytes stay for the reader.
    pub async fn peer_gone(&self) {
        let mut probe = [0u8; 1];
        let peeked = poll_fn(|cx| {
            self.0
                .poll_io(Direction::Read, cx, |stream| stream.peek(&mut probe))
        })
        .await;
        if matches!(peeked, Ok(n) if n > 0) {
            futures::future::pending::<()>().await;
        }
    }

    /// One `recv` (of at most `asked` bytes) once the socket may hold data.
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        mut recv: impl FnMut(&mut &TcpStream) -> io::Result<usize>,
        asked: usize,
    ) -> Poll<io::Result<usize>> {
        self.0.poll_io(Direction::Read, cx, |mut stream| {
            let n = recv(&mut stream)?;
            // A short read emptied the socket. End of stream stays ready: no further
            // edge would report it again.
            if n > 0 && n < asked {
                self.0.clear(Direction::Read);
            }
            Ok(n)
        })
    }
}

impl ReadChunk for Socket {
    async fn read_chunk(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        poll_fn(|cx| {
            self.poll_recv(
                cx,
                |stream| {
                    SCRATCH.with_borrow_mut(|scratch| {
                        let n = stream.read(scratch)?;
                        buf.extend_from_slice(&scratch[..n]);
                        Ok(n)
                    })
                },
                SCRATCH_LEN,
            )
        })
        .await
    }
}

/// A stream read through a buffer of its own, which grows from 4 KiB while reads fill
/// it (TLS: the decrypted bytes come out of the TLS layer, not the socket).
pub struct Buffered<R> {
    reader: R,
    scratch: Vec<u8>,
}

impl<R> Buffered<R> {
    pub fn new(reader: R) -> Buffered<R> {
        Buffered {
            reader,
            scratch: Vec::new(),
        }
    }
}

impl<R: AsyncRead + Unpin> ReadChunk for Buffered<R> {
    async fn read_chunk(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if self.scratch.is_empty() {
            self.scratch.resize(MIN_READ, 0);
        }
        let n = self.reader.read(&mut self.scratch).await?;
        buf.extend_from_slice(&self.scratch[..n]);
        if n == self.scratch.len() && self.scratch.len() < MAX_READ {
            self.scratch.resize(self.scratch.len() * 2, 0);
        }
        Ok(n)
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.0.get_ref().as_raw_fd()
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let asked = buf.len();
        self.poll_recv(cx, |stream| stream.read(buf), asked)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0
            .poll_io(Direction::Write, cx, |mut stream| stream.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::Reactor;
    use futures::io::AsyncReadExt;

    /// A loopback connection: the client's end and our socket on the server's end.
    fn connected() -> (std::net::TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        accepted.set_nonblocking(true).expect("non-blocking");
        (client, TcpStream::from_std(accepted))
    }

    /// A short read marks the socket empty; the next message is still read, and read
    /// once, and so is the end of stream.
    #[test]
    fn a_drained_socket_still_sees_every_message() {
        let (mut client, accepted) = connected();
        Reactor::new().expect("event loop").block_on(async move {
            let mut server = Socket::new(accepted).expect("register");
            let mut buf = [0u8; 64];
            for round in 0..20u8 {
                client.write_all(&[round; 3]).expect("write");
                let n = server.read(&mut buf).await.expect("read");
                assert_eq!(&buf[..n], &[round; 3]);
                assert!(
                    !server.0.is_ready(Direction::Read),
                    "a short read marks the socket drained"
                );
            }
            drop(client);
            assert_eq!(server.read(&mut buf).await.expect("read EOF"), 0);
        });
    }

    /// Messages written by another thread while the reader runs or waits are all read,
    /// in order, up to the end of stream (which may arrive together with the last data).
    #[test]
    fn an_emptied_socket_still_sees_every_message() {
        let (mut client, accepted) = connected();
        let writer = std::thread::spawn(move || {
            for round in 0..20u8 {
                client.write_all(&[round; 3]).expect("write");
                if round % 2 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
        });
        Reactor::new().expect("event loop").block_on(async move {
            let mut server = Socket::new(accepted).expect("register");
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                let n = server.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let expected: Vec<u8> = (0..20u8).flat_map(|round| [round; 3]).collect();
            assert_eq!(got, expected);
        });
        writer.join().expect("writer thread");
    }

    /// Chunks read through the thread's scratch buffer land in the connection's own
    /// buffer whole, also when one message is larger than the scratch buffer.
    #[test]
    fn chunks_append_to_the_frame_buffer() {
        let (mut client, accepted) = connected();
        let big: Vec<u8> = (0..3 * SCRATCH_LEN + 7).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = std::thread::spawn(move || client.write_all(&sent).expect("write"));
        Reactor::new().expect("event loop").block_on(async move {
            let mut server = Socket::new(accepted).expect("register");
            let mut buf = BytesMut::new();
            while buf.len() < big.len() {
                let n = server.read_chunk(&mut buf).await.expect("read");
                assert!(n > 0 && n <= SCRATCH_LEN);
            }
            assert_eq!(buf, big);
            let mut rest = BytesMut::new();
            assert_eq!(server.read_chunk(&mut rest).await.expect("EOF"), 0);
        });
        writer.join().expect("writer thread");
    }
}
