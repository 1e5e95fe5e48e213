//! Frozen products: a partnership's gated figures for one closed period, stored once and served
//! identically to every neighbour and to the national export (docs/privacy.md, "Frozen
//! products"). A trigger refuses any change or delete.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::upsert::on_constraint;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::StoreError;
use crate::schema::published_summaries;

/// The frozen figures of `partnerships` for `periods` (labels such as `2026-Q1`), keyed by
/// (partnership, period); pairs not frozen yet are missing.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
pub async fn frozen(
    conn: &mut AsyncPgConnection,
    partnerships: &[String],
    periods: &[String],
) -> Result<HashMap<(String, String), Value>, StoreError> {
    let rows: Vec<(String, String, Value)> = published_summaries::table
        .filter(published_summaries::partnership_code.eq_any(partnerships))
        .filter(published_summaries::period.eq_any(periods))
        .select((
            published_summaries::partnership_code,
            published_summaries::period,
            published_summaries::figures,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(partnership, period, figures)| ((partnership, period), figures))
        .collect())
}

/// Freezes `figures` as the summary of `partnership` for `period`, unless one is frozen
/// already (another process may have got there first), and returns the frozen one: whoever
/// asks, the same figures come back.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
pub async fn freeze(
    conn: &mut AsyncPgConnection,
    partnership: &str,
    period: &str,
    figures: &Value,
) -> Result<Value, StoreError> {
    diesel::insert_into(published_summaries::table)
        .values((
            published_summaries::partnership_code.eq(partnership),
            published_summaries::period.eq(period),
            published_summaries::figures.eq(figures),
        ))
        .on_conflict(on_constraint("published_summaries_pkey"))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(published_summaries::table
        .find((partnership, period))
        .select(published_summaries::figures)
        .first(conn)
        .await?)
}
