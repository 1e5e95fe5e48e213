//! The audit trail, for auditors.

use actix_web::{HttpResponse, get, web};
use atlas_store::{Database, audit};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ApiError;
use crate::auth::{Authorized, Deferred};
use crate::dates;
use crate::guards::ReadAudit;

/// The most entries one page returns.
const MAX_PAGE: i64 = 1_000;

/// Which entries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Only this subject.
    pub subject: Option<String>,
    /// Only this partnership (GSS code).
    pub partnership: Option<String>,
    /// Only this action, such as `batch.withdraw`.
    pub action: Option<String>,
    /// Only entries older than this id: the `next_before_id` of the previous page.
    pub before_id: Option<i64>,
    /// Page size, at most 1000 (default 100).
    pub limit: Option<i64>,
}

/// A page of the trail, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<audit::Entry>,
    /// Pass as `before_id` for the next page; absent on the last.
    pub next_before_id: Option<i64>,
}

/// The state of the hash chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainState {
    /// Entries checked.
    pub entries: u64,
    /// Whether every entry verifies.
    pub intact: bool,
    /// The first entry that does not verify.
    pub first_broken_id: Option<i64>,
    /// Why it does not.
    pub reason: Option<String>,
    /// The hash of the last entry (hex) when intact: kept elsewhere, it reveals a truncated tail.
    pub last_hash: Option<String>,
}

/// Lists audit entries, newest first, filtered by time, subject, partnership and action.
#[utoipa::path(tag = "audit", security(("bearer" = [])), params(AuditQuery), responses((status = 200, body = AuditPage), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/audit")]
pub async fn list(
    authorized: Authorized<ReadAudit>,
    database: web::Data<Database>,
    query: Deferred<web::Query<AuditQuery>>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner()?;
    for (field, time) in [("from", query.from), ("to", query.to)] {
        if let Some(time) = time {
            dates::check(field, time.date_naive())
                .map_err(|_| dates::out_of_domain(field, &time))?;
        }
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let filter = audit::Filter {
        from: query.from,
        to: query.to,
        subject: query.subject.clone(),
        partnership: query.partnership.clone(),
        action: query.action.clone(),
        before_id: query.before_id,
        limit,
    };
    let mut conn = database.connection().await?;
    let entries = audit::list(&mut conn, &filter).await?;
    authorized.returned(entries.len());
    let next_before_id = (entries.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| entries.last().map(|entry| entry.id))
        .flatten();
    Ok(HttpResponse::Ok().json(AuditPage {
        entries,
        next_before_id,
    }))
}

/// Verifies the whole hash chain, as `atlas audit verify` does.
#[utoipa::path(tag = "audit", security(("bearer" = [])), responses((status = 200, body = ChainState), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/audit/verify")]
pub async fn verify(
    authorized: Authorized<ReadAudit>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let verification = audit::verify(&mut conn).await?;
    authorized.returned(1);
    Ok(HttpResponse::Ok().json(ChainState {
        entries: verification.entries,
        intact: verification.first_broken.is_none(),
        first_broken_id: verification.first_broken.as_ref().map(|broken| broken.id),
        reason: verification.first_broken.map(|broken| broken.reason),
        last_hash: verification.last_hash,
    }))
}
