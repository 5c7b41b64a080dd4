//! TLS on the job port (`--ssl`): the server's certificate, and with `--ssl-ca-file`
//! client certificates that are required and verified against that CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::server::WebPkiClientVerifier;
use futures_rustls::rustls::{self, RootCertStore, ServerConfig, ServerConnection};
use futures_rustls::TlsAcceptor;

/// The `--ssl-*` files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--ssl-certificate`: the server's certificate chain (PEM).
    pub certificate: PathBuf,
    /// `--ssl-key`: its private key (PEM).
    pub key: PathBuf,
    /// `--ssl-ca-file`: CA whose client certificates are accepted; required when given.
    pub ca: Option<PathBuf>,
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {path}: {message}")]
    Pem { path: PathBuf, message: String },
    /// rustls refused the configuration. (The cause is part of the message, not a
    /// `source`, so that `{:#}` chains do not print it twice.)
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
    /// The client verifier could not be built.
    #[error("client certificate verification: {0}")]
    Verifier(String),
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> TlsError {
        TlsError::Config(e)
    }
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        message: e.to_string(),
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

/// Builds the acceptor from the files; every problem is reported at start-up.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match &files.ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|e| pem_error(ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pem_error(&files.key, e))?;
    let config = builder.with_single_cert(certificates(&files.certificate)?, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The verified client certificate's identity: its subject CN, else its first DNS or
/// e-mail subject alternative name.
pub fn peer_identity(connection: &ServerConnection) -> Option<String> {
    let cert = connection.peer_certificates()?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    if let Some(cn) = parsed
        .subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
    {
        return Some(cn.to_string());
    }
    let san = parsed.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::DNSName(n)
        | x509_parser::extensions::GeneralName::RFC822Name(n) => Some((*n).to_string()),
        _ => None,
    })
}
