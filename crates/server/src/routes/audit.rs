//! The audit trail, for auditors; and, for a partnership's analysts, who outside it read its
//! records. A number of rows returned from 1 to 5 is shown as `"c"`, as small counts are
//! published, so that the trail does not tell how few records matched a question.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use atlas_analytics::gate::suppress_small;
use atlas_app::figures::Figure;
use atlas_store::{Database, audit};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{Authorized, Deferred};
use crate::dates;
use crate::guards::{ReadAccessLog, ReadAudit};
use crate::render::csv_response;

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
    /// Only entries involving this partnership (GSS code): its data were touched, or its own
    /// staff acted (a request made to another partnership, say).
    pub partnership: Option<String>,
    /// Only this action, such as `batch.withdraw`.
    pub action: Option<String>,
    /// Only entries older than this id: the `next_before_id` of the previous page.
    pub before_id: Option<i64>,
    /// Page size, at most 1000 (default 100).
    pub limit: Option<i64>,
    /// `json` (default) or `csv`: the page's entries as a CSV attachment, one row each.
    pub format: Option<String>,
}

/// The columns of the audit trail as CSV.
const CSV_HEADER: [&str; 15] = [
    "id",
    "occurred_at",
    "request_id",
    "subject",
    "roles",
    "partnership",
    "caller_partnership",
    "agency",
    "action",
    "resource",
    "parameters",
    "outcome",
    "rows_returned",
    "records_of",
    "hash",
];

/// One entry as a CSV row, in the order of [`CSV_HEADER`]; lists are separated by spaces and
/// the parameters written `name=value`.
fn csv_row(entry: AuditEntryView) -> Vec<String> {
    let optional = |value: Option<String>| value.unwrap_or_default();
    vec![
        entry.id.to_string(),
        entry.occurred_at.to_rfc3339(),
        optional(entry.request_id),
        entry.subject,
        entry.roles.join(" "),
        optional(entry.partnership),
        optional(entry.caller_partnership),
        optional(entry.agency.map(|agency| agency.to_string())),
        entry.action,
        entry.resource,
        entry
            .parameters
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(" "),
        entry.outcome,
        optional(entry.rows_returned.map(|rows| {
            serde_json::to_value(rows)
                .map(|value| match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                })
                .unwrap_or_default()
        })),
        entry.records_of.join(" "),
        entry.hash,
    ]
}

/// `rows_returned` as the API shows it: a count from 1 to the disclosure threshold (5) is
/// `"c"`; zero and larger counts are exact; `null` when the request returned no rows.
fn shown_rows(rows: Option<i64>) -> Option<Figure> {
    rows.map(|rows| Figure::Gated(suppress_small(u32::try_from(rows).unwrap_or(u32::MAX))))
}

/// One entry of the trail as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the chain.
    pub id: i64,
    /// When it was appended.
    pub occurred_at: DateTime<Utc>,
    /// The request's id (the `x-request-id` response header).
    pub request_id: Option<String>,
    /// Who: the token's `sub`, or `cli:<user>` for the command line.
    pub subject: String,
    /// The caller's roles.
    pub roles: Vec<String>,
    /// The partnership whose data was touched.
    pub partnership: Option<String>,
    /// The caller's own partnership (absent in entries from the command line and from before
    /// need to know).
    pub caller_partnership: Option<String>,
    /// The caller's agency.
    pub agency: Option<Uuid>,
    /// What was done, such as `grid.read`.
    pub action: String,
    /// On what.
    pub resource: String,
    /// The request's parameters.
    pub parameters: BTreeMap<String, String>,
    /// `allowed`, `denied` or `failed`.
    pub outcome: String,
    /// Rows or cells returned: a number, `"c"` for 1 to 5, or null.
    pub rows_returned: Option<Figure>,
    /// The partnerships whose case records the answer used.
    pub records_of: Vec<String>,
    /// The previous entry's hash, hex.
    pub previous_hash: String,
    /// This entry's hash, hex.
    pub hash: String,
}

impl From<audit::Entry> for AuditEntryView {
    fn from(entry: audit::Entry) -> Self {
        Self {
            id: entry.id,
            occurred_at: entry.occurred_at,
            request_id: entry.request_id,
            subject: entry.subject,
            roles: entry.roles,
            partnership: entry.partnership,
            caller_partnership: entry.caller_partnership,
            agency: entry.agency,
            action: entry.action,
            resource: entry.resource,
            parameters: entry.parameters,
            outcome: entry.outcome,
            rows_returned: shown_rows(entry.rows_returned),
            records_of: entry.records_of,
            previous_hash: entry.previous_hash,
            hash: entry.hash,
        }
    }
}

/// A page of the trail, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before_id` for the next page; absent on the last.
    pub next_before_id: Option<i64>,
}

/// The page size asked for, checked: 1 to [`MAX_PAGE`], 100 by default.
fn page_size(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(100);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )))
    }
}

/// The `next_before_id` of a page of `limit` ending at `last`.
fn next_page(entries: usize, limit: i64, last: Option<i64>) -> Option<i64> {
    (entries == usize::try_from(limit).unwrap_or(usize::MAX))
        .then_some(last)
        .flatten()
}

/// Where the server keeps signed checkpoints of the audit chains (`audit.checkpoint_dir`), and
/// the one verification for callers a process runs at a time.
#[derive(Debug)]
pub struct Checkpoints {
    /// The directory of signed checkpoints, when one is configured.
    dir: Option<std::path::PathBuf>,
    /// Held by the verification running for a caller.
    verifying: tokio::sync::Semaphore,
}

impl Checkpoints {
    /// Checkpoints in `dir` (none when unset).
    #[must_use]
    pub const fn new(dir: Option<std::path::PathBuf>) -> Self {
        Self {
            dir,
            verifying: tokio::sync::Semaphore::const_new(1),
        }
    }

    /// This process's turn to verify for a caller.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] while another caller's verification runs.
    fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.verifying.try_acquire().map_err(|_| {
            ApiError::Unavailable(
                "the audit trail is being verified for another caller of this server; ask again \
                 when that is done (it reads every entry since the newest checkpoint)"
                    .to_owned(),
            )
        })
    }
}

/// The state of the hash chains.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainState {
    /// Entries checked (since the checkpoint, when there is one).
    pub entries: u64,
    /// Chains checked: one per partnership with entries, administration, and `global` for
    /// entries written before chains were split.
    pub chains: u64,
    /// Whether every entry verifies.
    pub intact: bool,
    /// The first entry that does not verify.
    pub first_broken_id: Option<i64>,
    /// Its chain.
    pub broken_chain: Option<String>,
    /// Why it does not.
    pub reason: Option<String>,
    /// When the checkpoint verification started from was taken (every chain was checked from
    /// its start when there is none).
    pub since_checkpoint: Option<chrono::DateTime<chrono::Utc>>,
}

/// Lists audit entries, newest first, filtered by time, subject, partnership and action; as JSON,
/// or as a CSV attachment with `format=csv`.
#[utoipa::path(tag = "audit", security(("bearer" = [])), params(AuditQuery), responses((status = 200, body = AuditPage), (status = 200, content_type = "text/csv", description = "id,occurred_at,request_id,subject,roles,partnership,caller_partnership,agency,action,resource,parameters,outcome,rows_returned,records_of,hash"), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/audit")]
#[tracing::instrument(skip_all)]
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
    let limit = page_size(query.limit)?;
    let filter = audit::Filter {
        from: query.from,
        to: query.to,
        subject: query.subject.clone(),
        partnership: query.partnership.clone(),
        action: query.action.clone(),
        before_id: query.before_id,
        limit,
    };
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`format`: `{other}` is not json or csv"
            )));
        }
    };
    let mut conn = database.connection().await?;
    let entries = audit::list(&mut conn, &filter).await?;
    authorized.returned(entries.len());
    if csv {
        return csv_response(
            &CSV_HEADER,
            entries
                .into_iter()
                .map(|entry| csv_row(AuditEntryView::from(entry))),
            "audit-trail.csv",
        );
    }
    let next_before_id = next_page(entries.len(), limit, entries.last().map(|entry| entry.id));
    Ok(HttpResponse::Ok().json(AuditPage {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next_before_id,
    }))
}

/// Which readers to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReadersQuery {
    /// Only entries older than this id: the `next_before_id` of the previous page.
    pub before_id: Option<i64>,
    /// Page size, at most 1000 (default 100).
    pub limit: Option<i64>,
}

/// One read of a partnership's records by someone outside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReaderView {
    /// The audit entry's id.
    pub id: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who: the token's `sub`, or `cli:<user>` for the command line.
    pub subject: String,
    /// The reader's own partnership (absent for the command line).
    pub caller_partnership: Option<String>,
    /// What was done, such as `analysis.read`.
    pub action: String,
    /// The path asked for.
    pub resource: String,
    /// `allowed`, `denied` or `failed`.
    pub outcome: String,
    /// Rows or cells returned: a number, `"c"` for 1 to 5, or null.
    pub rows_returned: Option<Figure>,
}

/// A page of readers, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadersPage {
    /// The partnership whose records were read.
    pub partnership: String,
    /// The reads.
    pub entries: Vec<ReaderView>,
    /// Pass as `before_id` for the next page; absent on the last.
    pub next_before_id: Option<i64>,
}

/// Who, from outside the partnership (another partnership's analysts, an administrator's
/// national export, the command line), asked for answers built from its case records: for its
/// own partnership analysts and for auditors. Newest first, paged like the audit trail.
#[utoipa::path(tag = "audit", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code"), ReadersQuery), responses((status = 200, body = ReadersPage), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/readers")]
#[tracing::instrument(skip_all)]
pub async fn readers(
    authorized: Authorized<ReadAccessLog>,
    database: web::Data<Database>,
    query: Deferred<web::Query<ReadersQuery>>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner()?;
    let limit = page_size(query.limit)?;
    let code = authorized.target();
    let mut conn = database.connection().await?;
    let entries = audit::readers(&mut conn, code.as_str(), query.before_id, limit).await?;
    authorized.returned(entries.len());
    let next_before_id = next_page(entries.len(), limit, entries.last().map(|entry| entry.id));
    Ok(HttpResponse::Ok().json(ReadersPage {
        partnership: code.to_string(),
        entries: entries
            .into_iter()
            .map(|entry| ReaderView {
                id: entry.id,
                occurred_at: entry.occurred_at,
                subject: entry.subject,
                caller_partnership: entry.caller_partnership,
                action: entry.action,
                resource: entry.resource,
                outcome: entry.outcome,
                rows_returned: shown_rows(entry.rows_returned),
            })
            .collect(),
        next_before_id,
    }))
}

/// Verifies the hash chains from the newest checkpoint (from their starts without one), as
/// `atlas audit verify` does; one verification at a time per process (503 while another runs:
/// each reads every entry since the checkpoint).
#[utoipa::path(tag = "audit", security(("bearer" = [])), responses((status = 200, body = ChainState), (status = 403, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody, description = "Another caller's verification is running in this process, or the database cannot be read")))]
#[get("/api/v1/audit/verify")]
#[tracing::instrument(skip_all)]
pub async fn verify(
    authorized: Authorized<ReadAudit>,
    database: web::Data<Database>,
    checkpoints: web::Data<Checkpoints>,
) -> Result<HttpResponse, ApiError> {
    let _turn = checkpoints.turn()?;
    let checked = atlas_app::audit_trail::verify(&database, checkpoints.dir.as_deref(), false)
        .await
        .map_err(ApiError::Unavailable)?;
    authorized.returned(1);
    let verification = checked.verification;
    Ok(HttpResponse::Ok().json(ChainState {
        entries: verification.entries,
        chains: verification.heads.len() as u64,
        intact: verification.first_broken.is_none(),
        first_broken_id: verification.first_broken.as_ref().map(|broken| broken.id),
        broken_chain: verification
            .first_broken
            .as_ref()
            .map(|broken| broken.chain.clone()),
        reason: verification.first_broken.map(|broken| broken.reason),
        since_checkpoint: checked.since.map(|checkpoint| checkpoint.taken_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_verification_runs_at_a_time_for_callers() {
        let checkpoints = Checkpoints::new(None);
        let first = checkpoints.turn().unwrap();
        let refused = checkpoints.turn().unwrap_err();
        assert!(
            matches!(&refused, ApiError::Unavailable(reason) if reason.contains("being verified for another caller")),
            "{refused:?}"
        );
        drop(first);
        assert!(checkpoints.turn().is_ok(), "the next caller's turn");
    }
}
