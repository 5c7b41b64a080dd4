//! One function: its three priority queues, its counters and the workers registered for it.

use std::collections::VecDeque;

use gearman_shared::protocol::Priority;

use super::job::JobId;
use super::job_table::should_shrink;
use super::ConnId;

/// What happened to a function's jobs since it was created.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Jobs created.
    pub submitted: u64,
    /// WORK_COMPLETE.
    pub completed: u64,
    /// WORK_FAIL, or failed by the server.
    pub failed: u64,
    /// WORK_EXCEPTION.
    pub exceptions: u64,
    /// Put back in the queue.
    pub retried: u64,
    /// CAN_DO_TIMEOUT expiries.
    pub timed_out: u64,
    /// Cancelled by an admin.
    pub cancelled: u64,
}

/// A function known to the server.
#[derive(Debug, Default)]
pub struct Function {
    /// Runnable jobs per priority (index [`Priority::index`]), oldest first. May hold
    /// ignored jobs, which are reaped when they reach the front.
    pub queues: [VecDeque<JobId>; 3],
    /// Epoch jobs not yet due.
    pub scheduled: usize,
    /// All jobs of the function: queued, scheduled and running, ignored ones included.
    pub total: usize,
    /// Jobs assigned to workers.
    pub running: usize,
    /// One entry per CAN_DO registration (duplicates count), a ring for NOOP rotation.
    pub workers: Vec<ConnId>,
    /// Where the next NOOP round starts in `workers`.
    pub wake_start: usize,
    /// `maxqueue` limits per priority; 0 = unlimited.
    pub max_queue: [u32; 3],
    /// Statistics.
    pub counters: Counters,
}

impl Function {
    /// Jobs waiting in the queue of `priority` (scheduled epoch jobs count as NORMAL).
    pub fn queued(&self, priority: Priority) -> usize {
        let scheduled = if priority == Priority::Normal {
            self.scheduled
        } else {
            0
        };
        self.queues[priority.index()].len() + scheduled
    }

    /// Takes the first job of a queue; a queue that drained gives its memory back.
    pub fn pop_front(&mut self, priority: Priority) -> Option<JobId> {
        let queue = &mut self.queues[priority.index()];
        let id = queue.pop_front();
        if should_shrink(queue.len(), queue.capacity()) {
            queue.shrink_to(queue.len() * 2);
        }
        id
    }

    /// Adds a registration just before the ring's start, so it is woken last in the
    /// current rotation.
    pub fn add_worker(&mut self, conn: ConnId) {
        self.workers.insert(self.wake_start, conn);
        self.wake_start += 1;
    }

    /// Removes every registration of `conn`.
    pub fn remove_worker(&mut self, conn: ConnId) {
        let before_start = self.workers[..self.wake_start.min(self.workers.len())]
            .iter()
            .filter(|&&c| c == conn)
            .count();
        self.workers.retain(|&c| c != conn);
        self.wake_start -= before_start;
        if self.wake_start >= self.workers.len() {
            self.wake_start = 0;
        }
    }

    /// Whether nothing refers to the function any more but its name.
    pub fn is_idle(&self) -> bool {
        self.total == 0 && self.workers.is_empty()
    }
}
