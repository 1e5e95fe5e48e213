//! Reading a partnership's case records for the analyses, and the version that says when they
//! last changed.

use std::collections::HashMap;

use atlas_domain::CaseRecord;
use atlas_domain::{AgeBand, AgencyKind, GssCode, Indicator, LocationRole, RecordKind, Sex};
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use crate::schema::partnerships;
use crate::{Database, StoreError, connect_admin};

/// The data version of a partnership: raised with every batch committed, withdrawn or
/// superseded that touched it. `None` for an unknown partnership.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn data_version(
    conn: &mut AsyncPgConnection,
    partnership: &GssCode,
) -> Result<Option<i64>, StoreError> {
    Ok(partnerships::table
        .find(partnership.as_str())
        .select(partnerships::data_version)
        .first(conn)
        .await
        .optional()?)
}

/// A partnership's case records, with the agencies they came from (indexed by
/// [`CaseRecord::agency`]).
#[derive(Debug, Clone, Default)]
pub struct PartnershipRecords {
    /// The records.
    pub records: Vec<CaseRecord>,
    /// The contributing agencies, by index.
    pub agencies: Vec<Uuid>,
}

/// The value of a closed vocabulary whose stored (canonical) name is `text`.
fn canonical<T: Copy>(all: &[T], name: fn(T) -> &'static str, text: &str) -> Result<T, StoreError> {
    all.iter()
        .copied()
        .find(|value| name(*value) == text)
        .ok_or_else(|| {
            StoreError::Invalid(format!("a stored record holds the unknown value `{text}`"))
        })
}

/// The read of one partnership's records, as `COPY` runs it: its partition only
/// (`case_records` is partitioned by partnership). The code is a checked GSS code (a letter
/// and eight digits), so it is written into the statement, as `COPY` takes no parameters.
pub(crate) fn records_query(partnership: &GssCode) -> String {
    format!(
        "SELECT cell, substring(subject from 1 for 8), record_key, agency_id, record_kind, \
         occurred_on, location_role, indicators, age_band, sex \
         FROM case_records WHERE partnership_code = '{}'",
        partnership.as_str()
    )
}

/// A partnership's records as [`load`] read them.
#[derive(Debug)]
pub struct Loaded {
    /// The records.
    pub records: PartnershipRecords,
    /// The partnership's data version they are of.
    pub version: i64,
    /// Whether they came from a snapshot (`crate::snapshots`) rather than row by row.
    pub from_snapshot: bool,
}

/// Every case record of `partnership`, on a connection of its own in one read-only snapshot
/// (no statement time limit): from its record snapshot at the current data version when there
/// is one (`crate::snapshots`), else streamed row by row with a binary `COPY`; the agencies'
/// kinds are read in the same snapshot and joined here.
///
/// # Errors
/// [`StoreError::Statement`] when PostgreSQL fails, [`StoreError::Invalid`] for a stored value
/// the vocabularies do not know (only a schema change could cause it).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn load(database: &Database, partnership: &GssCode) -> Result<Loaded, StoreError> {
    use futures_util::StreamExt as _;
    use tokio_postgres::binary_copy::BinaryCopyOutStream;
    use tokio_postgres::types::Type;
    let mut client = connect_admin(
        database.url().expose_secret(),
        std::time::Duration::from_secs(10),
    )
    .await?;
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    transaction
        .batch_execute("SET LOCAL statement_timeout = 0")
        .await?;
    let kinds: HashMap<Uuid, AgencyKind> = transaction
        .query("SELECT id, kind FROM agencies", &[])
        .await?
        .into_iter()
        .map(|row| {
            let kind: &str = row.get(1);
            Ok((
                row.get(0),
                canonical(AgencyKind::ALL, AgencyKind::as_str, kind)?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    if let Some((records, version)) =
        crate::snapshots::read(&transaction, partnership, &kinds).await?
    {
        transaction.commit().await?;
        return Ok(Loaded {
            records,
            version,
            from_snapshot: true,
        });
    }
    let version: i64 = transaction
        .query_opt(
            "SELECT data_version FROM partnerships WHERE code = $1",
            &[&partnership.as_str()],
        )
        .await?
        .map_or(Ok(0), |row| row.try_get(0))?;
    let copy = transaction
        .copy_out(&format!(
            "COPY ({}) TO STDOUT (FORMAT binary)",
            records_query(partnership)
        ))
        .await?;
    let rows = BinaryCopyOutStream::new(
        copy,
        &[
            Type::INT8,
            Type::BYTEA,
            Type::INT2,
            Type::UUID,
            Type::TEXT,
            Type::DATE,
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::TEXT,
            Type::BPCHAR,
        ],
    );
    let mut rows = std::pin::pin!(rows);
    let mut agency_index: HashMap<Uuid, u32> = HashMap::new();
    let mut agencies = Vec::new();
    let mut records = Vec::new();
    let invalid = |what: &str| StoreError::Invalid(format!("a stored record holds {what}"));
    // Rows are converted as they arrive, so only the compact records are ever held.
    while let Some(row) = rows.next().await {
        let row = row?;
        let agency: Uuid = row.try_get(3)?;
        let agency_kind = *kinds
            .get(&agency)
            .ok_or_else(|| invalid("an agency that is not registered"))?;
        let next = u32::try_from(agencies.len()).unwrap_or(u32::MAX);
        let agency = *agency_index.entry(agency).or_insert_with(|| {
            agencies.push(agency);
            next
        });
        let cell = u64::try_from(row.try_get::<i64>(0)?)
            .ok()
            .and_then(|cell| h3o::CellIndex::try_from(cell).ok())
            .ok_or_else(|| invalid("an invalid H3 cell"))?;
        let subject: &[u8] = row.try_get(1)?;
        let subject = <[u8; 8]>::try_from(subject)
            .map_err(|_| invalid("a pseudonym shorter than 8 bytes"))?;
        let record_key = u8::try_from(row.try_get::<i16>(2)?)
            .map_err(|_| invalid("a record key outside 0 to 255"))?;
        let indicators: Vec<&str> = row.try_get(7)?;
        records.push(CaseRecord {
            cell,
            // The first 8 bytes of the 32-byte keyed pseudonym, as a number.
            subject: u64::from_be_bytes(subject),
            record_key,
            agency,
            agency_kind,
            record_kind: canonical(RecordKind::ALL, RecordKind::as_str, row.try_get(4)?)?,
            occurred_on: row.try_get::<NaiveDate>(5)?,
            location_role: canonical(LocationRole::ALL, LocationRole::as_str, row.try_get(6)?)?,
            indicators: indicators
                .into_iter()
                .map(|name| canonical(Indicator::ALL, Indicator::as_str, name))
                .collect::<Result<_, _>>()?,
            age_band: row
                .try_get::<Option<&str>>(8)?
                .map(|band| canonical(AgeBand::ALL, AgeBand::as_str, band))
                .transpose()?,
            sex: row
                .try_get::<Option<&str>>(9)?
                .map(|sex| canonical(Sex::ALL, Sex::as_str, sex.trim()))
                .transpose()?,
        });
    }
    transaction.commit().await?;
    // The cache counts what is allocated: no room left over from the vector's doubling.
    records.shrink_to_fit();
    Ok(Loaded {
        records: PartnershipRecords { records, agencies },
        version,
        from_snapshot: false,
    })
}

/// Every partnership's records by agency kind, and distinct subjects, for the days from `from`
/// to `to`: the counts of the national export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodCounts {
    /// Records per agency kind.
    pub records: HashMap<AgencyKind, u32>,
    /// Distinct subjects.
    pub subjects: u32,
}

/// Records per partnership and agency kind from `$1` to `$2`: one partnership at a time, so
/// each reads its own partition's index of days (`case_records` is partitioned by partnership;
/// docs/scale-out.md) rather than every record.
pub(crate) const PERIOD_RECORDS_BY_KIND: &str =
    "SELECT p.code AS partnership_code, k.kind, k.records FROM partnerships p
     CROSS JOIN LATERAL (
         SELECT a.kind, count(*) AS records
         FROM case_records r JOIN agencies a ON a.id = r.agency_id
         WHERE r.partnership_code = p.code AND r.occurred_on BETWEEN $1 AND $2
         GROUP BY a.kind) k";

/// Distinct subjects per partnership from `$1` to `$2`, one partnership at a time.
pub(crate) const PERIOD_SUBJECTS: &str =
    "SELECT p.code AS partnership_code, s.subjects FROM partnerships p
     CROSS JOIN LATERAL (
         SELECT count(DISTINCT r.subject) AS subjects FROM case_records r
         WHERE r.partnership_code = p.code AND r.occurred_on BETWEEN $1 AND $2) s
     WHERE s.subjects > 0";

/// [`PeriodCounts`] of every partnership with records between `from` and `to` (inclusive),
/// keyed by GSS code.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn period_counts(
    conn: &mut AsyncPgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<String, PeriodCounts>, StoreError> {
    use diesel::sql_types::{Date, Text};
    #[derive(QueryableByName)]
    struct ByKind {
        #[diesel(sql_type = Text)]
        partnership_code: String,
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = BigInt)]
        records: i64,
    }
    #[derive(QueryableByName)]
    struct Subjects {
        #[diesel(sql_type = Text)]
        partnership_code: String,
        #[diesel(sql_type = BigInt)]
        subjects: i64,
    }
    let by_kind: Vec<ByKind> = diesel::sql_query(PERIOD_RECORDS_BY_KIND)
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(conn)
        .await?;
    let subjects: Vec<Subjects> = diesel::sql_query(PERIOD_SUBJECTS)
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(conn)
        .await?;
    let mut counts: HashMap<String, PeriodCounts> = HashMap::new();
    for ByKind {
        partnership_code: partnership,
        kind,
        records,
    } in by_kind
    {
        let kind: AgencyKind = kind
            .parse()
            .map_err(|err| StoreError::Invalid(format!("stored agency kind: {err}")))?;
        counts
            .entry(partnership)
            .or_default()
            .records
            .insert(kind, u32::try_from(records).unwrap_or(u32::MAX));
    }
    for Subjects {
        partnership_code: partnership,
        subjects,
    } in subjects
    {
        counts.entry(partnership).or_default().subjects =
            u32::try_from(subjects).unwrap_or(u32::MAX);
    }
    Ok(counts)
}
