//! Frozen products: a partnership's gated figures for one closed period, stored once and served
//! identically to every neighbour and to the national export (docs/privacy.md, "Frozen
//! products"). A trigger refuses any change or delete; a correction is a new version, made only
//! by an administrator's explicit revision, and served from then on.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::schema::published_summaries;
use crate::{StoreError, audit};

/// A frozen summary: its version (1, then 2, … after revisions) and figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen {
    /// 1 for the first freezing.
    pub version: i16,
    /// The gated figures.
    pub figures: Value,
}

/// The latest frozen summaries of `partnerships` for `periods` (labels such as `2026-Q1`),
/// keyed by (partnership, period); pairs not frozen yet are missing.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn frozen(
    conn: &mut AsyncPgConnection,
    partnerships: &[String],
    periods: &[String],
) -> Result<HashMap<(String, String), Frozen>, StoreError> {
    let rows: Vec<(String, String, i16, Value)> = published_summaries::table
        .filter(published_summaries::partnership_code.eq_any(partnerships))
        .filter(published_summaries::period.eq_any(periods))
        .order(published_summaries::version.asc())
        .select((
            published_summaries::partnership_code,
            published_summaries::period,
            published_summaries::version,
            published_summaries::figures,
        ))
        .load(conn)
        .await?;
    // Ascending versions: the latest of each pair is inserted last.
    Ok(rows
        .into_iter()
        .map(|(partnership, period, version, figures)| {
            ((partnership, period), Frozen { version, figures })
        })
        .collect())
}

/// Freezes `figures` as version 1 of the summary of `partnership` for `period`, unless one is
/// frozen already (another process may have got there first), and returns the latest frozen
/// one: whoever asks, the same figures come back.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn freeze(
    conn: &mut AsyncPgConnection,
    partnership: &str,
    period: &str,
    figures: &Value,
) -> Result<Frozen, StoreError> {
    diesel::insert_into(published_summaries::table)
        .values((
            published_summaries::partnership_code.eq(partnership),
            published_summaries::period.eq(period),
            published_summaries::figures.eq(figures),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    let (version, figures) = published_summaries::table
        .filter(published_summaries::partnership_code.eq(partnership))
        .filter(published_summaries::period.eq(period))
        .order(published_summaries::version.desc())
        .select((published_summaries::version, published_summaries::figures))
        .first(conn)
        .await?;
    Ok(Frozen { version, figures })
}

/// Adds `figures` as the next version of the frozen summary of `partnership` for `period`, with
/// `entry` in the audit trail in the same transaction; returns the new version.
///
/// # Errors
/// [`StoreError::Conflict`] when nothing is frozen yet (there is nothing to revise: the first
/// product to need it freezes the current figures); [`StoreError::Query`] when PostgreSQL
/// fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn revise(
    conn: &mut AsyncPgConnection,
    partnership: &str,
    period: &str,
    figures: &Value,
    entry: &audit::NewEntry,
) -> Result<i16, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('summaries:' || $1 || $2))")
            .bind::<diesel::sql_types::Text, _>(partnership)
            .bind::<diesel::sql_types::Text, _>(period)
            .execute(conn)
            .await?;
        let latest: Option<i16> = published_summaries::table
            .filter(published_summaries::partnership_code.eq(partnership))
            .filter(published_summaries::period.eq(period))
            .select(diesel::dsl::max(published_summaries::version))
            .first(conn)
            .await?;
        let version = latest
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "{partnership} has no frozen summary of {period}: nothing to revise (the \
                     first product that needs it freezes the current figures)"
                ))
            })?
            .saturating_add(1);
        diesel::insert_into(published_summaries::table)
            .values((
                published_summaries::partnership_code.eq(partnership),
                published_summaries::period.eq(period),
                published_summaries::version.eq(version),
                published_summaries::figures.eq(figures),
            ))
            .execute(conn)
            .await?;
        audit::append(conn, std::slice::from_ref(entry)).await?;
        Ok(version)
    })
    .await
}
