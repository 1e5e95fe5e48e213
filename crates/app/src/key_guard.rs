//! Holds a server process to the pseudonym key its database's records were pseudonymised with
//! (docs/privacy.md, "The server pseudonym key"): the first process records its key's
//! fingerprint in the database; a process with another key refuses to start when it can tell
//! at once, and otherwise refuses uploads and reports itself not ready, naming the problem.
//! Another key would store other pseudonyms for the same children and double every distinct
//! count.

use atlas_ingest::pseudonym::PseudonymKey;
use atlas_store::pseudonym_key::{KeyClaim, claim};
use atlas_store::{Database, StoreError};
use tokio::sync::OnceCell;

/// Whether this process's key is its database's, once known.
#[derive(Debug)]
pub struct KeyGuard {
    fingerprint: Option<String>,
    outcome: OnceCell<Result<(), String>>,
}

impl KeyGuard {
    /// A guard for `key` (none: uploads are refused anyway, and nothing is checked).
    #[must_use]
    pub fn new(key: Option<&PseudonymKey>) -> Self {
        Self {
            fingerprint: key.map(PseudonymKey::fingerprint),
            outcome: OnceCell::new(),
        }
    }

    /// Checks the key against the database's, recording it when the database has none; the
    /// answer is kept once known (a database that cannot be asked is asked again next time).
    /// `Ok(Err(reason))` when the keys differ.
    ///
    /// # Errors
    /// [`StoreError`] when the database cannot be asked.
    pub async fn check(&self, database: &Database) -> Result<Result<(), String>, StoreError> {
        let Some(fingerprint) = &self.fingerprint else {
            return Ok(Ok(()));
        };
        self.outcome
            .get_or_try_init(|| async {
                let mut conn = database.connection().await?;
                Ok(match claim(&mut conn, fingerprint).await? {
                    KeyClaim::Recorded => {
                        tracing::info!(
                            %fingerprint,
                            "the server pseudonym key's fingerprint is recorded as this database's"
                        );
                        Ok(())
                    }
                    KeyClaim::Same => Ok(()),
                    KeyClaim::Different(recorded) => Err(mismatch(fingerprint, &recorded)),
                })
            })
            .await
            .cloned()
    }

    /// Why this process must not pseudonymise, when its key is known to differ from the
    /// database's.
    #[must_use]
    pub fn refusal(&self) -> Option<String> {
        self.outcome.get().and_then(|outcome| outcome.clone().err())
    }
}

/// The refusal for a key whose fingerprint is `own` against the database's `recorded`.
fn mismatch(own: &str, recorded: &str) -> String {
    format!(
        "ingest.pseudonym_key is not the key this database's records were pseudonymised with \
         (this key's fingerprint is {own}, the database's {recorded}): configure the database's \
         key; pseudonyms made with another key cannot be matched with its records"
    )
}
