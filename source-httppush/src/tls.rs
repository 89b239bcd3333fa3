//! Loading the server's certificate and key into a rustls configuration
//! (with the `ring` provider).

use std::path::Path;
use std::sync::Arc;

use connector_core::FailureKind;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Why the certificate or key could not be loaded: the property at fault,
/// the class of failure for connection checks, and the reason.
#[derive(Debug, Clone)]
pub(crate) struct TlsLoadError {
    pub property: &'static str,
    pub kind: FailureKind,
    pub reason: String,
}

/// What was loaded, for check reports.
pub(crate) struct Loaded {
    pub config: Arc<ServerConfig>,
    pub certificates: usize,
}

fn read(path: &Path, property: &'static str, what: &str) -> Result<Vec<u8>, TlsLoadError> {
    std::fs::read(path).map_err(|e| TlsLoadError {
        property,
        kind: if e.kind() == std::io::ErrorKind::NotFound {
            FailureKind::NotFound
        } else if e.kind() == std::io::ErrorKind::PermissionDenied {
            FailureKind::PermissionDenied
        } else {
            FailureKind::Invalid
        },
        reason: format!("cannot read the {what} `{}`: {e}", path.display()),
    })
}

/// Reads the PEM files and builds the server configuration, offering
/// HTTP/2 and HTTP/1.1 by ALPN.
pub(crate) fn load(files: &TlsFiles) -> Result<Loaded, TlsLoadError> {
    let invalid = |property, reason: String| TlsLoadError {
        property,
        kind: FailureKind::Invalid,
        reason,
    };
    let cert_pem = read(&files.certfile, "certfile", "certificate file")?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(
                "certfile",
                format!(
                    "`{}` is not a valid PEM certificate file: {e}",
                    files.certfile.display()
                ),
            )
        })?;
    if certs.is_empty() {
        return Err(invalid(
            "certfile",
            format!(
                "`{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                files.certfile.display()
            ),
        ));
    }
    let key_pem = read(&files.keyfile, "keyfile", "key file")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let reason = match e {
            rustls_pki_types::pem::Error::NoItemsFound => format!(
                "`{}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                files.keyfile.display()
            ),
            other => format!(
                "`{}` is not a valid PEM key file: {other}",
                files.keyfile.display()
            ),
        };
        invalid("keyfile", reason)
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certificates = certs.len();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("certfile", format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            invalid(
                "keyfile",
                format!(
                    "the key `{}` cannot serve the certificate `{}`: {e}",
                    files.keyfile.display(),
                    files.certfile.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        certificates,
    })
}
