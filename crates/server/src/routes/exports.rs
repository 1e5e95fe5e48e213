//! The national export over HTTP, for the instance's administrators.

use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_store::Database;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::Authorized;
use crate::guards::ExportNational;
use crate::query_audit::QueryAudit;
use crate::routes::params::{ExportQuery, Params, csv_wanted, documented};
use atlas_app::RecordCache;
use atlas_app::export::{ExportRow, SCHEMA, national, to_csv};

/// The national export as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct NationalExport {
    /// `atlas-national-export/2`.
    pub schema: &'static str,
    /// The calendar quarter.
    pub period: String,
    /// Every partnership's figures, sorted by GSS code.
    pub rows: Vec<ExportRow>,
}

/// Every partnership's disclosure-controlled figures for one calendar quarter
/// (docs/privacy.md, "National export"): JSON, or CSV with `format=csv`.
#[utoipa::path(
    tag = "releases",
    security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, body = NationalExport),
        (status = 200, content_type = "text/csv", description = "schema,gss_code,partnership,period,measure,breakdown,value,note"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/exports/national")]
#[tracing::instrument(skip_all)]
pub async fn national_export(
    authorized: Authorized<ExportNational>,
    request: HttpRequest,
    database: web::Data<Database>,
    cache: web::Data<RecordCache>,
    query_audit: web::Data<QueryAudit>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(&request)?;
    let ExportQuery { period, format } = ExportQuery::read(&mut params)?;
    params.finish_documented(&[documented::<ExportQuery>()])?;
    let csv = csv_wanted(format.as_deref())?;
    query_audit
        .check(&database, &authorized, "national_export")
        .await?;
    let today = chrono::Utc::now().date_naive();
    let rows = national(&database, &cache, &period, today).await?;
    authorized.used_records_of(rows.iter().map(|row| &row.gss_code));
    authorized.returned(rows.len());
    if csv {
        let body = to_csv(&rows).map_err(|err| ApiError::Internal(format!("export: {err}")))?;
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "content-disposition",
                format!("attachment; filename=\"atlas-national-{period}.csv\""),
            ))
            .body(body));
    }
    Ok(HttpResponse::Ok().json(NationalExport {
        schema: SCHEMA,
        period,
        rows,
    }))
}
