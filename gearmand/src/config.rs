//! Validated server configuration, built from the command line.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gearman_shared::protocol::Limits;

use crate::cli::{Cli, DEFAULT_LOG_FILE, VERBOSE_LEVELS};
use crate::net_range::NetRange;
use crate::queue::memcached::MemcachedConfig;
use crate::queue::mysql::MysqlConfig;
use crate::queue::postgres::PostgresConfig;
use crate::queue::redis::RedisConfig;
use crate::queue::tokyocabinet::{self, TokyoCabinetConfig};
use crate::queue::QueueConfig;
use crate::state::StateConfig;
use crate::tls::TlsFiles;

/// The C server's default pid file; failing to write it is not an error.
const DEFAULT_PID_FILE: &str = "/var/gearmand.pid";

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// `-l none`.
    None,
    /// `-l stderr`.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

/// How the work is spread over threads (`-t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadModel {
    /// `-t 0`: one thread listens, does I/O and processes.
    Single,
    /// `-t 1`: a listener thread and one I/O thread that also processes.
    OneIo,
    /// `-t N≥2`: a listener thread, N I/O threads and a processing thread.
    Pool(usize),
}

/// TCP keepalive settings for accepted sockets (`--keepalive*`); `None` fields keep
/// the system defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keepalive {
    /// TCP_KEEPIDLE, seconds.
    pub idle: Option<u64>,
    /// TCP_KEEPINTVL, seconds.
    pub interval: Option<u64>,
    /// TCP_KEEPCNT.
    pub count: Option<u32>,
}

/// Who may run the `shutdown` admin commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownAccess {
    /// Nobody: the commands are refused.
    Nobody,
    /// Any peer.
    Anyone,
    /// Peers whose address falls in one of these (address, prefix length) ranges.
    Networks(Vec<NetRange>),
}

impl ShutdownAccess {
    /// Loopback only, the default.
    pub fn loopback() -> ShutdownAccess {
        ShutdownAccess::Networks(vec![
            NetRange::new(IpAddr::from([127, 0, 0, 0]), 8),
            NetRange::new(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]), 128),
        ])
    }

    /// Parses `loopback`, `any`, `none` or `ADDR[/BITS],…`.
    pub fn parse(text: &str) -> Result<ShutdownAccess, ConfigError> {
        match text {
            "loopback" => return Ok(ShutdownAccess::loopback()),
            "any" => return Ok(ShutdownAccess::Anyone),
            "none" => return Ok(ShutdownAccess::Nobody),
            _ => {}
        }
        let bad = || ConfigError::ShutdownAccess(text.to_string());
        let mut networks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            networks.push(NetRange::parse(item).map_err(|_| bad())?);
        }
        if networks.is_empty() {
            return Err(bad());
        }
        Ok(ShutdownAccess::Networks(networks))
    }

    /// Whether a peer at `peer` may shut the server down.
    pub fn allows(&self, peer: &str) -> bool {
        let networks = match self {
            ShutdownAccess::Nobody => return false,
            ShutdownAccess::Anyone => return true,
            ShutdownAccess::Networks(networks) => networks,
        };
        let Ok(peer) = peer.parse::<IpAddr>() else {
            return false;
        };
        networks.iter().any(|range| range.contains(peer))
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `-L`: address to bind; `None` binds every address.
    pub listen: Option<String>,
    /// `-p`.
    pub port: u16,
    /// `-b`.
    pub backlog: i32,
    /// `-t`.
    pub threads: ThreadModel,
    /// Job-model options.
    pub state: StateConfig,
    /// `-l`.
    pub log: LogTarget,
    /// Whether `-l` was left at its default (then an unwritable file falls back to stderr).
    pub log_is_default: bool,
    /// `--verbose` as a tracing level.
    pub verbose: tracing::Level,
    /// The `--verbose` name, as the `verbose` admin command reports it.
    pub verbose_name: String,
    /// `-P`, and whether it is the default (whose failure is ignored).
    pub pid_file: PathBuf,
    /// Whether `-P` was left at its default.
    pub pid_file_is_default: bool,
    /// Decoder limits.
    pub limits: Limits,
    /// Bytes queued for one connection before it is dropped as not reading.
    pub max_outbox: usize,
    /// Most simultaneous connections; 0 = no limit.
    pub max_connections: usize,
    /// How long an incomplete frame may wait for its rest.
    pub partial_timeout: Option<std::time::Duration>,
    /// `-d`.
    pub daemon: bool,
    /// `-f`.
    pub file_descriptors: Option<u64>,
    /// `-u`.
    pub user: Option<String>,
    /// `--keepalive*`.
    pub keepalive: Option<Keepalive>,
    /// `--syslog`.
    pub syslog: bool,
    /// `--coredump`.
    pub coredump: bool,
    /// Who may use the `shutdown` admin commands.
    pub shutdown_access: ShutdownAccess,
    /// `--check-args`: validate, then exit.
    pub check_only: bool,
    /// `-q` and its options.
    pub queue: QueueConfig,
    /// `-r http`: the HTTP listener.
    pub http: Option<HttpConfig>,
    /// `--ssl*`: TLS on the job port.
    pub tls: Option<TlsFiles>,
    /// `--acl`: the access-control file.
    pub acl: Option<PathBuf>,
}

/// The HTTP protocol's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// `--http-port`.
    pub port: u16,
    /// `--http-max-body`.
    pub max_body: usize,
}

/// A configuration problem, reported as `gearmand: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--verbose` with an unknown level.
    #[error("Invalid value for --verbose supplied")]
    Verbose,
    /// `--hashtable-buckets 0`.
    #[error("hashtable-buckets has to be greater than 0")]
    HashtableBuckets,
    /// `-r` with a module we do not have.
    #[error("Unknown protocol module : {0}")]
    Protocol(String),
    /// `-q` with a queue we do not have.
    #[error("Error while initializing the queue : {0}")]
    Queue(String),
    /// `--ssl` without its certificate and key.
    #[error("--ssl needs --ssl-certificate and --ssl-key")]
    Tls,
    /// `--allow-shutdown-from` that does not parse.
    #[error(
        "invalid --allow-shutdown-from value '{0}' (use loopback, any, none or ADDR[/BITS],...)"
    )]
    ShutdownAccess(String),
    /// The working directory is needed to make paths absolute before daemonizing.
    #[error("cannot resolve {0}: {1}")]
    Path(PathBuf, std::io::Error),
}

impl Config {
    /// Validates the parsed command line.
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let Some(rank) = VERBOSE_LEVELS.iter().position(|l| *l == cli.verbose) else {
            return Err(ConfigError::Verbose);
        };
        let verbose = match rank {
            0..=3 => tracing::Level::ERROR,
            4 => tracing::Level::WARN,
            5 | 6 => tracing::Level::INFO,
            _ => tracing::Level::DEBUG,
        };
        if cli.hashtable_buckets == 0 {
            return Err(ConfigError::HashtableBuckets);
        }
        for module in &cli.protocol {
            if !module.eq_ignore_ascii_case("http") {
                return Err(ConfigError::Protocol(module.clone()));
            }
        }
        let http = (!cli.protocol.is_empty()).then_some(HttpConfig {
            port: cli.http_port,
            max_body: cli.http_max_body,
        });
        let queue = match cli.queue_type.to_ascii_lowercase().as_str() {
            "builtin" => QueueConfig::Builtin,
            "libsqlite3" => match &cli.libsqlite3_db {
                Some(db) => QueueConfig::Sqlite {
                    db: absolute(db)?,
                    table: cli.libsqlite3_table.clone(),
                    on_shutdown: cli.store_queue_on_shutdown,
                },
                None => return Err(ConfigError::Queue(cli.queue_type.clone())),
            },
            name => match store_from_cli(name, cli) {
                Some(Ok(queue)) => queue,
                Some(Err(why)) => {
                    return Err(ConfigError::Queue(format!("{} ({why})", cli.queue_type)))
                }
                None => return Err(ConfigError::Queue(cli.queue_type.clone())),
            },
        };
        let tls = match (cli.ssl, &cli.ssl_certificate, &cli.ssl_key) {
            (false, None, None) if cli.ssl_ca_file.is_none() => None,
            (_, Some(certificate), Some(key)) => Some(TlsFiles {
                certificate: absolute(certificate)?,
                key: absolute(key)?,
                ca: cli.ssl_ca_file.as_deref().map(absolute).transpose()?,
            }),
            _ => return Err(ConfigError::Tls),
        };
        let shutdown_access = ShutdownAccess::parse(&cli.allow_shutdown_from)?;
        let log = match cli.log_file.as_str() {
            "none" => LogTarget::None,
            "stderr" => LogTarget::Stderr,
            path => LogTarget::File(absolute(Path::new(path))?),
        };
        let keepalive = cli.keepalive.then(|| Keepalive {
            idle: u64::try_from(cli.keepalive_idle).ok(),
            interval: u64::try_from(cli.keepalive_interval).ok(),
            count: u32::try_from(cli.keepalive_count).ok(),
        });
        let threads = match cli.threads {
            0 => ThreadModel::Single,
            1 => ThreadModel::OneIo,
            n => ThreadModel::Pool(n as usize),
        };
        let handle_prefix = cli.job_handle_prefix.clone().unwrap_or_else(|| {
            format!(
                "H:{}",
                nix::unistd::gethostname()
                    .unwrap_or_default()
                    .to_string_lossy()
            )
        });
        let limits = Limits {
            max_packet_size: cli.max_packet_size,
            max_text_line: cli.max_admin_line.max(2),
        };
        Ok(Config {
            listen: cli.listen.clone(),
            port: cli.port,
            backlog: cli.backlog,
            threads,
            state: StateConfig {
                handle_prefix: Bytes::from(handle_prefix),
                job_retries: cli.job_retries,
                worker_wakeup: cli.worker_wakeup,
                round_robin: cli.round_robin,
                exceptions: cli.exceptions,
                persistent: queue != QueueConfig::Builtin,
                session: 0,
            },
            log_is_default: cli.log_file == DEFAULT_LOG_FILE,
            log,
            verbose,
            verbose_name: cli.verbose.clone(),
            pid_file_is_default: cli.pid_file.is_none(),
            pid_file: absolute(
                cli.pid_file
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_PID_FILE)),
            )?,
            max_outbox: cli.max_outbox,
            max_connections: cli.max_connections,
            partial_timeout: (cli.partial_timeout > 0)
                .then(|| std::time::Duration::from_secs(cli.partial_timeout)),
            limits,
            daemon: cli.daemon,
            file_descriptors: cli.file_descriptors,
            user: cli.user.clone(),
            keepalive,
            syslog: cli.syslog,
            coredump: cli.coredump,
            shutdown_access,
            check_only: cli.check_args,
            queue,
            http,
            tls,
            acl: cli.acl.as_deref().map(absolute).transpose()?,
        })
    }
}

/// The store `name` (lower-cased `-q`) names with its options checked, or `None` when no
/// store here has that name. Nothing is connected to: `--check-args` stops after this. A
/// store whose library is loaded at run time has it loaded here, so a missing library fails
/// `--check-args` as it fails the start.
fn store_from_cli(name: &str, cli: &Cli) -> Option<Result<QueueConfig, String>> {
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

/// Makes a path absolute, so it still means the same after `-d` changes directory.
fn absolute(path: &Path) -> Result<PathBuf, ConfigError> {
    std::path::absolute(path).map_err(|e| ConfigError::Path(path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_access_lists() {
        let loopback = ShutdownAccess::loopback();
        assert!(loopback.allows("127.0.0.1"));
        assert!(loopback.allows("127.0.0.2"));
        assert!(loopback.allows("::1"));
        assert!(loopback.allows("::ffff:127.0.0.1"));
        assert!(!loopback.allows("10.0.0.1"));
        let list = ShutdownAccess::parse("10.1.0.0/16, 192.168.1.7").expect("valid list");
        assert!(list.allows("10.1.200.3"));
        assert!(!list.allows("10.2.0.1"));
        assert!(list.allows("192.168.1.7"));
        assert!(!list.allows("192.168.1.8"));
        assert!(!ShutdownAccess::Nobody.allows("127.0.0.1"));
        assert!(ShutdownAccess::parse("10.0.0.0/33").is_err());
        assert!(ShutdownAccess::parse("bogus").is_err());
    }
}
