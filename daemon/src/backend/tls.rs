//! HTTPS towards the Aktensysteme: rustls with ring, TLS 1.2/1.3, trusting only the CA the
//! environment names — never "accept invalid certificates".

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::BackendError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Covers a 25 MB document through a slow line; the VAU answers one request at a time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A reqwest client whose only trust anchors are the PEM certificates in `ca_pem`.
pub fn http_client(ca_pem: &[u8]) -> Result<reqwest::Client, BackendError> {
    let certs = CertificateDer::pem_slice_iter(ca_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BackendError::TrustAnchor(e.to_string()))?;
    if certs.is_empty() {
        return Err(BackendError::TrustAnchor(
            "no CERTIFICATE block in the CA file".into(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| BackendError::TrustAnchor(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| BackendError::TrustAnchor(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| BackendError::TrustAnchor(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_without_certificates_is_refused_with_the_reason() {
        let e = super::http_client(b"not a pem")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("CA")));
    }
}
