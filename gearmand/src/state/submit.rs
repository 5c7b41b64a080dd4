//! Submissions: validating, coalescing onto an existing job, creating a job, and the
//! clients attached to it.

use bytes::Bytes;
use gearman_shared::protocol::{ErrorCode, JobMode, Response, SubmitJob};

use super::store::{storage_key, StoreOp, StoredJob};
use super::ConnId;
use super::{epoch_ms, Job, JobId, JobState, State, UniqueKey, MAX_UNIQUE_LEN};

impl State {
    pub(super) fn submit(&mut self, conn: ConnId, s: SubmitJob, now: u64) {
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
        let holder = UniqueKey::of(&s.unique, &s.data)
            .and_then(|key| self.uniques.find(&self.jobs, &s.function, &key));
        let f = self.functions.entry(s.function.clone()).or_default();
        if let Some(id) = holder {
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
                    key: job.store_key(),
                    function: job.function.clone(),
                    priority: job.priority,
                    data: job.data_bytes(),
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
    pub(super) fn acknowledge(&mut self, conn: ConnId, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.state == JobState::Pending {
            job.await_store(conn);
            self.out.reserve(conn, id);
        } else {
            let handle = self.handle_of(id);
            self.reply(conn, Response::JobCreated { handle });
        }
    }

    /// Creates a job (not yet queued) and, with `index`, makes it the one its unique
    /// coalesces onto. `store_key` is given for replayed jobs; new ones get theirs from
    /// their unique.
    pub(super) fn create_job(
        &mut self,
        s: SubmitJob,
        index: bool,
        stored: bool,
        store_key: Option<Bytes>,
        now: u64,
    ) -> JobId {
        // The submission's fields are slices of a connection's read buffer; a job that
        // stays queued must not pin that whole buffer, so it gets its own compact copy of
        // unique and data (`Job::new`) and shares its function's name with the table.
        let function = match self.functions.get_key_value(&s.function) {
            Some((name, _)) => name.clone(),
            None => Bytes::copy_from_slice(&s.function),
        };
        let s = SubmitJob {
            function,
            reducer: s.reducer.as_deref().map(Bytes::copy_from_slice),
            ..s
        };
        self.last_job += 1;
        let id = JobId(self.last_job);
        if let Some(f) = self.functions.get_mut(&s.function) {
            f.total += 1;
        }
        let mut job = Box::new(Job::new(
            id,
            s.function,
            &s.unique,
            &s.data,
            s.priority,
            s.mode,
            s.epoch.unwrap_or(0),
            now,
        ));
        job.set_reducer(s.reducer);
        job.indexed = index;
        job.stored = stored;
        // Only jobs that go to the persistent queue need a key there.
        if stored && self.config.persistent {
            let key =
                store_key.unwrap_or_else(|| storage_key(job.unique(), self.config.session, id.0));
            job.set_store_key(key);
        }
        self.uniques.insert(&self.jobs, &job);
        self.jobs.insert(job);
        id
    }

    /// Makes a created (or just stored) job runnable: queued now, or scheduled for its epoch.
    pub(super) fn activate(&mut self, id: JobId, now: u64) {
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

    /// The handle of job `id`: `<prefix>:<n>`.
    pub(super) fn handle_of(&self, id: JobId) -> Bytes {
        handle_for(&self.config.handle_prefix, id)
    }

    /// The job a handle names, if it is one of ours and the job still exists. Only the
    /// canonical spelling matches (no sign, no leading zero), so one job has one handle.
    pub(super) fn job_by_handle(&self, handle: &[u8]) -> Option<JobId> {
        let prefix = &self.config.handle_prefix;
        let digits = handle.strip_prefix(prefix.as_ref())?.strip_prefix(b":")?;
        if digits.first() == Some(&b'0') || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let id = JobId(std::str::from_utf8(digits).ok()?.parse().ok()?);
        self.jobs.contains_key(&id).then_some(id)
    }

    pub(super) fn attach_client(&mut self, conn: ConnId, id: JobId) {
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

    pub(super) fn detach_client(&mut self, conn: ConnId, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.clients.retain(|&c| c != conn);
        if job.clients.is_empty() && job.mode == JobMode::Foreground {
            self.ignore_job(id);
        }
    }

    /// Marks a job dead: it will not run, and its unique is free for new submissions.
    pub(super) fn ignore_job(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        self.uniques.remove(&self.jobs, job);
        if let Some(job) = self.jobs.get_mut(&id) {
            job.ignore = true;
            job.indexed = false;
        }
    }
}

/// The handle of job `id` under `prefix`: `<prefix>:<n>`. A free function so it can be
/// called while a job of the table is borrowed.
pub(super) fn handle_for(prefix: &[u8], id: JobId) -> Bytes {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(id.0).as_bytes();
    // Sized exactly: a Vec with spare capacity costs `Bytes::from` a second allocation.
    let mut handle = Vec::with_capacity(prefix.len() + 1 + digits.len());
    handle.extend_from_slice(prefix);
    handle.push(b':');
    handle.extend_from_slice(digits);
    Bytes::from(handle)
}
