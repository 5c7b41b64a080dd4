//! The database-server stores by their `-q` names, opened at start-up (their options are
//! checked from the command line in [`crate::config`]).

use super::memcached::MemcachedStore;
use super::mysql::MysqlStore;
use super::postgres::PostgresStore;
use super::redis::RedisStore;
use super::tokyocabinet::TokyoCabinetStore;
use super::QueueConfig;
use super::QueueStore;

/// Connects to (or opens) the configured store; failing is a start-up error that names
/// the module and the reason.
pub fn open(queue: &QueueConfig) -> anyhow::Result<Box<dyn QueueStore>> {
    let (name, result): (&str, Result<Box<dyn QueueStore>, _>) = match queue {
        QueueConfig::Postgres(c) => ("libpq", PostgresStore::open(c).map(boxed)),
        QueueConfig::Mysql(c) => ("MySQL", MysqlStore::open(c).map(boxed)),
        QueueConfig::Memcached(c) => ("libmemcached", MemcachedStore::open(c).map(boxed)),
        QueueConfig::Redis(c) => ("redis", RedisStore::open(c).map(boxed)),
        QueueConfig::TokyoCabinet(c) => ("libtokyocabinet", TokyoCabinetStore::open(c).map(boxed)),
        QueueConfig::Builtin | QueueConfig::Sqlite { .. } => {
            anyhow::bail!("Error while initializing the queue : not a database-server store")
        }
    };
    result.map_err(|e| anyhow::anyhow!("Error while initializing the queue : {name} ({e})"))
}

fn boxed<S: QueueStore + 'static>(store: S) -> Box<dyn QueueStore> {
    Box::new(store)
}
