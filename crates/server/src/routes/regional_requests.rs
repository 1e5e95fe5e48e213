//! Regional groups and regional requests: a partnership asks every member of a named regional
//! group (each must share its releases with it) for one summary; each member answers in its own
//! queue, and the requester reads the answers assembled into one regional summary of published
//! figures (docs/privacy.md, "Requests for summaries").

use actix_web::{HttpResponse, get, post, web};
use atlas_access::{Action, Decision, Resource, decide};
use atlas_app::Analyses;
use atlas_app::regional_requests::{MemberReleases, NewRegionalRequest, RegionalSummary, assemble};
use atlas_domain::GssCode;
use atlas_store::summary_requests::{self, RegionalRequest, SummaryRequest};
use atlas_store::{Database, agreements, partnerships, releases};
use chrono::{NaiveDate, Utc};
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{Authorized, Deferred, Guard};
use crate::guards::{ReadReference, ReadSummaryRequests, RequestRegionalSummary};

/// The most regional requests a list shows (the newest).
const LISTED: usize = 50;

/// A regional group.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionalGroupView {
    /// Its name.
    pub name: String,
    /// Its members' GSS codes, sorted.
    pub members: Vec<String>,
}

/// The regional groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionalGroupList {
    /// Every group, by name.
    pub groups: Vec<RegionalGroupView>,
}

/// The regional requests a partnership made.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionalRequestList {
    /// The newest 50, newest first, without their assembled tables (read one for those).
    pub requests: Vec<RegionalSummary>,
}

/// Lists the regional groups a regional request may ask.
#[utoipa::path(tag = "releases", security(("bearer" = [])), responses((status = 200, body = RegionalGroupList), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/regional-groups")]
#[tracing::instrument(skip_all)]
pub async fn groups(
    authorized: Authorized<ReadReference>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let groups: Vec<RegionalGroupView> = partnerships::regional_groups(&mut conn)
        .await?
        .into_iter()
        .map(|(name, members)| RegionalGroupView { name, members })
        .collect();
    authorized.returned(groups.len());
    Ok(HttpResponse::Ok().json(RegionalGroupList { groups }))
}

/// Asks every member of a regional group but the caller's own partnership (`code`) for the same
/// summary: one request to each, in each member's queue. Refused whole, naming them, when some
/// member does not share its releases with the caller's partnership.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the caller's partnership")), request_body = NewRegionalRequest, responses((status = 201, body = RegionalSummary), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/regional-requests")]
#[tracing::instrument(skip_all)]
pub async fn create(
    authorized: Authorized<RequestRegionalSummary>,
    database: web::Data<Database>,
    analyses: web::Data<Analyses>,
    body: Deferred<web::Json<NewRegionalRequest>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?.into_inner();
    let requester = authorized.target().clone();
    let today = Utc::now().date_naive();
    let members = {
        let mut conn = database.connection().await?;
        let members = partnerships::regional_groups(&mut conn)
            .await?
            .remove(&body.group)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no regional group is named `{}`; see /api/v1/regional-groups",
                    body.group
                ))
            })?;
        let mut refused = Vec::new();
        for member in members
            .iter()
            .filter(|member| **member != requester.as_str())
        {
            if !shares_releases(&mut conn, &authorized, member, today).await? {
                refused.push(member.clone());
            }
        }
        if !refused.is_empty() {
            return Err(ApiError::Forbidden(format!(
                "no sharing agreement in force shares the releases of {} with your partnership, so they cannot be asked; a partnership's administrator makes agreements",
                refused.join(", ")
            )));
        }
        members
    };
    authorized.note("group", body.group.clone());
    authorized.note("periods", body.periods.join(" "));
    let (regional, asked) = analyses
        .make_regional_request(
            &requester,
            &members,
            &body,
            today,
            &authorized.principal().subject,
            &authorized.change_entry(),
        )
        .await?;
    authorized.committed();
    let mut conn = database.connection().await?;
    let summary = summary_of(
        &mut conn,
        &authorized,
        regional,
        asked,
        today,
        false,
        &mut MemberReleases::new(),
    )
    .await?;
    Ok(HttpResponse::Created().json(summary))
}

/// The regional requests the caller's partnership (`code`) made, newest first, each with its
/// members' answers.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the caller's partnership")), responses((status = 200, body = RegionalRequestList), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/regional-requests")]
#[tracing::instrument(skip_all)]
pub async fn list(
    authorized: Authorized<ReadSummaryRequests>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let code = authorized.target().to_string();
    let requests = listed(
        &mut conn,
        &authorized,
        &code,
        Utc::now().date_naive(),
        false,
    )
    .await?;
    authorized.returned(requests.len());
    Ok(HttpResponse::Ok().json(RegionalRequestList { requests }))
}

/// The newest 50 regional requests of `code` (the caller's partnership), each with its
/// members' answers but not its assembled tables; only those still wanted (needed by today or
/// later) when `current`.
///
/// # Errors
/// [`ApiError`] when PostgreSQL fails.
pub(crate) async fn listed<G: Guard>(
    conn: &mut AsyncPgConnection,
    authorized: &Authorized<G>,
    code: &str,
    today: NaiveDate,
    current: bool,
) -> Result<Vec<RegionalSummary>, ApiError> {
    let mut summaries = Vec::new();
    let mut known = MemberReleases::new();
    for regional in summary_requests::regional_of(conn, code)
        .await?
        .into_iter()
        .take(LISTED)
    {
        let Some((regional, asked)) =
            summary_requests::find_regional(conn, code, regional.id).await?
        else {
            continue;
        };
        if current
            && asked
                .first()
                .is_some_and(|request| request.needed_by < today)
        {
            continue;
        }
        summaries
            .push(summary_of(conn, authorized, regional, asked, today, false, &mut known).await?);
    }
    Ok(summaries)
}

/// One regional request the caller's partnership (`code`) made, with the regional summary
/// assembled from its members' published releases once none is pending.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the caller's partnership"), ("id" = Uuid, Path, description = "Regional request id")), responses((status = 200, body = RegionalSummary), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/regional-requests/{id}")]
#[tracing::instrument(skip_all)]
pub async fn show(
    authorized: Authorized<ReadSummaryRequests>,
    database: web::Data<Database>,
    path: Deferred<web::Path<(String, Uuid)>>,
) -> Result<HttpResponse, ApiError> {
    let (_, id) = path.into_inner()?.into_inner();
    let code = authorized.target().to_string();
    let mut conn = database.connection().await?;
    let (regional, asked) = summary_requests::find_regional(&mut conn, &code, id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("your partnership made no regional request {id}"))
        })?;
    let summary = summary_of(
        &mut conn,
        &authorized,
        regional,
        asked,
        Utc::now().date_naive(),
        true,
        &mut MemberReleases::new(),
    )
    .await?;
    authorized.returned(summary.summary.len());
    Ok(HttpResponse::Ok().json(summary))
}

/// Whether `member` shares its releases with the caller's partnership today, by the access
/// policy's rule for asking it for a summary.
async fn shares_releases<G: Guard>(
    conn: &mut AsyncPgConnection,
    authorized: &Authorized<G>,
    member: &str,
    today: NaiveDate,
) -> Result<bool, ApiError> {
    let principal = authorized.principal();
    let code = GssCode::parse(member).map_err(|err| ApiError::Internal(err.to_string()))?;
    let shared_scopes =
        agreements::shared_scopes(conn, &code, &principal.partnership, today).await?;
    let resource = Resource::Partnership {
        code,
        shared_scopes,
    };
    Ok(decide(principal, Action::RequestSummary, &resource) == Decision::Allow)
}

/// Each member's releases, read only while the caller may read them: another member's while
/// it shares them with the caller's partnership, the caller's own partnership's when the
/// caller's role reads its releases (a partner viewer's does not). Read once per member for all
/// the regional requests of one answer (`known`).
async fn member_releases<G: Guard>(
    conn: &mut AsyncPgConnection,
    authorized: &Authorized<G>,
    members: &[String],
    today: NaiveDate,
    known: &mut MemberReleases,
) -> Result<MemberReleases, ApiError> {
    let principal = authorized.principal();
    let own = principal.partnership.to_string();
    let mut wanted = MemberReleases::new();
    for member in members {
        if !known.contains_key(member) {
            let readable = if *member == own {
                let resource = Resource::Partnership {
                    code: principal.partnership.clone(),
                    shared_scopes: std::collections::BTreeSet::new(),
                };
                if decide(principal, Action::ReadRelease, &resource) == Decision::Allow {
                    Ok(releases::list(conn, member).await?)
                } else {
                    Err("your role does not read your own partnership's releases".to_owned())
                }
            } else if shares_releases(conn, authorized, member, today).await? {
                Ok(releases::list(conn, member).await?)
            } else {
                Err(
                    "its agreement to share releases with your partnership is no longer in force"
                        .to_owned(),
                )
            };
            known.insert(member.clone(), readable);
        }
        if let Some(readable) = known.get(member) {
            wanted.insert(member.clone(), readable.clone());
        }
    }
    Ok(wanted)
}

/// The regional summary of `regional` (with its tables when `tables`), from the members'
/// releases the caller may read; the members whose releases it uses are recorded in the audit
/// entry, so each member's list of outside readers shows it.
async fn summary_of<G: Guard>(
    conn: &mut AsyncPgConnection,
    authorized: &Authorized<G>,
    regional: RegionalRequest,
    asked: Vec<SummaryRequest>,
    today: NaiveDate,
    tables: bool,
    known: &mut MemberReleases,
) -> Result<RegionalSummary, ApiError> {
    let releases = member_releases(conn, authorized, &regional.members, today, known).await?;
    let summary = assemble(regional, asked, &releases, today, tables);
    if tables {
        authorized.used_records_of(
            summary
                .summary
                .iter()
                .flat_map(|period| period.partnerships.iter())
                .collect::<std::collections::BTreeSet<_>>(),
        );
    }
    Ok(summary)
}
