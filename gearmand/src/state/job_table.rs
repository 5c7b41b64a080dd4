//! The job table: every job the server holds, by number.
//!
//! A hash table of boxed jobs (8 bytes a slot, the job's number read from the job
//! itself), which gives its memory back as a deep queue drains.

use hashbrown::HashTable;

use super::{Job, JobId};

/// Tables this small are never shrunk: not worth the rehashing.
pub(super) const SHRINK_FLOOR: usize = 1024;

/// Whether a table of `capacity` slots holding `len` entries should shrink: when less
/// than an eighth is used, so that a table oscillating around one size never rehashes
/// back and forth.
pub(super) fn should_shrink(len: usize, capacity: usize) -> bool {
    capacity > SHRINK_FLOOR && len < capacity / 8
}

#[derive(Default)]
pub(super) struct JobTable {
    table: HashTable<Box<Job>>,
    hasher: ahash::RandomState,
}

impl JobTable {
    fn hash(&self, id: JobId) -> u64 {
        self.hasher.hash_one(id.0)
    }

    pub fn get(&self, id: &JobId) -> Option<&Job> {
        self.table
            .find(self.hash(*id), |job| job.id == *id)
            .map(|job| &**job)
    }

    pub fn get_mut(&mut self, id: &JobId) -> Option<&mut Job> {
        let hash = self.hash(*id);
        self.table
            .find_mut(hash, |job| job.id == *id)
            .map(|job| &mut **job)
    }

    pub fn contains_key(&self, id: &JobId) -> bool {
        self.get(id).is_some()
    }

    /// Adds a job whose number is not in the table yet.
    pub fn insert(&mut self, job: Box<Job>) {
        let hash = self.hash(job.id);
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, job, |job| hasher.hash_one(job.id.0));
    }

    pub fn remove(&mut self, id: &JobId) -> Option<Box<Job>> {
        let hash = self.hash(*id);
        let (job, _) = self
            .table
            .find_entry(hash, |job| job.id == *id)
            .ok()?
            .remove();
        if should_shrink(self.table.len(), self.table.capacity()) {
            let hasher = &self.hasher;
            self.table
                .shrink_to(self.table.len() * 2, |job| hasher.hash_one(job.id.0));
        }
        Some(job)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn values(&self) -> impl Iterator<Item = &Job> {
        self.table.iter().map(|job| &**job)
    }

    /// Slots allocated, for tests of the shrinking.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }
}
