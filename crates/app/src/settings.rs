//! Layered configuration: `config/default.toml`, then `config/<ATLAS_ENV>.toml`, then a file
//! given with `--config`, then environment variables `ATLAS__SECTION__KEY` (and `DATABASE_URL`).

use std::path::{Path, PathBuf};

use atlas_domain::GssCode;
use atlas_store::DatabaseSettings;
use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

/// The defaults shipped in the binary, used when `config/default.toml` is not on disk.
const EMBEDDED_DEFAULTS: &str = include_str!("../../../config/default.toml");

/// The pseudonym key of `config/development.toml`: published in this repository, so it protects
/// nothing, and the server refuses it outside development.
const DEVELOPMENT_PSEUDONYM_KEY: &str =
    "6465762d6f6e6c792d6b65792d6e6576657220666f722d7265616c2d64617461";

/// The environments (`ATLAS_ENV`) in which the server may run without a secret pseudonym key.
const DEVELOPMENT_ENVIRONMENTS: [&str; 2] = ["development", "test"];

/// Every setting of the service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Settings of the HTTP server.
    pub server: ServerSettings,
    /// Settings of the database connection.
    pub database: DatabaseSettings,
    /// Settings of logging.
    pub log: LogSettings,
    /// Settings of extract uploads.
    pub ingest: IngestSettings,
    /// Settings of caller identity.
    pub auth: AuthSettings,
    /// Settings of the audit trail.
    pub audit: AuditSettings,
    /// Settings of the web application.
    pub web: WebSettings,
    /// Settings of the quarterly problem profiles' schedule.
    pub problem_profiles: ProblemProfileSettings,
    /// Settings of the in-memory record cache the analyses read.
    #[serde(default)]
    pub cache: CacheSettings,
    /// How long case records are kept, by record kind.
    #[serde(default)]
    pub retention: crate::retention::RetentionSettings,
    /// The environment the settings were loaded for: `ATLAS_ENV`, `development` when unset.
    #[serde(skip)]
    pub environment: String,
}

/// The `[cache]` section: the records the analyses read, kept in memory per partnership
/// (docs/operations.md, "Memory").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// The most memory the cached records may take, in bytes (32 bytes a record); the least
    /// recently used partnerships no request is reading leave first.
    pub max_bytes: u64,
    /// Partnerships (GSS codes) loaded before the server reports ready.
    pub warm: Vec<GssCode>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_bytes: crate::cache::DEFAULT_BUDGET_BYTES,
            warm: Vec::new(),
        }
    }
}

/// The `[web]` section: the web application's base map.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// A raster tile URL template (`https://host/{z}/{x}/{y}.png`) drawn under the cells; none by
    /// default, so the map works offline and sends nothing to a third party.
    pub tile_url: Option<String>,
    /// The attribution the tile provider requires, shown on the map.
    pub tile_attribution: String,
    /// Sign-in through the organisation's identity provider (OpenID Connect authorization code
    /// flow with PKCE, run by the page as a public client); none by default.
    pub oidc: Option<OidcSettings>,
}

/// The `[web.oidc]` section: the identity provider the page signs people in with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The provider's authorization endpoint, where the browser is sent to sign in (from the
    /// provider's discovery document when left out and `auth.discovery` is on).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// The provider's token endpoint, where the page exchanges the code for an access token
    /// and refreshes it (the provider must allow this origin: CORS); from the discovery
    /// document when left out and `auth.discovery` is on.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// The page's client id at the provider (a public client: no secret).
    pub client_id: String,
    /// The scopes asked for (`openid` by default; add what the provider needs to issue a
    /// refresh token and an access token for Atlas, such as Entra's `offline_access` and
    /// `api://…/.default`).
    #[serde(default = "default_scope")]
    pub scope: String,
    /// The provider's end-session endpoint (RP-initiated logout): signing out of Atlas goes
    /// there too, so the next person at the browser is not signed in as the last (from the
    /// discovery document when left out and `auth.discovery` is on).
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// The most earlier quarters the profile schedule may reach back to.
pub const MAX_BACKFILL_QUARTERS: u32 = 40;

/// The `[problem_profiles]` section: the server's schedule of quarterly problem profiles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemProfileSettings {
    /// Whether the server generates each partnership's profile of a quarter by itself.
    pub schedule: bool,
    /// Days after a quarter ends before its profile is generated: more than the publication
    /// gate's settling days, so that the board edition's quarter is closed.
    pub days_after_quarter: u32,
    /// How often the schedule looks for profiles due, in seconds.
    pub check_every_secs: u64,
    /// Earlier quarters the schedule also profiles when they have records and no profile (a
    /// new deployment, or records loaded for past quarters); at most
    /// [`MAX_BACKFILL_QUARTERS`].
    pub backfill_quarters: u32,
}

/// What is wrong with a secret key outside development: unset, or the development key
/// `published` in this repository.
fn secret_key_problem(key: Option<&SecretString>, published: &str) -> Option<&'static str> {
    match key {
        None => Some("is not set"),
        Some(key)
            if secrecy::ExposeSecret::expose_secret(key)
                .trim()
                .eq_ignore_ascii_case(published) =>
        {
            Some("is the development key published in the repository")
        }
        Some(_) => None,
    }
}

/// The `[audit]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Append the entries of concurrent requests in one transaction (group commit). Off, every
    /// request commits its own entry; that mode exists to measure the difference.
    pub group_commit: bool,
    /// The most entries one group commit writes.
    pub max_group: usize,
    /// Connections of the audit writer's own pool (`application_name` `atlas-audit`), apart from
    /// the requests' pool, so entries never queue behind handlers for a connection.
    pub connections: usize,
    /// The secret (64 hexadecimal characters) every entry's hash is keyed with (HMAC-SHA256),
    /// held outside the database: someone who can write to the database cannot rewrite the
    /// trail without it. Secret; required outside development.
    pub chain_key: Option<SecretString>,
    /// Where signed checkpoints of every chain's head are written: a directory outside the
    /// database (ideally write-once storage). Unset: no checkpoints, and verification walks
    /// every chain from its start.
    pub checkpoint_dir: Option<PathBuf>,
    /// How often, in seconds, the server verifies the chains from the last checkpoint and
    /// writes a new one (with `checkpoint_dir`).
    pub checkpoint_every_secs: u64,
}

impl AuditSettings {
    /// The chain key, or the development key when none is set.
    ///
    /// # Errors
    /// When the configured key is not 64 hexadecimal characters.
    pub fn chain_key(&self) -> Result<atlas_store::audit::ChainKey, SettingsError> {
        let text = self.chain_key.as_ref().map_or(
            atlas_store::audit::DEVELOPMENT_CHAIN_KEY,
            secrecy::ExposeSecret::expose_secret,
        );
        atlas_store::audit::ChainKey::from_hex(text)
            .map_err(|err| SettingsError(format!("audit.chain_key: {err}")))
    }
}

/// The `[ingest]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Largest upload accepted, in bytes as sent (413 above it).
    pub max_upload_bytes: u64,
    /// Largest share of rejected rows (0 to 1) before the whole extract is refused.
    pub max_rejected_share: f64,
    /// Uploads processed at once; each holds one database connection for its transaction.
    /// Further uploads are answered 503 with `Retry-After`.
    pub max_concurrent_uploads: usize,
    /// The server's own HMAC-SHA256 key (64 hexadecimal characters) with which every pseudonym
    /// is keyed again before it is stored. Secret. Uploads are refused while it is unset.
    pub pseudonym_key: Option<SecretString>,
    /// The slowest an upload body may arrive, in bytes a second averaged over
    /// `body_rate_window_secs`; a slower upload is cut with 408.
    pub min_body_bytes_per_sec: u64,
    /// The window, in seconds, over which `min_body_bytes_per_sec` is averaged.
    pub body_rate_window_secs: u64,
    /// The longest wait, in seconds, for the next chunk of an upload body before it is cut
    /// with 408.
    pub body_idle_timeout_secs: u64,
    /// The longest an upload body may take to arrive whole, in seconds, before it is cut with
    /// 408.
    pub body_deadline_secs: u64,
}

impl IngestSettings {
    /// Whether the pseudonym key is the development key published in this repository.
    #[must_use]
    pub fn has_development_key(&self) -> bool {
        self.pseudonym_key.as_ref().is_some_and(|key| {
            secrecy::ExposeSecret::expose_secret(key)
                .trim()
                .eq_ignore_ascii_case(DEVELOPMENT_PSEUDONYM_KEY)
        })
    }
}

/// The `[auth]` section: how bearer tokens are verified (see docs/access.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry.
    pub audience: String,
    /// A JSON Web Key Set file whose keys verify tokens, selected by `kid`.
    pub jwks_file: Option<PathBuf>,
    /// Public keys in PEM files, each pinned to one algorithm.
    #[serde(default)]
    pub keys: Vec<PemKeySettings>,
    /// Clock leeway for `exp` and `nbf`, in seconds (at most 60).
    pub leeway_secs: u64,
    /// Development only: allow `atlas token issue` and the demo sign-in to sign tokens.
    pub dev_signing: bool,
    /// Development only (with `dev_signing`): a JSON list of demo users and their tokens that
    /// the sign-in page offers; `atlas demo` writes it.
    #[serde(default)]
    pub demo_users_file: Option<PathBuf>,
    /// Refuse (403) callers whose subject administrators have not registered. Registered
    /// subjects are always held to their registration.
    pub require_registration: bool,
    /// Fetch the identity provider's signing keys: its discovery document
    /// (`{issuer}/.well-known/openid-configuration`) names the key set, which is cached as its
    /// cache headers say and fetched again for a token naming an unknown key; the page's
    /// sign-in endpoints come from it too unless `[web.oidc]` names them. `auth.issuer` must
    /// then be an `https://` URL (plain `http://` only on this machine).
    #[serde(default)]
    pub discovery: bool,
    /// PEM certificates of the authorities trusted for the provider's HTTPS, beside the
    /// system's (a council's own CA, say).
    #[serde(default)]
    pub provider_ca_file: Option<PathBuf>,
    /// The shortest time between two fetches of the provider's keys prompted by tokens naming
    /// unknown keys, in seconds: forged key ids cannot make Atlas hammer the provider.
    #[serde(default = "default_min_refresh_secs")]
    pub min_refresh_secs: u64,
    /// Where the identity provider puts the service's claims (`[auth.claims]`: `roles`,
    /// `partnership`, `agency`, `role_values`; docs/access.md).
    #[serde(default)]
    pub claims: atlas_access::token::ClaimNames,
}

/// Migrations are applied at start unless told otherwise.
const fn migrate_on_start_default() -> bool {
    true
}

/// `openid`.
fn default_scope() -> String {
    "openid".to_owned()
}

/// Thirty seconds between fetches for unknown keys.
const fn default_min_refresh_secs() -> u64 {
    30
}

/// One `[[auth.keys]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemKeySettings {
    /// The `kid` tokens signed with this key carry (optional when it is the only key).
    pub kid: Option<String>,
    /// `RS256`, `ES256` or `EdDSA`.
    pub algorithm: String,
    /// The PEM file of the public key.
    pub file: PathBuf,
}

/// The `[server]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0 picks a free one).
    pub port: u16,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of the authorities whose client certificates are accepted; when set,
    /// every TLS client must present one (mutual TLS, for partner instances).
    pub tls_client_ca: Option<PathBuf>,
    /// Refuse everything but `/healthz` and `/readyz` over plain HTTP (production).
    pub require_tls: bool,
    /// A second, plain-HTTP port for load-balancer health checks when serving HTTPS.
    pub plain_port: Option<u16>,
    /// Apply pending migrations at start (true, the default), or only check the schema and
    /// answer `/readyz` 503 until `atlas migrate` has applied them: the choice for many
    /// processes behind a load balancer, migrated once per release.
    #[serde(default = "migrate_on_start_default")]
    pub migrate_on_start: bool,
    /// Requests each authenticated caller may make per second, sustained.
    pub rate_limit_per_second: u32,
    /// Requests each authenticated caller may make in a burst.
    pub rate_limit_burst: u32,
    /// Count each caller's requests in PostgreSQL, across every server process (needed when
    /// several processes serve behind a load balancer; one statement per request), besides the
    /// limit each process keeps in memory.
    #[serde(default)]
    pub rate_limit_shared: bool,
    /// Worker threads (0 means one per core).
    pub workers: usize,
    /// Seconds that in-flight requests get to finish after a stop signal.
    pub shutdown_timeout_secs: u64,
}

/// The `[log]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `atlas_server=debug,info`; `RUST_LOG` overrides it.
    pub filter: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Why settings could not be loaded. The message names the key and where its value came from.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct SettingsError(String);

impl Settings {
    /// Loads the layers in order, each overriding the one before:
    /// 1. `<dir>/default.toml` (or the copy built into the binary when absent);
    /// 2. `<dir>/<ATLAS_ENV>.toml`, where `ATLAS_ENV` defaults to `development` (required when
    ///    `ATLAS_ENV` is set explicitly);
    /// 3. `extra`, the file given with `--config` (required);
    /// 4. environment variables `ATLAS__SECTION__KEY`, and `DATABASE_URL` for `database.url`
    ///    unless `ATLAS__DATABASE__URL` is set.
    ///
    /// `<dir>` is `ATLAS_CONFIG_DIR`, by default `config`.
    ///
    /// # Errors
    /// [`SettingsError`] naming the file or key at fault.
    pub fn load(extra: Option<&Path>) -> Result<Self, SettingsError> {
        let dir = std::env::var_os("ATLAS_CONFIG_DIR")
            .map_or_else(|| PathBuf::from("config"), PathBuf::from);
        let explicit_env = std::env::var("ATLAS_ENV").ok();
        let environment = explicit_env
            .clone()
            .unwrap_or_else(|| "development".to_owned());
        let defaults = dir.join("default.toml");
        let mut builder = Config::builder();
        builder = if defaults.is_file() {
            builder.add_source(File::from(defaults))
        } else {
            builder.add_source(File::from_str(EMBEDDED_DEFAULTS, FileFormat::Toml))
        };
        let environment_file = dir.join(format!("{environment}.toml"));
        if explicit_env.is_some() && !environment_file.is_file() {
            return Err(SettingsError(format!(
                "ATLAS_ENV is `{environment}` but {} does not exist",
                environment_file.display()
            )));
        }
        builder = builder.add_source(File::from(environment_file).required(false));
        if let Some(extra) = extra {
            if !extra.is_file() {
                return Err(SettingsError(format!(
                    "{} does not exist or is not a file",
                    extra.display()
                )));
            }
            builder = builder.add_source(File::from(extra.to_path_buf()));
        }
        builder = builder.add_source(
            Environment::with_prefix("ATLAS")
                .prefix_separator("__")
                .separator("__"),
        );
        if std::env::var_os("ATLAS__DATABASE__URL").is_none() {
            builder = builder
                .set_override_option("database.url", std::env::var("DATABASE_URL").ok())
                .map_err(|err| SettingsError(err.to_string()))?;
        }
        let mut settings: Self = builder
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|err| SettingsError(err.to_string()))?;
        settings.environment = environment;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses, outside development and tests, to run without a pseudonym key and an audit
    /// chain key of the instance's own: an unset key, or a development key published in this
    /// repository.
    ///
    /// # Errors
    /// [`SettingsError`] saying which, and how to set a key.
    pub fn check_keys(&self) -> Result<(), SettingsError> {
        if DEVELOPMENT_ENVIRONMENTS.contains(&self.environment.as_str()) {
            return Ok(());
        }
        if let Some(problem) = secret_key_problem(
            self.ingest.pseudonym_key.as_ref(),
            DEVELOPMENT_PSEUDONYM_KEY,
        ) {
            return Err(SettingsError(format!(
                "ingest.pseudonym_key {problem}, and ATLAS_ENV is `{}`: set a secret key of this \
                 instance's own (64 hexadecimal characters, such as `openssl rand -hex 32` makes) \
                 with ATLAS__INGEST__PSEUDONYM_KEY",
                self.environment
            )));
        }
        self.check_chain_key()
    }

    /// Refuses, outside development and tests, to touch the audit trail without a chain key of
    /// the instance's own (every command that appends to it or verifies it asks): entries keyed
    /// with the published development key would break the instance's chains.
    ///
    /// # Errors
    /// [`SettingsError`] saying what is wrong, and how to set the key.
    pub fn check_chain_key(&self) -> Result<(), SettingsError> {
        if DEVELOPMENT_ENVIRONMENTS.contains(&self.environment.as_str()) {
            return Ok(());
        }
        if let Some(problem) = secret_key_problem(
            self.audit.chain_key.as_ref(),
            atlas_store::audit::DEVELOPMENT_CHAIN_KEY,
        ) {
            return Err(SettingsError(format!(
                "audit.chain_key {problem}, and ATLAS_ENV is `{}`: set a secret key of this \
                 instance's own (64 hexadecimal characters, such as `openssl rand -hex 32` makes) \
                 with ATLAS__AUDIT__CHAIN_KEY, and keep it outside the database",
                self.environment
            )));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if let Some(key) = &self.ingest.pseudonym_key
            && let Err(err) = atlas_ingest::pseudonym::PseudonymKey::from_hex(
                secrecy::ExposeSecret::expose_secret(key),
            )
        {
            return Err(SettingsError(format!("ingest.pseudonym_key: {err}")));
        }
        let settle = atlas_analytics::gate::SETTLE_DAYS;
        if u64::from(self.problem_profiles.days_after_quarter) <= settle {
            return Err(SettingsError(format!(
                "problem_profiles.days_after_quarter is {}: it must be more than {settle}, the days \
                 after a quarter ends before its figures may leave a partnership",
                self.problem_profiles.days_after_quarter
            )));
        }
        if self.problem_profiles.backfill_quarters > MAX_BACKFILL_QUARTERS {
            return Err(SettingsError(format!(
                "problem_profiles.backfill_quarters is {}: at most {MAX_BACKFILL_QUARTERS} \
                 (ten years) earlier quarters are profiled",
                self.problem_profiles.backfill_quarters
            )));
        }
        if self.problem_profiles.check_every_secs == 0 {
            return Err(SettingsError(
                "problem_profiles.check_every_secs must be at least 1".to_owned(),
            ));
        }
        self.retention.check().map_err(SettingsError)?;
        self.audit.chain_key()?;
        if self.audit.checkpoint_every_secs == 0 {
            return Err(SettingsError(
                "audit.checkpoint_every_secs must be at least 1".to_owned(),
            ));
        }
        if self.auth.min_refresh_secs == 0 {
            return Err(SettingsError(
                "auth.min_refresh_secs must be at least 1: it bounds how often tokens naming unknown keys make Atlas fetch the provider's keys".to_owned(),
            ));
        }
        if let Some((value, role)) = self
            .auth
            .claims
            .role_values
            .iter()
            .find(|(_, role)| atlas_access::Role::parse(role).is_none())
        {
            return Err(SettingsError(format!(
                "auth.claims.role_values: `{value}` maps to `{role}`, which is not a role of Atlas"
            )));
        }
        if self.auth.discovery {
            endpoint_origin(&self.auth.issuer).map_err(|err| {
                SettingsError(format!(
                    "auth.issuer: {err} (auth.discovery fetches keys from it)"
                ))
            })?;
        }
        if let Some(oidc) = &self.web.oidc {
            if !self.auth.discovery
                && (oidc.authorization_endpoint.is_none() || oidc.token_endpoint.is_none())
            {
                return Err(SettingsError(
                    "web.oidc needs authorization_endpoint and token_endpoint, or auth.discovery = true to read them from the provider".to_owned(),
                ));
            }
            for (name, url) in [
                (
                    "authorization_endpoint",
                    oidc.authorization_endpoint.as_ref(),
                ),
                ("token_endpoint", oidc.token_endpoint.as_ref()),
                ("end_session_endpoint", oidc.end_session_endpoint.as_ref()),
            ] {
                let Some(url) = url else { continue };
                endpoint_origin(url)
                    .map_err(|err| SettingsError(format!("web.oidc.{name}: {err}")))?;
            }
            if oidc.client_id.trim().is_empty() {
                return Err(SettingsError("web.oidc.client_id is empty".to_owned()));
            }
        }
        if let Some(url) = &self.web.tile_url {
            tile_origin(url).map_err(|err| SettingsError(format!("web.tile_url: {err}")))?;
        }
        if !(0.0..=1.0).contains(&self.ingest.max_rejected_share) {
            return Err(SettingsError(
                "ingest.max_rejected_share must be between 0 and 1".to_owned(),
            ));
        }
        if self.auth.leeway_secs > atlas_access::token::MAX_LEEWAY_SECS {
            return Err(SettingsError(format!(
                "auth.leeway_secs is {}; at most {} is allowed",
                self.auth.leeway_secs,
                atlas_access::token::MAX_LEEWAY_SECS
            )));
        }
        if self.auth.dev_signing && self.server.require_tls {
            return Err(SettingsError(
                "auth.dev_signing is for development only and cannot be on with server.require_tls"
                    .to_owned(),
            ));
        }
        if self.server.rate_limit_per_second == 0 || self.server.rate_limit_burst == 0 {
            return Err(SettingsError(
                "server.rate_limit_per_second and server.rate_limit_burst must be at least 1"
                    .to_owned(),
            ));
        }
        if self.server.tls_client_ca.is_some() && self.server.tls_cert.is_none() {
            return Err(SettingsError(
                "server.tls_client_ca needs server.tls_cert and server.tls_key".to_owned(),
            ));
        }
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(_), None) => Err(SettingsError(
                "server.tls_cert is set but server.tls_key is not".to_owned(),
            )),
            (None, Some(_)) => Err(SettingsError(
                "server.tls_key is set but server.tls_cert is not".to_owned(),
            )),
            _ => Ok(()),
        }
    }
}

/// The scheme, host and port of an absolute URL the page may reach, for its CSP.
///
/// # Errors
/// When it is not an absolute `https://` or `http://` URL with a fixed host, or holds characters
/// that could break out of the policy or the page.
pub fn endpoint_origin(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .map(|rest| ("https://", rest))
        .or_else(|| url.strip_prefix("http://").map(|rest| ("http://", rest)));
    let Some((scheme, rest)) = rest else {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    };
    if url.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, ';' | ',' | '"' | '\'' | '<' | '>' | '\\' | '*' | '@')
    }) {
        return Err(format!("`{url}` holds a character not allowed here"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('{') {
        return Err(format!("`{url}` names no fixed host"));
    }
    if host.starts_with('[') {
        // A CSP source cannot name an IPv6 literal: the browser would ignore it.
        return Err(format!(
            "`{url}` names an IPv6 address, which a Content Security Policy cannot allow; use a host name"
        ));
    }
    let name = match host.split_once(':') {
        Some((name, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => name,
        Some(_) => return Err(format!("`{url}` has a port that is not a number")),
        None => host,
    };
    if scheme == "http://" && !matches!(name, "localhost" | "127.0.0.1") {
        return Err(format!(
            "`{url}` must use https:// (plain http:// only on this machine)"
        ));
    }
    Ok(format!("{scheme}{host}"))
}

/// The origin of a tile URL template, for the page's CSP.
///
/// # Errors
/// As [`endpoint_origin`], and when it lacks `{z}`, `{x}` or `{y}`.
pub fn tile_origin(url: &str) -> Result<String, String> {
    if ["{z}", "{x}", "{y}"].iter().any(|part| !url.contains(part)) {
        return Err(format!("`{url}` must contain {{z}}, {{x}} and {{y}}"));
    }
    endpoint_origin(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_key_is_the_one_config_development_toml_publishes() {
        let published = include_str!("../../../config/development.toml");
        assert!(published.contains(&format!("pseudonym_key = \"{DEVELOPMENT_PSEUDONYM_KEY}\"")));
    }

    #[test]
    fn outside_development_the_server_needs_a_pseudonym_key_of_its_own() {
        let mut settings = Settings::load(None).unwrap();
        let check = |settings: &Settings| settings.check_keys().map_err(|err| err.to_string());
        let key = |hex: &str| Some(SecretString::from(hex.to_owned()));
        for environment in ["development", "test"] {
            settings.environment = environment.to_owned();
            for pseudonym_key in [None, key(DEVELOPMENT_PSEUDONYM_KEY)] {
                settings.ingest.pseudonym_key = pseudonym_key;
                assert_eq!(check(&settings), Ok(()));
            }
        }
        settings.environment = "production".to_owned();
        settings.ingest.pseudonym_key = None;
        let unset = check(&settings).unwrap_err();
        assert!(
            unset.starts_with(
                "configuration: ingest.pseudonym_key is not set, and ATLAS_ENV is `production`"
            ),
            "{unset}"
        );
        settings.ingest.pseudonym_key = key(&DEVELOPMENT_PSEUDONYM_KEY.to_uppercase());
        let published = check(&settings).unwrap_err();
        assert!(
            published.starts_with(
                "configuration: ingest.pseudonym_key is the development key published in the repository"
            ),
            "{published}"
        );
        settings.ingest.pseudonym_key = key(&"07".repeat(32));
        // And an audit chain key of its own.
        let unset = check(&settings).unwrap_err();
        assert!(
            unset.starts_with("configuration: audit.chain_key is not set"),
            "{unset}"
        );
        settings.audit.chain_key = key(atlas_store::audit::DEVELOPMENT_CHAIN_KEY);
        let published = check(&settings).unwrap_err();
        assert!(
            published.starts_with(
                "configuration: audit.chain_key is the development key published in the repository"
            ),
            "{published}"
        );
        settings.audit.chain_key = key(&"08".repeat(32));
        assert_eq!(check(&settings), Ok(()));
    }

    #[test]
    fn a_tile_url_gives_its_origin_or_a_reason() {
        assert_eq!(
            tile_origin("https://tile.example.org:8443/{z}/{x}/{y}.png"),
            Ok("https://tile.example.org:8443".to_owned())
        );
        for (url, reason) in [
            ("ftp://tile.example.org/{z}/{x}/{y}.png", "http"),
            ("https://tile.example.org/{z}/{x}.png", "{y}"),
            ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "fixed host"),
            (
                "https://tile.example.org/{z}/{x}/{y}.png; script-src *",
                "not allowed",
            ),
            (
                "https://tile.example.org/{z}/{x}/{y}.png\"><script>",
                "not allowed",
            ),
        ] {
            let err = tile_origin(url).unwrap_err();
            assert!(err.contains(reason), "{url}: {err}");
        }
    }

    #[test]
    fn an_endpoint_gives_its_origin_only_when_safe_to_allow() {
        assert_eq!(
            endpoint_origin("https://idp.example.org/realms/atlas/token?x=1"),
            Ok("https://idp.example.org".to_owned())
        );
        assert_eq!(
            endpoint_origin("http://127.0.0.1:8081/token"),
            Ok("http://127.0.0.1:8081".to_owned())
        );
        for (url, reason) in [
            ("javascript:alert(1)", "not an http"),
            ("http://idp.example.org/token", "https"),
            ("https://user:secret@idp.example.org/token", "not allowed"),
            ("https://*/token", "not allowed"),
            ("https://idp.example.org\\@evil/token", "not allowed"),
            ("http://[::1]:8443/token", "IPv6"),
            ("https://idp.example.org:abc/token", "port"),
            ("https://idp.example.org:/token", "port"),
        ] {
            let err = endpoint_origin(url).unwrap_err();
            assert!(err.contains(reason), "{url}: {err}");
        }
    }
}
