//! The coalescing index: which job holds a function's unique key.
//!
//! It stores job numbers only (8 bytes a slot) and reads each key back from its job, so
//! a deep queue of jobs with distinct uniques does not pay for every function name and
//! key a second time in a map of 80-byte entries.

use hashbrown::HashTable;

use super::job_table::{should_shrink, JobTable};
use super::{Job, JobId, UniqueKey};

/// Unique key → job, for the jobs that hold their key (see `Job::indexed`).
#[derive(Default)]
pub(super) struct UniqueIndex {
    table: HashTable<JobId>,
    hasher: ahash::RandomState,
}

/// The key `job` holds in the index, if it holds one.
pub(super) fn key_of(job: &Job) -> Option<UniqueKey<'_>> {
    UniqueKey::of(job.unique(), job.data()).filter(|_| job.indexed)
}

impl UniqueIndex {
    fn hash(&self, function: &[u8], key: &UniqueKey<'_>) -> u64 {
        self.hasher.hash_one((function, key))
    }

    /// The job holding `key` within `function`.
    pub fn find(&self, jobs: &JobTable, function: &[u8], key: &UniqueKey<'_>) -> Option<JobId> {
        let hash = self.hash(function, key);
        let holds = |id: &JobId| {
            jobs.get(id).is_some_and(|job| {
                job.function.as_ref() == function && key_of(job).as_ref() == Some(key)
            })
        };
        self.table.find(hash, holds).copied()
    }

    /// Records that `job` holds its key. Every job already in the index must be in
    /// `jobs`: their keys are read from there when the table grows.
    pub fn insert(&mut self, jobs: &JobTable, job: &Job) {
        let Some(key) = key_of(job) else {
            return;
        };
        let hash = self.hash(&job.function, &key);
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, job.id, |id| rehash(hasher, jobs, id));
    }

    /// Forgets `job`'s key; call while `job.indexed` still says it holds one. The other
    /// jobs in the index must be in `jobs`.
    pub fn remove(&mut self, jobs: &JobTable, job: &Job) {
        let Some(key) = key_of(job) else {
            return;
        };
        let hash = self.hash(&job.function, &key);
        if let Ok(entry) = self.table.find_entry(hash, |&id| id == job.id) {
            entry.remove();
        }
        if should_shrink(self.table.len(), self.table.capacity()) {
            let hasher = &self.hasher;
            self.table
                .shrink_to(self.table.len() * 2, |id| rehash(hasher, jobs, id));
        }
    }

    /// Every job holding a key.
    pub fn jobs(&self) -> impl Iterator<Item = JobId> + '_ {
        self.table.iter().copied()
    }
}

/// The hash of the key job `id` holds, read from the job: what the table needs when it
/// moves its slots.
fn rehash(hasher: &ahash::RandomState, jobs: &JobTable, id: &JobId) -> u64 {
    jobs.get(id)
        .and_then(|job| Some(hasher.hash_one((job.function.as_ref(), &key_of(job)?))))
        .unwrap_or(0)
}
