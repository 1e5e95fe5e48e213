//! A board's self-assessments: each one kept whole, numbered under a lock and stored with its
//! audit entry in one transaction; never edited or deleted (the table's trigger enforces it).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};

use crate::schema::self_assessments;
use crate::{StoreError, audit};

/// A recorded self-assessment.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = self_assessments, check_for_backend(diesel::pg::Pg))]
pub struct SelfAssessment {
    /// The partnership.
    pub partnership_code: String,
    /// 1, 2, … within the partnership.
    pub version: i32,
    /// The day the board assessed itself.
    pub assessed_on: NaiveDate,
    /// Who recorded it.
    pub recorded_by: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Every question's rating, evidence and actions.
    pub answers: serde_json::Value,
    /// What Atlas held as evidence when it was recorded.
    pub atlas_evidence: serde_json::Value,
}

/// Records a self-assessment of `partnership_code` as its next version, with `entry` in the
/// audit trail, in one transaction.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn record(
    conn: &mut AsyncPgConnection,
    partnership_code: &str,
    assessed_on: NaiveDate,
    answers: &serde_json::Value,
    atlas_evidence: &serde_json::Value,
    recorded_by: &str,
    entry: &audit::NewEntry,
) -> Result<SelfAssessment, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('self_assessments:' || $1))")
            .bind::<diesel::sql_types::Text, _>(partnership_code)
            .execute(conn)
            .await?;
        let latest: Option<i32> = self_assessments::table
            .filter(self_assessments::partnership_code.eq(partnership_code))
            .select(diesel::dsl::max(self_assessments::version))
            .first(conn)
            .await?;
        let stored = diesel::insert_into(self_assessments::table)
            .values((
                self_assessments::partnership_code.eq(partnership_code),
                self_assessments::version.eq(latest.unwrap_or(0) + 1),
                self_assessments::assessed_on.eq(assessed_on),
                self_assessments::recorded_by.eq(recorded_by),
                self_assessments::answers.eq(answers),
                self_assessments::atlas_evidence.eq(atlas_evidence),
            ))
            .returning(SelfAssessment::as_returning())
            .get_result(conn)
            .await?;
        let mut entry = entry.clone();
        entry.resource = format!(
            "/api/v1/partnerships/{partnership_code}/self-assessments/{}",
            stored.version
        );
        audit::append(conn, &[entry]).await?;
        Ok(stored)
    })
    .await
}

/// `partnership_code`'s self-assessments, newest first.
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(
    conn: &mut AsyncPgConnection,
    partnership_code: &str,
) -> Result<Vec<SelfAssessment>, StoreError> {
    Ok(self_assessments::table
        .filter(self_assessments::partnership_code.eq(partnership_code))
        .order(self_assessments::version.desc())
        .select(SelfAssessment::as_select())
        .load(conn)
        .await?)
}

/// `partnership_code`'s self-assessment `version`.
///
/// # Errors
/// [`StoreError`] when the query fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(
    conn: &mut AsyncPgConnection,
    partnership_code: &str,
    version: i32,
) -> Result<Option<SelfAssessment>, StoreError> {
    Ok(self_assessments::table
        .find((partnership_code, version))
        .select(SelfAssessment::as_select())
        .first(conn)
        .await
        .optional()?)
}
