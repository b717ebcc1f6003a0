//! A throwaway certificate authority for the fakes: each fake serves TLS with a
//! certificate for `localhost` and `127.0.0.1`, and hands out the PEM a client must
//! trust (the provider settings' `ca_pem`).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

pub struct TestCert {
    /// The self-signed certificate, to trust as a CA.
    pub cert_pem: String,
    pub server_config: Arc<ServerConfig>,
}

/// A fresh self-signed certificate and a server config offering `alpn`.
pub fn self_signed(alpn: &[&[u8]]) -> anyhow::Result<TestCert> {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let cert_der: CertificateDer<'static> = cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TestCert {
        cert_pem: cert.pem(),
        server_config: Arc::new(config),
    })
}
