//! Registered users: the partnership, agency and roles administrators have given a subject.

use atlas_domain::{GssCode, Role};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::read_back_all;
use crate::schema::users;
use crate::{StoreError, agencies, audit};

/// A registration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Registration {
    /// The tokens' `sub`.
    pub subject: String,
    /// The partnership the person belongs to.
    pub partnership: GssCode,
    /// The agency the person works for.
    pub agency: Option<Uuid>,
    /// The roles the person may use.
    pub roles: Vec<Role>,
    /// When the registration was disabled; a disabled person is refused everything.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Who last changed it.
    pub updated_by: String,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// A registration's row, read back into a [`Registration`].
#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct StoredRegistration {
    subject: String,
    #[diesel(column_name = partnership_code, deserialize_as = String)]
    partnership: GssCode,
    #[diesel(column_name = agency_id)]
    agency: Option<Uuid>,
    roles: Vec<String>,
    disabled_at: Option<DateTime<Utc>>,
    updated_by: String,
    updated_at: DateTime<Utc>,
}

impl StoredRegistration {
    /// The registration, its roles read back as [`Role`]s.
    fn read_back(self) -> Result<Registration, StoreError> {
        Ok(Registration {
            subject: self.subject,
            partnership: self.partnership,
            agency: self.agency,
            roles: read_back_all(self.roles)?,
            disabled_at: self.disabled_at,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        })
    }
}

/// Registers `subject` (or replaces its registration, enabling it again) and appends `entry`
/// to the audit trail in the same transaction. An agency, when given, must serve the
/// partnership.
///
/// # Errors
/// [`StoreError::Invalid`] with no role or an agency that does not serve the partnership,
/// [`StoreError::NotFound`] for an unknown partnership or agency.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn register(
    conn: &mut AsyncPgConnection,
    subject: &str,
    partnership: &GssCode,
    agency: Option<Uuid>,
    roles: &[Role],
    entry: &audit::NewEntry,
) -> Result<Registration, StoreError> {
    let subject = subject.trim();
    if subject.is_empty() || subject.len() > 256 {
        return Err(StoreError::Invalid(
            "a subject has 1 to 256 characters".to_owned(),
        ));
    }
    if roles.is_empty() {
        return Err(StoreError::Invalid(
            "a registration needs at least one role".to_owned(),
        ));
    }
    conn.transaction::<_, StoreError, _>(async |conn| {
        if let Some(agency) = agency {
            let served = agencies::served_by(conn, agency)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("agency {agency} does not exist")))?;
            if !served.contains(partnership.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "agency {agency} does not serve partnership {partnership} (it serves {}); \
                     register the person in a partnership their agency serves",
                    served.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        let values = (
            users::subject.eq(subject),
            users::partnership_code.eq(partnership.as_str()),
            users::agency_id.eq(agency),
            users::roles.eq(&names),
            users::disabled_at.eq(None::<DateTime<Utc>>),
            users::updated_by.eq(&entry.subject),
            users::updated_at.eq(diesel::dsl::now),
        );
        let registration = diesel::insert_into(users::table)
            .values(values)
            .on_conflict(users::subject)
            .do_update()
            .set(values)
            .returning(StoredRegistration::as_returning())
            .get_result::<StoredRegistration>(conn)
            .await
            .map_err(|err| match err {
                DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                    let what = if info
                        .constraint_name()
                        .is_some_and(|name| name.contains("agency"))
                    {
                        "agency"
                    } else {
                        "partnership"
                    };
                    StoreError::NotFound(format!("the {what} does not exist"))
                }
                other => other.into(),
            })?
            .read_back()?;
        let mut entry = entry.clone();
        entry.partnership = Some(registration.partnership.to_string());
        audit::append(conn, &[entry]).await?;
        Ok(registration)
    })
    .await
}

/// The registration of `subject`, if any.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(
    conn: &mut AsyncPgConnection,
    subject: &str,
) -> Result<Option<Registration>, StoreError> {
    users::table
        .find(subject)
        .select(StoredRegistration::as_select())
        .first::<StoredRegistration>(conn)
        .await
        .optional()?
        .map(StoredRegistration::read_back)
        .transpose()
}

/// Every registration, sorted by subject.
///
/// # Errors
/// [`StoreError::Query`] when PostgreSQL fails.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<Registration>, StoreError> {
    users::table
        .select(StoredRegistration::as_select())
        .order(users::subject)
        .load::<StoredRegistration>(conn)
        .await?
        .into_iter()
        .map(StoredRegistration::read_back)
        .collect()
}

/// Disables `subject` at once and appends `entry` in the same transaction.
///
/// # Errors
/// [`StoreError::NotFound`] when it is not registered.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn disable(
    conn: &mut AsyncPgConnection,
    subject: &str,
    entry: &audit::NewEntry,
) -> Result<Registration, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let registration = diesel::update(users::table.find(subject))
            .set((
                users::disabled_at.eq(diesel::dsl::now),
                users::updated_by.eq(&entry.subject),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .returning(StoredRegistration::as_returning())
            .get_result::<StoredRegistration>(conn)
            .await
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("{subject} is not registered")))?
            .read_back()?;
        let mut entry = entry.clone();
        entry.partnership = Some(registration.partnership.to_string());
        audit::append(conn, &[entry]).await?;
        Ok(registration)
    })
    .await
}
