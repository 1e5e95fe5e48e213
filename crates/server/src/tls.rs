//! Loading the server's certificate and key for rustls.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Builds a rustls server configuration (TLS 1.2 and 1.3, ring provider) from PEM files.
///
/// # Errors
/// A message naming the file that could not be read or used.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|err| anyhow::anyhow!("TLS certificate {}: {err}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("TLS certificate {}: no certificate found", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| anyhow::anyhow!("TLS key {}: {err}", key.display()))?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|err| {
                anyhow::anyhow!("TLS certificate and key do not form a usable pair: {err}")
            })?;
    Ok(config)
}
