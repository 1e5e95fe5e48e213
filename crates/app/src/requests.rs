//! Requests for summaries: a partnership asks another that shares its releases with it for a
//! summary of closed quarters; the owner accepts (its releases of those quarters are prepared
//! through the publication gate and await the usual second analyst's approval), declines with a
//! reason, or asks a question (docs/privacy.md, "Requests for summaries").

use std::collections::BTreeSet;

use atlas_access::RecordScope;
use atlas_domain::GssCode;
use atlas_store::audit::NewEntry;
use atlas_store::releases::{self, Release};
use atlas_store::summary_requests::{self, Change, NewRequest, SummaryRequest};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::analysis::{Analyses, AnalysisError};
use crate::products::closed_quarter;

/// The breakdowns a request may ask for, each answered by a release's tables: records by agency
/// kind, records by indicator, children by age band, records by record kind, and the release's
/// cells.
pub const BREAKDOWNS: [&str; 5] = [
    "agency_kind",
    "indicator",
    "age_band",
    "record_kind",
    "release_grid",
];

/// The most quarters one request may ask for.
pub const MAX_PERIODS: usize = 4;
/// The longest purpose or message, in characters.
pub const MAX_TEXT: usize = 2000;

/// A request as the requester makes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSummaryRequest {
    /// Closed calendar quarters, such as `2025-Q4` (1 to 4).
    pub periods: Vec<String>,
    /// Breakdowns wanted: `agency_kind`, `indicator`, `age_band`, `record_kind`,
    /// `release_grid`.
    pub breakdowns: Vec<String>,
    /// What the summary is for.
    pub purpose: String,
    /// When it is needed by (today or later).
    pub needed_by: NaiveDate,
}

/// Checks a message or purpose: not blank, not too long.
fn check_text(name: &str, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("`{name}` is empty"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(format!("`{name}` is longer than {MAX_TEXT} characters"));
    }
    if crate::assessment::holds_nhs_number(text) {
        return Err(format!(
            "`{name}` holds what looks like an NHS number; a request is about a summary and never names or identifies a child"
        ));
    }
    Ok(())
}

impl NewSummaryRequest {
    /// The breakdowns asked for, sorted, each once: as a request stores them.
    #[must_use]
    pub fn distinct_breakdowns(&self) -> Vec<String> {
        let mut breakdowns = self.breakdowns.clone();
        breakdowns.sort_unstable();
        breakdowns.dedup();
        breakdowns
    }

    /// Checks the request on `today`.
    ///
    /// # Errors
    /// The reason, naming the field.
    pub fn check(&self, today: NaiveDate) -> Result<(), String> {
        if self.periods.is_empty() || self.periods.len() > MAX_PERIODS {
            return Err(format!(
                "`periods`: ask for 1 to {MAX_PERIODS} closed quarters"
            ));
        }
        let mut seen = BTreeSet::new();
        for period in &self.periods {
            closed_quarter(period, today)?;
            if !seen.insert(period) {
                return Err(format!("`periods`: {period} is asked for twice"));
            }
        }
        if self.breakdowns.is_empty() {
            return Err(format!(
                "`breakdowns`: choose at least one of {}",
                BREAKDOWNS.join(", ")
            ));
        }
        if let Some(unknown) = self
            .breakdowns
            .iter()
            .find(|breakdown| !BREAKDOWNS.contains(&breakdown.as_str()))
        {
            return Err(format!(
                "`breakdowns`: `{unknown}` is not one of {}",
                BREAKDOWNS.join(", ")
            ));
        }
        check_text("purpose", &self.purpose)?;
        if self.needed_by < today {
            return Err(format!("`needed_by`: {} has passed", self.needed_by));
        }
        Ok(())
    }
}

/// Checks a decline reason, question or reply.
///
/// # Errors
/// The reason, naming `name`.
pub fn check_message(name: &str, text: &str) -> Result<(), String> {
    check_text(name, text)
}

/// A request's state as both sides see it: `answered` once it is accepted and every quarter's
/// release is published.
#[must_use]
pub fn state(request: &SummaryRequest, owner_releases: &[Release]) -> &'static str {
    match request.state.as_str() {
        "accepted" if answered(request, owner_releases) => "answered",
        "accepted" => "accepted",
        "declined" => "declined",
        "question" => "question",
        _ => "open",
    }
}

/// Whether every quarter of an accepted `request` has a published release.
fn answered(request: &SummaryRequest, owner_releases: &[Release]) -> bool {
    request.periods.iter().all(|period| {
        owner_releases
            .iter()
            .any(|release| release.period == *period && release.is_published())
    })
}

/// The owner's releases in force (not withdrawn) for the request's quarters.
#[must_use]
pub fn releases_for<'a>(
    request: &SummaryRequest,
    owner_releases: &'a [Release],
) -> Vec<&'a Release> {
    owner_releases
        .iter()
        .filter(|release| {
            release.withdrawn_at.is_none() && request.periods.contains(&release.period)
        })
        .collect()
}

impl Analyses {
    /// Makes `request` of `requester` to `owner` by `requested_by` on `today`, audited with
    /// `entry`. The caller has checked the agreement (the access policy's `RequestSummary`).
    ///
    /// # Errors
    /// [`AnalysisError::Question`] for a request that does not check out, or one to the
    /// requester's own partnership; [`AnalysisError::Store`].
    pub async fn make_request(
        &self,
        requester: &GssCode,
        owner: &GssCode,
        request: &NewSummaryRequest,
        today: NaiveDate,
        requested_by: &str,
        entry: &NewEntry,
    ) -> Result<SummaryRequest, AnalysisError> {
        if requester == owner {
            return Err(AnalysisError::Question(
                "a partnership asks another for a summary, not itself".to_owned(),
            ));
        }
        request.check(today).map_err(AnalysisError::Question)?;
        let breakdowns = request.distinct_breakdowns();
        let mut conn = self.database.connection().await?;
        Ok(summary_requests::create(
            &mut conn,
            &NewRequest {
                requester_code: requester.to_string(),
                owner_code: owner.to_string(),
                periods: request.periods.clone(),
                breakdowns,
                purpose: request.purpose.clone(),
                needed_by: request.needed_by,
            },
            requested_by,
            entry,
        )
        .await?)
    }

    /// Accepts the request `id` made to `owner`, by `by` on `today`: each quarter without a
    /// release in force gets one prepared (at the partnership's release resolution), awaiting a
    /// second analyst's approval as every release does; `entry` is audited for each release and
    /// for the acceptance.
    ///
    /// # Errors
    /// [`AnalysisError::NotFound`] for no such request to `owner`; [`AnalysisError::Conflict`]
    /// when it was accepted or declined already, or a quarter has no data to release (decline
    /// it then, saying so); [`AnalysisError::Store`].
    pub async fn accept_request(
        &self,
        owner: &GssCode,
        id: Uuid,
        by: &str,
        today: NaiveDate,
        entry: &NewEntry,
    ) -> Result<SummaryRequest, AnalysisError> {
        let (request, existing) = {
            let mut conn = self.database.connection().await?;
            let request = summary_requests::find(&mut conn, owner.as_str(), id)
                .await?
                .filter(|request| request.owner_code == owner.as_str())
                .ok_or_else(|| {
                    AnalysisError::NotFound(format!("no request {id} was made to {owner}"))
                })?;
            (request, releases::list(&mut conn, owner.as_str()).await?)
        };
        if request.state == "accepted" || request.state == "declined" {
            return Err(AnalysisError::Conflict(format!(
                "the request was {} already",
                request.state
            )));
        }
        // Every release of a partnership uses one resolution, so none can be subtracted.
        let resolution = existing
            .first()
            .and_then(|release| u8::try_from(release.resolution).ok());
        for period in &request.periods {
            if releases_for(&request, &existing)
                .iter()
                .any(|release| release.period == *period)
            {
                continue;
            }
            let draft = self
                .draft_release(owner, RecordScope::Partnership, period, resolution, today)
                .await?;
            let mut conn = self.database.connection().await?;
            let mut release_entry = entry.clone();
            release_entry.action = "release.prepare".to_owned();
            release_entry
                .parameters
                .insert("period".to_owned(), period.clone());
            releases::prepare(&mut conn, &draft, by, &release_entry).await?;
        }
        let mut conn = self.database.connection().await?;
        Ok(
            summary_requests::change(&mut conn, owner.as_str(), id, &Change::Accept, by, entry)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> NewSummaryRequest {
        NewSummaryRequest {
            periods: vec!["2025-Q4".to_owned()],
            breakdowns: vec!["agency_kind".to_owned()],
            purpose: "Regional CSE sub-group, March".to_owned(),
            needed_by: "2026-12-31".parse().expect("a date"),
        }
    }

    #[test]
    fn requests_ask_for_closed_quarters_from_the_menu_in_time() {
        let today: NaiveDate = "2026-11-30".parse().expect("a date");
        assert_eq!(request().check(today), Ok(()));
        let open = NewSummaryRequest {
            periods: vec!["2026-Q4".to_owned()],
            ..request()
        };
        assert!(open.check(today).unwrap_err().contains("has not ended"));
        let twice = NewSummaryRequest {
            periods: vec!["2025-Q4".to_owned(), "2025-Q4".to_owned()],
            ..request()
        };
        assert!(twice.check(today).unwrap_err().contains("twice"));
        let unknown = NewSummaryRequest {
            breakdowns: vec!["postcode".to_owned()],
            ..request()
        };
        assert!(unknown.check(today).unwrap_err().contains("not one of"));
        let late = NewSummaryRequest {
            needed_by: "2026-11-29".parse().expect("a date"),
            ..request()
        };
        assert!(late.check(today).unwrap_err().contains("has passed"));
        let blank = NewSummaryRequest {
            purpose: "  ".to_owned(),
            ..request()
        };
        assert!(blank.check(today).unwrap_err().contains("empty"));
        let identifying = NewSummaryRequest {
            purpose: "About 943 476 5919".to_owned(),
            ..request()
        };
        assert!(identifying.check(today).unwrap_err().contains("NHS number"));
        assert!(check_message("text", "Child 9434765919 again").is_err());
    }
}
