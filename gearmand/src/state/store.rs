//! The persistent queue seen from the job model: what to write, what the write means for
//! the waiting jobs and replies, and loading the stored jobs at start-up.

use gearman_shared::protocol::{ErrorCode, JobMode, Response, SubmitJob};

use super::{submit, JobId, JobState, State, StoreBatch, UniqueKey};
use crate::event::{ConnId, Outgoing};
use crate::queue::{self, StoreOp, StoredJob};

impl State {
    /// Changes for the persistent queue since the last call.
    pub fn take_store_batch(&mut self) -> Option<StoreBatch> {
        if self.store_ops.is_empty() {
            return None;
        }
        Some(StoreBatch {
            ops: std::mem::take(&mut self.store_ops),
            adds: std::mem::take(&mut self.store_adds),
            barriers: std::mem::take(&mut self.store_barriers),
        })
    }

    /// The store wrote (or failed to write) a batch: run and acknowledge its added jobs,
    /// or refuse them with QUEUE_ERROR, and release the replies that waited for its
    /// deletions.
    pub fn stored(&mut self, ids: &[JobId], barriers: &[(ConnId, JobId)], failed: bool, now: u64) {
        for &(conn, id) in barriers {
            self.out.fill(conn, id, None);
        }
        for &id in ids {
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            if job.state != JobState::Pending {
                continue;
            }
            let awaiting = job.take_awaiting();
            let reply = if failed {
                job.stored = false;
                Response::error(ErrorCode::QueueError, "Persistent queue write failed")
            } else {
                Response::JobCreated {
                    handle: submit::handle_for(&self.config.handle_prefix, job.id),
                }
            };
            for conn in awaiting {
                self.out
                    .fill(conn, id, Some(Outgoing::Packet(reply.clone())));
            }
            if failed {
                self.remove_job(id);
            } else {
                self.activate(id, now);
            }
        }
    }

    /// Loads the jobs of the persistent queue at start-up, in their stored order.
    pub fn replay(&mut self, jobs: Vec<StoredJob>, now: u64) {
        for stored in jobs {
            let unique = queue::unique_of_key(&stored.key);
            // Two stored `-` jobs may carry the same data: the first one coalesces.
            let index = UniqueKey::of(&unique, &stored.data).is_none_or(|key| {
                self.uniques
                    .find(&self.jobs, &stored.function, &key)
                    .is_none()
            });
            self.functions.entry(stored.function.clone()).or_default();
            let submit = SubmitJob {
                function: stored.function,
                unique,
                data: stored.data,
                priority: stored.priority,
                mode: JobMode::Background,
                epoch: (stored.when != 0).then_some(stored.when),
                reducer: None,
            };
            let id = self.create_job(submit, index, true, Some(stored.key), now);
            self.activate(id, now);
        }
    }

    /// Stops keeping a job in the persistent queue. The connection whose request ended
    /// the job gets its later replies only once the deletion is on disk, so a worker that
    /// saw any answer after its WORK_COMPLETE knows the job will not run again.
    pub(super) fn unstore(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.stored && self.config.persistent {
            self.store_ops.push(StoreOp::Done {
                key: job.store_key(),
                function: job.function.clone(),
            });
            if let Some(conn) = self.current {
                self.out.reserve(conn, id);
                self.store_barriers.push((conn, id));
            }
        }
        job.stored = false;
    }
}
