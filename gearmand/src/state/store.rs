//! The persistent queue seen from the job model: what to write, what the write means for
//! the waiting jobs and replies, and loading the stored jobs at start-up.

use bytes::Bytes;
use gearman_shared::protocol::{ErrorCode, JobMode, Priority, Response, SubmitJob};

use super::{submit, ConnId, JobId, JobState, Outgoing, State, StoreBatch, UniqueKey};

/// A background job as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    /// The storage key (see [`storage_key`]): the unique, or a generated one.
    pub key: Bytes,
    /// Function name.
    pub function: Bytes,
    /// Priority.
    pub priority: Priority,
    /// Workload.
    pub data: Bytes,
    /// Unix time before which it must not run; 0 = now.
    pub when: i64,
}

/// One change to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// A new background job.
    Add(StoredJob),
    /// A job ended (completed, failed, cancelled): forget it.
    Done { key: Bytes, function: Bytes },
}

/// Marks generated storage keys. The C server's tables key rows on (unique, function),
/// so jobs with an empty unique, or `-` with different data, would overwrite each other:
/// such jobs get a generated key instead, and replay turns it back into their unique.
const GENERATED: &[u8] = b"\x01gearmand-rs:";

/// The key a background job is stored under.
pub fn storage_key(unique: &[u8], session: u64, job: u64) -> Bytes {
    let tag = match unique {
        b"" => "e",
        b"-" => "d",
        _ => return Bytes::copy_from_slice(unique),
    };
    let mut key = GENERATED.to_vec();
    key.extend_from_slice(format!("{tag}:{session:x}:{job}").as_bytes());
    Bytes::from(key)
}

/// The unique a stored key stands for.
pub fn unique_of_key(key: &Bytes) -> Bytes {
    match key.strip_prefix(GENERATED) {
        Some(rest) if rest.starts_with(b"e:") => Bytes::new(),
        Some(rest) if rest.starts_with(b"d:") => Bytes::from_static(b"-"),
        _ => key.clone(),
    }
}

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
            let unique = unique_of_key(&stored.key);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_to_their_unique() {
        for unique in ["", "-", "u-1"] {
            let unique = Bytes::from(unique);
            let key = storage_key(&unique, 0xabc, 7);
            assert_eq!(unique_of_key(&key), unique);
            assert!(key.len() < 64);
        }
        assert_ne!(
            storage_key(&Bytes::new(), 1, 1),
            storage_key(&Bytes::new(), 1, 2)
        );
    }
}
