//! The keys that verify callers' tokens, kept current: from files (a JWKS file, PEM keys, read
//! again on SIGHUP and on the refresh schedule) and from the organisation's identity provider
//! (OpenID Connect discovery: `{issuer}/.well-known/openid-configuration` names the
//! `jwks_uri`), fetched over HTTPS, cached as long as the provider's cache headers say, fetched
//! again when a token names a key not yet known (at most once per `auth.min_refresh_secs`,
//! whoever asks, so forged key ids cannot make the server hammer the provider), and kept when the
//! provider cannot be reached (docs/access.md, "Keys from the provider").

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use atlas_access::token::{
    ClaimNames, TokenVerifier, VerificationKey, keys_from_jwks, keys_from_provider,
};
use atlas_app::settings::{AuthSettings, PemKeySettings, endpoint_origin};
use serde::Deserialize;

/// The largest discovery document or key set read from a provider.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// How long keys are cached when the provider's answer says nothing.
const DEFAULT_CACHE: Duration = Duration::from_secs(3600);

/// The shortest and longest a provider's cache header is taken to allow.
const CACHE_BOUNDS: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(86_400));

/// How soon a failed fetch is tried again (doubling up to [`CACHE_BOUNDS`]'s longest).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// How long a request naming an unknown key waits for a load already under way before it is
/// answered with the keys known (a provider that does not answer cannot hold requests).
const UNKNOWN_KEY_PATIENCE: Duration = Duration::from_secs(3);

/// What the provider's discovery document says, as far as Atlas uses it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer: must equal `auth.issuer`.
    pub issuer: String,
    /// Where its signing keys are published.
    pub jwks_uri: String,
    /// Where browsers sign in.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Where codes and refresh tokens are exchanged.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Where browsers end their session (RP-initiated logout).
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// How current the trusted keys are, for `/readyz` and the log.
#[derive(Debug, Clone, Default)]
pub struct KeyStatus {
    /// The provider's discovery document, once its keys are in use.
    pub metadata: Option<ProviderMetadata>,
    /// When the keys in use were loaded (with the provider's, when it is used).
    pub loaded_at: Option<SystemTime>,
    /// Why the last load failed, when it did (cleared by a success); the keys loaded before
    /// stay in use.
    pub failing: Option<String>,
}

/// The key material last read successfully: the files' contents and the provider's key set.
#[derive(Debug, Clone, Default)]
struct Material {
    jwks_file: Option<Arc<str>>,
    pem_keys: Vec<(Option<String>, String, Arc<[u8]>)>,
    provider: Option<Arc<str>>,
}

/// The trusted keys and where they come from; shared by every worker.
pub struct KeyRing {
    issuer: String,
    audience: String,
    leeway_secs: u64,
    claims: ClaimNames,
    jwks_file: Option<PathBuf>,
    pem_keys: Vec<PemKeySettings>,
    provider: Option<Provider>,
    min_refresh: Duration,
    /// The verifier of the keys last loaded (none when no key is known).
    verifier: RwLock<Option<Arc<TokenVerifier>>>,
    /// What those keys were made from, each part kept until a later read of it succeeds.
    material: RwLock<Material>,
    status: RwLock<KeyStatus>,
    /// Held while keys are loaded (one load at a time), with when the last load began.
    loading: tokio::sync::Mutex<Option<Instant>>,
}

/// The identity provider keys are fetched from.
struct Provider {
    client: reqwest::Client,
    discovery_url: String,
}

impl KeyRing {
    /// The key ring `auth` describes, with its files read (not yet the provider's keys: see
    /// [`KeyRing::start`]).
    ///
    /// # Errors
    /// When a key file cannot be read or holds an unacceptable key, or the provider's CA file
    /// cannot be read.
    pub fn new(auth: &AuthSettings) -> anyhow::Result<Self> {
        let provider = if auth.discovery {
            let mut client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::limited(3))
                .https_only(auth.issuer.starts_with("https://"));
            if let Some(path) = &auth.provider_ca_file {
                let pem = std::fs::read(path).map_err(|err| {
                    anyhow::anyhow!("auth.provider_ca_file {}: {err}", path.display())
                })?;
                for certificate in reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| {
                    anyhow::anyhow!("auth.provider_ca_file {}: {err}", path.display())
                })? {
                    client = client.add_root_certificate(certificate);
                }
            }
            Some(Provider {
                client: client.build()?,
                discovery_url: format!(
                    "{}/.well-known/openid-configuration",
                    auth.issuer.trim_end_matches('/')
                ),
            })
        } else {
            None
        };
        let ring = Self {
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            leeway_secs: auth.leeway_secs,
            claims: auth.claims.clone(),
            jwks_file: auth.jwks_file.clone(),
            pem_keys: auth.keys.clone(),
            provider,
            min_refresh: Duration::from_secs(auth.min_refresh_secs),
            verifier: RwLock::new(None),
            material: RwLock::new(Material::default()),
            status: RwLock::new(KeyStatus::default()),
            loading: tokio::sync::Mutex::new(None),
        };
        let (jwks_file, pem_keys) = ring.read_files()?;
        let material = Material {
            jwks_file,
            pem_keys,
            provider: None,
        };
        let verifier = ring.verifier_of(&material)?;
        ring.keep(material, verifier);
        if ring.provider.is_none() && ring.current().is_none() {
            tracing::warn!(
                "no token verification keys are configured (auth.jwks_file, auth.keys, \
                 auth.discovery): every request for data will be answered 401"
            );
        }
        Ok(ring)
    }

    /// Loads the provider's keys now, then keeps every key current in the background: again
    /// when the provider's cache time runs out (sooner after a failure), and on SIGHUP.
    pub fn start(self: &Arc<Self>) {
        if self.provider.is_none() && self.jwks_file.is_none() && self.pem_keys.is_empty() {
            return;
        }
        let ring = Arc::clone(self);
        tokio::spawn(async move {
            let mut failures = 0_u32;
            loop {
                let wait = match ring.reload(true).await {
                    Ok(cache) => {
                        failures = 0;
                        cache
                    }
                    Err(()) => {
                        failures = failures.saturating_add(1);
                        RETRY_AFTER_FAILURE
                            .saturating_mul(2_u32.saturating_pow(failures - 1))
                            .min(CACHE_BOUNDS.1)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
        #[cfg(unix)]
        {
            let ring = Arc::clone(self);
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                    return;
                };
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the token verification keys");
                    let _ = ring.reload(true).await;
                }
            });
        }
    }

    /// The verifier of the keys known now.
    #[must_use]
    pub fn current(&self) -> Option<Arc<TokenVerifier>> {
        self.verifier
            .read()
            .map(|verifier| verifier.clone())
            .unwrap_or_default()
    }

    /// How current the keys are.
    #[must_use]
    pub fn status(&self) -> KeyStatus {
        self.status
            .read()
            .map(|status| status.clone())
            .unwrap_or_default()
    }

    /// Whether keys come from the identity provider.
    #[must_use]
    pub fn uses_provider(&self) -> bool {
        self.provider.is_some()
    }

    /// For a token naming a key not known: loads the keys again unless a load began less than
    /// `auth.min_refresh_secs` ago; a caller arriving while a load is under way waits for it
    /// at most 3 s and shares it. Returns the verifier then.
    pub async fn refresh_for_unknown_key(&self) -> Option<Arc<TokenVerifier>> {
        if self.provider.is_some() || self.jwks_file.is_some() || !self.pem_keys.is_empty() {
            let _ = self.reload(false).await;
        }
        self.current()
    }

    /// Loads every key again (the provider's too): at once when `forced` (the schedule,
    /// SIGHUP), else only when no load began in the last `min_refresh`. Each source read
    /// successfully replaces what it gave before; one that fails leaves its last good keys in
    /// use, as does a set of keys that cannot be trusted together. Returns how long the
    /// provider's keys may be cached, or `Err` when anything failed (said in the status).
    async fn reload(&self, forced: bool) -> Result<Duration, ()> {
        let mut last = if forced {
            self.loading.lock().await
        } else {
            match tokio::time::timeout(UNKNOWN_KEY_PATIENCE, self.loading.lock()).await {
                Ok(last) => last,
                Err(_) => return Ok(self.min_refresh),
            }
        };
        if !forced && last.is_some_and(|began| began.elapsed() < self.min_refresh) {
            return Ok(self.min_refresh);
        }
        *last = Some(Instant::now());
        let mut material = self
            .material
            .read()
            .map(|material| material.clone())
            .unwrap_or_default();
        let mut failures = Vec::new();
        match self.read_files() {
            Ok((jwks_file, pem_keys)) => {
                material.jwks_file = jwks_file;
                material.pem_keys = pem_keys;
            }
            Err(err) => failures.push(err.to_string()),
        }
        let mut cache = DEFAULT_CACHE;
        let mut metadata = None;
        if let Some(provider) = &self.provider {
            match self.fetch(provider).await {
                Ok((found, document, max_age)) => {
                    cache = max_age.map_or(DEFAULT_CACHE, |age| {
                        age.clamp(CACHE_BOUNDS.0, CACHE_BOUNDS.1)
                    });
                    material.provider = Some(Arc::from(document.as_str()));
                    metadata = Some(found);
                }
                Err(reason) => failures.push(reason),
            }
        }
        match self.verifier_of(&material) {
            Ok(verifier) => {
                self.keep(material, verifier);
                if let Ok(mut status) = self.status.write() {
                    if metadata.is_some() {
                        status.metadata = metadata;
                    }
                    status.loaded_at = Some(SystemTime::now());
                }
            }
            Err(err) => failures.push(err.to_string()),
        }
        let failing = (!failures.is_empty()).then(|| failures.join("; "));
        if let Some(reason) = &failing {
            tracing::warn!(%reason, "the token verification keys could not all be loaded again; the keys loaded before stay in use");
        }
        let failed = failing.is_some();
        if let Ok(mut status) = self.status.write() {
            status.failing = failing;
        }
        if failed { Err(()) } else { Ok(cache) }
    }

    /// Reads the discovery document and the key set it names; checks the issuer and that the
    /// set holds a usable key. Returns the key set's text and its cache lifetime.
    async fn fetch(
        &self,
        provider: &Provider,
    ) -> Result<(ProviderMetadata, String, Option<Duration>), String> {
        let (text, _) = read(&provider.client, &provider.discovery_url).await?;
        let metadata: ProviderMetadata = serde_json::from_str(&text).map_err(|err| {
            format!(
                "{}: not a discovery document: {err}",
                provider.discovery_url
            )
        })?;
        if metadata.issuer != self.issuer {
            return Err(format!(
                "{} names the issuer `{}`, not auth.issuer `{}`",
                provider.discovery_url, metadata.issuer, self.issuer
            ));
        }
        endpoint_origin(&metadata.jwks_uri)
            .map_err(|err| format!("the provider's jwks_uri: {err}"))?;
        let (document, max_age) = read(&provider.client, &metadata.jwks_uri).await?;
        let (_, skipped) =
            keys_from_provider(&document).map_err(|err| format!("{}: {err}", metadata.jwks_uri))?;
        if !skipped.is_empty() {
            tracing::debug!(?skipped, "keys of the provider's set not used for tokens");
        }
        Ok((metadata, document, max_age))
    }

    /// The contents of the configured key files.
    #[expect(clippy::type_complexity, reason = "read once, parsed in verifier_of")]
    fn read_files(
        &self,
    ) -> anyhow::Result<(Option<Arc<str>>, Vec<(Option<String>, String, Arc<[u8]>)>)> {
        let jwks_file = match &self.jwks_file {
            Some(path) => Some(Arc::from(std::fs::read_to_string(path).map_err(|err| {
                anyhow::anyhow!("auth.jwks_file {}: {err}", path.display())
            })?)),
            None => None,
        };
        let pem_keys = self
            .pem_keys
            .iter()
            .map(|key| {
                let pem = std::fs::read(&key.file)
                    .map_err(|err| anyhow::anyhow!("auth.keys {}: {err}", key.file.display()))?;
                Ok((key.kid.clone(), key.algorithm.clone(), Arc::from(pem)))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok((jwks_file, pem_keys))
    }

    /// The verifier trusting the keys of `material` (none when it holds none). A provider's
    /// key replaces a file's key with the same `kid` (a copy of the provider's set kept in a
    /// file, say).
    fn verifier_of(&self, material: &Material) -> anyhow::Result<Option<Arc<TokenVerifier>>> {
        let mut keys: Vec<VerificationKey> = match &material.provider {
            Some(document) => keys_from_provider(document)?.0,
            None => Vec::new(),
        };
        let from_provider: Vec<Option<String>> = keys
            .iter()
            .map(|key| key.kid().map(ToOwned::to_owned))
            .collect();
        let mut file_keys = Vec::new();
        if let (Some(document), Some(path)) = (&material.jwks_file, &self.jwks_file) {
            file_keys.extend(
                keys_from_jwks(document)
                    .map_err(|err| anyhow::anyhow!("auth.jwks_file {}: {err}", path.display()))?,
            );
        }
        for (kid, algorithm, pem) in &material.pem_keys {
            file_keys.push(
                VerificationKey::from_pem(kid.clone(), algorithm, pem)
                    .map_err(|err| anyhow::anyhow!("auth.keys ({algorithm}): {err}"))?,
            );
        }
        keys.extend(file_keys.into_iter().filter(|key| {
            key.kid().is_none() || !from_provider.contains(&key.kid().map(ToOwned::to_owned))
        }));
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(
            TokenVerifier::new(
                keys,
                self.issuer.clone(),
                self.audience.clone(),
                self.leeway_secs,
                self.claims.clone(),
            )
            .map_err(|err| anyhow::anyhow!("auth: {err}"))?,
        )))
    }

    /// Trusts `verifier`, made from `material`.
    fn keep(&self, material: Material, verifier: Option<Arc<TokenVerifier>>) {
        if let Ok(mut kept) = self.material.write() {
            *kept = material;
        }
        if let Ok(mut current) = self.verifier.write() {
            *current = verifier;
        }
    }
}

/// GETs `url` and returns its body (at most [`MAX_DOCUMENT_BYTES`]) and how long its
/// `Cache-Control: max-age` lets it be cached.
async fn read(client: &reqwest::Client, url: &str) -> Result<(String, Option<Duration>), String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| format!("{url}: {err}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let max_age = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .and_then(max_age);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| format!("{url}: {err}"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).map_err(|_| format!("{url}: not UTF-8"))?;
    Ok((text, max_age))
}

/// The `max-age` of a `Cache-Control` header (none with `no-store` or `no-cache`).
fn max_age(header: &str) -> Option<Duration> {
    let directives: Vec<String> = header
        .split(',')
        .map(|directive| directive.trim().to_ascii_lowercase())
        .collect();
    if directives
        .iter()
        .any(|directive| directive == "no-store" || directive == "no-cache")
    {
        return Some(Duration::ZERO);
    }
    directives
        .iter()
        .find_map(|directive| directive.strip_prefix("max-age="))
        .and_then(|seconds| seconds.trim_matches('"').parse().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_headers_are_read() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            max_age("max-age=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("private"), None);
    }
}
