//! Requests for summaries between partnerships: stored when made, changed only by the owner's
//! decision or a question and its reply, each change with its audit entry in one transaction;
//! never deleted (the table's trigger enforces it).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::{regional_requests, summary_requests};
use crate::{StoreError, audit};

/// A request for a summary.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = summary_requests, check_for_backend(diesel::pg::Pg))]
pub struct SummaryRequest {
    /// Identifier.
    pub id: Uuid,
    /// The partnership asking.
    pub requester_code: String,
    /// The partnership asked.
    pub owner_code: String,
    /// Closed calendar quarters, such as `2025-Q4`.
    pub periods: Vec<String>,
    /// The breakdowns wanted, from the fixed menu.
    pub breakdowns: Vec<String>,
    /// What the summary is for.
    pub purpose: String,
    /// When it is needed by.
    pub needed_by: NaiveDate,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// `open`, `question`, `accepted` or `declined`.
    pub state: String,
    /// Who accepted or declined it.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was declined.
    pub decline_reason: Option<String>,
    /// Questions and replies, oldest first: `{from, by, at, text}`.
    pub messages: serde_json::Value,
    /// The regional request it is part of, if any.
    pub regional_request_id: Option<Uuid>,
}

/// A regional request: the same summary asked of every member of a regional group but the
/// requester, one [`SummaryRequest`] each.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = regional_requests, check_for_backend(diesel::pg::Pg))]
pub struct RegionalRequest {
    /// Identifier.
    pub id: Uuid,
    /// The partnership asking.
    pub requester_code: String,
    /// The regional group asked.
    pub group_name: String,
    /// The group's members when asked, sorted (the requester among them if it is a member).
    pub members: Vec<String>,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
}

/// A request about to be made.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// The partnership asking.
    pub requester_code: String,
    /// The partnership asked.
    pub owner_code: String,
    /// Closed quarters.
    pub periods: Vec<String>,
    /// Breakdowns wanted.
    pub breakdowns: Vec<String>,
    /// What for.
    pub purpose: String,
    /// Needed by.
    pub needed_by: NaiveDate,
}

/// Stores `request` made by `requested_by`, with `entry` in the audit trail.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn create(
    conn: &mut AsyncPgConnection,
    request: &NewRequest,
    requested_by: &str,
    entry: &audit::NewEntry,
) -> Result<SummaryRequest, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        insert(conn, request, None, requested_by, entry).await
    })
    .await
}

/// Inserts `request` (part of the regional request `regional`, if any) with its audit entry.
async fn insert(
    conn: &mut AsyncPgConnection,
    request: &NewRequest,
    regional: Option<Uuid>,
    requested_by: &str,
    entry: &audit::NewEntry,
) -> Result<SummaryRequest, StoreError> {
    let stored = diesel::insert_into(summary_requests::table)
        .values((
            summary_requests::id.eq(Uuid::new_v4()),
            summary_requests::requester_code.eq(&request.requester_code),
            summary_requests::owner_code.eq(&request.owner_code),
            summary_requests::periods.eq(&request.periods),
            summary_requests::breakdowns.eq(&request.breakdowns),
            summary_requests::purpose.eq(&request.purpose),
            summary_requests::needed_by.eq(request.needed_by),
            summary_requests::requested_by.eq(requested_by),
            summary_requests::state.eq("open"),
            summary_requests::regional_request_id.eq(regional),
        ))
        .returning(SummaryRequest::as_returning())
        .get_result(conn)
        .await?;
    let mut entry = entry.clone();
    entry.resource = format!(
        "/api/v1/partnerships/{}/summary-requests/{}",
        stored.owner_code, stored.id
    );
    entry.partnership = Some(stored.owner_code.clone());
    audit::append(conn, &[entry]).await?;
    Ok(stored)
}

/// Stores a regional request of `group` (its `members` when asked) by `requested_by`: one
/// request like `request` to each member but the requester, all in one transaction with
/// `entry` in the audit trail for the regional request and for each member's.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn create_regional(
    conn: &mut AsyncPgConnection,
    group: &str,
    members: &[String],
    request: &NewRequest,
    requested_by: &str,
    entry: &audit::NewEntry,
) -> Result<(RegionalRequest, Vec<SummaryRequest>), StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let regional = diesel::insert_into(regional_requests::table)
            .values((
                regional_requests::id.eq(Uuid::new_v4()),
                regional_requests::requester_code.eq(&request.requester_code),
                regional_requests::group_name.eq(group),
                regional_requests::members.eq(members),
                regional_requests::requested_by.eq(requested_by),
            ))
            .returning(RegionalRequest::as_returning())
            .get_result(conn)
            .await?;
        // Entries go to the requester's chain and each member's: take those chains' locks
        // at once, in the order every appender takes them, before appending more than once.
        let chains: Vec<Option<&str>> = std::iter::once(request.requester_code.as_str())
            .chain(members.iter().map(String::as_str))
            .chain(entry.partnership.as_deref())
            .map(Some)
            .collect();
        audit::lock_chains(conn, &chains).await?;
        let mut regional_entry = entry.clone();
        regional_entry.resource = format!(
            "/api/v1/partnerships/{}/regional-requests/{}",
            regional.requester_code, regional.id
        );
        audit::append(conn, &[regional_entry]).await?;
        let mut asked = Vec::new();
        for member in members
            .iter()
            .filter(|member| **member != request.requester_code)
        {
            let to_member = NewRequest {
                owner_code: member.clone(),
                ..request.clone()
            };
            asked.push(insert(conn, &to_member, Some(regional.id), requested_by, entry).await?);
        }
        Ok((regional, asked))
    })
    .await
}

/// The regional requests `requester` made, newest first.
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn regional_of(
    conn: &mut AsyncPgConnection,
    requester: &str,
) -> Result<Vec<RegionalRequest>, StoreError> {
    Ok(regional_requests::table
        .filter(regional_requests::requester_code.eq(requester))
        .order(regional_requests::requested_at.desc())
        .select(RegionalRequest::as_select())
        .load(conn)
        .await?)
}

/// The regional request `id` made by `requester`, with its members' requests.
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find_regional(
    conn: &mut AsyncPgConnection,
    requester: &str,
    id: Uuid,
) -> Result<Option<(RegionalRequest, Vec<SummaryRequest>)>, StoreError> {
    let Some(regional) = regional_requests::table
        .filter(regional_requests::id.eq(id))
        .filter(regional_requests::requester_code.eq(requester))
        .select(RegionalRequest::as_select())
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let asked = summary_requests::table
        .filter(summary_requests::regional_request_id.eq(id))
        .order(summary_requests::owner_code)
        .select(SummaryRequest::as_select())
        .load(conn)
        .await?;
    Ok(Some((regional, asked)))
}

/// The requests `partnership` made or received, newest first.
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn of_partnership(
    conn: &mut AsyncPgConnection,
    partnership: &str,
) -> Result<Vec<SummaryRequest>, StoreError> {
    Ok(summary_requests::table
        .filter(
            summary_requests::owner_code
                .eq(partnership)
                .or(summary_requests::requester_code.eq(partnership)),
        )
        .order(summary_requests::requested_at.desc())
        .select(SummaryRequest::as_select())
        .load(conn)
        .await?)
}

/// The request `id` made to or by `partnership`.
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(
    conn: &mut AsyncPgConnection,
    partnership: &str,
    id: Uuid,
) -> Result<Option<SummaryRequest>, StoreError> {
    Ok(summary_requests::table
        .filter(summary_requests::id.eq(id))
        .filter(
            summary_requests::owner_code
                .eq(partnership)
                .or(summary_requests::requester_code.eq(partnership)),
        )
        .select(SummaryRequest::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A change to a request.
#[derive(Debug, Clone)]
pub enum Change {
    /// The owner accepts it.
    Accept,
    /// The owner declines it, for this reason.
    Decline(String),
    /// The owner asks the requester this question.
    Ask(String),
    /// The requester replies to the owner's question.
    Reply(String),
}

/// Applies `change` by `by` (of `partnership`: the owner, or the requester for a reply) to the
/// request `id`, with `entry` in the audit trail, under a row lock.
///
/// # Errors
/// [`StoreError::NotFound`] when `partnership` has no such request on its side of the change;
/// [`StoreError::Conflict`] when the request's state does not allow it; [`StoreError`] when
/// PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn change(
    conn: &mut AsyncPgConnection,
    partnership: &str,
    id: Uuid,
    change: &Change,
    by: &str,
    entry: &audit::NewEntry,
) -> Result<SummaryRequest, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let request: SummaryRequest = summary_requests::table
            .filter(summary_requests::id.eq(id))
            .for_update()
            .select(SummaryRequest::as_select())
            .first(conn)
            .await
            .optional()?
            .filter(|request| match change {
                Change::Reply(_) => request.requester_code == partnership,
                _ => request.owner_code == partnership,
            })
            .ok_or_else(|| StoreError::NotFound(format!("no request {id} to answer here")))?;
        let settled = |state: &str| {
            StoreError::Conflict(format!("the request was {state} already; it cannot change"))
        };
        if request.state == "accepted" || request.state == "declined" {
            return Err(settled(&request.state));
        }
        let message = |from: &str, text: &str| {
            let mut messages = request.messages.as_array().cloned().unwrap_or_default();
            messages
                .push(serde_json::json!({"from": from, "by": by, "at": Utc::now(), "text": text}));
            serde_json::Value::Array(messages)
        };
        let target = summary_requests::table.find(id);
        let updated = match change {
            Change::Accept => {
                diesel::update(target)
                    .set((
                        summary_requests::state.eq("accepted"),
                        summary_requests::decided_by.eq(by),
                        summary_requests::decided_at.eq(Utc::now()),
                    ))
                    .returning(SummaryRequest::as_returning())
                    .get_result(conn)
                    .await?
            }
            Change::Decline(reason) => {
                diesel::update(target)
                    .set((
                        summary_requests::state.eq("declined"),
                        summary_requests::decided_by.eq(by),
                        summary_requests::decided_at.eq(Utc::now()),
                        summary_requests::decline_reason.eq(reason),
                    ))
                    .returning(SummaryRequest::as_returning())
                    .get_result(conn)
                    .await?
            }
            Change::Ask(question) => {
                diesel::update(target)
                    .set((
                        summary_requests::state.eq("question"),
                        summary_requests::messages.eq(message("owner", question)),
                    ))
                    .returning(SummaryRequest::as_returning())
                    .get_result(conn)
                    .await?
            }
            Change::Reply(reply) => {
                if request.state != "question" {
                    return Err(StoreError::Conflict(
                        "the owner has asked no question to reply to".to_owned(),
                    ));
                }
                diesel::update(target)
                    .set((
                        summary_requests::state.eq("open"),
                        summary_requests::messages.eq(message("requester", reply)),
                    ))
                    .returning(SummaryRequest::as_returning())
                    .get_result(conn)
                    .await?
            }
        };
        let mut entry = entry.clone();
        entry.resource = format!(
            "/api/v1/partnerships/{}/summary-requests/{id}",
            updated.owner_code
        );
        audit::append(conn, &[entry]).await?;
        Ok(updated)
    })
    .await
}
