//! Registering and listing agencies.

use std::collections::{BTreeMap, BTreeSet};

use atlas_domain::{AgencyKind, GssCode};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::read_back_all;
use crate::schema::{agencies, agency_partnerships, partnerships};
use crate::{StoreError, audit};

/// An agency and the partnerships it serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Agency {
    /// Opaque identifier (the `agency` claim of its staff's tokens).
    pub id: Uuid,
    /// Name, such as "Lancashire Constabulary".
    pub name: String,
    /// Kind of organisation.
    pub kind: AgencyKind,
    /// Codes of the partnerships it serves, sorted.
    pub partnerships: Vec<GssCode>,
}

/// An agency's row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = agencies, check_for_backend(diesel::pg::Pg))]
struct StoredAgency {
    id: Uuid,
    name: String,
    #[diesel(deserialize_as = String)]
    kind: AgencyKind,
}

/// Registers an agency serving `partnerships` (at least one) and returns it, appending `entry`
/// to the audit trail in the same transaction.
///
/// # Errors
/// [`StoreError::Invalid`] with no partnership, [`StoreError::NotFound`] naming an unknown
/// partnership, [`StoreError::Conflict`] when an agency of that name and kind exists.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn add(
    conn: &mut AsyncPgConnection,
    name: &str,
    kind: AgencyKind,
    partnerships: &[GssCode],
    entry: &audit::NewEntry,
) -> Result<Agency, StoreError> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(StoreError::Invalid("an agency needs a name".to_owned()));
    }
    let mut codes: Vec<String> = partnerships.iter().map(ToString::to_string).collect();
    codes.sort();
    codes.dedup();
    if codes.is_empty() {
        return Err(StoreError::Invalid(
            "an agency must serve at least one partnership".to_owned(),
        ));
    }
    let id = Uuid::new_v4();
    let stored_codes = codes.clone();
    conn.transaction::<_, StoreError, _>(async move |conn| {
        let known: Vec<String> = partnerships::table
            .filter(partnerships::code.eq_any(&codes))
            .select(partnerships::code)
            .load(conn)
            .await?;
        if let Some(unknown) = codes.iter().find(|code| !known.contains(code)) {
            return Err(StoreError::NotFound(format!(
                "partnership {unknown} does not exist; import the reference geography first"
            )));
        }
        diesel::insert_into(agencies::table)
            .values((
                agencies::id.eq(id),
                agencies::name.eq(&name),
                agencies::kind.eq(kind.as_str()),
            ))
            .execute(conn)
            .await
            .map_err(|err: DieselError| match err {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    StoreError::Conflict(format!("a {kind} agency named \"{name}\" already exists"))
                }
                other => other.into(),
            })?;
        let links: Vec<_> = codes
            .iter()
            .map(|code| {
                (
                    agency_partnerships::agency_id.eq(id),
                    agency_partnerships::partnership_code.eq(code),
                )
            })
            .collect();
        diesel::insert_into(agency_partnerships::table)
            .values(links)
            .execute(conn)
            .await?;
        let mut entry = entry.clone();
        entry.resource = format!("/api/v1/admin/agencies/{id}");
        audit::append(conn, &[entry]).await?;
        Ok(Agency {
            id,
            name,
            kind,
            partnerships: read_back_all(stored_codes)?,
        })
    })
    .await
}

/// Every agency, sorted by name.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<Agency>, StoreError> {
    let rows: Vec<StoredAgency> = agencies::table
        .select(StoredAgency::as_select())
        .order((agencies::name, agencies::kind))
        .load(conn)
        .await?;
    let mut served: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for (agency, code) in agency_partnerships::table
        .select((
            agency_partnerships::agency_id,
            agency_partnerships::partnership_code,
        ))
        .order(agency_partnerships::partnership_code)
        .load::<(Uuid, String)>(conn)
        .await?
    {
        served.entry(agency).or_default().push(code);
    }
    rows.into_iter()
        .map(|StoredAgency { id, name, kind }| {
            Ok(Agency {
                id,
                partnerships: read_back_all(served.remove(&id).unwrap_or_default())?,
                name,
                kind,
            })
        })
        .collect()
}

/// The codes of the partnerships `agency` serves, or `None` when no such agency exists.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn served_by(
    conn: &mut AsyncPgConnection,
    agency: Uuid,
) -> Result<Option<BTreeSet<String>>, StoreError> {
    let exists: Option<Uuid> = agencies::table
        .find(agency)
        .select(agencies::id)
        .first(conn)
        .await
        .optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    let served: Vec<String> = agency_partnerships::table
        .filter(agency_partnerships::agency_id.eq(agency))
        .select(agency_partnerships::partnership_code)
        .load(conn)
        .await?;
    Ok(Some(served.into_iter().collect()))
}
