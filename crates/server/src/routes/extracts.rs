//! Uploading extracts and managing the resulting batches.

use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use atlas_access::RecordScope;
use atlas_domain::GssCode;
use atlas_ingest::extract::{ExtractError, ExtractFormat};
use atlas_ingest::pseudonym::PseudonymKey;
use atlas_store::Database;
use atlas_store::batches::{self, BatchCounts, BatchLoad, Committed};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{Authorized, Deferred};
use crate::guards::{ReadAgencyBatches, ReadBatch, ReadRejections, UploadExtract, WithdrawBatch};
use crate::pipeline::{self, Placement, UploadFailure};
use crate::render::csv_response;
use atlas_app::RecordCache;
use atlas_app::settings::IngestSettings;

/// A batch as its uploader sees it, or a partnership's share of it as that partnership's
/// analysts see it (without the figures of the whole batch).
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    /// Identifier of the batch.
    pub batch_id: Uuid,
    /// `committed`, `withdrawn` or `superseded`.
    #[schema(example = "committed")]
    pub status: String,
    /// Who uploaded it (the token's subject).
    pub uploaded_by: String,
    /// When the upload began.
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// Rows read (the uploading agency only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_total: Option<i32>,
    /// Rows stored (for a partnership's analysts, those stored in their partnership).
    pub rows_accepted: i32,
    /// Rows rejected, see the rejection report (the uploading agency only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_rejected: Option<i32>,
    /// `geocoded_share`, `indicator_completeness`, `first_date`, `last_date` (the uploading
    /// agency only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub quality: Option<serde_json::Value>,
    /// Rows stored per partnership (for a partnership's analysts, their own partnership only).
    #[schema(value_type = Object)]
    pub partnerships: std::collections::BTreeMap<String, i32>,
    /// The batch that replaced this one.
    pub superseded_by: Option<Uuid>,
    /// Where to fetch the rejection report.
    pub rejections: String,
}

impl From<batches::Batch> for BatchView {
    fn from(batch: batches::Batch) -> Self {
        Self {
            rejections: format!("/api/v1/batches/{}/rejections", batch.record.id),
            batch_id: batch.record.id,
            status: batch.record.status,
            uploaded_by: batch.record.uploaded_by,
            received_at: batch.record.received_at,
            rows_total: Some(batch.record.rows_total),
            rows_accepted: batch.record.rows_accepted,
            rows_rejected: Some(batch.record.rows_rejected),
            quality: Some(batch.record.quality),
            partnerships: batch.partnerships,
            superseded_by: batch.record.superseded_by,
        }
    }
}

impl BatchView {
    /// The batch as a caller with `scope`, a member of `partnership`, may see it: whole for the
    /// uploading agency's staff; otherwise only `partnership`'s share, so that a batch spanning
    /// several partnerships shows none of them another's row counts.
    fn seen_with(batch: batches::Batch, scope: RecordScope, partnership: &GssCode) -> Self {
        if scope == RecordScope::Agency(batch.record.agency_id) {
            return Self::from(batch);
        }
        let own = batch
            .partnerships
            .get(partnership.as_str())
            .copied()
            .unwrap_or(0);
        Self {
            rows_total: None,
            rows_accepted: own,
            rows_rejected: None,
            quality: None,
            partnerships: [(partnership.to_string(), own)].into(),
            ..Self::from(batch)
        }
    }
}

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
    if let Some(old) = query.supersedes {
        let mut conn = database.connection().await?;
        batches::check_supersedable(&mut conn, old, agency_id).await?;
    }
    let url = database.url().expose_secret().to_owned();
    let area = batches::agency_area(&url, agency_id)
        .await?
        .ok_or_else(|| ApiError::Forbidden(format!("agency {agency_id} is not registered")))?;

    let mut load = BatchLoad::begin(&url, agency_id, &principal.subject).await?;
    let parsed = pipeline::stream(
        payload,
        format,
        gzip,
        &settings,
        key,
        Placement::new(area),
        &mut load,
    )
    .await
    .map_err(|failure| match failure {
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
        UploadFailure::Store(err) => err.into(),
        UploadFailure::Internal(detail) => ApiError::Internal(detail),
    })?;

    let tally = &parsed.tally;
    if tally.rejected_share() > settings.max_rejected_share {
        let first = parsed
            .rejections
            .first()
            .iter()
            .map(|rejection| {
                format!(
                    "row {} {}: {}",
                    rejection.row, rejection.field, rejection.reason
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::ExtractRefused(format!(
            "{} of {} rows were rejected ({:.1} %), more than the {:.1} % allowed; nothing was stored. First problems: {first}",
            tally.rows_rejected,
            tally.rows_total,
            tally.rejected_share() * 100.0,
            settings.max_rejected_share * 100.0,
        )));
    }
    let count = |value: u64| {
        i32::try_from(value)
            .map_err(|_| ApiError::PayloadTooLarge("too many rows in one extract".to_owned()))
    };
    let counts = BatchCounts {
        rows_total: count(tally.rows_total)?,
        rows_accepted: count(tally.rows_accepted)?,
        rows_rejected: count(tally.rows_rejected)?,
        quality: serde_json::json!({
            "geocoded_share": tally.geocoded_share(),
            "indicator_completeness": tally.indicator_completeness(),
            "first_date": tally.first_date,
            "last_date": tally.last_date,
        }),
    };
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

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the extract is larger than the {limit} bytes allowed; nothing was stored"
    ))
}

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

/// How many of its agency's batches the list shows.
const LISTED_BATCHES: i64 = 100;

/// The batches of the caller's agency, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchList {
    /// At most 100, newest first.
    pub batches: Vec<BatchView>,
}

/// The caller's agency's batches, newest first (at most 100): for its agency analysts.
#[utoipa::path(
    tag = "extracts",
    security(("bearer" = [])),
    responses((status = 200, body = BatchList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody))
)]
#[get("/api/v1/batches")]
pub async fn list(
    authorized: Authorized<ReadAgencyBatches>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let batches: Vec<BatchView> =
        batches::of_agency(&mut conn, *authorized.target(), LISTED_BATCHES)
            .await?
            .into_iter()
            .map(BatchView::from)
            .collect();
    authorized.returned(batches.len());
    Ok(HttpResponse::Ok().json(BatchList { batches }))
}

/// One batch: in whole for its agency's analysts; to partnership analysts of a partnership it
/// contributed to, only that partnership's share.
#[utoipa::path(
    tag = "extracts",
    params(("id" = Uuid, Path, description = "Batch id")),
    security(("bearer" = [])),
    responses((status = 200, body = BatchView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/api/v1/batches/{id}")]
pub async fn get(authorized: Authorized<ReadBatch>) -> Result<HttpResponse, ApiError> {
    authorized.returned(1);
    Ok(HttpResponse::Ok().json(BatchView::seen_with(
        authorized.target().clone(),
        authorized.record_scope(),
        &authorized.principal().partnership,
    )))
}

/// The rejection report of a batch of the caller's agency: CSV with columns
/// `row,field,reason`.
#[utoipa::path(
    tag = "extracts",
    params(("id" = Uuid, Path, description = "Batch id")),
    security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
#[get("/api/v1/batches/{id}/rejections")]
pub async fn rejections(
    authorized: Authorized<ReadRejections>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let batch = authorized.target();
    let mut conn = database.connection().await?;
    let rows = batches::rejections(&mut conn, batch.record.id).await?;
    authorized.returned(rows.len());
    csv_response(
        &["row", "field", "reason"],
        rows.iter()
            .map(|row| vec![row.row.to_string(), row.field.clone(), row.reason.clone()]),
        &format!("rejections-{}.csv", batch.record.id),
    )
}

/// Withdraws a committed batch of the caller's agency: its records are removed at once.
#[utoipa::path(
    tag = "extracts",
    params(("id" = Uuid, Path, description = "Batch id")),
    security(("bearer" = [])),
    responses((status = 200, body = BatchView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody))
)]
#[delete("/api/v1/batches/{id}")]
pub async fn withdraw(
    authorized: Authorized<WithdrawBatch>,
    database: web::Data<Database>,
    cache: web::Data<RecordCache>,
) -> Result<HttpResponse, ApiError> {
    let batch = authorized.target();
    batches::withdraw(
        database.url().expose_secret(),
        batch.record.id,
        batch.record.agency_id,
        &authorized.change_entry(),
    )
    .await?;
    authorized.committed();
    let mut conn = database.connection().await?;
    let batch = batches::find(&mut conn, batch.record.id)
        .await?
        .ok_or_else(|| ApiError::Internal("a withdrawn batch vanished".to_owned()))?;
    RecordCache::refresh_later(
        cache.into_inner(),
        database.get_ref().clone(),
        batch.partnerships.keys().cloned(),
    );
    Ok(HttpResponse::Ok().json(BatchView::from(batch)))
}
