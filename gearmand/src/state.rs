//! The whole job model, owned by the processing thread: functions, jobs, connections.
//!
//! Pure and synchronous: every entry point takes `now` (milliseconds since the Unix
//! epoch) instead of reading a clock, and replies are collected as `(ConnId, Outgoing)`
//! pairs for the caller to route. No I/O, no locks, no system calls.

mod admin;
mod function;
mod job;
mod job_table;
mod outbox;
mod peer;
mod results;
mod store;
mod submit;
mod unique_index;
mod worker;

use std::collections::BTreeSet;

use bytes::Bytes;
use gearman_shared::protocol::{ErrorCode, Request, Response};

pub use admin::DropOutcome;
pub use function::{Counters, Function};
pub use job::{Job, JobId, JobState, UniqueKey};
pub use outbox::Outgoing;
pub use peer::{Ability, ConnId, Peer, PeerInfo};
pub use store::{StoreOp, StoredJob};

use crate::acl::{Acl, AdminRight, Grants};
use job_table::JobTable;
use outbox::Outbox;
use unique_index::UniqueIndex;

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

/// The job server's state.
pub struct State {
    config: StateConfig,
    functions: Map<Bytes, Function>,
    jobs: JobTable,
    /// Which job holds each unique key (a unique is only shared within one function).
    uniques: UniqueIndex,
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
            jobs: JobTable::default(),
            uniques: UniqueIndex::default(),
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
    pub fn take_output(&mut self) -> impl Iterator<Item = (ConnId, Outgoing)> + '_ {
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
    pub fn disconnect(&mut self, conn: ConnId) {
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
            self.requeue(id);
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
            Request::CantDo { function } => self.remove_abilities(conn, Some(&function)),
            Request::ResetAbilities => self.remove_abilities(conn, None),
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
            job.take_deadline();
            if let JobState::Running(worker) = job.state {
                if let Some(peer) = self.peers.get_mut(&worker) {
                    peer.running.retain(|&j| j != id);
                }
                if let Some(f) = self.functions.get_mut(&job.function) {
                    f.counters.timed_out += 1;
                }
                self.log.push(format!(
                    "job {} timed out on its worker, requeued",
                    String::from_utf8_lossy(&self.handle_of(id))
                ));
                self.requeue(id);
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

    /// Deletes a job and every reference to it. A queued job must already be out of
    /// its queue (or be removed from it by the caller).
    fn remove_job(&mut self, id: JobId) -> Option<Box<Job>> {
        self.unstore(id);
        let job = self.jobs.remove(&id)?;
        self.uniques.remove(&self.jobs, &job);
        if let Some(deadline) = job.deadline() {
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
}

/// Unix seconds to milliseconds, saturating.
fn epoch_ms(when: i64) -> u64 {
    u64::try_from(when).unwrap_or(0).saturating_mul(1000)
}

#[cfg(test)]
mod tests;
