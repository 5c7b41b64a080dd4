//! TLS for the blocking clients (`gearman -S`, the tests): rustls with the ring provider
//! over a `std::net::TcpStream`.
//!
//! Verification is strict and offline: the server's certificate must chain to a CA given
//! in a PEM file ([`TlsOptions::ca_file`]) and name the host connected to (or
//! [`TlsOptions::server_name`]). There is no system trust store and no way to skip the
//! check: without a CA file, [`TlsConnector::new`] fails with [`TlsError::NoCaFile`].
//! A client certificate and key ([`TlsOptions::certificate`], [`TlsOptions::key`]) are sent
//! when the server asks for one, which gearmand does when it was given `--ssl-ca-file`.
//!
//! [`Stream`] is a plain or TLS socket with one `Read + Write` face; [`Connection`] and
//! [`AdminClient`] use it, so both speak Gearman either way.
//!
//! [`Connection`]: crate::connection::Connection
//! [`AdminClient`]: crate::admin::AdminClient

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Which files and name a TLS connection uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file with the CA certificate(s) the server's certificate must chain to. Required.
    pub ca_file: Option<PathBuf>,
    /// PEM file with our client certificate chain, sent when the server asks for one.
    pub certificate: Option<PathBuf>,
    /// PEM file with the private key of [`TlsOptions::certificate`].
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry (a DNS name or an IP address);
    /// `None` uses the host connected to.
    pub server_name: Option<String>,
}

/// libgearman's environment variables for the `-S` files: CA, client certificate, key.
pub const TLS_ENV: [&str; 3] = [
    "GEARMAND_CA_CERTIFICATE",
    "GEARMAN_CLIENT_PEM",
    "GEARMAN_CLIENT_KEY",
];

impl TlsOptions {
    /// Fills each file not given on the command line from its libgearman variable
    /// ([`TLS_ENV`], looked up with `env`; empty means unset), as the C tools do for `-S`.
    pub fn or_from_env(self, env: impl Fn(&str) -> Option<OsString>) -> TlsOptions {
        let file = |given: Option<PathBuf>, var: &str| {
            given.or_else(|| env(var).filter(|v| !v.is_empty()).map(PathBuf::from))
        };
        TlsOptions {
            ca_file: file(self.ca_file, TLS_ENV[0]),
            certificate: file(self.certificate, TLS_ENV[1]),
            key: file(self.key, TLS_ENV[2]),
            server_name: self.server_name,
        }
    }
}

/// Why a TLS connection cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No CA file: the server's certificate could not be verified.
    #[error(
        "TLS needs a CA file to verify the server's certificate (--ssl-ca-file FILE); \
         there is no built-in trust store"
    )]
    NoCaFile,
    /// A certificate was given without its key, or a key without its certificate.
    #[error("a client certificate needs its key and a key its certificate (--ssl-certificate with --ssl-key)")]
    HalfClientIdentity,
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot read {}: {message}", .path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The server name is neither a DNS name nor an IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// rustls refused the configuration (e.g. a key that does not match its certificate).
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
    /// The handshake failed: the server's certificate was refused, the server refused ours,
    /// the peer does not speak TLS, or it timed out.
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
}
// The causes are part of each message rather than `source`s, so that printing the chain
// (`{:#}`) does not repeat them.

fn pem_error(path: &Path, message: impl fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate in file"));
    }
    Ok(certs)
}

/// A client TLS configuration, built once from [`TlsOptions`] (all files are read here)
/// and used for any number of connections.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// Reads the CA file and the optional client certificate and key.
    pub fn new(options: &TlsOptions) -> Result<TlsConnector, TlsError> {
        let ca = options.ca_file.as_deref().ok_or(TlsError::NoCaFile)?;
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca)? {
            roots.add(cert).map_err(|e| pem_error(ca, e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_root_certificates(roots);
        let config = match (&options.certificate, &options.key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsError::Config)?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::HalfClientIdentity),
        };
        if let Some(name) = &options.server_name {
            server_name(name)?;
        }
        Ok(TlsConnector {
            config: Arc::new(config),
            server_name: options.server_name.clone(),
        })
    }

    /// Runs the TLS handshake over the connected socket `tcp` and returns the stream.
    /// `host` is the name or address connected to; it is what the server's certificate must
    /// name unless [`TlsOptions::server_name`] says otherwise. `timeout` bounds the
    /// handshake (each read and write of it); afterwards the socket has no timeouts.
    ///
    /// With TLS 1.3 the server checks our certificate after our side of the handshake is
    /// done: a refused client certificate shows up as an error on the first read.
    pub fn connect(
        &self,
        tcp: TcpStream,
        host: &str,
        timeout: Option<Duration>,
    ) -> Result<Stream, TlsError> {
        let name = server_name(self.server_name.as_deref().unwrap_or(host))?;
        let mut conn =
            ClientConnection::new(Arc::clone(&self.config), name).map_err(TlsError::Config)?;
        let mut tcp = tcp;
        let _ = tcp.set_nodelay(true);
        tcp.set_read_timeout(timeout).map_err(TlsError::Handshake)?;
        tcp.set_write_timeout(timeout)
            .map_err(TlsError::Handshake)?;
        while conn.is_handshaking() {
            match conn.complete_io(&mut tcp) {
                Ok((0, 0)) if conn.is_handshaking() => {
                    return Err(TlsError::Handshake(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during the handshake",
                    )))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TlsError::Handshake(e)),
            }
        }
        tcp.set_read_timeout(None).map_err(TlsError::Handshake)?;
        tcp.set_write_timeout(None).map_err(TlsError::Handshake)?;
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }
}

/// `host` as a rustls server name; IPv6 literals may come in brackets.
fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_string()).map_err(|_| TlsError::ServerName(host.to_string()))
}

/// A connected socket, plain or TLS.
///
/// Reading and writing go through TLS when it is on; timeouts and shutdown belong to the
/// socket underneath ([`Stream::tcp`]). A TLS peer that closes the TCP connection without
/// a `close_notify` reads as end of stream: Gearman frames are self-delimiting, so a
/// truncation still shows as an incomplete frame.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::Plain(tcp) => f.debug_tuple("Plain").field(tcp).finish(),
            Stream::Tls(tls) => f.debug_tuple("Tls").field(&tls.sock).finish(),
        }
    }
}

impl Stream {
    /// The TCP socket underneath, for timeouts, addresses and shutdown. Writing to it
    /// directly bypasses TLS.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.sock,
        }
    }

    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl From<TcpStream> for Stream {
    fn from(tcp: TcpStream) -> Stream {
        Stream::Plain(tcp)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => match tls.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_is_required() {
        let err = TlsConnector::new(&TlsOptions::default()).err();
        assert!(matches!(err, Some(TlsError::NoCaFile)), "{err:?}");
        assert!(TlsError::NoCaFile.to_string().contains("--ssl-ca-file"));
    }

    #[test]
    fn missing_files_are_named() {
        let options = TlsOptions {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..TlsOptions::default()
        };
        let err = TlsConnector::new(&options).err();
        assert!(
            matches!(&err, Some(TlsError::Pem { path, .. }) if path == Path::new("/nonexistent/ca.pem")),
            "{err:?}"
        );
    }

    #[test]
    fn files_not_given_come_from_libgearman_variables() {
        let env = |var: &str| match var {
            "GEARMAND_CA_CERTIFICATE" => Some(OsString::from("/env/ca.pem")),
            "GEARMAN_CLIENT_PEM" => Some(OsString::from("/env/client.pem")),
            // Empty counts as unset.
            "GEARMAN_CLIENT_KEY" => Some(OsString::new()),
            _ => None,
        };
        let given = TlsOptions {
            certificate: Some(PathBuf::from("/given/client.pem")),
            server_name: Some("gearman.example".into()),
            ..TlsOptions::default()
        };
        assert_eq!(
            given.or_from_env(env),
            TlsOptions {
                ca_file: Some(PathBuf::from("/env/ca.pem")),
                certificate: Some(PathBuf::from("/given/client.pem")),
                key: None,
                server_name: Some("gearman.example".into()),
            }
        );
    }

    #[test]
    fn server_names() {
        assert!(server_name("localhost").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("::1").is_ok());
        assert!(matches!(server_name("a b"), Err(TlsError::ServerName(_))));
    }
}
