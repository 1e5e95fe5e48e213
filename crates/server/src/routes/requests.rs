//! Requests for summaries between partnerships: a partnership asks another that shares its
//! releases with it; the owner accepts (its releases of the quarters are prepared and await a
//! second analyst's approval), declines with a reason or asks a question; both sides see each
//! request's state, and the requester reads the releases once published (docs/privacy.md,
//! "Requests for summaries").

use actix_web::{HttpResponse, get, post, web};
use atlas_app::Analyses;
use atlas_app::requests::{NewSummaryRequest, check_message, releases_for, state};
use atlas_store::Database;
use atlas_store::releases::{self, Release};
use atlas_store::summary_requests::{self, Change, SummaryRequest};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{Authorized, Deferred, Guard};
use crate::guards::{AnswerSummaryRequest, ReadSummaryRequests, RequestSummary};

/// A release answering a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnsweringRelease {
    /// The quarter.
    pub period: String,
    /// The release (read it at `/api/v1/partnerships/{owner}/releases/{id}` once published).
    pub id: Uuid,
    /// `awaiting_approval` or `published`.
    pub status: &'static str,
}

/// A request for a summary as both sides see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    /// Identifier.
    pub id: Uuid,
    /// The partnership asking.
    pub requester: String,
    /// The partnership asked.
    pub owner: String,
    /// Closed quarters.
    pub periods: Vec<String>,
    /// Breakdowns wanted.
    pub breakdowns: Vec<String>,
    /// What for.
    pub purpose: String,
    /// Needed by.
    pub needed_by: NaiveDate,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// `open`, `question` (the owner asked; the requester replies), `accepted` (releases
    /// awaiting approval), `answered` (every quarter's release published) or `declined`.
    pub state: &'static str,
    /// Past its needed-by date and neither answered nor declined.
    pub overdue: bool,
    /// Who accepted or declined it.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was declined.
    pub decline_reason: Option<String>,
    /// Questions and replies, oldest first: `from` (`owner` or `requester`), `by`, `at`, `text`.
    #[schema(value_type = Vec<Object>)]
    pub messages: Value,
    /// The owner's releases answering it; the requester sees only published ones.
    pub releases: Vec<AnsweringRelease>,
    /// The regional request it is part of (the requester asked every member of a regional
    /// group), if any.
    pub regional_request: Option<Uuid>,
}

impl RequestView {
    /// The view of `request` for a caller of partnership `caller`, with the owner's releases.
    fn of(
        request: SummaryRequest,
        owner_releases: &[Release],
        caller: &str,
        today: NaiveDate,
    ) -> Self {
        let state = state(&request, owner_releases);
        // The requester sees a release only once the request is accepted and the release
        // published, as every partner does.
        let requester = caller == request.requester_code;
        let accepted = request.state == "accepted";
        let releases = releases_for(&request, owner_releases)
            .into_iter()
            .filter(|release| !requester || (accepted && release.is_published()))
            .map(|release| AnsweringRelease {
                period: release.period.clone(),
                id: release.id,
                status: if release.is_published() {
                    "published"
                } else {
                    "awaiting_approval"
                },
            })
            .collect();
        Self {
            overdue: request.needed_by < today && !matches!(state, "answered" | "declined"),
            id: request.id,
            requester: request.requester_code,
            owner: request.owner_code,
            periods: request.periods,
            breakdowns: request.breakdowns,
            purpose: request.purpose,
            needed_by: request.needed_by,
            requested_by: request.requested_by,
            requested_at: request.requested_at,
            state,
            decided_by: request.decided_by,
            decided_at: request.decided_at,
            decline_reason: request.decline_reason,
            messages: request.messages,
            releases,
            regional_request: request.regional_request_id,
        }
    }
}

/// The requests a partnership made and received.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestLists {
    /// Requests made to it, newest first: its analysts' queue.
    pub incoming: Vec<RequestView>,
    /// Requests it made, newest first.
    pub outgoing: Vec<RequestView>,
}

/// A decline reason, a question or a reply.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// The words (at most 2,000 characters).
    pub text: String,
}

/// The view of one request for `authorized`'s caller.
async fn view<G: Guard>(
    authorized: &Authorized<G>,
    database: &Database,
    request: SummaryRequest,
) -> Result<RequestView, ApiError> {
    let mut conn = database.connection().await?;
    let owner_releases = releases::list(&mut conn, &request.owner_code).await?;
    Ok(RequestView::of(
        request,
        &owner_releases,
        authorized.principal().partnership.as_str(),
        Utc::now().date_naive(),
    ))
}

/// Asks the partnership `code`, which shares its releases with the caller's, for a summary of
/// closed quarters.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the partnership asked")), request_body = NewSummaryRequest, responses((status = 201, body = RequestView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/summary-requests")]
#[tracing::instrument(skip_all)]
pub async fn create(
    authorized: Authorized<RequestSummary>,
    database: web::Data<Database>,
    analyses: web::Data<Analyses>,
    body: Deferred<web::Json<NewSummaryRequest>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?.into_inner();
    let owner = authorized.target().clone();
    authorized.note("periods", body.periods.join(" "));
    let request = analyses
        .make_request(
            &authorized.principal().partnership,
            &owner,
            &body,
            Utc::now().date_naive(),
            &authorized.principal().subject,
            &authorized.change_entry(),
        )
        .await?;
    authorized.committed();
    Ok(HttpResponse::Created().json(view(&authorized, &database, request).await?))
}

/// The requests the partnership `code` (the caller's own) made and received.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the caller's partnership")), responses((status = 200, body = RequestLists), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/summary-requests")]
#[tracing::instrument(skip_all)]
pub async fn list(
    authorized: Authorized<ReadSummaryRequests>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let code = authorized.target().to_string();
    let today = Utc::now().date_naive();
    let mut conn = database.connection().await?;
    let requests = summary_requests::of_partnership(&mut conn, &code).await?;
    let mut incoming = Vec::new();
    let mut outgoing = Vec::new();
    let mut releases_of: std::collections::HashMap<String, Vec<Release>> =
        std::collections::HashMap::new();
    for request in requests {
        if !releases_of.contains_key(&request.owner_code) {
            let listed = releases::list(&mut conn, &request.owner_code).await?;
            releases_of.insert(request.owner_code.clone(), listed);
        }
        let owner_releases = releases_of
            .get(&request.owner_code)
            .map_or(&[][..], Vec::as_slice);
        let incoming_request = request.owner_code == code;
        let shown = RequestView::of(request, owner_releases, &code, today);
        if incoming_request {
            incoming.push(shown);
        } else {
            outgoing.push(shown);
        }
    }
    authorized.returned(incoming.len() + outgoing.len());
    Ok(HttpResponse::Ok().json(RequestLists { incoming, outgoing }))
}

/// Accepts a request made to the caller's partnership: each of its quarters without a release in
/// force gets one prepared through the publication gate, awaiting a second analyst's approval.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the caller's partnership"), ("id" = Uuid, Path, description = "Request id")), responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/summary-requests/{id}/accept")]
#[tracing::instrument(skip_all)]
pub async fn accept(
    authorized: Authorized<AnswerSummaryRequest>,
    database: web::Data<Database>,
    analyses: web::Data<Analyses>,
    path: Deferred<web::Path<(String, Uuid)>>,
) -> Result<HttpResponse, ApiError> {
    let (_, id) = path.into_inner()?.into_inner();
    let request = analyses
        .accept_request(
            authorized.target(),
            id,
            &authorized.principal().subject,
            Utc::now().date_naive(),
            &authorized.change_entry(),
        )
        .await?;
    authorized.committed();
    Ok(HttpResponse::Ok().json(view(&authorized, &database, request).await?))
}

/// Declines a request made to the caller's partnership, with the reason the requester sees.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the caller's partnership"), ("id" = Uuid, Path, description = "Request id")), request_body = Message, responses((status = 200, body = RequestView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/summary-requests/{id}/decline")]
#[tracing::instrument(skip_all)]
pub async fn decline(
    authorized: Authorized<AnswerSummaryRequest>,
    database: web::Data<Database>,
    path: Deferred<web::Path<(String, Uuid)>>,
    body: Deferred<web::Json<Message>>,
) -> Result<HttpResponse, ApiError> {
    let (id, text) = message(path, body)?;
    let code = authorized.target().to_string();
    change(&authorized, &database, &code, id, Change::Decline(text)).await
}

/// Asks the requester a question about a request made to the caller's partnership.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the caller's partnership"), ("id" = Uuid, Path, description = "Request id")), request_body = Message, responses((status = 200, body = RequestView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/summary-requests/{id}/question")]
#[tracing::instrument(skip_all)]
pub async fn question(
    authorized: Authorized<AnswerSummaryRequest>,
    database: web::Data<Database>,
    path: Deferred<web::Path<(String, Uuid)>>,
    body: Deferred<web::Json<Message>>,
) -> Result<HttpResponse, ApiError> {
    let (id, text) = message(path, body)?;
    let code = authorized.target().to_string();
    change(&authorized, &database, &code, id, Change::Ask(text)).await
}

/// Replies to the owner's question about a request the caller's partnership made to `code`.
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the partnership asked"), ("id" = Uuid, Path, description = "Request id")), request_body = Message, responses((status = 200, body = RequestView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/summary-requests/{id}/reply")]
#[tracing::instrument(skip_all)]
pub async fn reply(
    authorized: Authorized<RequestSummary>,
    database: web::Data<Database>,
    path: Deferred<web::Path<(String, Uuid)>>,
    body: Deferred<web::Json<Message>>,
) -> Result<HttpResponse, ApiError> {
    let (id, text) = message(path, body)?;
    let requester = authorized.principal().partnership.to_string();
    change(&authorized, &database, &requester, id, Change::Reply(text)).await
}

/// The request's id and the checked text of a decline, question or reply.
fn message(
    path: Deferred<web::Path<(String, Uuid)>>,
    body: Deferred<web::Json<Message>>,
) -> Result<(Uuid, String), ApiError> {
    let (_, id) = path.into_inner()?.into_inner();
    let text = body.into_inner()?.into_inner().text;
    check_message("text", &text).map_err(ApiError::BadRequest)?;
    Ok((id, text))
}

/// Applies `change` to the request `id` on the side of `partnership`.
async fn change<G: Guard>(
    authorized: &Authorized<G>,
    database: &Database,
    partnership: &str,
    id: Uuid,
    change: Change,
) -> Result<HttpResponse, ApiError> {
    let request = {
        let mut conn = database.connection().await?;
        summary_requests::change(
            &mut conn,
            partnership,
            id,
            &change,
            &authorized.principal().subject,
            &authorized.change_entry(),
        )
        .await?
    };
    authorized.committed();
    Ok(HttpResponse::Ok().json(view(authorized, database, request).await?))
}

/// One thing waiting for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingItem {
    /// `request_to_answer`, `release_to_approve`, `question_to_reply`, `answer_ready` or
    /// `regional_summary_ready`.
    pub kind: &'static str,
    /// What it is, in words.
    pub text: String,
    /// The web application's page that deals with it (`requests` or `comparison`).
    pub page: &'static str,
    /// Past its needed-by date.
    pub overdue: bool,
}

/// What is waiting for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingList {
    /// Oldest first within each kind: requests to answer and releases to approve (partnership
    /// analysts), questions to reply to, answers and regional summaries ready (until their
    /// needed-by date passes).
    pub items: Vec<WaitingItem>,
}

/// What is waiting for the caller in their own partnership (`code`): requests made to it to
/// answer and releases another analyst prepared to approve (partnership analysts); questions to
/// reply to, and answers and regional summaries ready to read (analysts and partner viewers).
#[utoipa::path(tag = "releases", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code of the caller's partnership")), responses((status = 200, body = WaitingList), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/waiting")]
#[tracing::instrument(skip_all)]
pub async fn waiting(
    authorized: Authorized<ReadSummaryRequests>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let code = authorized.target().to_string();
    let principal = authorized.principal();
    let analyst = principal
        .roles
        .contains(&atlas_access::Role::PartnershipAnalyst);
    let today = Utc::now().date_naive();
    let mut conn = database.connection().await?;
    let mut items = Vec::new();
    let own_releases = releases::list(&mut conn, &code).await?;
    let mut requests = summary_requests::of_partnership(&mut conn, &code).await?;
    requests.reverse();
    // Each partnership's releases are read once, however many requests were made to it.
    let mut owners: std::collections::HashMap<String, Vec<Release>> =
        std::collections::HashMap::new();
    for request in &requests {
        let periods = request.periods.join(", ");
        let overdue = request.needed_by < today;
        if request.owner_code == code {
            if analyst && request.state == "open" {
                items.push(WaitingItem {
                    kind: "request_to_answer",
                    text: format!(
                        "{} asks for a summary of {periods}, needed by {}",
                        request.requester_code, request.needed_by
                    ),
                    page: "requests",
                    overdue,
                });
            }
            continue;
        }
        if request.state == "question" {
            items.push(WaitingItem {
                kind: "question_to_reply",
                text: format!(
                    "{} asked a question about your request for {periods}",
                    request.owner_code
                ),
                page: "requests",
                overdue,
            });
        } else if request.regional_request_id.is_none() && !overdue {
            if !owners.contains_key(&request.owner_code) {
                let listed = releases::list(&mut conn, &request.owner_code).await?;
                owners.insert(request.owner_code.clone(), listed);
            }
            let owner_releases = owners
                .get(&request.owner_code)
                .map_or(&[][..], Vec::as_slice);
            if state(request, owner_releases) == "answered" {
                items.push(WaitingItem {
                    kind: "answer_ready",
                    text: format!(
                        "{} answered your request for {periods}: read its release",
                        request.owner_code
                    ),
                    page: "requests",
                    overdue,
                });
            }
        }
    }
    if analyst {
        for release in own_releases.iter().rev().filter(|release| {
            release.withdrawn_at.is_none()
                && !release.is_published()
                && release.prepared_by != principal.subject
        }) {
            items.push(WaitingItem {
                kind: "release_to_approve",
                text: format!(
                    "The {} release, prepared by {}, awaits a second analyst's approval",
                    release.period, release.prepared_by
                ),
                page: "comparison",
                overdue: false,
            });
        }
    }
    for summary in
        crate::routes::regional_requests::listed(&mut conn, &authorized, &code, today, true).await?
    {
        if summary.state == "assembled" {
            items.push(WaitingItem {
                kind: "regional_summary_ready",
                text: format!(
                    "The regional summary from {} for {} is assembled",
                    summary.group,
                    summary.periods.join(", ")
                ),
                page: "requests",
                overdue: false,
            });
        }
    }
    authorized.returned(items.len());
    Ok(HttpResponse::Ok().json(WaitingList { items }))
}
