//! TLS: the server's certificate and key for rustls, optional mutual TLS, and telling the
//! handlers whether a request arrived over TLS.

use std::any::Any;
use std::path::Path;
use std::sync::Arc;

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Marks a connection that arrived over TLS (in the request's connection data).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// Records [`OverTls`] for TLS connections; given to `HttpServer::on_connect`.
pub fn mark_connection(connection: &dyn Any, data: &mut Extensions) {
    if connection.downcast_ref::<TlsStream<TcpStream>>().is_some() {
        data.insert(OverTls);
    }
}

fn certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|err| anyhow::anyhow!("{what} {}: {err}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{what} {}: no certificate found", path.display());
    }
    Ok(certs)
}

/// Builds a rustls server configuration (TLS 1.2 and 1.3, ring provider) from PEM files. With
/// `client_ca`, every client must present a certificate signed by one of its authorities.
///
/// # Errors
/// A message naming the file that could not be read or used.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<ServerConfig> {
    let certs = certificates(cert, "TLS certificate")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| anyhow::anyhow!("TLS key {}: {err}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(path, "TLS client CA")? {
                roots
                    .add(ca)
                    .map_err(|err| anyhow::anyhow!("TLS client CA {}: {err}", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| anyhow::anyhow!("TLS client CA {}: {err}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|err| {
        anyhow::anyhow!("TLS certificate and key do not form a usable pair: {err}")
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
