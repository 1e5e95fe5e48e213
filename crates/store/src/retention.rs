//! Retention: deleting the case records older than their kind's retention period
//! (docs/operations.md, "Retention"), in one transaction that moves the partnerships' data
//! versions (so every process's cache reloads them) and appends the audit entry with the counts.

use std::time::Duration;

use chrono::NaiveDate;

use crate::{StoreError, audit, connect_admin};

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

/// Deletes every case record of each `(record kind, cutoff)` that occurred before the cutoff,
/// moves the data versions of the partnerships it touched, and appends `entry` with the counts
/// (`parameters`: each kind's cutoff, and `<partnership> <kind>` = records), all in one
/// transaction; with `dry_run`, counts and changes nothing. Returns what was (or would be)
/// deleted, by partnership and kind.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails (nothing is deleted).
pub async fn apply(
    url: &str,
    cutoffs: &[(String, NaiveDate)],
    entry: &audit::NewEntry,
    dry_run: bool,
) -> Result<Vec<Removed>, StoreError> {
    let mut client = connect_admin(url, Duration::from_secs(10)).await?;
    let transaction = client.transaction().await?;
    let mut removed = Vec::new();
    for (kind, cutoff) in cutoffs {
        let rows = transaction
            .query(
                "WITH gone AS (
                     DELETE FROM case_records WHERE record_kind = $1 AND occurred_on < $2
                     RETURNING partnership_code)
                 SELECT partnership_code, count(*) FROM gone GROUP BY partnership_code ORDER BY 1",
                &[kind, cutoff],
            )
            .await?;
        removed.extend(rows.into_iter().map(|row| Removed {
            partnership: row.get(0),
            record_kind: kind.clone(),
            records: row.get(1),
        }));
    }
    if dry_run {
        transaction.rollback().await?;
        return Ok(removed);
    }
    let mut touched: Vec<&str> = removed
        .iter()
        .map(|gone| gone.partnership.as_str())
        .collect();
    touched.sort_unstable();
    touched.dedup();
    transaction
        .execute(
            "UPDATE partnerships SET data_version = data_version + 1 WHERE code = ANY($1)",
            &[&touched],
        )
        .await?;
    let mut entry = entry.clone();
    for (kind, cutoff) in cutoffs {
        entry
            .parameters
            .insert(format!("before {kind}"), cutoff.to_string());
    }
    for gone in &removed {
        entry.parameters.insert(
            format!("{} {}", gone.partnership, gone.record_kind),
            gone.records.to_string(),
        );
    }
    entry.rows_returned = Some(removed.iter().map(|gone| gone.records).sum());
    audit::append_in(&transaction, std::slice::from_ref(&entry)).await?;
    transaction.commit().await?;
    Ok(removed)
}
