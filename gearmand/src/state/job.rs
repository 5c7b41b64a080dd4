//! One job: what was submitted, where it is in its life, and who waits for it.

use bytes::Bytes;
use gearman_shared::protocol::{JobMode, Priority};

use crate::event::ConnId;

/// Server-wide job number; also the `<n>` of its handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// A background job on its way to the persistent queue: not runnable yet, and its
    /// JOB_CREATED waits for the write.
    Pending,
    /// In its function's priority queue, runnable.
    Queued,
    /// An epoch job waiting for its time; counted as queued (NORMAL) by the admin listings.
    Scheduled,
    /// Assigned to a worker connection.
    Running(ConnId),
}

/// What coalesces submissions into one job: the unique key, or the data when the
/// unique is `-`. Kept apart so a unique equal to some data never matches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UniqueKey {
    /// An ordinary unique key.
    Unique(Bytes),
    /// Unique `-` with non-empty data: keyed on the data.
    Data(Bytes),
}

impl UniqueKey {
    /// The key a submission coalesces on; `None` when it never coalesces.
    pub fn of(unique: &Bytes, data: &Bytes) -> Option<UniqueKey> {
        match unique.as_ref() {
            b"" => None,
            b"-" if data.is_empty() => None,
            b"-" => Some(UniqueKey::Data(data.clone())),
            _ => Some(UniqueKey::Unique(unique.clone())),
        }
    }
}

/// A job held by the server.
#[derive(Debug)]
pub struct Job {
    /// Its number.
    pub id: JobId,
    /// `<prefix>:<n>`.
    pub handle: Bytes,
    /// Function name.
    pub function: Bytes,
    /// The unique as submitted (possibly empty or `-`).
    pub unique: Bytes,
    /// Workload.
    pub data: Bytes,
    /// Queue it belongs to.
    pub priority: Priority,
    /// Foreground or background.
    pub mode: JobMode,
    /// Unix time (seconds) before which it must not run; 0 = now.
    pub when: i64,
    /// Reducer name of a reduce job.
    pub reducer: Option<Bytes>,
    /// How many times it went back to the queue.
    pub retries: u32,
    /// Last WORK_STATUS numerator.
    pub numerator: u32,
    /// Last WORK_STATUS denominator.
    pub denominator: u32,
    /// Queued, scheduled or running.
    pub state: JobState,
    /// Foreground clients that receive its WORK_* packets.
    pub clients: Vec<ConnId>,
    /// Abandoned (no client left) or cancelled: never run, reaped when met.
    pub ignore: bool,
    /// The coalescing key, while the job holds it in the unique index.
    pub key: Option<UniqueKey>,
    /// Deadline (ms) of the running attempt's CAN_DO_TIMEOUT timer.
    pub deadline: Option<u64>,
    /// Held for the persistent queue: background and not cancelled (`show jobs` QUEUED).
    pub stored: bool,
    /// The key it is stored under (see `queue::storage_key`).
    pub store_key: Bytes,
    /// Connections whose JOB_CREATED waits for the job to be stored.
    pub awaiting: Vec<ConnId>,
    /// When it was created (ms since the epoch), for the age of the oldest queued job.
    pub created_ms: u64,
}

impl Job {
    /// Whether it is assigned to a worker.
    pub fn is_running(&self) -> bool {
        matches!(self.state, JobState::Running(_))
    }
}
