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
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// The database answers and every migration is applied; 503 otherwise, with the reason.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Status), (status = 503, body = crate::error::ErrorBody))
)]
#[get("/readyz")]
pub async fn readyz(database: web::Data<Database>) -> Result<HttpResponse, ApiError> {
    let pending = migrations::pending(&database)
        .await
        .map_err(|err| ApiError::Unavailable(format!("database {}: {err}", database.target())))?;
    if pending.is_empty() {
        Ok(HttpResponse::Ok().json(Status { status: "ready" }))
    } else {
        Err(ApiError::Unavailable(format!(
            "migrations not yet applied: {}",
            pending.join(", ")
        )))
    }
}
