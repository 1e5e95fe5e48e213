//! Reading a partnership's case records for the analyses, and the version that says when they
//! last changed.

use std::collections::HashMap;

use atlas_domain::CaseRecord;
use atlas_domain::{AgeBand, AgencyKind, GssCode, Indicator, LocationRole, RecordKind, Sex};
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::TryStreamExt as _;
use uuid::Uuid;

use crate::StoreError;
use crate::schema::{agencies, case_records, partnerships};

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

type Row = (
    i64,
    i64,
    i16,
    Uuid,
    String,
    String,
    NaiveDate,
    String,
    Vec<String>,
    Option<String>,
    Option<String>,
);

/// The value of a closed vocabulary whose stored (canonical) name is `text`.
fn canonical<T: Copy>(all: &[T], name: fn(T) -> &'static str, text: &str) -> Result<T, StoreError> {
    all.iter()
        .copied()
        .find(|value| name(*value) == text)
        .ok_or_else(|| {
            StoreError::Invalid(format!("a stored record holds the unknown value `{text}`"))
        })
}

/// Every case record of `partnership`: a bulk read, so it runs in a transaction of its own
/// without the pool's statement time limit.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails, [`StoreError::Invalid`] for a stored value the
/// vocabularies do not know (only a schema change could cause it).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn load(
    conn: &mut AsyncPgConnection,
    partnership: &GssCode,
) -> Result<PartnershipRecords, StoreError> {
    use diesel_async::AsyncConnection as _;
    conn.transaction::<_, StoreError, _>(async |conn| {
        diesel::sql_query("SET LOCAL statement_timeout = 0")
            .execute(conn)
            .await?;
        load_all(conn, partnership).await
    })
    .await
}

/// The read of one partnership's records, with each record's agency kind: it reads the
/// partnership's partition only (`case_records` is partitioned by partnership).
pub(crate) fn records_of(
    partnership: &str,
) -> impl diesel_async::methods::LoadQuery<'_, AsyncPgConnection, Row>
+ diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ Send
+ '_ {
    case_records::table
        .inner_join(agencies::table)
        .filter(case_records::partnership_code.eq(partnership))
        .select((
            case_records::cell,
            // The first 8 bytes of the 32-byte keyed pseudonym, as a number.
            diesel::dsl::sql::<BigInt>(
                "('x' || encode(substring(case_records.subject from 1 for 8), 'hex'))::bit(64)::bigint",
            ),
            case_records::record_key,
            case_records::agency_id,
            agencies::kind,
            case_records::record_kind,
            case_records::occurred_on,
            case_records::location_role,
            case_records::indicators,
            case_records::age_band,
            case_records::sex,
        ))
}

/// [`load`]'s read, in the caller's transaction.
async fn load_all(
    conn: &mut AsyncPgConnection,
    partnership: &GssCode,
) -> Result<PartnershipRecords, StoreError> {
    let rows = records_of(partnership.as_str())
        .load_stream::<Row>(conn)
        .await?;
    let mut rows = std::pin::pin!(rows);
    let mut agency_index: HashMap<Uuid, u32> = HashMap::new();
    let mut agencies = Vec::new();
    let mut records = Vec::new();
    // Rows are converted as they arrive, so only the compact records are ever held.
    while let Some(row) = rows.try_next().await? {
        let (
            cell,
            subject,
            record_key,
            agency,
            kind,
            record_kind,
            occurred_on,
            role,
            indicators,
            age_band,
            sex,
        ) = row;
        let next = u32::try_from(agencies.len()).unwrap_or(u32::MAX);
        let agency = *agency_index.entry(agency).or_insert_with(|| {
            agencies.push(agency);
            next
        });
        let cell = u64::try_from(cell)
            .ok()
            .and_then(|cell| h3o::CellIndex::try_from(cell).ok())
            .ok_or_else(|| {
                StoreError::Invalid("a stored record holds an invalid H3 cell".to_owned())
            })?;
        records.push(CaseRecord {
            cell,
            subject: u64::from_ne_bytes(subject.to_ne_bytes()),
            record_key: u8::try_from(record_key).map_err(|_| {
                StoreError::Invalid(
                    "a stored record holds a record key outside 0 to 255".to_owned(),
                )
            })?,
            agency,
            agency_kind: canonical(AgencyKind::ALL, AgencyKind::as_str, &kind)?,
            record_kind: canonical(RecordKind::ALL, RecordKind::as_str, &record_kind)?,
            occurred_on,
            location_role: canonical(LocationRole::ALL, LocationRole::as_str, &role)?,
            indicators: indicators
                .iter()
                .map(|name| canonical(Indicator::ALL, Indicator::as_str, name))
                .collect::<Result<_, _>>()?,
            age_band: age_band
                .map(|band| canonical(AgeBand::ALL, AgeBand::as_str, &band))
                .transpose()?,
            sex: sex
                .map(|sex| canonical(Sex::ALL, Sex::as_str, sex.trim()))
                .transpose()?,
        });
    }
    // The cache counts what is allocated: no room left over from the vector's doubling.
    records.shrink_to_fit();
    Ok(PartnershipRecords { records, agencies })
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
