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

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_io::Async;
use futures::io::{AsyncRead, AsyncWrite};

/// One connection's socket; clones share it (the reader and the writer each hold one).
pub struct Socket {
    inner: Arc<Async<TcpStream>>,
    /// The last read emptied the socket: wait for readiness before the next one.
    drained: bool,
}

impl Socket {
    /// Wraps a socket already registered with the reactor.
    pub fn new(stream: Async<TcpStream>) -> Socket {
        Socket {
            inner: Arc::new(stream),
            drained: false,
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
            drained: false,
        }
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

    /// Messages that arrive after the socket was found drained are still read, each
    /// once, whether they come before or after the reader starts waiting.
    #[test]
    fn a_drained_socket_still_sees_every_message() {
        async_io::block_on(async {
            let listener =
                Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind loopback");
            let addr = listener.get_ref().local_addr().expect("address");
            let mut client = Async::<TcpStream>::connect(addr).await.expect("connect");
            let (accepted, _) = listener.accept().await.expect("accept");
            let mut server = Socket::new(accepted);
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
}
