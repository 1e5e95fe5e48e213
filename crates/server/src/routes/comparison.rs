//! The partnership beside its neighbours or comparators ([`atlas_app::comparison`]): its own
//! figures exact, a neighbour's only from its frozen, gated summaries under an agreement in
//! force that shares `comparison` (docs/privacy.md, "Comparisons").

use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_analytics::emerging::Step;
use atlas_app::Analyses;
use atlas_app::comparison::{ComparisonQuestion, ComparisonView, Group};
use atlas_store::Database;
use chrono::Utc;

use crate::ApiError;
use crate::auth::Authorized;
use crate::guards::ReadAnalysis;
use crate::query_audit::QueryAudit;
use crate::routes::params::{ComparisonQuery, Params, documented};

/// The partnership beside its neighbours over whole closed periods.
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E10000017"),
        ComparisonQuery
    ),
    responses(
        (status = 200, body = ComparisonView),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/comparison")]
#[tracing::instrument(skip_all)]
pub async fn comparison(
    authorized: Authorized<ReadAnalysis>,
    request: HttpRequest,
    analyses: web::Data<Analyses>,
    database: web::Data<Database>,
    query_audit: web::Data<QueryAudit>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(&request)?;
    let query = ComparisonQuery::read(&mut params)?;
    params.finish_documented(&[documented::<ComparisonQuery>()])?;
    let step = match query.by.as_deref() {
        None | Some("quarter") => Step::Quarter,
        Some("month") => Step::Month,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`by`: `{other}` is not quarter or month"
            )));
        }
    };
    let group = match query.group.as_deref() {
        None | Some("neighbours") => Group::Neighbours,
        Some("comparators") => Group::Comparators,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`group`: `{other}` is not neighbours or comparators"
            )));
        }
    };
    let question = ComparisonQuestion {
        step,
        group,
        from: query.from,
        to: query.to,
    };
    let code = authorized.target();
    let comparison = analyses
        .comparison(
            code,
            authorized.record_scope(),
            &question,
            Utc::now().date_naive(),
        )
        .await?;
    if !comparison.shared_by.is_empty() {
        query_audit
            .check(&database, &authorized, "comparison")
            .await?;
    }
    authorized.used_records_of(std::iter::once(code).chain(&comparison.shared_by));
    authorized.returned(comparison.view.members.len());
    Ok(HttpResponse::Ok().json(comparison.view))
}
