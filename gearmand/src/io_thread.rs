//! An I/O thread's event loop: it owns the connections handed to it and runs them all
//! concurrently on this one thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_std::channel::Receiver;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::connection::{self, Task};
use crate::event::ConnId;

/// A socket accepted by the listener, on its way to an I/O thread, with its place in
/// the connection count (given back when the connection ends).
pub type NewConnection = (ConnId, mio::net::TcpStream, Slot);

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

/// Runs connections until the listener is gone and every connection has ended.
///
/// A connection is two tasks in this thread's set, its reader and its writer, so a reply
/// arriving wakes only the writer: polling both together would make every wake-up of one
/// side cost the other side a read attempt (a system call) as well. Taking in new
/// connections is a task of the set too, polled only when one arrives.
pub async fn run(accepted: Receiver<NewConnection>, context: connection::Context) {
    let mut tasks = FuturesUnordered::new();
    tasks.push(take_in(accepted, context));
    while let Some(spawned) = tasks.next().await {
        tasks.extend(spawned);
    }
}

/// Waits for the next connection from the listener and hands over its set-up along with
/// the wait for the one after; nothing once the listener is gone.
fn take_in(mut accepted: Receiver<NewConnection>, context: connection::Context) -> Task {
    Task::new(async move {
        // `next()` keeps its listener inside the receiver between polls.
        match accepted.next().await {
            Some((conn, stream, slot)) => {
                let serve = connection::serve(stream, conn, context.clone(), slot);
                vec![serve, take_in(accepted, context)]
            }
            None => Vec::new(),
        }
    })
}
