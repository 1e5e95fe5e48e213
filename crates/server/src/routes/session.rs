//! Who the caller is, as the service reads their token: what the page shows and decides its
//! pages by, whatever claim names the identity provider uses (docs/access.md).

use actix_web::{HttpResponse, get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::Authorized;
use crate::guards::ReadSession;

/// The caller, as Atlas reads their token (after `[auth.claims]` and any registration).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The token's subject.
    pub subject: String,
    /// Their partnership's GSS code.
    pub partnership: String,
    /// Their agency's id in Atlas (agency staff only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency: Option<uuid::Uuid>,
    /// Their roles in Atlas, by name.
    pub roles: Vec<String>,
}

/// The caller, as Atlas reads their token: subject, partnership, agency and roles.
#[utoipa::path(
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, body = SessionView),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/session")]
#[tracing::instrument(skip_all)]
pub async fn session(authorized: Authorized<ReadSession>) -> Result<HttpResponse, ApiError> {
    let principal = authorized.principal();
    Ok(HttpResponse::Ok().json(SessionView {
        subject: principal.subject.clone(),
        partnership: principal.partnership.to_string(),
        agency: principal.agency,
        roles: principal.role_names(),
    }))
}
