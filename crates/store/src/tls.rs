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

/// The rustls connector, naming `localhost` when tokio-postgres gives no host name (it asks
/// for a connector even for a Unix socket, where PostgreSQL never speaks TLS).
pub struct Tls(MakeRustlsConnect);

impl MakeTlsConnect<Socket> for Tls {
    type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = if domain.is_empty() {
            "localhost"
        } else {
            domain
        };
        <MakeRustlsConnect as MakeTlsConnect<Socket>>::make_tls_connect(&mut self.0, name)
    }
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing: the connection is encrypted, not authenticated (libpq's `prefer`, `require`).
    Nothing,
    /// The chain to `sslrootcert`, not the name (`verify-ca`; `require` or no `sslmode` with
    /// `sslrootcert`).
    Chain,
    /// The chain and the host's name (`verify-full`).
    Full,
}

/// Where a URL's query starts: at the first `?` after its user information (a password may
/// hold a `?`), as tokio-postgres reads it.
#[must_use]
pub fn query_start(url: &str) -> Option<usize> {
    let after_scheme = url.find("://").map_or(0, |index| index + 3);
    let after_user = url
        .get(after_scheme..)?
        .find('@')
        .map_or(after_scheme, |index| after_scheme + index + 1);
    url.get(after_user..)?
        .find('?')
        .map(|index| after_user + index)
}

/// The `name=value` pairs of a key=value connection string, each with its text as written
/// (values may be quoted with `'`, with `\` escapes, and `=` may have spaces around it).
fn conninfo_pairs(text: &str) -> Vec<(String, String, &str)> {
    let bytes = text.as_bytes();
    let mut pairs = Vec::new();
    let mut index = 0;
    let skip_spaces = |index: &mut usize| {
        while *index < bytes.len() && bytes[*index].is_ascii_whitespace() {
            *index += 1;
        }
    };
    loop {
        skip_spaces(&mut index);
        if index >= bytes.len() {
            break;
        }
        let start = index;
        while index < bytes.len() && bytes[index] != b'=' && !bytes[index].is_ascii_whitespace() {
            index += 1;
        }
        let name = text.get(start..index).unwrap_or_default().to_owned();
        skip_spaces(&mut index);
        if index < bytes.len() && bytes[index] == b'=' {
            index += 1;
        }
        skip_spaces(&mut index);
        let mut value = Vec::new();
        if index < bytes.len() && bytes[index] == b'\'' {
            index += 1;
            while index < bytes.len() && bytes[index] != b'\'' {
                if bytes[index] == b'\\' && index + 1 < bytes.len() {
                    index += 1;
                }
                value.push(bytes[index]);
                index += 1;
            }
            index += 1;
        } else {
            while index < bytes.len() && !bytes[index].is_ascii_whitespace() {
                if bytes[index] == b'\\' && index + 1 < bytes.len() {
                    index += 1;
                }
                value.push(bytes[index]);
                index += 1;
            }
        }
        pairs.push((
            name,
            String::from_utf8_lossy(&value).into_owned(),
            text.get(start..index.min(text.len())).unwrap_or_default(),
        ));
    }
    pairs
}

/// The URL's configuration, with libpq's `verify-ca`/`verify-full` read as `require` and
/// `sslrootcert` taken out (tokio-postgres knows neither; every other parameter is left as
/// written), that root file, and what to check.
///
/// # Errors
/// [`StoreError::InvalidUrl`] for `verify-ca` without `sslrootcert`: the system's authorities
/// sign certificates for anyone's host names, so checking the chain alone proves nothing.
fn libpq_options(url: &str) -> Result<(String, Option<String>, Check), StoreError> {
    let mut root = None;
    let mut mode = None;
    // Each parameter: `None` to leave it out, `Some(text)` to keep it as `text`.
    let mut keep = |name: &str, value: &str, written: &str| -> Option<String> {
        match name {
            "sslrootcert" => {
                root = Some(value.to_owned());
                None
            }
            "sslmode" => {
                mode = Some(value.to_owned());
                Some(if value.starts_with("verify-") {
                    written.replace(value, "require")
                } else {
                    written.to_owned()
                })
            }
            _ => Some(written.to_owned()),
        }
    };
    let rewritten = if let Some(start) = query_start(url) {
        let (base, query) = (
            url.get(..start).unwrap_or_default(),
            url.get(start + 1..).unwrap_or_default(),
        );
        let kept: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                keep(name, &percent_decode(value), pair)
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
        conninfo_pairs(url)
            .into_iter()
            .filter_map(|(name, value, written)| keep(&name, &value, written))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let check = match (mode.as_deref(), &root) {
        (Some("verify-full"), _) => Check::Full,
        (Some("verify-ca"), Some(_)) => Check::Chain,
        (Some("verify-ca"), None) => {
            return Err(StoreError::InvalidUrl(
                "sslmode=verify-ca needs sslrootcert (the authority that signs the server's \
                 certificate): the system's authorities sign certificates for anyone's host \
                 names; or use sslmode=verify-full"
                    .to_owned(),
            ));
        }
        // As libpq: `require` with a root file checks the chain; a root file given without a
        // mode is read the same way (TLS required), never silently ignored.
        (Some("require") | None, Some(_)) => Check::Chain,
        _ => Check::Nothing,
    };
    let rewritten = if check == Check::Chain && mode.is_none() {
        if url.contains("://") {
            let separator = if query_start(&rewritten).is_some() {
                '&'
            } else {
                '?'
            };
            format!("{rewritten}{separator}sslmode=require")
        } else {
            format!("{rewritten} sslmode=require")
        }
    } else {
        rewritten
    };
    Ok((rewritten, root, check))
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
pub fn target(url: &str) -> Result<(Config, Tls), StoreError> {
    let (rewritten, root, check) = libpq_options(url)?;
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
    Ok((config, Tls(MakeRustlsConnect::new(client))))
}

/// Whether `url` asks for the server's certificate to be checked in full (`verify-full`).
#[must_use]
pub fn verifies_fully(url: &str) -> bool {
    libpq_options(url).is_ok_and(|(_, _, check)| check == Check::Full)
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
        let read = |url: &str| libpq_options(url).unwrap();
        assert_eq!(
            read(
                "postgres://u@db:5432/atlas?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x"
            ),
            (
                "postgres://u@db:5432/atlas?sslmode=require&application_name=x".to_owned(),
                Some("/etc/ca.pem".to_owned()),
                Check::Full
            )
        );
        // A root file without a mode is not ignored: TLS, and the chain checked.
        assert_eq!(
            read("postgres://u@db/atlas?sslrootcert=/ca.pem"),
            (
                "postgres://u@db/atlas?sslmode=require".to_owned(),
                Some("/ca.pem".to_owned()),
                Check::Chain
            )
        );
        assert_eq!(
            read("postgres://u@db/atlas?sslmode=disable"),
            (
                "postgres://u@db/atlas?sslmode=disable".to_owned(),
                None,
                Check::Nothing
            )
        );
        // A password holding `?` is not mistaken for the query.
        assert_eq!(
            read("postgres://u:p?ss@db/atlas?sslmode=verify-full").0,
            "postgres://u:p?ss@db/atlas?sslmode=require"
        );
        // Key=value strings: quoted values with spaces and options are kept as written.
        assert_eq!(
            read(
                "host=db sslmode = 'verify-ca' sslrootcert='/ca dir/ca.pem' password='a  b' options='-c statement_timeout=5s'"
            ),
            (
                "host=db sslmode = 'require' password='a  b' options='-c statement_timeout=5s'"
                    .to_owned(),
                Some("/ca dir/ca.pem".to_owned()),
                Check::Chain
            )
        );
        // verify-ca against the system's authorities proves nothing: refused.
        assert!(libpq_options("postgres://u@db/atlas?sslmode=verify-ca").is_err());
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
