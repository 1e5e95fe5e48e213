//! Retention and erasure: deleting the case records older than their kind's retention period
//! (docs/operations.md, "Retention"), or every record of one child on a lawful request
//! ("Erasure"), each in one transaction that moves the partnerships' data versions (so every
//! process's cache reloads them) and appends an audit entry per partnership with the counts.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::{StoreError, audit, connect_admin};

/// Key of the advisory lock one retention run holds: runs started together (several servers'
/// schedules) do not repeat each other's work.
const RETENTION_LOCK: i64 = 0x4154_4c41_535f_5254; // "ATLAS_RT"

/// Records deleted from one partnership for one record kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The partnership's code.
    pub partnership: String,
    /// The record kind.
    pub record_kind: String,
    /// How many records.
    pub records: i64,
}

/// The `(record kind, cutoff)` pairs as a join: the records each cutoff deletes.
const CUTOFFS: &str =
    "JOIN (SELECT kind, cutoff FROM unnest($1::text[], $2::date[]) AS c(kind, cutoff)) c
                       ON r.record_kind = c.kind AND r.occurred_on < c.cutoff";

/// The days of the earliest and the latest record each `(record kind, cutoff)` would delete,
/// per partnership with any.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails.
pub async fn days_past(
    url: &str,
    cutoffs: &[(String, NaiveDate)],
) -> Result<Vec<(String, NaiveDate, NaiveDate)>, StoreError> {
    let kinds: Vec<&str> = cutoffs.iter().map(|(kind, _)| kind.as_str()).collect();
    let days: Vec<NaiveDate> = cutoffs.iter().map(|(_, day)| *day).collect();
    let client = connect_admin(url, Duration::from_secs(10)).await?;
    let rows = client
        .query(
            &format!(
                "SELECT r.partnership_code, min(r.occurred_on), max(r.occurred_on)
                   FROM case_records r {CUTOFFS}
                  GROUP BY r.partnership_code ORDER BY r.partnership_code"
            ),
            &[&kinds, &days],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect())
}

/// Deletes every case record of each `(record kind, cutoff)` that occurred before the cutoff,
/// moves the data versions of the partnerships it touched, and appends `entry` once per
/// partnership touched (its `partnership` and `records_of` that partnership; `parameters` each
/// kind's cutoff and the records deleted per kind), all in one transaction; with `dry_run`,
/// only counts (nothing is locked or written). Returns what was (or would be) deleted, by
/// partnership and kind; nothing when another run holds the retention lock.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails (nothing is deleted).
pub async fn apply(
    url: &str,
    cutoffs: &[(String, NaiveDate)],
    entry: &audit::NewEntry,
    dry_run: bool,
) -> Result<Vec<Removed>, StoreError> {
    let kinds: Vec<&str> = cutoffs.iter().map(|(kind, _)| kind.as_str()).collect();
    let days: Vec<NaiveDate> = cutoffs.iter().map(|(_, day)| *day).collect();
    let mut entry = entry.clone();
    for (kind, cutoff) in cutoffs {
        entry
            .parameters
            .insert(format!("before {kind}"), cutoff.to_string());
    }
    let deletion = Deletion {
        matching: CUTOFFS,
        parameters: &[&kinds, &days],
        turn: Some(RETENTION_LOCK),
        about_one_child: false,
    };
    deletion.run(url, &entry, dry_run).await
}

/// Deletes every case record of one child, `subject` (the agency's pseudonym keyed again with
/// the server's key, as stored at upload), in every partnership, or only those `agency`
/// uploaded; moves the data versions of the partnerships it touched and appends `entry` once
/// per partnership touched with the records deleted per kind (once, with no partnership, when
/// there were none), all in one transaction. With `dry_run` nothing is deleted, but the lookup
/// is audited all the same: it asks about one child. The audit never holds the pseudonym.
///
/// # Errors
/// [`StoreError::Invalid`] when `fingerprint` (of the key that made `subject`) is not the
/// database's, or the database holds records but no fingerprint: nothing could be found;
/// [`StoreError::NotFound`] for an unknown agency; [`StoreError`] when PostgreSQL fails
/// (nothing is deleted).
pub async fn erase(
    url: &str,
    subject: &[u8; 32],
    fingerprint: &str,
    agency: Option<Uuid>,
    entry: &audit::NewEntry,
    dry_run: bool,
) -> Result<Vec<Removed>, StoreError> {
    let client = connect_admin(url, Duration::from_secs(10)).await?;
    let recorded = client
        .query_opt("SELECT fingerprint FROM pseudonym_key_fingerprint", &[])
        .await?
        .map(|row| row.get::<_, String>(0));
    match recorded {
        Some(recorded) if recorded != fingerprint => {
            return Err(StoreError::Invalid(format!(
                "the configured ingest.pseudonym_key (fingerprint {fingerprint}) is not the key \
                 this database's records were pseudonymised with ({recorded}): with it, no \
                 child's records could be found"
            )));
        }
        None if client
            .query_opt("SELECT 1 FROM case_records LIMIT 1", &[])
            .await?
            .is_some() =>
        {
            return Err(StoreError::Invalid(
                "this database records no pseudonym key fingerprint, so whether the configured \
                 key made its pseudonyms is not known: once sure, run `atlas pseudonym-key \
                 record`, then erase"
                    .to_owned(),
            ));
        }
        _ => {}
    }
    if let Some(agency) = agency
        && client
            .query_opt("SELECT 1 FROM agencies WHERE id = $1", &[&agency])
            .await?
            .is_none()
    {
        return Err(StoreError::NotFound(format!(
            "no agency has the id {agency}"
        )));
    }
    drop(client);
    let subject = subject.as_slice();
    let deletion = Deletion {
        matching: "WHERE r.subject = $1 AND ($2::uuid IS NULL OR r.agency_id = $2)",
        parameters: &[&subject, &agency],
        turn: None,
        about_one_child: true,
    };
    deletion.run(url, entry, dry_run).await
}

/// One deletion of case records: which, and how it is run.
struct Deletion<'a> {
    /// SQL after `FROM case_records r` choosing the records (a join or a `WHERE`).
    matching: &'a str,
    /// Its parameters.
    parameters: &'a [&'a (dyn ToSql + Sync)],
    /// An advisory lock runs take turns on (a run finding it held does nothing).
    turn: Option<i64>,
    /// Whether it singles out one child: then the lookup is audited even when it deletes
    /// nothing (a dry run, or no records: once, with no partnership).
    about_one_child: bool,
}

impl Deletion<'_> {
    /// Counts (`dry_run`) or deletes the records, audited as [`apply`] and [`erase`] say.
    ///
    /// Batches, then partnerships, are locked in key order before anything is deleted, as a
    /// withdrawal locks its batch first, so the two queue rather than deadlock.
    async fn run(
        &self,
        url: &str,
        entry: &audit::NewEntry,
        dry_run: bool,
    ) -> Result<Vec<Removed>, StoreError> {
        let matching = self.matching;
        let mut client = connect_admin(url, Duration::from_secs(10)).await?;
        let transaction = crate::read_committed(&mut client).await?;
        transaction
            .batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '60s'")
            .await?;
        let removed = if dry_run {
            let rows = transaction
                .query(
                    &format!(
                        "SELECT r.partnership_code, r.record_kind, count(*) FROM case_records r
                         {matching} GROUP BY 1, 2 ORDER BY 1, 2"
                    ),
                    self.parameters,
                )
                .await?;
            counted(rows)
        } else {
            if let Some(lock) = self.turn {
                let held: bool = transaction
                    .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&lock])
                    .await?
                    .get(0);
                if !held {
                    tracing::info!("another run is under way; this one has nothing to do");
                    return Ok(Vec::new());
                }
            }
            transaction
                .execute(
                    &format!(
                        "SELECT id FROM batches WHERE id IN (
                             SELECT DISTINCT r.batch_id FROM case_records r {matching})
                         ORDER BY id FOR UPDATE"
                    ),
                    self.parameters,
                )
                .await?;
            let rows = transaction
                .query(
                    &format!(
                        "WITH gone AS (
                             DELETE FROM case_records WHERE (partnership_code, id) IN (
                                 SELECT r.partnership_code, r.id FROM case_records r {matching})
                             RETURNING partnership_code, record_kind)
                         SELECT partnership_code, record_kind, count(*) FROM gone
                         GROUP BY 1, 2 ORDER BY 1, 2"
                    ),
                    self.parameters,
                )
                .await?;
            let removed = counted(rows);
            let touched: Vec<&str> = removed
                .iter()
                .map(|gone| gone.partnership.as_str())
                .collect();
            transaction
                .execute(
                    "SELECT code FROM partnerships WHERE code = ANY($1) ORDER BY code FOR UPDATE",
                    &[&touched],
                )
                .await?;
            transaction
                .execute(
                    "UPDATE partnerships SET data_version = data_version + 1 WHERE code = ANY($1)",
                    &[&touched],
                )
                .await?;
            removed
        };
        if self.about_one_child || !dry_run {
            let mut entries = entries(entry, &removed);
            if entries.is_empty() && self.about_one_child {
                let mut nothing = entry.clone();
                nothing.rows_returned = Some(0);
                entries.push(nothing);
            }
            audit::append_in(&transaction, &entries).await?;
        }
        transaction.commit().await?;
        Ok(removed)
    }
}

/// Rows of `(partnership, record kind, count)` as [`Removed`].
fn counted(rows: Vec<tokio_postgres::Row>) -> Vec<Removed> {
    rows.into_iter()
        .map(|row| Removed {
            partnership: row.get(0),
            record_kind: row.get(1),
            records: row.get(2),
        })
        .collect()
}

/// `entry` once per partnership in `removed`, naming it, with the records removed per kind.
fn entries(entry: &audit::NewEntry, removed: &[Removed]) -> Vec<audit::NewEntry> {
    let mut by_partnership: BTreeMap<&str, Vec<&Removed>> = BTreeMap::new();
    for gone in removed {
        by_partnership
            .entry(&gone.partnership)
            .or_default()
            .push(gone);
    }
    by_partnership
        .into_iter()
        .map(|(code, gone)| {
            let mut entry = entry.clone();
            entry.partnership = Some(code.to_owned());
            entry.records_of = vec![code.to_owned()];
            for removed in &gone {
                entry
                    .parameters
                    .insert(removed.record_kind.clone(), removed.records.to_string());
            }
            entry.rows_returned = Some(gone.iter().map(|removed| removed.records).sum());
            entry
        })
        .collect()
}
