//! One job: what was submitted, where it is in its life, and who waits for it.

use bytes::Bytes;
use gearman_shared::protocol::{JobMode, Priority};

use super::ConnId;

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
/// unique is `-`. Kept apart so a unique equal to some data never matches it. Borrowed:
/// cloning a job's `Bytes` would give each a shared-count allocation of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniqueKey<'a> {
    /// An ordinary unique key.
    Unique(&'a [u8]),
    /// Unique `-` with non-empty data: keyed on the data.
    Data(&'a [u8]),
}

impl<'a> UniqueKey<'a> {
    /// The key a submission coalesces on; `None` when it never coalesces.
    pub fn of(unique: &'a [u8], data: &'a [u8]) -> Option<UniqueKey<'a>> {
        match unique {
            b"" => None,
            b"-" if data.is_empty() => None,
            b"-" => Some(UniqueKey::Data(data)),
            _ => Some(UniqueKey::Unique(unique)),
        }
    }
}

/// A job held by the server.
#[derive(Debug)]
pub struct Job {
    /// Its number; its handle is `<prefix>:<n>` (see `State::handle_of`), made when
    /// sent rather than kept, as is the coalescing key: a deep queue holds millions.
    pub id: JobId,
    /// Function name.
    pub function: Bytes,
    /// The unique as submitted (possibly empty or `-`, at most 64 bytes) followed by
    /// the workload: one allocation for both (see `unique` and `data`).
    payload: Bytes,
    /// Where the unique ends in `payload`.
    unique_len: u8,
    /// Queue it belongs to.
    pub priority: Priority,
    /// Foreground or background.
    pub mode: JobMode,
    /// Unix time (seconds) before which it must not run; 0 = now.
    pub when: i64,
    /// How many times it went back to the queue.
    pub retries: u32,
    /// Queued, scheduled or running.
    pub state: JobState,
    /// Foreground clients that receive its WORK_* packets.
    pub clients: Vec<ConnId>,
    /// Abandoned (no client left) or cancelled: never run, reaped when met.
    pub ignore: bool,
    /// Whether the job holds its coalescing key in the unique index.
    pub indexed: bool,
    /// Held for the persistent queue: background and not cancelled (`show jobs` QUEUED).
    pub stored: bool,
    /// When it was created (ms since the epoch), for the age of the oldest queued job.
    pub created_ms: u64,
    /// What only some jobs need, allocated when first needed.
    extra: Option<Box<JobExtra>>,
}

/// The parts of a job that most jobs never use, kept out of line so that a queued job
/// stays small: a reducer, a running job's status and timer, a stored job's key.
#[derive(Debug, Default)]
struct JobExtra {
    reducer: Option<Bytes>,
    numerator: u32,
    denominator: u32,
    deadline: Option<u64>,
    store_key: Bytes,
    awaiting: Vec<ConnId>,
}

impl Job {
    /// A new queued job; see the fields for the arguments. A `unique` longer than 255
    /// bytes is cut (submissions allow 64).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: JobId,
        function: Bytes,
        unique: &[u8],
        data: &[u8],
        priority: Priority,
        mode: JobMode,
        when: i64,
        created_ms: u64,
    ) -> Job {
        let unique = &unique[..unique.len().min(usize::from(u8::MAX))];
        let mut payload = Vec::with_capacity(unique.len() + data.len());
        payload.extend_from_slice(unique);
        payload.extend_from_slice(data);
        Job {
            id,
            function,
            payload: Bytes::from(payload),
            unique_len: unique.len() as u8,
            priority,
            mode,
            when,
            retries: 0,
            state: JobState::Queued,
            clients: Vec::new(),
            ignore: false,
            indexed: false,
            stored: false,
            created_ms,
            extra: None,
        }
    }

    /// The unique as submitted.
    pub fn unique(&self) -> &[u8] {
        &self.payload[..usize::from(self.unique_len)]
    }

    /// The workload.
    pub fn data(&self) -> &[u8] {
        &self.payload[usize::from(self.unique_len)..]
    }

    /// The unique, to send.
    pub fn unique_bytes(&self) -> Bytes {
        self.payload.slice(..usize::from(self.unique_len))
    }

    /// The workload, to send.
    pub fn data_bytes(&self) -> Bytes {
        self.payload.slice(usize::from(self.unique_len)..)
    }

    fn extra(&mut self) -> &mut JobExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Reducer name of a reduce job.
    pub fn reducer(&self) -> Option<&Bytes> {
        self.extra.as_ref()?.reducer.as_ref()
    }

    pub fn set_reducer(&mut self, reducer: Option<Bytes>) {
        if reducer.is_some() {
            self.extra().reducer = reducer;
        }
    }

    /// Last WORK_STATUS numerator and denominator (0, 0 before any).
    pub fn status(&self) -> (u32, u32) {
        self.extra
            .as_ref()
            .map_or((0, 0), |e| (e.numerator, e.denominator))
    }

    pub fn set_status(&mut self, numerator: u32, denominator: u32) {
        if numerator != 0 || denominator != 0 || self.extra.is_some() {
            let extra = self.extra();
            (extra.numerator, extra.denominator) = (numerator, denominator);
        }
    }

    /// Deadline (ms) of the running attempt's CAN_DO_TIMEOUT timer.
    pub fn deadline(&self) -> Option<u64> {
        self.extra.as_ref()?.deadline
    }

    pub fn set_deadline(&mut self, deadline: u64) {
        self.extra().deadline = Some(deadline);
    }

    pub fn take_deadline(&mut self) -> Option<u64> {
        self.extra.as_mut()?.deadline.take()
    }

    /// The key it is stored under in the persistent queue (see `store::storage_key`).
    pub fn store_key(&self) -> Bytes {
        self.extra
            .as_ref()
            .map(|e| e.store_key.clone())
            .unwrap_or_default()
    }

    pub fn set_store_key(&mut self, key: Bytes) {
        self.extra().store_key = key;
    }

    /// Connections whose JOB_CREATED waits for the job to be stored.
    pub fn await_store(&mut self, conn: ConnId) {
        self.extra().awaiting.push(conn);
    }

    pub fn take_awaiting(&mut self) -> Vec<ConnId> {
        self.extra
            .as_mut()
            .map(|e| std::mem::take(&mut e.awaiting))
            .unwrap_or_default()
    }

    /// Whether it is assigned to a worker.
    pub fn is_running(&self) -> bool {
        matches!(self.state, JobState::Running(_))
    }
}
