//! Replies waiting to leave the state, kept in per-connection order even when some of
//! them (JOB_CREATED of a job on its way to the persistent queue) are not known yet.

use std::collections::VecDeque;

use bytes::Bytes;
use gearman_shared::protocol::Response;

use super::job::JobId;
use super::ConnId;

/// Something to write to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A binary packet.
    Packet(Response),
    /// Admin reply bytes, terminators included.
    Text(Bytes),
    /// Close the connection after what was queued before.
    Close,
}

/// A reply, or the place of one that waits for the store.
#[derive(Debug)]
enum Held {
    Ready(Option<Outgoing>),
    Awaiting(JobId),
}

/// Collects replies for the caller to route.
#[derive(Debug, Default)]
pub struct Outbox {
    ready: Vec<(ConnId, Outgoing)>,
    /// Connections with a reply still awaiting the store: everything after it waits too,
    /// so a client sees its JOB_CREATEDs in submission order.
    held: super::Map<ConnId, VecDeque<Held>>,
}

impl Outbox {
    /// Queues a reply behind whatever `conn` already has waiting.
    pub fn emit(&mut self, conn: ConnId, outgoing: Outgoing) {
        match self.held.get_mut(&conn) {
            Some(queue) => queue.push_back(Held::Ready(Some(outgoing))),
            None => self.ready.push((conn, outgoing)),
        }
    }

    /// Reserves the place of a reply to `conn` that depends on job `id` being stored.
    pub fn reserve(&mut self, conn: ConnId, id: JobId) {
        self.held
            .entry(conn)
            .or_default()
            .push_back(Held::Awaiting(id));
    }

    /// Fills the place reserved for job `id` (with nothing, for a place that only had to
    /// wait) and releases what no longer waits.
    pub fn fill(&mut self, conn: ConnId, id: JobId, outgoing: Option<Outgoing>) {
        let Some(queue) = self.held.get_mut(&conn) else {
            return;
        };
        if let Some(slot) = queue
            .iter_mut()
            .find(|h| matches!(h, Held::Awaiting(j) if *j == id))
        {
            *slot = Held::Ready(outgoing);
        }
        while let Some(Held::Ready(_)) = queue.front() {
            if let Some(Held::Ready(Some(outgoing))) = queue.pop_front() {
                self.ready.push((conn, outgoing));
            }
        }
        if queue.is_empty() {
            self.held.remove(&conn);
        }
    }

    /// Drops everything held for a connection that is gone.
    pub fn forget(&mut self, conn: ConnId) {
        self.held.remove(&conn);
    }

    /// Replies ready to go, in order.
    pub fn take(&mut self) -> std::vec::Drain<'_, (ConnId, Outgoing)> {
        // Drained rather than taken: the list keeps its room for the next batch.
        self.ready.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gearman_shared::protocol::Response;

    fn text(s: &'static str) -> Outgoing {
        Outgoing::Text(bytes::Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn replies_wait_behind_a_reserved_place() {
        let mut out = Outbox::default();
        let (a, b) = (ConnId(1), ConnId(2));
        out.emit(a, text("first"));
        out.reserve(a, JobId(7));
        out.emit(a, text("after"));
        out.emit(b, text("other"));
        assert_eq!(
            out.take().collect::<Vec<_>>(),
            vec![(a, text("first")), (b, text("other"))]
        );
        out.fill(a, JobId(7), Some(Outgoing::Packet(Response::Noop)));
        assert_eq!(
            out.take().collect::<Vec<_>>(),
            vec![(a, Outgoing::Packet(Response::Noop)), (a, text("after"))]
        );
        out.emit(a, text("free"));
        assert_eq!(out.take().collect::<Vec<_>>(), vec![(a, text("free"))]);
        out.reserve(b, JobId(8));
        out.emit(b, text("behind a barrier"));
        out.fill(b, JobId(8), None);
        assert_eq!(
            out.take().collect::<Vec<_>>(),
            vec![(b, text("behind a barrier"))]
        );
    }
}
