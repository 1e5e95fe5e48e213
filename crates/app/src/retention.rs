//! Retention (docs/operations.md, "Retention"): each record kind kept for the years
//! `[retention] keep_years` names, and the older records deleted by `atlas retention apply` or
//! the server's daily schedule, audited with the counts. Kinds it does not name are kept. One
//! child's records are erased on a lawful request by [`erase`].

use std::collections::BTreeMap;

use atlas_domain::{GssCode, RecordKind};
use atlas_ingest::pseudonym::PseudonymKey;
use atlas_store::Database;
use atlas_store::audit::NewEntry;
use atlas_store::retention::{self, Removed};
use chrono::{Months, NaiveDate};
use secrecy::ExposeSecret as _;
use serde::Deserialize;

/// The `[retention]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Years each record kind is kept after the day it occurred (`incident = 7`); kinds not
    /// named are kept until their batch is withdrawn.
    pub keep_years: BTreeMap<String, u32>,
    /// Whether the server applies retention once a day by itself.
    pub schedule: bool,
}

impl RetentionSettings {
    /// Checks every kind is a record kind and every period 1 to 100 years.
    ///
    /// # Errors
    /// The first problem, in words.
    pub fn check(&self) -> Result<(), String> {
        for (kind, years) in &self.keep_years {
            if !RecordKind::ALL.iter().any(|known| known.as_str() == kind) {
                return Err(format!(
                    "retention.keep_years: `{kind}` is not a record kind (one of {})",
                    RecordKind::ALL
                        .iter()
                        .map(|kind| kind.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if !(1..=100).contains(years) {
                return Err(format!(
                    "retention.keep_years.{kind}: {years} is not 1 to 100 years"
                ));
            }
        }
        Ok(())
    }

    /// Each named kind with the first day it keeps, as of `today` (a name that is not a record
    /// kind, which [`Self::check`] refuses, is left out).
    #[must_use]
    pub fn cutoffs(&self, today: NaiveDate) -> Vec<(RecordKind, NaiveDate)> {
        self.keep_years
            .iter()
            .filter_map(|(kind, years)| {
                Some((
                    kind.parse().ok()?,
                    today.checked_sub_months(Months::new(years.checked_mul(12)?))?,
                ))
            })
            .collect()
    }
}

/// Applies `settings` as of `today` on `database`, on behalf of `subject` (`cli:<user>`, or
/// `server:retention` for the schedule); with `dry_run`, only counts. Before deleting, every
/// closed quarter and month from a partnership's earliest record to delete to its latest has
/// its summary frozen from all its records, where none is yet
/// ([`crate::products::freeze_closed_periods`]).
///
/// # Errors
/// The settings' problem or the store's error, in words.
pub async fn apply(
    database: &Database,
    settings: &RetentionSettings,
    today: NaiveDate,
    subject: &str,
    dry_run: bool,
) -> Result<Vec<Removed>, String> {
    settings.check()?;
    let cutoffs: Vec<(String, NaiveDate)> = settings
        .cutoffs(today)
        .into_iter()
        .map(|(kind, first_kept)| (kind.as_str().to_owned(), first_kept))
        .collect();
    if cutoffs.is_empty() {
        return Ok(Vec::new());
    }
    let url = database.url().expose_secret();
    if !dry_run {
        for (partnership, first, last) in retention::days_past(url, &cutoffs)
            .await
            .map_err(|err| err.to_string())?
        {
            let code: GssCode = partnership
                .parse()
                .map_err(|err| format!("partnership {partnership}: {err}"))?;
            crate::products::freeze_closed_periods(database, &code, first, last, today)
                .await
                .map_err(|err| format!("freezing {partnership}'s summaries first: {err}"))?;
        }
    }
    let entry = NewEntry::operator(
        subject.to_owned(),
        "retention.apply",
        "retention".to_owned(),
    );
    retention::apply(url, &cutoffs, &entry, dry_run)
        .await
        .map_err(|err| err.to_string())
}

/// A lawful request to erase one child's records (docs/operations.md, "Erasure").
#[derive(Clone)]
pub struct Erasure {
    /// The child's pseudonym as the agency made it with the partnership's linkage key
    /// (64 hexadecimal characters, as in its extracts).
    pub pseudonym: String,
    /// Only the records this agency uploaded (by default every agency's).
    pub agency: Option<uuid::Uuid>,
    /// The request's reference in the controller's own records (a case number, never a
    /// name): the audit entry carries it, never the pseudonym.
    pub reference: String,
}

impl std::fmt::Debug for Erasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Erasure")
            .field("pseudonym", &"[REDACTED]")
            .field("agency", &self.agency)
            .field("reference", &self.reference)
            .finish()
    }
}

impl Erasure {
    /// Checks the pseudonym and the reference (1 to 100 printable characters).
    ///
    /// # Errors
    /// The problem, in words that never repeat the pseudonym.
    pub fn check(&self) -> Result<[u8; 32], String> {
        let pseudonym = atlas_ingest::extract::parse_pseudonym(self.pseudonym.trim())
            .map_err(|reason| format!("--pseudonym: {reason}"))?;
        let reference = self.reference.trim();
        if reference.is_empty()
            || reference.chars().count() > 100
            || reference.chars().any(char::is_control)
        {
            return Err(
                "--reference: the request's reference is 1 to 100 printable \
                        characters (a case number in the controller's records, never a name)"
                    .to_owned(),
            );
        }
        Ok(pseudonym)
    }
}

/// Erases (or, `dry_run`, looks for) the records of the child `erasure` names, keying its
/// pseudonym with `key` as uploads do, on behalf of `subject` (`cli:<user>`); audited either way.
///
/// # Errors
/// The request's problem or the store's error, in words.
pub async fn erase(
    url: &str,
    key: &PseudonymKey,
    erasure: &Erasure,
    subject: &str,
    dry_run: bool,
) -> Result<Vec<Removed>, String> {
    let pseudonym = erasure.check()?;
    let action = if dry_run {
        "erasure.dry_run"
    } else {
        "erasure.apply"
    };
    let mut entry = NewEntry::operator(subject.to_owned(), action, "erasure".to_owned());
    entry
        .parameters
        .insert("reference".to_owned(), erasure.reference.trim().to_owned());
    if let Some(agency) = erasure.agency {
        entry
            .parameters
            .insert("agency".to_owned(), agency.to_string());
    }
    entry.agency = erasure.agency;
    retention::erase(
        url,
        &key.sign(&pseudonym),
        &key.fingerprint(),
        erasure.agency,
        &entry,
        dry_run,
    )
    .await
    .map_err(|err| err.to_string())
}

/// Applies retention once a day (the server's schedule), the first time ten minutes after
/// start (migrations done), logging what it deleted; a run that fails is tried again an hour
/// later. Servers whose schedules meet take turns: one run at a time does the work.
pub async fn run_schedule(database: Database, settings: RetentionSettings) {
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    loop {
        let today = chrono::Utc::now().date_naive();
        let wait = match apply(&database, &settings, today, "server:retention", false).await {
            Ok(removed) => {
                let records: i64 = removed.iter().map(|gone| gone.records).sum();
                tracing::info!(records, "retention applied");
                86_400
            }
            Err(reason) => {
                tracing::warn!(%reason, "retention could not be applied; trying again in an hour");
                3_600
            }
        };
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_checked_and_turned_into_cutoffs() {
        let mut settings = RetentionSettings::default();
        settings.keep_years.insert("incident".to_owned(), 7);
        settings.keep_years.insert("referral".to_owned(), 2);
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(
            settings.cutoffs(today),
            [
                (
                    RecordKind::Incident,
                    NaiveDate::from_ymd_opt(2019, 11, 30).unwrap()
                ),
                (
                    RecordKind::Referral,
                    NaiveDate::from_ymd_opt(2024, 11, 30).unwrap()
                ),
            ]
        );
        assert!(settings.check().is_ok());
        settings.keep_years.insert("gossip".to_owned(), 1);
        assert!(settings.check().unwrap_err().contains("`gossip`"));
        settings.keep_years.remove("gossip");
        settings.keep_years.insert("incident".to_owned(), 0);
        assert!(settings.check().unwrap_err().contains("1 to 100"));
    }
}
