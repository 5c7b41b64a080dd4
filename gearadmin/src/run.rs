//! Connecting to the server and running the operations over one connection.

use std::ffi::OsString;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use gearman_shared::admin::{AdminClient, AdminError, Reply};
use gearman_shared::tls::{TlsConnector, TlsError, TlsOptions};

use crate::cli::Cli;
use crate::ops::{plan, Operation};
use crate::output::{self, JsonReport, Printed};

/// Bounds the connection to each resolved address (and the TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds every read and write once connected (a reply that takes longer is an error).
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Where TCP service names are looked up.
const SERVICES_FILE: &str = "/etc/services";

/// glibc's message for an unknown service name, as the C tool prints it.
const UNKNOWN_SERVICE: &str = "Servname not supported for ai_socktype";

/// Why gearadmin could not do its work; printed as `Error: <message>` on stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `-S`: the TLS files or the server name cannot be used (no CA file, unreadable PEM,
    /// a key that does not match its certificate, …).
    #[error("TLS (-S): {0}")]
    Tls(TlsError),
    /// The host or the port could not be resolved (the C tool's wording).
    #[error("Failed to connect on {host}:{port} with {reason}")]
    Resolve {
        /// The host as given.
        host: String,
        /// The port or service as given.
        port: String,
        /// Why it failed.
        reason: String,
    },
    /// No address of the host accepted the connection.
    #[error("Error connecting to {host} port {port}: {reason}")]
    Connect {
        /// The host as given.
        host: String,
        /// The resolved port.
        port: u16,
        /// The last connection error.
        reason: String,
    },
    /// The connection failed during an operation (time-out, closed, unreadable reply).
    #[error("{option}: {source}")]
    Admin {
        /// The option being run, e.g. `--status`.
        option: &'static str,
        /// What went wrong.
        #[source]
        source: AdminError,
    },
    /// Standard output or standard error could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
    /// The JSON report could not be encoded.
    #[error("cannot encode the JSON output: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// A closed stdout (`gearadmin --status | head -1`) is not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Runs every operation `cli` asks for. Returns `Ok(false)` when the server refused any of
/// them (an `ERR` reply, reported on `err`); `Err` when the run had to stop.
pub fn execute(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<bool, Error> {
    // The TLS files are read before anything is resolved or connected.
    let tls = tls_options(cli, |var| std::env::var_os(var))
        .map(|options| TlsConnector::new(&options))
        .transpose()
        .map_err(Error::Tls)?;
    let ops = plan(cli);
    let mut client = connect(&cli.host, &cli.port, tls.as_ref())?;
    let mut report = cli.json.then(JsonReport::default);
    let mut all_ok = true;
    for op in &ops {
        let reply = match client.command_bytes(&op.line()) {
            Ok(reply) => reply,
            // An immediate shutdown may close the connection before its OK gets out: the
            // server going away is the answer.
            Err(e) if *op == Operation::Shutdown && is_hang_up(&e) => Reply::Ok,
            Err(source) => {
                return Err(Error::Admin {
                    option: op.option(),
                    source,
                })
            }
        };
        let printed = match report.as_mut() {
            Some(report) => report.record(op, &reply),
            None => output::text(&reply),
        };
        all_ok &= !printed.failed;
        emit(&printed, out, err)?;
    }
    if let Some(report) = report {
        out.write_all(report.to_json()?.as_bytes())
            .map_err(Error::Output)?;
    }
    out.flush().map_err(Error::Output)?;
    Ok(all_ok)
}

/// Writes one reply's output; stdout is flushed first so the two streams stay in order.
fn emit(printed: &Printed, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Error> {
    out.write_all(&printed.stdout).map_err(Error::Output)?;
    if !printed.stderr.is_empty() {
        out.flush().map_err(Error::Output)?;
        err.write_all(&printed.stderr).map_err(Error::Output)?;
        err.flush().map_err(Error::Output)?;
    }
    Ok(())
}

fn is_hang_up(e: &AdminError) -> bool {
    match e {
        AdminError::Closed => true,
        AdminError::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// The `-S` settings: `None` without `-S`. Each file comes from its `--ssl-*` option, else
/// from its libgearman variable (looked up with `env`, empty meaning unset).
pub fn tls_options(cli: &Cli, env: impl Fn(&str) -> Option<OsString>) -> Option<TlsOptions> {
    cli.tls.options(cli.ssl, env)
}

/// Resolves `host` and `port` and connects to the first address that answers, over TLS
/// when `tls` is given (the server's certificate must then name `host`, unless
/// `--ssl-server-name` names another).
pub fn connect(host: &str, port: &str, tls: Option<&TlsConnector>) -> Result<AdminClient, Error> {
    let resolve_error = |reason: String| Error::Resolve {
        host: host.to_owned(),
        port: port.to_owned(),
        reason,
    };
    let number = resolve_port(port).map_err(resolve_error)?;
    let addrs: Vec<SocketAddr> = (host, number)
        .to_socket_addrs()
        .map_err(|e| resolve_error(resolver_message(&e)))?
        .collect();
    let connect_error = |reason: String| Error::Connect {
        host: host.to_owned(),
        port: number,
        reason,
    };
    let connected = match tls {
        None => AdminClient::connect(&addrs[..], Some(CONNECT_TIMEOUT)),
        Some(tls) => AdminClient::connect_host_tls(&addrs[..], host, Some(CONNECT_TIMEOUT), tls),
    };
    let client = match connected {
        Ok(client) => client,
        Err(AdminError::Connect(e) | AdminError::Io(e) | AdminError::Resolve(e)) => {
            return Err(connect_error(io_message(&e)))
        }
        Err(AdminError::Tls(TlsError::Handshake(e))) => {
            let reason = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timed out".to_owned(),
                _ => io_message(&e),
            };
            return Err(connect_error(format!("TLS handshake failed: {reason}")));
        }
        // Not a connection problem: the name cannot be checked (before any handshake).
        Err(AdminError::Tls(e @ TlsError::ServerName(_))) => return Err(Error::Tls(e)),
        Err(e) => return Err(connect_error(e.to_string())),
    };
    client
        .set_timeout(Some(IO_TIMEOUT))
        .map_err(|e| connect_error(e.to_string()))?;
    Ok(client)
}

/// A port number (as `getaddrinfo` reads it: decimal, an optional `+`, leading zeros) or
/// a TCP service name from /etc/services.
pub fn resolve_port(port: &str) -> Result<u16, String> {
    let digits = port.strip_prefix('+').unwrap_or(port);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits
            .parse::<u16>()
            .map_err(|_| "port number out of range (0-65535)".to_owned());
    }
    let services = std::fs::read_to_string(SERVICES_FILE).unwrap_or_default();
    lookup_service(&services, port).ok_or_else(|| UNKNOWN_SERVICE.to_owned())
}

/// Finds a TCP service by name or alias in the text of an /etc/services file.
pub fn lookup_service(services: &str, name: &str) -> Option<u16> {
    if name.is_empty() {
        return None;
    }
    services.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let official = fields.next()?;
        let (number, proto) = fields.next()?.split_once('/')?;
        if proto != "tcp" || (official != name && !fields.any(|alias| alias == name)) {
            return None;
        }
        number.parse().ok()
    })
}

/// The resolver's reason without Rust's prefix: `Name or service not known`, as the C tool.
fn resolver_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.strip_prefix("failed to lookup address information: ") {
        Some(reason) => reason.to_owned(),
        None => io_message(e),
    }
}

/// An I/O error's message without the ` (os error N)` suffix.
fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use gearman_shared::tls::TLS_ENV;
    use std::path::PathBuf;

    const SERVICES: &str = "\
# Network services, Internet style
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
gearman\t\t4730/udp
gearman\t\t4731/tcp\tgearmand job-server
";

    #[test]
    fn ports() {
        assert_eq!(resolve_port("4730"), Ok(4730));
        assert_eq!(resolve_port("047311"), Ok(47311));
        assert_eq!(resolve_port("04730"), Ok(4730));
        assert_eq!(resolve_port("+4730"), Ok(4730));
        assert_eq!(resolve_port("65535"), Ok(65535));
        assert!(resolve_port("65536").is_err());
        assert!(resolve_port("99999999999999999999").is_err());
        assert_eq!(
            resolve_port("no-such-service-x"),
            Err(UNKNOWN_SERVICE.to_owned())
        );
        assert_eq!(resolve_port("-1"), Err(UNKNOWN_SERVICE.to_owned()));
        assert_eq!(resolve_port(""), Err(UNKNOWN_SERVICE.to_owned()));
    }

    #[test]
    fn services() {
        assert_eq!(lookup_service(SERVICES, "http"), Some(80));
        assert_eq!(lookup_service(SERVICES, "www"), Some(80));
        assert_eq!(lookup_service(SERVICES, "tcpmux"), Some(1));
        // The udp entry is skipped.
        assert_eq!(lookup_service(SERVICES, "gearman"), Some(4731));
        assert_eq!(lookup_service(SERVICES, "job-server"), Some(4731));
        assert_eq!(lookup_service(SERVICES, "TCP"), None);
        assert_eq!(lookup_service(SERVICES, "80"), None);
        assert_eq!(lookup_service(SERVICES, ""), None);
    }

    #[test]
    fn messages() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(io_message(&e), "Connection refused");
        let e = io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(resolver_message(&e), "Name or service not known");
        assert_eq!(
            Error::Resolve {
                host: "localhost".into(),
                port: "abc".into(),
                reason: UNKNOWN_SERVICE.into()
            }
            .to_string(),
            "Failed to connect on localhost:abc with Servname not supported for ai_socktype"
        );
    }

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["gearadmin"];
        all.extend_from_slice(args);
        match crate::cli::parse(all) {
            crate::cli::Parsed::Run(cli) => *cli,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_settings() {
        let env = [
            ("GEARMAND_CA_CERTIFICATE", "/env/ca.pem"),
            ("GEARMAN_CLIENT_PEM", "/env/c.pem"),
            ("GEARMAN_CLIENT_KEY", ""),
        ];
        let lookup = |var: &str| {
            env.iter()
                .find(|(name, _)| *name == var)
                .map(|(_, value)| OsString::from(value))
        };
        // Without -S the variables are not read.
        assert_eq!(tls_options(&cli(&["--status"]), lookup), None);
        let o = tls_options(&cli(&["-S", "--status"]), lookup).unwrap();
        assert_eq!(o.ca_file, Some(PathBuf::from("/env/ca.pem")));
        assert_eq!(o.certificate, Some(PathBuf::from("/env/c.pem")));
        assert_eq!(o.key, None, "an empty variable is unset");
        assert_eq!(o.server_name, None);
        let o = tls_options(
            &cli(&[
                "-S",
                "--ssl-ca-file",
                "/ca.pem",
                "--ssl-key",
                "/k.pem",
                "--ssl-server-name",
                "gearman.example",
                "--status",
            ]),
            lookup,
        )
        .unwrap();
        assert_eq!(o.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(o.certificate, Some(PathBuf::from("/env/c.pem")));
        assert_eq!(o.key, Some(PathBuf::from("/k.pem")));
        assert_eq!(o.server_name.as_deref(), Some("gearman.example"));
        assert_eq!(
            tls_options(&cli(&["-S", "--status"]), |_| None),
            Some(TlsOptions::default())
        );
    }

    #[test]
    fn tls_needs_a_ca_file_before_connecting() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if TLS_ENV.iter().any(|v| std::env::var_os(v).is_some()) {
            return;
        }
        // Port 1 on localhost: a connection attempt would fail with "Error connecting".
        let e = execute(&cli(&["-S", "-p", "1", "--status"]), &mut out, &mut err).unwrap_err();
        assert!(matches!(e, Error::Tls(TlsError::NoCaFile)), "{e:?}");
        assert!(
            e.to_string().starts_with("TLS (-S): TLS needs a CA file"),
            "{e}"
        );
    }

    #[test]
    fn refused_connection() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = connect("127.0.0.1", &port.to_string(), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Error connecting to 127.0.0.1 port {port}: Connection refused")
        );
    }
}
