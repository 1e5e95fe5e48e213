//! The case records the analyses read, cached per partnership and reloaded when its data
//! version moves (a batch committed, withdrawn or superseded raises it in the same transaction).
//!
//! Grids and hotspots are computed from these in memory, so a question answers in
//! milliseconds once the partnership is loaded, and the answer is always that of the committed
//! data: a request first reads the version (one indexed row) and reloads when it changed.
//!
//! Loads are single flight: concurrent requests that find a partnership cold (or stale) wait for
//! one load of it rather than each reading every record, and none holds a pooled connection while
//! it waits.
//!
//! Records leave the cache only through [`RecordCache::records`], narrowed to the caller's
//! [`RecordScope`]: agency staff get their own agency's records and no other's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use atlas_access::RecordScope;
use atlas_domain::GssCode;
use atlas_store::records::{self, PartnershipRecords};
use atlas_store::{Database, StoreError};

/// How many partnerships' records are kept at once (least recently used go first).
const CAPACITY: usize = 8;

struct Entry {
    version: i64,
    records: Arc<PartnershipRecords>,
    used: u64,
}

/// The cache, shared by every worker.
#[derive(Default)]
pub struct RecordCache {
    entries: Mutex<(u64, HashMap<GssCode, Entry>)>,
    /// One lock per partnership, held while its records load (single flight).
    loads: Mutex<HashMap<GssCode, Arc<tokio::sync::Mutex<()>>>>,
}

impl RecordCache {
    /// The current records of `partnership` within `scope` (those of the caller's agency only,
    /// for agency staff), or `None` when the partnership does not exist.
    ///
    /// # Errors
    /// [`StoreError`] when PostgreSQL fails.
    pub async fn records(
        &self,
        database: &Database,
        partnership: &GssCode,
        scope: RecordScope,
    ) -> Result<Option<Arc<PartnershipRecords>>, StoreError> {
        let Some(all) = self.all_records(database, partnership).await? else {
            return Ok(None);
        };
        Ok(Some(match scope {
            RecordScope::Partnership => all,
            RecordScope::Agency(_) => Arc::new(PartnershipRecords {
                records: all
                    .records
                    .iter()
                    .filter(|record| {
                        all.agencies
                            .get(record.agency as usize)
                            .is_some_and(|id| scope.admits(*id))
                    })
                    .cloned()
                    .collect(),
                agencies: all.agencies.clone(),
            }),
        }))
    }

    /// Every current record of `partnership`, loaded or from the cache.
    async fn all_records(
        &self,
        database: &Database,
        partnership: &GssCode,
    ) -> Result<Option<Arc<PartnershipRecords>>, StoreError> {
        let version = {
            let mut conn = database.connection().await?;
            records::data_version(&mut conn, partnership).await?
        };
        let Some(version) = version else {
            return Ok(None);
        };
        if let Some(records) = self.fresh(partnership, version) {
            return Ok(Some(records));
        }
        let flight = self.flight(partnership);
        let _turn = flight.lock().await;
        // Whoever held the turn before may have loaded this version (or a newer one) already.
        if let Some(records) = self.fresh(partnership, version) {
            return Ok(Some(records));
        }
        let mut conn = database.connection().await?;
        let loaded = Arc::new(records::load(&mut conn, partnership).await?);
        drop(conn);
        let mut guard = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (clock, entries) = &mut *guard;
        *clock += 1;
        if entries.len() >= CAPACITY && !entries.contains_key(partnership) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(code, _)| code.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            partnership.clone(),
            Entry {
                version,
                records: Arc::clone(&loaded),
                used: *clock,
            },
        );
        Ok(Some(loaded))
    }

    /// Reloads, in the background, the records of the partnerships a batch just changed that
    /// are in the cache (someone is analysing them), so the next request finds them loaded.
    /// Failures are only logged: a request reloads anyway.
    pub fn refresh_later(
        cache: Arc<Self>,
        database: Database,
        partnerships: impl IntoIterator<Item = GssCode>,
    ) {
        let codes: Vec<GssCode> = {
            let guard = cache
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            partnerships
                .into_iter()
                .filter(|code| guard.1.contains_key(code))
                .collect()
        };
        if codes.is_empty() {
            return;
        }
        tokio::spawn(async move {
            for code in codes {
                if let Err(err) = cache.all_records(&database, &code).await {
                    tracing::warn!(%code, error = %err, "could not reload records after a batch");
                }
            }
        });
    }

    /// The lock that single-flights loads of `partnership`.
    fn flight(&self, partnership: &GssCode) -> Arc<tokio::sync::Mutex<()>> {
        let mut loads = self
            .loads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(loads.entry(partnership.clone()).or_default())
    }

    /// The cached records of `partnership` if they are of `version` or newer.
    fn fresh(&self, partnership: &GssCode, version: i64) -> Option<Arc<PartnershipRecords>> {
        let mut guard = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (clock, entries) = &mut *guard;
        *clock += 1;
        let entry = entries
            .get_mut(partnership)
            .filter(|entry| entry.version >= version)?;
        entry.used = *clock;
        Some(Arc::clone(&entry.records))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use atlas_postgres::test_db::TestDatabase;
    use atlas_store::DatabaseSettings;

    use super::*;

    #[tokio::test]
    async fn concurrent_cold_loads_of_one_partnership_share_one_load() {
        let test_db = TestDatabase::new().await;
        let client = atlas_store::connect_admin(test_db.url(), Duration::from_secs(5))
            .await
            .unwrap();
        client
            .batch_execute(
                "INSERT INTO partnerships (code, name) VALUES ('E10000017', 'Lancashire')",
            )
            .await
            .unwrap();
        let database =
            Database::new(&DatabaseSettings::new(test_db.url().to_owned().into(), 8)).unwrap();
        // Connections ready in the pool, so the four requests run side by side.
        let warm = futures_util::future::join_all((0..4).map(|_| database.connection())).await;
        drop(warm);
        let cache = RecordCache::default();
        let code = GssCode::parse("E10000017").unwrap();
        let loaded: Vec<Arc<PartnershipRecords>> = futures_util::future::join_all(
            (0..4).map(|_| cache.records(&database, &code, RecordScope::Partnership)),
        )
        .await
        .into_iter()
        .map(|records| records.unwrap().unwrap())
        .collect();
        assert!(
            loaded
                .windows(2)
                .all(|pair| Arc::ptr_eq(&pair[0], &pair[1])),
            "each request loaded the partnership's records itself"
        );
    }
}
