//! Reading a partnership's case records for the analyses, and the version that says when they
//! last changed.

use std::collections::HashMap;

use atlas_analytics::grid::CaseRecord;
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

/// Every case record of `partnership`.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails, [`StoreError::Invalid`] for a stored value the
/// vocabularies do not know (only a schema change could cause it).
pub async fn load(
    conn: &mut AsyncPgConnection,
    partnership: &GssCode,
) -> Result<PartnershipRecords, StoreError> {
    let mut rows = case_records::table
        .inner_join(agencies::table)
        .filter(case_records::partnership_code.eq(partnership.as_str()))
        .select((
            case_records::cell,
            // The first 8 bytes of the 32-byte keyed pseudonym, as a number.
            diesel::dsl::sql::<BigInt>(
                "('x' || encode(substring(case_records.subject from 1 for 8), 'hex'))::bit(64)::bigint",
            ),
            case_records::agency_id,
            agencies::kind,
            case_records::record_kind,
            case_records::occurred_on,
            case_records::location_role,
            case_records::indicators,
            case_records::age_band,
            case_records::sex,
        ))
        .load_stream::<Row>(conn)
        .await?;
    let mut agency_index: HashMap<Uuid, u32> = HashMap::new();
    let mut agencies = Vec::new();
    let mut records = Vec::new();
    // Rows are converted as they arrive, so only the compact records are ever held.
    while let Some(row) = rows.try_next().await? {
        let (
            cell,
            subject,
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
    Ok(PartnershipRecords { records, agencies })
}
