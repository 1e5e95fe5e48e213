//! Releases: a partnership's records by cell and agency kind for one calendar quarter at a
//! coarse resolution, disclosure-controlled, prepared by one partnership analyst and approved
//! by another before the partner viewers of partnerships it shares with can read it
//! (docs/privacy.md, "Releases").

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use atlas_app::Analyses;
use atlas_app::releases::{DEFAULT_RESOLUTION, ReleaseContent};
use atlas_domain::AgencyKind;
use atlas_store::Database;
use atlas_store::releases::{self, Change, Release};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{Authorized, Deferred};
use crate::guards::{ApproveRelease, PrepareRelease, ReadRelease};
use crate::render::{csv_response, wkt};
use crate::routes::params::{FormatQuery, Params, csv_wanted, documented};

/// A release as its readers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseView {
    /// Identifier.
    pub id: Uuid,
    /// The publishing partnership.
    pub partnership: String,
    /// 1, 2, … within the partnership.
    pub version: i32,
    /// The calendar quarter, such as `2026-Q1`.
    pub period: String,
    /// The H3 resolution of its cells.
    pub resolution: i16,
    /// `awaiting_approval`, `published` or `withdrawn`.
    pub status: &'static str,
    /// Counts from 1 to this are shown as `c`.
    pub threshold: i32,
    /// Totals are rounded to a multiple of this.
    pub rounding: i32,
    /// Entries suppressed as small counts.
    pub suppressed_primary: i32,
    /// Entries suppressed so that no suppressed value can be worked out.
    pub suppressed_secondary: i32,
    /// Who prepared it.
    pub prepared_by: String,
    /// When.
    pub prepared_at: DateTime<Utc>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<DateTime<Utc>>,
    /// When it was withdrawn.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// The published content, as frozen when it was prepared (left out of lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ReleaseContent>)]
    pub content: Option<Value>,
}

impl ReleaseView {
    fn of(release: Release, with_content: bool) -> Self {
        let status = if release.withdrawn_at.is_some() {
            "withdrawn"
        } else if release.approved_at.is_some() {
            "published"
        } else {
            "awaiting_approval"
        };
        Self {
            id: release.id,
            partnership: release.partnership_code.to_string(),
            version: release.version,
            period: release.period,
            resolution: release.resolution,
            status,
            threshold: release.threshold,
            rounding: release.rounding,
            suppressed_primary: release.suppressed_primary,
            suppressed_secondary: release.suppressed_secondary,
            prepared_by: release.prepared_by,
            prepared_at: release.prepared_at,
            approved_by: release.approved_by,
            approved_at: release.approved_at,
            withdrawn_at: release.withdrawn_at,
            content: with_content.then_some(release.content),
        }
    }
}

/// A partnership's releases.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseList {
    /// Newest version first; partners see only published ones.
    pub releases: Vec<ReleaseView>,
}

/// What to release.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRelease {
    /// A calendar quarter, such as `2026-Q1`.
    pub period: String,
    /// H3 resolution 5 to 7 (default 6); all of a partnership's releases use one.
    pub resolution: Option<u8>,
}

/// Prepares a release of one quarter: the partnership's records by cell (its whole coverage at
/// the resolution) and agency kind, disclosure-controlled. It awaits a second analyst's
/// approval before partners can see it.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code")), request_body = NewRelease, responses((status = 201, body = ReleaseView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/releases")]
#[tracing::instrument(skip_all)]
pub async fn prepare(
    authorized: Authorized<PrepareRelease>,
    database: web::Data<Database>,
    analyses: web::Data<Analyses>,
    body: Deferred<web::Json<NewRelease>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let code = authorized.target().clone();
    authorized.note("period", &body.period);
    authorized.note("resolution", body.resolution.unwrap_or(DEFAULT_RESOLUTION));
    authorized.used_records_of([&code]);
    let draft = analyses
        .draft_release(
            &code,
            authorized.record_scope(),
            &body.period,
            body.resolution,
            Utc::now().date_naive(),
        )
        .await?;
    let mut conn = database.connection().await?;
    let release = releases::prepare(
        &mut conn,
        &draft,
        &authorized.principal().subject,
        &authorized.change_entry(),
    )
    .await?;
    authorized.committed();
    Ok(HttpResponse::Created().json(ReleaseView::of(release, true)))
}

/// Approves a release: a second partnership analyst, not the one who prepared it.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code"), ("id" = Uuid, Path, description = "Release id")), responses((status = 200, body = ReleaseView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/releases/{id}/approve")]
#[tracing::instrument(skip_all)]
pub async fn approve(
    authorized: Authorized<ApproveRelease>,
    database: web::Data<Database>,
    path: Deferred<web::Path<(String, Uuid)>>,
) -> Result<HttpResponse, ApiError> {
    let (_, id) = path.into_inner()?.into_inner();
    change(&authorized, &database, id, Change::Approve).await
}

/// Withdraws a release: partners no longer see it, and its quarter may be released again.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code"), ("id" = Uuid, Path, description = "Release id")), responses((status = 200, body = ReleaseView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/releases/{id}/withdraw")]
#[tracing::instrument(skip_all)]
pub async fn withdraw(
    authorized: Authorized<ApproveRelease>,
    database: web::Data<Database>,
    path: Deferred<web::Path<(String, Uuid)>>,
) -> Result<HttpResponse, ApiError> {
    let (_, id) = path.into_inner()?.into_inner();
    change(&authorized, &database, id, Change::Withdraw).await
}

async fn change(
    authorized: &Authorized<ApproveRelease>,
    database: &Database,
    id: Uuid,
    change: Change,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let release = releases::change(
        &mut conn,
        authorized.target().as_str(),
        id,
        change,
        &authorized.principal().subject,
        &authorized.change_entry(),
    )
    .await?;
    authorized.committed();
    Ok(HttpResponse::Ok().json(ReleaseView::of(release, true)))
}

/// Whether the caller sees only published releases (a partner, not the partnership's own).
fn partner(authorized: &Authorized<ReadRelease>) -> bool {
    authorized.principal().partnership != *authorized.target()
}

/// Lists a partnership's releases: all of them for its own analysts, the published ones for
/// partners it shares with.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code")), responses((status = 200, body = ReleaseList), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/releases")]
#[tracing::instrument(skip_all)]
pub async fn list(
    authorized: Authorized<ReadRelease>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let partner = partner(&authorized);
    let releases: Vec<ReleaseView> = releases::list(&mut conn, authorized.target().as_str())
        .await?
        .into_iter()
        .filter(|release| !partner || release.is_published())
        .map(|release| ReleaseView::of(release, false))
        .collect();
    authorized.returned(releases.len());
    Ok(HttpResponse::Ok().json(ReleaseList { releases }))
}

/// One release with its table: JSON, or CSV (`format=csv`: `hex_id`, `near` (the nearest place),
/// one column per agency kind, `total`, the hexagon as `wkt`). Partners see it only once approved and until withdrawn.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code"), ("id" = Uuid, Path, description = "Release id"), FormatQuery), responses((status = 200, body = ReleaseView), (status = 200, content_type = "text/csv", description = "hex_id, near, one column per agency kind, total, wkt"), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/releases/{id}")]
#[tracing::instrument(skip_all)]
pub async fn show(
    authorized: Authorized<ReadRelease>,
    database: web::Data<Database>,
    path: Deferred<web::Path<(String, Uuid)>>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (_, id) = path.into_inner()?.into_inner();
    let mut params = Params::parse(&request)?;
    let query = FormatQuery::read(&mut params)?;
    params.finish_documented(&[documented::<FormatQuery>()])?;
    let csv = csv_wanted(query.format.as_deref())?;
    let mut conn = database.connection().await?;
    let release = releases::find(&mut conn, authorized.target().as_str(), id)
        .await?
        .filter(|release| !partner(&authorized) || release.is_published())
        .ok_or_else(|| ApiError::NotFound(format!("no published release has the id {id}")))?;
    let rows = release.content["rows"].as_array().map_or(0, Vec::len);
    authorized.returned(rows);
    if !csv {
        return Ok(HttpResponse::Ok().json(ReleaseView::of(release, true)));
    }
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let mut header = vec!["hex_id".to_owned(), "near".to_owned()];
    header.extend(AgencyKind::ALL.iter().map(ToString::to_string));
    header.push("total".to_owned());
    header.push("wkt".to_owned());
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let lines = release.content["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let mut line = vec![text(&row["cell"]), text(&row["near"])];
            line.extend(row["values"].as_array().into_iter().flatten().map(text));
            line.push(text(&row["total"]));
            line.push(
                row["cell"]
                    .as_str()
                    .and_then(|cell| cell.parse().ok())
                    .map(wkt)
                    .unwrap_or_default(),
            );
            line
        });
    csv_response(
        &header,
        lines,
        &format!(
            "release-{}-v{}-{}.csv",
            release.partnership_code, release.version, release.period
        ),
    )
}
