//! A thread's own event loop: one epoll per thread (mio's `Poll`) with persistent,
//! edge-triggered registrations, and the `block_on` that runs the thread's future on it.
//!
//! This is what libevent gives the C server's threads. async-io, the reactor under
//! async-std, has one epoll for the whole process instead: a socket's readiness is often
//! picked up by another thread than the one running the connection (a futex hop to hand
//! it over), each of its waits costs a timerfd_settime, two epoll_ctl and an eventfd read
//! besides the epoll_pwait, and every socket wait re-arms a one-shot registration (one
//! more epoll_ctl). Here a thread sleeps in one epoll_wait, a socket is registered once
//! for both directions, and a wake-up from another thread costs one eventfd write, and
//! only when this thread is asleep.
//!
//! A wake-up that arrives while the thread's future is being polled (one task of the
//! thread waking another) only gets the future polled again, without a look at the
//! sockets; after [`MAX_ROUNDS`] such polls in a row the thread looks at its sockets
//! without sleeping, so I/O is never starved by a busy thread.
//!
//! A thread that has been idle for [`IDLE_GIVE_BACK`] after doing work gives its freed
//! memory back to the system ([`crate::memory`]) once, then sleeps without a timeout.
//!
//! Timers (async-std's `sleep` and `timeout`) stay on async-io: they are rare on these
//! threads, and async-io's own thread drives them and wakes this one.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Token};
use slab::Slab;

/// The token of the thread's waker; sources are numbered from 0.
const WAKE: Token = Token(usize::MAX);
/// Polls of the thread's future in a row, at most, before a look at the sockets.
const MAX_ROUNDS: usize = 16;
/// Readiness events taken from the kernel per wait.
const EVENTS: usize = 1024;
/// Idle time after which a thread gives its freed memory back to the system.
const IDLE_GIVE_BACK: Duration = Duration::from_secs(1);

/// An event loop, made before its thread starts (so that failing to make one stops the
/// start-up rather than a thread) and run by [`Reactor::block_on`] on that thread.
pub struct Reactor {
    poll: mio::Poll,
    registry: mio::Registry,
    signal: Arc<Signal>,
}

/// How the thread's future, and other threads, wake the thread.
struct Signal {
    /// A wake-up arrived since the future was last polled.
    woken: AtomicBool,
    /// The thread is in (or on its way into) epoll_wait: a wake-up must interrupt it.
    sleeping: AtomicBool,
    waker: mio::Waker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        // The swap makes the first wake-up of a sleep the only one that writes.
        if self.sleeping.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "cannot wake an event loop");
            }
        }
    }
}

impl Reactor {
    pub fn new() -> io::Result<Reactor> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKE)?;
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            sleeping: AtomicBool::new(false),
            waker,
        });
        Ok(Reactor {
            poll,
            registry,
            signal,
        })
    }

    /// Runs `future` to completion on this thread; sources registered by its tasks
    /// ([`Registered::new`]) are served by this loop.
    pub fn block_on<F: Future>(self, future: F) -> F::Output {
        let Reactor {
            mut poll,
            registry,
            signal,
        } = self;
        let local = Rc::new(Local {
            registry,
            sources: RefCell::default(),
        });
        let _current = Current::enter(Rc::clone(&local));
        let waker = Waker::from(Arc::clone(&signal));
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        let mut events = Events::with_capacity(EVENTS);
        let mut rounds = 0;
        // Work was done since memory was last given back.
        let mut worked = true;
        loop {
            if signal.woken.swap(false, Ordering::SeqCst) {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
                worked = true;
                rounds += 1;
                if rounds < MAX_ROUNDS {
                    continue;
                }
            }
            rounds = 0;
            signal.sleeping.store(true, Ordering::SeqCst);
            // A wake-up between the poll above and here must not be slept through.
            let timeout = if signal.woken.load(Ordering::SeqCst) {
                Some(Duration::ZERO)
            } else {
                worked.then_some(IDLE_GIVE_BACK)
            };
            let waited = poll.poll(&mut events, timeout);
            signal.sleeping.store(false, Ordering::SeqCst);
            match waited {
                Ok(()) if events.is_empty() && timeout == Some(IDLE_GIVE_BACK) => {
                    crate::memory::give_back();
                    worked = false;
                }
                Ok(()) => local.dispatch(&events),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Not expected of a valid epoll; back off rather than spin.
                    tracing::error!(error = %e, "event loop wait failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

thread_local! {
    /// The loop running on this thread, for [`Registered::new`].
    static CURRENT: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
}

/// Makes a loop the thread's current one for as long as it runs.
struct Current(Option<Rc<Local>>);

impl Current {
    fn enter(local: Rc<Local>) -> Current {
        Current(CURRENT.with_borrow_mut(|current| current.replace(local)))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with_borrow_mut(|current| *current = previous);
    }
}

/// The thread's side of a running loop: where sources register.
struct Local {
    registry: mio::Registry,
    /// Registered sources by token (freed tokens are reused).
    sources: RefCell<Slab<Rc<Readiness>>>,
}

impl Local {
    /// Hands readiness from the kernel to the sources, waking their waiting tasks.
    fn dispatch(&self, events: &Events) {
        let sources = self.sources.borrow();
        for event in events {
            if event.token() == WAKE {
                continue;
            }
            let Some(readiness) = sources.get(event.token().0) else {
                continue;
            };
            // Errors and hang-ups wake both sides: their next attempt reports them.
            let (read_closed, write_closed) = (
                event.is_read_closed() || event.is_error(),
                event.is_write_closed() || event.is_error(),
            );
            if event.is_readable() || read_closed {
                readiness.read.set(read_closed);
            }
            if event.is_writable() || write_closed {
                readiness.write.set(write_closed);
            }
        }
    }
}

/// One side of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// What the last attempts on a source found, side by side.
struct Readiness {
    read: Side,
    write: Side,
}

/// One side of a source: whether an attempt may succeed, and the one task waiting for
/// it to (a connection's reader, its writer).
#[derive(Default)]
struct Side {
    ready: Cell<bool>,
    /// The kernel reported the end of this side (hang-up, error): it stays ready,
    /// since no further edge will come; the next attempt reports the end.
    closed: Cell<bool>,
    waiting: Cell<Option<Waker>>,
}

impl Readiness {
    fn side(&self, direction: Direction) -> &Side {
        match direction {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }
}

impl Side {
    fn set(&self, closed: bool) {
        self.ready.set(true);
        if closed {
            self.closed.set(true);
        }
        if let Some(waker) = self.waiting.take() {
            waker.wake();
        }
    }

    fn clear(&self) {
        if !self.closed.get() {
            self.ready.set(false);
        }
    }
}

/// A socket (or listener) on the current thread's loop, registered once for both
/// directions until dropped. Edge-triggered: a side counts as ready until an attempt
/// finds it is not ([`Registered::clear`]); the kernel reports the next change.
pub struct Registered<S: Source> {
    source: S,
    token: usize,
    readiness: Rc<Readiness>,
    local: Rc<Local>,
}

impl<S: Source> Registered<S> {
    /// Registers `source` (non-blocking) with the loop running on this thread.
    pub fn new(mut source: S) -> io::Result<Registered<S>> {
        let local = CURRENT
            .with_borrow(Clone::clone)
            .ok_or_else(|| io::Error::other("no event loop runs on this thread"))?;
        // Writable until a write finds otherwise; readable once the kernel says so
        // (registering a socket that already holds data reports it at once).
        let readiness = Rc::new(Readiness {
            read: Side::default(),
            write: Side {
                ready: Cell::new(true),
                ..Side::default()
            },
        });
        let token = local.sources.borrow_mut().insert(Rc::clone(&readiness));
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = local.registry.register(&mut source, Token(token), interest) {
            local.sources.borrow_mut().try_remove(token);
            return Err(e);
        }
        Ok(Registered {
            source,
            token,
            readiness,
            local,
        })
    }

    pub fn get_ref(&self) -> &S {
        &self.source
    }

    /// Ready when the side may be ready; otherwise the task waits for the kernel's word.
    pub fn poll_ready(&self, direction: Direction, cx: &mut Context<'_>) -> Poll<()> {
        let side = self.readiness.side(direction);
        if side.ready.get() {
            return Poll::Ready(());
        }
        let waker = match side.waiting.take() {
            Some(waker) if waker.will_wake(cx.waker()) => waker,
            _ => cx.waker().clone(),
        };
        side.waiting.set(Some(waker));
        Poll::Pending
    }

    /// Whether the side counts as ready (an attempt would be made without waiting).
    #[cfg(test)]
    pub fn is_ready(&self, direction: Direction) -> bool {
        self.readiness.side(direction).ready.get()
    }

    /// Marks the side not ready: the last attempt found nothing to do (or, for a read,
    /// took less than it asked for, which means the socket held no more data; an end of
    /// stream already reported keeps it ready).
    pub fn clear(&self, direction: Direction) {
        self.readiness.side(direction).clear();
    }

    /// Runs `attempt` once the side may be ready, again after each `WouldBlock`.
    pub fn poll_io<R>(
        &self,
        direction: Direction,
        cx: &mut Context<'_>,
        mut attempt: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            ready!(self.poll_ready(direction, cx));
            match attempt(&self.source) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(direction),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                done => return Poll::Ready(done),
            }
        }
    }
}

impl<S: Source> Drop for Registered<S> {
    fn drop(&mut self) {
        // Before the descriptor closes, so its token is never reported again.
        let _ = self.local.registry.deregister(&mut self.source);
        self.local.sources.borrow_mut().try_remove(self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use futures::{SinkExt, StreamExt};
    use std::io::{Read, Write};

    /// Two halves of one thread that wake each other a thousand times finish, and a
    /// wake-up from another thread while the loop sleeps still gets the future polled.
    #[test]
    fn wake_ups_inside_and_outside_a_poll_both_make_progress() {
        let (mut to_b, mut at_b) = mpsc::channel::<u32>(1);
        let (mut to_a, mut at_a) = mpsc::channel::<u32>(1);
        let (mut from_outside, mut outside) = mpsc::channel::<u32>(1);
        let a = async move {
            to_b.send(0).await.expect("send");
            while let Some(n) = at_a.next().await {
                if n >= 1000 {
                    break;
                }
                to_b.send(n + 1).await.expect("send");
            }
            drop(to_b);
            outside.next().await
        };
        let b = async move {
            while let Some(n) = at_b.next().await {
                if to_a.send(n + 1).await.is_err() {
                    break;
                }
            }
        };
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            futures::executor::block_on(from_outside.send(7)).expect("send from outside");
        });
        let reactor = Reactor::new().expect("event loop");
        let got = reactor.block_on(async move {
            let (got, ()) = futures::join!(a, b);
            got
        });
        assert_eq!(got, Some(7));
        sender.join().expect("sender thread");
    }

    /// Registering needs a running loop on the thread.
    #[test]
    fn registering_outside_a_loop_is_an_error() {
        let listener = mio::net::TcpListener::bind(([127, 0, 0, 1], 0).into()).expect("bind");
        assert!(Registered::new(listener).is_err());
    }

    /// A listener and a socket on the loop: the accept waits for the client, reads wait
    /// for data, and a write the peer is too slow for waits for room and then finishes.
    #[test]
    fn sources_wait_for_readiness_in_both_directions() {
        let listener = mio::net::TcpListener::bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let addr = listener.local_addr().expect("address");
        let big: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let expected = big.clone();
        let client = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let mut client = std::net::TcpStream::connect(addr).expect("connect");
            std::thread::sleep(Duration::from_millis(30));
            client.write_all(b"ping").expect("write");
            // Let the server's write fill the socket buffers before reading.
            std::thread::sleep(Duration::from_millis(100));
            let mut got = Vec::new();
            client.read_to_end(&mut got).expect("read");
            got
        });
        Reactor::new().expect("event loop").block_on(async move {
            let listener = Registered::new(listener).expect("register listener");
            let (stream, _) =
                std::future::poll_fn(|cx| listener.poll_io(Direction::Read, cx, |l| l.accept()))
                    .await
                    .expect("accept");
            let stream = Registered::new(stream).expect("register socket");
            let mut buf = [0u8; 16];
            let n = std::future::poll_fn(|cx| {
                stream.poll_io(Direction::Read, cx, |s| (&*s).read(&mut buf))
            })
            .await
            .expect("read");
            assert_eq!(&buf[..n], b"ping");
            let mut rest = &big[..];
            while !rest.is_empty() {
                let n = std::future::poll_fn(|cx| {
                    stream.poll_io(Direction::Write, cx, |s| (&*s).write(rest))
                })
                .await
                .expect("write");
                rest = &rest[n..];
            }
        });
        assert_eq!(client.join().expect("client thread"), expected);
    }
}
