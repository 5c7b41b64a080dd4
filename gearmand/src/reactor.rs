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
//! Besides the thread's own future, a loop runs the tasks handed to [`spawn`], each
//! polled only when woken, and the thread's timers ([`sleep`], [`timeout`]), whose
//! earliest deadline is the epoll_wait timeout (`timers.rs`). [`Reactor::block_on`]
//! returns once the future and every spawned task have finished.
//!
//! Cooperative budget: a task may find a source ready at most [`BUDGET`] times per poll;
//! then its next readiness check wakes it and returns `Pending`, so a connection whose
//! socket always has input (a flood) yields, and its neighbours and the timers get their
//! turn.

mod timers;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use mio::event::Source;
use mio::{Events, Interest, Token};
use slab::Slab;

use timers::{Key, Timers};

/// The token of the thread's waker; sources are numbered from 0.
const WAKE: Token = Token(usize::MAX);
/// Polls of the thread's future in a row, at most, before a look at the sockets.
const MAX_ROUNDS: usize = 16;
/// Readiness events taken from the kernel per wait.
const EVENTS: usize = 1024;
/// Idle time after which a thread gives its freed memory back to the system.
const IDLE_GIVE_BACK: Duration = Duration::from_secs(1);
/// Ready sources a task may use per poll before it yields.
pub const BUDGET: u32 = 128;

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

    /// Runs `future` and the tasks it spawns ([`spawn`]) on this thread until all have
    /// finished; sources registered by them ([`Registered::new`]) and their timers are
    /// served by this loop.
    pub fn block_on<F: Future>(self, future: F) -> F::Output {
        let Reactor {
            mut poll,
            registry,
            signal,
        } = self;
        let local = Rc::new(Local {
            registry,
            sources: RefCell::default(),
            timers: RefCell::default(),
            spawned: RefCell::default(),
            signal: Arc::clone(&signal),
        });
        let _current = Current::enter(Rc::clone(&local));
        let waker = Waker::from(Arc::clone(&signal));
        let mut cx = Context::from_waker(&waker);
        let mut run = Run {
            main: pin!(future),
            output: None,
            tasks: FuturesUnordered::new(),
        };
        let mut events = Events::with_capacity(EVENTS);
        let mut due = Vec::new();
        let mut rounds = 0;
        // Work was done since memory was last given back.
        let mut worked = true;
        loop {
            if signal.woken.swap(false, Ordering::SeqCst) {
                if let Some(output) = run.poll(&local, &mut cx) {
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
            let until_timer = local
                .timers
                .borrow_mut()
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()));
            // A wake-up between the poll above and here must not be slept through.
            let woken = signal.woken.load(Ordering::SeqCst);
            let giving_back = !woken && worked && until_timer.is_none_or(|t| t > IDLE_GIVE_BACK);
            let timeout = if woken {
                Some(Duration::ZERO)
            } else if giving_back {
                Some(IDLE_GIVE_BACK)
            } else {
                until_timer
            };
            let waited = poll.poll(&mut events, timeout);
            signal.sleeping.store(false, Ordering::SeqCst);
            match waited {
                Ok(()) if events.is_empty() && giving_back => {
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
            if until_timer.is_some() {
                local.timers.borrow_mut().expire(Instant::now(), &mut due);
                // Woken outside the borrow: a woken task may set a timer of its own.
                due.drain(..).for_each(Waker::wake);
            }
        }
    }
}

/// The thread's future and its spawned tasks.
struct Run<'a, F: Future> {
    main: Pin<&'a mut F>,
    /// The future's output, kept until the tasks have finished too.
    output: Option<F::Output>,
    tasks: FuturesUnordered<Budgeted>,
}

impl<F: Future> Run<'_, F> {
    /// Polls the future (until it is done) and every woken task; the output once all
    /// have finished.
    fn poll(&mut self, local: &Local, cx: &mut Context<'_>) -> Option<F::Output> {
        if self.output.is_none() {
            BUDGET_LEFT.set(BUDGET);
            if let Poll::Ready(output) = self.main.as_mut().poll(cx) {
                self.output = Some(output);
            }
        }
        loop {
            self.tasks
                .extend(local.spawned.take().into_iter().map(Budgeted));
            let finished = match self.tasks.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => continue,
                Poll::Ready(None) => true,
                Poll::Pending => false,
            };
            if local.spawned.borrow().is_empty() {
                if finished && self.output.is_some() {
                    return self.output.take();
                }
                return None;
            }
        }
    }
}

/// A spawned task, given a fresh budget at each poll.
struct Budgeted(LocalBoxFuture<'static, ()>);

impl Future for Budgeted {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        BUDGET_LEFT.set(BUDGET);
        self.0.as_mut().poll(cx)
    }
}

/// Runs `future` as a task of this thread's loop, polled whenever it is woken, until it
/// finishes. Only inside a running loop (its tasks and futures).
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    CURRENT.with_borrow(|current| match current {
        Some(local) => {
            local.spawned.borrow_mut().push(Box::pin(future));
            // Get the loop to take it in; no system call, the thread is awake.
            local.signal.woken.store(true, Ordering::SeqCst);
        }
        None => panic!("reactor::spawn outside a running event loop"),
    });
}

/// Takes one unit of the running task's budget; `false` when it is spent, after waking
/// the task so that it is polled again once its neighbours have had their turn.
fn take_budget(cx: &Context<'_>) -> bool {
    let left = BUDGET_LEFT.get();
    if left == 0 {
        cx.waker().wake_by_ref();
        return false;
    }
    BUDGET_LEFT.set(left - 1);
    true
}

/// Completes after `duration`, on this thread's loop.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        deadline: Instant::now() + duration,
        key: None,
    }
}

/// A timer of this thread's loop (see [`sleep`]).
pub struct Sleep {
    deadline: Instant,
    key: Option<Key>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(key) = self.key.take() {
                with_timers(|timers| timers.remove(key));
            }
            return Poll::Ready(());
        }
        let (deadline, key) = (self.deadline, self.key);
        self.key = with_timers(|timers| match key {
            Some(key) => {
                timers.set_waker(key, cx.waker());
                key
            }
            None => timers.insert(deadline, cx.waker().clone()),
        });
        if self.key.is_none() {
            // No loop on this thread: nothing would ever wake the task.
            panic!("reactor::sleep outside a running event loop");
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            with_timers(|timers| timers.remove(key));
        }
    }
}

fn with_timers<R>(f: impl FnOnce(&mut Timers) -> R) -> Option<R> {
    CURRENT.with_borrow(|current| {
        current
            .as_ref()
            .map(|local| f(&mut local.timers.borrow_mut()))
    })
}

/// The time given to [`timeout`] ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// `future`'s output, or [`Elapsed`] if it takes longer than `duration`.
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut timer = pin!(sleep(duration));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        timer.as_mut().poll(cx).map(|()| Err(Elapsed))
    })
    .await
}

thread_local! {
    /// The loop running on this thread, for [`Registered::new`], [`spawn`] and timers.
    static CURRENT: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
    /// What is left of the running task's budget.
    static BUDGET_LEFT: Cell<u32> = const { Cell::new(BUDGET) };
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

/// The thread's side of a running loop: where sources, timers and tasks register.
struct Local {
    registry: mio::Registry,
    /// Registered sources by token (freed tokens are reused).
    sources: RefCell<Slab<Rc<Readiness>>>,
    timers: RefCell<Timers>,
    /// Tasks spawned since the loop last took them in.
    spawned: RefCell<Vec<LocalBoxFuture<'static, ()>>>,
    signal: Arc<Signal>,
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
            return if take_budget(cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
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

    /// Spawned tasks run on the loop, sleeps end in deadline order, and `block_on` returns
    /// only once the future and every task have finished.
    #[test]
    fn spawned_tasks_and_timers_run_on_the_loop() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&order);
        let started = Instant::now();
        let got = Reactor::new().expect("event loop").block_on(async move {
            for (ms, name) in [(30, "c"), (10, "a"), (20, "b")] {
                let order = Rc::clone(&seen);
                spawn(async move {
                    sleep(Duration::from_millis(ms)).await;
                    order.borrow_mut().push(name);
                });
            }
            let never = std::future::pending::<()>();
            let cut = timeout(Duration::from_millis(5), never).await;
            let quick = timeout(Duration::from_secs(60), async { 7 }).await;
            (cut, quick)
        });
        assert_eq!(got, (Err(Elapsed), Ok(7)));
        assert_eq!(*order.borrow(), ["a", "b", "c"]);
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    /// A task whose source is always ready yields after its budget: a neighbour's timer
    /// fires long before the busy task would have finished on its own.
    #[test]
    fn a_task_that_never_waits_yields_to_its_neighbours() {
        const LIMIT: u64 = 50_000_000;
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socket pair");
        a.set_nonblocking(true).expect("non-blocking");
        let ticked = Rc::new(Cell::new(None));
        let tick = Rc::clone(&ticked);
        let busy_for = Reactor::new().expect("event loop").block_on(async move {
            let source = Registered::new(mio::net::UnixStream::from_std(a)).expect("register");
            spawn(async move {
                sleep(Duration::from_millis(1)).await;
                tick.set(Some(()));
            });
            let mut count = 0u64;
            // A socket's write side stays ready: without a budget this never yields.
            while ticked.get().is_none() && count < LIMIT {
                std::future::poll_fn(|cx| source.poll_ready(Direction::Write, cx)).await;
                count += 1;
            }
            count
        });
        assert!(busy_for < LIMIT, "the timer never got a turn");
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
