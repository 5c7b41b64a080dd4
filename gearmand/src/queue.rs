//! The persistent-queue contract: background jobs are added before they become runnable,
//! marked done when they end, and replayed at start-up.
//!
//! A store is only ever used from its own thread ([`writer`]), so it may block on disk or
//! network; the processing thread sends it batches and continues.

pub mod memcached;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod sql;
pub mod sqlite;
pub mod stores;
pub mod tokyocabinet;
pub mod writer;

use std::path::PathBuf;

use bytes::Bytes;
use gearman_shared::protocol::Priority;

/// The persistent queue (`-q`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueConfig {
    /// `builtin`: nothing is stored.
    Builtin,
    /// `libsqlite3`.
    Sqlite {
        /// `--libsqlite3-db`.
        db: PathBuf,
        /// `--libsqlite3-table`.
        table: String,
        /// `--store-queue-on-shutdown`.
        on_shutdown: bool,
    },
    /// `libpq` (or `Postgres`).
    Postgres(postgres::PostgresConfig),
    /// `libdrizzle` (or `MySQL`).
    Mysql(mysql::MysqlConfig),
    /// `libmemcached`.
    Memcached(memcached::MemcachedConfig),
    /// `redis`.
    Redis(redis::RedisConfig),
    /// `libtokyocabinet`.
    TokyoCabinet(tokyocabinet::TokyoCabinetConfig),
}

impl QueueConfig {
    /// `--store-queue-on-shutdown`.
    pub fn on_shutdown(&self) -> bool {
        matches!(
            self,
            QueueConfig::Sqlite {
                on_shutdown: true,
                ..
            }
        )
    }
}

/// A background job as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    /// The storage key (see [`storage_key`]): the unique, or a generated one.
    pub key: Bytes,
    /// Function name.
    pub function: Bytes,
    /// Priority.
    pub priority: Priority,
    /// Workload.
    pub data: Bytes,
    /// Unix time before which it must not run; 0 = now.
    pub when: i64,
}

/// One change to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// A new background job.
    Add(StoredJob),
    /// A job ended (completed, failed, cancelled): forget it.
    Done { key: Bytes, function: Bytes },
}

/// Failures of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The stored data cannot be a job.
    #[error("invalid stored job: {0}")]
    Invalid(String),
    /// The configuration cannot work.
    #[error("{0}")]
    Config(String),
    /// A database server (`store` names the module) refused, failed or could not be reached.
    #[error("{store}: {message}")]
    Backend {
        /// The queue module, as `-q` names it.
        store: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl StoreError {
    /// A [`StoreError::Backend`] from anything printable.
    pub fn backend(store: &'static str, message: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            store,
            message: message.to_string(),
        }
    }
}

/// A persistent queue backend.
pub trait QueueStore: Send {
    /// Every job not yet done, in the order they were added.
    fn replay(&mut self) -> Result<Vec<StoredJob>, StoreError>;
    /// Applies `ops` in order, durably, all or nothing.
    fn write(&mut self, ops: &[StoreOp]) -> Result<(), StoreError>;
}

/// Marks generated storage keys. The C server's tables key rows on (unique, function),
/// so jobs with an empty unique, or `-` with different data, would overwrite each other:
/// such jobs get a generated key instead, and replay turns it back into their unique.
const GENERATED: &[u8] = b"\x01gearmand-rs:";

/// The key a background job is stored under.
pub fn storage_key(unique: &[u8], session: u64, job: u64) -> Bytes {
    let tag = match unique {
        b"" => "e",
        b"-" => "d",
        _ => return Bytes::copy_from_slice(unique),
    };
    let mut key = GENERATED.to_vec();
    key.extend_from_slice(format!("{tag}:{session:x}:{job}").as_bytes());
    Bytes::from(key)
}

/// The unique a stored key stands for.
pub fn unique_of_key(key: &Bytes) -> Bytes {
    match key.strip_prefix(GENERATED) {
        Some(rest) if rest.starts_with(b"e:") => Bytes::new(),
        Some(rest) if rest.starts_with(b"d:") => Bytes::from_static(b"-"),
        _ => key.clone(),
    }
}

/// Priority from its stored number (0 = HIGH, 1 = NORMAL, 2 = LOW, as the C server).
pub fn priority_from_index(n: i64) -> Option<Priority> {
    Priority::ALL.into_iter().find(|p| p.index() as i64 == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_to_their_unique() {
        for unique in ["", "-", "u-1"] {
            let unique = Bytes::from(unique);
            let key = storage_key(&unique, 0xabc, 7);
            assert_eq!(unique_of_key(&key), unique);
            assert!(key.len() < 64);
        }
        assert_ne!(
            storage_key(&Bytes::new(), 1, 1),
            storage_key(&Bytes::new(), 1, 2)
        );
    }
}
