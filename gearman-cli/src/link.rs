//! One connection to one job server, built on the shared blocking [`Connection`], with
//! failures sorted into what the client and worker react to differently.

use std::fmt;
use std::io;
use std::time::Duration;

use gearman_shared::connection::{Connection, ConnectionError};
use gearman_shared::protocol::{Request, Response};
use gearman_shared::tls::TlsConnector;

use crate::error::Error;
use crate::servers::ServerAddr;

/// How a connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// Nothing arrived within the `-t` timeout.
    Timeout,
    /// The connection broke (closed, reset, write failed).
    Lost(String),
    /// The server sent bytes that are not a valid response.
    Protocol(String),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Timeout => f.write_str("timed out"),
            LinkError::Lost(reason) | LinkError::Protocol(reason) => f.write_str(reason),
        }
    }
}

/// A connection to `server`, with `-t` applied to connecting, reading and writing.
pub struct Link {
    conn: Connection,
    server: ServerAddr,
    timeout: Option<Duration>,
}

impl Link {
    /// Connects, over TLS when `tls` is given (the server's certificate must name the
    /// host as written in the server list, unless `--ssl-server-name` says otherwise); the
    /// error is the reason, for a message such as `host:port: reason`.
    pub fn connect(
        server: &ServerAddr,
        timeout: Option<Duration>,
        tls: Option<&TlsConnector>,
    ) -> Result<Link, String> {
        let address = (server.host.as_str(), server.port);
        let conn = match tls {
            None => Connection::connect(address, timeout),
            Some(tls) => Connection::connect_host_tls(address, timeout, tls),
        }
        .map_err(|e| e.to_string())?;
        conn.set_read_timeout(timeout).map_err(|e| e.to_string())?;
        conn.stream()
            .set_write_timeout(timeout)
            .map_err(|e| e.to_string())?;
        Ok(Link {
            conn,
            server: server.clone(),
            timeout,
        })
    }

    /// Changes the read bound (`None` waits forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), LinkError> {
        self.conn
            .set_read_timeout(timeout)
            .map_err(|e| LinkError::Lost(e.to_string()))
    }

    /// The server at the other end.
    pub fn server(&self) -> &ServerAddr {
        &self.server
    }

    /// Queues a request; [`Link::flush`] writes it.
    pub fn queue(&mut self, request: Request) {
        self.conn.queue(&request.into_packet());
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), LinkError> {
        self.conn.flush().map_err(classify)
    }

    /// Sends one request now.
    pub fn send(&mut self, request: Request) -> Result<(), LinkError> {
        self.conn.send(request).map_err(classify)
    }

    /// Reads the next response, waiting at most the `-t` timeout.
    pub fn recv(&mut self) -> Result<Response, LinkError> {
        self.conn.read_response().map_err(classify)
    }

    /// Turns a failure of this link into the run's error.
    pub fn error(&self, e: LinkError) -> Error {
        link_error(&self.server, self.timeout, e)
    }
}

/// The run's error for a failure of the link to `server`.
pub fn link_error(server: &ServerAddr, timeout: Option<Duration>, e: LinkError) -> Error {
    match e {
        LinkError::Timeout => Error::Timeout {
            server: server.to_string(),
            ms: timeout.map_or(0, |t| t.as_millis()),
        },
        LinkError::Lost(reason) => Error::Lost {
            server: server.to_string(),
            reason,
        },
        LinkError::Protocol(what) => Error::Protocol {
            server: server.to_string(),
            what,
        },
    }
}

fn classify(e: ConnectionError) -> LinkError {
    match e {
        ConnectionError::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            LinkError::Timeout
        }
        ConnectionError::Io(io) => LinkError::Lost(io.to_string()),
        ConnectionError::Closed => LinkError::Lost("connection closed by the server".into()),
        ConnectionError::Decode(e) => LinkError::Protocol(e.to_string()),
        ConnectionError::Unexpected(what) => LinkError::Protocol(what),
        ConnectionError::Tls(e) => LinkError::Lost(e.to_string()),
    }
}
