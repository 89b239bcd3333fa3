//! TLS client settings shared by every connector that speaks TLS through
//! rustls: the `ring` provider, the system's trust store (the Mozilla roots
//! where the system has none) plus an optional CA file, or no verification
//! when the user turns it off. Connectors read the same two properties,
//! [`SKIP_VERIFY_SERVER`] and [`CA_CERT`], with [`TlsSettings::read`].

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{PropertyKind, PropertyReader, PropertySpec};
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// `tls.skip_verify_server`.
pub const SKIP_VERIFY_SERVER: PropertySpec = PropertySpec::optional(
    "tls.skip_verify_server",
    PropertyKind::Boolean,
    Some("false"),
    "`true` accepts any server certificate and host name (testing only).",
);

/// `tls.ca_cert`: extra certificate authorities.
pub const CA_CERT: PropertySpec = PropertySpec::optional(
    "tls.ca_cert",
    PropertyKind::String,
    None,
    "PEM file of CA certificates trusted besides the system's.",
);

/// How a connector verifies the servers it talks to.
///
/// ```
/// use connector_core::tls::TlsSettings;
///
/// let tls = TlsSettings::default(); // verify against the system's trust store
/// assert!(!tls.skip_verify_server);
/// let config = tls.client_config("http sink").unwrap();
/// assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Accept any server certificate and host name (`tls.skip_verify_server`).
    pub skip_verify_server: bool,
    /// A PEM file of CA certificates trusted besides the system's
    /// (`tls.ca_cert`), for servers with a private CA.
    pub ca_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// Reads [`SKIP_VERIFY_SERVER`] and [`CA_CERT`] (both must be in the
    /// connector's spec; an empty CA path counts as none).
    pub fn read(reader: &mut PropertyReader<'_>) -> TlsSettings {
        let skip_verify_server: bool = reader.required(SKIP_VERIFY_SERVER.name);
        let ca_cert: Option<String> = reader.optional(CA_CERT.name);
        TlsSettings {
            skip_verify_server,
            ca_cert: ca_cert.filter(|p| !p.trim().is_empty()).map(Into::into),
        }
    }

    /// Builds the rustls configuration, offering HTTP/2 and HTTP/1.1 by ALPN. Errors (an unreadable CA file, no
    /// trust anchors at all) name `component` and the property.
    pub fn client_config(&self, component: &str) -> Result<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config(component.to_owned(), "tls", e.to_string()))?;
        let mut config = if self.skip_verify_server {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        } else {
            let extra = match &self.ca_cert {
                Some(path) => load_certificates(path)
                    .map_err(|reason| Error::config(component.to_owned(), "tls.ca_cert", reason))?,
                None => Vec::new(),
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier(extra, provider, component)?)
                .with_no_client_auth()
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Whether a handshake failed because the server answered with something
/// that is not TLS (a plain-text service on that port): rustls reports it
/// as a corrupt message (`InvalidContentType` and the like).
pub fn is_plain_text_peer(err: &rustls::Error) -> bool {
    matches!(err, rustls::Error::InvalidMessage(_))
}

/// Reads every certificate of a PEM file; the error says which file and why.
pub fn load_certificates(
    path: &std::path::Path,
) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("`{}` is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The platform's verifier with the extra roots; where the platform has no
/// trust store at all (a minimal container), the Mozilla roots instead.
fn verifier(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    component: &str,
) -> Result<Arc<dyn ServerCertVerifier>> {
    match rustls_platform_verifier::Verifier::new_with_extra_roots(extra.clone(), provider.clone())
    {
        Ok(v) => Ok(Arc::new(v)),
        Err(platform_error) => {
            tracing::debug!(error = %platform_error, "no usable system trust store; using the bundled Mozilla roots");
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            for cert in extra {
                roots.add(cert).map_err(|e| {
                    Error::config(component.to_owned(), "tls.ca_cert", e.to_string())
                })?;
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map(|v| v as Arc<dyn ServerCertVerifier>)
                .map_err(|e| Error::config(component.to_owned(), "tls", e.to_string()))
        }
    }
}

/// `tls.skip_verify_server`: any certificate and host name is accepted, but
/// handshake signatures are still checked so the session keys are sound.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_file_names_the_property() {
        let tls = TlsSettings {
            skip_verify_server: false,
            ca_cert: Some("/nonexistent/ca.pem".into()),
        };
        let err = tls.client_config("http sink").unwrap_err().to_string();
        assert!(
            err.starts_with("http sink: property `tls.ca_cert`: cannot read `/nonexistent/ca.pem`"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let tls = TlsSettings {
            skip_verify_server: false,
            ca_cert: Some(path),
        };
        let err = tls.client_config("http sink").unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }

    #[test]
    fn skip_verify_builds() {
        let tls = TlsSettings {
            skip_verify_server: true,
            ca_cert: None,
        };
        assert!(tls.client_config("http sink").is_ok());
    }
}
