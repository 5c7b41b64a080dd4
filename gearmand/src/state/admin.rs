//! What the admin text commands read from and change in the job state.

use bytes::Bytes;
use gearman_shared::admin::{FunctionPriorityStatus, FunctionStatus, JobInfo, WorkerInfo};
use gearman_shared::protocol::{Priority, Response};

use super::{JobState, State};
use crate::event::Outgoing;

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
                handle: j.handle.clone(),
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
        jobs.into_iter().map(|j| j.unique.clone()).collect()
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

    /// `cancel job`: the clients get WORK_FAIL and the job will not run (a running one
    /// finishes, as in the C server). `false` if the handle is unknown.
    pub fn cancel_job(&mut self, handle: &[u8]) -> bool {
        let Some(&id) = self.handles.get(handle) else {
            return false;
        };
        self.unstore(id);
        if let Some(job) = self.jobs.get_mut(&id) {
            for &client in &job.clients {
                self.out.emit(
                    client,
                    Outgoing::Packet(Response::WorkFail {
                        handle: job.handle.clone(),
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
