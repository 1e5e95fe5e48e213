//! Bearer tokens: verifying them into a [`Principal`], and signing development tokens.
//!
//! Every verification key has exactly one algorithm (RS256, ES256 or EdDSA), fixed when the key
//! is loaded from a PEM file or a JWKS entry; a token whose header names another algorithm is
//! refused, so `none`, HMAC-with-a-public-key and algorithm-confusion tokens never verify.
//! `iss`, `aud`, `exp`, `nbf` and `sub` are required; the service's own claims are
//! `partnership` (a GSS code), `agency` (agency id, agency staff only) and `roles`.

use std::collections::BTreeSet;

use atlas_domain::GssCode;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Principal, Role};

/// The longest token accepted, in bytes. Real tokens are well under 4 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The largest clock leeway allowed for `exp` and `nbf`, in seconds.
pub const MAX_LEEWAY_SECS: u64 = 60;

/// The algorithms a verification key may be pinned to.
const ALLOWED_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// A public key and the one algorithm it verifies.
pub struct VerificationKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The JWKS document is not a JSON Web Key Set.
    #[error("not a JSON Web Key Set: {0}")]
    Jwks(String),
    /// A key uses an algorithm or key type this service does not accept.
    #[error("key {kid}: {reason}")]
    Unsupported {
        /// The key's `kid`, or its position.
        kid: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A PEM file does not hold a key of the named algorithm.
    #[error("not a {algorithm} public key in PEM form: {reason}")]
    Pem {
        /// The algorithm the key was configured with.
        algorithm: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Two keys have the same `kid`, or several keys lack one.
    #[error("{0}")]
    Ambiguous(String),
}

impl VerificationKey {
    /// A key from a PEM file (SubjectPublicKeyInfo, or an X.509 certificate for RSA and EC),
    /// pinned to `algorithm`.
    ///
    /// # Errors
    /// [`KeyError`] when the algorithm is not RS256, ES256 or EdDSA or the PEM does not hold a
    /// matching key.
    pub fn from_pem(kid: Option<String>, algorithm: &str, pem: &[u8]) -> Result<Self, KeyError> {
        let pem_error = |reason: String| KeyError::Pem {
            algorithm: algorithm.to_owned(),
            reason,
        };
        let key = match algorithm {
            "RS256" => DecodingKey::from_rsa_pem(pem),
            "ES256" => DecodingKey::from_ec_pem(pem),
            "EdDSA" => DecodingKey::from_ed_pem(pem),
            other => {
                return Err(KeyError::Unsupported {
                    kid: kid.unwrap_or_else(|| "(no kid)".to_owned()),
                    reason: format!("algorithm `{other}` is not one of RS256, ES256, EdDSA"),
                });
            }
        }
        .map_err(|err| pem_error(err.to_string()))?;
        let algorithm = algorithm
            .parse()
            .map_err(|_| pem_error("bad algorithm".to_owned()))?;
        Ok(Self {
            kid,
            algorithm,
            key,
        })
    }

    /// One key of a JWKS. Its algorithm is the `alg` member, or follows from the key type
    /// (RSA: RS256, EC P-256: ES256, OKP Ed25519: EdDSA); symmetric keys are refused.
    ///
    /// # Errors
    /// [`KeyError::Unsupported`] for any other key.
    pub fn from_jwk(jwk: &Jwk, position: usize) -> Result<Self, KeyError> {
        let kid = jwk.common.key_id.clone();
        let unsupported = |reason: &str| KeyError::Unsupported {
            kid: kid
                .clone()
                .unwrap_or_else(|| format!("number {}", position + 1)),
            reason: reason.to_owned(),
        };
        let implied = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            AlgorithmParameters::OctetKey(_) => {
                return Err(unsupported("symmetric (oct) keys are not accepted"));
            }
            _ => {
                return Err(unsupported(
                    "only RSA, EC P-256 and Ed25519 keys are accepted",
                ));
            }
        };
        let algorithm = match jwk.common.key_algorithm {
            None => implied,
            Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => implied,
            Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => implied,
            Some(KeyAlgorithm::EdDSA) if implied == Algorithm::EdDSA => implied,
            Some(_) => {
                return Err(unsupported(
                    "its `alg` is not RS256, ES256 or EdDSA for its key type",
                ));
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|err| unsupported(&err.to_string()))?;
        Ok(Self {
            kid,
            algorithm,
            key,
        })
    }
}

/// Reads every signing key of a JSON Web Key Set document.
///
/// # Errors
/// [`KeyError`] when the document is not a key set or a key is not acceptable.
pub fn keys_from_jwks(document: &str) -> Result<Vec<VerificationKey>, KeyError> {
    let set: JwkSet =
        serde_json::from_str(document).map_err(|err| KeyError::Jwks(err.to_string()))?;
    set.keys
        .iter()
        .enumerate()
        .map(|(position, jwk)| VerificationKey::from_jwk(jwk, position))
        .collect()
}

/// Why a token was refused. The server logs this and answers a bare 401: the caller learns
/// nothing about which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejected {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    /// Not three base64url parts with a JSON header.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names a `kid` no configured key has, or none and several keys are configured.
    #[error("no configured key matches the token's kid")]
    UnknownKey,
    /// The header's algorithm is not the one the key is pinned to.
    #[error("algorithm {0} is not the key's algorithm")]
    WrongAlgorithm(String),
    /// Signature, expiry, not-before, issuer, audience or a required claim failed.
    #[error("token invalid: {0}")]
    Invalid(String),
    /// The service's claims are missing or malformed.
    #[error("claims unusable: {0}")]
    Claims(String),
}

/// The claims this service reads from a verified token.
#[derive(Debug, Deserialize)]
struct ServiceClaims {
    sub: String,
    partnership: GssCode,
    #[serde(default)]
    agency: Option<Uuid>,
    roles: Vec<String>,
}

/// Verifies bearer tokens against the configured keys, issuer and audience.
#[derive(Debug)]
pub struct TokenVerifier {
    keys: Vec<VerificationKey>,
    issuer: String,
    audience: String,
    leeway_secs: u64,
}

impl TokenVerifier {
    /// A verifier trusting `keys` for tokens from `issuer` to `audience`.
    ///
    /// # Errors
    /// [`KeyError::Ambiguous`] when two keys share a `kid`, or several keys are configured and
    /// one has no `kid` (a token could not say which to use).
    pub fn new(
        keys: Vec<VerificationKey>,
        issuer: String,
        audience: String,
        leeway_secs: u64,
    ) -> Result<Self, KeyError> {
        let mut kids = BTreeSet::new();
        for key in &keys {
            match &key.kid {
                Some(kid) if !kids.insert(kid.clone()) => {
                    return Err(KeyError::Ambiguous(format!(
                        "two keys have the kid `{kid}`"
                    )));
                }
                None if keys.len() > 1 => {
                    return Err(KeyError::Ambiguous(
                        "several keys are configured, so every key needs a kid".to_owned(),
                    ));
                }
                _ => {}
            }
        }
        Ok(Self {
            keys,
            issuer,
            audience,
            leeway_secs: leeway_secs.min(MAX_LEEWAY_SECS),
        })
    }

    /// How many keys are trusted.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies `token` (without the `Bearer ` prefix) and returns the caller.
    ///
    /// # Errors
    /// [`TokenRejected`] saying which check failed, for the log only.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenRejected> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejected::TooLong);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| TokenRejected::Malformed(err.to_string()))?;
        let key = match &header.kid {
            Some(kid) => self.keys.iter().find(|key| key.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
        .ok_or(TokenRejected::UnknownKey)?;
        if header.alg != key.algorithm || !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(TokenRejected::WrongAlgorithm(format!("{:?}", header.alg)));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["iss", "aud", "exp", "nbf", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation)
            .map_err(|err| TokenRejected::Invalid(err.to_string()))?;
        let claims: ServiceClaims = serde_json::from_value(data.claims)
            .map_err(|err| TokenRejected::Claims(err.to_string()))?;
        principal_from(claims)
    }
}

fn principal_from(claims: ServiceClaims) -> Result<Principal, TokenRejected> {
    let subject = claims.sub.trim();
    if subject.is_empty() || subject.len() > 256 {
        return Err(TokenRejected::Claims(
            "sub is empty or longer than 256 bytes".to_owned(),
        ));
    }
    let roles: BTreeSet<Role> = claims
        .roles
        .iter()
        .filter_map(|name| Role::parse(name))
        .collect();
    if roles.is_empty() {
        return Err(TokenRejected::Claims(
            "roles names no role of this service".to_owned(),
        ));
    }
    Ok(Principal {
        subject: subject.to_owned(),
        partnership: claims.partnership,
        agency: claims.agency,
        roles,
    })
}

/// What a development token says about its holder.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `sub`.
    pub subject: String,
    /// `partnership`.
    pub partnership: GssCode,
    /// `agency`.
    pub agency: Option<Uuid>,
    /// `roles`.
    pub roles: Vec<Role>,
    /// Lifetime in seconds.
    pub ttl_secs: u64,
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    partnership: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agency: Option<Uuid>,
    roles: Vec<&'static str>,
}

/// Signs a development token with `key` (see [`crate::keys::SigningKey`]) from `issuer` for
/// `audience`, valid from `now` (seconds since the Unix epoch).
///
/// # Errors
/// A message when signing fails.
pub fn issue(
    key: &crate::keys::SigningKey,
    request: &TokenRequest,
    issuer: &str,
    audience: &str,
    now: u64,
) -> Result<String, String> {
    let mut header = Header::new(key.algorithm());
    header.kid = Some(key.kid().to_owned());
    let claims = IssuedClaims {
        iss: issuer,
        aud: audience,
        sub: &request.subject,
        iat: now,
        nbf: now,
        exp: now + request.ttl_secs,
        partnership: request.partnership.as_str(),
        agency: request.agency,
        roles: request.roles.iter().map(|role| role.as_str()).collect(),
    };
    let encoding: &EncodingKey = key.encoding_key();
    jsonwebtoken::encode(&header, &claims, encoding).map_err(|err| err.to_string())
}
