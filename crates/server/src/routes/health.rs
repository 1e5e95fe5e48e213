//! Liveness and readiness.

use actix_web::{HttpResponse, get, web};
use atlas_store::{Database, migrations};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;
use crate::identity::KeyRing;
use atlas_app::RecordCache;
use atlas_app::key_guard::KeyGuard;

/// The body of a successful health or readiness check.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready` (able to serve data).
    pub status: &'static str,
    /// When the last attempt to load the token verification keys again failed (the provider
    /// did not answer, a key file did not read): which keys are in use, loaded when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<String>,
}

/// The process is alive. Never touches the database.
#[utoipa::path(tag = "operations", responses((status = 200, body = Status)))]
#[get("/healthz")]
#[tracing::instrument(skip_all)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "ok",
        keys: None,
    })
}

/// The database answers, every migration is applied, this process's pseudonym key is not
/// known to differ from the database's, and, with keys from the identity
/// provider, its keys have been fetched at least once; 503 otherwise, saying which in words
/// that name no host, port, database or account (those go to the log). While the provider
/// cannot be reached, the keys fetched before stay in use and the answer says since when.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Status), (status = 503, body = crate::error::ErrorBody))
)]
#[get("/readyz")]
#[tracing::instrument(skip_all)]
pub async fn readyz(
    database: web::Data<Database>,
    keys: web::Data<KeyRing>,
    key_guard: web::Data<KeyGuard>,
    record_cache: web::Data<RecordCache>,
) -> Result<HttpResponse, ApiError> {
    let pending = migrations::pending(&database).await.map_err(|err| {
        tracing::warn!(target = %database.target(), error = %err, "not ready: the database does not answer");
        ApiError::Unavailable("not ready: the database does not answer".to_owned())
    })?;
    if !record_cache.is_warm() {
        return Err(ApiError::Unavailable(
            "not ready: loading the records of the partnerships named in cache.warm".to_owned(),
        ));
    }
    if let Some(reason) = key_guard.refusal() {
        return Err(ApiError::Unavailable(format!("not ready: {reason}")));
    }
    let status = keys.status();
    if keys.uses_provider() && status.metadata.is_none() {
        return Err(ApiError::Unavailable(
            "not ready: the identity provider's signing keys have not been fetched yet (see the log)"
                .to_owned(),
        ));
    }
    let keys = match (status.loaded_at, status.failing) {
        (Some(loaded), Some(_)) => Some(format!(
            "the keys loaded at {} are in use: the last attempt to load them again failed (see the log)",
            chrono::DateTime::<chrono::Utc>::from(loaded).format("%Y-%m-%dT%H:%M:%SZ")
        )),
        _ => None,
    };
    if pending.is_empty() {
        Ok(HttpResponse::Ok().json(Status {
            status: "ready",
            keys,
        }))
    } else {
        tracing::warn!(pending = ?pending, "not ready: migrations are not yet applied");
        Err(ApiError::Unavailable(format!(
            "not ready: {} database migration(s) not yet applied (`atlas migrate` applies them)",
            pending.len()
        )))
    }
}
