//! Development signing keys: generating an Ed25519 pair, reading a private key back, and the
//! public half as a JWKS whose `kid` is the key's RFC 7638 thumbprint.
//!
//! Production tokens come from the organisation's identity provider; these keys exist so a
//! laptop, the demo and the tests can mint tokens the server verifies exactly as it would a
//! provider's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// A private key that signs development tokens, with its public JWK.
pub struct SigningKey {
    algorithm: Algorithm,
    kid: String,
    private_pem: String,
    encoding: EncodingKey,
    public_jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why a signing key could not be made or read.
#[derive(Debug, thiserror::Error)]
#[error("signing key: {0}")]
pub struct SigningKeyError(String);

impl SigningKey {
    /// A fresh Ed25519 key pair.
    ///
    /// # Errors
    /// [`SigningKeyError`] when the system's random source fails.
    pub fn generate() -> Result<Self, SigningKeyError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|err| SigningKeyError(err.to_string()))?;
        Self::from_pair(&pair)
    }

    /// Reads a PKCS#8 PEM private key (Ed25519 or ECDSA P-256).
    ///
    /// # Errors
    /// [`SigningKeyError`] when the PEM holds no such key.
    pub fn from_pem(pem: &str) -> Result<Self, SigningKeyError> {
        let pair = rcgen::KeyPair::from_pem(pem)
            .map_err(|err| SigningKeyError(format!("not a PKCS#8 PEM private key ({err})")))?;
        Self::from_pair(&pair)
    }

    fn from_pair(pair: &rcgen::KeyPair) -> Result<Self, SigningKeyError> {
        let raw = pair.public_key_raw();
        let private_pem = pair.serialize_pem();
        let (algorithm, members, encoding) = if pair.algorithm() == &rcgen::PKCS_ED25519 {
            let members =
                json!({ "crv": "Ed25519", "kty": "OKP", "x": URL_SAFE_NO_PAD.encode(raw) });
            (
                Algorithm::EdDSA,
                members,
                EncodingKey::from_ed_pem(private_pem.as_bytes()),
            )
        } else if pair.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 && raw.len() == 65 {
            let members = json!({
                "crv": "P-256",
                "kty": "EC",
                "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
            });
            (
                Algorithm::ES256,
                members,
                EncodingKey::from_ec_pem(private_pem.as_bytes()),
            )
        } else {
            return Err(SigningKeyError(
                "only Ed25519 and ECDSA P-256 keys sign development tokens".to_owned(),
            ));
        };
        let encoding = encoding.map_err(|err| SigningKeyError(err.to_string()))?;
        // RFC 7638: the hash of the required members, in lexicographic order, without spaces.
        // serde_json's maps are sorted and its compact form has no spaces.
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(members.to_string().as_bytes()));
        let mut public_jwk = members;
        public_jwk["kid"] = Value::String(kid.clone());
        public_jwk["alg"] = Value::String(
            if algorithm == Algorithm::EdDSA {
                "EdDSA"
            } else {
                "ES256"
            }
            .to_owned(),
        );
        public_jwk["use"] = Value::String("sig".to_owned());
        Ok(Self {
            algorithm,
            kid,
            private_pem,
            encoding,
            public_jwk,
        })
    }

    /// The algorithm tokens are signed with.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 PEM. Secret.
    #[must_use]
    pub fn private_pem(&self) -> &str {
        &self.private_pem
    }

    /// A JSON Web Key Set holding the public key, for `auth.jwks_file`.
    #[must_use]
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk] })
    }

    pub(crate) const fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}
