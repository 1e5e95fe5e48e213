//! Releases: disclosure-controlled tables a partnership publishes to its partners. Prepared by
//! one partnership analyst, approved by another, immutable, withdrawn only (the table's
//! triggers enforce it); every change appends its audit entry in the same transaction.

use atlas_domain::GssCode;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::releases;
use crate::{StoreError, audit};

/// A release.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = releases, check_for_backend(diesel::pg::Pg))]
pub struct Release {
    /// Identifier.
    pub id: Uuid,
    /// The publishing partnership.
    #[diesel(deserialize_as = String)]
    pub partnership_code: GssCode,
    /// 1, 2, … within the partnership.
    pub version: i32,
    /// The calendar quarter, such as `2026-Q1`.
    pub period: String,
    /// The H3 resolution of its cells (5 to 7).
    pub resolution: i16,
    /// The suppression threshold used.
    pub threshold: i32,
    /// The rounding base of totals used.
    pub rounding: i32,
    /// The published tables.
    pub content: serde_json::Value,
    /// Entries suppressed as counts from 1 to the threshold.
    pub suppressed_primary: i32,
    /// Entries suppressed so that others cannot be worked out.
    pub suppressed_secondary: i32,
    /// Who prepared it.
    pub prepared_by: String,
    /// When.
    pub prepared_at: DateTime<Utc>,
    /// Who approved it; `None` while it awaits approval (partners cannot see it).
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<DateTime<Utc>>,
    /// Who withdrew it.
    pub withdrawn_by: Option<String>,
    /// When; partners no longer see it.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

impl Release {
    /// Approved and not withdrawn: what partners may read.
    #[must_use]
    pub const fn is_published(&self) -> bool {
        self.approved_at.is_some() && self.withdrawn_at.is_none()
    }
}

/// A release about to be prepared.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The publishing partnership.
    pub partnership_code: GssCode,
    /// The calendar quarter.
    pub period: String,
    /// The H3 resolution.
    pub resolution: i16,
    /// The suppression threshold.
    pub threshold: i32,
    /// The rounding base.
    pub rounding: i32,
    /// The published tables.
    pub content: serde_json::Value,
    /// Primary suppressions.
    pub suppressed_primary: i32,
    /// Secondary suppressions.
    pub suppressed_secondary: i32,
}

/// Stores a prepared release (the next version of the partnership's) and appends `entry`.
///
/// # Errors
/// [`StoreError::Conflict`] when the quarter has a release awaiting approval or was ever
/// published, or when the partnership's releases so far use another resolution: any of these
/// would give a partner two tables that overlap, whose difference could expose a suppressed
/// value.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn prepare(
    conn: &mut AsyncPgConnection,
    draft: &Draft,
    prepared_by: &str,
    entry: &audit::NewEntry,
) -> Result<Release, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        // Versions are numbered under a lock on the partnership's releases.
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('releases:' || $1))")
            .bind::<diesel::sql_types::Text, _>(draft.partnership_code.as_str())
            .execute(conn)
            .await?;
        let earlier: Vec<Release> = releases::table
            .filter(releases::partnership_code.eq(draft.partnership_code.as_str()))
            .select(Release::as_select())
            .load(conn)
            .await?;
        if let Some(other) = earlier
            .iter()
            .find(|release| release.resolution != draft.resolution)
        {
            return Err(StoreError::Conflict(format!(
                "this partnership's releases are at resolution {} (version {}); every release \
                 uses one resolution, so that no two can be subtracted",
                other.resolution, other.version
            )));
        }
        if let Some(other) = earlier
            .iter()
            .find(|release| release.period == draft.period && release.approved_at.is_some())
        {
            return Err(StoreError::Conflict(format!(
                "{} was published as release version {}: partners may hold it, and a second \
                 version of the same quarter would let them subtract one from the other, so \
                 a published quarter is never released again",
                draft.period, other.version
            )));
        }
        if let Some(other) = earlier
            .iter()
            .find(|release| release.period == draft.period && release.withdrawn_at.is_none())
        {
            return Err(StoreError::Conflict(format!(
                "{} already has release version {} awaiting approval; withdraw it first",
                draft.period, other.version
            )));
        }
        let version = earlier
            .iter()
            .map(|release| release.version)
            .max()
            .unwrap_or(0)
            + 1;
        let release = diesel::insert_into(releases::table)
            .values((
                releases::id.eq(Uuid::new_v4()),
                releases::partnership_code.eq(draft.partnership_code.as_str()),
                releases::version.eq(version),
                releases::period.eq(&draft.period),
                releases::resolution.eq(draft.resolution),
                releases::threshold.eq(draft.threshold),
                releases::rounding.eq(draft.rounding),
                releases::content.eq(&draft.content),
                releases::suppressed_primary.eq(draft.suppressed_primary),
                releases::suppressed_secondary.eq(draft.suppressed_secondary),
                releases::prepared_by.eq(prepared_by),
            ))
            .returning(Release::as_returning())
            .get_result(conn)
            .await?;
        let mut entry = entry.clone();
        entry.resource = format!(
            "/api/v1/partnerships/{}/releases/{}",
            release.partnership_code, release.id
        );
        audit::append(conn, &[entry]).await?;
        Ok(release)
    })
    .await
}

/// A partnership's release by id.
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(
    conn: &mut AsyncPgConnection,
    partnership_code: &str,
    id: Uuid,
) -> Result<Option<Release>, StoreError> {
    Ok(releases::table
        .filter(releases::partnership_code.eq(partnership_code))
        .filter(releases::id.eq(id))
        .select(Release::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A partnership's releases, newest version first.
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(
    conn: &mut AsyncPgConnection,
    partnership_code: &str,
) -> Result<Vec<Release>, StoreError> {
    Ok(releases::table
        .filter(releases::partnership_code.eq(partnership_code))
        .select(Release::as_select())
        .order(releases::version.desc())
        .load(conn)
        .await?)
}

/// What happens to a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A second partnership analyst approves it: partners can read it.
    Approve,
    /// It is withdrawn: partners no longer see it.
    Withdraw,
}

/// Approves or withdraws a release by `by` and appends `entry` in the same transaction.
///
/// # Errors
/// [`StoreError::NotFound`] for an unknown release; [`StoreError::Conflict`] when the one who
/// prepared it tries to approve it, or it is already approved or withdrawn.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn change(
    conn: &mut AsyncPgConnection,
    partnership_code: &str,
    id: Uuid,
    change: Change,
    by: &str,
    entry: &audit::NewEntry,
) -> Result<Release, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let current: Release = releases::table
            .filter(releases::partnership_code.eq(partnership_code))
            .filter(releases::id.eq(id))
            .select(Release::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("no release has the id {id}")))?;
        if current.withdrawn_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "release version {} was withdrawn",
                current.version
            )));
        }
        let now = Utc::now();
        let updated = match change {
            Change::Approve => {
                if current.approved_by.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "release version {} is already approved",
                        current.version
                    )));
                }
                if current.prepared_by == by {
                    return Err(StoreError::Conflict(
                        "a release is approved by a second partnership analyst, not by the one \
                         who prepared it"
                            .to_owned(),
                    ));
                }
                diesel::update(releases::table.filter(releases::id.eq(id)))
                    .set((releases::approved_by.eq(by), releases::approved_at.eq(now)))
                    .returning(Release::as_returning())
                    .get_result(conn)
                    .await?
            }
            Change::Withdraw => {
                diesel::update(releases::table.filter(releases::id.eq(id)))
                    .set((
                        releases::withdrawn_by.eq(by),
                        releases::withdrawn_at.eq(now),
                    ))
                    .returning(Release::as_returning())
                    .get_result(conn)
                    .await?
            }
        };
        audit::append(conn, std::slice::from_ref(entry)).await?;
        Ok(updated)
    })
    .await
}
