//! Sharing agreements: partnership A lets partnership B's viewers read some of A's
//! disclosure-controlled outputs, from one date to another, until revoked.

use std::collections::{BTreeMap, BTreeSet};

use atlas_domain::{GssCode, Scope};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::{read_back, read_back_all};
use crate::schema::{partnerships, sharing_agreements};
use crate::{StoreError, audit};

/// A sharing agreement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Agreement {
    /// The partnership that shares.
    pub from: GssCode,
    /// Identifier.
    pub id: Uuid,
    /// The partnership whose viewers may read.
    pub to: GssCode,
    /// What may be read.
    pub scopes: Vec<Scope>,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force; `None` for open-ended.
    pub valid_to: Option<NaiveDate>,
    /// When it was revoked; it stops at once.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An agreement's row, read back into an [`Agreement`].
#[derive(Queryable, Selectable)]
#[diesel(table_name = sharing_agreements, check_for_backend(diesel::pg::Pg))]
struct StoredAgreement {
    #[diesel(column_name = partnership_code, deserialize_as = String)]
    from: GssCode,
    id: Uuid,
    #[diesel(column_name = recipient_code, deserialize_as = String)]
    to: GssCode,
    scopes: Vec<String>,
    valid_from: NaiveDate,
    valid_to: Option<NaiveDate>,
    revoked_at: Option<DateTime<Utc>>,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl StoredAgreement {
    /// The agreement, its scopes read back as [`Scope`]s.
    fn read_back(self) -> Result<Agreement, StoreError> {
        Ok(Agreement {
            from: self.from,
            id: self.id,
            to: self.to,
            scopes: read_back_all(self.scopes)?,
            valid_from: self.valid_from,
            valid_to: self.valid_to,
            revoked_at: self.revoked_at,
            created_by: self.created_by,
            created_at: self.created_at,
        })
    }
}

/// The terms of a new agreement.
#[derive(Debug, Clone)]
pub struct Terms {
    /// The partnership that shares.
    pub from: GssCode,
    /// The partnership whose viewers may read.
    pub to: GssCode,
    /// What may be read (validated by the caller).
    pub scopes: BTreeSet<Scope>,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force.
    pub valid_to: Option<NaiveDate>,
}

/// Creates an agreement and appends `entry` to the audit trail in the same transaction.
///
/// # Errors
/// [`StoreError::Invalid`] for a partnership sharing with itself, no scope or an end before the
/// start; [`StoreError::NotFound`] for an unknown partnership.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn create(
    conn: &mut AsyncPgConnection,
    terms: &Terms,
    created_by: &str,
    entry: &audit::NewEntry,
) -> Result<Agreement, StoreError> {
    if terms.from == terms.to {
        return Err(StoreError::Invalid(
            "a partnership cannot share with itself".to_owned(),
        ));
    }
    if terms.scopes.is_empty() {
        return Err(StoreError::Invalid(
            "an agreement needs at least one scope".to_owned(),
        ));
    }
    if terms.valid_to.is_some_and(|to| to < terms.valid_from) {
        return Err(StoreError::Invalid(
            "valid_to is before valid_from".to_owned(),
        ));
    }
    conn.transaction::<_, StoreError, _>(async |conn| {
        let codes = [terms.from.to_string(), terms.to.to_string()];
        let known: Vec<String> = partnerships::table
            .filter(partnerships::code.eq_any(&codes))
            .select(partnerships::code)
            .load(conn)
            .await?;
        if let Some(unknown) = codes.iter().find(|code| !known.contains(code)) {
            return Err(StoreError::NotFound(format!(
                "partnership {unknown} does not exist"
            )));
        }
        let agreement = diesel::insert_into(sharing_agreements::table)
            .values((
                sharing_agreements::partnership_code.eq(&codes[0]),
                sharing_agreements::id.eq(Uuid::new_v4()),
                sharing_agreements::recipient_code.eq(&codes[1]),
                sharing_agreements::scopes.eq(terms
                    .scopes
                    .iter()
                    .map(|scope| scope.as_str())
                    .collect::<Vec<_>>()),
                sharing_agreements::valid_from.eq(terms.valid_from),
                sharing_agreements::valid_to.eq(terms.valid_to),
                sharing_agreements::created_by.eq(created_by),
            ))
            .returning(StoredAgreement::as_returning())
            .get_result::<StoredAgreement>(conn)
            .await?
            .read_back()?;
        let mut entry = entry.clone();
        entry.partnership = Some(agreement.from.to_string());
        entry.resource = format!("/api/v1/admin/agreements/{}", agreement.id);
        audit::append(conn, &[entry]).await?;
        Ok(agreement)
    })
    .await
}

/// Every agreement, newest first.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<Agreement>, StoreError> {
    sharing_agreements::table
        .select(StoredAgreement::as_select())
        .order(sharing_agreements::created_at.desc())
        .load::<StoredAgreement>(conn)
        .await?
        .into_iter()
        .map(StoredAgreement::read_back)
        .collect()
}

/// Revokes an agreement at once and appends `entry` in the same transaction.
///
/// # Errors
/// [`StoreError::NotFound`] for an unknown id, [`StoreError::Conflict`] when already revoked.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    entry: &audit::NewEntry,
) -> Result<Agreement, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let current = sharing_agreements::table
            .filter(sharing_agreements::id.eq(id))
            .select(StoredAgreement::as_select())
            .for_update()
            .first::<StoredAgreement>(conn)
            .await
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("no sharing agreement has the id {id}")))?
            .read_back()?;
        if current.revoked_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "agreement {id} is already revoked"
            )));
        }
        let revoked = diesel::update(
            sharing_agreements::table
                .filter(sharing_agreements::partnership_code.eq(current.from.as_str()))
                .filter(sharing_agreements::id.eq(id)),
        )
        .set(sharing_agreements::revoked_at.eq(diesel::dsl::now))
        .returning(StoredAgreement::as_returning())
        .get_result::<StoredAgreement>(conn)
        .await?
        .read_back()?;
        let mut entry = entry.clone();
        entry.partnership = Some(current.from.to_string());
        audit::append(conn, &[entry]).await?;
        Ok(revoked)
    })
    .await
}

/// The scopes that agreements in force on `today` let `recipient` read of `owner`'s outputs.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn shared_scopes(
    conn: &mut AsyncPgConnection,
    owner: &GssCode,
    recipient: &GssCode,
    today: NaiveDate,
) -> Result<BTreeSet<Scope>, StoreError> {
    Ok(sharing_with(conn, recipient, today)
        .await?
        .remove(owner)
        .unwrap_or_default())
}

/// The partnerships whose agreements in force on `today` share something with `recipient`, with
/// the scopes they share, by partnership code.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn sharing_with(
    conn: &mut AsyncPgConnection,
    recipient: &GssCode,
    today: NaiveDate,
) -> Result<BTreeMap<GssCode, BTreeSet<Scope>>, StoreError> {
    let rows: Vec<(String, Vec<String>)> = sharing_agreements::table
        .filter(sharing_agreements::recipient_code.eq(recipient.as_str()))
        .filter(sharing_agreements::revoked_at.is_null())
        .filter(sharing_agreements::valid_from.le(today))
        .filter(
            sharing_agreements::valid_to
                .is_null()
                .or(sharing_agreements::valid_to.ge(today)),
        )
        .select((
            sharing_agreements::partnership_code,
            sharing_agreements::scopes,
        ))
        .load(conn)
        .await?;
    let mut sharing: BTreeMap<GssCode, BTreeSet<Scope>> = BTreeMap::new();
    for (owner, scopes) in rows {
        sharing
            .entry(read_back(owner)?)
            .or_default()
            .extend(read_back_all::<Scope>(scopes)?);
    }
    Ok(sharing)
}
