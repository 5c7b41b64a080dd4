//! hyper's I/O traits (`hyper::rt::Read`/`Write`) over futures-io streams: the plain
//! socket on the thread's event loop ([`crate::socket::Socket`]) and the TLS stream
//! `futures_rustls` makes of it both implement futures-io, so one adapter serves both.
//!
//! hyper hands reads a buffer that may be uninitialised; filling it in place needs
//! `unsafe` (forbidden here), so a read lands in the thread's scratch buffer first and is
//! copied over. Requests are small; the copy is cheap next to the system call.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

/// The most one read takes (hyper asks for at most its read buffer's free space).
const SCRATCH_LEN: usize = 16 * 1024;

thread_local! {
    /// Where every connection of the HTTP thread reads before the copy into hyper's
    /// buffer. Never held across an await: a read is one synchronous poll.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_LEN]);
}

/// A futures-io stream as hyper's I/O.
pub struct HyperIo<S>(pub S);

impl<S: AsyncRead + Unpin> hyper::rt::Read for HyperIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let want = buf.remaining().min(SCRATCH_LEN);
        if want == 0 {
            return Poll::Ready(Ok(()));
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let n = ready!(Pin::new(&mut self.0).poll_read(cx, &mut scratch[..want]))?;
            buf.put_slice(&scratch[..n]);
            Poll::Ready(Ok(()))
        })
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
