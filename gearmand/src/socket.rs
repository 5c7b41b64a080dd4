//! A client connection's TCP socket on the async-io reactor (the one async-std runs
//! on), read so that a message costs one `recv` rather than three.
//!
//! async-io's own `poll_read` tries a read before it looks at readiness, and a
//! readiness event it has already used still counts once more afterwards. In a
//! request/reply protocol every read that empties the socket is followed by a wait, so
//! each message cost the data read plus two reads that found nothing. Here a read that
//! returned less than asked for marks the socket drained, and the next read waits for
//! readiness first. Nothing is missed: re-arming the (one-shot) registration reports
//! data that arrived in between at once.
//!
//! A connection's reader takes its bytes through [`ReadChunk`]: a plain socket reads
//! into its I/O thread's one scratch buffer, so an idle connection holds no read buffer
//! at all; a TLS stream reads through a buffer of its own ([`Buffered`]).

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_io::Async;
use bytes::BytesMut;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite};

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
pub struct Socket {
    inner: Arc<Async<TcpStream>>,
    /// The last read emptied the socket: wait for readiness before the next one.
    drained: bool,
}

impl Socket {
    /// Wraps a socket already registered with the reactor. A new connection has sent
    /// nothing yet, so the first read waits for readiness.
    pub fn new(stream: Async<TcpStream>) -> Socket {
        Socket {
            inner: Arc::new(stream),
            drained: true,
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// Shuts down both directions; the peer sees the close, our reader sees EOF.
    pub fn shutdown(&self) {
        let _ = self.inner.get_ref().shutdown(Shutdown::Both);
    }
}

impl Clone for Socket {
    fn clone(&self) -> Socket {
        Socket {
            inner: Arc::clone(&self.inner),
            drained: self.drained,
        }
    }
}

impl ReadChunk for Socket {
    async fn read_chunk(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            if self.drained {
                self.inner.readable().await?;
            }
            let read = SCRATCH.with_borrow_mut(|scratch| {
                let n = (&mut self.inner.get_ref()).read(scratch)?;
                buf.extend_from_slice(&scratch[..n]);
                Ok::<_, io::Error>(n)
            });
            match read {
                Ok(n) => {
                    self.drained = n < SCRATCH_LEN;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drained = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
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
        self.inner.get_ref().as_raw_fd()
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.drained {
                ready!(self.inner.poll_readable(cx))?;
            }
            match (&mut self.inner.get_ref()).read(buf) {
                Ok(n) => {
                    self.drained = n < buf.len();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drained = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback connection: the client's end and our socket on the server's end.
    async fn connected() -> (Async<TcpStream>, Socket) {
        let listener =
            Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind loopback");
        let addr = listener.get_ref().local_addr().expect("address");
        let client = Async::<TcpStream>::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        (client, Socket::new(accepted))
    }

    /// Messages that arrive after the socket was found drained are still read, each
    /// once, whether they come before or after the reader starts waiting.
    #[test]
    fn a_drained_socket_still_sees_every_message() {
        async_io::block_on(async {
            let (mut client, mut server) = connected().await;
            let mut buf = [0u8; 64];
            for round in 0..20u8 {
                client.write_all(&[round; 3]).await.expect("write");
                let n = server.read(&mut buf).await.expect("read");
                assert_eq!(&buf[..n], &[round; 3]);
                assert!(server.drained, "a short read marks the socket drained");
            }
            drop(client);
            assert_eq!(server.read(&mut buf).await.expect("read EOF"), 0);
        });
    }

    /// Chunks read through the thread's scratch buffer land in the connection's own
    /// buffer whole, also when one message is larger than the scratch buffer.
    #[test]
    fn chunks_append_to_the_frame_buffer() {
        async_io::block_on(async {
            let (mut client, mut server) = connected().await;
            let big: Vec<u8> = (0..3 * SCRATCH_LEN + 7).map(|i| (i % 251) as u8).collect();
            let writer = async {
                client.write_all(&big).await.expect("write");
                client
            };
            let reader = async {
                let mut buf = BytesMut::new();
                while buf.len() < big.len() {
                    let n = server.read_chunk(&mut buf).await.expect("read");
                    assert!(n > 0 && n <= SCRATCH_LEN);
                }
                buf
            };
            let (client, buf) = futures::join!(writer, reader);
            assert_eq!(buf, big);
            drop(client);
            let mut rest = BytesMut::new();
            assert_eq!(server.read_chunk(&mut rest).await.expect("EOF"), 0);
        });
    }
}
