//! Building and running the server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, Service as _, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{App, HttpMessage as _, HttpResponse, HttpServer, web};
use actix_web_prom::PrometheusMetricsBuilder;
use atlas_store::{Database, StoreError};
use secrecy::ExposeSecret as _;
use tracing_actix_web::{RequestId, TracingLogger};

use crate::audit::{self, AuditWriter};
use crate::auth::Authenticator;
use crate::identity::KeyRing;
use crate::query_audit::QueryAudit;
use crate::security::{self, TransportPolicy};
use atlas_app::Settings;

use crate::{ApiError, openapi, routes, tls};
use atlas_app::analysis::AnalysisMetrics;
use atlas_app::key_guard::KeyGuard;
use atlas_app::{Analyses, RecordCache};
use atlas_ingest::pseudonym::PseudonymKey;

/// The largest JSON request body accepted (administration requests are small).
const MAX_JSON_BODY: usize = 64 * 1024;

/// The `endpoint` label of every request that matched no route: labels name route templates
/// only, so no path a caller makes up (or a token put in one) reaches `/metrics`.
const UNMATCHED_ENDPOINT: &str = "unmatched";

/// How the audit writer's own connections show in `pg_stat_activity`.
const AUDIT_APPLICATION: &str = "atlas-audit";

/// The longest pause between attempts to migrate while PostgreSQL is unreachable.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    plain_port: Option<u16>,
    tls: bool,
    server: Server,
}

impl Application {
    /// Binds the listener and prepares the server. PostgreSQL need not be up: the server starts
    /// anyway, `/readyz` answers 503 until the database answers and the embedded migrations are
    /// applied, and a background task keeps trying to apply them, saying why it waits.
    ///
    /// # Errors
    /// When, outside development, the pseudonym key is unset or the published development key
    /// ([`Settings::check_keys`]); when the address cannot be bound, the database URL is
    /// invalid or the TLS files are unusable.
    pub fn build(settings: &Settings) -> anyhow::Result<Self> {
        settings.check_keys()?;
        atlas_app::audit_trail::use_chain_key(&settings.audit).map_err(anyhow::Error::msg)?;
        let database = Database::new(&settings.database)?;
        let target = database.target();
        if !atlas_store::tls::verifies_fully(settings.database.url.expose_secret())
            && !["localhost:", "127.0.0.1:", "/"]
                .iter()
                .any(|local| target.starts_with(local))
        {
            tracing::warn!(
                %target,
                "database.url does not ask to verify PostgreSQL's certificate: add \
                 sslmode=verify-full (and sslrootcert=<its CA> unless the system trusts it)"
            );
        }
        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind(address).map_err(|err| {
            anyhow::anyhow!("cannot listen on {}:{}: {err}", address.0, address.1)
        })?;
        let port = listener.local_addr()?.port();
        let metrics = PrometheusMetricsBuilder::new("atlas")
            .endpoint("/metrics")
            .mask_unmatched_patterns(UNMATCHED_ENDPOINT)
            .build()
            .map_err(|err| anyhow::anyhow!("metrics registry: {err}"))?;
        let query_audit = web::Data::new(
            QueryAudit::register(&metrics.registry)
                .map_err(|err| anyhow::anyhow!("metrics registry: {err}"))?,
        );
        let analysis_metrics = AnalysisMetrics::register(&metrics.registry)
            .map_err(|err| anyhow::anyhow!("metrics registry: {err}"))?;
        let key_guard = Arc::new(KeyGuard::new(
            settings
                .ingest
                .pseudonym_key
                .as_ref()
                .and_then(|key| PseudonymKey::from_hex(key.expose_secret()).ok())
                .as_ref(),
        ));
        if settings.server.migrate_on_start {
            tokio::spawn(apply_migrations(database.clone(), Arc::clone(&key_guard)));
        } else {
            tokio::spawn(check_key_once_migrated(
                database.clone(),
                Arc::clone(&key_guard),
            ));
        }
        let key_guard = web::Data::from(key_guard);
        if settings.ingest.pseudonym_key.is_none() {
            tracing::warn!("ingest.pseudonym_key is not set: uploads will be refused");
        } else if settings.ingest.has_development_key() {
            tracing::warn!(
                "ingest.pseudonym_key is the development key published in the repository: \
                 never upload real records to this instance"
            );
        }
        let data = web::Data::new(database);
        let ingest = web::Data::new(settings.ingest.clone());
        let problem_profiles = web::Data::new(settings.problem_profiles.clone());
        let retention = web::Data::new(settings.retention.clone());
        let upload_slots = web::Data::new(routes::extracts::UploadSlots::new(
            settings.ingest.max_concurrent_uploads,
        ));
        let keys = Arc::new(KeyRing::new(&settings.auth)?);
        keys.start();
        let authenticator = web::Data::new(Authenticator::new(
            Arc::clone(&keys),
            &settings.auth,
            &settings.server,
        ));
        let keys = web::Data::from(keys);
        if settings.retention.schedule && !settings.retention.keep_years.is_empty() {
            tokio::spawn(atlas_app::retention::run_schedule(
                data.get_ref().clone(),
                settings.retention.clone(),
            ));
        }
        if settings.server.rate_limit_shared {
            let database = data.get_ref().clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    if let Ok(mut conn) = database.connection().await
                        && let Err(err) = atlas_store::rate_limits::forget_quiet(&mut conn).await
                    {
                        tracing::debug!(error = %err, "quiet callers' rate limits not yet forgotten");
                    }
                }
            });
        }
        // Appends queue for the chain's lock by design: no lock timeout on the writer's own
        // connections (their statements are still limited).
        let audit_database = Database::new(&atlas_store::DatabaseSettings {
            lock_timeout_secs: 0,
            ..settings
                .database
                .for_pool(AUDIT_APPLICATION, settings.audit.connections.max(1))
        })?;
        let audit_writer = web::Data::new(AuditWriter::start(audit_database, &settings.audit));
        let checkpoints = web::Data::new(routes::audit::Checkpoints::new(
            settings.audit.checkpoint_dir.clone(),
        ));
        if settings.audit.checkpoint_dir.is_none() && settings.environment != "development" {
            tracing::warn!(
                "audit.checkpoint_dir is not set: no checkpoints of the audit chains are kept \
                 outside the database, so a chain cut short at its end would not be noticed"
            );
        }
        if let Some(dir) = &settings.audit.checkpoint_dir {
            tokio::spawn(atlas_app::audit_trail::run_schedule(
                data.get_ref().clone(),
                dir.clone(),
                Duration::from_secs(settings.audit.checkpoint_every_secs),
            ));
        }
        let record_cache = Arc::new(RecordCache::new(settings.cache.max_bytes));
        atlas_app::cache::CacheMetrics::register(Arc::clone(&record_cache), &metrics.registry)
            .map_err(|err| anyhow::anyhow!("metrics registry: {err}"))?;
        if !settings.cache.warm.is_empty() {
            let (cache, database, warm) = (
                Arc::clone(&record_cache),
                data.get_ref().clone(),
                settings.cache.warm.clone(),
            );
            cache.begin_warming();
            tokio::spawn(async move { cache.warm(&database, &warm).await });
        }
        let analyses = web::Data::new(Analyses::new(
            data.get_ref().clone(),
            Arc::clone(&record_cache),
            analysis_metrics,
        ));
        let record_cache = web::Data::from(record_cache);
        if settings.problem_profiles.schedule {
            tokio::spawn(atlas_app::profiles::run_schedule(
                analyses.get_ref().clone(),
                settings.problem_profiles.clone(),
            ));
        }
        let demo_users = web::Data::new(crate::web::DemoUsers(
            settings
                .auth
                .dev_signing
                .then(|| settings.auth.demo_users_file.clone())
                .flatten(),
        ));
        let page = web::Data::new(crate::web::Page::new(&settings.web));
        let transport = web::Data::new(TransportPolicy {
            require_tls: settings.server.require_tls,
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(audit::record))
                .wrap(ErrorHandlers::new().default_handler(json_error_body))
                .wrap_fn(|request, service| {
                    let request_id = request
                        .extensions()
                        .get::<RequestId>()
                        .map(ToString::to_string);
                    let response = service.call(request);
                    async move {
                        let mut response = response.await?;
                        if let Some(value) =
                            request_id.and_then(|id| HeaderValue::from_str(&id).ok())
                        {
                            response
                                .headers_mut()
                                .insert(HeaderName::from_static("x-request-id"), value);
                        }
                        Ok(response)
                    }
                })
                .wrap(from_fn(crate::access_log::log))
                .wrap(TracingLogger::default())
                .wrap(metrics.clone())
                .wrap(from_fn(security::harden))
                .app_data(data.clone())
                .app_data(ingest.clone())
                .app_data(problem_profiles.clone())
                .app_data(retention.clone())
                .app_data(upload_slots.clone())
                .app_data(authenticator.clone())
                .app_data(audit_writer.clone())
                .app_data(transport.clone())
                .app_data(record_cache.clone())
                .app_data(query_audit.clone())
                .app_data(checkpoints.clone())
                .app_data(analyses.clone())
                .app_data(demo_users.clone())
                .app_data(page.clone())
                .app_data(keys.clone())
                .app_data(key_guard.clone())
                .app_data(web::PathConfig::default().error_handler(|err, _| bad_request(&err)))
                .app_data(web::QueryConfig::default().error_handler(|err, _| bad_request(&err)))
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_JSON_BODY)
                        .error_handler(|err, _| json_error(&err)),
                )
                .configure(openapi::services)
                .service(crate::web::index)
                .service(crate::web::asset)
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(ApiError::NotFound("no such endpoint".to_owned()))
                }))
        })
        .on_connect(tls::mark_connection)
        .shutdown_signal(stop_signal(settings.server.shutdown_timeout_secs))
        // A client that closes its side has gone: drop its request's handler, so that work
        // watching for that (emerging hotspots) stops. actix's default keeps serving
        // half-closed connections to the end.
        .h1_allow_half_closed(false)
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let mut plain_port = None;
        let tls = match (&settings.server.tls_cert, &settings.server.tls_key) {
            (Some(cert), Some(key)) => {
                let config =
                    tls::server_config(cert, key, settings.server.tls_client_ca.as_deref())?;
                server = server.listen_rustls_0_23(listener, config)?;
                if let Some(port) = settings.server.plain_port {
                    let plain = TcpListener::bind((address.0, port)).map_err(|err| {
                        anyhow::anyhow!("cannot listen on {}:{port}: {err}", address.0)
                    })?;
                    plain_port = Some(plain.local_addr()?.port());
                    server = server.listen(plain)?;
                }
                true
            }
            _ => {
                server = server.listen(listener)?;
                false
            }
        };
        Ok(Self {
            port,
            plain_port,
            tls,
            server: server.run(),
        })
    }

    /// The port the server listens on.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The plain-HTTP health-check port, when serving HTTPS with `server.plain_port`.
    #[must_use]
    pub const fn plain_port(&self) -> Option<u16> {
        self.plain_port
    }

    /// Whether the server speaks HTTPS.
    #[must_use]
    pub const fn is_tls(&self) -> bool {
        self.tls
    }

    /// Serves until SIGINT (Ctrl-C) or SIGTERM, then stops accepting connections and lets
    /// in-flight requests finish within `server.shutdown_timeout_secs`.
    ///
    /// # Errors
    /// When the server fails while running.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn bad_request(err: &dyn std::fmt::Display) -> actix_web::Error {
    ApiError::BadRequest(err.to_string()).into()
}

fn json_error(err: &actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(format!(
                "the JSON body is larger than the {MAX_JSON_BODY} bytes allowed"
            ))
            .into()
        }
        other => bad_request(other),
    }
}

/// Gives error responses that have no body (such as actix's own 405) the JSON error shape.
fn json_error_body<B>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>>
where
    B: actix_web::body::MessageBody + 'static,
{
    let is_json = response
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let (request, _) = response.into_parts();
    let body = crate::error::ErrorBody {
        error: status
            .canonical_reason()
            .map_or("error", |_| status_code_name(status)),
        message: status.canonical_reason().unwrap_or("error").to_owned(),
        rejections: None,
    };
    let replaced = HttpResponse::build(status).json(body);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, replaced).map_into_right_body(),
    ))
}

fn status_code_name(status: actix_web::http::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        503 => "unavailable",
        code if code >= 500 => "internal",
        _ => "error",
    }
}

/// Completes when SIGINT (Ctrl-C) or SIGTERM arrives, saying which. Both stop the server
/// gracefully: actix-web's own handling would make SIGINT a forced shutdown that drops
/// in-flight requests.
async fn stop_signal(grace_secs: u64) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot listen for SIGINT and SIGTERM: stop the server with SIGKILL");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    tracing::info!(
        "{name} received: stopping gracefully; requests in flight have {grace_secs} s to finish"
    );
}

/// With `server.migrate_on_start` off: waits for `atlas migrate` to bring the schema up to
/// date (`/readyz` answers 503 meanwhile), then holds the process to the database's pseudonym
/// key ([`KeyGuard`]).
async fn check_key_once_migrated(database: Database, key_guard: Arc<KeyGuard>) {
    let mut delay = Duration::from_millis(500);
    loop {
        if atlas_store::migrations::pending(&database)
            .await
            .is_ok_and(|pending| pending.is_empty())
        {
            match key_guard.check(&database).await {
                Ok(Ok(())) => return,
                Ok(Err(reason)) => {
                    tracing::error!(%reason, "uploads are refused and /readyz answers 503");
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the pseudonym key could not be checked yet")
                }
            }
        } else {
            tracing::info!("waiting for `atlas migrate` to apply the schema; /readyz answers 503");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// Applies the embedded migrations, retrying with a growing pause while PostgreSQL is
/// unreachable, and saying so in the log; then holds the process to the database's pseudonym
/// key ([`KeyGuard`]).
async fn apply_migrations(database: Database, key_guard: Arc<KeyGuard>) {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1_u32;
    loop {
        match atlas_app::reference::migrate(database.url().expose_secret()).await {
            Ok(applied) => {
                tracing::info!(applied = ?applied, "database schema is current");
                match key_guard.check(&database).await {
                    Ok(Ok(())) => {}
                    Ok(Err(reason)) => {
                        tracing::error!(%reason, "uploads are refused and /readyz answers 503")
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "the pseudonym key could not be checked yet; uploads check it")
                    }
                }
                return;
            }
            Err(StoreError::Unreachable { target, reason }) => tracing::warn!(
                %target, %reason, attempt,
                "PostgreSQL is not reachable; /readyz answers 503; retrying in {} s",
                delay.as_secs_f32()
            ),
            Err(err) => tracing::error!(error = %err, attempt, "migrations failed; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
        attempt += 1;
    }
}
