//! The whole job model, owned by the processing thread: functions, jobs, connections.
//!
//! Pure and synchronous: every entry point takes `now` (milliseconds since the Unix
//! epoch) instead of reading a clock, and replies are collected as `(ConnId, Outgoing)`
//! pairs for the caller to route. No I/O, no locks, no system calls.

mod admin;
mod function;
mod job;
mod outbox;
mod peer;

use std::collections::BTreeSet;

use bytes::Bytes;
use gearman_shared::protocol::{
    parse_u32_lenient, ErrorCode, GrabKind, JobMode, Priority, Request, Response, SubmitJob,
};

pub use admin::DropOutcome;
pub use function::{Counters, Function};
pub use job::{Job, JobId, JobState, UniqueKey};
pub use peer::{Ability, Peer, PeerInfo};

use crate::acl::{Acl, AdminRight, Grants};
use crate::event::{ConnId, Outgoing};
use crate::queue::{self, StoreOp, StoredJob};
use outbox::Outbox;

/// Longest unique key or reducer name a submission may carry.
pub const MAX_UNIQUE_LEN: usize = 64;
/// Handles and uniques this long or longer cannot exist (the C server's 64-byte buffers).
const MAX_KEY_LEN: usize = 64;
/// Longest client id kept from SET_CLIENT_ID.
const MAX_CLIENT_ID_LEN: usize = 127;
/// Shortest CAN_DO_TIMEOUT honoured, as in the C server.
const MIN_TIMEOUT_MS: u64 = 1000;

/// The options that shape the job model.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Handle prefix, `H:<hostname>` by default; handles are `<prefix>:<n>`.
    pub handle_prefix: Bytes,
    /// `-j`: attempts before a job is failed; 0 = unlimited.
    pub job_retries: u32,
    /// `-w`: NOOPs sent per queued job; 0 = every sleeping worker.
    pub worker_wakeup: u32,
    /// `-R`: rotate a worker's functions after each grab.
    pub round_robin: bool,
    /// `--exceptions`: every connection starts with the exceptions option on.
    pub exceptions: bool,
    /// Background jobs go to a persistent queue before they are acknowledged.
    pub persistent: bool,
    /// Distinguishes this run's generated storage keys from earlier runs'.
    pub session: u64,
}

/// The hash map of the job tables: ahash is several times faster than SipHash on short
/// keys and, randomly seeded, still resists hash flooding by peers choosing names.
pub type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// Coalescing index key: a unique is only shared within one function.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct IndexKey {
    function: Bytes,
    key: UniqueKey,
}

/// The job server's state.
pub struct State {
    config: StateConfig,
    functions: Map<Bytes, Function>,
    jobs: Map<JobId, Job>,
    handles: Map<Bytes, JobId>,
    uniques: Map<IndexKey, JobId>,
    peers: Map<ConnId, Peer>,
    last_job: u64,
    /// Epoch jobs not yet due, by (unix seconds, job).
    scheduled: BTreeSet<(i64, JobId)>,
    /// CAN_DO_TIMEOUT deadlines of running jobs, by (ms, job).
    timers: BTreeSet<(u64, JobId)>,
    out: Outbox,
    log: Vec<String>,
    store_ops: Vec<StoreOp>,
    store_adds: Vec<JobId>,
    store_barriers: Vec<(ConnId, JobId)>,
    /// The connection whose request is being applied.
    current: Option<ConnId>,
    /// `--acl`, if in force.
    acl: Option<Acl>,
}

/// Changes for the store thread, and what waits for them.
#[derive(Debug, Default)]
pub struct StoreBatch {
    /// The changes, in order.
    pub ops: Vec<StoreOp>,
    /// Added jobs whose JOB_CREATED waits for the write.
    pub adds: Vec<JobId>,
    /// Connections whose replies wait for the deletion of a job they ended.
    pub barriers: Vec<(ConnId, JobId)>,
}

impl State {
    /// An empty server.
    pub fn new(config: StateConfig) -> State {
        State {
            config,
            functions: Map::default(),
            jobs: Map::default(),
            handles: Map::default(),
            uniques: Map::default(),
            peers: Map::default(),
            last_job: 0,
            scheduled: BTreeSet::new(),
            timers: BTreeSet::new(),
            out: Outbox::default(),
            log: Vec::new(),
            store_ops: Vec::new(),
            store_adds: Vec::new(),
            store_barriers: Vec::new(),
            current: None,
            acl: None,
        }
    }

    /// Replies produced since the last call, in order.
    pub fn take_output(&mut self) -> Vec<(ConnId, Outgoing)> {
        self.out.take()
    }

    /// Notable events (dropped jobs, …) for the caller to log, since the last call.
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// Queues bytes or a packet for a connection.
    pub fn send(&mut self, conn: ConnId, outgoing: Outgoing) {
        self.out.emit(conn, outgoing);
    }

    fn reply(&mut self, conn: ConnId, response: Response) {
        self.out.emit(conn, Outgoing::Packet(response));
    }

    /// A connection was accepted.
    pub fn connect(&mut self, conn: ConnId, info: PeerInfo) {
        let grants = self.grants_for(&info);
        self.peers
            .insert(conn, Peer::new(info, self.config.exceptions, grants));
    }

    fn grants_for(&self, info: &PeerInfo) -> Grants {
        match &self.acl {
            Some(acl) => acl.grants_for(&info.address, info.identity.as_deref()),
            None => Grants::everything(),
        }
    }

    /// Puts an access-control list in force (or lifts it), for every connection.
    pub fn set_acl(&mut self, acl: Option<Acl>) {
        self.acl = acl;
        let grants: Vec<(ConnId, Grants)> = self
            .peers
            .iter()
            .map(|(&conn, peer)| (conn, self.grants_for(&peer.info)))
            .collect();
        for (conn, grants) in grants {
            if let Some(peer) = self.peers.get_mut(&conn) {
                peer.grants = grants;
            }
        }
    }

    /// Whether `conn` may run admin commands of this family.
    pub fn admin_allowed(&self, conn: ConnId, right: AdminRight) -> bool {
        self.peers.get(&conn).is_some_and(|p| p.grants.admin(right))
    }

    /// Refuses a request the ACL does not allow, and logs it.
    fn deny(&mut self, conn: ConnId, what: &str, function: &[u8], text: &'static str) {
        let address = self.peer_address(conn).unwrap_or_default();
        self.log.push(format!(
            "ACL: {address} may not {what} {}",
            String::from_utf8_lossy(function)
        ));
        self.reply(conn, Response::error(ErrorCode::PermissionDenied, text));
    }

    /// A connection is gone: its running jobs go back to their queues, and foreground
    /// jobs it alone waited for are abandoned.
    pub fn disconnect(&mut self, conn: ConnId, now: u64) {
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        self.out.forget(conn);
        for ability in &peer.abilities {
            if let Some(f) = self.functions.get_mut(&ability.function) {
                f.remove_worker(conn);
            }
        }
        // Most recently grabbed first, as the C server requeues them.
        for &id in peer.running.iter().rev() {
            self.requeue(id, now);
        }
        for &id in &peer.attached {
            self.detach_client(conn, id);
        }
    }

    /// Applies one request from `conn`.
    pub fn handle(&mut self, conn: ConnId, request: Request, now: u64) {
        if !self.peers.contains_key(&conn) {
            return;
        }
        self.current = Some(conn);
        self.apply(conn, request, now);
        self.current = None;
    }

    fn apply(&mut self, conn: ConnId, request: Request, now: u64) {
        match request {
            Request::Echo { data } => self.reply(conn, Response::Echo { data }),
            Request::CanDo { function } => self.add_ability(conn, function, 0),
            Request::CanDoTimeout {
                function,
                timeout_ms: Some(timeout_ms),
            } => self.add_ability(conn, function, timeout_ms),
            Request::CanDoTimeout {
                timeout_ms: None, ..
            } => self.reply(
                conn,
                Response::error(ErrorCode::InvalidArgument, "Timeout value out of range"),
            ),
            Request::CantDo { function } => self.remove_abilities(conn, Some(&function), now),
            Request::ResetAbilities => self.remove_abilities(conn, None, now),
            Request::PreSleep => self.pre_sleep(conn),
            Request::Submit(job) => self.submit(conn, job, now),
            Request::Grab(kind) => self.grab(conn, kind, now),
            Request::WorkData { handle, data } => {
                if let Some(id) = self.running_job(conn, &handle) {
                    self.forward(id, |h| Response::WorkData {
                        handle: h,
                        data: data.clone(),
                    });
                } else {
                    self.job_not_found(conn, "Job does not exist on server");
                }
            }
            Request::WorkWarning { handle, data } => {
                if let Some(id) = self.running_job(conn, &handle) {
                    self.forward(id, |h| Response::WorkWarning {
                        handle: h,
                        data: data.clone(),
                    });
                } else {
                    self.job_not_found(conn, "Job does not exist on server");
                }
            }
            Request::WorkStatus {
                handle,
                numerator,
                denominator,
            } => self.work_status(conn, handle, numerator, denominator),
            Request::WorkComplete { handle, data } => {
                if let Some(id) = self.running_job(conn, &handle) {
                    self.forward(id, |h| Response::WorkComplete {
                        handle: h,
                        data: data.clone(),
                    });
                    self.count_job(id, |c| c.completed += 1);
                    self.remove_job(id);
                } else {
                    self.job_not_found(conn, "Job given in work result not found");
                }
            }
            Request::WorkFail { handle } => self.work_fail(conn, handle),
            Request::WorkException { handle, data } => self.work_exception(conn, handle, data),
            Request::GetStatus { handle } => self.get_status(conn, handle),
            Request::GetStatusUnique { unique } => self.get_status_unique(conn, unique),
            Request::SetClientId { mut id } => {
                id.truncate(MAX_CLIENT_ID_LEN);
                if let Some(peer) = self.peers.get_mut(&conn) {
                    peer.client_id = id;
                }
            }
            Request::Option { name } => {
                if name.len() < MAX_KEY_LEN && name.eq_ignore_ascii_case(b"exceptions") {
                    if let Some(peer) = self.peers.get_mut(&conn) {
                        peer.exceptions = true;
                    }
                    self.reply(conn, Response::Option { name });
                } else {
                    self.reply(
                        conn,
                        Response::error(
                            ErrorCode::UnknownOption,
                            "Server does not recognize given option",
                        ),
                    );
                }
            }
        }
    }

    /// Moves epoch jobs that fell due into their queues (waking workers) and requeues
    /// running jobs whose CAN_DO_TIMEOUT expired.
    pub fn tick(&mut self, now: u64) {
        while let Some(&(when, id)) = self.scheduled.first() {
            if epoch_ms(when) > now {
                break;
            }
            self.scheduled.remove(&(when, id));
            if let Some(job) = self.jobs.get_mut(&id) {
                job.state = JobState::Queued;
                if let Some(f) = self.functions.get_mut(&job.function) {
                    f.scheduled -= 1;
                }
                self.enqueue(id);
            }
        }
        while let Some(&(deadline, id)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.remove(&(deadline, id));
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            job.deadline = None;
            if let JobState::Running(worker) = job.state {
                if let Some(peer) = self.peers.get_mut(&worker) {
                    peer.running.retain(|&j| j != id);
                }
                if let Some(f) = self.functions.get_mut(&job.function) {
                    f.counters.timed_out += 1;
                }
                self.log.push(format!(
                    "job {} timed out on its worker, requeued",
                    String::from_utf8_lossy(&job.handle)
                ));
                self.requeue(id, now);
            }
        }
    }

    /// When [`State::tick`] next has work to do (ms since the epoch).
    pub fn next_deadline(&self) -> Option<u64> {
        let epoch = self.scheduled.first().map(|&(when, _)| epoch_ms(when));
        let timer = self.timers.first().map(|&(deadline, _)| deadline);
        match (epoch, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The numeric address of a connection.
    pub fn peer_address(&self, conn: ConnId) -> Option<String> {
        self.peers.get(&conn).map(|p| p.info.address.clone())
    }

    /// Number of jobs held, in any state.
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    // ---- registrations -------------------------------------------------------------

    fn add_ability(&mut self, conn: ConnId, function: Bytes, timeout_ms: u64) {
        if !self
            .peers
            .get(&conn)
            .is_some_and(|p| p.grants.can_do(&function))
        {
            self.deny(
                conn,
                "register",
                &function,
                "Not allowed to register this function",
            );
            return;
        }
        let f = self.functions.entry(function.clone()).or_default();
        f.add_worker(conn);
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.abilities.push(Ability {
                function,
                timeout_ms,
            });
        }
    }

    /// CANT_DO (`only = Some`) or RESET_ABILITIES (`None`): drop registrations and
    /// requeue the connection's running jobs of those functions.
    fn remove_abilities(&mut self, conn: ConnId, only: Option<&Bytes>, now: u64) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        let mut removed = Vec::new();
        peer.abilities.retain(|a| {
            let drop = only.is_none_or(|f| a.function == f);
            if drop && !removed.contains(&a.function) {
                removed.push(a.function.clone());
            }
            !drop
        });
        let jobs = &self.jobs;
        let mut lost = Vec::new();
        peer.running.retain(|id| {
            let hit = jobs.get(id).is_some_and(|j| removed.contains(&j.function));
            if hit {
                lost.push(*id);
            }
            !hit
        });
        for function in &removed {
            if let Some(f) = self.functions.get_mut(function) {
                f.remove_worker(conn);
            }
        }
        for id in lost.into_iter().rev() {
            self.requeue(id, now);
        }
    }

    // ---- submission ----------------------------------------------------------------

    fn submit(&mut self, conn: ConnId, s: SubmitJob, now: u64) {
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.is_client = true;
        }
        if !self
            .peers
            .get(&conn)
            .is_some_and(|p| p.grants.submit(&s.function))
        {
            self.deny(
                conn,
                "submit to",
                &s.function,
                "Not allowed to submit to this function",
            );
            return;
        }
        let reducer_too_long = s.reducer.as_ref().is_some_and(|r| r.len() > MAX_UNIQUE_LEN);
        if s.unique.len() > MAX_UNIQUE_LEN || reducer_too_long {
            self.reply(
                conn,
                Response::error(ErrorCode::ArgumentTooLarge, "Unique value too large"),
            );
            return;
        }
        let index_key = UniqueKey::of(&s.unique, &s.data).map(|key| IndexKey {
            function: s.function.clone(),
            key,
        });
        let f = self.functions.entry(s.function.clone()).or_default();
        if let Some(&id) = index_key.as_ref().and_then(|k| self.uniques.get(k)) {
            if s.mode == JobMode::Foreground {
                self.attach_client(conn, id);
            }
            self.acknowledge(conn, id);
            return;
        }
        let limit = f.max_queue[s.priority.index()] as usize;
        if limit > 0 && f.total >= limit {
            self.reply(
                conn,
                Response::error(ErrorCode::QueueError, "Job queue is full"),
            );
            return;
        }
        let background = s.mode == JobMode::Background;
        let function = s.function.clone();
        let id = self.create_job(s, true, background, None, now);
        self.count(&function, |c| c.submitted += 1);
        if !background {
            self.attach_client(conn, id);
        }
        match self.jobs.get_mut(&id) {
            Some(job) if background && self.config.persistent => {
                // Not runnable, and no JOB_CREATED, until the store has it on disk.
                job.state = JobState::Pending;
                self.store_ops.push(StoreOp::Add(StoredJob {
                    key: job.store_key.clone(),
                    function: job.function.clone(),
                    priority: job.priority,
                    data: job.data.clone(),
                    when: job.when,
                }));
                self.store_adds.push(id);
                self.acknowledge(conn, id);
            }
            _ => {
                self.acknowledge(conn, id);
                self.activate(id, now);
            }
        }
    }

    /// Sends JOB_CREATED for `id`, or reserves its place while the job is being stored.
    fn acknowledge(&mut self, conn: ConnId, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.state == JobState::Pending {
            job.awaiting.push(conn);
            self.out.reserve(conn, id);
        } else {
            let handle = job.handle.clone();
            self.reply(conn, Response::JobCreated { handle });
        }
    }

    /// Creates a job (not yet queued) and, with `index`, makes it the one its unique
    /// coalesces onto. `store_key` is given for replayed jobs; new ones get theirs from
    /// their unique.
    fn create_job(
        &mut self,
        s: SubmitJob,
        index: bool,
        stored: bool,
        store_key: Option<Bytes>,
        now: u64,
    ) -> JobId {
        // The submission's fields are slices of a connection's read buffer; a job that
        // stays queued must not pin that whole buffer, so it gets its own compact copies
        // and shares its function's name with the function table.
        let function = match self.functions.get_key_value(&s.function) {
            Some((name, _)) => name.clone(),
            None => Bytes::copy_from_slice(&s.function),
        };
        let s = SubmitJob {
            function,
            unique: Bytes::copy_from_slice(&s.unique),
            data: Bytes::copy_from_slice(&s.data),
            reducer: s.reducer.as_deref().map(Bytes::copy_from_slice),
            ..s
        };
        let index_key = UniqueKey::of(&s.unique, &s.data)
            .map(|key| IndexKey {
                function: s.function.clone(),
                key,
            })
            .filter(|_| index);
        self.last_job += 1;
        let id = JobId(self.last_job);
        let handle = self.make_handle(id);
        if let Some(k) = &index_key {
            self.uniques.insert(k.clone(), id);
        }
        self.handles.insert(handle.clone(), id);
        if let Some(f) = self.functions.get_mut(&s.function) {
            f.total += 1;
        }
        let store_key =
            store_key.unwrap_or_else(|| queue::storage_key(&s.unique, self.config.session, id.0));
        self.jobs.insert(
            id,
            Job {
                id,
                handle,
                function: s.function,
                unique: s.unique,
                data: s.data,
                priority: s.priority,
                mode: s.mode,
                when: s.epoch.unwrap_or(0),
                reducer: s.reducer,
                retries: 0,
                numerator: 0,
                denominator: 0,
                state: JobState::Queued,
                clients: Vec::new(),
                ignore: false,
                key: index_key.map(|k| k.key),
                deadline: None,
                stored,
                store_key,
                awaiting: Vec::new(),
                created_ms: now,
            },
        );
        id
    }

    /// Makes a created (or just stored) job runnable: queued now, or scheduled for its epoch.
    fn activate(&mut self, id: JobId, now: u64) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.when > 0 && epoch_ms(job.when) > now {
            job.state = JobState::Scheduled;
            self.scheduled.insert((job.when, id));
            if let Some(f) = self.functions.get_mut(&job.function) {
                f.scheduled += 1;
            }
        } else {
            job.state = JobState::Queued;
            self.enqueue(id);
        }
    }

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
            let awaiting = std::mem::take(&mut job.awaiting);
            let reply = if failed {
                job.stored = false;
                Response::error(ErrorCode::QueueError, "Persistent queue write failed")
            } else {
                Response::JobCreated {
                    handle: job.handle.clone(),
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
                !self.uniques.contains_key(&IndexKey {
                    function: stored.function.clone(),
                    key,
                })
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

    fn count(&mut self, function: &[u8], bump: impl FnOnce(&mut Counters)) {
        if let Some(f) = self.functions.get_mut(function) {
            bump(&mut f.counters);
        }
    }

    fn count_job(&mut self, id: JobId, bump: impl FnOnce(&mut Counters)) {
        if let Some(job) = self.jobs.get(&id) {
            if let Some(f) = self.functions.get_mut(&job.function) {
                bump(&mut f.counters);
            }
        }
    }

    /// Stops keeping a job in the persistent queue. The connection whose request ended
    /// the job gets its later replies only once the deletion is on disk, so a worker that
    /// saw any answer after its WORK_COMPLETE knows the job will not run again.
    fn unstore(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.stored && self.config.persistent {
            self.store_ops.push(StoreOp::Done {
                key: job.store_key.clone(),
                function: job.function.clone(),
            });
            if let Some(conn) = self.current {
                self.out.reserve(conn, id);
                self.store_barriers.push((conn, id));
            }
        }
        job.stored = false;
    }

    fn make_handle(&self, id: JobId) -> Bytes {
        let prefix = &self.config.handle_prefix;
        let mut handle = Vec::with_capacity(prefix.len() + 21);
        handle.extend_from_slice(prefix);
        handle.push(b':');
        handle.extend_from_slice(id.0.to_string().as_bytes());
        Bytes::from(handle)
    }

    fn attach_client(&mut self, conn: ConnId, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.clients.contains(&conn) {
            return;
        }
        job.clients.push(conn);
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.attached.push(id);
        }
    }

    fn detach_client(&mut self, conn: ConnId, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.clients.retain(|&c| c != conn);
        if job.clients.is_empty() && job.mode == JobMode::Foreground {
            self.ignore_job(id);
        }
    }

    /// Marks a job dead: it will not run, and its unique is free for new submissions.
    fn ignore_job(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.ignore = true;
        if let Some(key) = job.key.take() {
            let function = job.function.clone();
            self.uniques.remove(&IndexKey { function, key });
        }
    }

    /// Appends a queued job to its priority queue and wakes sleeping workers.
    fn enqueue(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let function = job.function.clone();
        if let Some(f) = self.functions.get_mut(&function) {
            f.queues[job.priority.index()].push_back(id);
        }
        self.wake_workers(&function);
    }

    /// Sends NOOP to sleeping workers of `function` that have not had one since their
    /// last grab, at most `-w` of them, rotating the starting point.
    fn wake_workers(&mut self, function: &Bytes) {
        let Some(f) = self.functions.get_mut(function) else {
            return;
        };
        let n = f.workers.len();
        if n == 0 {
            return;
        }
        let limit = self.config.worker_wakeup as usize;
        let start = f.wake_start % n;
        let mut woken = 0;
        let mut last = (start + n - 1) % n;
        for step in 0..n {
            let idx = (start + step) % n;
            last = idx;
            let conn = f.workers[idx];
            if let Some(peer) = self.peers.get_mut(&conn) {
                if peer.sleeping && !peer.noop_sent {
                    peer.noop_sent = true;
                    self.out.emit(conn, Outgoing::Packet(Response::Noop));
                    woken += 1;
                    if limit > 0 && woken >= limit {
                        break;
                    }
                }
            }
        }
        f.wake_start = (last + 1) % n;
    }

    // ---- workers -------------------------------------------------------------------

    fn pre_sleep(&mut self, conn: ConnId) {
        let functions: Vec<Bytes> = match self.peers.get(&conn) {
            Some(peer) => peer.abilities.iter().map(|a| a.function.clone()).collect(),
            None => return,
        };
        let has_work = functions
            .iter()
            .any(|f| self.first_runnable(f, false).is_some());
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if has_work {
            peer.sleeping = false;
            peer.noop_sent = true;
            self.reply(conn, Response::Noop);
        } else {
            peer.sleeping = true;
        }
    }

    /// The first runnable job of `function` (HIGH, then NORMAL, then LOW), reaping
    /// ignored jobs met at the queue fronts; `take` removes it from its queue.
    fn first_runnable(&mut self, function: &Bytes, take: bool) -> Option<JobId> {
        for priority in Priority::ALL {
            loop {
                let f = self.functions.get_mut(function)?;
                let Some(&id) = f.queues[priority.index()].front() else {
                    break;
                };
                if self.jobs.get(&id).is_some_and(|j| !j.ignore) {
                    if take {
                        f.queues[priority.index()].pop_front();
                    }
                    return Some(id);
                }
                f.queues[priority.index()].pop_front();
                self.remove_job(id);
            }
        }
        None
    }

    fn grab(&mut self, conn: ConnId, kind: GrabKind, now: u64) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.sleeping = false;
        peer.noop_sent = false;
        let candidates: Vec<Bytes> = peer
            .abilities
            .iter()
            .rev()
            .map(|a| a.function.clone())
            .collect();
        for (rank, function) in candidates.iter().enumerate() {
            let Some(id) = self.first_runnable(function, true) else {
                continue;
            };
            if self.config.round_robin {
                if let Some(peer) = self.peers.get_mut(&conn) {
                    // The registration served moves to the back of the newest-first order.
                    let index = peer.abilities.len() - 1 - rank;
                    let ability = peer.abilities.remove(index);
                    peer.abilities.insert(0, ability);
                }
            }
            self.assign(conn, id, kind, now);
            return;
        }
        self.reply(conn, Response::NoJob);
    }

    fn assign(&mut self, conn: ConnId, id: JobId, kind: GrabKind, now: u64) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        job.state = JobState::Running(conn);
        peer.running.push(id);
        let timeout = peer.timeout_for(&job.function);
        if timeout > 0 {
            let deadline = now.saturating_add(timeout.max(MIN_TIMEOUT_MS));
            job.deadline = Some(deadline);
            self.timers.insert((deadline, id));
        }
        if let Some(f) = self.functions.get_mut(&job.function) {
            f.running += 1;
        }
        let (handle, function, data) = (job.handle.clone(), job.function.clone(), job.data.clone());
        let unique = job.unique.clone();
        let response = match (kind, &job.reducer) {
            (GrabKind::Plain, _) => Response::JobAssign {
                handle,
                function,
                data,
            },
            (GrabKind::All, Some(reducer)) if !reducer.is_empty() => Response::JobAssignAll {
                handle,
                function,
                unique,
                reducer: reducer.clone(),
                data,
            },
            (GrabKind::Uniq | GrabKind::All, _) => Response::JobAssignUniq {
                handle,
                function,
                unique,
                data,
            },
        };
        self.reply(conn, response);
    }

    /// Puts a job whose worker lost it back at the tail of its queue, or fails it when
    /// `-j` attempts are used up. The caller has already removed it from the worker's
    /// running list.
    fn requeue(&mut self, id: JobId, now: u64) {
        let _ = now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if let Some(f) = self.functions.get_mut(&job.function) {
            f.running = f.running.saturating_sub(1);
        }
        if let Some(deadline) = job.deadline.take() {
            self.timers.remove(&(deadline, id));
        }
        job.state = JobState::Queued;
        job.numerator = 0;
        job.denominator = 0;
        job.retries += 1;
        if let Some(f) = self.functions.get_mut(&job.function) {
            f.counters.retried += 1;
        }
        if job.ignore {
            self.remove_job(id);
            return;
        }
        let retries = self.config.job_retries;
        if retries != 0 && job.retries >= retries {
            let handle = job.handle.clone();
            self.log.push(format!(
                "Dropped job due to max retry count: {}",
                String::from_utf8_lossy(&handle)
            ));
            self.forward(id, |h| Response::WorkFail { handle: h });
            self.count_job(id, |c| c.failed += 1);
            self.remove_job(id);
            return;
        }
        self.enqueue(id);
    }

    /// The job `handle` if `conn` is running it.
    fn running_job(&self, conn: ConnId, handle: &[u8]) -> Option<JobId> {
        let id = *self.handles.get(handle)?;
        let job = self.jobs.get(&id)?;
        (job.state == JobState::Running(conn)).then_some(id)
    }

    fn job_not_found(&mut self, conn: ConnId, text: &'static str) {
        self.reply(conn, Response::error(ErrorCode::JobNotFound, text));
    }

    /// Sends `make(handle)` to every client attached to the job.
    fn forward(&mut self, id: JobId, make: impl Fn(Bytes) -> Response) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        for &client in &job.clients {
            self.out
                .emit(client, Outgoing::Packet(make(job.handle.clone())));
        }
    }

    fn work_status(&mut self, conn: ConnId, handle: Bytes, numerator: Bytes, denominator: Bytes) {
        let Some(id) = self.running_job(conn, &handle) else {
            self.job_not_found(conn, "Job given in work result not found");
            return;
        };
        if let Some(job) = self.jobs.get_mut(&id) {
            job.numerator = parse_u32_lenient(&numerator);
            job.denominator = parse_u32_lenient(&denominator);
        }
        self.forward(id, |handle| Response::WorkStatus {
            handle,
            numerator: numerator.clone(),
            denominator: denominator.clone(),
        });
    }

    fn work_fail(&mut self, conn: ConnId, handle: Bytes) {
        if handle.len() >= MAX_KEY_LEN {
            self.reply(
                conn,
                Response::error(
                    ErrorCode::ArgumentTooLarge,
                    "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
                ),
            );
            return;
        }
        let Some(id) = self.running_job(conn, &handle) else {
            self.job_not_found(conn, "Job given in work result not found");
            return;
        };
        self.forward(id, |handle| Response::WorkFail { handle });
        self.count_job(id, |c| c.failed += 1);
        self.remove_job(id);
    }

    /// WORK_EXCEPTION reaches clients that asked for exceptions; the others get a plain
    /// WORK_FAIL (without the C server's trailing NUL, which hangs libgearman clients).
    fn work_exception(&mut self, conn: ConnId, handle: Bytes, data: Bytes) {
        let Some(id) = self.running_job(conn, &handle) else {
            self.job_not_found(
                conn,
                "An exception was received for a job that does not exist",
            );
            return;
        };
        if let Some(job) = self.jobs.get(&id) {
            for &client in &job.clients {
                let wants = self.peers.get(&client).is_some_and(|p| p.exceptions);
                let response = if wants {
                    Response::WorkException {
                        handle: job.handle.clone(),
                        data: data.clone(),
                    }
                } else {
                    Response::WorkFail {
                        handle: job.handle.clone(),
                    }
                };
                self.out.emit(client, Outgoing::Packet(response));
            }
        }
        self.count_job(id, |c| c.exceptions += 1);
        self.remove_job(id);
    }

    /// Deletes a job and every reference to it. A queued job must already be out of
    /// its queue (or be removed from it by the caller).
    fn remove_job(&mut self, id: JobId) -> Option<Job> {
        self.unstore(id);
        let job = self.jobs.remove(&id)?;
        self.handles.remove(&job.handle);
        if let Some(key) = &job.key {
            self.uniques.remove(&IndexKey {
                function: job.function.clone(),
                key: key.clone(),
            });
        }
        if let Some(deadline) = job.deadline {
            self.timers.remove(&(deadline, id));
        }
        let f = self.functions.get_mut(&job.function);
        match job.state {
            JobState::Scheduled => {
                self.scheduled.remove(&(job.when, id));
                if let Some(f) = f {
                    f.scheduled -= 1;
                    f.total -= 1;
                }
            }
            JobState::Running(worker) => {
                if let Some(f) = f {
                    f.running -= 1;
                    f.total -= 1;
                }
                if let Some(peer) = self.peers.get_mut(&worker) {
                    peer.running.retain(|&j| j != id);
                }
            }
            JobState::Queued | JobState::Pending => {
                if let Some(f) = f {
                    f.total -= 1;
                }
            }
        }
        for client in &job.clients {
            if let Some(peer) = self.peers.get_mut(client) {
                peer.attached.retain(|&j| j != id);
            }
        }
        Some(job)
    }

    // ---- status --------------------------------------------------------------------

    fn get_status(&mut self, conn: ConnId, handle: Bytes) {
        let job = self.handles.get(&handle).and_then(|id| self.jobs.get(id));
        let response = match job {
            Some(job) => Response::Status {
                handle,
                known: true,
                running: job.is_running(),
                numerator: job.numerator,
                denominator: job.denominator,
            },
            None => Response::Status {
                handle,
                known: false,
                running: false,
                numerator: 0,
                denominator: 0,
            },
        };
        self.reply(conn, response);
    }

    /// Looks a job up by its unique alone, whatever its function, as the C server does.
    fn get_status_unique(&mut self, conn: ConnId, unique: Bytes) {
        let job = if unique.is_empty() || unique.len() >= MAX_KEY_LEN {
            None
        } else {
            self.uniques
                .values()
                .filter_map(|id| self.jobs.get(id))
                .find(|job| job.unique == unique)
        };
        let response = match job {
            Some(job) => Response::StatusUnique {
                unique,
                known: true,
                running: job.is_running(),
                numerator: job.numerator,
                denominator: job.denominator,
                clients: u32::try_from(job.clients.len()).unwrap_or(u32::MAX),
            },
            None => Response::StatusUnique {
                unique,
                known: false,
                running: false,
                numerator: 0,
                denominator: 0,
                clients: 0,
            },
        };
        self.reply(conn, response);
    }
}

/// Unix seconds to milliseconds, saturating.
fn epoch_ms(when: i64) -> u64 {
    u64::try_from(when).unwrap_or(0).saturating_mul(1000)
}

#[cfg(test)]
mod tests;
