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

use gearman_shared::protocol::Priority;

/// What a store keeps and the changes it applies, as the job model makes them.
pub use crate::state::{StoreOp, StoredJob};

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

/// Priority from its stored number (0 = HIGH, 1 = NORMAL, 2 = LOW, as the C server).
pub fn priority_from_index(n: i64) -> Option<Priority> {
    Priority::ALL.into_iter().find(|p| p.index() as i64 == n)
}
