//! Bearer tokens: verifying them into a [`Principal`], and signing development tokens.
//!
//! Every verification key has exactly one algorithm (RS256, ES256 or EdDSA), fixed when the key
//! is loaded from a PEM file or a JWKS entry; a token whose header names another algorithm is
//! refused, so `none`, HMAC-with-a-public-key and algorithm-confusion tokens never verify.
//! `iss`, `aud`, `exp` and `sub` are required (`nbf` is checked when present: Keycloak and
//! others leave it out); the service's own claims are the partnership (a GSS code), the agency
//! (agency id, agency staff only) and the roles, read where [`ClaimNames`] says a provider puts
//! them.

use std::collections::{BTreeMap, BTreeSet};

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
    /// The `kid` tokens signed with this key name.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

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

/// Reads the signing keys of an identity provider's published key set, leaving out what it
/// publishes for other uses (Keycloak's `RSA-OAEP` encryption key, `use: enc`, algorithms this
/// service does not accept) and saying what was left out.
///
/// # Errors
/// [`KeyError::Jwks`] when the document is not a key set or holds no usable signing key.
pub fn keys_from_provider(document: &str) -> Result<(Vec<VerificationKey>, Vec<String>), KeyError> {
    /// The set, each key read on its own: one of a kind this library does not know (X25519,
    /// say) is left out, not the set.
    #[derive(Deserialize)]
    struct LooseSet {
        keys: Vec<serde_json::Value>,
    }
    let set: LooseSet =
        serde_json::from_str(document).map_err(|err| KeyError::Jwks(err.to_string()))?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (position, value) in set.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(err) => {
                skipped.push(format!("key number {}: {err}", position + 1));
                continue;
            }
        };
        let jwk = &jwk;
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|usage| *usage != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            skipped.push(format!(
                "{}: not a signing key",
                jwk.common.key_id.as_deref().unwrap_or("(no kid)")
            ));
            continue;
        }
        match VerificationKey::from_jwk(jwk, position) {
            Ok(key) => keys.push(key),
            Err(err) => skipped.push(err.to_string()),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::Jwks(format!(
            "no usable signing key (RS256, ES256 or EdDSA){}",
            if skipped.is_empty() {
                String::new()
            } else {
                format!(": {}", skipped.join("; "))
            }
        )));
    }
    Ok((keys, skipped))
}

/// The `kid` a token's header names, when the token could verify at all: no longer than
/// [`MAX_TOKEN_BYTES`], with a readable header naming an accepted algorithm (read before any
/// verification: only to decide whether the keys are worth loading again for it).
#[must_use]
pub fn key_id(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let header = jsonwebtoken::decode_header(token).ok()?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return None;
    }
    header.kid
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
    /// The token verified, but the service's claims are missing or malformed: the reason is
    /// for the caller, whose provider must map them (nothing here helps forge a token).
    #[error("your token was verified but cannot be used: {0}")]
    Claims(String),
}

/// Where a provider puts the service's claims in its tokens: a claim's name, or a path of
/// names joined by dots into nested objects (`realm_access.roles`,
/// `resource_access.safeguard-atlas.roles`); a name that is itself a claim is taken whole
/// first (Entra's `extn.partnership`). When `role_values` is set, it is the whole list of the
/// provider's role values that count and the roles of this service they stand for (Entra's
/// app role `Atlas.PartnershipAnalyst` for `partnership_analyst`, say): any other value, even
/// one spelt like a role of this service (a Keycloak realm role `admin`), grants nothing.
/// Without it, values are read as roles of this service by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimNames {
    /// The roles: a list of strings, or one string of roles separated by spaces.
    pub roles: String,
    /// The partnership's GSS code: a string, or a list holding one.
    pub partnership: String,
    /// The agency's id in Atlas (agency staff only).
    pub agency: String,
    /// A provider's role values and the roles of this service they stand for; when set, the
    /// only values that count.
    pub role_values: BTreeMap<String, String>,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            roles: "roles".to_owned(),
            partnership: "partnership".to_owned(),
            agency: "agency".to_owned(),
            role_values: BTreeMap::new(),
        }
    }
}

impl ClaimNames {
    /// The claim at `name` in `claims`: the claim of that name, else the path of its dotted
    /// parts.
    fn find<'a>(claims: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
        claims
            .get(name)
            .or_else(|| {
                name.split('.')
                    .try_fold(claims, |value, part| value.get(part))
            })
            .filter(|value| !value.is_null())
    }

    /// The caller that verified `claims` describe, or why they cannot be used.
    fn principal(&self, claims: &serde_json::Value) -> Result<Principal, TokenRejected> {
        let unusable = |reason: String| TokenRejected::Claims(reason);
        let subject = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .unwrap_or_default();
        if subject.is_empty() || subject.len() > 256 {
            return Err(unusable(
                "its `sub` is empty or longer than 256 bytes".to_owned(),
            ));
        }
        let partnership = match Self::find(claims, &self.partnership) {
            None => {
                return Err(unusable(format!(
                    "it has no `{}` claim naming your partnership (auth.claims.partnership)",
                    self.partnership
                )));
            }
            Some(serde_json::Value::Array(items)) if items.len() == 1 => &items[0],
            Some(value) => value,
        };
        let partnership = partnership
            .as_str()
            .and_then(|code| GssCode::parse(code).ok())
            .ok_or_else(|| {
                unusable(format!(
                    "its `{}` claim is not one partnership's GSS code (such as E10000017)",
                    self.partnership
                ))
            })?;
        let agency = match Self::find(claims, &self.agency) {
            None => None,
            Some(serde_json::Value::Array(items)) if items.len() == 1 => Some(&items[0]),
            Some(value) => Some(value),
        };
        let agency = match agency {
            None => None,
            Some(value) => Some(
                value
                    .as_str()
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .ok_or_else(|| {
                        unusable(format!(
                            "its `{}` claim is not an agency's id in Atlas (a UUID)",
                            self.agency
                        ))
                    })?,
            ),
        };
        let values: Vec<&str> = match Self::find(claims, &self.roles) {
            None => {
                return Err(unusable(format!(
                    "it has no `{}` claim naming your roles (auth.claims.roles)",
                    self.roles
                )));
            }
            Some(serde_json::Value::String(text)) => text.split_whitespace().collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    unusable(format!(
                        "its `{}` claim is not a list of strings",
                        self.roles
                    ))
                })?,
            Some(_) => {
                return Err(unusable(format!(
                    "its `{}` claim is not a list of strings",
                    self.roles
                )));
            }
        };
        let roles: BTreeSet<Role> = values
            .iter()
            .filter_map(|value| {
                if self.role_values.is_empty() {
                    Role::parse(value)
                } else {
                    self.role_values
                        .get(*value)
                        .and_then(|role| Role::parse(role))
                }
            })
            .collect();
        if roles.is_empty() {
            return Err(unusable(format!(
                "its `{}` claim names no role of this service (map your provider's role values \
                 with auth.claims.role_values)",
                self.roles
            )));
        }
        Ok(Principal {
            subject: subject.to_owned(),
            partnership,
            agency,
            roles,
        })
    }
}

/// Verifies bearer tokens against the configured keys, issuer and audience.
#[derive(Debug)]
pub struct TokenVerifier {
    keys: Vec<VerificationKey>,
    issuer: String,
    audience: String,
    leeway_secs: u64,
    claims: ClaimNames,
}

impl TokenVerifier {
    /// A verifier trusting `keys` for tokens from `issuer` to `audience`, reading the
    /// service's claims where `claims` says.
    ///
    /// # Errors
    /// [`KeyError::Ambiguous`] when two keys share a `kid`, or several keys are configured and
    /// one has no `kid` (a token could not say which to use).
    pub fn new(
        keys: Vec<VerificationKey>,
        issuer: String,
        audience: String,
        leeway_secs: u64,
        claims: ClaimNames,
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
            claims,
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
        validation.set_required_spec_claims(&["iss", "aud", "exp", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation)
            .map_err(|err| TokenRejected::Invalid(err.to_string()))?;
        self.claims.principal(&data.claims)
    }

    /// Whether a key with `kid` is trusted.
    #[must_use]
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(names: &ClaimNames, claims: &serde_json::Value) -> String {
        names.principal(claims).unwrap_err().to_string()
    }

    #[test]
    fn the_default_names_read_the_services_own_claims() {
        let principal = ClaimNames::default()
            .principal(&json!({
                "sub": "alice", "partnership": "E10000017",
                "agency": "6f1c1b1e-8a4e-4a43-9d39-0f1b7a0c2f11",
                "roles": ["agency_analyst", "offline_access"],
            }))
            .unwrap();
        assert_eq!(principal.partnership.as_str(), "E10000017");
        assert!(principal.agency.is_some());
        assert_eq!(principal.role_names(), ["agency_analyst"]);
    }

    #[test]
    fn keycloak_client_roles_are_read_from_their_nested_path() {
        let names = ClaimNames {
            roles: "resource_access.safeguard-atlas.roles".to_owned(),
            ..ClaimNames::default()
        };
        let principal = names
            .principal(&json!({
                "sub": "f:1", "partnership": "E06000009",
                "realm_access": { "roles": ["default-roles-atlas"] },
                "resource_access": { "safeguard-atlas": { "roles": ["partnership_analyst"] } },
            }))
            .unwrap();
        assert_eq!(principal.role_names(), ["partnership_analyst"]);
    }

    #[test]
    fn entra_app_roles_and_extension_claims_are_mapped() {
        let names = ClaimNames {
            partnership: "extn.partnership".to_owned(),
            agency: "extn.agency".to_owned(),
            role_values: BTreeMap::from([
                (
                    "Atlas.PartnershipAnalyst".to_owned(),
                    "partnership_analyst".to_owned(),
                ),
                ("Atlas.Auditor".to_owned(), "auditor".to_owned()),
            ]),
            ..ClaimNames::default()
        };
        let principal = names
            .principal(&json!({
                "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "ver": "2.0",
                "tid": "9122040d-6c67-4c5b-b112-36a304b66dad",
                "roles": ["Atlas.PartnershipAnalyst", "Atlas.Auditor"],
                "extn.partnership": ["E10000017"],
            }))
            .unwrap();
        assert_eq!(principal.role_names(), ["partnership_analyst", "auditor"]);
        assert_eq!(principal.partnership.as_str(), "E10000017");
        assert_eq!(principal.agency, None);
        // With role_values set, a value spelt like a role of this service grants nothing.
        let spelt = names.principal(&json!({
            "sub": "b", "roles": ["admin", "Atlas.Auditor"], "extn.partnership": "E10000017",
            "extn.agency": ["6f1c1b1e-8a4e-4a43-9d39-0f1b7a0c2f11"],
        }));
        let spelt = spelt.unwrap();
        assert_eq!(spelt.role_names(), ["auditor"]);
        assert!(spelt.agency.is_some(), "a one-item list names the agency");
    }

    #[test]
    fn missing_or_malformed_claims_are_refused_saying_which() {
        let names = ClaimNames::default();
        let base = json!({ "sub": "a", "partnership": "E10000017", "roles": ["auditor"] });
        let without = |name: &str| {
            let mut claims = base.clone();
            claims.as_object_mut().unwrap().remove(name);
            claims
        };
        let with = |name: &str, value: serde_json::Value| {
            let mut claims = base.clone();
            claims[name] = value;
            claims
        };
        assert!(refused(&names, &without("partnership")).contains("no `partnership` claim"));
        assert!(refused(&names, &without("roles")).contains("no `roles` claim"));
        assert!(refused(&names, &with("partnership", json!("Lancs"))).contains("GSS code"));
        assert!(refused(&names, &with("agency", json!(7))).contains("agency's id"));
        assert!(refused(&names, &with("roles", json!([1]))).contains("not a list of strings"));
        assert!(refused(&names, &with("roles", json!(["root"]))).contains("role_values"));
        assert!(refused(&names, &with("sub", json!(" "))).contains("sub"));
        // One string of roles separated by spaces is read as a list.
        let spaced = names
            .principal(&with("roles", json!("auditor board_member")))
            .unwrap();
        assert_eq!(spaced.role_names(), ["auditor", "board_member"]);
    }
}
