//! Liveness and readiness.

use actix_web::{HttpResponse, get, web};
use atlas_store::{Database, migrations};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;

/// The body of a successful health or readiness check.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready` (able to serve data).
    pub status: &'static str,
}

/// The process is alive. Never touches the database.
#[utoipa::path(tag = "operations", responses((status = 200, body = Status)))]
#[get("/healthz")]
#[tracing::instrument(skip_all)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// The database answers and every migration is applied; 503 otherwise, saying which of the
/// two in words that name no host, port, database or account (those go to the log).
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Status), (status = 503, body = crate::error::ErrorBody))
)]
#[get("/readyz")]
#[tracing::instrument(skip_all)]
pub async fn readyz(database: web::Data<Database>) -> Result<HttpResponse, ApiError> {
    let pending = migrations::pending(&database).await.map_err(|err| {
        tracing::warn!(target = %database.target(), error = %err, "not ready: the database does not answer");
        ApiError::Unavailable("not ready: the database does not answer".to_owned())
    })?;
    if pending.is_empty() {
        Ok(HttpResponse::Ok().json(Status { status: "ready" }))
    } else {
        tracing::warn!(pending = ?pending, "not ready: migrations are not yet applied");
        Err(ApiError::Unavailable(format!(
            "not ready: {} database migration(s) not yet applied",
            pending.len()
        )))
    }
}
