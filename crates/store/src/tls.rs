//! TLS to PostgreSQL, for every connection Atlas opens (the pool, bulk COPY, administration,
//! migrations), with rustls. The connection URL says what is wanted, exactly as libpq reads it
//! (docs/operations.md, "TLS to PostgreSQL"): `sslmode=disable` (no TLS); `prefer` (the
//! default: TLS when the server offers it, certificate not checked); `require` (TLS or no
//! connection; the certificate checked against `sslrootcert` when one is given, as libpq does);
//! `verify-ca` (the certificate must chain to `sslrootcert`, or the system's authorities);
//! `verify-full` (that, and the certificate must name the host). `sslrootcert` is a PEM file of
//! the authorities that sign the server's certificate.

use std::str::FromStr as _;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// A connection's client and the connection itself, which must be driven.
pub type Connected = (
    Client,
    Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>,
);

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing: the connection is encrypted, not authenticated (libpq's `prefer`, `require`).
    Nothing,
    /// The chain to a trusted authority, not the name (`verify-ca`, or `require` with
    /// `sslrootcert`).
    Chain,
    /// The chain and the host's name (`verify-full`).
    Full,
}

/// The URL's configuration, with libpq's `verify-ca`/`verify-full` read as `require` and
/// `sslrootcert` taken out (tokio-postgres knows neither), that root file, and what to check.
fn libpq_options(url: &str) -> (String, Option<String>, Check) {
    let mut root = None;
    let mut check = Check::Nothing;
    let mut keep = |name: &str, value: &str| -> Option<String> {
        match (name, value) {
            ("sslrootcert", _) => {
                root = Some(value.to_owned());
                None
            }
            ("sslmode", "verify-ca") => {
                check = Check::Chain;
                Some("sslmode=require".to_owned())
            }
            ("sslmode", "verify-full") => {
                check = Check::Full;
                Some("sslmode=require".to_owned())
            }
            _ => Some(format!("{name}={value}")),
        }
    };
    let rewritten = if let Some((base, query)) = url.split_once('?') {
        let kept: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                keep(name, &percent_decode(value)).map(|kept| {
                    if name == "sslmode" {
                        kept
                    } else {
                        pair.to_owned()
                    }
                })
            })
            .collect();
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else if url.contains("://") {
        url.to_owned()
    } else {
        url.split_whitespace()
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                keep(name, value)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let requires = rewritten.contains("sslmode=require");
    // libpq: `require` with a root file checks the chain as `verify-ca` does.
    if check == Check::Nothing && requires && root.is_some() {
        check = Check::Chain;
    }
    (rewritten, root, check)
}

/// `%XX` sequences decoded (a path in a URL's query).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(byte) = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            decoded.push(byte);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The system's certificate authorities, read once.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, "system certificate authorities for PostgreSQL");
        Arc::new(roots)
    }))
}

/// The authorities in the PEM file `path`.
fn roots_from(path: &str) -> Result<Arc<RootCertStore>, StoreError> {
    let unusable = |reason: String| StoreError::InvalidUrl(format!("sslrootcert {path}: {reason}"));
    let pem = std::fs::read(path).map_err(|err| unusable(err.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| unusable(err.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(unusable("holds no certificate".to_owned()));
    }
    Ok(Arc::new(roots))
}

/// The configuration of `url` and the TLS connector it calls for.
///
/// # Errors
/// [`StoreError::InvalidUrl`] when the URL cannot be read or its `sslrootcert` is unusable.
pub fn target(url: &str) -> Result<(Config, MakeRustlsConnect), StoreError> {
    let (rewritten, root, check) = libpq_options(url);
    let config =
        Config::from_str(&rewritten).map_err(|err| StoreError::InvalidUrl(err.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| StoreError::InvalidUrl(err.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(EncryptOnly(provider)),
        Check::Chain | Check::Full => {
            let roots = match &root {
                Some(path) => roots_from(path)?,
                None => system_roots(),
            };
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|err| StoreError::InvalidUrl(err.to_string()))?;
            if check == Check::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let client = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, MakeRustlsConnect::new(client)))
}

/// Whether `url` asks for the server's certificate to be checked in full (`verify-full`).
#[must_use]
pub fn verifies_fully(url: &str) -> bool {
    libpq_options(url).2 == Check::Full
}

/// libpq's `prefer` and `require`: the session is encrypted and the handshake's signatures
/// checked, but not who the certificate names or who signed it.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's `verify-ca`: the certificate must chain to a trusted authority; the name it gives
/// is not compared with the host.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain held.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Opens a connection to the server of `url`, with TLS as its `sslmode` asks.
///
/// # Errors
/// [`StoreError::InvalidUrl`]; the connection's error.
pub async fn connect(url: &str) -> Result<Result<Connected, tokio_postgres::Error>, StoreError> {
    let (config, tls) = target(url)?;
    Ok(config.connect(tls).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_verification_modes_and_root_files_are_read() {
        assert_eq!(
            libpq_options(
                "postgres://u@db:5432/atlas?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x"
            ),
            (
                "postgres://u@db:5432/atlas?sslmode=require&application_name=x".to_owned(),
                Some("/etc/ca.pem".to_owned()),
                Check::Full
            )
        );
        assert_eq!(
            libpq_options("postgres://u@db/atlas?sslrootcert=/ca.pem"),
            (
                "postgres://u@db/atlas".to_owned(),
                Some("/ca.pem".to_owned()),
                Check::Nothing
            )
        );
        assert_eq!(
            libpq_options("host=db sslmode=verify-ca sslrootcert=/ca.pem user=u"),
            (
                "host=db sslmode=require user=u".to_owned(),
                Some("/ca.pem".to_owned()),
                Check::Chain
            )
        );
        assert_eq!(
            libpq_options("postgres://u@db/atlas?sslmode=disable"),
            (
                "postgres://u@db/atlas?sslmode=disable".to_owned(),
                None,
                Check::Nothing
            )
        );
        assert!(target("postgres://u@db/atlas?sslmode=require").is_ok());
        let refused =
            target("postgres://u@db/atlas?sslmode=verify-full&sslrootcert=/nonexistent.pem")
                .err()
                .map(|err| err.to_string())
                .unwrap_or_default();
        assert!(
            refused.contains("sslrootcert /nonexistent.pem"),
            "{refused}"
        );
    }
}
