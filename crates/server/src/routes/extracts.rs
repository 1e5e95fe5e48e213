//! Uploading extracts: the body streams through the upload pipeline of
//! [`atlas_app::upload`] into one transaction with its batch.

use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, post, web};
use atlas_ingest::extract::{ExtractError, ExtractFormat};
use atlas_ingest::pseudonym::PseudonymKey;
use atlas_store::Database;
use atlas_store::batches::{self, BatchLoad, Committed};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{Authorized, Deferred};
use crate::error::{REPORTED_REJECTIONS, RejectedRow};
use crate::guards::UploadExtract;
use crate::routes::batches::BatchView;
use atlas_app::RecordCache;
use atlas_app::key_guard::KeyGuard;
use atlas_app::retention::RetentionSettings;
use atlas_app::settings::IngestSettings;
use atlas_app::upload::{Placement, UploadFailure, stream};

/// Limits how many uploads run at once: each holds a database connection for its transaction.
pub struct UploadSlots(std::sync::Arc<tokio::sync::Semaphore>);

impl UploadSlots {
    /// Allows `count` concurrent uploads (at least one).
    #[must_use]
    pub fn new(count: usize) -> Self {
        Self(std::sync::Arc::new(tokio::sync::Semaphore::new(
            count.max(1),
        )))
    }
}

/// Options of an upload.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// A committed batch of the same agency that this extract corrects: it is superseded, and
    /// its records removed, in the same transaction as this batch is stored.
    pub supersedes: Option<Uuid>,
}

/// Uploads an extract (`text/csv` or `application/x-ndjson`, optionally `Content-Encoding:
/// gzip`). All accepted rows are stored in one transaction with the batch, or none are.
#[utoipa::path(
    tag = "extracts",
    params(UploadQuery),
    security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv", description = "The extract; see docs/extract-format.md"),
    responses(
        (status = 201, body = BatchView, description = "A new batch"),
        (status = 200, body = BatchView, description = "The agency already uploaded this file: the existing batch"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 408, body = crate::error::ErrorBody, description = "The body came too slowly, stalled or took too long (ingest.* settings); nothing was stored"),
        (status = 413, body = crate::error::ErrorBody, description = "The body, its content or one line is larger than allowed; nothing was stored"),
        (status = 415, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody, description = "Refused whole: unusable, identifying, or too many rejected rows")
    )
)]
#[post("/api/v1/extracts")]
#[tracing::instrument(skip_all)]
pub async fn upload(
    request: HttpRequest,
    payload: web::Payload,
    authorized: Authorized<UploadExtract>,
    query: Deferred<web::Query<UploadQuery>>,
    database: web::Data<Database>,
    settings: web::Data<IngestSettings>,
    slots: web::Data<UploadSlots>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner()?;
    let principal = authorized.principal();
    let agency_id = principal
        .agency
        .ok_or_else(|| ApiError::Internal("an allowed upload has no agency".to_owned()))?;
    if let Some(old) = query.supersedes {
        authorized.note("supersedes", old);
    }
    let format = extract_format(&request)?;
    let _slot = slots.0.clone().try_acquire_owned().map_err(|_| {
        ApiError::Unavailable("too many uploads are in progress; try again in a minute".to_owned())
    })?;
    let gzip = gzip_encoded(&request)?;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > settings.max_upload_bytes) {
        return Err(too_large(settings.max_upload_bytes));
    }
    let key = settings
        .pseudonym_key
        .as_ref()
        .ok_or_else(|| {
            ApiError::Unavailable(
                "uploads are not configured: ingest.pseudonym_key is not set".to_owned(),
            )
        })
        .and_then(|key| {
            PseudonymKey::from_hex(key.expose_secret())
                .map_err(|err| ApiError::Internal(format!("ingest.pseudonym_key: {err}")))
        })?;
    // Pseudonyms made with another key than the database's would double every child counted.
    request
        .app_data::<web::Data<KeyGuard>>()
        .ok_or_else(|| ApiError::Internal("no pseudonym key guard is configured".to_owned()))?
        .check(&database)
        .await?
        .map_err(ApiError::Unavailable)?;
    if let Some(old) = query.supersedes {
        let mut conn = database.connection().await?;
        batches::check_supersedable(&mut conn, old, agency_id).await?;
    }
    // Rows already past their kind's retention period (as of today, UTC) are refused rather
    // than stored.
    let kept_from = request
        .app_data::<web::Data<RetentionSettings>>()
        .ok_or_else(|| ApiError::Internal("no retention settings are configured".to_owned()))?
        .cutoffs(chrono::Utc::now().date_naive());
    let url = database.url().expose_secret().to_owned();
    let placement = Placement::of_agency(&url, agency_id)
        .await?
        .ok_or_else(|| ApiError::Forbidden(format!("agency {agency_id} is not registered")))?;

    let mut load = BatchLoad::begin(&url, agency_id, &principal.subject).await?;
    let parsed = stream(
        payload, format, gzip, &settings, kept_from, key, placement, &mut load,
    )
    .await
    .map_err(|failure| refusal(&authorized, failure))?;
    let counts = match parsed.counts(settings.max_rejected_share) {
        Ok(counts) => counts,
        // Nothing is stored, so the refusal carries the rejection report itself.
        Err(UploadFailure::TooManyRejected(message)) => {
            let rows: Vec<RejectedRow> = parsed
                .rejections
                .into_rows()
                .map_err(|err| ApiError::Internal(format!("rejection report: {err}")))?
                .take(REPORTED_REJECTIONS)
                .map(|row| RejectedRow {
                    row: row.row,
                    field: row.field,
                    reason: row.reason,
                })
                .collect();
            return Err(ApiError::RowsRefused(message, std::sync::Arc::new(rows)));
        }
        Err(failure) => return Err(refusal(&authorized, failure)),
    };
    let tally = &parsed.tally;
    let report = parsed
        .rejections
        .into_rows()
        .map_err(|err| ApiError::Internal(format!("rejection report: {err}")))?;
    authorized.note("rows_total", tally.rows_total);
    authorized.note("rows_accepted", tally.rows_accepted);
    authorized.note("rows_rejected", tally.rows_rejected);
    let mut entry = authorized.change_entry();
    entry.resource = format!("/api/v1/batches/{}", load.id());
    let committed = load
        .commit(parsed.sha256, &counts, report, query.supersedes, &entry)
        .await?;
    let (status, id) = match committed {
        Committed::New(id) => {
            authorized.committed();
            (actix_web::http::StatusCode::CREATED, id)
        }
        Committed::Existing(id) => (actix_web::http::StatusCode::OK, id),
    };
    let mut conn = database.connection().await?;
    let batch = batches::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("batch {id} vanished after commit")))?;
    if status == actix_web::http::StatusCode::CREATED
        && let Some(cache) = request.app_data::<web::Data<RecordCache>>()
    {
        RecordCache::refresh_later(
            cache.clone().into_inner(),
            database.get_ref().clone(),
            batch.partnerships.keys().cloned(),
        );
    }
    Ok(HttpResponse::build(status).json(BatchView::from(batch)))
}

/// The answer to an upload that stopped before it could be committed; a cut is noted in the
/// audit entry.
fn refusal(authorized: &Authorized<UploadExtract>, failure: UploadFailure) -> ApiError {
    match failure {
        UploadFailure::TooLarge(limit) => too_large(limit),
        UploadFailure::TimedOut(reason) => {
            authorized.note("cut", &reason);
            ApiError::RequestTimeout(reason)
        }
        UploadFailure::Refused(ExtractError::Read(reason)) => ApiError::BadRequest(format!(
            "the extract could not be read: {reason}; nothing was stored"
        )),
        UploadFailure::Refused(err @ ExtractError::LineTooLong { .. }) => {
            ApiError::PayloadTooLarge(format!("{err}; nothing was stored"))
        }
        UploadFailure::Refused(err) => {
            ApiError::ExtractRefused(format!("{err}; nothing was stored"))
        }
        UploadFailure::TooManyRejected(message) => ApiError::ExtractRefused(message),
        UploadFailure::TooManyRows => {
            ApiError::PayloadTooLarge("too many rows in one extract".to_owned())
        }
        UploadFailure::Store(err) => err.into(),
        UploadFailure::Internal(detail) => ApiError::Internal(detail),
    }
}

/// The refusal of a body larger than `limit` bytes.
fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the extract is larger than the {limit} bytes allowed; nothing was stored"
    ))
}

/// The extract's format, from its `Content-Type`.
fn extract_format(request: &HttpRequest) -> Result<ExtractFormat, ApiError> {
    let media_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media_type.as_str() {
        "text/csv" => Ok(ExtractFormat::Csv),
        "application/x-ndjson" | "application/ndjson" => Ok(ExtractFormat::Ndjson),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type `{other}` is not an extract format: send text/csv or application/x-ndjson"
        ))),
    }
}

/// Whether the body is gzip-encoded, from its `Content-Encoding`.
fn gzip_encoded(request: &HttpRequest) -> Result<bool, ApiError> {
    match request
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
    {
        None | Some("identity") => Ok(false),
        Some(encoding) if encoding.eq_ignore_ascii_case("gzip") => Ok(true),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding `{other}` is not supported: send the extract plain or gzip-encoded"
        ))),
    }
}
