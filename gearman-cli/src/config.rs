//! Validated settings: the parsed command line turned into what the client and worker need.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use gearman_shared::protocol::{JobMode, Priority};
use gearman_shared::tls::{TlsConnector, TlsOptions};

use crate::cli::{os_bytes, Args};
use crate::error::Error;
use crate::lines::LineMode;
use crate::servers::{self, ServerAddr};

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `-f`, in command-line order.
    pub functions: Vec<Bytes>,
    /// `-h`/`-p` or `GEARMAN_SERVER`.
    pub servers: Vec<ServerAddr>,
    /// `-t`; `None` waits forever.
    pub timeout: Option<Duration>,
    /// `-i`.
    pub pidfile: Option<PathBuf>,
    /// `-d`.
    pub daemon: bool,
    /// `-S`: every connection is TLS with this configuration (files already read).
    pub tls: Option<TlsConnector>,
    /// Client or worker, with the options of that mode.
    pub mode: Mode,
}

/// Client (default) or worker (`-w`).
#[derive(Debug, Clone)]
pub enum Mode {
    /// Submit jobs.
    Client(ClientOptions),
    /// Serve jobs.
    Worker(WorkerOptions),
}

/// Where the client's job data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The data words of the command line, one job each.
    Words(Vec<Bytes>),
    /// `-s`: one job with empty data.
    Empty,
    /// Standard input, whole or per line.
    Stdin(LineMode),
}

/// Client-mode options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `-b`.
    pub job_mode: JobMode,
    /// `-I` / `-L`.
    pub priority: Priority,
    /// `-P`.
    pub prefix: bool,
    /// `-v`.
    pub verbose: bool,
    /// `-u`; `None` generates a UUID per job.
    pub unique: Option<Bytes>,
    /// Where the data comes from.
    pub source: DataSource,
}

/// Worker-mode options.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// `-c`; `None` runs forever.
    pub count: Option<u64>,
    /// `-n` / `-N`: one WORK_DATA per output line.
    pub lines: LineMode,
    /// The command and its arguments; `None` echoes the workload.
    pub command: Option<(OsString, Vec<OsString>)>,
}

fn number(option: &'static str, value: &str) -> Result<i64, Error> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| Error::InvalidNumber {
            option,
            value: value.to_string(),
        })
}

/// The `-S` settings: `None` without `-S`. Each file comes from its `--ssl-*` option, else
/// from its libgearman variable (looked up with `env`); the `--ssl-*` options without `-S`
/// are an error, the variables are then ignored.
pub fn tls_options(
    args: &Args,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Option<TlsOptions>, Error> {
    match args.tls.first_given().filter(|_| !args.ssl) {
        Some(option) => Err(Error::TlsOptionWithoutS(option)),
        None => Ok(args.tls.options(args.ssl, env)),
    }
}

impl Config {
    /// Validates `args`; `gearman_server` is the `GEARMAN_SERVER` variable, if set. With
    /// `-S` the TLS files are read now (see [`tls_options`]).
    pub fn from_args(args: &Args, gearman_server: Option<&OsStr>) -> Result<Config, Error> {
        let tls = tls_options(args, |var| std::env::var_os(var))?
            .map(|options| TlsConnector::new(&options))
            .transpose()?;
        let servers = servers::select(gearman_server, args.host.as_deref(), args.port.as_deref())?;
        // As in libgearman, zero or a negative number means no time limit.
        let timeout = match &args.timeout {
            Some(t) => match number("-t", t)? {
                ms if ms > 0 => Some(Duration::from_millis(ms as u64)),
                _ => None,
            },
            None => None,
        };
        let lines = LineMode::from_flags(args.per_line, args.strip);
        let mode = if args.worker {
            let count = match &args.count {
                Some(c) => match number("-c", c)? {
                    n if n > 0 => Some(n as u64),
                    _ => None,
                },
                None => None,
            };
            let command = args
                .rest
                .split_first()
                .map(|(cmd, rest)| (cmd.clone(), rest.to_vec()));
            Mode::Worker(WorkerOptions {
                count,
                lines,
                command,
            })
        } else {
            if let Some(c) = &args.count {
                number("-c", c)?;
            }
            let source = if !args.rest.is_empty() {
                DataSource::Words(
                    args.rest
                        .iter()
                        .map(|w| Bytes::copy_from_slice(os_bytes(w)))
                        .collect(),
                )
            } else if args.no_stdin {
                DataSource::Empty
            } else {
                DataSource::Stdin(lines)
            };
            let priority = if args.high {
                Priority::High
            } else if args.low {
                Priority::Low
            } else {
                Priority::Normal
            };
            Mode::Client(ClientOptions {
                job_mode: if args.background {
                    JobMode::Background
                } else {
                    JobMode::Foreground
                },
                priority,
                prefix: args.prefix,
                verbose: args.verbose,
                unique: args
                    .unique
                    .as_deref()
                    .map(|u| Bytes::copy_from_slice(os_bytes(u))),
                source,
            })
        };
        Ok(Config {
            functions: args
                .functions
                .iter()
                .map(|f| Bytes::copy_from_slice(os_bytes(f)))
                .collect(),
            servers,
            timeout,
            pidfile: args.pidfile.clone(),
            daemon: args.daemon,
            tls,
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Parsed};
    use gearman_shared::tls::TLS_ENV;

    fn config(args: &[&str], env: Option<&str>) -> Result<Config, Error> {
        let mut argv = vec!["gearman"];
        argv.extend_from_slice(args);
        match parse(argv) {
            Parsed::Run(a) => Config::from_args(&a, env.map(OsStr::new)),
            Parsed::Usage(u) => panic!("usage: {}", u.text),
        }
    }

    fn client(args: &[&str]) -> ClientOptions {
        match config(args, None).map(|c| c.mode) {
            Ok(Mode::Client(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn data_sources() {
        assert_eq!(
            client(&["-f", "x", "a", "b"]).source,
            DataSource::Words(vec!["a".into(), "b".into()])
        );
        assert_eq!(client(&["-f", "x", "-s"]).source, DataSource::Empty);
        assert_eq!(
            client(&["-f", "x", "-s", "w"]).source,
            DataSource::Words(vec!["w".into()])
        );
        assert_eq!(
            client(&["-f", "x"]).source,
            DataSource::Stdin(LineMode::Whole)
        );
        assert_eq!(
            client(&["-f", "x", "-N"]).source,
            DataSource::Stdin(LineMode::PerLine { strip: true })
        );
    }

    #[test]
    fn client_flags() {
        let c = client(&["-f", "x", "-b", "-L", "-P", "-v", "-u", "k"]);
        assert_eq!(c.job_mode, JobMode::Background);
        assert_eq!(c.priority, Priority::Low);
        assert!(c.prefix && c.verbose);
        assert_eq!(c.unique.as_deref(), Some(&b"k"[..]));
        assert_eq!(client(&["-f", "x", "-I"]).priority, Priority::High);
        assert_eq!(client(&["-f", "x"]).priority, Priority::Normal);
        assert_eq!(client(&["-f", "x"]).job_mode, JobMode::Foreground);
    }

    #[test]
    fn worker_flags() {
        let Ok(Config {
            mode: Mode::Worker(w),
            ..
        }) = config(
            &["-w", "-f", "x", "-c", "2", "-n", "--", "tr", "a", "b"],
            None,
        )
        else {
            panic!("worker expected");
        };
        assert_eq!(w.count, Some(2));
        assert_eq!(w.lines, LineMode::PerLine { strip: false });
        assert_eq!(w.command, Some(("tr".into(), vec!["a".into(), "b".into()])));
        let Ok(Config {
            mode: Mode::Worker(w),
            ..
        }) = config(&["-w", "-f", "x", "-c", "0"], None)
        else {
            panic!("worker expected");
        };
        assert_eq!(w.count, None);
        assert!(w.command.is_none());
    }

    #[test]
    fn numbers_and_servers() {
        let c = config(&["-f", "x", "-t", "250", "-h", "a,b:9", "-p", "7"], None);
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.timeout, Some(Duration::from_millis(250)));
        assert_eq!(
            c.servers,
            [ServerAddr::new("a", 7), ServerAddr::new("b", 9)]
        );
        let c = config(&["-f", "x", "-t", "0"], Some("e:1")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.timeout, None);
        assert_eq!(c.servers, [ServerAddr::new("e", 1)]);
        for bad in [
            &["-f", "x", "-t", "soon"][..],
            &["-f", "x", "-p", "http"],
            &["-w", "-f", "x", "-c", "many"],
        ] {
            assert!(config(bad, None).is_err(), "{bad:?}");
        }
    }

    fn tls(args: &[&str], env: &[(&str, &str)]) -> Result<Option<TlsOptions>, Error> {
        let mut argv = vec!["gearman"];
        argv.extend_from_slice(args);
        let Parsed::Run(a) = parse(argv) else {
            panic!("usage for {args:?}");
        };
        let env: Vec<(String, OsString)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        tls_options(&a, |var| {
            env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn tls_settings() {
        let env = [
            ("GEARMAND_CA_CERTIFICATE", "/env/ca.pem"),
            ("GEARMAN_CLIENT_PEM", "/env/c.pem"),
            ("GEARMAN_CLIENT_KEY", ""),
        ];
        // Without -S: no TLS, the variables are ignored, the options are an error.
        assert!(matches!(tls(&["-f", "x"], &env), Ok(None)));
        assert!(matches!(
            tls(&["-f", "x", "--ssl-key", "k"], &[]),
            Err(Error::TlsOptionWithoutS("--ssl-key"))
        ));
        let Ok(Some(o)) = tls(&["-f", "x", "-S", "--ssl-key", "/k.pem"], &env) else {
            panic!("-S gives TLS options");
        };
        assert_eq!(o.ca_file, Some(PathBuf::from("/env/ca.pem")));
        assert_eq!(o.certificate, Some(PathBuf::from("/env/c.pem")));
        assert_eq!(o.key, Some(PathBuf::from("/k.pem")));
        let Ok(Some(o)) = tls(&["-f", "x", "-S", "--ssl-ca-file", "/ca.pem"], &env) else {
            panic!("-S gives TLS options");
        };
        assert_eq!(o.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(o.key, None, "an empty variable is unset");
        let Ok(Some(o)) = tls(&["-f", "x", "-S"], &[]) else {
            panic!("-S gives TLS options");
        };
        assert_eq!(o, TlsOptions::default());
    }

    #[test]
    fn tls_needs_a_ca_file() {
        // Only when nothing in the environment names one.
        if TLS_ENV.iter().any(|v| std::env::var_os(v).is_some()) {
            return;
        }
        let e = config(&["-f", "x", "-S"], None).err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.to_string().contains("--ssl-ca-file")),
            "{e:?}"
        );
        let e = config(
            &["-f", "x", "-S", "--ssl-ca-file", "/nonexistent/ca.pem"],
            None,
        )
        .err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.to_string().contains("/nonexistent/ca.pem")),
            "{e:?}"
        );
    }
}
