//! The fingerprint of the server pseudonym key a database's records were pseudonymised with.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::StoreError;
use crate::schema::pseudonym_key_fingerprint;

/// Whether a process's key is the database's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The database had no key yet: this one is recorded as its key.
    Recorded,
    /// The database's key is this one.
    Same,
    /// The database's records were pseudonymised with another key, whose fingerprint this is.
    Different(String),
    /// The database holds records but no fingerprint (it was upgraded): which key made them is
    /// not known, so none is recorded without an operator (`atlas pseudonym-key record`).
    Unrecorded,
}

/// Records `fingerprint` as the database's key when it has none and holds no records yet
/// (or, `forced`, whatever it holds: the operator vouches for the key), and says whether it is
/// the database's key.
///
/// # Errors
/// [`StoreError::Query`].
pub async fn claim(
    conn: &mut AsyncPgConnection,
    fingerprint: &str,
    forced: bool,
) -> Result<KeyClaim, StoreError> {
    let inserted = diesel::sql_query(
        "INSERT INTO pseudonym_key_fingerprint (fingerprint)
         SELECT $1 WHERE $2 OR NOT EXISTS (SELECT 1 FROM case_records)
         ON CONFLICT ON CONSTRAINT pseudonym_key_fingerprint_pkey DO NOTHING",
    )
    .bind::<diesel::sql_types::Text, _>(fingerprint)
    .bind::<diesel::sql_types::Bool, _>(forced)
    .execute(conn)
    .await?;
    if inserted == 1 {
        return Ok(KeyClaim::Recorded);
    }
    Ok(match recorded(conn).await? {
        None => KeyClaim::Unrecorded,
        Some(recorded) if recorded == fingerprint => KeyClaim::Same,
        Some(recorded) => KeyClaim::Different(recorded),
    })
}

/// The fingerprint recorded as the database's key, if any (reads only).
///
/// # Errors
/// [`StoreError::Query`].
pub async fn recorded(conn: &mut AsyncPgConnection) -> Result<Option<String>, StoreError> {
    Ok(pseudonym_key_fingerprint::table
        .select(pseudonym_key_fingerprint::fingerprint)
        .first(conn)
        .await
        .optional()?)
}
