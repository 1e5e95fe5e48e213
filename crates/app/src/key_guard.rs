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
                Ok(match claim(&mut conn, fingerprint, false).await? {
                    KeyClaim::Recorded => {
                        tracing::info!(
                            %fingerprint,
                            "the server pseudonym key's fingerprint is recorded as this database's"
                        );
                        Ok(())
                    }
                    KeyClaim::Same => Ok(()),
                    KeyClaim::Unrecorded => {
                        tracing::warn!(
                            %fingerprint,
                            "this database holds records but no pseudonym key fingerprint: once \
                             sure this is the key that made them, run `atlas pseudonym-key record`"
                        );
                        Ok(())
                    }
                    KeyClaim::Different(recorded) => Err(mismatch(fingerprint, &recorded)),
                })
            })
            .await
            .cloned()
    }

    /// Compares the key with the database's without recording anything: why it must not be
    /// used, when the database's key is another.
    ///
    /// # Errors
    /// [`StoreError`] when the database cannot be asked.
    pub async fn compare(&self, database: &Database) -> Result<Option<String>, StoreError> {
        let Some(fingerprint) = &self.fingerprint else {
            return Ok(None);
        };
        let mut conn = database.connection().await?;
        Ok(atlas_store::pseudonym_key::recorded(&mut conn)
            .await?
            .filter(|recorded| recorded != fingerprint)
            .map(|recorded| mismatch(fingerprint, &recorded)))
    }

    /// Records the key as the database's even though it holds records (the operator vouches
    /// for it); says what happened.
    ///
    /// # Errors
    /// [`StoreError`] when the database cannot be asked.
    pub async fn record(&self, database: &Database) -> Result<String, StoreError> {
        let Some(fingerprint) = &self.fingerprint else {
            return Ok("ingest.pseudonym_key is not set: nothing to record".to_owned());
        };
        let mut conn = database.connection().await?;
        Ok(match claim(&mut conn, fingerprint, true).await? {
            KeyClaim::Recorded => format!("recorded the pseudonym key's fingerprint {fingerprint}"),
            KeyClaim::Same => format!("the database's key is already this one ({fingerprint})"),
            KeyClaim::Different(recorded) => mismatch(fingerprint, &recorded),
            KeyClaim::Unrecorded => "nothing recorded".to_owned(),
        })
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
