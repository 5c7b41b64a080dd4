//! What the admin text commands read from and change in the job state.

use bytes::Bytes;
use gearman_shared::admin::{
    FunctionPriorityStatus, FunctionStats, FunctionStatus, JobInfo, ServerStats, StatsReport,
    WorkerInfo,
};
use gearman_shared::protocol::{Priority, Response};

use super::submit;
use super::{ConnId, Outgoing};
use super::{JobState, State};

impl State {
    /// Marks a connection as having used the admin protocol (statistics).
    pub fn mark_admin(&mut self, conn: ConnId) {
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.is_admin = true;
        }
    }

    /// Counters and gauges for `stats`, `/metrics` and `/status`; the caller fills in
    /// uptime and traffic, which the state does not see.
    pub fn stats(&self, now: u64) -> StatsReport {
        let peers = self.peers.values();
        let server = ServerStats {
            connections: self.peers.len() as u64,
            workers: peers.clone().filter(|p| !p.abilities.is_empty()).count() as u64,
            clients: peers.clone().filter(|p| p.is_client).count() as u64,
            admins: peers.filter(|p| p.is_admin).count() as u64,
            jobs: self.jobs.len() as u64,
            ..ServerStats::default()
        };
        let mut functions: Vec<FunctionStats> = self
            .functions
            .iter()
            .map(|(name, f)| {
                let oldest = f
                    .queues
                    .iter()
                    .filter_map(|q| q.front())
                    .filter_map(|id| self.jobs.get(id))
                    .map(|j| j.created_ms)
                    .min();
                let c = f.counters;
                FunctionStats {
                    name: name.clone(),
                    submitted: c.submitted,
                    completed: c.completed,
                    failed: c.failed,
                    exceptions: c.exceptions,
                    retried: c.retried,
                    timed_out: c.timed_out,
                    cancelled: c.cancelled,
                    queued_high: f.queued(Priority::High) as u64,
                    queued_normal: f.queued(Priority::Normal) as u64,
                    queued_low: f.queued(Priority::Low) as u64,
                    running: f.running as u64,
                    workers: f.workers.len() as u64,
                    oldest_queued_ms: oldest.map(|created| now.saturating_sub(created)),
                }
            })
            .collect();
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        StatsReport { server, functions }
    }
}

/// Outcome of `drop function` for one matching function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropOutcome {
    /// Removed.
    Dropped,
    /// Kept: it still has workers or jobs (queued ones included, unlike the C server).
    Busy,
}

impl State {
    /// `status`: one entry per function, by name.
    pub fn function_statuses(&self) -> Vec<FunctionStatus> {
        let mut list: Vec<FunctionStatus> = self
            .functions
            .iter()
            .map(|(name, f)| FunctionStatus {
                name: name.clone(),
                total: f.total as u64,
                running: f.running as u64,
                workers: f.workers.len() as u64,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// `prioritystatus`: queued (not running) jobs per priority, by function name.
    pub fn priority_statuses(&self) -> Vec<FunctionPriorityStatus> {
        let mut list: Vec<FunctionPriorityStatus> = self
            .functions
            .iter()
            .map(|(name, f)| FunctionPriorityStatus {
                name: name.clone(),
                high: f.queued(Priority::High) as u64,
                normal: f.queued(Priority::Normal) as u64,
                low: f.queued(Priority::Low) as u64,
                workers: f.workers.len() as u64,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// `workers`: every connection, newest first, functions newest-registered first.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        let mut conns: Vec<_> = self.peers.iter().collect();
        conns.sort_by(|a, b| b.0.cmp(a.0));
        conns
            .into_iter()
            .map(|(_, peer)| WorkerInfo {
                fd: peer.info.fd,
                address: peer.info.address.clone(),
                client_id: peer.client_id.clone(),
                functions: peer
                    .abilities
                    .iter()
                    .rev()
                    .map(|a| a.function.clone())
                    .collect(),
            })
            .collect()
    }

    /// `show jobs`: every job, oldest first.
    pub fn job_infos(&self) -> Vec<JobInfo> {
        let mut jobs: Vec<_> = self.jobs.values().collect();
        jobs.sort_by_key(|j| j.id);
        jobs.into_iter()
            .map(|j| JobInfo {
                handle: submit::handle_for(&self.config.handle_prefix, j.id),
                retries: j.retries,
                ignore: j.ignore,
                queued: j.stored,
            })
            .collect()
    }

    /// `show unique jobs`: the unique of every job, oldest first.
    pub fn unique_keys(&self) -> Vec<Bytes> {
        let mut jobs: Vec<_> = self.jobs.values().collect();
        jobs.sort_by_key(|j| j.id);
        jobs.into_iter().map(|j| j.unique_bytes()).collect()
    }

    /// `maxqueue`: sets the limits of an existing function; unknown names are ignored.
    pub fn set_max_queue(&mut self, function: &[u8], limits: [u32; 3]) {
        if let Some(f) = self.functions.get_mut(function) {
            f.max_queue = limits;
        }
    }

    /// `create function`.
    pub fn create_function(&mut self, name: Bytes) {
        self.functions.entry(name).or_default();
    }

    /// `drop function`: every function whose name matches case-insensitively, by name.
    pub fn drop_functions(&mut self, name: &[u8]) -> Vec<DropOutcome> {
        let mut matches: Vec<Bytes> = self
            .functions
            .keys()
            .filter(|k| k.eq_ignore_ascii_case(name))
            .cloned()
            .collect();
        matches.sort();
        matches
            .into_iter()
            .map(|key| {
                let idle = self.functions.get(&key).is_some_and(|f| f.is_idle());
                if idle {
                    self.functions.remove(&key);
                    DropOutcome::Dropped
                } else {
                    DropOutcome::Busy
                }
            })
            .collect()
    }

    /// `cancel job` from `conn`: the clients get WORK_FAIL and the job will not run (a
    /// running one finishes, as in the C server). `false` if the handle is unknown.
    pub fn cancel_job(&mut self, conn: ConnId, handle: &[u8]) -> bool {
        let Some(id) = self.job_by_handle(handle) else {
            return false;
        };
        self.current = Some(conn);
        self.unstore(id);
        self.current = None;
        if self.jobs.get(&id).is_some_and(|j| !j.ignore) {
            self.count_job(id, |c| c.cancelled += 1);
        }
        if let Some(job) = self.jobs.get_mut(&id) {
            for &client in &job.clients {
                self.out.emit(
                    client,
                    Outgoing::Packet(Response::WorkFail {
                        handle: submit::handle_for(&self.config.handle_prefix, job.id),
                    }),
                );
            }
            if job.state == JobState::Scheduled {
                // Nothing would ever reap a scheduled job before its time: drop it now.
                self.remove_job(id);
                return true;
            }
        }
        self.ignore_job(id);
        true
    }
}
