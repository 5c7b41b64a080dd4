//! The database-server stores by their `-q` names: their options checked from the command
//! line, and opened at start-up.

use super::memcached::{MemcachedConfig, MemcachedStore};
use super::mysql::{MysqlConfig, MysqlStore};
use super::postgres::{PostgresConfig, PostgresStore};
use super::redis::{RedisConfig, RedisStore};
use super::tokyocabinet::{self, TokyoCabinetConfig, TokyoCabinetStore};
use super::QueueStore;
use crate::cli::Cli;
use crate::config::QueueConfig;

/// The store `name` (lower-cased `-q`) names with its options checked, or `None` when no
/// store here has that name. Nothing is connected to: `--check-args` stops after this. A
/// store whose library is loaded at run time has it loaded here, so a missing library fails
/// `--check-args` as it fails the start.
pub fn from_cli(name: &str, cli: &Cli) -> Option<Result<QueueConfig, String>> {
    Some(match name {
        "libpq" | "postgres" => {
            PostgresConfig::new(&cli.libpq_conninfo, &cli.libpq_table).map(QueueConfig::Postgres)
        }
        "libdrizzle" | "mysql" => {
            let drizzle = name == "libdrizzle";
            let db = match (&cli.libdrizzle_db, drizzle) {
                (Some(db), _) => db.clone(),
                (None, true) => "gearman".into(),
                (None, false) => String::new(),
            };
            let table = cli
                .libdrizzle_table
                .clone()
                .unwrap_or_else(|| if drizzle { "queue" } else { "gearman_queue" }.to_string());
            MysqlConfig {
                host: cli.libdrizzle_host.clone(),
                port: cli.libdrizzle_port,
                socket: cli.libdrizzle_uds.clone(),
                user: cli.libdrizzle_user.clone().unwrap_or_else(|| "root".into()),
                password: cli.libdrizzle_password.clone(),
                db,
                table,
            }
            .validate()
            .map(QueueConfig::Mysql)
        }
        "libmemcached" => MemcachedConfig::new(
            cli.libmemcached_servers.as_deref(),
            &cli.libmemcached_prefix,
        )
        .map(QueueConfig::Memcached),
        "redis" => RedisConfig::new(
            &cli.redis_server,
            cli.redis_port,
            cli.redis_password.as_deref(),
            &cli.redis_prefix,
        )
        .map(QueueConfig::Redis),
        "libtokyocabinet" => TokyoCabinetConfig::new(
            cli.libtokyocabinet_file.as_deref(),
            cli.libtokyocabinet_optimize,
        )
        .and_then(|config| {
            tokyocabinet::check_library()
                .map(|()| config)
                .map_err(|e| e.to_string())
        })
        .map(QueueConfig::TokyoCabinet),
        _ => return None,
    })
}

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
