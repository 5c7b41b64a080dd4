//! Workers: registrations, sleeping and wake-ups, handing out jobs, and putting jobs back
//! when a worker loses them.

use bytes::Bytes;
use gearman_shared::protocol::{GrabKind, Priority, Response};

use super::{submit, Ability, JobId, JobState, State, MIN_TIMEOUT_MS};
use super::{ConnId, Outgoing};

impl State {
    pub(super) fn add_ability(&mut self, conn: ConnId, function: Bytes, timeout_ms: u64) {
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
    pub(super) fn remove_abilities(&mut self, conn: ConnId, only: Option<&Bytes>) {
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
            self.requeue(id);
        }
    }

    /// Appends a queued job to its priority queue and wakes sleeping workers.
    pub(super) fn enqueue(&mut self, id: JobId) {
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
    pub(super) fn wake_workers(&mut self, function: &Bytes) {
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

    pub(super) fn pre_sleep(&mut self, conn: ConnId) {
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
    pub(super) fn first_runnable(&mut self, function: &Bytes, take: bool) -> Option<JobId> {
        for priority in Priority::ALL {
            loop {
                let f = self.functions.get_mut(function)?;
                let Some(&id) = f.queues[priority.index()].front() else {
                    break;
                };
                if self.jobs.get(&id).is_some_and(|j| !j.ignore) {
                    if take {
                        f.pop_front(priority);
                    }
                    return Some(id);
                }
                f.pop_front(priority);
                self.remove_job(id);
            }
        }
        None
    }

    pub(super) fn grab(&mut self, conn: ConnId, kind: GrabKind, now: u64) {
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

    pub(super) fn assign(&mut self, conn: ConnId, id: JobId, kind: GrabKind, now: u64) {
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
            job.set_deadline(deadline);
            self.timers.insert((deadline, id));
        }
        if let Some(f) = self.functions.get_mut(&job.function) {
            f.running += 1;
        }
        let (handle, function, data) = (
            submit::handle_for(&self.config.handle_prefix, job.id),
            job.function.clone(),
            job.data_bytes(),
        );
        let unique = job.unique_bytes();
        let response = match (kind, job.reducer()) {
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
    pub(super) fn requeue(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if let Some(f) = self.functions.get_mut(&job.function) {
            f.running = f.running.saturating_sub(1);
        }
        if let Some(deadline) = job.take_deadline() {
            self.timers.remove(&(deadline, id));
        }
        job.state = JobState::Queued;
        job.set_status(0, 0);
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
            let handle = submit::handle_for(&self.config.handle_prefix, job.id);
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
}
