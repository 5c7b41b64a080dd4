//! The HTTP port's one source of time: every sleep and timeout of the HTTP code (head,
//! body and handshake limits, the accept back-off, hyper's header timer) goes through
//! [`sleep`].
//!
//! The `gearmand-http` thread runs on its own event loop ([`crate::reactor`]), and the
//! timers are that loop's: no other thread is involved.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::reactor;

/// Resolves after `duration`, on this thread's event loop.
pub fn sleep(duration: Duration) -> impl Future<Output = ()> + Send + Sync + 'static {
    reactor::sleep(duration)
}

/// `future`'s output, or `None` if it takes longer than `limit`.
pub async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    reactor::timeout(limit, future).await.ok()
}

/// hyper's timer (its header read timeout) on [`sleep`].
#[derive(Clone, Copy, Debug, Default)]
pub struct HyperTimer;

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleeping(Box::pin(sleep(duration))))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }
}

/// A [`sleep`] as hyper's `Sleep` (a trait of its own, so a type of ours implements it).
struct Sleeping(Pin<Box<dyn Future<Output = ()> + Send + Sync>>);

impl Future for Sleeping {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for Sleeping {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_end_slow_futures_only() {
        let event_loop = reactor::Reactor::new().expect("event loop");
        let (fast, slow) = event_loop.block_on(async {
            let fast = timeout(Duration::from_secs(5), async { 7 }).await;
            let slow = timeout(Duration::from_millis(20), futures::future::pending::<()>()).await;
            (fast, slow)
        });
        assert_eq!((fast, slow), (Some(7), None));
    }
}
