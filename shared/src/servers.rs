//! Job-server lists as the tools take them: `-h host[:port],…` with `-p`, or the
//! `GEARMAN_SERVER` environment variable.
//!
//! The C tool takes one host and one port; libgearman itself accepts a comma-separated list
//! (`GEARMAN_SERVER`). Our tools accept a list in both places.

use std::ffi::OsStr;
use std::fmt;

/// The port a Gearman job server listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 4730;

/// The host used when neither `-h` nor `GEARMAN_SERVER` names one.
pub const DEFAULT_HOST: &str = "localhost";

/// One job server: a host name or address literal, and a TCP port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    /// Host name, IPv4 literal, or IPv6 literal without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl ServerAddr {
    /// A server at `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ServerAddr {
            host: host.into(),
            port,
        }
    }
}

impl ServerAddr {
    /// Whether the host is this machine.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A server list or port that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerListError {
    /// A port that is not a number from 0 to 65535.
    #[error("invalid port '{0}'")]
    BadPort(String),
    /// An entry like `[::1` whose bracket is not closed, or with junk after `]`.
    #[error("invalid server '{0}'")]
    BadEntry(String),
    /// The list holds no server at all (e.g. `-h ,`).
    #[error("no job server given")]
    Empty,
}

/// Parses a port the way libgearman treats it: `0` means the default port.
pub fn parse_port(text: &str) -> Result<u16, ServerListError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServerListError::BadPort(text.to_string()));
    }
    match trimmed.parse::<u16>() {
        Ok(0) => Ok(DEFAULT_PORT),
        Ok(port) => Ok(port),
        Err(_) => Err(ServerListError::BadPort(text.to_string())),
    }
}

/// Parses `host[:port],host[:port],…`; entries without a port get `default_port`.
///
/// IPv6 literals are written `[::1]:4730`, or bare (`::1`) when no port follows. An empty
/// host (`:4731`) means [`DEFAULT_HOST`]. Empty entries (`a,,b`) are skipped.
pub fn parse_list(list: &str, default_port: u16) -> Result<Vec<ServerAddr>, ServerListError> {
    let mut servers = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        servers.push(parse_entry(entry, default_port)?);
    }
    if servers.is_empty() {
        return Err(ServerListError::Empty);
    }
    Ok(servers)
}

fn parse_entry(entry: &str, default_port: u16) -> Result<ServerAddr, ServerListError> {
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| ServerListError::BadEntry(entry.to_string()))?;
        let port = match after {
            "" => default_port,
            _ => match after.strip_prefix(':') {
                Some(port) => parse_port(port)?,
                None => return Err(ServerListError::BadEntry(entry.to_string())),
            },
        };
        (host, port)
    } else {
        match entry.matches(':').count() {
            0 => (entry, default_port),
            1 => {
                let (host, port) = entry.split_once(':').unwrap_or((entry, ""));
                (host, parse_port(port)?)
            }
            // More than one colon and no brackets: a bare IPv6 literal.
            _ => (entry, default_port),
        }
    };
    let host = if host.is_empty() { DEFAULT_HOST } else { host };
    Ok(ServerAddr::new(host, port))
}

/// The servers to use: `GEARMAN_SERVER` when it is set and not blank (it replaces `-h`/`-p`,
/// as in the C tool), else `-h` (default [`DEFAULT_HOST`]) with `-p` as the default port.
pub fn select(
    env: Option<&OsStr>,
    host: Option<&str>,
    port: Option<&str>,
) -> Result<Vec<ServerAddr>, ServerListError> {
    if let Some(env) = env {
        let env = env.to_string_lossy();
        if !env.trim().is_empty() {
            return parse_list(&env, DEFAULT_PORT);
        }
    }
    let default_port = match port {
        Some(p) => parse_port(p)?,
        None => DEFAULT_PORT,
    };
    parse_list(host.unwrap_or(DEFAULT_HOST), default_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str, port: u16) -> Vec<String> {
        match parse_list(text, port) {
            Ok(servers) => servers.iter().map(ToString::to_string).collect(),
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    #[test]
    fn single_hosts() {
        assert_eq!(list("localhost", 4730), ["localhost:4730"]);
        assert_eq!(list("127.0.0.1", 4731), ["127.0.0.1:4731"]);
        assert_eq!(list("127.0.0.1:5000", 4731), ["127.0.0.1:5000"]);
        assert_eq!(list(":5000", 4730), ["localhost:5000"]);
    }

    #[test]
    fn lists_with_and_without_ports() {
        assert_eq!(list("host1:4731,host2", 4999), ["host1:4731", "host2:4999"]);
        assert_eq!(list(" a:1 , ,b ", 2), ["a:1", "b:2"]);
    }

    #[test]
    fn ipv6() {
        assert_eq!(list("[::1]:4731", 4730), ["[::1]:4731"]);
        assert_eq!(list("[::1]", 4732), ["[::1]:4732"]);
        assert_eq!(list("::1", 4733), ["[::1]:4733"]);
        assert_eq!(
            parse_list("[::1", 4730),
            Err(ServerListError::BadEntry("[::1".into()))
        );
        assert_eq!(
            parse_list("[::1]x", 4730),
            Err(ServerListError::BadEntry("[::1]x".into()))
        );
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("4731"), Ok(4731));
        assert_eq!(parse_port("0"), Ok(DEFAULT_PORT));
        assert_eq!(
            parse_port("65536"),
            Err(ServerListError::BadPort("65536".into()))
        );
        assert_eq!(
            parse_port("abc"),
            Err(ServerListError::BadPort("abc".into()))
        );
        assert_eq!(parse_port("-1"), Err(ServerListError::BadPort("-1".into())));
        assert_eq!(parse_port(""), Err(ServerListError::BadPort("".into())));
        assert_eq!(
            parse_list("h:x", 1),
            Err(ServerListError::BadPort("x".into()))
        );
    }

    #[test]
    fn empty_list() {
        assert_eq!(parse_list("", 1), Err(ServerListError::Empty));
        assert_eq!(parse_list(" , ", 1), Err(ServerListError::Empty));
    }

    #[test]
    fn env_replaces_host_and_port() {
        let env = OsStr::new("e1:1,e2");
        let got = select(Some(env), Some("h"), Some("9")).unwrap_or_default();
        assert_eq!(
            got,
            [
                ServerAddr::new("e1", 1),
                ServerAddr::new("e2", DEFAULT_PORT)
            ]
        );
        // A blank variable counts as unset.
        let got = select(Some(OsStr::new(" ")), Some("h"), Some("9")).unwrap_or_default();
        assert_eq!(got, [ServerAddr::new("h", 9)]);
        let got = select(None, None, None).unwrap_or_default();
        assert_eq!(got, [ServerAddr::new(DEFAULT_HOST, DEFAULT_PORT)]);
        assert_eq!(
            select(None, None, Some("x")),
            Err(ServerListError::BadPort("x".into()))
        );
    }
}
