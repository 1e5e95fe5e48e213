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
use crate::routes::params::Params;

/// The partnership beside its neighbours over whole closed periods.
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E10000017"),
        ("from" = Option<NaiveDate>, Query, description = "A day of the first period; the comparison starts at that period's first day (default: four quarters or twelve months before `to`'s)"),
        ("to" = Option<NaiveDate>, Query, description = "A day of the last period; the comparison ends on that period's last day, and a period not yet ended is left out (default: the last closed period)"),
        ("by" = Option<String>, Query, description = "quarter (default) or month"),
        ("group" = Option<String>, Query, description = "neighbours (default: the neighbour graph) or comparators (the imported comparator group)")
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
    let step = match params.take::<String>("by")?.as_deref() {
        None | Some("quarter") => Step::Quarter,
        Some("month") => Step::Month,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`by`: `{other}` is not quarter or month"
            )));
        }
    };
    let group = match params.take::<String>("group")?.as_deref() {
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
        to: params.take("to")?,
        from: params.take("from")?,
    };
    params.finish(&["from", "to", "by", "group"])?;
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
