//! Releases: a partnership's records by cell and agency kind for one calendar quarter at a
//! coarse resolution, disclosure-controlled, prepared by one partnership analyst and approved
//! by another before the partner viewers of partnerships it shares with can read it
//! (docs/privacy.md, "Releases").

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use atlas_analytics::comparison::{ANNUALISED_QUARTER, QUARTERS_A_YEAR, rate_per_10000};
use atlas_analytics::gate::{self, PeriodSummary, ShownTable, THRESHOLD};
use atlas_domain::{AgencyKind, Indicator, StoredResolution};
use atlas_store::populations::{self, PartnershipPopulation};
use atlas_store::releases::{self, Change, Draft, Release};
use atlas_store::{Database, batches};
use chrono::{DateTime, Datelike as _, Utc};
use h3o::{CellIndex, Resolution};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{Authorized, Deferred};
use crate::guards::{ApproveRelease, PrepareRelease, ReadRelease};
use atlas_app::RecordCache;
use atlas_app::products::{closed_quarter, period_summaries};

use crate::routes::analysis::{Params, csv_response, study_area};
use crate::views::{Figure, PopulationView};

/// The resolution of a release when none is asked for.
const DEFAULT_RESOLUTION: u8 = 6;

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
            partnership: release.partnership_code,
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

/// The published content of a release: the gated table of records by cell and agency kind,
/// and the quarter's summary. Stored with the release as JSON and served as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseContent {
    /// The calendar quarter, such as `2026-Q1`.
    pub period: String,
    /// The H3 resolution of its cells.
    pub resolution: u8,
    /// What the table counts: `records`.
    pub measure: &'static str,
    /// Counts from 1 to this are shown as `c`.
    pub threshold: u32,
    /// How counts above the threshold are protected.
    pub perturbation: &'static str,
    /// The table's columns: agency kinds.
    pub columns: Vec<AgencyKind>,
    /// One row per cell of the partnership's coverage at the resolution.
    pub rows: Vec<ReleaseRow>,
    /// Records by agency kind: the quarter's frozen summary's figures.
    pub column_totals: Vec<Figure>,
    /// Records: the quarter's frozen summary's figure.
    pub grand_total: Figure,
    /// The quarter's figures beside the table.
    pub summary: ReleaseSummary,
}

/// One cell's row of a release's table.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseRow {
    /// The H3 cell.
    pub cell: String,
    /// Records by agency kind, in the order of `columns`.
    pub values: Vec<Figure>,
    /// The row's total.
    pub total: Figure,
}

/// The quarter's figures beside a release's table, from the gate.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseSummary {
    /// Distinct children.
    pub children: Figure,
    /// Distinct children per 10,000 aged 0 to 17 a year: the quarter's, annualised (times 4),
    /// as comparisons and the national export give rates (null where the children are
    /// suppressed or the population is unknown).
    pub rate_per_10000: Option<f64>,
    /// What the rate is, in words.
    pub rate_note: &'static str,
    /// The population the rate is built on.
    pub population: Option<PopulationView>,
    /// Records by risk indicator.
    #[schema(value_type = BTreeMap<String, Figure>)]
    pub records_by_indicator: BTreeMap<&'static str, Figure>,
}

/// The gated table and summary as they are published. The column and grand totals are the
/// quarter's frozen summary's, the figures every other product of the quarter shows.
fn content(
    period: &str,
    resolution: u8,
    cells: &[CellIndex],
    table: &ShownTable,
    frozen: &PeriodSummary,
    summary: ReleaseSummary,
) -> ReleaseContent {
    ReleaseContent {
        period: period.to_owned(),
        resolution,
        measure: "records",
        threshold: THRESHOLD,
        perturbation: "cell-key: counts above the threshold are moved by up to 2, a fixed function of the count and its records' keys (docs/privacy.md)",
        columns: AgencyKind::ALL.to_vec(),
        rows: cells
            .iter()
            .zip(table.cells().zip(table.row_totals()))
            .map(|(cell, (values, total))| ReleaseRow {
                cell: cell.to_string(),
                values: values.map(Figure::Gated).collect(),
                total: Figure::Gated(total),
            })
            .collect(),
        column_totals: frozen
            .records_by_agency_kind
            .iter()
            .copied()
            .map(Figure::Gated)
            .collect(),
        grand_total: Figure::Gated(frozen.records),
        summary,
    }
}

/// The quarter's figures beside the table, from the gate: distinct children and records per
/// indicator, the child population and the rate per 10,000 children (only where the children
/// are shown).
fn summary(summary: &PeriodSummary, population: Option<&PartnershipPopulation>) -> ReleaseSummary {
    let rate_per_10000 =
        summary
            .children
            .number()
            .zip(population)
            .and_then(|(children, population)| {
                rate_per_10000(
                    children.saturating_mul(QUARTERS_A_YEAR),
                    population.population_0_17,
                )
            });
    ReleaseSummary {
        children: Figure::Gated(summary.children),
        rate_per_10000,
        rate_note: ANNUALISED_QUARTER,
        population: population.map(PopulationView::from),
        records_by_indicator: Indicator::ALL
            .iter()
            .map(|indicator| indicator.as_str())
            .zip(
                summary
                    .records_by_indicator
                    .iter()
                    .copied()
                    .map(Figure::Gated),
            )
            .collect(),
    }
}

/// Prepares a release of one quarter: the partnership's records by cell (its whole coverage at
/// the resolution) and agency kind, disclosure-controlled. It awaits a second analyst's
/// approval before partners can see it.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code")), request_body = NewRelease, responses((status = 201, body = ReleaseView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/releases")]
pub async fn prepare(
    authorized: Authorized<PrepareRelease>,
    database: web::Data<Database>,
    cache: web::Data<RecordCache>,
    body: Deferred<web::Json<NewRelease>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let code = authorized.target().clone();
    let window =
        closed_quarter(&body.period, Utc::now().date_naive()).map_err(ApiError::BadRequest)?;
    let (from, to) = (window.first(), window.last);
    let resolution = body.resolution.unwrap_or(DEFAULT_RESOLUTION);
    if !(5..=7).contains(&resolution) {
        return Err(ApiError::BadRequest(format!(
            "`resolution`: {resolution} is finer than a release may be; use 5, 6 or 7"
        )));
    }
    authorized.note("period", &body.period);
    authorized.note("resolution", resolution);
    authorized.used_records_of([&code]);
    let stored = StoredResolution::try_from(resolution)
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let h3 = Resolution::try_from(resolution)
        .map_err(|err| ApiError::Internal(format!("resolution: {err}")))?;
    let mut cells = study_area(&database, &code, stored).await?;
    cells.sort_unstable();
    let records = cache
        .records(&database, &code, authorized.record_scope())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no partnership has the code {code}")))?;
    let period = body.period.clone();
    let population = {
        let mut conn = database.connection().await?;
        let contributed = batches::contributed_periods(
            &mut conn,
            &[code.to_string()],
            &window.starts,
            window.last,
            None,
        )
        .await?;
        if !contributed
            .get(code.as_str())
            .is_some_and(|periods| periods.iter().any(|contributed| *contributed))
        {
            return Err(ApiError::Conflict(format!(
                "no agency has contributed records for {code} in {period}: there are no data to release, and a release of zeros would say there was nothing"
            )));
        }
        let mut known = populations::of_partnerships(&mut conn, &[code.to_string()]).await?;
        populations::for_year(
            &known.remove(code.as_str()).unwrap_or_default(),
            from.year(),
        )
        .cloned()
    };
    // The quarter's frozen summary: the same figures neighbours and the national export see,
    // so a release cannot be subtracted from them.
    let quarter = period_summaries(&database, &cache, std::slice::from_ref(&code), &window)
        .await?
        .remove(&(code.to_string(), body.period.clone()))
        .ok_or_else(|| ApiError::Internal(format!("no summary of {code} {}", body.period)))?;
    let (table, published, summary_suppressed) = web::block(move || {
        let table = gate::cells_by_agency_kind(&records.records, &cells, h3, from, to);
        let suppressed = usize::from(quarter.children.number().is_none())
            + quarter
                .records_by_indicator
                .iter()
                .filter(|figure| figure.number().is_none())
                .count();
        let summary = summary(&quarter, population.as_ref());
        let published = serde_json::to_value(content(
            &period, resolution, &cells, &table, &quarter, summary,
        ));
        (table, published, suppressed)
    })
    .await
    .map_err(|err| ApiError::Internal(format!("release: {err}")))?;
    let published =
        published.map_err(|err| ApiError::Internal(format!("release content: {err}")))?;
    let (primary, secondary) = table.suppressed();
    let draft = Draft {
        partnership_code: code.to_string(),
        period: body.period.clone(),
        resolution: i16::from(resolution),
        threshold: i32::try_from(THRESHOLD).unwrap_or(i32::MAX),
        // No rounding: the gate perturbs instead.
        rounding: 1,
        content: published,
        suppressed_primary: i32::try_from(primary + summary_suppressed).unwrap_or(i32::MAX),
        suppressed_secondary: i32::try_from(secondary).unwrap_or(i32::MAX),
    };
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

/// One release with its table: JSON, or CSV (`format=csv`: `h3`, one column per agency kind,
/// `total`). Partners see it only once approved and until withdrawn.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code"), ("id" = Uuid, Path, description = "Release id"), ("format" = Option<String>, Query, description = "json (default) or csv")), responses((status = 200, body = ReleaseView), (status = 200, content_type = "text/csv", description = "h3, one column per agency kind, total"), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/releases/{id}")]
pub async fn show(
    authorized: Authorized<ReadRelease>,
    database: web::Data<Database>,
    path: Deferred<web::Path<(String, Uuid)>>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (_, id) = path.into_inner()?.into_inner();
    let mut params = Params::parse(&request)?;
    let csv = params.csv_wanted()?;
    params.finish(&["format"])?;
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
    let mut header = vec!["h3".to_owned()];
    header.extend(AgencyKind::ALL.iter().map(ToString::to_string));
    header.push("total".to_owned());
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let lines = release.content["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let mut line = vec![text(&row["cell"])];
            line.extend(row["values"].as_array().into_iter().flatten().map(text));
            line.push(text(&row["total"]));
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
