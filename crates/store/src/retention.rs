//! Retention: deleting the case records older than their kind's retention period
//! (docs/operations.md, "Retention"), in one transaction that moves the partnerships' data
//! versions (so every process's cache reloads them) and appends an audit entry per partnership
//! with the counts.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;

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

/// The `(record kind, cutoff)` pairs as SQL: `VALUES` rows to join the records with.
const CUTOFFS: &str = "SELECT kind, cutoff FROM unnest($1::text[], $2::date[]) AS c(kind, cutoff)";

/// Deletes every case record of each `(record kind, cutoff)` that occurred before the cutoff,
/// moves the data versions of the partnerships it touched, and appends `entry` once per
/// partnership touched (its `partnership` and `records_of` that partnership; `parameters` each
/// kind's cutoff and the records deleted per kind), all in one transaction; with `dry_run`,
/// only counts (nothing is locked or written). Returns what was (or would be) deleted, by
/// partnership and kind; nothing when another run holds the retention lock.
///
/// Batches, then partnerships, are locked in key order before anything is deleted, as a
/// withdrawal locks its batch first, so the two queue rather than deadlock.
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
    let mut client = connect_admin(url, Duration::from_secs(10)).await?;
    let transaction = client.transaction().await?;
    transaction
        .batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '60s'")
        .await?;
    let counted = |rows: Vec<tokio_postgres::Row>| -> Vec<Removed> {
        rows.into_iter()
            .map(|row| Removed {
                partnership: row.get(0),
                record_kind: row.get(1),
                records: row.get(2),
            })
            .collect()
    };
    if dry_run {
        let rows = transaction
            .query(
                &format!(
                    "SELECT r.partnership_code, r.record_kind, count(*) FROM case_records r
                     JOIN ({CUTOFFS}) c ON r.record_kind = c.kind AND r.occurred_on < c.cutoff
                     GROUP BY 1, 2 ORDER BY 1, 2"
                ),
                &[&kinds, &days],
            )
            .await?;
        return Ok(counted(rows));
    }
    let held: bool = transaction
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&RETENTION_LOCK])
        .await?
        .get(0);
    if !held {
        tracing::info!("another retention run is under way; this one has nothing to do");
        return Ok(Vec::new());
    }
    transaction
        .execute(
            &format!(
                "SELECT id FROM batches WHERE id IN (
                     SELECT DISTINCT r.batch_id FROM case_records r
                     JOIN ({CUTOFFS}) c ON r.record_kind = c.kind AND r.occurred_on < c.cutoff)
                 ORDER BY id FOR UPDATE"
            ),
            &[&kinds, &days],
        )
        .await?;
    let rows = transaction
        .query(
            &format!(
                "WITH gone AS (
                     DELETE FROM case_records r USING ({CUTOFFS}) c
                     WHERE r.record_kind = c.kind AND r.occurred_on < c.cutoff
                     RETURNING r.partnership_code, r.record_kind)
                 SELECT partnership_code, record_kind, count(*) FROM gone GROUP BY 1, 2 ORDER BY 1, 2"
            ),
            &[&kinds, &days],
        )
        .await?;
    let removed = counted(rows);
    let mut by_partnership: BTreeMap<&str, Vec<&Removed>> = BTreeMap::new();
    for gone in &removed {
        by_partnership
            .entry(&gone.partnership)
            .or_default()
            .push(gone);
    }
    let touched: Vec<&str> = by_partnership.keys().copied().collect();
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
    let entries: Vec<audit::NewEntry> = by_partnership
        .iter()
        .map(|(code, gone)| {
            let mut entry = entry.clone();
            entry.partnership = Some((*code).to_owned());
            entry.records_of = vec![(*code).to_owned()];
            for (kind, cutoff) in cutoffs {
                entry
                    .parameters
                    .insert(format!("before {kind}"), cutoff.to_string());
            }
            for removed in gone {
                entry
                    .parameters
                    .insert(removed.record_kind.clone(), removed.records.to_string());
            }
            entry.rows_returned = Some(gone.iter().map(|removed| removed.records).sum());
            entry
        })
        .collect();
    audit::append_in(&transaction, &entries).await?;
    transaction.commit().await?;
    Ok(removed)
}
