//! The batches agencies' uploads became: listing, reading, rejection reports, withdrawal.

use actix_web::{HttpResponse, delete, get, web};
use atlas_access::RecordScope;
use atlas_domain::GssCode;
use atlas_store::Database;
use atlas_store::batches;
use secrecy::ExposeSecret as _;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::Authorized;
use crate::guards::{ReadAgencyBatches, ReadBatch, ReadRejections, WithdrawBatch};
use crate::render::csv_response;
use atlas_app::RecordCache;

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
            status: batch.record.status.to_string(),
            uploaded_by: batch.record.uploaded_by,
            received_at: batch.record.received_at,
            rows_total: Some(batch.record.rows_total),
            rows_accepted: batch.record.rows_accepted,
            rows_rejected: Some(batch.record.rows_rejected),
            quality: Some(batch.record.quality),
            partnerships: batch
                .partnerships
                .into_iter()
                .map(|(code, rows)| (code.to_string(), rows))
                .collect(),
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
        let own = batch.partnerships.get(partnership).copied().unwrap_or(0);
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
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
