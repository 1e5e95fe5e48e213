//! The fingerprint of the server pseudonym key a database's records were pseudonymised with.

use diesel::prelude::*;
use diesel::upsert::on_constraint;
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
}

/// Records `fingerprint` as the database's key when it has none, and says whether it is the
/// database's key.
///
/// # Errors
/// [`StoreError::Query`].
pub async fn claim(
    conn: &mut AsyncPgConnection,
    fingerprint: &str,
) -> Result<KeyClaim, StoreError> {
    let inserted = diesel::insert_into(pseudonym_key_fingerprint::table)
        .values(pseudonym_key_fingerprint::fingerprint.eq(fingerprint))
        .on_conflict(on_constraint("pseudonym_key_fingerprint_pkey"))
        .do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
        return Ok(KeyClaim::Recorded);
    }
    let recorded: String = pseudonym_key_fingerprint::table
        .select(pseudonym_key_fingerprint::fingerprint)
        .first(conn)
        .await?;
    Ok(if recorded == fingerprint {
        KeyClaim::Same
    } else {
        KeyClaim::Different(recorded)
    })
}
