//! Frozen products: what neighbours and the national export see of a partnership is its
//! [`PeriodSummary`] of each closed period, made by the publication gate once, stored, and
//! served identically ever after (docs/privacy.md, "Frozen products"). Late records change no
//! frozen summary.

use std::collections::HashMap;

use atlas_analytics::emerging::Step;
use atlas_analytics::gate::{self, ClosedWindow, PeriodSummary, closed_window};
use atlas_domain::GssCode;
use atlas_store::{Database, StoreError, summaries};
use chrono::NaiveDate;

use crate::analysis::RecordCache;

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
    for ((code, period), figures) in stored {
        found.insert((code, period), read(&figures)?);
    }
    for partnership in partnerships {
        let missing: Vec<&(String, NaiveDate, NaiveDate)> = periods
            .iter()
            .filter(|(label, ..)| !found.contains_key(&(partnership.to_string(), label.clone())))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let records = cache
            .records(database, partnership)
            .await?
            .unwrap_or_default();
        let made: Vec<(String, serde_json::Value)> = missing
            .iter()
            .map(|(label, first, last)| {
                let summary = gate::summarise(&records.records, *first, *last);
                serde_json::to_value(&summary)
                    .map(|figures| (label.clone(), figures))
                    .map_err(|err| StoreError::Invalid(format!("a summary: {err}")))
            })
            .collect::<Result<_, _>>()?;
        let mut conn = database.connection().await?;
        for (label, figures) in made {
            let frozen =
                summaries::freeze(&mut conn, partnership.as_str(), &label, &figures).await?;
            found.insert((partnership.to_string(), label), read(&frozen)?);
        }
    }
    Ok(found)
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
            format!("`period`: {period} has not ended; only closed quarters leave a partnership")
        })
}

/// A frozen summary as stored.
fn read(figures: &serde_json::Value) -> Result<PeriodSummary, StoreError> {
    PeriodSummary::deserialize(figures)
        .map_err(|err| StoreError::Invalid(format!("a frozen summary cannot be read: {err}")))
}

use serde::Deserialize as _;
