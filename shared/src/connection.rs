//! A blocking connection over `std::net`, plain or TLS: send requests or admin lines, read
//! frames.
//!
//! Used by the command-line tools, the benchmark and the tests; the server has its own
//! async I/O. No async runtime here, on purpose.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::BytesMut;

use crate::protocol::{decode, encode, DecodeError, Frame, Limits, Packet, Request, Response};
use crate::tls::{Stream, TlsConnector, TlsError, TlsOptions};

/// Errors of a blocking connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed (including time-outs).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer sent bytes that cannot be framed.
    #[error("protocol error: {0}")]
    Decode(#[from] DecodeError),
    /// The peer sent a frame of an unexpected kind.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// TLS could not be set up (files, names, handshake).
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// One TCP connection (plain or TLS) to a Gearman server, with a read buffer.
pub struct Connection {
    stream: Stream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    limits: Limits,
}

impl Connection {
    /// Connects to `addr`, optionally bounding the connect with `timeout`.
    pub fn connect(
        addr: impl ToSocketAddrs,
        timeout: Option<Duration>,
    ) -> Result<Self, ConnectionError> {
        Ok(Connection::from_stream(tcp_connect(addr, timeout)?))
    }

    /// Connects to `addr` and runs a TLS handshake with `options` (see [`crate::tls`]);
    /// `timeout` bounds the connect and the handshake. The server's certificate must name
    /// [`TlsOptions::server_name`], or else the IP address connected to.
    pub fn connect_tls(
        addr: impl ToSocketAddrs,
        timeout: Option<Duration>,
        options: &TlsOptions,
    ) -> Result<Self, ConnectionError> {
        let connector = TlsConnector::new(options)?;
        let tcp = tcp_connect(addr, timeout)?;
        let host = tcp.peer_addr()?.ip().to_string();
        Connection::from_tls(tcp, &connector, &host, timeout)
    }

    /// Connects to `(host, port)` over TLS with a prepared connector: the server's
    /// certificate must name `host` (a DNS name or an address literal) unless the connector
    /// names another. `timeout` bounds the connect and the handshake.
    pub fn connect_host_tls(
        (host, port): (&str, u16),
        timeout: Option<Duration>,
        connector: &TlsConnector,
    ) -> Result<Self, ConnectionError> {
        let tcp = tcp_connect((host, port), timeout)?;
        Connection::from_tls(tcp, connector, host, timeout)
    }

    /// Runs a TLS handshake over the connected `tcp`; `host` is the name the server's
    /// certificate must carry unless the connector names one.
    pub fn from_tls(
        tcp: TcpStream,
        connector: &TlsConnector,
        host: &str,
        timeout: Option<Duration>,
    ) -> Result<Self, ConnectionError> {
        Ok(Connection::with_stream(
            connector.connect(tcp, host, timeout)?,
        ))
    }

    /// Wraps an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Self {
        Connection::with_stream(Stream::Plain(stream))
    }

    /// Wraps an already connected plain or TLS stream.
    pub fn with_stream(stream: Stream) -> Self {
        let _ = stream.tcp().set_nodelay(true);
        Connection {
            stream,
            read_buf: BytesMut::with_capacity(8192),
            write_buf: BytesMut::with_capacity(8192),
            limits: Limits::default(),
        }
    }

    /// Bounds every later read (`None` waits forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.tcp().set_read_timeout(timeout)
    }

    /// The underlying socket (under TLS, if on: writing to it directly bypasses TLS).
    pub fn stream(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Queues a packet; it is written by [`Connection::flush`].
    pub fn queue(&mut self, packet: &Packet) {
        encode(packet, &mut self.write_buf);
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), ConnectionError> {
        self.stream.write_all(&self.write_buf)?;
        self.write_buf.clear();
        self.stream.flush()?;
        Ok(())
    }

    /// Sends one packet now.
    pub fn send_packet(&mut self, packet: &Packet) -> Result<(), ConnectionError> {
        self.queue(packet);
        self.flush()
    }

    /// Sends one request now.
    pub fn send(&mut self, request: Request) -> Result<(), ConnectionError> {
        self.send_packet(&request.into_packet())
    }

    /// Sends raw bytes (an admin line with its terminator, or deliberately bad input).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.flush()?;
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Reads the next frame.
    pub fn read_frame(&mut self) -> Result<Frame, ConnectionError> {
        loop {
            if let Some(frame) = decode(&mut self.read_buf, &self.limits)? {
                return Ok(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ConnectionError::Closed);
            }
            self.read_buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the next binary packet.
    pub fn read_packet(&mut self) -> Result<Packet, ConnectionError> {
        match self.read_frame()? {
            Frame::Packet(p) => Ok(p),
            Frame::Text { line, .. } => Err(ConnectionError::Unexpected(format!(
                "text line {:?}",
                String::from_utf8_lossy(&line)
            ))),
        }
    }

    /// Reads the next response.
    pub fn read_response(&mut self) -> Result<Response, ConnectionError> {
        let packet = self.read_packet()?;
        Response::try_from(packet).map_err(|e| ConnectionError::Unexpected(e.to_string()))
    }

    /// Reads one `\n`-terminated text line, terminator included.
    pub fn read_line(&mut self) -> Result<Vec<u8>, ConnectionError> {
        loop {
            if let Some(pos) = self.read_buf.iter().position(|&b| b == b'\n') {
                return Ok(self.read_buf.split_to(pos + 1).to_vec());
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ConnectionError::Closed);
            }
            self.read_buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Connects to the first address of `addr` that accepts.
fn tcp_connect(addr: impl ToSocketAddrs, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
    for a in addr.to_socket_addrs()? {
        let attempt = match timeout {
            Some(t) => TcpStream::connect_timeout(&a, t),
            None => TcpStream::connect(a),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}
