//! Snapshots of a partnership's records: the compact records a server loaded row by row, written
//! back as one value (`record_snapshots`, migration 000026) so that the next process to need the
//! same data version reads one row instead of a million.
//!
//! A record takes [`RECORD_BYTES`] there, little-endian: its cell, the first 8 bytes of its
//! pseudonym, its day, its agency's index into the snapshot's agencies, its indicators' bits,
//! its record key and the positions of its record kind, location role, age band and sex in their
//! vocabularies (0 for none, else the position plus one). The agencies' kinds are read from the
//! agencies table at each load, not stored. [`layout`] fingerprints this encoding and the
//! vocabularies it numbers: a snapshot of another layout is ignored.
//!
//! A snapshot is only ever read at the data version it was written for, and the triggers of
//! migration 000026 delete it in the transaction that changes the partnership's records (or
//! raises its data version), so an erased or expired record never outlives its deletion in a
//! snapshot. A write races no such change: after writing, it locks the partnership's row
//! (`FOR SHARE`, held only until it commits) and keeps the write only if the version is still the
//! one the records were loaded at; a change that commits later waits for the lock and then
//! deletes the snapshot. Encoding and decoding run on the blocking pool.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use atlas_domain::{
    AgeBand, AgencyKind, CaseRecord, GssCode, Indicator, Indicators, LocationRole, RecordKind, Sex,
};
use chrono::{Datelike as _, NaiveDate};
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use crate::records::PartnershipRecords;
use crate::{Database, StoreError, connect_admin};

/// The bytes of one record in a snapshot.
pub const RECORD_BYTES: usize = 31;

/// The most records a snapshot holds: 248 MB, well inside PostgreSQL's 1 GB for one value, and
/// the most a write holds in memory beside the cache (twice, while it is sent). A partnership
/// with more is always loaded row by row.
pub const MAX_SNAPSHOT_RECORDS: usize = 8_000_000;

/// The fingerprint of the encoding and of the vocabularies it numbers by position (FNV-1a over
/// their names in order): a snapshot is read only by a server of the same layout.
#[must_use]
pub fn layout() -> i64 {
    let mut names: Vec<&str> = vec!["atlas-record-snapshot-1"];
    names.extend(RecordKind::ALL.iter().map(|kind| kind.as_str()));
    names.extend(LocationRole::ALL.iter().map(|role| role.as_str()));
    names.extend(Indicator::ALL.iter().map(|indicator| indicator.as_str()));
    names.extend(AgeBand::ALL.iter().map(|band| band.as_str()));
    names.extend(Sex::ALL.iter().map(|sex| sex.as_str()));
    let hash = names
        .iter()
        .flat_map(|name| name.bytes().chain([0]))
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    i64::from_le_bytes(hash.to_le_bytes())
}

/// The position of `value` in `all`, as one byte.
fn position<T: Copy + PartialEq>(all: &[T], value: T) -> u8 {
    all.iter()
        .position(|known| *known == value)
        .and_then(|position| u8::try_from(position).ok())
        .unwrap_or(u8::MAX)
}

/// The value at `position` of `all`.
fn at<T: Copy>(all: &[T], position: u8, what: &str) -> Result<T, String> {
    all.get(usize::from(position))
        .copied()
        .ok_or_else(|| format!("no {what} at position {position}"))
}

/// An optional value: 0 for none, else its position plus one.
fn optional_at<T: Copy>(all: &[T], code: u8, what: &str) -> Result<Option<T>, String> {
    code.checked_sub(1)
        .map(|position| at(all, position, what))
        .transpose()
}

/// The snapshot of `records`.
#[must_use]
pub fn encode(records: &[CaseRecord]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(records.len() * RECORD_BYTES);
    for record in records {
        bytes.extend_from_slice(&u64::from(record.cell).to_le_bytes());
        bytes.extend_from_slice(&record.subject.to_le_bytes());
        bytes.extend_from_slice(&record.occurred_on.num_days_from_ce().to_le_bytes());
        bytes.extend_from_slice(&record.agency.to_le_bytes());
        bytes.extend_from_slice(&record.indicators.bits().to_le_bytes());
        bytes.push(record.record_key);
        bytes.push(position(RecordKind::ALL, record.record_kind));
        bytes.push(position(LocationRole::ALL, record.location_role));
        bytes.push(
            record
                .age_band
                .map_or(0, |band| position(AgeBand::ALL, band).saturating_add(1)),
        );
        bytes.push(
            record
                .sex
                .map_or(0, |sex| position(Sex::ALL, sex).saturating_add(1)),
        );
    }
    bytes
}

/// The records of a snapshot, whose agencies (by index) are of the kinds `kinds`.
///
/// # Errors
/// What is wrong with the first record that cannot be read.
pub fn decode(bytes: &[u8], kinds: &[AgencyKind]) -> Result<Vec<CaseRecord>, String> {
    if !bytes.len().is_multiple_of(RECORD_BYTES) {
        return Err(format!(
            "{} bytes are not whole records of {RECORD_BYTES}",
            bytes.len()
        ));
    }
    bytes
        .chunks_exact(RECORD_BYTES)
        .map(|record| {
            let u64_at = |start: usize| {
                record
                    .get(start..start + 8)
                    .and_then(|slice| <[u8; 8]>::try_from(slice).ok())
                    .map(u64::from_le_bytes)
            };
            let u32_at = |start: usize| {
                record
                    .get(start..start + 4)
                    .and_then(|slice| <[u8; 4]>::try_from(slice).ok())
            };
            let byte = |index: usize| record.get(index).copied().unwrap_or(u8::MAX);
            let cell = u64_at(0)
                .and_then(|cell| h3o::CellIndex::try_from(cell).ok())
                .ok_or("an invalid H3 cell")?;
            let subject = u64_at(8).ok_or("a short record")?;
            let occurred_on = u32_at(16)
                .map(i32::from_le_bytes)
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .ok_or("an invalid day")?;
            let agency = u32_at(20).map(u32::from_le_bytes).ok_or("a short record")?;
            let agency_kind = kinds
                .get(usize::try_from(agency).unwrap_or(usize::MAX))
                .copied()
                .ok_or("an agency outside the snapshot's agencies")?;
            let indicators = record
                .get(24..26)
                .and_then(|slice| <[u8; 2]>::try_from(slice).ok())
                .map(u16::from_le_bytes)
                .and_then(Indicators::from_bits)
                .ok_or("an unknown indicator")?;
            Ok(CaseRecord {
                cell,
                subject,
                record_key: byte(26),
                agency,
                agency_kind,
                record_kind: at(RecordKind::ALL, byte(27), "record kind")?,
                occurred_on,
                location_role: at(LocationRole::ALL, byte(28), "location role")?,
                indicators,
                age_band: optional_at(AgeBand::ALL, byte(29), "age band")?,
                sex: optional_at(Sex::ALL, byte(30), "sex")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(|reason: String| format!("a snapshot holds {reason}"))
}

/// The snapshot of `partnership`'s records at its current data version, read in `transaction`,
/// with that version; `None` when there is none of this [`layout`] or it cannot be read (said in
/// the log: the records are then loaded row by row). `kinds` are the registered agencies' kinds.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails.
pub(crate) async fn read(
    transaction: &tokio_postgres::Transaction<'_>,
    partnership: &GssCode,
    kinds: &HashMap<Uuid, AgencyKind>,
) -> Result<Option<(PartnershipRecords, i64)>, StoreError> {
    let Some(row) = transaction
        .query_opt(
            "SELECT s.data_version, s.agencies, s.records FROM record_snapshots s
             JOIN partnerships p ON p.code = s.partnership_code
                                AND p.data_version = s.data_version
             WHERE s.partnership_code = $1 AND s.layout = $2",
            &[&partnership.as_str(), &layout()],
        )
        .await?
    else {
        return Ok(None);
    };
    let version: i64 = row.try_get(0)?;
    let agencies: Vec<Uuid> = row.try_get(1)?;
    let kinds = agencies
        .iter()
        .map(|agency| kinds.get(agency).copied())
        .collect::<Option<Vec<AgencyKind>>>();
    let decoded = tokio::task::spawn_blocking(move || {
        let kinds = kinds.ok_or_else(|| "an agency that is not registered".to_owned())?;
        let bytes: &[u8] = row
            .try_get(2)
            .map_err(|err| format!("the records column: {err}"))?;
        decode(bytes, &kinds)
    })
    .await
    .map_err(|err| StoreError::Invalid(format!("decoding a record snapshot: {err}")))?;
    match decoded {
        Ok(records) => Ok(Some((PartnershipRecords { records, agencies }, version))),
        Err(reason) => {
            tracing::warn!(%partnership, %reason, "a record snapshot cannot be read; loading the records row by row");
            Ok(None)
        }
    }
}

/// Writes the snapshot of `records`, loaded at data version `version` of `partnership`, unless
/// the version has moved on since (or they are more than [`MAX_SNAPSHOT_RECORDS`]). Returns
/// whether it was written.
///
/// # Errors
/// [`StoreError`] when PostgreSQL fails.
pub async fn save(
    database: &Database,
    partnership: &GssCode,
    version: i64,
    records: Arc<PartnershipRecords>,
) -> Result<bool, StoreError> {
    if records.records.len() > MAX_SNAPSHOT_RECORDS {
        return Ok(false);
    }
    let agencies = records.agencies.clone();
    let bytes = tokio::task::spawn_blocking(move || encode(&records.records))
        .await
        .map_err(|err| StoreError::Invalid(format!("encoding a record snapshot: {err}")))?;
    let mut client = connect_admin(database.url().expose_secret(), Duration::from_secs(10)).await?;
    let transaction = crate::read_committed(&mut client).await?;
    transaction
        .execute(
            "INSERT INTO record_snapshots (partnership_code, layout, data_version, agencies, records)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (partnership_code, layout) DO UPDATE
             SET data_version = EXCLUDED.data_version, agencies = EXCLUDED.agencies,
                 records = EXCLUDED.records, written_at = now()",
            &[&partnership.as_str(), &layout(), &version, &agencies, &bytes],
        )
        .await?;
    // Locked only now, until the commit: a change to the partnership's records that committed
    // meanwhile shows as a newer version (and the write is undone); one that comes later waits
    // for this commit, and its trigger then deletes the snapshot.
    let current: Option<i64> = transaction
        .query_opt(
            "SELECT data_version FROM partnerships WHERE code = $1 FOR SHARE",
            &[&partnership.as_str()],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    if current != Some(version) {
        transaction.rollback().await?;
        return Ok(false);
    }
    transaction.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record_strategy() -> impl Strategy<Value = CaseRecord> {
        (
            any::<u64>(),
            any::<u8>(),
            0_u32..3,
            0..RecordKind::ALL.len(),
            -1_000_000_i32..1_000_000,
            0..LocationRole::ALL.len(),
            0_u16..(1 << Indicator::ALL.len()),
            0..=AgeBand::ALL.len(),
            0..=Sex::ALL.len(),
            (50.0_f64..55.0, -5.0_f64..1.0),
        )
            .prop_map(
                |(subject, key, agency, kind, day, role, bits, band, sex, (lat, lng))| {
                    let kinds = [
                        AgencyKind::Police,
                        AgencyKind::Health,
                        AgencyKind::Education,
                    ];
                    CaseRecord {
                        cell: h3o::LatLng::new(lat, lng)
                            .unwrap()
                            .to_cell(h3o::Resolution::Nine),
                        subject,
                        record_key: key,
                        agency,
                        agency_kind: kinds[agency as usize],
                        record_kind: RecordKind::ALL[kind],
                        occurred_on: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()
                            + chrono::Days::new(u64::from(day.unsigned_abs())),
                        location_role: LocationRole::ALL[role],
                        indicators: Indicators::from_bits(bits).unwrap(),
                        age_band: band.checked_sub(1).map(|band| AgeBand::ALL[band]),
                        sex: sex.checked_sub(1).map(|sex| Sex::ALL[sex]),
                    }
                },
            )
    }

    proptest! {
        /// Whatever the records, a snapshot reads back as them.
        #[test]
        fn a_snapshot_reads_back_as_its_records(
            records in prop::collection::vec(record_strategy(), 0..50),
        ) {
            let kinds = [AgencyKind::Police, AgencyKind::Health, AgencyKind::Education];
            let bytes = encode(&records);
            prop_assert_eq!(bytes.len(), records.len() * RECORD_BYTES);
            prop_assert_eq!(decode(&bytes, &kinds).unwrap(), records);
        }
    }

    /// A database with 300 records of Blackpool from one police agency.
    async fn blackpool() -> (atlas_postgres::test_db::TestDatabase, Database, GssCode) {
        let test_db = atlas_postgres::test_db::TestDatabase::new().await;
        let client = connect_admin(test_db.url(), Duration::from_secs(10))
            .await
            .unwrap();
        let crate::test_batch::Seeded { agency, batch } =
            crate::test_batch::one_batch(&client, &["E06000009"], 300).await;
        client
            .execute(
                "INSERT INTO case_records (partnership_code, batch_id, agency_id, subject,
                                           record_kind, occurred_on, cell, record_key, indicators,
                                           age_band, sex)
                 SELECT 'E06000009', $1, $2, sha256(int4send(i % 120)), 'incident',
                        DATE '2024-02-01' + i, 617700169958293503, i % 256,
                        ARRAY['missing'], '13-15', 'F'
                 FROM generate_series(1, 300) i",
                &[&batch, &agency],
            )
            .await
            .unwrap();
        let database = Database::new(&crate::DatabaseSettings::new(
            test_db.url().to_owned().into(),
            2,
        ))
        .unwrap();
        (test_db, database, GssCode::parse("E06000009").unwrap())
    }

    async fn snapshots_held(database: &Database) -> i64 {
        connect_admin(database.url().expose_secret(), Duration::from_secs(10))
            .await
            .unwrap()
            .query_one("SELECT count(*) FROM record_snapshots", &[])
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn a_snapshot_serves_its_data_version_only_and_goes_with_any_change() {
        let (_test_db, database, blackpool) = blackpool().await;
        let rows = crate::records::load(&database, &blackpool).await.unwrap();
        assert!(!rows.from_snapshot);
        assert_eq!(rows.records.records.len(), 300);
        assert!(
            !save(
                &database,
                &blackpool,
                rows.version + 1,
                Arc::new(rows.records.clone())
            )
            .await
            .unwrap(),
            "a version the partnership is not at"
        );
        assert!(
            save(
                &database,
                &blackpool,
                rows.version,
                Arc::new(rows.records.clone())
            )
            .await
            .unwrap()
        );
        let snapshot = crate::records::load(&database, &blackpool).await.unwrap();
        assert!(snapshot.from_snapshot);
        assert_eq!(snapshot.version, rows.version);
        assert_eq!(snapshot.records.records, rows.records.records);
        assert_eq!(snapshot.records.agencies, rows.records.agencies);
        // The application raises the data version with every change to the records, and the
        // snapshot goes with it.
        let admin = connect_admin(database.url().expose_secret(), Duration::from_secs(10))
            .await
            .unwrap();
        admin
            .batch_execute("UPDATE partnerships SET data_version = data_version + 1")
            .await
            .unwrap();
        assert_eq!(snapshots_held(&database).await, 0);
        // A change by hand that leaves the version alone takes the snapshot with it too.
        let version = rows.version + 1;
        for change in [
            "DELETE FROM case_records WHERE occurred_on < DATE '2024-02-10'",
            "UPDATE case_records SET sex = 'M' WHERE occurred_on < DATE '2024-02-20'",
            "TRUNCATE case_records",
        ] {
            let current = crate::records::load(&database, &blackpool).await.unwrap();
            assert_eq!(current.version, version);
            assert!(
                save(&database, &blackpool, version, Arc::new(current.records))
                    .await
                    .unwrap()
            );
            assert_eq!(snapshots_held(&database).await, 1);
            admin.batch_execute(change).await.unwrap();
            assert_eq!(snapshots_held(&database).await, 0, "{change}");
        }
        assert!(
            !crate::records::load(&database, &blackpool)
                .await
                .unwrap()
                .from_snapshot
        );
    }

    #[tokio::test]
    async fn a_snapshot_written_during_a_change_is_not_kept() {
        let (_test_db, database, blackpool) = blackpool().await;
        let rows = crate::records::load(&database, &blackpool).await.unwrap();
        // An erasure in progress: the partnership's version is being raised.
        let mut eraser = connect_admin(database.url().expose_secret(), Duration::from_secs(10))
            .await
            .unwrap();
        let erasure = eraser.transaction().await.unwrap();
        erasure
            .batch_execute(
                "DELETE FROM case_records WHERE occurred_on < DATE '2024-03-01';
                 UPDATE partnerships SET data_version = data_version + 1",
            )
            .await
            .unwrap();
        let writer = {
            let (database, blackpool) = (database.clone(), blackpool.clone());
            let records = Arc::new(rows.records.clone());
            tokio::spawn(async move { save(&database, &blackpool, rows.version, records).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!writer.is_finished(), "the write waits for the change");
        erasure.commit().await.unwrap();
        assert!(
            !writer.await.unwrap().unwrap(),
            "written for a stale version"
        );
        assert_eq!(snapshots_held(&database).await, 0);
    }

    #[test]
    fn a_damaged_snapshot_is_refused_not_misread() {
        let kinds = [AgencyKind::Police];
        let record = CaseRecord {
            cell: h3o::LatLng::new(53.8, -3.0)
                .unwrap()
                .to_cell(h3o::Resolution::Nine),
            subject: 7,
            record_key: 3,
            agency: 0,
            agency_kind: AgencyKind::Police,
            record_kind: RecordKind::ALL[0],
            occurred_on: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
            location_role: LocationRole::ALL[0],
            indicators: Indicators::default(),
            age_band: None,
            sex: None,
        };
        let bytes = encode(&[record]);
        assert!(decode(&bytes[..RECORD_BYTES - 1], &kinds).is_err());
        let mut unknown_kind = bytes.clone();
        unknown_kind[27] = 200;
        assert!(
            decode(&unknown_kind, &kinds)
                .unwrap_err()
                .contains("record kind")
        );
        let mut other_agency = bytes.clone();
        other_agency[20] = 5;
        assert!(decode(&other_agency, &kinds).is_err());
        let mut bad_cell = bytes;
        bad_cell[..8].copy_from_slice(&0_u64.to_le_bytes());
        assert!(decode(&bad_cell, &kinds).unwrap_err().contains("H3 cell"));
    }
}
