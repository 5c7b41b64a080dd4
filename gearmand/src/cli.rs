//! The command line, with the C gearmand's option names, short forms and defaults.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::Parser;
use gearman_shared::protocol::{DEFAULT_MAX_PACKET_SIZE, DEFAULT_MAX_TEXT_LINE};

/// Verbosity names the C server accepts (case-sensitive), most to least severe.
pub const VERBOSE_LEVELS: [&str; 8] = [
    "FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG",
];

/// Gearman job server.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gearmand",
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true,
    about = "Gearman job server (a drop-in replacement for the C gearmand)",
    after_help = "Options may also come from --config-file (default /etc/gearmand.conf): \
                  whitespace-separated tokens in the same syntax; `@FILE` is short for \
                  `--config-file FILE`. The command line wins over the file.",
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    /// Number of backlog connections for listen.
    #[arg(short = 'b', long, default_value_t = 32, value_name = "N")]
    pub backlog: i32,

    /// Check command line and configuration file arguments and then exit.
    #[arg(long)]
    pub check_args: bool,

    /// Daemon, detach and run in the background.
    #[arg(short = 'd', long)]
    pub daemon: bool,

    /// Enable protocol exceptions by default.
    #[arg(long)]
    pub exceptions: bool,

    /// Number of file descriptors to allow for the process. Default is the maximum
    /// allowed for the user.
    #[arg(short = 'f', long, value_name = "N")]
    pub file_descriptors: Option<u64>,

    /// Print this help menu.
    #[arg(short = 'h', long, action = clap::ArgAction::HelpLong)]
    pub help: Option<bool>,

    /// Number of attempts to run the job before the job server removes it; 0 = no limit.
    #[arg(short = 'j', long, default_value_t = 0, value_name = "N")]
    pub job_retries: u32,

    /// Prefix used to generate a job handle string. Default "H:<host_name>".
    #[arg(long, value_name = "PREFIX")]
    pub job_handle_prefix: Option<String>,

    /// Accepted for compatibility: a sizing hint the C server needed for its hash
    /// tables; ours grow by themselves. Must be greater than 0.
    #[arg(long, default_value_t = 991, value_name = "N")]
    pub hashtable_buckets: u32,

    /// Enable keepalive on sockets.
    #[arg(long)]
    pub keepalive: bool,

    /// With --keepalive: TCP_KEEPIDLE in seconds; -1 keeps the system default.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_name = "SECS")]
    pub keepalive_idle: i64,

    /// With --keepalive: TCP_KEEPINTVL in seconds; -1 keeps the system default.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_name = "SECS")]
    pub keepalive_interval: i64,

    /// With --keepalive: TCP_KEEPCNT; -1 keeps the system default.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_name = "N")]
    pub keepalive_count: i64,

    /// Log file: a path, 'stderr', or 'none'.
    #[arg(short = 'l', long, default_value = DEFAULT_LOG_FILE, value_name = "FILE")]
    pub log_file: String,

    /// Address the server should listen on. Default is all addresses.
    #[arg(short = 'L', long, value_name = "ADDRESS")]
    pub listen: Option<String>,

    /// File to write process ID out to.
    #[arg(short = 'P', long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Load protocol module: `http` serves job submission, /metrics and /status on
    /// --http-port.
    #[arg(short = 'r', long, value_name = "MODULE")]
    pub protocol: Vec<String>,

    /// Assign work in round-robin order per worker connection.
    #[arg(short = 'R', long)]
    pub round_robin: bool,

    /// Persistent queue type to use.
    #[arg(short = 'q', long, default_value = "builtin", value_name = "TYPE")]
    pub queue_type: String,

    /// Configuration file with more options.
    #[arg(long, default_value = DEFAULT_CONFIG_FILE, value_name = "FILE")]
    pub config_file: PathBuf,

    /// Log to syslog (in addition to --log-file).
    #[arg(long)]
    pub syslog: bool,

    /// Allow a core dump on a crash (raises RLIMIT_CORE).
    #[arg(long)]
    pub coredump: bool,

    /// Number of I/O threads; 0 runs everything in one thread.
    #[arg(short = 't', long, default_value_t = 4, value_name = "N")]
    pub threads: u32,

    /// Switch to given user after startup (after binding the ports).
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// Verbose level (FATAL, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG).
    #[arg(short = 'v', long, default_value = "ERROR", value_name = "LEVEL")]
    pub verbose: String,

    /// Display the version of gearmand and exit.
    #[arg(short = 'V', long)]
    pub version: bool,

    /// Number of workers to wake up for each job received; 0 = all.
    #[arg(short = 'w', long, default_value_t = 0, value_name = "N")]
    pub worker_wakeup: u32,

    /// Access-control file: who may register, submit and run admin commands (see the
    /// README); reloaded on SIGHUP. Without it everything is allowed.
    #[arg(long, value_name = "FILE")]
    pub acl: Option<PathBuf>,

    /// Who may use the `shutdown` admin commands: `loopback` (default), `any`, `none`,
    /// or a comma-separated list of addresses and CIDR ranges.
    #[arg(long, default_value = "loopback", value_name = "WHO")]
    pub allow_shutdown_from: String,

    /// Largest packet payload accepted (bytes); a larger size field closes the connection.
    #[arg(long, default_value_t = DEFAULT_MAX_PACKET_SIZE, value_name = "BYTES", help_heading = "Limits")]
    pub max_packet_size: usize,

    /// Longest admin text line accepted (bytes); a longer one closes the connection.
    #[arg(long, default_value_t = DEFAULT_MAX_TEXT_LINE, value_name = "BYTES", help_heading = "Limits")]
    pub max_admin_line: usize,

    /// Most simultaneous connections; further ones are closed at once (0 = no limit
    /// beyond the descriptor limit).
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = "Limits")]
    pub max_connections: usize,

    /// Output bytes waiting for one connection before it is dropped as not reading.
    #[arg(long, default_value_t = 2 * DEFAULT_MAX_PACKET_SIZE, value_name = "BYTES", help_heading = "Limits")]
    pub max_outbox: usize,

    /// Seconds a connection may sit on an incomplete packet or line before it is closed
    /// (0 = never). Idle connections with nothing half-sent are never closed.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECS",
        help_heading = "Limits"
    )]
    pub partial_timeout: u64,

    /// SQLite database file for `-q libsqlite3`.
    #[arg(long, value_name = "FILE", help_heading = "libsqlite3")]
    pub libsqlite3_db: Option<PathBuf>,

    /// Table to use.
    #[arg(
        long,
        default_value = "gearman_queue",
        value_name = "TABLE",
        help_heading = "libsqlite3"
    )]
    pub libsqlite3_table: String,

    /// Keep background jobs in memory while running and store them at shutdown only.
    #[arg(long, help_heading = "libsqlite3")]
    pub store_queue_on_shutdown: bool,

    /// PostgreSQL connection string for `-q libpq` / `-q Postgres`: libpq `keyword=value`
    /// pairs (host, hostaddr, port, user, password, dbname, connect_timeout, sslmode,
    /// application_name) or a postgres:// URI.
    #[arg(
        long,
        default_value = "",
        value_name = "CONNINFO",
        help_heading = "libpq"
    )]
    pub libpq_conninfo: String,

    /// Table to use.
    #[arg(
        long,
        default_value = "queue",
        value_name = "TABLE",
        help_heading = "libpq"
    )]
    pub libpq_table: String,

    /// MySQL/MariaDB host for `-q libdrizzle` / `-q MySQL`.
    #[arg(
        long,
        visible_alias = "mysql-host",
        default_value = "localhost",
        value_name = "HOST",
        help_heading = "libdrizzle (MySQL)"
    )]
    pub libdrizzle_host: String,

    /// Port of the server.
    #[arg(
        long,
        visible_alias = "mysql-port",
        default_value_t = 3306,
        value_name = "PORT",
        help_heading = "libdrizzle (MySQL)"
    )]
    pub libdrizzle_port: u16,

    /// Unix socket of the server, used instead of host and port.
    #[arg(long, value_name = "PATH", help_heading = "libdrizzle (MySQL)")]
    pub libdrizzle_uds: Option<PathBuf>,

    /// User name (default root).
    #[arg(
        long,
        visible_alias = "mysql-user",
        value_name = "USER",
        help_heading = "libdrizzle (MySQL)"
    )]
    pub libdrizzle_user: Option<String>,

    /// User password.
    #[arg(
        long,
        visible_alias = "mysql-password",
        default_value = "",
        value_name = "PASSWORD",
        help_heading = "libdrizzle (MySQL)"
    )]
    pub libdrizzle_password: String,

    /// Database (default gearman with -q libdrizzle; required with -q MySQL).
    #[arg(
        long,
        visible_alias = "mysql-db",
        value_name = "DB",
        help_heading = "libdrizzle (MySQL)"
    )]
    pub libdrizzle_db: Option<String>,

    /// Table (default queue with -q libdrizzle, gearman_queue with -q MySQL).
    #[arg(
        long,
        visible_alias = "mysql-table",
        value_name = "TABLE",
        help_heading = "libdrizzle (MySQL)"
    )]
    pub libdrizzle_table: Option<String>,

    /// Accepted for compatibility: the MySQL protocol is always used.
    #[arg(long, help_heading = "libdrizzle (MySQL)")]
    pub libdrizzle_mysql: bool,

    /// memcached servers for `-q libmemcached`: HOST[:PORT], comma-separated.
    #[arg(long, value_name = "SERVERS", help_heading = "libmemcached")]
    pub libmemcached_servers: Option<String>,

    /// Prefix of the keys.
    #[arg(
        long,
        default_value = "gear_",
        value_name = "PREFIX",
        help_heading = "libmemcached"
    )]
    pub libmemcached_prefix: String,

    /// Redis server for `-q redis`.
    #[arg(
        long,
        default_value = "127.0.0.1",
        value_name = "HOST",
        help_heading = "redis"
    )]
    pub redis_server: String,

    /// Redis server port.
    #[arg(
        long,
        default_value_t = 6379,
        value_name = "PORT",
        help_heading = "redis"
    )]
    pub redis_port: u16,

    /// Redis server password.
    #[arg(long, value_name = "PASSWORD", help_heading = "redis")]
    pub redis_password: Option<String>,

    /// Prefix of the keys.
    #[arg(
        long,
        default_value = "_gear_",
        value_name = "PREFIX",
        help_heading = "redis"
    )]
    pub redis_prefix: String,

    /// Tokyo Cabinet database for `-q libtokyocabinet` (the suffix picks the kind:
    /// .tch hash, .tcb B+ tree).
    #[arg(long, value_name = "FILE", help_heading = "libtokyocabinet")]
    pub libtokyocabinet_file: Option<PathBuf>,

    /// Optimize the database file when opening it.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_name = "BOOL", help_heading = "libtokyocabinet")]
    pub libtokyocabinet_optimize: bool,

    /// Port to listen on for the HTTP protocol (with -r http).
    #[arg(
        long,
        default_value_t = 8080,
        value_name = "PORT",
        help_heading = "HTTP"
    )]
    pub http_port: u16,

    /// Largest HTTP request body accepted (bytes); larger ones get 413.
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES", help_heading = "HTTP")]
    pub http_max_body: usize,

    /// Port the server should listen on (also read from GEARMAND_PORT).
    #[arg(
        short = 'p',
        long,
        env = "GEARMAND_PORT",
        default_value_t = 4730,
        value_name = "PORT",
        help_heading = "Gear"
    )]
    pub port: u16,

    /// Enable TLS connections.
    #[arg(long, help_heading = "Gear")]
    pub ssl: bool,

    /// TLS: CA file.
    #[arg(long, value_name = "FILE", help_heading = "Gear")]
    pub ssl_ca_file: Option<PathBuf>,

    /// TLS: certificate.
    #[arg(long, value_name = "FILE", help_heading = "Gear")]
    pub ssl_certificate: Option<PathBuf>,

    /// TLS: key for the certificate.
    #[arg(long, value_name = "FILE", help_heading = "Gear")]
    pub ssl_key: Option<PathBuf>,
}

/// `--help` and the man page: the configuration file and the `--acl` file format.
const AFTER_LONG_HELP: &str = "\
Options may also come from --config-file (default /etc/gearmand.conf): whitespace-separated \
tokens in the same syntax; `@FILE` is short for `--config-file FILE`. The command line wins \
over the file.

ACL file (--acl FILE): sections name who they apply to, grants follow; a connection gets the \
union of every matching section, and whatever none grants is denied (ERROR / ERR \
PERMISSION_DENIED, logged). SIGHUP reloads the file; a broken file keeps the old rules.

  [cert:NAME]          a TLS client certificate whose CN (or first DNS/e-mail SAN) is NAME
  [addr:IP[/BITS]]     a peer address or range
  [any]                every connection
  can_do = PATTERNS    functions it may register (CAN_DO, CAN_DO_TIMEOUT)
  submit = PATTERNS    functions it may submit jobs to
  admin = RIGHTS       read, cancel, drop, maxqueue, create, shutdown, or all

PATTERNS are comma-separated names where `*` matches any run of characters; `#` starts a \
comment.";

/// The C server's default log file.
pub const DEFAULT_LOG_FILE: &str = "/var/log/gearmand.log";
/// The C server's default configuration file; a missing one is ignored.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/gearmand.conf";

/// The clap definition, for man-page generation.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Renders the man page `gearmand.8` from the clap definition (checked by a test).
#[cfg(test)]
fn man_page() -> std::io::Result<Vec<u8>> {
    gearman_shared::cli::man_page(command().mut_args(with_aliases_in_help), "8", "")
}

/// clap_mangen leaves visible aliases out of the page; the 1.1.20 names (`--mysql-host`…)
/// are what operators look for, so the page says them in the option's text.
#[cfg(test)]
fn with_aliases_in_help(arg: clap::Arg) -> clap::Arg {
    let aliases = arg.get_visible_aliases().unwrap_or_default();
    if aliases.is_empty() {
        return arg;
    }
    let names: Vec<String> = aliases.iter().map(|a| format!("--{a}")).collect();
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    arg.long_help(format!(
        "{help}\n\nAlso {}, its name in gearmand 1.1.20.",
        names.join(", ")
    ))
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run the server.
    Run(Box<Cli>),
    /// Print `text` on stdout (help, version) and exit 0.
    Print(String),
    /// Print `gearmand: <text>` on stderr and exit 1.
    Fail(String),
}

/// Parses the arguments (after the options of the configuration file), turning clap's
/// errors into the C server's messages.
pub fn parse<I, T>(args: I) -> Parsed
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let args = match with_config_file(args) {
        Ok(args) => args,
        Err(message) => return Parsed::Fail(message),
    };
    match Cli::try_parse_from(args) {
        Ok(cli) if cli.version => Parsed::Print(format!(
            "\ngearmand {} - https://github.com/gearman/gearmand/issues (gearman-rs {})\n",
            crate::PROTOCOL_VERSION,
            env!("CARGO_PKG_VERSION")
        )),
        Ok(cli) => Parsed::Run(Box::new(cli)),
        Err(e) if e.kind() == ErrorKind::DisplayHelp => Parsed::Print(e.render().to_string()),
        Err(e) => Parsed::Fail(c_style_message(&e)),
    }
}

/// Expands `@FILE` into `--config-file FILE` and puts the file's tokens before the
/// command-line arguments, so the command line overrides the file.
fn with_config_file(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut expanded = Vec::with_capacity(args.len());
    let mut explicit = None;
    let mut iter = args.into_iter();
    expanded.extend(iter.next());
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().into_owned();
        if let Some(file) = text.strip_prefix('@').filter(|f| !f.is_empty()) {
            explicit = Some(PathBuf::from(file));
            expanded.push("--config-file".into());
            expanded.push(file.into());
        } else if text == "--config-file" {
            let value = iter.next();
            explicit = value.as_ref().map(PathBuf::from);
            expanded.push(arg);
            expanded.extend(value);
        } else if let Some(file) = text.strip_prefix("--config-file=") {
            explicit = Some(PathBuf::from(file));
            expanded.push(arg);
        } else {
            expanded.push(arg);
        }
    }
    let path = explicit
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let content = match std::fs::read_to_string(&path) {
        Ok(content) => content,
        Err(_) if explicit.is_none() => return Ok(expanded),
        Err(_) => return Err("Could not open configuration file.".into()),
    };
    let tokens = content
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(OsString::from);
    let mut args: Vec<OsString> = expanded.drain(..1).collect();
    args.extend(tokens);
    args.extend(expanded);
    Ok(args)
}

fn c_style_message(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(" "),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            format!("unrecognised option '{}'", context(ContextKind::InvalidArg))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = context(ContextKind::InvalidArg);
            let option = arg
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            format!(
                "the argument ('{}') for option '{}' is invalid",
                context(ContextKind::InvalidValue),
                long_name(&option)
            )
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
        }
    }
}

/// `-t <N>` / `--threads <N>` as clap names it → `--threads`, as boost names it.
fn long_name(option: &str) -> String {
    option
        .split(',')
        .map(str::trim)
        .find(|s| s.starts_with("--"))
        .unwrap_or(option)
        .split(['=', ' ', '<'])
        .next()
        .unwrap_or(option)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(args: &[&str]) -> String {
        match parse(std::iter::once("gearmand").chain(args.iter().copied())) {
            Parsed::Fail(m) => m,
            other => panic!("expected failure, got {other:?}"),
        }
    }

    #[test]
    fn c_style_errors() {
        assert_eq!(fail(&["--bogus"]), "unrecognised option '--bogus'");
        assert_eq!(
            fail(&["-t", "abc"]),
            "the argument ('abc') for option '--threads' is invalid"
        );
    }

    #[test]
    fn defaults_match_the_c_server() {
        let Parsed::Run(cli) = parse(["gearmand"]) else {
            panic!("no arguments must run");
        };
        assert_eq!(cli.threads, 4);
        assert_eq!(cli.backlog, 32);
        assert_eq!(cli.verbose, "ERROR");
        assert_eq!(cli.job_retries, 0);
    }

    #[test]
    fn config_file_is_read_and_overridden_by_the_command_line() {
        let dir = std::env::temp_dir().join(format!("gearmand-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("gearmand.conf");
        std::fs::write(&file, "# comment\n--threads 2\n-j 3\n").expect("write config");
        let at = format!("@{}", file.display());
        let Parsed::Run(cli) = parse(["gearmand", at.as_str(), "-j", "5"]) else {
            panic!("config file must parse");
        };
        assert_eq!((cli.threads, cli.job_retries), (2, 5));
        let missing = parse(["gearmand", "--config-file", "/nonexistent/gearmand.conf"]);
        assert!(matches!(missing, Parsed::Fail(m) if m == "Could not open configuration file."));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// `UPDATE_MAN=1 cargo test -p gearmand man_page` regenerates the file.
    #[test]
    fn man_page_matches_the_cli() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/gearmand.8");
        let page = man_page().expect("render man page");
        gearman_shared::cli::assert_man_page_fresh(&path, &page, "gearmand");
    }

    /// Operators grep `--help` and the man page for the names 1.1.20 documents.
    #[test]
    fn help_and_man_page_list_the_mysql_names() {
        let help = command().render_long_help().to_string();
        let page = String::from_utf8(man_page().expect("render man page")).expect("UTF-8");
        for name in ["host", "port", "user", "password", "db", "table"] {
            assert!(
                help.contains(&format!("--mysql-{name}")),
                "--help lacks {name}"
            );
            assert!(
                page.contains(&format!("\\-\\-mysql\\-{name}")),
                "man lacks {name}"
            );
        }
    }

    #[test]
    fn help_and_version_print() {
        assert!(matches!(parse(["gearmand", "-h"]), Parsed::Print(_)));
        assert!(matches!(parse(["gearmand", "-V"]), Parsed::Print(t) if t.contains("1.1.20")));
    }
}
