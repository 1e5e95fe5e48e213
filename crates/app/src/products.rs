//! Frozen products: what neighbours and the national export see of a partnership is its
//! [`PeriodSummary`] of each closed period, made by the publication gate once, stored, and
//! served identically ever after (docs/privacy.md, "Frozen products"). Late records change no
//! frozen summary.

use std::collections::HashMap;

use atlas_access::RecordScope;
use atlas_analytics::emerging::Step;
use atlas_analytics::gate::{self, ClosedWindow, PeriodSummary, WindowError, closed_window};
use atlas_domain::GssCode;
use atlas_store::{Database, StoreError, summaries};
use chrono::NaiveDate;
use serde::Deserialize as _;

use crate::RecordCache;

/// The frozen summaries of `partnerships` for every period of `window`, keyed by (GSS code,
/// period label). A summary not frozen yet is made from the partnership's current records and
/// frozen first; whichever process freezes a summary first, every caller gets that one. No
/// database connection is held while records load.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails or a frozen summary cannot be read.
pub async fn period_summaries(
    database: &Database,
    cache: &RecordCache,
    partnerships: &[GssCode],
    window: &ClosedWindow,
) -> Result<HashMap<(String, String), PeriodSummary>, StoreError> {
    let periods: Vec<(String, NaiveDate, NaiveDate)> = window
        .periods()
        .into_iter()
        .map(|(first, last)| (gate::label(window.step, first), first, last))
        .collect();
    let codes: Vec<String> = partnerships.iter().map(ToString::to_string).collect();
    let labels: Vec<String> = periods.iter().map(|(label, ..)| label.clone()).collect();
    let stored = {
        let mut conn = database.connection().await?;
        summaries::frozen(&mut conn, &codes, &labels).await?
    };
    let mut found = HashMap::with_capacity(codes.len() * labels.len());
    for ((code, period), frozen) in stored {
        found.insert((code, period), read(&frozen)?);
    }
    for partnership in partnerships {
        let missing: Vec<&(String, NaiveDate, NaiveDate)> = periods
            .iter()
            .filter(|(label, ..)| !found.contains_key(&(partnership.to_string(), label.clone())))
            .collect();
        if missing.is_empty() {
            continue;
        }
        // A frozen product is the partnership's as a whole, made once for every reader.
        let records = cache
            .records(database, partnership, RecordScope::Partnership)
            .await?
            .unwrap_or_default();
        for (label, summary) in freeze(database, partnership, &records.records, &missing).await? {
            found.insert((partnership.to_string(), label), summary);
        }
    }
    Ok(found)
}

/// Freezes the summaries of `partnership`'s `records` for each of `periods` (label, first day,
/// last day) and returns them as frozen: where another process froze one first, its figures.
async fn freeze(
    database: &Database,
    partnership: &GssCode,
    records: &[atlas_domain::CaseRecord],
    periods: &[&(String, NaiveDate, NaiveDate)],
) -> Result<Vec<(String, PeriodSummary)>, StoreError> {
    let made: Vec<(String, serde_json::Value)> = periods
        .iter()
        .map(|(label, first, last)| {
            let summary = gate::summarise(records, *first, *last);
            serde_json::to_value(&summary)
                .map(|figures| (label.clone(), figures))
                .map_err(|err| StoreError::Invalid(format!("a summary: {err}")))
        })
        .collect::<Result<_, _>>()?;
    let mut conn = database.connection().await?;
    let mut frozen = Vec::with_capacity(made.len());
    for (label, figures) in made {
        let stored = summaries::freeze(&mut conn, partnership.as_str(), &label, &figures).await?;
        frozen.push((label, read(&stored)?));
    }
    Ok(frozen)
}

/// The most periods [`freeze_closed_periods`] freezes of one step: a century of months.
const MAX_FROZEN_PERIODS: usize = 1_200;

/// Freezes the summary of every closed quarter and month of `partnership`, from the one holding
/// `first` to the one holding `last`, that is not frozen yet, from its current records; returns
/// how many were missing (whichever process froze each). Retention runs it before deleting
/// records of those periods, so that what neighbours and the national export see of a period
/// is made from all its records, as it would have been had someone asked before
/// (docs/operations.md, "Retention").
///
/// # Errors
/// [`StoreError::Invalid`] for a span no window can hold (none closed is nothing to freeze);
/// [`StoreError`] when PostgreSQL fails.
pub async fn freeze_closed_periods(
    database: &Database,
    partnership: &GssCode,
    first: NaiveDate,
    last: NaiveDate,
    today: NaiveDate,
) -> Result<usize, StoreError> {
    let mut periods = Vec::new();
    for step in [Step::Quarter, Step::Month] {
        let window =
            match closed_window(step, Some(first), Some(last), today, 1, MAX_FROZEN_PERIODS) {
                Ok(window) => window,
                // Nothing closed in the span is nothing to freeze.
                Err(WindowError::NothingClosed { .. }) => continue,
                Err(err) => {
                    return Err(StoreError::Invalid(format!(
                        "the periods from {first} to {last}: {err}"
                    )));
                }
            };
        periods.extend(
            window
                .periods()
                .into_iter()
                .map(|(first, last)| (gate::label(step, first), first, last)),
        );
    }
    let code = partnership.to_string();
    let labels: Vec<String> = periods.iter().map(|(label, ..)| label.clone()).collect();
    let stored = {
        let mut conn = database.connection().await?;
        summaries::frozen(&mut conn, std::slice::from_ref(&code), &labels).await?
    };
    let missing: Vec<&(String, NaiveDate, NaiveDate)> = periods
        .iter()
        .filter(|(label, ..)| !stored.contains_key(&(code.clone(), label.clone())))
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    let records = atlas_store::records::load(database, partnership)
        .await?
        .records;
    Ok(freeze(database, partnership, &records.records, &missing)
        .await?
        .len())
}

/// The closed calendar quarter written `period` (`2026-Q1`), as a window of one period; `Err`
/// with the reason for anything else, or for a quarter not ended by `today`. Releases and the
/// national export cover such quarters only.
///
/// # Errors
/// The reason, naming `period`.
pub fn closed_quarter(period: &str, today: NaiveDate) -> Result<ClosedWindow, String> {
    let (first, last) = crate::export::quarter(period).ok_or_else(|| {
        format!(
            "`period`: `{period}` is not a calendar quarter such as 2026-Q1 (fixed quarters, so \
             that no two products overlap)"
        )
    })?;
    closed_window(Step::Quarter, Some(first), Some(last), today, 1, 1)
        .ok()
        .filter(|window| window.left_out.is_none())
        .ok_or_else(|| {
            format!(
                "`period`: {period} has not ended, or ended fewer than {} days ago; only closed \
                 quarters leave a partnership",
                gate::SETTLE_DAYS
            )
        })
}

/// The closed period written `label`: a quarter (`2026-Q1`) or a month (`2026-01`).
///
/// # Errors
/// The reason, naming `label`, for anything else or a period not ended by `today`.
pub fn closed_period(label: &str, today: NaiveDate) -> Result<ClosedWindow, String> {
    if label.contains('Q') {
        return closed_quarter(label, today);
    }
    let first = NaiveDate::parse_from_str(&format!("{label}-01"), "%Y-%m-%d")
        .ok()
        .filter(|first| gate::label(Step::Month, *first) == label)
        .ok_or_else(|| {
            format!(
                "`period`: `{label}` is not a quarter such as 2026-Q1 or a month such as 2026-01"
            )
        })?;
    closed_window(Step::Month, Some(first), Some(first), today, 1, 1)
        .ok()
        .filter(|window| window.left_out.is_none())
        .ok_or_else(|| {
            format!(
                "`period`: {label} has not ended, or ended fewer than {} days ago",
                gate::SETTLE_DAYS
            )
        })
}

/// Revises the frozen summary of `partnership` for the closed period `label` from its current
/// records (late records included), as the next version, audited with `entry`; every product
/// serves the new version from then on, marked revised. Returns the new version.
///
/// # Errors
/// [`StoreError::Invalid`] for a period that is not closed, [`StoreError::Conflict`] when
/// nothing is frozen yet, [`StoreError`] when PostgreSQL fails.
pub async fn revise(
    database: &Database,
    partnership: &GssCode,
    label: &str,
    today: NaiveDate,
    entry: &atlas_store::audit::NewEntry,
) -> Result<i16, StoreError> {
    let window = closed_period(label, today).map_err(StoreError::Invalid)?;
    let records = atlas_store::records::load(database, partnership)
        .await?
        .records;
    let mut conn = database.connection().await?;
    let summary = gate::summarise(&records.records, window.first(), window.last);
    let figures = serde_json::to_value(&summary)
        .map_err(|err| StoreError::Invalid(format!("a summary: {err}")))?;
    summaries::revise(&mut conn, partnership.as_str(), label, &figures, entry).await
}

/// A frozen summary as stored, marked revised after a revision.
fn read(frozen: &summaries::Frozen) -> Result<PeriodSummary, StoreError> {
    let mut summary = PeriodSummary::deserialize(&frozen.figures)
        .map_err(|err| StoreError::Invalid(format!("a frozen summary cannot be read: {err}")))?;
    summary.revised = frozen.version > 1;
    Ok(summary)
}
